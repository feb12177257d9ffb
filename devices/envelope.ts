/**
 * Device envelopes: what a meter, inverter, router or client sends over MQTT. One canonical
 * binary form (CBOR, RFC 8949, through cbor-x) on the wire, and one fixed byte layout that is
 * signed (Ed25519, RFC 8032), so firmware can sign without a CBOR library and any verifier gets
 * the same bytes.
 *
 * Wire form: a CBOR map `{ v: version, d: deviceId, s: seq, k: kind, t: timeMs, b: body, sig }`
 * where `b` is a byte string holding the CBOR of the readings (kept as bytes so the signature
 * never depends on how a decoder re-encodes a map). Encoded by ./cbor.ts: plain byte strings
 * (no RFC 8746 tag), shortest headers.
 *
 * Signed bytes (`signingBytes`): "jamgate/envelope/v1" ⌢ 0x00 ⌢ u8 version ⌢ u8 |device| ⌢
 * device (ASCII) ⌢ u64 seq ⌢ u8 |kind| ⌢ kind (ASCII) ⌢ u64 timeMs ⌢ u32 |body| ⌢ body, integers
 * little-endian.
 *
 * This module runs in browsers and firmware-like settings: it imports no Node built-ins.
 */
import * as ed from "@noble/ed25519";
import { blake2b } from "@noble/hashes/blake2.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { decodeCbor as cborDecode, encodeCbor } from "./cbor.ts";
import { rowsOf } from "./readings.ts";
import { toHex } from "./protocol/hex.ts";
import { ENVELOPE_KINDS, type EnvelopeKind } from "./protocol/envelope-kinds.ts";

// @noble/ed25519 v3's synchronous API needs SHA-512 supplied.
ed.hashes.sha512 = sha512;

export const ENVELOPE_VERSION = 1;
/** Largest envelope on the wire: 60 one-second readings of a meter are ~480 bytes in columns (./readings.ts), ~3.8 KB as rows; 64 KiB leaves room and bounds memory per message. */
export const ENVELOPE_BYTES_MAX = 64 * 1024;
/** Largest body (CBOR readings) inside an envelope. */
export const BODY_BYTES_MAX = ENVELOPE_BYTES_MAX - 256;
/** Domain separation of envelope signatures: never valid as any other jamgate signature. */
export const ENVELOPE_DOMAIN = new TextEncoder().encode("jamgate/envelope/v1\u0000");

/** What a device sends (./protocol/envelope-kinds.ts), exported here as part of this module's public API. */
export { ENVELOPE_KINDS, type EnvelopeKind };

/** A device id: 32 lowercase hex digits, the first 16 bytes of blake2b-256(public key). */
export type DeviceId = string & { readonly __brand: "DeviceId" };

const DEVICE_ID_PATTERN = /^[0-9a-f]{32}$/;

export function tryAsDeviceId(value: string): DeviceId | null {
  return DEVICE_ID_PATTERN.test(value) ? (value as DeviceId) : null;
}

export function deviceIdOf(publicKey: Uint8Array): DeviceId {
  if (publicKey.length !== 32) throw new Error(`an Ed25519 public key is 32 bytes, got ${publicKey.length}`);
  return toHex(blake2b(publicKey, { dkLen: 32 }).subarray(0, 16)) as DeviceId;
}

export interface EnvelopeFields {
  readonly version: number;
  readonly device: DeviceId;
  /** Per-device sequence number, from 0, one per envelope: (device, seq) is the envelope's identity. */
  readonly seq: number;
  readonly kind: EnvelopeKind;
  /** When the device made it: ms since the Unix epoch, by the device's clock. */
  readonly timeMs: number;
  /** CBOR of the readings. */
  readonly body: Uint8Array;
}

export interface Envelope extends EnvelopeFields {
  readonly signature: Uint8Array;
}

/** Bad envelope bytes, as the error registry names them (devices/protocol/errors.ts, docs/errors.md). */
/** Why an envelope does not decode, and its seq whenever it could be read (a CBOR map whose `s` is a natural below 2^53), else null. */
export type EnvelopeDecodeError = {
  readonly code: "JG_ERR_ENVELOPE_OVERSIZE" | "JG_ERR_ENVELOPE_MALFORMED" | "JG_ERR_ENVELOPE_VERSION" | "JG_ERR_ENVELOPE_KIND";
  readonly detail: string;
  readonly seq: number | null;
};

