/**
 * The embedded stack: a node (or a remote one over JIP-2), the gateway and its HTTP API, wired
 * as `jamgate start` runs them. `jamgate sim energy` starts one for itself with its own genesis.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "../node/availability/availability.ts";
import type { NodeApi } from "../node/api.ts";
import type { GenesisService } from "../node/chain/genesis.ts";
import { chainParams, type ChainName } from "../node/chain/params.ts";
import { toHex } from "../node/codec/jam.ts";
import type { Ed25519KeyPair } from "../node/crypto/ed25519.ts";
import { JamgateError } from "../devices/protocol/errors.ts";
import { isLoopback, type TlsMaterial } from "../node/net/servers.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { DataDirLock, makePrivateDir } from "../node/storage/data-dir.ts";
import { endProcessOnExit, NodeThread } from "../node/thread/host.ts";
import { lowerOtherThreads } from "../node/thread/priority.ts";
import { gatewayKeyOf, operatorTokenOf } from "./secrets.ts";
import type { Cluster, ClusterUrl } from "./cluster/index.ts";
import { fdLimitWarning, openFilesSoftLimit } from "./fd-limit.ts";
import { Gateway, gatewayLimits } from "./gateway.ts";
import { DEFAULT_CURRENCY_LABEL } from "./dashboard/currency.ts";
import { registerDashboard } from "./dashboard/serve.ts";
import { buildHttp } from "./http.ts";
import { InfluxWriter } from "./influx/writer.ts";
import type { DeviceKind } from "../devices/protocol/device-kinds.ts";
import type { IngestService } from "./ingest-service.ts";
import { Prover } from "./ledger/prover.ts";
import { RadiusAccounting } from "./radius/server.ts";
import type { LedgerReader } from "./ledger/types.ts";
import { Registrations } from "./registration.ts";
import { radiusKeysIn } from "./wifi/service-backend.ts";

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
  /** Address the MQTT and HTTP servers listen on. */
  readonly host: string;
  /** Plain MQTT over TCP; null: none (with TLS, `--no-plaintext`). */
  readonly mqttPort: number | null;
  /** Plain MQTT over WebSocket; null: none. */
  readonly wsPort: number | null;
  readonly httpPort: number;
  /** The embedded node's JIP-2 port; null: no RPC server. */
  readonly rpcPort: number | null;
  /** Address the RPC server listens on: its own, loopback unless asked, whatever `host` is. */
  readonly rpcHost?: string;
  /**
   * Certificate and key: with them MQTT over TLS (`mqttsPort`) and WebSocket over TLS (`wssPort`)
   * listen, and the HTTP API and the RPC serve HTTPS and wss:// on their ports.
   */
  readonly tls?: TlsMaterial | null;
  readonly mqttsPort?: number | null;
  readonly wssPort?: number | null;
  /** A remote node's RPC token (its data dir's `rpc-token`), with `node`: needed to submit. */
  readonly nodeToken?: string;
  /** CA certificate(s) to trust for a `wss://` remote node. */
  readonly nodeCa?: Buffer;
  readonly slotMs: number;
  readonly chain: ChainName;
  readonly batchMs: number;
  /** MQTT connections held at once (`--connections-max`; default gatewayLimits.connectionsMax); warned about at start when the open-file limit cannot hold it (fd-limit.ts). */
  readonly connectionsMax?: number;
  readonly influxUrl?: string;
  /** The InfluxDB writer's flush interval (default DEFAULT_FLUSH_INTERVAL_MS, influx/writer.ts); tests set it long so only a flush writes. */
  readonly influxFlushIntervalMs?: number;
  /** A remote node's JIP-2 WebSocket URL instead of the embedded node. */
  readonly node?: string;
  /** One of several gateways sharing this Redis (`--cluster`, docs/cluster.md); absent: a gateway on its own, no Redis. */
  readonly cluster?: ClusterUrl;
  /** The cluster's Redis password (`--cluster-password-file`). */
  readonly clusterPassword?: string;
  /**
   * Run the embedded node's threads (blocks, intake, refine) ahead of the rest of the process
   * (node/thread/priority.ts; Linux). Default false: it changes the whole process's threads, so
   * only the process's owner (`jamgate start`, the benchmarks) asks for it.
   */
  readonly nodeFirst?: boolean;
  /** The currency label the dashboard shows after amounts and prices (default "EUR"). */
  readonly currency?: string;
  /** Slots whose blocks, packages and receipts the ledger index keeps (`--ledger-retention-slots`; default ledgerIndexLimits.retentionSlots). */
  readonly ledgerRetentionSlots?: number;
  /** RADIUS accounting over UDP on `host` (gateway/radius/); 0: a free port; null or absent: none. */
  readonly radiusPort?: number | null;
  /**
   * `radiusPort` is the default, not asked for: if it cannot be bound (taken by another RADIUS server, or
   * another gateway has it) the stack starts without RADIUS and logs why, instead of failing.
   */
  readonly radiusPortIsDefault?: boolean;
  readonly logger: Logger;
}

