/**
 * The JAM codec (GP Appendix C) and JAM types, from typeberry. The node encodes every JAM object
 * through these descriptors, so its blocks, packages and reports are byte-compatible with other
 * implementations (the vector runner in node/vectors checks typeberry against the official vectors).
 */
import { BytesBlob, Bytes } from "@typeberry/lib/bytes";
import { type Descriptor, Decoder, Encoder } from "@typeberry/lib/codec";
import type { ChainSpec } from "@typeberry/lib/config";

export * from "@typeberry/lib/block";
export { Bytes, BytesBlob, BitVec } from "@typeberry/lib/bytes";
export { codec, Decoder, Encoder } from "@typeberry/lib/codec";

export function encode<T>(descriptor: Descriptor<T, unknown>, value: T, spec?: ChainSpec): Uint8Array {
  return Encoder.encodeObject(descriptor, value, spec).raw;
}

/** Decodes all of `bytes`; throws on malformed or trailing input (callers at edges catch it). */
export function decode<T>(descriptor: Descriptor<T, unknown>, bytes: Uint8Array, spec?: ChainSpec): T {
  return Decoder.decodeObject(descriptor, BytesBlob.blobFrom(bytes), spec);
}

/** A 32-byte hash value of typeberry's opaque kind, from raw bytes. */
export function h32<T>(raw: Uint8Array): T {
  return Bytes.fromBlob(raw, 32).asOpaque() as T;
}

export function blob(raw: Uint8Array): BytesBlob {
  return BytesBlob.blobFrom(raw);
}

/** Lowercase hex: the one toHex (devices/protocol/hex.ts), here for the node's modules that take their byte helpers from the codec. */
export { toHex } from "../../devices/protocol/hex.ts";

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex.startsWith("0x") ? hex.slice(2) : hex, "hex"));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