/**
 * An oversize envelope is still decoded up to this size, so its refusal can name its seq. The
 * gateway's MQTT packet bound (gateway/packet-bounds.ts) lets at most ~1 KiB past the limit reach it.
 */
const OVERSIZE_DECODED_BYTES_MAX = ENVELOPE_BYTES_MAX + 4 * 1024;

export type DecodeResult = { readonly ok: true; readonly envelope: Envelope } | { readonly ok: false; readonly error: EnvelopeDecodeError };

/** UTF-8 of an ASCII string without a TextEncoder call (device ids and kinds are ASCII; per envelope, the encoder was 4% of the gateway's thread). */
function utf8(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return textEncoder.encode(text);
    out[i] = c;
  }
  return out;
}
const textEncoder = new TextEncoder();

export function signingBytes(e: EnvelopeFields): Uint8Array {
  const writer = signingBytesWriter(e);
  const out = new Uint8Array(writer.length);
  writer.write(out);
  return out;
}

/** The signed bytes of an envelope, to be written where the caller keeps them (no buffer of their own). */
export interface SigningBytesWriter {
  readonly length: number;
  /** Writes the signed bytes into the start of `out` (at least `length` long). */
  write(out: Uint8Array): void;
}

/** A writer of signingBytes(e): the gateway writes them straight into the envelope's log record. */
export function signingBytesWriter(e: EnvelopeFields): SigningBytesWriter {
  const device = utf8(e.device);
  const kind = utf8(e.kind);
  const length = ENVELOPE_DOMAIN.length + 1 + 1 + device.length + 8 + 1 + kind.length + 8 + 4 + e.body.length;
  return {
    length,
    write(out) {
      if (out.length < length) throw new RangeError(`signed bytes take ${length} octets, the buffer has ${out.length}`);
      const view = new DataView(out.buffer, out.byteOffset, length);
      let at = 0;
      out.set(ENVELOPE_DOMAIN, at);
      at += ENVELOPE_DOMAIN.length;
      view.setUint8(at++, e.version);
      view.setUint8(at++, device.length);
      out.set(device, at);
      at += device.length;
      view.setBigUint64(at, BigInt(e.seq), true);
      at += 8;
      view.setUint8(at++, kind.length);
      out.set(kind, at);
      at += kind.length;
      view.setBigUint64(at, BigInt(e.timeMs), true);
      at += 8;
      view.setUint32(at, e.body.length, true);
      at += 4;
      out.set(e.body, at);
    },
  };
}

/** Signs with the device's 32-byte Ed25519 secret key (seed). */
export function signEnvelope(fields: EnvelopeFields, secretKey: Uint8Array): Envelope {
  checkFields(fields);
  return { ...fields, signature: ed.sign(signingBytes(fields), secretKey) };
}

/** Verifies with @noble/ed25519 (portable; the gateway verifies with node:crypto, same result). */
export function verifyEnvelope(e: Envelope, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(e.signature, signingBytes(e), publicKey);
  } catch {
    return false;
  }
}

export function encodeEnvelope(e: Envelope): Uint8Array {
  return encodeCbor({ v: e.version, d: e.device, s: e.seq, k: e.kind, t: e.timeMs, b: e.body, sig: e.signature });
}

