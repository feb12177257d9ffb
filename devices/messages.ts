/**
 * What the gateway sends down to a device, and the MQTT topics both sides use (docs/protocol.md):
 *
 * - `devices/{id}/up/{kind}`: the device publishes envelopes (QoS 1).
 * - `devices/{id}/down/receipts`: CBOR `{s: [seq, …], p: package hash, h: block header hash, t: slot}`,
 *   one message for all of a device's envelopes settled in one work package (seqs ascending).
 * - `devices/{id}/down/errors`: CBOR `{s: seq | null, c: "JG_ERR_…", m: detail}`.
 *
 * The gateway imports the encoders, the device the decoders; decoders never throw, they return
 * null for anything that is not exactly the documented shape. Browser-safe: no Node built-ins.
 */
import { decodeCbor, encodeCbor } from "./cbor.ts";
import { type DeviceId, type EnvelopeKind, tryAsDeviceId } from "./envelope.ts";
import { seqRanges } from "./protocol/seq-ranges.ts";

/** Largest receipt or error message: a receipt is ~90 bytes plus ≤ 9 per seq past the first (≤ ~2.4 KB), an error at most ~DETAIL_CHARS_MAX × 4; anything bigger is not ours. */
export const DOWN_MESSAGE_BYTES_MAX = 4096;
/**
 * Seqs in one receipt message at most. A device's envelopes in one package are far fewer: the
 * service's seq window (64) bounds them; the gateway splits a longer list into several messages.
 */
export const RECEIPT_SEQS_MAX = 256;
/** Longest error detail: a sentence or two for a human, short enough for a constrained device to keep. */
export const DETAIL_CHARS_MAX = 512;
const HASH_BYTES = 32;
/** A JAM timeslot is a u32 (Gray Paper §4.6, `H_t`). */
const SLOT_MAX = 2 ** 32 - 1;
const CODE_PATTERN = /^JG_ERR_[A-Z0-9_]{1,64}$/;

/** The gateway's word that an envelope is settled: in work package `packageHash`, accumulated in the block `blockHash` of `slot`. */
export interface Receipt {
  readonly seq: number;
  readonly packageHash: Uint8Array;
  readonly blockHash: Uint8Array;
  readonly slot: number;
}

/** The gateway's word that an envelope was refused (`seq` null when it could not be read). `code` is a registry code (docs/errors.md). */
export interface DeviceError {
  readonly seq: number | null;
  readonly code: string;
  readonly detail: string;
}

/**
 * One receipt message: the gateway's word that each of `seqs` is settled in work package
 * `packageHash`, accumulated in block `blockHash` of `slot`. One per device and package: a
 * message per envelope cost the gateway a socket write and a PUBACK to read for each, ~15 µs
 * of its main thread apiece (measured, bench/gateway.ts --cpu-prof).
 */
export interface ReceiptBatch {
  /** Ascending, no repeats, 1 to RECEIPT_SEQS_MAX of them. */
  readonly seqs: readonly number[];
  readonly packageHash: Uint8Array;
  readonly blockHash: Uint8Array;
  readonly slot: number;
}

/** Ascending seqs as ranges (./protocol/seq-ranges.ts), exported here as part of this module's public API. */
export { seqRanges };

export function encodeReceipts(r: ReceiptBatch): Uint8Array {
  if (!isAscendingSeqs(r.seqs)) throw new Error(`receipt seqs must be 1 to ${RECEIPT_SEQS_MAX} ascending naturals: ${String(r.seqs as unknown).slice(0, 80)}`);
  if (!isSafeNatural(r.slot) || r.slot > SLOT_MAX) throw new Error(`receipt slot out of range: ${r.slot}`);
  if (r.packageHash.length !== HASH_BYTES || r.blockHash.length !== HASH_BYTES) throw new Error("receipt hashes are 32 bytes");
  return encodeCbor({ s: r.seqs, p: r.packageHash, h: r.blockHash, t: r.slot });
}

/** A receipt message for one envelope. */
export function encodeReceipt(r: Receipt): Uint8Array {
  return encodeReceipts({ seqs: [r.seq], packageHash: r.packageHash, blockHash: r.blockHash, slot: r.slot });
}

/**
 * A receipt message as one Receipt per seq, in its order. `s` may also be a single seq (the form
 * before receipts were batched), read as a list of one.
 */
export function decodeReceipts(bytes: Uint8Array): Receipt[] | null {
  const m = decodeMap(bytes, "h,p,s,t");
  if (m === null) return null;
  const seqs = isSafeNatural(m.s) ? [m.s] : m.s;
  if (!isAscendingSeqs(seqs) || !isSafeNatural(m.t) || m.t > SLOT_MAX) return null;
  if (!isHash(m.p) || !isHash(m.h)) return null;
  const packageHash = new Uint8Array(m.p);
  const blockHash = new Uint8Array(m.h);
  const slot = m.t;
  return seqs.map((seq) => ({ seq, packageHash, blockHash, slot }));
}

