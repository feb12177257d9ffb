/**
 * The device SDK: `DeviceClient` signs readings into envelopes, keeps them in a durable offline
 * queue until the gateway's PUBACK says they are in its durable log, and hands the device the
 * gateway's receipts and errors (docs/protocol.md). MQTT 3.1.1 through mqtt.js (the gateway's
 * broker, aedes 1.x, speaks 3.1.1 only).
 *
 * Decisions:
 * - `clean: false` with client id = device id: the broker keeps the device's subscription and
 *   queues QoS 1 receipts and errors while it is offline [MQTT-3.1.2-4, MQTT-3.1.2-5], so a
 *   receipt for an envelope settled during an outage is not lost (the protocol has no other way
 *   to fetch it). It also obliges the client to resend unacknowledged PUBLISHes with their packet
 *   ids on reconnect [MQTT-4.4.0-1], which mqtt.js does from its session store.
 * - Who resends what: the offline queue on disk is the truth across process restarts; within a
 *   process each queued envelope is handed to mqtt.js once (at most INFLIGHT_MAX at a time), and
 *   mqtt.js's session store, which then holds exactly the handed, un-PUBACKed queue entries,
 *   resends them first on every reconnect; envelopes queued while offline follow, in seq order.
 *   A resend the gateway already has is answered JG_ERR_ENVELOPE_REPLAY, never counted twice.
 * - Reconnects are ours, not mqtt.js's (`reconnectPeriod: 0`): after a close we wait an
 *   exponential, jittered delay (bounded by RECONNECT_DELAY_MAX_MS), put a fresh password token in
 *   `client.options.password`, which mqtt.js reads when it writes each CONNECT, and call
 *   `client.reconnect()` with the same stores (so the session store survives). Tokens are signed
 *   per connection, so a short lifetime costs nothing.
 *
 * Events: `receipt`, `deviceError` (a refusal from the gateway; not named `error`, which Node
 * throws when nobody listens), `acked` (PUBACK, the envelope left the queue), `state`, `warning`.
 * `events.on(client, "receipt")` gives an async iterator. Receipts and errors arrive at least
 * once (QoS 1, [MQTT-4.3.2]): after a reconnect one may come again, so key them by seq.
 * Node only (the queue uses node:fs).
 */
import { EventEmitter } from "node:events";
import { join } from "node:path";
import mqtt, { type ErrorWithReasonCode, type MqttClient } from "mqtt";
import { BODY_BYTES_MAX, ENVELOPE_BYTES_MAX, ENVELOPE_KINDS, ENVELOPE_VERSION, type EnvelopeKind, encodeEnvelope, signEnvelope } from "./envelope.ts";
import { encodeReadings } from "./readings.ts";
import { type CodedProblem, type DeviceCode, DeviceSideError } from "./errors.ts";
import { type DeviceKey, mqttPassword, TOKEN_LIFETIME_MAX_MS } from "./keys.ts";
import { type DeviceError, DOWN_WILDCARD, decodeDeviceError, decodeReceipts, parseDownTopic, type Receipt, upTopic } from "./messages.ts";
import { OfflineQueue, type QueueLimits } from "./offline-queue.ts";

/** Default token lifetime: checked only at CONNECT, so short; an hour still tolerates a device clock that is off by minutes. */
export const TOKEN_LIFETIME_MS = 60 * 60 * 1000;
/** First reconnect delay (before jitter). */
export const RECONNECT_DELAY_MS = 500;
/** Longest reconnect delay: a returned gateway is noticed within a minute, and a fleet reconnecting after an outage spreads over that minute. */
export const RECONNECT_DELAY_MAX_MS = 60_000;
/** Envelopes handed to mqtt.js awaiting PUBACK at once: bounds what sits in memory when a week's backlog is sent after a reconnect. */
export const INFLIGHT_MAX = 32;
/** How long a CONNECT may wait for its CONNACK before the attempt is dropped and retried. */
export const CONNACK_TIMEOUT_MS = 10_000;
/** Default wait of `DeviceClient.connect` for the first session. */
export const FIRST_CONNECT_TIMEOUT_MS = 30_000;
/** MQTT keep alive [MQTT-3.1.2-24]: the broker drops a silent device after 1.5 × this. */
export const KEEPALIVE_SECONDS = 60;

