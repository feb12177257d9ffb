/**
 * The embedded stack: a node (or a remote one over JIP-2), the gateway and its HTTP API, wired
 * as `jamgate start` runs them. `jamgate sim energy` starts one for itself with its own genesis.
 */
import { join } from "node:path";
import type { Logger } from "pino";
import { DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "../node/availability/availability.ts";
import type { NodeApi } from "../node/api.ts";
import type { GenesisService } from "../node/chain/genesis.ts";
import { chainParams, type ChainName } from "../node/chain/params.ts";
import { toHex } from "../node/codec/jam.ts";
import type { Ed25519KeyPair } from "../node/crypto/ed25519.ts";
import { JamgateError } from "../node/errors.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { DataDirLock, makePrivateDir } from "../node/storage/data-dir.ts";
import { NodeThread } from "../node/thread/host.ts";
import { lowerOtherThreads } from "../node/thread/priority.ts";
import { gatewayKeyOf, operatorTokenOf } from "./secrets.ts";
import { Gateway } from "./gateway.ts";
import { buildHttp } from "./http.ts";
import { InfluxWriter } from "./influx/writer.ts";
import type { DeviceKind, IngestService } from "./ingest-service.ts";
import { Registrations } from "./registration.ts";

export interface StackWiring {
  /** Genesis services of the embedded node, given the gateway's key and the stack's options. */
  genesis(gatewayKey: Ed25519KeyPair, options: { readonly dataDir: string; readonly slotMs: number }): GenesisService[];
  /** The ingest services the gateway settles on (read from the node's state where they need it). */
  services(api: NodeApi): Promise<readonly IngestService[]>;
  /** The service a device of `kind` registers with when the request names none. */
  defaultServiceOf(kind: DeviceKind): string;
}

export interface StackOptions {
  readonly dataDir: string;
  readonly host: string;
  readonly mqttPort: number;
  readonly wsPort: number;
  readonly httpPort: number;
  /** The embedded node's JIP-2 port; null: no RPC server. */
  readonly rpcPort: number | null;
  readonly slotMs: number;
  readonly chain: ChainName;
  readonly batchMs: number;
  readonly influxUrl?: string;
  /** A remote node's JIP-2 WebSocket URL instead of the embedded node. */
  readonly node?: string;
  /**
   * Run the embedded node's threads (blocks, intake, refine) ahead of the rest of the process
   * (node/thread/priority.ts; Linux). Default false: it changes the whole process's threads, so
   * only the process's owner (`jamgate start`, the benchmarks) asks for it.
   */
  readonly nodeFirst?: boolean;
  readonly logger: Logger;
}

export interface Stack {
  readonly api: NodeApi;
  /** The embedded node (on its own thread), or null with a remote one. */
  readonly node: NodeThread | null;
  readonly gateway: Gateway;
  readonly registrations: Registrations;
  readonly services: readonly IngestService[];
  readonly operatorToken: string;
  readonly mqttUrl: string;
  readonly httpUrl: string;
  readonly rpcUrl: string | null;
  stop(): Promise<void>;
}

/**
 * A listen error (a port taken, or below 1024 without the right) as JG_ERR_PORT_IN_USE naming
 * the flag, so `jamgate start` says which port instead of dying with a stack; others unchanged.
 */
function portError(e: unknown, options: StackOptions): unknown {
  const { code, port, message } = e as { code?: unknown; port?: unknown; message?: unknown };
  if (code !== "EADDRINUSE" && code !== "EACCES") return e;
  const text = String(message);
  const flags: [string, number | null][] = [
    ["--mqtt-port", options.mqttPort],
    ["--ws-port", options.wsPort],
    ["--http-port", options.httpPort],
    ["--rpc-port", options.rpcPort],
  ];
  const flag = flags.find(([, p]) => p !== null && p !== 0 && (p === port || text.endsWith(`:${p}`)))?.[0] ?? "a port";
  return new JamgateError("JG_ERR_PORT_IN_USE", `${flag}: ${text}`);
}

export async function startStack(options: StackOptions, wiring: StackWiring): Promise<Stack> {
  // What started so far, stopped in reverse if a later part fails (a port taken, say).
  const cleanup: (() => Promise<void>)[] = [];
  try {
    return await startParts(options, wiring, cleanup);
  } catch (e) {
    for (const stop of cleanup.reverse()) await stop().catch(() => undefined);
    throw portError(e, options);
  }
}

async function startParts(options: StackOptions, wiring: StackWiring, cleanup: (() => Promise<void>)[]): Promise<Stack> {
  const root = options.logger;
  const log = root.child({ component: "jamgate" });
  // One process per data dir, before anything in it is opened: a second one is refused
  // (JG_ERR_DATA_DIR_LOCKED, naming this one's pid) instead of writing into the same stores.
  const { tightenedFrom } = makePrivateDir(options.dataDir);
  if (tightenedFrom !== null) log.info({ dataDir: options.dataDir, mode: tightenedFrom.toString(8) }, "the data dir was open to other users: made it private (0700)");
  const lock = DataDirLock.acquire(options.dataDir);
  cleanup.push(async () => lock.release());
  const operatorToken = operatorTokenOf(options.dataDir);
  const gatewayKey = gatewayKeyOf(options.dataDir);
  const params = chainParams(options.chain);
  let api: NodeApi;
  let node: NodeThread | null = null;
  if (options.node !== undefined) {
    const client = await RpcClient.connect(options.node);
    api = client;
    cleanup.push(async () => client.close());
    log.info({ node: options.node, gatewayKey: toHex(gatewayKey.publicKey) }, "using a remote node: its services must authorize this gateway key");
  } else {
    node = await NodeThread.open(
      {
        dataDir: join(options.dataDir, "node"),
        chain: options.chain,
        slotMs: options.slotMs,
        services: wiring.genesis(gatewayKey, { dataDir: options.dataDir, slotMs: options.slotMs }),
        daRetentionSlots: DEFAULT_RETENTION_SLOTS,
        daMaxBytes: DEFAULT_DA_MAX_BYTES,
        ...(options.rpcPort === null ? {} : { rpc: { port: options.rpcPort, host: options.host } }),
      },
      {
        logger: root.child({ component: "node" }),
        // Without its node the stack accepts envelopes it can never settle: end the process (a
        // supervisor restarts it; the log keeps what was accepted).
        onExit: (error) => {
          log.fatal({ err: error }, "the node thread ended");
          setImmediate(() => {
            throw error;
          });
        },
      },
    );
    api = node;
    const started = node;
    cleanup.push(() => started.stop());
  }
  const services = await wiring.services(api);
  const byName = new Map(services.map((s) => [s.name, s]));
  const serviceFor = (kind: DeviceKind, name: string = wiring.defaultServiceOf(kind)): IngestService | null => {
    const service = byName.get(name);
    return service !== undefined && service.kinds.includes(kind) ? service : null;
  };
  const influx = options.influxUrl === undefined ? null : new InfluxWriter({ url: options.influxUrl, log: root.child({ component: "influx" }) });
  influx?.start();
  if (influx !== null) cleanup.push(() => influx.stop());
  const gateway = new Gateway({
    dataDir: options.dataDir,
    api,
    params,
    signer: gatewayKey,
    operatorToken,
    services,
    host: options.host,
    mqttPort: options.mqttPort,
    wsPort: options.wsPort,
    batchDeadlineMs: options.batchMs,
    influx,
    logger: root.child({ component: "gateway" }),
  });
  cleanup.push(() => gateway.stop());
  await gateway.start();
  const registrations = new Registrations(api, params, gatewayKey, gateway.registry, serviceFor);
  const http = buildHttp({ operatorToken, registrations, metrics: gateway.metrics, count: () => {} });
  cleanup.push(() => http.close());
  await http.listen({ port: options.httpPort, host: options.host });
  const httpPort = (http.server.address() as { port: number }).port;
  const mqttUrl = `mqtt://${options.host}:${gateway.mqttPort}`;
  const httpUrl = `http://${options.host}:${httpPort}`;
  const rpcUrl = node?.rpcPort != null ? `ws://${options.host}:${node.rpcPort}` : (options.node ?? null);
  // Last, so the threads the gateway and HTTP server started are among those lowered.
  if (options.nodeFirst === true && node !== null) {
    const { lowered, nice } = lowerOtherThreads(node.threadIds);
    if (nice === null) log.info("thread priorities are not available here: the node's threads share the CPU evenly with the gateway's");
    else log.info({ threads: lowered, nice, nodeThreads: node.threadIds.length }, "the gateway's threads run behind the node's");
  }
  log.info(
    { dataDir: options.dataDir, mqtt: mqttUrl, ws: `ws://${options.host}:${gateway.wsPort}`, http: httpUrl, rpc: rpcUrl, services: services.map((s) => `${s.name}:${s.serviceId}`), operatorToken: join(options.dataDir, "operator-token") },
    "jamgate started",
  );
  return {
    api,
    node,
    gateway,
    registrations,
    services,
    operatorToken,
    mqttUrl,
    httpUrl,
    rpcUrl,
    async stop() {
      await http.close();
      await gateway.stop();
      await influx?.stop();
      await node?.stop();
      if (api instanceof RpcClient) api.close();
      lock.release();
    },
  };
}
