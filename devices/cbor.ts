/**
 * The one CBOR encoder of everything a device or the gateway puts on the wire (envelopes, their
 * bodies, receipts, errors). cbor-x's default `encode` tags a Uint8Array with RFC 8746 tag 64 and
 * writes every map header with a 16-bit length; this encoder writes plain RFC 8949 data items
 * instead: byte strings as major type 2 and the shortest map header (RFC 8949 §4.2.1, "preferred
 * serialization"), so a C or Rust decoder on a meter reads what docs/protocol.md promises.
 * Browser-safe: no Node built-ins.
 */
import { Decoder, Encoder } from "cbor-x";

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true });
// int64AsNumber: 64-bit integers within 2^53 come back as numbers, as they went in.
const decoder = new Decoder({ mapsAsObjects: true, int64AsNumber: true } as ConstructorParameters<typeof Decoder>[0]);

/**
 * Integers stay integers on the wire: cbor-x writes a JS number ≥ 2^32 (a time in ms, a lifetime
 * energy counter) as a float64; as a bigint it writes major type 0 with an 8-byte argument, the
 * shortest integer form for it (RFC 8949 §4.2.1). Services read integers only (no floats in refine).
 */
function integersAsIntegers(value: unknown): unknown {
  if (typeof value === "number") return Number.isSafeInteger(value) && (value > 0xffff_ffff || value < -0x1_0000_0000) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(integersAsIntegers);
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array) && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = integersAsIntegers(v);
    return out;
  }
  return value;
}

export function encodeCbor(value: unknown): Uint8Array {
  const bytes: Uint8Array = encoder.encode(integersAsIntegers(value));
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes any CBOR (throws on bad input; callers at the edge catch and return a coded error). Byte strings come back as Uint8Array (a Buffer in Node). */
export function decodeCbor(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}