export interface Stack {
  readonly api: NodeApi;
  /** The embedded node (on its own thread), or null with a remote one. */
  readonly node: NodeThread | null;
  readonly gateway: Gateway;
  /** The gateway's cluster (its Redis connections), or null for a gateway on its own. */
  readonly cluster: Cluster | null;
  /** The RADIUS accounting listener, or null when none listens. */
  readonly radius: RadiusAccounting | null;
  readonly registrations: Registrations;
  readonly services: readonly IngestService[];
  /** The settlement ledger's read side (the gateway's index, ledger/index.ts). */
  readonly ledger: LedgerReader;
  readonly operatorToken: string;
  /** The first of mqtt:// and mqtts:// that listens. */
  readonly mqttUrl: string;
  /** MQTT over TLS, when it listens. */
  readonly mqttsUrl: string | null;
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
  const flags: [string, number | null | undefined][] = [
    ["--mqtt-port", options.mqttPort],
    ["--ws-port", options.wsPort],
    ["--http-port", options.httpPort],
    ["--rpc-port", options.rpcPort],
    ["--radius-port", options.radiusPort],
    ["--mqtts-port", options.tls == null ? null : options.mqttsPort],
    ["--wss-port", options.tls == null ? null : options.wssPort],
  ];
  const flag = flags.find(([, p]) => p != null && p !== 0 && (p === port || text.endsWith(`:${p}`)))?.[0] ?? "a port";
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
  if (tightenedFrom !== null)
    log.info({ dataDir: options.dataDir, mode: tightenedFrom.toString(8) }, "the data dir was open to other users: made it private (0700)");
  const lock = DataDirLock.acquire(options.dataDir);
  cleanup.push(async () => lock.release());
  // Before anything is opened: a data dir that holds a chain (or, with a remote node, a gateway log) is resumed.
  const resumed = existsSync(join(options.dataDir, options.node === undefined ? "node" : "gateway-log"));
  const operatorToken = operatorTokenOf(options.dataDir);
  const gatewayKey = gatewayKeyOf(options.dataDir);
  const params = chainParams(options.chain);
  // First of what the stack connects to, so a Redis that does not answer fails the start at once
  // (JG_ERR_CLUSTER_UNREACHABLE), before a node is opened; the gateway's broker routes and keeps
  // its sessions through it.
  let cluster: Cluster | null = null;
  if (options.cluster !== undefined) {
    const { Cluster } = await import("./cluster/index.ts");
    const connected = await Cluster.connect({
      url: options.cluster,
      ...(options.clusterPassword === undefined ? {} : { password: options.clusterPassword }),
      logger: root.child({ component: "cluster" }),
      // Its place among the cluster's gateways, which split the node's cores (cluster/members.ts).
      memberId: toHex(gatewayKey.publicKey),
    });
    cluster = connected;
    cleanup.push(() => connected.close());
  }
  let api: NodeApi;
  let node: NodeThread | null = null;
  if (options.node !== undefined) {
    const client = await RpcClient.connect(options.node, {
      ...(options.nodeToken === undefined ? {} : { token: options.nodeToken }),
      ...(options.nodeCa === undefined ? {} : { ca: options.nodeCa }),
    });
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
        // State-changing RPC methods take the operator token; reads stay open on loopback only.
        ...(options.rpcPort === null
          ? {}
          : { rpc: { port: options.rpcPort, host: options.rpcHost ?? "127.0.0.1", token: operatorToken, tls: options.tls ?? null } }),
      },
      {
        logger: root.child({ component: "node" }),
        // Without its node the stack accepts envelopes it can never settle: end the process (a
        // supervisor restarts it; the log keeps what was accepted).
        onExit: endProcessOnExit(log),
      },
    );
    api = node;
    const started = node;
    cleanup.push(() => started.stop());
  }
  // Read now, as the node opens (its first block of this run comes a slot later): where the chain stood at the start.
  const startBlock = await api.bestBlock();
  const services = await wiring.services(api);
  const byName = new Map(services.map((s) => [s.name, s]));
  const serviceFor = (kind: DeviceKind, name: string = wiring.defaultServiceOf(kind)): IngestService | null => {
    const service = byName.get(name);
    return service?.kinds.includes(kind) ? service : null;
  };
  const influx =
    options.influxUrl === undefined
      ? null
      : new InfluxWriter({
          url: options.influxUrl,
          ...(options.influxFlushIntervalMs === undefined ? {} : { flushIntervalMs: options.influxFlushIntervalMs }),
          log: root.child({ component: "influx" }),
        });
  influx?.start();
  if (influx !== null) cleanup.push(() => influx.stop());
  const connectionsMax = options.connectionsMax ?? gatewayLimits.connectionsMax;
  const fdWarning = fdLimitWarning(connectionsMax, openFilesSoftLimit());
  if (fdWarning !== null) log.warn(fdWarning.fields, fdWarning.message);
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
    tls: options.tls ?? null,
    mqttsPort: options.tls == null ? null : (options.mqttsPort ?? null),
    wssPort: options.tls == null ? null : (options.wssPort ?? null),
    batchDeadlineMs: options.batchMs,
    limits: { connectionsMax },
    ...(options.ledgerRetentionSlots === undefined ? {} : { ledgerRetentionSlots: options.ledgerRetentionSlots }),
    influx,
    cluster,
    logger: root.child({ component: "gateway" }),
  });
  cleanup.push(() => gateway.stop());
  await gateway.start();
  await logStartingPoint(log, { resumed, remote: options.node !== undefined, best: startBlock, gateway });
  const radius = await startRadius(options, gateway, log);
  if (radius !== null) cleanup.push(() => radius.close());
  const registrations = new Registrations(api, params, gatewayKey, gateway.registry, serviceFor, gateway.ledger, root.child({ component: "registration" }));
  const http = buildHttp({
    operatorToken,
    registrations,
    metrics: gateway.metrics,
    count: (code) => gateway.metrics.httpRefused.inc({ code }),
    events: { onClients: (n) => gateway.metrics.eventStreams.set(n) },
    ledger: gateway.ledger,
    prover: new Prover({ api, reader: gateway.ledger, chain: options.chain, services }),
    // The Wi-Fi routes' RADIUS routers' files, and control messages to routers (wifi/control.ts).
    wifiHost: { radius: radiusKeysIn(options.dataDir), publishControl: (id, payload) => gateway.publishControl(id, payload), logger: log },
    dashboard: (app) => registerDashboard(app, { currency: options.currency ?? DEFAULT_CURRENCY_LABEL, coresCount: params.coresCount }),
    tls: options.tls ?? null,
    logger: root.child({ component: "http" }),
  });
  cleanup.push(() => http.close());
  await http.listen({ port: options.httpPort, host: options.host });
  const httpPort = (http.server.address() as { port: number }).port;
  const tls = options.tls != null;
  const mqttsUrl = gateway.mqttsPort === null ? null : `mqtts://${options.host}:${gateway.mqttsPort}`;
  const mqttUrl = options.mqttPort !== null ? `mqtt://${options.host}:${gateway.mqttPort}` : (mqttsUrl ?? "");
  const httpUrl = `${tls ? "https" : "http"}://${options.host}:${httpPort}`;
  const rpcUrl = node?.rpcPort != null ? `${tls ? "wss" : "ws"}://${options.rpcHost ?? "127.0.0.1"}:${node.rpcPort}` : (options.node ?? null);
  if (!isLoopback(options.host) && (options.mqttPort !== null || options.wsPort !== null)) {
    log.warn(
      { host: options.host },
      tls
        ? "plain MQTT and WebSocket listen beside TLS on a non-loopback address: a device that uses them sends its token in clear (--no-plaintext turns them off)"
        : "MQTT and HTTP listen on a non-loopback address without TLS: device and operator tokens travel in clear (--tls-cert, --tls-key)",
    );
  }
  // Last, so the threads the gateway and HTTP server started are among those lowered.
  if (options.nodeFirst === true && node !== null) {
    const { lowered, nice, nodeNice } = lowerOtherThreads(node.threadIds);
    if (nice === null) log.info("thread priorities are not available here: the node's threads share the CPU evenly with the gateway's");
    else
      log.info(
        { threads: lowered, nice, nodeNice, nodeThreads: node.threadIds.length },
        `gateway and node threads: the node's block and refine threads run at a higher priority (nice ${nodeNice} vs ${nice > 0 ? "+" : ""}${nice}) so blocks are not delayed by MQTT load; --no-node-first turns this off`,
      );
  }
  log.info(
    {
      dataDir: options.dataDir,
      mqtt: options.mqttPort === null ? null : `mqtt://${options.host}:${gateway.mqttPort}`,
      mqtts: mqttsUrl,
      ws: gateway.wsPort === null ? null : `ws://${options.host}:${gateway.wsPort}`,
      wss: gateway.wssPort === null ? null : `wss://${options.host}:${gateway.wssPort}`,
      http: httpUrl,
      rpc: rpcUrl,
      radius: radius === null ? null : `udp://${options.host}:${radius.port}`,
      services: services.map((s) => `${s.name}:${s.serviceId}`),
      operatorToken: join(options.dataDir, "operator-token"),
      ...(cluster === null ? {} : { cluster: cluster.url.text }),
    },
    "jamgate started",
  );
  return {
    api,
    node,
    gateway,
    cluster,
    radius,
    registrations,
    services,
    ledger: gateway.ledger,
    operatorToken,
    mqttUrl,
    mqttsUrl,
    httpUrl,
    rpcUrl,
    async stop() {
      await http.close();
      await radius?.close();
      await gateway.stop();
      // After the broker: its last receipts went out through the cluster.
      await cluster?.close();
      // The readings accepted since the writer's last timed flush are written, not left in its buffer.
      // Bounded: the request in flight, then one write round that ends at its first failed request
      // (each at most DEFAULT_REQUEST_TIMEOUT_MS, 10 s; docs/jamgate.service's TimeoutStopSec=30 covers both).
      await influx?.flush();
      await influx?.stop();
      await node?.stop();
      if (api instanceof RpcClient) api.close();
      lock.release();
    },
  };
}