/** Decodes and shape-checks; never throws on any input. The signature is not checked here. */
export function decodeEnvelope(bytes: Uint8Array): DecodeResult {
  if (bytes.length > ENVELOPE_BYTES_MAX) {
    return refused(
      "JG_ERR_ENVELOPE_OVERSIZE",
      `${bytes.length} bytes > ${ENVELOPE_BYTES_MAX}`,
      bytes.length <= OVERSIZE_DECODED_BYTES_MAX ? seqOf(decodedMap(bytes)) : null,
    );
  }
  let value: unknown;
  try {
    value = cborDecode(bytes);
  } catch (e) {
    return refused("JG_ERR_ENVELOPE_MALFORMED", `not CBOR: ${e instanceof Error ? e.message : String(e)}`, null);
  }
  if (!isMap(value)) return refused("JG_ERR_ENVELOPE_MALFORMED", "not a CBOR map", null);
  const m = value;
  // From here every refusal names the seq, when `s` is one.
  const bad = (code: EnvelopeDecodeError["code"], detail: string) => refused(code, detail, seqOf(m));
  const keys = Object.keys(m).sort().join(",");
  if (keys !== "b,d,k,s,sig,t,v") return bad("JG_ERR_ENVELOPE_MALFORMED", `keys must be v,d,s,k,t,b,sig; got ${keys.slice(0, 80)}`);
  if (m.v !== ENVELOPE_VERSION) return bad("JG_ERR_ENVELOPE_VERSION", `version ${String(m.v).slice(0, 20)}, this gateway speaks ${ENVELOPE_VERSION}`);
  const device = typeof m.d === "string" ? tryAsDeviceId(m.d) : null;
  if (device === null) return bad("JG_ERR_ENVELOPE_MALFORMED", "d must be a device id (32 lowercase hex digits)");
  if (!isSafeNatural(m.s)) return bad("JG_ERR_ENVELOPE_MALFORMED", "s must be a non-negative integer below 2^53");
  if (typeof m.k !== "string") return bad("JG_ERR_ENVELOPE_MALFORMED", "k must be a string");
  if (!(ENVELOPE_KINDS as readonly string[]).includes(m.k)) return bad("JG_ERR_ENVELOPE_KIND", `unknown kind ${JSON.stringify(m.k.slice(0, 40))}`);
  if (!isSafeNatural(m.t)) return bad("JG_ERR_ENVELOPE_MALFORMED", "t must be ms since the epoch, a non-negative integer");
  if (!(m.b instanceof Uint8Array) || m.b.length > BODY_BYTES_MAX)
    return bad("JG_ERR_ENVELOPE_MALFORMED", `b must be a byte string of at most ${BODY_BYTES_MAX} bytes`);
  if (!(m.sig instanceof Uint8Array) || m.sig.length !== 64) return bad("JG_ERR_ENVELOPE_MALFORMED", "sig must be 64 bytes");
  return {
    ok: true,
    envelope: { version: m.v, device, seq: m.s, kind: m.k as EnvelopeKind, timeMs: m.t, body: new Uint8Array(m.b), signature: new Uint8Array(m.sig) },
  };
}

/** Encodes any CBOR value as an envelope body, as it is (`encodeReadings` in ./readings.ts also finds the compact column form of readings). */
export function encodeBody(readings: unknown): Uint8Array {
  return encodeCbor(readings);
}

/** Decodes a body; readings in the column form come back as rows, at most `rowsMax` (./readings.ts). Throws on bad CBOR. */
export function decodeBody(body: Uint8Array, rowsMax?: number): unknown {
  return rowsOf(cborDecode(body), rowsMax);
}

function isSafeNatural(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function checkFields(f: EnvelopeFields): void {
  if (f.version !== ENVELOPE_VERSION) throw new Error(`envelope version must be ${ENVELOPE_VERSION}`);
  if (tryAsDeviceId(f.device) === null) throw new Error(`not a device id: ${f.device}`);
  if (!isSafeNatural(f.seq)) throw new Error(`seq must be a non-negative safe integer, got ${f.seq}`);
  if (!isSafeNatural(f.timeMs)) throw new Error(`timeMs must be a non-negative safe integer, got ${f.timeMs}`);
  if (!(ENVELOPE_KINDS as readonly string[]).includes(f.kind)) throw new Error(`unknown kind ${f.kind}`);
  if (f.body.length > BODY_BYTES_MAX) throw new Error(`body of ${f.body.length} bytes > ${BODY_BYTES_MAX}`);
}

function refused(code: EnvelopeDecodeError["code"], detail: string, seq: number | null): DecodeResult {
  return { ok: false, error: { code, detail, seq } };
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** The CBOR map `bytes` decodes to, or null. */
function decodedMap(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = cborDecode(bytes);
    return isMap(value) ? value : null;
  } catch {
    return null;
  }
}

/** An envelope map's seq, if its `s` is one. */
function seqOf(m: Record<string, unknown> | null): number | null {
  return m !== null && isSafeNatural(m.s) ? m.s : null;
}

/** Lowercase hex (devices/protocol/hex.ts), exported here as part of this module's public API. */
export { toHex };

export function fromHex(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
