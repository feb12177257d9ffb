/**
 * MQTT packet sizes bounded from the fixed header, before aedes buffers a packet's body.
 *
 * aedes' parser (mqtt-packet) reads a packet's Remaining Length [MQTT-2.2.3] and then keeps every
 * byte until the whole packet has arrived, whatever length it declared (up to 256 MiB), and it does
 * so before the authenticate hook runs: four unauthenticated sockets declaring 256 MiB CONNECTs
 * held ~800 MiB. `BoundedMqttStream` sits between the socket (TCP, TLS or a WebSocket stream) and
 * aedes, reads each fixed header as it passes, and destroys the connection as soon as a header
 * declares more than its packet type may hold, or when the first packet is not a CONNECT
 * [MQTT-3.1.0-1]. Bytes pass through unchanged and uncopied; only headers are looked at.
 */
import { Duplex } from "node:stream";
import { ENVELOPE_BYTES_MAX } from "../devices/envelope.ts";

/** MQTT control packet types [MQTT-2.2.1]. */
const CONNECT = 1;
const PUBLISH = 3;

export const packetLimits = {
  /**
   * Remaining Length of a CONNECT: a client id (a device id, 32 characters), a username, a token
   * (~150 bytes) and MQTT's own fields fit in a few hundred bytes; 4 KiB leaves room and keeps an
   * unauthenticated socket to 4 KiB of buffered packet.
   */
  connectBytesMax: 4 * 1024,
  /**
   * Remaining Length of a PUBLISH: an envelope (ENVELOPE_BYTES_MAX) plus its topic (at most
   * `brokerLimits.maxTopicLevels` short levels) and packet id. An envelope a little over its limit
   * still arrives and is refused with JG_ERR_ENVELOPE_OVERSIZE and its seq; one far over it closes
   * the connection here, unread.
   */
  publishBytesMax: ENVELOPE_BYTES_MAX + 1024,
  /** Every other packet (SUBSCRIBE, UNSUBSCRIBE, PUBACK, PINGREQ, DISCONNECT…): a few topic filters at most. */
  otherBytesMax: 4 * 1024,
} as const;

export type PacketLimits = { readonly [K in keyof typeof packetLimits]: number };

/** Why a connection was closed by the bounds. */
export type PacketBoundsViolation =
  | { readonly kind: "oversize"; readonly packetType: number; readonly declaredBytes: number; readonly limitBytes: number }
  | { readonly kind: "not-connect-first"; readonly packetType: number }
  | { readonly kind: "malformed-length" };

/**
 * Reads MQTT fixed headers across chunk boundaries: each is one type byte, then a Remaining
 * Length of one to four bytes (7 bits each, low first, high bit = more) [MQTT-2.2.3]. Between
 * headers it only counts the body bytes it skips.
 */
export class FixedHeaderScanner {
  /** Body bytes of the current packet still to pass. */
  private bodyLeft = 0;
  /** Type of the packet whose header is being read, or -1 between packets. */
  private type = -1;
  private length = 0;
  private lengthBytes = 0;
  private packets = 0;

  constructor(private readonly limits: PacketLimits = packetLimits) {}

  /** Scans `chunk`; returns the first violation in it, or null. */
  scan(chunk: Uint8Array): PacketBoundsViolation | null {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.bodyLeft > 0) {
        const skip = Math.min(this.bodyLeft, n - i);
        this.bodyLeft -= skip;
        i += skip;
        continue;
      }
      const byte = chunk[i++]!;
      if (this.type < 0) {
        this.type = byte >> 4;
        this.length = 0;
        this.lengthBytes = 0;
        if (this.packets === 0 && this.type !== CONNECT) return { kind: "not-connect-first", packetType: this.type };
        continue;
      }
      // 128^lengthBytes as a multiplication: a shift would overflow 32 bits at the fourth byte.
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return { kind: "malformed-length" };
        continue;
      }
      const limit = this.type === CONNECT ? this.limits.connectBytesMax : this.type === PUBLISH ? this.limits.publishBytesMax : this.limits.otherBytesMax;
      if (this.length > limit) return { kind: "oversize", packetType: this.type, declaredBytes: this.length, limitBytes: limit };
      this.packets++;
      this.bodyLeft = this.length;
      this.type = -1;
    }
    return null;
  }
}

/** The listener a connection came in on: MQTT over TCP or TLS, or over WebSocket or WebSocket over TLS. */
export type MqttTransport = "mqtt" | "mqtts" | "ws" | "wss";

/** What a wrapped connection carries over from its socket for the gateway's hooks. */
export interface ConnectionFacts {
  readonly remoteAddress: string;
  /** Set by the listener that accepted the socket (broker.ts), so no hook has to guess it from the socket's type. */
  readonly transport: MqttTransport;
  /** The subject CN of a client certificate the TLS listener verified against its client CA; null without one. */
  readonly clientCertificateCn: string | null;
}

/**
 * A duplex over `inner` (a socket or a WebSocket stream) whose readable side is bounded by
 * FixedHeaderScanner. On a violation it calls `onViolation` with itself (so the broker can tell
 * which client it carried) and then destroys both sides; aedes sees the connection close. Writes
 * go to `inner` as they are.
 *
 * Written here rather than as a Transform piped from the socket so that a chunk is pushed on as
 * the same Buffer (no extra stream hop with its own buffering), and destroy, end and drain reach
 * the socket directly.
 */
export class BoundedMqttStream extends Duplex {
  private readonly scanner: FixedHeaderScanner;
  readonly remoteAddress: string;
  readonly transport: MqttTransport;
  readonly clientCertificateCn: string | null;

  constructor(
    private readonly inner: Duplex,
    facts: ConnectionFacts,
    limits: PacketLimits,
    private readonly onViolation: (violation: PacketBoundsViolation, facts: ConnectionFacts, stream: BoundedMqttStream) => void,
  ) {
    super({ allowHalfOpen: false });
    this.scanner = new FixedHeaderScanner(limits);
    this.remoteAddress = facts.remoteAddress;
    this.transport = facts.transport;
    this.clientCertificateCn = facts.clientCertificateCn;
    inner.on("data", (chunk: Buffer) => {
      const violation = this.scanner.scan(chunk);
      if (violation !== null) {
        inner.pause();
        this.onViolation(violation, facts, this);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on("end", () => this.push(null));
    inner.on("error", (e) => this.destroy(e));
    inner.on("close", () => {
      if (!this.destroyed) this.destroy();
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.inner.destroyed) return callback(new Error("connection closed"));
    this.inner.write(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    if (this.inner.destroyed) return callback(new Error("connection closed"));
    this.inner.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.inner.write(chunks[i]!.chunk);
    this.inner.write(chunks[chunks.length - 1]!.chunk, callback);
    this.inner.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy();
    callback(error);
  }
}
