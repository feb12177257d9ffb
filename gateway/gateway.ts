/**
 * The gateway: the embedded MQTT broker, device identity and access control, durable acceptance,
 * settlement on the node, receipts, the HTTP API (registration, metrics) and InfluxDB. It talks
 * to the node only through the JIP-2-shaped NodeApi, in-process or over WebSocket.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { AedesPublishPacket, AuthenticateError, Client, PublishPacket } from "aedes";
import { type DeviceId, decodeBody, tryAsDeviceId } from "../devices/envelope.ts";
import { parseMqttPassword, TOKEN_LIFETIME_MAX_MS } from "../devices/keys.ts";
import { type DownChannel, downTopic, encodeDeviceError, encodeReceipts, parseUpTopic } from "../devices/messages.ts";
import type { NodeApi } from "../node/api.ts";
import type { ChainParams } from "../node/chain/params.ts";
import { type Ed25519KeyPair, verifyEd25519 } from "../node/crypto/ed25519.ts";
import type { ErrorCode } from "../devices/protocol/errors.ts";
import { judgeEnvelope } from "./accept.ts";
import { type Broker, type BrokerCluster, type BrokerHooks, connectionFactsOf, startBroker } from "./broker.ts";
import type { InfluxWriter } from "./influx/writer.ts";
import { READINGS_PER_ENVELOPE_MAX, readingsToPoints } from "./influx/readings.ts";
import { type IngestService, settledWindowOfDevice } from "./ingest-service.ts";
import { learnedWindow } from "./cluster/windows.ts";
import { LedgerIndex } from "./ledger/index.ts";
import { LedgerIndexer } from "./ledger/indexer.ts";
import { DurableLog, type LogEntry } from "./log.ts";
import { LineLimiter } from "./log-lines.ts";
import { GatewayMetrics } from "./metrics.ts";
import { type BucketLimit, RateLimiter } from "./rate-limit.ts";
import { DeviceRegistry, type RegistryEntry } from "./registry.ts";
import { type DeviceNotice, Settlement } from "./settlement/index.ts";
import { acceptSeq, EMPTY_WINDOW, type SeqWindow } from "./window.ts";
import { type ServerLimits, type TlsMaterial, tokensMatch } from "../node/net/servers.ts";
import type { MqttTransport, PacketLimits } from "./packet-bounds.ts";
import { SEQ_WINDOW_SEQS } from "../devices/protocol/seq-window.ts";

/**
 * Receipt and error messages handed to the broker and not yet written to their device's socket:
 * a second of envelopes at the target rate (5,000/s), and more since a receipt message covers a
 * device's envelopes in one package (~2.5 each at that rate), handed over once per turn of the event
 * loop as room frees up, so sockets are read in between (~15 µs each: ≤ ~75 ms a turn). Each one
 * completes when written, when its socket drains, or at the drain timeout (aedes cuts the slow
 * client then), so the room always comes back. This bounds what aedes routes for the gateway, now
 * that aedes's own queue is off (brokerLimits.concurrency). A per-turn batch of 500 starved
 * receipts when the thread was saturated, as a turn then takes ~1–2 s (measured,
 * bench/gateway.ts --rate 5000: receipts came 500 a second while packages were accumulated).
 */
const DOWNLINK_IN_FLIGHT_MAX = 5_000;
/** How long stop() waits for queued receipts and errors to be written before it closes the broker (their entries are out of the log already). */
const DOWNLINK_DRAIN_ON_STOP_MS = 2_000;

export interface GatewayLimits {
  readonly connectionsMax: number;
  readonly connectsPerIp: BucketLimit;
  readonly connectsPerDevice: BucketLimit;
}

export const gatewayLimits: GatewayLimits = {
  /** MQTT sockets open at once, on every listener, counted as they are accepted: the target is 10,000 idle devices; twice that before CONNACK 3. `jamgate start --connections-max` sets it (each is a file descriptor: fd-limit.ts). */
  connectionsMax: 20_000,
  /** Sockets accepted per second per IP address (burst 200), counted before a byte is read: a whole site behind one NAT may reconnect at once. */
  connectsPerIp: { perSecond: 50, burst: 200 },
  /** CONNECTs per second per device id (burst 5): a device reconnecting in a loop is slowed, not served. */
  connectsPerDevice: { perSecond: 1, burst: 5 },
};

