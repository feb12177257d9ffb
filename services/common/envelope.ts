/**
 * What every service that settles device envelopes shares: the GP sizes it budgets against, the
 * device id, and the signed layout of an envelope (devices/envelope.ts `signingBytes`),
 * re-implemented here because a service imports only node/service-api and services/common.
 */
import { ascii, bytesEqual, fail, ok, Reader, type Result } from "./bytes.ts";

/** W_B, GP I.4.4: the largest work-package bundle, in bytes. */
export const W_B = 13_791_360;
/** W_R, GP I.4.4: the largest total of a work report's results, in bytes. */
export const W_R = 49_152;

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
/** A device id: the first 16 bytes of blake2b-256(public key) (docs/protocol.md, "Identity"). */
export const DEVICE_ID_BYTES = 16;

/** 16 raw bytes of a device id (the gateway's DeviceId is the same bytes as 32 lowercase hex digits). */
export type RawDeviceId = Uint8Array & { readonly __brand: "RawDeviceId" };

export function tryAsRawDeviceId(bytes: Uint8Array): RawDeviceId | null {
  return bytes.length === DEVICE_ID_BYTES ? (bytes as RawDeviceId) : null;
}

/** Domain separation of envelope signatures: "jamgate/envelope/v1" ⌢ 0x00. */
export const ENVELOPE_DOMAIN = ascii("jamgate/envelope/v1\u0000");
export const ENVELOPE_VERSION = 1;
const DEVICE_ID_HEX_DIGITS = 2 * DEVICE_ID_BYTES;

export interface SignedFields {
  readonly version: number;
  readonly deviceId: RawDeviceId;
  readonly seq: bigint;
  /** The envelope kind, ASCII (e.g. "meter.reading"); not interpreted by this service. */
  readonly kind: string;
  readonly timeMs: bigint;
  /** A view of the body inside the signed bytes. */
  readonly body: Uint8Array;
}

/**
 * Parses "jamgate/envelope/v1" ⌢ 0x00 ⌢ u8 version ⌢ u8 |device| ⌢ device (ASCII hex) ⌢ u64 seq
 * ⌢ u8 |kind| ⌢ kind (ASCII) ⌢ u64 timeMs ⌢ u32 |body| ⌢ body; never throws.
 */
export function parseSigningBytes(bytes: Uint8Array): Result<SignedFields> {
  const r = new Reader(bytes);
  if (!bytesEqual(r.bytes(ENVELOPE_DOMAIN.length), ENVELOPE_DOMAIN)) return fail("signed bytes do not start with the envelope domain");
  const version = r.u8();
  if (version !== ENVELOPE_VERSION) return fail(`envelope version ${version}, not ${ENVELOPE_VERSION}`);
  const deviceLength = r.u8();
  if (deviceLength !== DEVICE_ID_HEX_DIGITS) return fail(`device id of ${deviceLength} characters, not ${DEVICE_ID_HEX_DIGITS}`);
  const deviceId = lowerHexAsciiToBytes(r.bytes(deviceLength));
  if (deviceId === null) return fail("device id is not lowercase hex");
  const seq = r.u64();
  const kindBytes = r.bytes(r.u8());
  let kind = "";
  for (const c of kindBytes) {
    if (c < 0x21 || c > 0x7e) return fail("envelope kind is not printable ASCII");
    kind += String.fromCharCode(c);
  }
  const timeMs = r.u64();
  const body = r.bytes(r.u32());
  if (r.failed) return fail("signed bytes are truncated");
  if (!r.done) return fail(`${r.remaining} bytes after the body`);
  return ok({ version, deviceId: deviceId as RawDeviceId, seq, kind, timeMs, body });
}

function lowerHexAsciiToBytes(text: Uint8Array): Uint8Array | null {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text[2 * i]!);
    const lo = hexValue(text[2 * i + 1]!);
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10; // a-f
  return -1;
}