export interface DeviceClientOptions {
  /** `mqtt://host:port` (or mqtts://, ws://, wss://). */
  readonly url: string;
  readonly key: DeviceKey;
  /** Where the offline queue and next seq live; the device's files go in `<dataDir>/<deviceId>/`. */
  readonly dataDir: string;
  /** Validity of each MQTT password token, at most TOKEN_LIFETIME_MAX_MS. */
  readonly tokenLifetimeMs?: number;
  /** Clock for envelope times and token expiry (ms since the epoch). */
  readonly now?: () => number;
  /** Randomness for reconnect jitter, in [0, 1). */
  readonly random?: () => number;
  readonly reconnectDelayMs?: number;
  readonly reconnectDelayMaxMs?: number;
  readonly queueLimits?: Partial<QueueLimits>;
  /** `connect` only: how long to wait for the first session. */
  readonly connectTimeoutMs?: number;
  /**
   * For mqtts:// and wss://: the CA certificate(s) to trust (PEM; default: the system's), and a
   * client certificate and key for a gateway that authenticates devices by certificate.
   */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

export type DeviceClientState =
  | { readonly state: "connected"; readonly sessionPresent: boolean }
  | { readonly state: "disconnected"; readonly reason: string; readonly retryInMs: number }
  | { readonly state: "closed" };

export type SendResult = { readonly ok: true; readonly seq: number } | { readonly ok: false; readonly error: CodedProblem };

export interface DeviceClientEvents {
  receipt: [Receipt];
  deviceError: [DeviceError];
  acked: [{ readonly seq: number }];
  state: [DeviceClientState];
  warning: [CodedProblem];
}

/** Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): half the ceiling, plus up to half again at random. */
export function reconnectDelay(attempt: number, random: () => number, baseMs = RECONNECT_DELAY_MS, maxMs = RECONNECT_DELAY_MAX_MS): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  private readonly queue: OfflineQueue;
  private readonly mqtt: MqttClient;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly tokenLifetimeMs: number;
  /** Seqs handed to mqtt.js and not yet PUBACKed; mqtt.js resends these itself after a reconnect. */
  private readonly handed = new Set<number>();
  /** True from our handling of CONNACK to the close: only then are new envelopes handed over. */
  private online = false;
  private closing = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private lastProblem: CodedProblem = { code: "JG_ERR_RPC_CLOSED", detail: "not connected yet" };

  private constructor(private readonly options: DeviceClientOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? TOKEN_LIFETIME_MS;
    if (!(this.tokenLifetimeMs > 0 && this.tokenLifetimeMs <= TOKEN_LIFETIME_MAX_MS))
      throw new Error(`tokenLifetimeMs must be in (0, ${TOKEN_LIFETIME_MAX_MS}]`);
    this.queue = OfflineQueue.open(join(options.dataDir, options.key.deviceId), options.queueLimits);
    this.mqtt = mqtt.connect(options.url, {
      protocolVersion: 4,
      clientId: options.key.deviceId,
      username: options.key.deviceId,
      password: this.freshToken(),
      clean: false,
      reconnectPeriod: 0,
      connectTimeout: CONNACK_TIMEOUT_MS,
      keepalive: KEEPALIVE_SECONDS,
      resubscribe: false,
      ...(options.tls?.ca === undefined ? {} : { ca: options.tls.ca }),
      ...(options.tls?.cert === undefined ? {} : { cert: options.tls.cert }),
      ...(options.tls?.key === undefined ? {} : { key: options.tls.key }),
    });
    this.mqtt.on("connect", (connack) => this.onConnect(connack.sessionPresent));
    this.mqtt.on("close", () => this.onClose());
    this.mqtt.on("error", (e) => {
      this.lastProblem = problemOf(e, options.key.deviceId);
    });
    this.mqtt.on("message", (topic, payload) => this.onMessage(topic, payload));
  }

  /** Opens the queue and starts connecting in the background: a device that boots offline can `send` at once. */
  static open(options: DeviceClientOptions): DeviceClient {
    return new DeviceClient(options);
  }