/**
 * The line that says where a start begins: "resumed at slot N" (the best block when the node
 * opened, the envelopes the durable log still holds for settlement, the devices the ledger index
 * knows) or, on a new data dir, "new chain at genesis" (with a remote node: its best block).
 */
async function logStartingPoint(
  log: Logger,
  start: {
    readonly resumed: boolean;
    readonly remote: boolean;
    readonly best: { readonly slot: number; readonly headerHash: Uint8Array };
    readonly gateway: Gateway;
  },
): Promise<void> {
  const { slot } = start.best;
  const hash = toHex(start.best.headerHash).slice(0, 16);
  if (!start.resumed) {
    if (start.remote) log.info({ slot, hash }, `new data dir on a remote node at slot ${slot}`);
    else log.info({ slot, hash }, "new chain at genesis");
    return;
  }
  const devices = (await start.gateway.ledger.services()).reduce((n, s) => n + s.devices, 0);
  log.info({ slot, hash, pendingEnvelopes: start.gateway.log.count, devices }, `resumed at slot ${slot}`);
}

/** The RADIUS accounting listener, its usage taken by the gateway's accept path; null when it is off, or its default port cannot be bound. */
async function startRadius(options: StackOptions, gateway: Gateway, log: Logger): Promise<RadiusAccounting | null> {
  if (options.radiusPort == null) return null;
  const radius = new RadiusAccounting({
    dataDir: options.dataDir,
    accept: (id, kind, envelope) => gateway.acceptOwn(id, kind, envelope),
    registry: gateway.metrics.registry,
    logger: options.logger.child({ component: "radius" }),
  });
  try {
    await radius.listen(options.radiusPort, options.host);
    return radius;
  } catch (e) {
    await radius.close();
    const code = (e as { code?: unknown }).code;
    if (options.radiusPortIsDefault !== true || (code !== "EACCES" && code !== "EADDRINUSE")) throw e;
    log.warn(
      { port: options.radiusPort, err: String(e) },
      "RADIUS accounting is off: its default port cannot be bound (another RADIUS server on this host?; --radius-port N picks another, 0 turns it off)",
    );
    return null;
  }
}
