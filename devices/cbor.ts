/**
 * The one CBOR encoder of everything a device or the gateway puts on the wire (envelopes, their
 * bodies, receipts, errors). cbor-x's default `encode` tags a Uint8Array with RFC 8746 tag 64 and
 * writes every map header with a 16-bit length; this encoder writes plain RFC 8949 data items
 * instead: byte strings as major type 2 and the shortest map header (RFC 8949 §4.2.1, "preferred
 * serialization"), so a C or Rust decoder on a meter reads what docs/protocol.md promises.
 * Browser-safe: no Node built-ins.
 */
import { decode, Encoder } from "cbor-x";

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true });

export function encodeCbor(value: unknown): Uint8Array {
  const bytes: Uint8Array = encoder.encode(value);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes any CBOR (throws on bad input; callers at the edge catch and return a coded error). Byte strings come back as Uint8Array (a Buffer in Node). */
export function decodeCbor(bytes: Uint8Array): unknown {
  return decode(bytes);
}