export interface GatewayOptions {
  readonly dataDir: string;
  readonly api: NodeApi;
  readonly params: ChainParams;
  /** The key the gateway signs work packages with (authorized for its services at genesis). */
  readonly signer: Ed25519KeyPair;
  readonly operatorToken: string;
  /** Services by device kind they own, and all of them by id. */
  readonly services: readonly IngestService[];
  readonly host?: string;
  /** Plain MQTT over TCP; null for none. */
  readonly mqttPort?: number | null;
  /** Plain MQTT over WebSocket; null (the default) for none. */
  readonly wsPort?: number | null;
  /** Certificate and key of the TLS listeners (and the CA of devices' client certificates). */
  readonly tls?: TlsMaterial | null;
  /** MQTT over TLS, with `tls`; null (the default) for none. */
  readonly mqttsPort?: number | null;
  /** MQTT over WebSocket over TLS, with `tls`; null (the default) for none. */
  readonly wssPort?: number | null;
  readonly batchDeadlineMs?: number;
  /** Settlement's packing rule (settlement/index.ts SettlementDeps.packing): "aligned" by default. */
  readonly packing?: "aligned" | "deadline";
  readonly influx?: InfluxWriter | null;
  /** Overrides of the connection limits (tests use small ones). */
  readonly limits?: Partial<GatewayLimits> & {
    readonly drainTimeoutMs?: number;
    readonly sessionQueueMax?: number;
    readonly packets?: PacketLimits;
    readonly servers?: Partial<ServerLimits>;
  };
  /**
   * Verify each envelope's Ed25519 signature before its PUBACK too. Default false: the service's
   * refine verifies every signature before anything is credited, on the node's cores, and refuses
   * a bad one with JG_ERR_ENVELOPE_SIGNATURE after settlement (gateway/README.md, "Signatures").
   */
  readonly verifySignaturesBeforePuback?: boolean;
  /** Slots whose blocks, packages and receipts the ledger index keeps (ledger/index.ts ledgerIndexLimits.retentionSlots by default: 7 days of 6-second slots). */
  readonly ledgerRetentionSlots?: number;
  /** One of several gateways sharing Redis and one node (docs/cluster.md); null or absent: a gateway on its own. */
  readonly cluster?: GatewayCluster | null;
  readonly now?: () => number;
  readonly logger?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

/**
 * The gateway's part in a cluster of gateways (`--cluster`, cluster/index.ts Cluster): aedes'
 * routing and sessions, whether Redis is reachable, and the seqs the cluster's gateways logged.
 */
export interface GatewayCluster extends BrokerCluster {
  /** Redis is reachable: a new MQTT session may open (its session lives there). */
  readonly available: boolean;
  /** This gateway's share of the node's `coresCount` cores, which it packs for a block at `slot` (cluster/members.ts); null: every core; empty: none (another gateway's turn). */
  packingCores?(coresCount: number, slot: number | null): readonly number[] | null;
  readonly windows: {
    /** Notes a seq this gateway logged, for the others (sent after the write, never before a PUBACK). */
    add(deviceId: string, seq: number): void;
    /** The seqs the cluster's gateways logged for a device, as far as Redis knows (empty: none known, or no answer in time). */
    seqsOf(deviceId: string): Promise<number[]>;
  };
}

/** Who a connection is; a device authenticated by a token has it until the token's expiry (null: by a client certificate). */
type Session = { readonly role: "operator" } | { readonly role: "device"; readonly device: RegistryEntry; readonly expiresAtMs: number | null };

/** The operator's own client ids: "operator", or "operator-" and a label (one per tool, so two never take each other's session). */
const OPERATOR_CLIENT_ID = /^operator(-[A-Za-z0-9_.-]{1,64})?$/;

class CodedMqttError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly returnCode?: number,
  ) {
    super(`${code}: ${detail}`);
  }
}

/**
 * How a client reached the broker, for its lines: MQTT over TCP (`mqtt`) or TLS (`mqtts`), or over
 * WebSocket (`ws`, `wss`), as the listener that accepted it said (broker.ts `factsOf`).
 */
function protocolOf(client: Client): MqttTransport {
  return connectionFactsOf(client).transport;
}

export class Gateway {
  readonly metrics = new GatewayMetrics();
  readonly registry: DeviceRegistry;
  readonly log: DurableLog;
  readonly settlement: Settlement;
  /**
   * The ledger index (`<data-dir>/ledger`, ledger/index.ts): the read side the HTTP API queries,
   * fed by settlement, by registration (the stack passes it to Registrations) and by `indexer`.
   */
  readonly ledger: LedgerIndex;
  /** Follows the node's blocks and the energy market into `ledger`. */
  readonly indexer: LedgerIndexer;
  private broker: Broker | null = null;
  private readonly sessions = new WeakMap<Client, Session>();
  /** Seq windows of devices that published since start (bounded by the registry: only registered devices publish). */
  private readonly windows = new Map<string, SeqWindow>();
  /**
   * Per device since start: the highest seq known to carry the device's own signature, verified
   * before PUBACK or receipted (refine verified it); until there is one, the highest its service
   * had settled when the registry read it from the ledger (RegistryEntry.settledHighestSeq; never a
   * seq only the log holds: a forgery logged before a restart does not count). An envelope more than SEQ_WINDOW_SEQS past it is verified
   * before PUBACK, so a stolen token alone cannot move the device's window (docs/protocol.md,
   * "A leaked token"); below it, envelopes are PUBACKed unverified as before. Bounded as `windows`.
   */
  private readonly signedHighest = new Map<string, number>();
  private readonly perIp: RateLimiter;
  private readonly perDevice: RateLimiter;
  private readonly connectionsMax: number;
  private readonly now: () => number;
  private readonly errorCounts = new Map<string, number>();
  /** Which refusals get a warn line: one per device (or address) and code a minute (log-lines.ts). */
  private readonly refusalLines = new LineLimiter();
  /** Clients connected, by client id, to tell which one a new CONNECT with the same id takes over (bounded by the connection cap). */
  private readonly connected = new Map<string, Client>();
  /** Why the gateway or the broker closed a connection, for its disconnect line; absent: the client closed it or the connection was lost. */
  private readonly closedBecause = new WeakMap<Client, string>();

