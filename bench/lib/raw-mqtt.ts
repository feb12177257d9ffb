/**
 * A minimal MQTT 3.1.1 client on node:net, for the benchmarks' load generator only (bench/lib/loadgen.ts),
 * not for devices: devices/client.ts and the tests use mqtt.js.
 *
 * Why not mqtt.js here: the load generator shares the 2-core machine with the gateway it measures,
 * and mqtt.js's CPU per message is CPU that real devices do not take from the gateway's machine:
 * ~87 µs per envelope (publish, PUBACK, receipt and the receipt's PUBACK), 0.26 cores of load
 * generator at 3,000 envelopes/s in bench/gateway.ts. This client writes a PUBLISH frame encoded
 * before the run as it is (one `socket.write`), keeps one callback per packet identifier, and
 * answers incoming QoS 1 PUBLISHes with PUBACKs written together, one write per socket read.
 * Measured in the bare-aedes echo ceiling (the same four packets per message), 50 clients, 20 in
 * flight each, `node --import tsx bench/gateway.ts --devices 50 --rate 200 --duration 3 --warmup 1
 * --drain 10 --ceiling-runs 1 --aedes-seconds 1 --verify-seconds 1 --client raw|mqtt.js`, with
 * other processes busy on the machine: ~12 µs of client CPU per message with this client
 * (0.30–0.36 cores at 25,000–29,000/s), 23–36 µs with mqtt.js (0.33–0.96 cores at 9,000–42,000/s).
 *
 * What it does: CONNECT (clean session by default, username and password, keepalive) and CONNACK,
 * SUBSCRIBE at QoS 1 and SUBACK, QoS 1 PUBLISH out (pre-encoded, `encodePublish`) and PUBACK in,
 * PUBLISH in at QoS 0 or 1 (PUBACK out), PINGREQ/PINGRESP, DISCONNECT. What it does not: QoS 2,
 * reconnecting, sessions, retransmission (a clean session on TCP loses nothing unless the
 * connection does, and then the run counts the missing PUBACKs), MQTT 5. Packets are encoded and
 * parsed by mqtt-packet, the codec mqtt.js and aedes use (a dev dependency); the only wire layout coded here is where `messageIdOffset` finds the packet
 * identifier in a QoS 1 PUBLISH. Nagle's algorithm is left on, as on the mqtt.js clients' sockets,
 * so both clients measure the same TCP.
 */
import { createConnection, type Socket } from "node:net";
import { generate, type Packet, parser, type Parser } from "mqtt-packet";

/** Packet identifiers are 1..65,535: 16 bits, 0 is not one [MQTT-2.3.1-1]. */
export const MESSAGE_ID_MAX = 65_535;
/** CONNACK and SUBACK must come within this (mqtt.js's connectTimeout default); a connection that does not answer is closed. */
export const RESPONSE_TIMEOUT_MS = 30_000;
/** After DISCONNECT, how long end() waits for the server to close before destroying the socket. */
const CLOSE_TIMEOUT_MS = 5_000;
/** Fixed header byte of a PUBLISH at QoS 1, DUP 0, RETAIN 0 [MQTT-3.3.1]: type 3 << 4 | QoS 1 << 1. */
const PUBLISH_QOS1_HEADER = 0x32;
/** Subscription refused, in a SUBACK's return codes [MQTT-3.9.3]. */
const SUBACK_FAILURE = 0x80;
/** CONNACK return codes 1–5 [MQTT-3.2.2.3, table 3.1]. */
const CONNACK_REFUSALS = ["", "unacceptable protocol version", "identifier rejected", "server unavailable", "bad user name or password", "not authorized"];

const PROTOCOL = { protocolVersion: 4 } as const;
const PINGREQ = generate({ cmd: "pingreq" });
const DISCONNECT = generate({ cmd: "disconnect" });

/**
 * A QoS 1 PUBLISH of `payload` to `topic` with packet identifier `messageId` (1..65,535), encoded
 * once before the run so that publishing is one write of these bytes (`RawMqttClient.publish`).
 */