  /**
   * Opens and waits for the first session. Rejects (a DeviceSideError) if the broker refuses the
   * key (CONNACK 4: JG_ERR_MQTT_AUTH, 5: JG_ERR_DEVICE_UNREGISTERED), which retrying cannot fix,
   * or if there is no session within `connectTimeoutMs` (JG_ERR_RPC_CLOSED).
   */
  static async connect(options: DeviceClientOptions): Promise<DeviceClient> {
    const client = new DeviceClient(options);
    try {
      await client.firstSession(options.connectTimeoutMs ?? FIRST_CONNECT_TIMEOUT_MS);
      return client;
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  get deviceId(): string {
    return this.options.key.deviceId;
  }

  /** Envelopes not yet PUBACKed. */
  get queued(): number {
    return this.queue.size;
  }

  get connected(): boolean {
    return this.online;
  }

  /**
   * Signs `readings` (any CBOR value; readings in their column form when they allow it,
   * ./readings.ts) into the next envelope, stores it durably and sends it when
   * connected. Returns its seq, or a refusal that changed nothing: the queue is full
   * (JG_ERR_QUEUE_FULL; wait for `acked`), the envelope is too big or the kind unknown.
   */
  send(kind: EnvelopeKind, readings: unknown): SendResult {
    if (this.closing) throw new Error("send after close");
    if (!(ENVELOPE_KINDS as readonly string[]).includes(kind)) return refuse("JG_ERR_ENVELOPE_KIND", `unknown kind ${JSON.stringify(kind)}`);
    const body = encodeReadings(readings);
    if (body.length > BODY_BYTES_MAX) return refuse("JG_ERR_ENVELOPE_OVERSIZE", `readings encode to ${body.length} bytes > ${BODY_BYTES_MAX}`);
    const seq = this.queue.nextSeq;
    const bytes = encodeEnvelope(
      signEnvelope({ version: ENVELOPE_VERSION, device: this.options.key.deviceId, seq, kind, timeMs: this.now(), body }, this.options.key.secretKey),
    );
    if (bytes.length > ENVELOPE_BYTES_MAX) return refuse("JG_ERR_ENVELOPE_OVERSIZE", `envelope of ${bytes.length} bytes > ${ENVELOPE_BYTES_MAX}`);
    const queued = this.queue.enqueue({ seq, kind, bytes });
    if (!queued.ok) return { ok: false, error: queued.error };
    this.pump();
    return { ok: true, seq };
  }

  /** Resolves true once the queue is empty (everything PUBACKed), false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.queue.size === 0) return true;
    return new Promise((resolve) => {
      const onAcked = () => {
        if (this.queue.size === 0) finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (drained: boolean) => {
        clearTimeout(timer);
        this.off("acked", onAcked);
        resolve(drained);
      };
      this.on("acked", onAcked);
    });
  }

  /** Stops reconnecting and closes the connection; queued envelopes stay on disk for the next start. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.online = false;
    clearTimeout(this.reconnectTimer);
    // A clean DISCONNECT when nothing is in flight; otherwise drop the socket rather than wait for PUBACKs that may never come.
    const force = !this.mqtt.connected || Object.keys(this.mqtt.outgoing).length > 0;
    await new Promise<void>((resolve) => this.mqtt.end(force, () => resolve()));
    this.emit("state", { state: "closed" });
  }

  private freshToken(): string {
    return mqttPassword(this.options.key, this.now() + this.tokenLifetimeMs);
  }

  private onConnect(sessionPresent: boolean): void {
    if (this.closing) return;
    this.online = true;
    this.attempt = 0;
    this.lastProblem = { code: "JG_ERR_RPC_CLOSED", detail: "the broker closed the connection" };
    // Subscribed again on every CONNACK: it is idempotent [MQTT-3.8.4-3] and covers a broker that lost the session.
    // A lost connection fails the callback too; only a SUBACK failure code (0x80, [MQTT-3.9.3]) is a refusal.
    this.mqtt.subscribe(DOWN_WILDCARD(this.options.key.deviceId), { qos: 1 }, (e, granted) => {
      if (!e && granted?.some((g) => g.qos === 128))
        this.emit("warning", { code: "JG_ERR_MQTT_TOPIC", detail: `broker refused the subscription to ${DOWN_WILDCARD(this.options.key.deviceId)}` });
    });
    this.emit("state", { state: "connected", sessionPresent });
    this.pump();
  }

  private onClose(): void {
    this.online = false;
    if (this.closing) return;
    this.attempt += 1;
    const delay = reconnectDelay(this.attempt, this.random, this.options.reconnectDelayMs, this.options.reconnectDelayMaxMs);
    this.emit("state", { state: "disconnected", reason: `${this.lastProblem.code}: ${this.lastProblem.detail}`, retryInMs: delay });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (this.closing) return;
      this.mqtt.options.password = this.freshToken();
      this.mqtt.reconnect({ incomingStore: this.mqtt.incomingStore, outgoingStore: this.mqtt.outgoingStore });
    }, delay);
  }

  /** Hands queued envelopes to mqtt.js in seq order, up to INFLIGHT_MAX awaiting PUBACK. */
  private pump(): void {
    if (!this.online) return;
    for (const seq of this.queue.seqs()) {
      if (this.handed.size >= INFLIGHT_MAX) return;
      if (this.handed.has(seq)) continue;
      const item = this.queue.get(seq);
      if (item === null) continue;
      this.handed.add(seq);
      const payload = Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength);
      this.mqtt.publish(upTopic(this.options.key.deviceId, item.kind), payload, { qos: 1 }, (e) => this.onPuback(seq, e));
    }
  }

  private onPuback(seq: number, e: Error | undefined): void {
    this.handed.delete(seq);
    if (e) {
      // mqtt.js dropped it (closing, or a store error): it stays queued and is handed over again.
      if (!this.closing) this.emit("warning", { code: "JG_ERR_RPC_CLOSED", detail: `envelope ${seq} not acknowledged: ${e.message}` });
      return;
    }
    this.queue.remove(seq);
    this.emit("acked", { seq });
    this.pump();
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDownTopic(topic);
    if (parsed === null || parsed.deviceId !== this.options.key.deviceId) {
      this.emit("warning", { code: "JG_ERR_RPC_REMOTE", detail: `message on unexpected topic ${topic.slice(0, 120)}` });
      return;
    }
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    if (parsed.channel === "receipts") {
      // One message covers the device's envelopes settled in one package: one event per envelope.
      const receipts = decodeReceipts(bytes);
      if (receipts === null) this.emit("warning", { code: "JG_ERR_RPC_REMOTE", detail: `undecodable receipt (${bytes.length} bytes)` });
      else for (const receipt of receipts) this.emit("receipt", receipt);
    } else {
      const error = decodeDeviceError(bytes);
      if (error === null) this.emit("warning", { code: "JG_ERR_RPC_REMOTE", detail: `undecodable error message (${bytes.length} bytes)` });
      else this.emit("deviceError", error);
    }
  }

  private firstSession(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onState = (s: DeviceClientState) => {
        if (s.state === "connected") finish();
        else if (s.state === "disconnected" && (this.lastProblem.code === "JG_ERR_MQTT_AUTH" || this.lastProblem.code === "JG_ERR_DEVICE_UNREGISTERED"))
          finish(new DeviceSideError(this.lastProblem.code, this.lastProblem.detail));
      };
      const timer = setTimeout(
        () =>
          finish(
            new DeviceSideError(
              "JG_ERR_RPC_CLOSED",
              `no MQTT session with ${this.options.url} within ${timeoutMs} ms (last: ${this.lastProblem.code}: ${this.lastProblem.detail})`,
            ),
          ),
        timeoutMs,
      );
      const finish = (e?: Error) => {
        clearTimeout(timer);
        this.off("state", onState);
        if (e) reject(e);
        else resolve();
      };
      this.on("state", onState);
    });
  }
}