  constructor(private readonly options: GatewayOptions) {
    this.now = options.now ?? Date.now;
    this.perIp = new RateLimiter(options.limits?.connectsPerIp ?? gatewayLimits.connectsPerIp);
    this.perDevice = new RateLimiter(options.limits?.connectsPerDevice ?? gatewayLimits.connectsPerDevice);
    this.connectionsMax = options.limits?.connectionsMax ?? gatewayLimits.connectionsMax;
    this.log = new DurableLog(join(options.dataDir, "gateway-log"));
    this.registry = new DeviceRegistry(options.api, options.services, this.now);
    this.ledger = new LedgerIndex({
      path: join(options.dataDir, "ledger"),
      services: options.services,
      api: options.api,
      // A device settled before the index saw its registration (a data dir older than the index): the registry's record of it.
      deviceFacts: (id) => {
        const device = this.registry.cached(id);
        return device === null
          ? null
          : { publicKey: device.publicKey, kind: device.kind, serviceId: device.serviceId, settledHighestSeq: device.settledHighestSeq };
      },
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.ledgerRetentionSlots === undefined ? {} : { retention: { retentionSlots: options.ledgerRetentionSlots } }),
    });
    this.indexer = new LedgerIndexer({
      api: options.api,
      params: options.params,
      index: this.ledger,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    this.settlement = new Settlement({
      api: options.api,
      params: options.params,
      log: this.log,
      signer: options.signer,
      services: new Map(options.services.map((s) => [s.serviceId, s])),
      publicKeyOf: (id) => this.registry.cached(id)?.publicKey ?? null,
      notify: (notice) => this.notify(notice),
      batchDeadlineMs: options.batchDeadlineMs ?? 200,
      packing: options.packing ?? "aligned",
      packingCores: (slot) => options.cluster?.packingCores?.(options.params.coresCount, slot) ?? null,
      ledger: this.ledger,
      logger: options.logger,
      observe: {
        packageSubmitted: (serviceId, envelopes, bytes) => {
          this.metrics.packages.inc({ service: String(serviceId) });
          this.metrics.batchEnvelopes.observe(envelopes);
          this.metrics.batchBytes.observe(bytes);
        },
        packageSettled: (envelopes, refused) => {
          this.metrics.settled.inc(envelopes - refused);
          this.metrics.refusedOnChain.inc(refused);
        },
        packageFailed: (code) => this.metrics.packagesFailed.inc({ code }),
        settledLatencyMs: (ms) => this.metrics.settlementSeconds.observe(ms / 1000),
      },
    });
    this.metrics.watchQueues(this.settlement);
    this.metrics.watchInflux(options.influx ?? null);
  }

  get mqttPort(): number {
    return this.broker?.mqttPort ?? 0;
  }

  get wsPort(): number | null {
    return this.broker?.wsPort ?? null;
  }

  get mqttsPort(): number | null {
    return this.broker?.mqttsPort ?? null;
  }

  get wssPort(): number | null {
    return this.broker?.wssPort ?? null;
  }

  /** Coded errors counted since start, by code. */
  errorStats(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.errorCounts);
  }

  async start(): Promise<void> {
    // Devices with logged, unsettled envelopes must be known before their packages are rebuilt.
    for (const entry of this.log.all()) await this.registry.lookup(entry.deviceId);
    await this.settlement.recover();
    this.settlement.start();
    await this.indexer.start();
    this.broker = await startBroker(this.hooks(), {
      host: this.options.host ?? "127.0.0.1",
      mqttPort: this.options.mqttPort === undefined ? 1883 : this.options.mqttPort,
      wsPort: this.options.wsPort ?? null,
      tls: this.options.tls ?? null,
      mqttsPort: this.options.mqttsPort ?? null,
      wssPort: this.options.wssPort ?? null,
      connectionsMax: this.connectionsMax,
      ...(this.options.limits?.packets === undefined ? {} : { packetLimits: this.options.limits.packets }),
      ...(this.options.limits?.servers === undefined ? {} : { serverLimits: this.options.limits.servers }),
      drainTimeoutMs: this.options.limits?.drainTimeoutMs,
      sessionQueueMax: this.options.limits?.sessionQueueMax,
      cluster: this.options.cluster ?? null,
      onSessionQueueFull: (clientId) => {
        this.count("JG_ERR_MQTT_SESSION_QUEUE");
        this.metrics.messagesNotHeld.inc({ code: "JG_ERR_MQTT_SESSION_QUEUE" });
        this.refusalLine("message not held", clientId, "JG_ERR_MQTT_SESSION_QUEUE", {
          clientId,
          detail: "the session's queue of undelivered messages is full: a receipt or error for it is not held (it stays on the ledger)",
        });
      },
    });
    const aedes = this.broker.aedes;
    // With sessions in Redis, aedes reports a failed session write (its wills' sweep) as an 'error'
    // event, which would end the process unheard: a line instead (the next sweep tries again).
    if (this.options.cluster != null)
      (aedes as NodeJS.EventEmitter).on("error", (error: unknown) => this.options.logger?.warn({ err: String(error) }, "session store error (cluster Redis)"));
    // A line per connect and disconnect, at info: a device connects once and stays, so these are
    // rare beside envelopes (which get no line unless refused). `--log-level warn` turns them off.
    aedes.on("client", (client) => {
      this.metrics.connections.set(aedes.connectedClients);
      this.connected.set(client.id, client);
      this.logConnected(client);
    });
    aedes.on("clientDisconnect", (client) => {
      this.metrics.connections.set(aedes.connectedClients);
      if (this.connected.get(client.id) === client) this.connected.delete(client.id);
      this.logDisconnected(client);
    });
    aedes.on("keepaliveTimeout", (client) => this.closedBecause.set(client, "keepalive"));
    aedes.on("clientError", (client, error) => {
      const slow = /drain/i.test(error.message);
      if (slow) this.count("JG_ERR_MQTT_SLOW_CONSUMER");
      if (!this.closedBecause.has(client)) this.closedBecause.set(client, slow ? "slow consumer (JG_ERR_MQTT_SLOW_CONSUMER)" : `error: ${error.message}`);
    });
    // What recovery settled before the broker was up (packages accumulated while the gateway was
    // down): told now, not dropped. In a cluster the device may be connected to another gateway.
    this.scheduleDownlink();
  }