export function encodePublish(topic: string, payload: Uint8Array, messageId: number): Buffer {
  if (!Number.isInteger(messageId) || messageId < 1 || messageId > MESSAGE_ID_MAX) throw new Error(`packet identifier out of range: ${messageId}`);
  return generate(
    { cmd: "publish", qos: 1, dup: false, retain: false, topic, payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), messageId },
    PROTOCOL,
  );
}

/**
 * Where the packet identifier sits in a QoS 1 PUBLISH frame made by `encodePublish`: after the
 * fixed header (1 byte, then the remaining length in 1–4 bytes [MQTT-2.2.3]) and the topic name
 * (2-byte length, then its bytes [MQTT-3.3.2.1]). The payload starts 2 bytes later. Throws on
 * anything else (a bug: frames come from encodePublish).
 */
export function messageIdOffset(frame: Uint8Array): number {
  if (frame[0] !== PUBLISH_QOS1_HEADER) throw new Error(`not a QoS 1 PUBLISH frame (first byte ${frame[0]})`);
  let remaining = 0;
  let at = 1;
  for (let shift = 0; ; shift += 7) {
    if (at > 4 || at >= frame.length) throw new Error("PUBLISH frame: bad remaining length");
    const b = frame[at++]!;
    remaining += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
  }
  if (at + remaining !== frame.length || remaining < 4) throw new Error(`PUBLISH frame: remaining length ${remaining} does not match ${frame.length} bytes`);
  const idAt = at + 2 + ((frame[at]! << 8) | frame[at + 1]!);
  if (idAt + 2 > frame.length) throw new Error("PUBLISH frame: topic runs past the end");
  return idAt;
}

/** The payload inside a frame made by `encodePublish`: a view, no copy. */
export function publishPayload(frame: Buffer): Buffer {
  return frame.subarray(messageIdOffset(frame) + 2);
}

export interface RawConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Source address of the TCP connection (the benchmarks spread devices over 127.0.x.y). */
  readonly localAddress?: string;
  readonly clientId: string;
  readonly username: string;
  readonly password: string;
  /** Seconds; 0 turns keepalive off [MQTT-3.1.2.10]. At most 65,535. */
  readonly keepaliveS: number;
  /** Clean session [MQTT-3.1.2.4]; true unless said otherwise. */
  readonly clean?: boolean;
  /** Every PUBLISH the server sends (QoS 0 or 1), called before its PUBACK is queued; `payload` may be a view of the socket's read. */
  readonly onMessage?: (topic: string, payload: Buffer) => void;
  /** The connection closed after CONNACK without end() being called: `error` says why. Not called for a failed connect (its promise rejects instead). */
  readonly onClose?: (error: Error) => void;
}

/**
 * One MQTT 3.1.1 connection. `RawMqttClient.connect` resolves once CONNACK accepted it; after
 * that, errors are reported to `onClose`, never thrown, and ignored once end() was called.
 */