function isAscendingSeqs(v: unknown): v is readonly number[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > RECEIPT_SEQS_MAX) return false;
  for (let i = 0; i < v.length; i++) if (!isSafeNatural(v[i]) || (i > 0 && v[i] <= v[i - 1])) return false;
  return true;
}

/** Encodes an error; a detail longer than DETAIL_CHARS_MAX is cut (it is for humans), a code that is not `JG_ERR_…` is a bug. */
export function encodeDeviceError(e: DeviceError): Uint8Array {
  if (!CODE_PATTERN.test(e.code)) throw new Error(`not an error code: ${e.code}`);
  if (e.seq !== null && !isSafeNatural(e.seq)) throw new Error(`error seq out of range: ${e.seq}`);
  return encodeCbor({ s: e.seq, c: e.code, m: e.detail.length > DETAIL_CHARS_MAX ? `${e.detail.slice(0, DETAIL_CHARS_MAX - 1)}…` : e.detail });
}

export function decodeDeviceError(bytes: Uint8Array): DeviceError | null {
  const m = decodeMap(bytes, "c,m,s");
  if (m === null) return null;
  if (m.s !== null && !isSafeNatural(m.s)) return null;
  if (typeof m.c !== "string" || !CODE_PATTERN.test(m.c)) return null;
  if (typeof m.m !== "string" || m.m.length > DETAIL_CHARS_MAX) return null;
  return { seq: m.s, code: m.c, detail: m.m };
}

// Topics. Levels never hold `+`, `#` or `/`: device ids are hex and kinds are dotted lowercase
// words, so a topic name is always valid [MQTT-4.7.1-1] and its parse is unambiguous.

/** What the gateway sends a device: receipts, errors, and control messages (a router told to disconnect a session whose client ran out of balance). */
export type DownChannel = "receipts" | "errors" | "control";

const TOPIC_ROOT = "devices";
/** A kind level in an up topic: lowercase words joined by dots (e.g. `meter.reading`); not checked against ENVELOPE_KINDS, see parseUpTopic. */
const KIND_LEVEL_PATTERN = /^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*){0,3}$/;
/** Longest kind level accepted by parseUpTopic; the envelope's own kind field is at most 255 bytes, ours are under 20. */
const KIND_CHARS_MAX = 64;

/** Where a device publishes envelopes of `kind`. */
export function upTopic(id: DeviceId, kind: EnvelopeKind): string {
  return `${TOPIC_ROOT}/${id}/up/${kind}`;
}

/** Where the gateway publishes a device's receipts or errors. */
export function downTopic(id: DeviceId, channel: DownChannel): string {
  return `${TOPIC_ROOT}/${id}/down/${channel}`;
}

/** The filter a device subscribes to: all of its own down topics (multi-level wildcard, [MQTT-4.7.1-2]). */
export function DOWN_WILDCARD(id: DeviceId): string {
  return `${TOPIC_ROOT}/${id}/down/#`;
}

/**
 * Reads `devices/{id}/up/{kind}`; null for anything else (the gateway's publish ACL). `kind` is the
 * topic's last level, well formed but not checked against ENVELOPE_KINDS, so that an unknown kind
 * under a device's own topic is answered JG_ERR_ENVELOPE_KIND on its error topic rather than
 * costing it the connection.
 */
export function parseUpTopic(topic: string): { deviceId: DeviceId; kind: string } | null {
  const levels = topic.split("/");
  if (levels.length !== 4 || levels[0] !== TOPIC_ROOT || levels[2] !== "up") return null;
  const deviceId = tryAsDeviceId(levels[1]!);
  const kind = levels[3]!;
  if (deviceId === null || kind.length > KIND_CHARS_MAX || !KIND_LEVEL_PATTERN.test(kind)) return null;
  return { deviceId, kind };
}

/** Reads `devices/{id}/down/{receipts|errors}`; null for anything else. */
export function parseDownTopic(topic: string): { deviceId: DeviceId; channel: DownChannel } | null {
  const levels = topic.split("/");
  if (levels.length !== 4 || levels[0] !== TOPIC_ROOT || levels[2] !== "down") return null;
  const deviceId = tryAsDeviceId(levels[1]!);
  const channel = levels[3];
  if (deviceId === null || (channel !== "receipts" && channel !== "errors")) return null;
  return { deviceId, channel };
}

function decodeMap(bytes: Uint8Array, sortedKeys: string): Record<string, unknown> | null {
  if (bytes.length > DOWN_MESSAGE_BYTES_MAX) return null;
  try {
    const value = decodeCbor(bytes);
    if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) return null;
    const m = value as Record<string, unknown>;
    return Object.keys(m).sort().join(",") === sortedKeys ? m : null;
  } catch {
    return null;
  }
}

function isHash(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === HASH_BYTES;
}

function isSafeNatural(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