  async stop(): Promise<void> {
    await this.settlement.stop();
    await this.indexer.stop();
    const deadline = Date.now() + DOWNLINK_DRAIN_ON_STOP_MS;
    while ((this.downlink.length > 0 || this.downlinkInFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.broker?.close();
    await this.log.close();
    await this.ledger.close();
  }

  private count(code: string): void {
    this.errorCounts.set(code, (this.errorCounts.get(code) ?? 0) + 1);
  }

  /**
   * A refusal's warn line (`msg` "device refused" or "envelope refused"), written for at most one
   * refusal of `subject` (a device id, or the remote address when no device is known) and `code` a
   * minute; the next one written says how many were left out since (`suppressed`). Every refusal
   * is counted (errorStats; by code in /metrics too: connections, envelopes, subscriptions and messages
   * not held) whether or not it gets a line.
   */
  private refusalLine(msg: string, subject: string, code: string, fields: object): void {
    const logger = this.options.logger;
    if (logger === undefined) return;
    const suppressed = this.refusalLines.take(subject, code, this.now());
    if (suppressed === null) return;
    logger.warn({ ...fields, code, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }

  private logConnected(client: Client): void {
    const session = this.sessions.get(client);
    const fields = { clientId: client.id, remoteAddress: connectionFactsOf(client).remoteAddress, protocol: protocolOf(client) };
    if (session?.role === "device") this.options.logger?.info({ deviceId: session.device.deviceId, kind: session.device.kind, ...fields }, "device connected");
    else this.options.logger?.info(fields, "operator connected");
  }

  private logDisconnected(client: Client): void {
    const session = this.sessions.get(client);
    // aedes marks a client that sent DISCONNECT [MQTT-3.14.4-3] (lib/handlers/index.js); without one and without a reason of ours, the socket closed or failed.
    const reason = this.closedBecause.get(client) ?? ((client as { _disconnected?: boolean })._disconnected === true ? "client closed" : "connection lost");
    if (session?.role === "device") this.options.logger?.info({ deviceId: session.device.deviceId, clientId: client.id, reason }, "device disconnected");
    else this.options.logger?.info({ clientId: client.id, reason }, "operator disconnected");
  }

  /** What each client's CONNECT said that the authenticate hook needs (aedes gives it the username and password only). */
  private readonly connects = new WeakMap<Client, { readonly clientId: string; readonly clean: boolean; readonly hasWill: boolean }>();
  /** Payloads of envelopes refused while still routable: aedes routes every PUBACKed publish, and these are forwarded to no subscriber. */
  private readonly refusedPayloads = new WeakSet<object>();

  private hooks(): BrokerHooks {
    return {
      admitSocket: (facts) => {
        const refusal = this.admitSocket(facts.remoteAddress);
        if (refusal === null) return null;
        this.count(refusal.code);
        this.metrics.connectsRefused.inc({ code: refusal.code });
        // The connection cap is the gateway's, not an address's: one line a minute for all of them.
        const subject = refusal.code === "JG_ERR_MQTT_CONNECTIONS" ? "" : facts.remoteAddress;
        this.refusalLine("device refused", subject, refusal.code, { remoteAddress: facts.remoteAddress, detail: refusal.detail });
        return { returnCode: refusal.returnCode ?? 3 };
      },
      packetRefused: (violation, facts, client) => {
        this.count("JG_ERR_MQTT_PACKET");
        this.metrics.connectsRefused.inc({ code: "JG_ERR_MQTT_PACKET" });
        // A client whose CONNECT was authenticated has a session: its line names the device, and its disconnect line the bound.
        const session = client === null ? undefined : this.sessions.get(client);
        const deviceId = session?.role === "device" ? session.device.deviceId : null;
        if (client !== null && !this.closedBecause.has(client)) this.closedBecause.set(client, "bound violated");
        // Logged as `violation`, not `kind`: a line's `kind` is the device's kind elsewhere.
        const { kind: violationKind, ...violationFacts } = violation;
        this.refusalLine("device refused", deviceId ?? facts.remoteAddress, "JG_ERR_MQTT_PACKET", {
          ...(deviceId === null ? {} : { deviceId }),
          ...(typeof client?.id === "string" ? { clientId: client.id } : {}),
          remoteAddress: facts.remoteAddress,
          protocol: facts.transport,
          violation: violationKind,
          ...violationFacts,
          detail: "a packet past its bound: connection closed",
        });
      },
      preConnect: (client, packet, callback) => {
        this.connects.set(client, {
          clientId: packet.clientId ?? "",
          clean: packet.clean !== false,
          hasWill: packet.will !== undefined && packet.will !== null,
        });
        callback(null, true);
      },
      authenticate: (client, username, password, callback) => {
        void this.authenticate(client, username, password).then(
          (session) => {
            this.sessions.set(client, session);
            if (session.role === "device" && session.expiresAtMs !== null) this.closeAtExpiry(client, session.expiresAtMs);
            // aedes closes a connected client with the same id once this one is in [MQTT-3.1.4-2].
            const previous = this.connected.get(client.id);
            if (previous !== undefined && previous !== client) this.closedBecause.set(previous, "taken over");
            callback(null, true);
          },
          (e: unknown) => {
            const coded = e instanceof CodedMqttError ? e : new CodedMqttError("JG_ERR_MQTT_AUTH", String(e), 4);
            this.count(coded.code);
            this.metrics.connectsRefused.inc({ code: coded.code });
            const remoteAddress = connectionFactsOf(client).remoteAddress;
            const deviceId = username === undefined ? null : tryAsDeviceId(username);
            this.refusalLine("device refused", deviceId ?? remoteAddress, coded.code, {
              ...(deviceId === null ? {} : { deviceId }),
              clientId: this.connects.get(client)?.clientId ?? client.id,
              remoteAddress,
              protocol: protocolOf(client),
              detail: coded.detail,
            });
            const error = Object.assign(new Error(coded.message), { returnCode: coded.returnCode ?? 4 }) as AuthenticateError;
            callback(error, null);
          },
        );
      },
      authorizePublish: (client, packet, callback) => {
        void this.onPublish(client, packet).then(
          () => callback(null),
          (e: unknown) => {
            if (e instanceof CodedMqttError) {
              this.count(e.code);
              this.metrics.rejected.inc({ code: e.code });
              const session = client === null ? undefined : this.sessions.get(client);
              const deviceId = session?.role === "device" ? session.device.deviceId : null;
              this.refusalLine("device refused", deviceId ?? client?.id ?? "", e.code, {
                ...(deviceId === null ? {} : { deviceId }),
                clientId: client?.id,
                topic: packet.topic.slice(0, 100),
                detail: `${e.detail}: connection closed`,
              });
              if (client !== null) this.closedBecause.set(client, `publish refused (${e.code})`);
            }
            callback(e instanceof Error ? e : new Error(String(e)));
          },
        );
      },
      authorizeSubscribe: (client, subscription, callback) => {
        const session = this.sessions.get(client);
        if (session?.role === "operator") return callback(null, subscription);
        const id = session?.role === "device" ? (session.device.deviceId as DeviceId) : null;
        if (
          id !== null &&
          (subscription.topic === `devices/${id}/down/#` ||
            subscription.topic === downTopic(id, "receipts") ||
            subscription.topic === downTopic(id, "errors") ||
            subscription.topic === downTopic(id, "control"))
        ) {
          return callback(null, subscription);
        }
        // Refused with SUBACK 0x80 [MQTT-3.9.3]: a subscription can be refused on its own.
        this.count("JG_ERR_MQTT_TOPIC");
        this.metrics.subscriptionsRefused.inc({ code: "JG_ERR_MQTT_TOPIC" });
        this.refusalLine("device refused", id ?? client.id, "JG_ERR_MQTT_TOPIC", {
          ...(id === null ? {} : { deviceId: id }),
          clientId: client.id,
          topic: subscription.topic.slice(0, 100),
          detail: "subscription refused",
        });
        callback(null, null);
      },
      authorizeForward: (_client, packet: AedesPublishPacket) => (this.refusedPayloads.has(packet.payload as object) ? null : packet),
    };
  }

  /**
   * A token is checked at CONNECT; the connection it opened is closed when it expires (at most
   * TOKEN_LIFETIME_MAX_MS on), so a leaked token is no use past its expiry. The SDK connects again
   * with a fresh token (devices/client.ts).
   */
  private closeAtExpiry(client: Client, expiresAtMs: number): void {
    const timer = setTimeout(
      () => {
        this.closedBecause.set(client, "token expired");
        client.close();
      },
      Math.max(0, expiresAtMs - this.now()),
    );
    timer.unref();
    // One timer per open connection, gone with it (whether or not aedes ever registered the client).
    (client.conn as unknown as NodeJS.EventEmitter).once("close", () => clearTimeout(timer));
  }

  /** The connection cap and the per-address rate, for a socket just accepted: null lets it in. */
  private admitSocket(remoteAddress: string): CodedMqttError | null {
    const open = this.broker?.openSockets() ?? 0;
    // `open` counts the socket being judged.
    if (open > this.connectionsMax) return new CodedMqttError("JG_ERR_MQTT_CONNECTIONS", `${this.connectionsMax} connections are open`, 3);
    if (!this.perIp.take(remoteAddress)) return new CodedMqttError("JG_ERR_MQTT_RATE", `too many connects from ${remoteAddress}`, 3);
    return null;
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Session> {
    const connect = this.connects.get(client);
    // A will would be published on the client's behalf after it is gone, unsigned by anything it sends then.
    if (connect?.hasWill === true) throw new CodedMqttError("JG_ERR_MQTT_WILL", "wills are not taken", 5);
    // In a cluster a session lives in Redis: while it is unreachable none opens (aedes would wait
    // for it, holding the CONNECT), and the client is told to come back (CONNACK 3, server unavailable).
    const cluster = this.options.cluster;
    if (cluster != null && !cluster.available)
      throw new CodedMqttError("JG_ERR_CLUSTER_UNAVAILABLE", "the cluster's Redis, where sessions live, is unreachable: connect again later", 3);
    const clientId = connect?.clientId ?? client.id;
    // An empty client id with a clean session is the server's to assign [MQTT-3.1.3-6]: the device id, or the operator's own form.
    const assign = clientId === "" && connect?.clean === true;
    const secret = password?.toString("utf8") ?? "";
    if (username === "operator") {
      if (!assign && !OPERATOR_CLIENT_ID.test(clientId))
        throw new CodedMqttError(
          "JG_ERR_MQTT_CLIENT_ID",
          `the operator connects as "operator" or "operator-<label>", not ${JSON.stringify(clientId.slice(0, 80))}`,
          2,
        );
      if (!tokensMatch(secret, this.options.operatorToken)) throw new CodedMqttError("JG_ERR_OPERATOR_TOKEN", "wrong operator token", 4);
      if (assign) client.id = `operator-${randomUUID()}`;
      return { role: "operator" };
    }
    const deviceId = username === undefined ? null : tryAsDeviceId(username);
    if (deviceId === null) throw new CodedMqttError("JG_ERR_MQTT_AUTH", "username is not a device id", 4);
    // The client id names the session: bound to the identity, one device can neither take over nor wipe another's.
    if (!assign && clientId !== deviceId)
      throw new CodedMqttError(
        "JG_ERR_MQTT_CLIENT_ID",
        `device ${deviceId} must connect with its device id as client id, not ${JSON.stringify(clientId.slice(0, 80))}`,
        2,
      );
    if (!this.perDevice.take(deviceId)) throw new CodedMqttError("JG_ERR_MQTT_RATE", `device ${deviceId} reconnects too often`, 3);
    // Read from the ledger now, not from the cache: its settled highest seq is fresh (learnClusterWindow).
    const readNow = this.registry.cached(deviceId) === null;
    const device = await this.registry.lookup(deviceId);
    if (device === null) throw new CodedMqttError("JG_ERR_DEVICE_UNREGISTERED", `device ${deviceId} is not registered`, 5);
    if (assign) client.id = deviceId;
    // A client certificate the TLS listener verified against its client CA, naming this device, stands for the token.
    if (connectionFactsOf(client).clientCertificateCn === deviceId) {
      if (cluster != null) await this.learnClusterWindow(cluster, device, readNow);
      return { role: "device", device, expiresAtMs: null };
    }
    const token = parseMqttPassword(deviceId, secret);
    const now = this.now();
    if (token === null) throw new CodedMqttError("JG_ERR_MQTT_AUTH", "password is not a device token", 4);
    if (token.expiresAtMs <= now || token.expiresAtMs > now + TOKEN_LIFETIME_MAX_MS)
      throw new CodedMqttError("JG_ERR_MQTT_AUTH", "token expired or valid for too long", 4);
    if (!verifyEd25519(device.publicKey, token.message, token.signature)) throw new CodedMqttError("JG_ERR_MQTT_AUTH", "token signature does not verify", 4);
    if (cluster != null) await this.learnClusterWindow(cluster, device, readNow);
    return { role: "device", device, expiresAtMs: token.expiresAtMs };
  }

  /**
   * In a cluster, as a device connects: its window here (a cache, of what this gateway logged) takes
   * in what the cluster knows of it, so a resend of an envelope another gateway logged is answered
   * JG_ERR_ENVELOPE_REPLAY before its PUBACK, as one gateway answers its own (cluster/windows.ts).
   * The seqs the cluster's gateways logged come from Redis; when Redis knows none (a device new to
   * the cluster, away from it for a week, or a Redis that lost its data), the window its service
   * settled (the highest and which of the 64 below it), from the ledger (read now unless the registry just read it: `readNow`), so a window
   * this gateway kept from long ago does not judge the device's seqs against a stale highest. A
   * read that fails leaves the window as it is: the ledger's window still refuses a second
   * settlement. Never takes a seq out.
   */
  private async learnClusterWindow(cluster: GatewayCluster, device: RegistryEntry, readNow: boolean): Promise<void> {
    const id = device.deviceId;
    const shared = await cluster.windows.seqsOf(id);
    const onLedger = shared.length > 0 || readNow ? EMPTY_WINDOW : await this.settledWindowOnLedger(device).catch(() => EMPTY_WINDOW);
    // After the reads, in one step: a publish of the device's previous connection may have moved its window meanwhile.
    this.windows.set(id, learnedWindow(this.windowOf(id), shared, [onLedger, settledWindowOfDevice(device)]));
    // Settled, so refine verified its signature: the highest known signed (see signedHighest).
    if (onLedger.highest > (this.signedHighest.get(id) ?? device.settledHighestSeq)) this.signedHighest.set(id, onLedger.highest);
  }

  /** The window of seqs `device`'s service has settled, read from the best block's state (empty: none, or the record is gone). */
  private async settledWindowOnLedger(device: RegistryEntry): Promise<SeqWindow> {
    const service = this.options.services.find((s) => s.serviceId === device.serviceId);
    if (service === undefined) return EMPTY_WINDOW;
    const best = await this.registry.bestBlock();
    const value = await this.options.api.serviceValue(best.headerHash, service.serviceId, service.deviceKey(device.deviceId));
    const settled = value === null ? null : service.decodeDevice(value);
    return settled === null ? EMPTY_WINDOW : settledWindowOfDevice(settled);
  }

  /** The authorizePublish hook: resolves to PUBACK (after the durable write), rejects to disconnect. */
  private async onPublish(client: Client | null, packet: PublishPacket): Promise<void> {
    const session = client === null ? undefined : this.sessions.get(client);
    // A will is refused at CONNECT (JG_ERR_MQTT_WILL); one left from before, or any publish without a session, closes the connection.
    if (session === undefined) throw new CodedMqttError("JG_ERR_MQTT_TOPIC", "publish without a session (will messages are not allowed)");
    if (session.role === "operator") throw new CodedMqttError("JG_ERR_MQTT_TOPIC", "the operator credential is read-only");
    const device = session.device;
    const topic = parseUpTopic(packet.topic);
    if (topic === null || topic.deviceId !== device.deviceId)
      throw new CodedMqttError("JG_ERR_MQTT_TOPIC", `device ${device.deviceId} may not publish on ${packet.topic.slice(0, 100)}`);
    const refusal = await this.take(device, topic.kind, packet.payload as Buffer, packet.retain);
    if (refusal !== null) this.refuse(packet, device.deviceId, refusal.seq, refusal.code, refusal.detail);
  }

  /**
   * An envelope the gateway built and signed itself for one of its devices (a RADIUS router's
   * usage: gateway/radius/) enters here, the accept path of an MQTT publish on the device's
   * `kind` topic: the same checks, seq window, durable log write and settlement. Resolves once it
   * is logged, or with its refusal (counted); rejects if the log write fails.
   */
  async acceptOwn(
    deviceId: DeviceId,
    kind: string,
    payload: Uint8Array,
  ): Promise<{ readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly detail: string }> {
    const device = await this.registry.lookup(deviceId);
    const refusal =
      device === null
        ? { seq: null, code: "JG_ERR_DEVICE_UNREGISTERED" as const, detail: `device ${deviceId} is not registered` }
        : await this.take(device, kind, payload, false);
    if (refusal === null) return { ok: true };
    this.count(refusal.code);
    this.metrics.rejected.inc({ code: refusal.code });
    this.refusalLine("envelope refused", deviceId, refusal.code, { deviceId, seq: refusal.seq, detail: refusal.detail });
    return { ok: false, code: refusal.code, detail: refusal.detail };
  }

  /** Judges, logs (durably) and queues for settlement an envelope of `device` on its `kind` topic; its refusal, or null once it is logged. */
  private async take(
    device: RegistryEntry,
    kind: string,
    payload: Uint8Array,
    retain: boolean,
  ): Promise<{ readonly seq: number | null; readonly code: ErrorCode; readonly detail: string } | null> {
    const window = this.windowOf(device.deviceId);
    const signed = this.signedHighest.get(device.deviceId) ?? device.settledHighestSeq;
    const verifySignature = this.options.verifySignaturesBeforePuback === true ? true : (seq: number) => seq > signed + SEQ_WINDOW_SEQS;
    const verdict = judgeEnvelope(device, kind, payload, window, this.now(), { verifySignature });
    if (!verdict.ok) return verdict;
    // Nothing a device sends is retained: a retained message would be handed to every later subscriber, unbounded.
    if (retain) return { seq: verdict.envelope.seq, code: "JG_ERR_MQTT_RETAIN", detail: "retained messages are not taken on device topics" };
    const e = verdict.envelope;
    // Moved before the write, so a second copy arriving meanwhile is a replay.
    this.windows.set(device.deviceId, acceptSeq(window, e.seq));
    if (verdict.signatureVerified) this.signedHighest.set(device.deviceId, Math.max(signed, e.seq));
    let entry: LogEntry;
    try {
      // The device settles on the service it registered with (the registry knows which).
      entry = await this.log.append({
        deviceId: device.deviceId,
        seq: e.seq,
        signingBytes: verdict.signingBytes,
        signature: e.signature,
        serviceId: device.serviceId,
        acceptedAtMs: this.now(),
      });
    } catch (error) {
      // No PUBACK, so the device's resend must be new: the window again holds what is on disk
      // or on its way there, not this seq (nor any other of the failed transaction's).
      this.windows.set(device.deviceId, this.log.window(device.deviceId));
      throw error;
    }
    this.metrics.countAccepted(e.kind);
    this.settlement.add(entry);
    // Durable here: the cluster's other gateways may now learn the seq (the ledger decides if they do not).
    this.options.cluster?.windows.add(device.deviceId, e.seq);
    const influx = this.options.influx;
    if (influx !== null && influx !== undefined) {
      let readings: unknown;
      try {
        readings = decodeBody(e.body, READINGS_PER_ENVELOPE_MAX);
      } catch {
        readings = [];
      }
      influx.add(readingsToPoints(device.deviceId, e.kind, Array.isArray(readings) ? readings : [readings], e.timeMs).points);
    }
    return null;
  }

  private windowOf(deviceId: string): SeqWindow {
    let w = this.windows.get(deviceId);
    if (w === undefined) {
      w = this.log.window(deviceId);
      this.windows.set(deviceId, w);
    }
    return w;
  }

  /** A refused envelope: told on the device's error topic, counted, and PUBACKed (so it is not resent). */
  private refuse(packet: PublishPacket, deviceId: string, seq: number | null, code: ErrorCode, detail: string): void {
    // PUBACKed, the publish is still routed and may be retained by aedes: neither for a refused one.
    packet.retain = false;
    this.refusedPayloads.add(packet.payload as object);
    this.count(code);
    this.metrics.rejected.inc({ code });
    this.refusalLine("envelope refused", deviceId, code, { deviceId, seq, detail });
    this.publishDown(deviceId, "errors", encodeDeviceError({ seq, code, detail }));
  }

  /**
   * Receipts and errors waiting to be handed to aedes, each with what to call once aedes has
   * published it (settlement keeps its package in the log until then: settlement/told.ts). A
   * settled package yields up to a thousand at once (a receipt per device in it); they go once per
   * turn of the event loop, at most DOWNLINK_IN_FLIGHT_MAX at a time. Bounded by what the log
   * holds: at most one notice per logged entry.
   */
  private readonly downlink: { readonly notice: DeviceNotice; readonly published: (error?: Error) => void }[] = [];
  private downlinkInFlight = 0;
  private draining = false;

  /** Queues a notice for its device; resolves once aedes has published it (its publish callback), rejects if it could not. */
  private notify(notice: DeviceNotice): Promise<void> {
    return new Promise((resolve, reject) => {
      this.downlink.push({ notice, published: (error) => (error === undefined ? resolve() : reject(error)) });
      this.scheduleDownlink();
    });
  }

  private scheduleDownlink(): void {
    // Before the broker starts (recovery settles packages accumulated while the gateway was down) they wait for it.
    if (this.broker === null || this.draining || this.downlink.length === 0 || this.downlinkInFlight >= DOWNLINK_IN_FLIGHT_MAX) return;
    this.draining = true;
    setImmediate(() => {
      this.draining = false;
      const room = DOWNLINK_IN_FLIGHT_MAX - this.downlinkInFlight;
      if (room > 0) for (const { notice, published } of this.downlink.splice(0, room)) this.tell(notice, published);
      this.scheduleDownlink();
    });
  }

  private tell(notice: DeviceNotice, published: (error?: Error) => void): void {
    if (notice.kind === "receipt") {
      // Settled: refine verified these signatures.
      const highest = notice.seqs.at(-1) ?? -1; // ascending
      if (highest > (this.signedHighest.get(notice.deviceId) ?? -1)) this.signedHighest.set(notice.deviceId, highest);
      this.publishDown(
        notice.deviceId,
        "receipts",
        encodeReceipts({ seqs: notice.seqs, packageHash: notice.packageHash, blockHash: notice.blockHash, slot: notice.slot }),
        published,
      );
    } else {
      this.count(notice.code);
      this.refusalLine("envelope refused", notice.deviceId, notice.code, { deviceId: notice.deviceId, seq: notice.seq, detail: notice.detail });
      this.publishDown(notice.deviceId, "errors", encodeDeviceError({ seq: notice.seq, code: notice.code, detail: notice.detail }), published);
    }
  }

  /**
   * A control message to a device on `devices/{id}/down/control` (QoS 1, not retained): a router
   * told to disconnect a session whose client's balance ran out (wifi/control.ts).
   */
  publishControl(deviceId: string, payload: Uint8Array): void {
    this.publishDown(deviceId, "control", payload);
  }

  /**
   * Publishes to a device's down topic (QoS 1, not retained); `published` is called once aedes has
   * (its publish callback: written to the device or queued for its session, and in a cluster in
   * Redis), with the error if it could not.
   */
  private publishDown(deviceId: string, channel: DownChannel, payload: Uint8Array, published?: (error?: Error) => void): void {
    const broker = this.broker;
    if (broker === null) return published?.(new Error("the broker is not running"));
    this.downlinkInFlight++;
    broker.aedes.publish(
      { cmd: "publish", topic: downTopic(deviceId as DeviceId, channel), payload: Buffer.from(payload), qos: 1, retain: false, dup: false },
      (error) => {
        this.downlinkInFlight--;
        if (error) this.options.logger?.warn({ deviceId, channel, err: String(error) }, "could not publish to a device");
        published?.(error ?? undefined);
        this.scheduleDownlink();
      },
    );
  }
}