/**
 * CONNACK return codes [MQTT-3.2.2.3] as the registry names them (devices/protocol/errors.ts `mqtt` column); anything else is a transport failure.
 * The gateway answers 5 ("not authorized") to a device it has no registration of (a client
 * without a will, as this one, gets it for nothing else), so the detail says what to do.
 */
function problemOf(e: Error, deviceId: string): CodedProblem {
  const rc = (e as Partial<ErrorWithReasonCode>).code;
  const connack: Record<number, DeviceCode> = {
    1: "JG_ERR_RPC_REMOTE",
    2: "JG_ERR_RPC_REMOTE",
    3: "JG_ERR_MQTT_RATE",
    4: "JG_ERR_MQTT_AUTH",
    5: "JG_ERR_DEVICE_UNREGISTERED",
  };
  if (rc === 5) return { code: "JG_ERR_DEVICE_UNREGISTERED", detail: unregisteredDetail(deviceId, "KEY_FILE") };
  if (typeof rc === "number" && connack[rc] !== undefined) return { code: connack[rc], detail: `CONNACK ${rc}: ${e.message}` };
  return { code: "JG_ERR_RPC_CLOSED", detail: e.message };
}

/** What a device refused with CONNACK 5 is told: register first (or wait for the registration to settle). */
export function unregisteredDetail(deviceId: string, keyFile: string): string {
  return (
    `the gateway refused the connection (CONNACK 5, not authorized): is device ${deviceId} registered? ` +
    `Register it first: \`jamgate device register --key ${keyFile} --kind KIND --wait\` (a registration settles in a block or two; --wait waits for it)`
  );
}

function refuse(code: DeviceCode, detail: string): SendResult {
  return { ok: false, error: { code, detail } };
}