export class RawMqttClient {
  private readonly socket: Socket;
  private readonly parser: Parser;
  private readonly onMessage: (topic: string, payload: Buffer) => void;
  private readonly onClose: (error: Error) => void;
  private readonly keepaliveMs: number;
  /** PUBACK callbacks by packet identifier of our PUBLISHes in flight. */
  private readonly acks = new Map<number, () => void>();
  /** SUBACK waits by packet identifier. */
  private readonly subscribes = new Map<number, { resolve(): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  /** PUBACKs for the PUBLISHes of the socket read being parsed, written together after it. */
  private pubacks: Buffer[] = [];
  private connecting: { resolve(): void; reject(e: Error): void; timer: NodeJS.Timeout } | null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private sentSinceTick = true;
  private pingSentAt: number | null = null;
  /** Where the search for an unused packet identifier resumes: downwards from the top, away from the pre-encoded frames' low ones. */
  private spareId = MESSAGE_ID_MAX + 1;
  private error: Error | null = null;
  private accepted = false;
  private ending = false;
  private closed = false;
  private readonly closedPromise: Promise<void>;

  /** Opens the connection and sends CONNECT; resolves after a CONNACK with return code 0, rejects with the reason otherwise, within RESPONSE_TIMEOUT_MS. */
  static connect(o: RawConnectOptions): Promise<RawMqttClient> {
    return new Promise((resolve, reject) => {
      const client: RawMqttClient = new RawMqttClient(o, { resolve: () => resolve(client), reject });
    });
  }

  private constructor(o: RawConnectOptions, pending: { resolve(): void; reject(e: Error): void }) {
    if (!Number.isInteger(o.keepaliveS) || o.keepaliveS < 0 || o.keepaliveS > 65_535) throw new Error(`keepalive out of range: ${o.keepaliveS} s`);
    this.onMessage = o.onMessage ?? (() => {});
    this.onClose = o.onClose ?? (() => {});
    this.keepaliveMs = o.keepaliveS * 1000;
    this.parser = parser(PROTOCOL);
    this.parser.on("packet", (p) => this.onPacket(p));
    this.parser.on("error", (e: Error) => this.fail(new Error(`malformed packet from the server: ${e.message}`)));
    this.socket = createConnection({ host: o.host, port: o.port, ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }) });
    this.closedPromise = new Promise((resolve) => this.socket.once("close", resolve));
    this.socket.on("error", (e) => (this.error ??= e)); // 'close' follows and reports it; after end() it is ignored
    this.socket.on("close", () => this.onSocketClose());
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    const timer = setTimeout(() => this.fail(new Error(`no CONNACK within ${RESPONSE_TIMEOUT_MS / 1000} s`)), RESPONSE_TIMEOUT_MS);
    this.connecting = { ...pending, timer };
    const connect = generate(
      {
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: o.clean ?? true,
        clientId: o.clientId,
        keepalive: o.keepaliveS,
        username: o.username,
        password: Buffer.from(o.password, "utf8"),
      },
      PROTOCOL,
    );
    this.write(connect); // queued by the socket until it connects
  }

  /** CONNACK accepted and the connection not closed since. */
  get connected(): boolean {
    return this.accepted && !this.closed;
  }

  /** Subscribes to `topic` at QoS 1; resolves on SUBACK, rejects if the server refuses it (0x80), the connection closes, or no SUBACK comes within RESPONSE_TIMEOUT_MS (the connection is then closed). */
  subscribe(topic: string): Promise<void> {
    if (!this.connected) return Promise.reject(new Error("subscribe: not connected"));
    const messageId = this.spareMessageId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no SUBACK within ${RESPONSE_TIMEOUT_MS / 1000} s`)), RESPONSE_TIMEOUT_MS);
      this.subscribes.set(messageId, { resolve, reject, timer });
      this.write(generate({ cmd: "subscribe", messageId, subscriptions: [{ topic, qos: 1 }] }, PROTOCOL));
    });
  }

  /**
   * Writes `frame`, a QoS 1 PUBLISH from `encodePublish`, as it is; `onAck` runs when its PUBACK
   * arrives, never if the connection closes first. A packet identifier must not be reused while in
   * flight [MQTT-2.3.1-2]: the caller should not write a frame again before its PUBACK (the
   * load generator's frames carry seq % 65,535 + 1). If it does, the frame is copied with an
   * unused identifier (one allocation and copy): correct, only slower. Does nothing once closed.
   */
  publish(frame: Buffer, onAck: () => void): void {
    if (this.closed || this.ending) return;
    const at = messageIdOffset(frame);
    let id = (frame[at]! << 8) | frame[at + 1]!;
    if (this.acks.has(id) || this.subscribes.has(id)) {
      id = this.spareMessageId();
      frame = Buffer.from(frame);
      frame.writeUInt16BE(id, at);
    }
    this.acks.set(id, onAck);
    this.write(frame);
  }

  /** Sends DISCONNECT and closes; resolves once the socket is closed (destroyed after CLOSE_TIMEOUT_MS if the server does not close it). Errors from here on are ignored. */
  end(): Promise<void> {
    if (!this.ending && !this.closed) {
      this.ending = true;
      if (this.accepted) this.write(DISCONNECT); // then the client closes the connection [MQTT-3.14.4-1]
      this.socket.end();
      this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    }
    return this.closedPromise;
  }

  private write(bytes: Buffer): void {
    this.sentSinceTick = true;
    this.socket.write(bytes);
  }

  /** Closes the connection because of `e`; 'close' reports it. */
  private fail(e: Error): void {
    if (this.closed) return;
    this.error ??= e;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.parser.parse(chunk);
    if (this.pubacks.length === 0 || this.closed || this.socket.destroyed) return;
    const pubacks = this.pubacks;
    this.pubacks = [];
    this.write(pubacks.length === 1 ? pubacks[0]! : Buffer.concat(pubacks));
  }

  private onPacket(p: Packet): void {
    switch (p.cmd) {
      case "publish": {
        if (p.qos === 2) return this.fail(new Error("QoS 2 PUBLISH from the server: this client subscribes at QoS 1 at most"));
        this.onMessage(p.topic, typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload);
        // QoS 1: PUBACK with the PUBLISH's packet identifier [MQTT-4.3.2-2].
        if (p.qos === 1) this.pubacks.push(generate({ cmd: "puback", messageId: p.messageId! }, PROTOCOL));
        return;
      }
      case "puback": {
        const onAck = this.acks.get(p.messageId!);
        if (onAck === undefined) return; // not ours in flight (none expected): ignored, as mqtt.js does
        this.acks.delete(p.messageId!);
        onAck();
        return;
      }
      case "connack": {
        const pending = this.connecting;
        if (pending === null) return this.fail(new Error("a second CONNACK"));
        const code = p.returnCode ?? -1;
        if (code !== 0)
          return this.fail(new Error(`connection refused: CONNACK return code ${code}${CONNACK_REFUSALS[code] ? ` (${CONNACK_REFUSALS[code]})` : ""}`));
        clearTimeout(pending.timer);
        this.connecting = null;
        this.accepted = true;
        // Something must be sent within every keepalive period [MQTT-3.1.2-23]: checked twice per period, a PINGREQ when nothing went out since the last check.
        if (this.keepaliveMs > 0) this.keepaliveTimer = setInterval(() => this.keepalive(), this.keepaliveMs / 2).unref();
        pending.resolve();
        return;
      }
      case "suback": {
        const s = this.subscribes.get(p.messageId!);
        if (s === undefined) return this.fail(new Error(`SUBACK for packet identifier ${p.messageId} not in flight`));
        this.subscribes.delete(p.messageId!);
        clearTimeout(s.timer);
        if (p.granted[0] === SUBACK_FAILURE) s.reject(new Error("subscription refused (SUBACK 0x80)"));
        else s.resolve();
        return;
      }
      case "pingresp":
        this.pingSentAt = null;
        return;
      default:
        return this.fail(new Error(`unexpected ${p.cmd} from the server`));
    }
  }

  private keepalive(): void {
    const now = performance.now();
    if (this.pingSentAt !== null && now - this.pingSentAt >= this.keepaliveMs) return this.fail(new Error(`no PINGRESP within ${this.keepaliveMs / 1000} s`));
    if (!this.sentSinceTick && this.pingSentAt === null) {
      this.write(PINGREQ);
      this.pingSentAt = now;
    }
    this.sentSinceTick = false;
  }

  /** An identifier neither a PUBLISH nor a SUBSCRIBE of ours has in flight [MQTT-2.3.1-2]. */
  private spareMessageId(): number {
    for (let i = 0; i < MESSAGE_ID_MAX; i++) {
      this.spareId = this.spareId <= 1 ? MESSAGE_ID_MAX : this.spareId - 1;
      if (!this.acks.has(this.spareId) && !this.subscribes.has(this.spareId)) return this.spareId;
    }
    throw new Error("all 65,535 packet identifiers in flight"); // a bug: the load generator keeps a small window per client
  }

  private onSocketClose(): void {
    this.closed = true;
    if (this.keepaliveTimer !== null) clearInterval(this.keepaliveTimer);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    const error =
      this.error ?? new Error(this.ending ? "closed by end()" : this.accepted ? "connection closed by the server" : "connection closed before CONNACK");
    if (this.connecting !== null) {
      clearTimeout(this.connecting.timer);
      this.connecting.reject(error);
      this.connecting = null;
    }
    for (const s of this.subscribes.values()) {
      clearTimeout(s.timer);
      s.reject(error);
    }
    this.subscribes.clear();
    this.acks.clear();
    this.pubacks = [];
    if (this.accepted && !this.ending) this.onClose(error);
  }
}
