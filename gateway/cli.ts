/**
 * `jamgate start`: the embedded node and the gateway in one process, with embedded defaults —
 * the README's main command. With `--node ws://…` the gateway drives a remote node instead.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { pino } from "pino";
import { DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "../node/availability/availability.ts";
import type { NodeApi } from "../node/api.ts";
import type { GenesisService } from "../node/chain/genesis.ts";
import { chainParams, type ChainName } from "../node/chain/params.ts";
import { integerIn, runUntilSignal } from "../node/cli.ts";
import { toHex } from "../node/codec/jam.ts";
import { type Ed25519KeyPair, keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { JamNode } from "../node/node.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { startRpcServer } from "../node/rpc/server.ts";
import { Gateway } from "./gateway.ts";
import { buildHttp } from "./http.ts";
import { InfluxWriter } from "./influx/writer.ts";
import type { IngestService } from "./ingest-service.ts";
import { Registrations } from "./registration.ts";

export const DEFAULT_GATEWAY_DATA_DIR = ".jamgate";

/** A secret file in the data dir, made once (mode 0600) and read after. */
export function secretFile(path: string, make: () => string): string {
  if (!existsSync(path)) {
    writeFileSync(path, make(), { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
  }
  return readFileSync(path, "utf8").trim();
}

export function operatorTokenOf(dataDir: string): string {
  return secretFile(join(dataDir, "operator-token"), () => `${randomBytes(32).toString("hex")}\n`);
}

export function gatewayKeyOf(dataDir: string): Ed25519KeyPair {
  return keyPairFromSeed(Buffer.from(secretFile(join(dataDir, "gateway-key"), () => `${randomBytes(32).toString("hex")}\n`), "hex"));
}

interface StartOptions {
  dataDir: string;
  mqttPort: number;
  wsPort: number;
  httpPort: number;
  rpcPort: number;
  host: string;
  slotMs: number;
  chain: ChainName;
  influxUrl?: string;
  node?: string;
  batchMs: number;
}

export interface StartWiring {
  /** Genesis services of the embedded node, given the gateway's key. */
  genesis(gatewayKey: Ed25519KeyPair): GenesisService[];
  /** The ingest services the gateway settles on, and which owns each device kind. */
  services(): { all: IngestService[]; ofKind(kind: string): IngestService };
}

export function registerStartCommand(program: Command, wiring: StartWiring): void {
  program
    .command("start")
    .description("run the embedded node and the gateway: MQTT in, JAM settlement, receipts out")
    .option("--data-dir <dir>", "node, gateway log, operator token and gateway key live here", DEFAULT_GATEWAY_DATA_DIR)
    .option("--host <host>", "address the MQTT, HTTP and RPC servers listen on", "127.0.0.1")
    .option("--mqtt-port <port>", "MQTT over TCP", integerIn(0, 65_535), 1883)
    .option("--ws-port <port>", "MQTT over WebSocket", integerIn(0, 65_535), 8883)
    .option("--http-port <port>", "HTTP API: registration, /metrics", integerIn(0, 65_535), 8080)
    .option("--rpc-port <port>", "the embedded node's JIP-2 WebSocket", integerIn(0, 65_535), 19800)
    .option("--slot-ms <ms>", "slot period of the embedded node", integerIn(10, 3_600_000), 6000)
    .addOption(new Option("--chain <name>", "chain spec of the embedded node").choices(["tiny", "full"]).default("tiny"))
    .option("--batch-ms <ms>", "how long envelopes wait to fill a work package", integerIn(1, 60_000), 200)
    .option("--influx-url <url>", "also write accepted readings to InfluxDB 1.x, e.g. http://127.0.0.1:8086")
    .option("--node <url>", "use a remote node over JIP-2 WebSocket instead of the embedded one")
    .action(async (options: StartOptions) => {
      const root = pino({ base: undefined });
      const log = root.child({ component: "jamgate" });
      mkdirSync(options.dataDir, { recursive: true });
      const operatorToken = operatorTokenOf(options.dataDir);
      const gatewayKey = gatewayKeyOf(options.dataDir);
      const params = chainParams(options.chain);
      let api: NodeApi;
      let node: JamNode | null = null;
      let rpc: { port: number; close(): Promise<void> } | null = null;
      if (options.node !== undefined) {
        api = await RpcClient.connect(options.node);
        log.info({ node: options.node, gatewayKey: toHex(gatewayKey.publicKey) }, "using a remote node: its services must authorize this gateway key");
      } else {
        node = await JamNode.open({
          dataDir: join(options.dataDir, "node"),
          chain: options.chain,
          slotMs: options.slotMs,
          services: wiring.genesis(gatewayKey),
          daRetentionSlots: DEFAULT_RETENTION_SLOTS,
          daMaxBytes: DEFAULT_DA_MAX_BYTES,
          logger: root.child({ component: "node" }),
        });
        rpc = await startRpcServer(node, { port: options.rpcPort, host: options.host, log: root.child({ component: "rpc" }) });
        node.start();
        api = node;
      }
      const influx = options.influxUrl === undefined ? null : new InfluxWriter({ url: options.influxUrl, log: root.child({ component: "influx" }) });
      influx?.start();
      const { all, ofKind } = wiring.services();
      const gateway = new Gateway({
        dataDir: options.dataDir,
        api,
        params,
        signer: gatewayKey,
        operatorToken,
        services: all,
        serviceOfKind: ofKind,
        host: options.host,
        mqttPort: options.mqttPort,
        wsPort: options.wsPort,
        batchDeadlineMs: options.batchMs,
        influx,
        logger: root.child({ component: "gateway" }),
      });
      await gateway.start();
      const registrations = new Registrations(api, params, gatewayKey, gateway.registry, (kind) => ofKind(kind));
      const http = buildHttp({ operatorToken, registrations, metrics: gateway.metrics, count: () => {} });
      await http.listen({ port: options.httpPort, host: options.host });
      const httpPort = (http.server.address() as { port: number }).port;
      log.info(
        { dataDir: options.dataDir, mqtt: `mqtt://${options.host}:${gateway.mqttPort}`, ws: `ws://${options.host}:${gateway.wsPort}`, http: `http://${options.host}:${httpPort}`, rpc: rpc === null ? options.node : `ws://${options.host}:${rpc.port}`, operatorToken: join(options.dataDir, "operator-token") },
        "jamgate started",
      );
      runUntilSignal(log, async () => {
        await http.close();
        await gateway.stop();
        await influx?.stop();
        await rpc?.close();
        await node?.stop();
        if (api instanceof RpcClient) api.close();
      });
    });
}
