/**
 * Byte plumbing for the service's binary formats: a bounds-checked reader that never throws
 * (it latches `failed` and returns zeros, so decoders of untrusted bytes stay total), a
 * fixed-capacity writer, hex and ordering helpers. Integers are little-endian, as in the
 * Gray Paper's fixed-width encoding E_l (GP C.1.1).
 */

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;
export const U64_MAX = (1n << 64n) - 1n;

/** Reads fixed-width little-endian fields; past the end it sets `failed` and yields zeros. */
export class Reader {
  private at = 0;
  private readonly view: DataView;
  failed = false;
  /** Why decoding failed, when a decoder said (`reject`); null when it ran past the end or has not failed. */
  error: string | null = null;

  constructor(private readonly source: Uint8Array) {
    this.view = new DataView(source.buffer, source.byteOffset, source.byteLength);
  }

  get offset(): number {
    return this.at;
  }

  get remaining(): number {
    return this.source.length - this.at;
  }

  /** True when every byte was read and nothing ran past the end. */
  get done(): boolean {
    return !this.failed && this.at === this.source.length;
  }

  /** Latches a failure with its reason (the first reason is kept): for values that are read but not valid. */
  reject(reason: string): void {
    if (!this.failed) this.error = reason;
    this.failed = true;
  }

  private take(length: number): number {
    if (this.failed || length > this.source.length - this.at) {
      this.failed = true;
      return -1;
    }
    const start = this.at;
    this.at += length;
    return start;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.view.getUint8(at);
  }

  u16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getUint16(at, true);
  }

  u32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getUint32(at, true);
  }

  u64(): bigint {
    const at = this.take(8);
    return at < 0 ? 0n : this.view.getBigUint64(at, true);
  }

  /** A view (not a copy) of the next `length` bytes; empty when they are not there. */
  bytes(length: number): Uint8Array {
    const at = this.take(length);
    return at < 0 ? new Uint8Array(0) : this.source.subarray(at, at + length);
  }
}

/** Writes into a buffer of the exact size the encoder computed; overruns and underruns are bugs. */
export class Writer {
  private at = 0;
  private readonly out: Uint8Array;
  private readonly view: DataView;

  /** Writes `size` bytes into a new buffer, or into the start of `into` when it has room (a caller's reused buffer). */
  constructor(size: number, into?: Uint8Array) {
    this.out = into !== undefined && into.length >= size ? into.subarray(0, size) : new Uint8Array(size);
    this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
  }

  // Out-of-range values are bugs, not data: DataView would wrap them silently.
  u8(value: number): this {
    if (!(value >= 0 && value <= 0xff && Number.isInteger(value))) throw new RangeError(`u8 ${value}`);
    this.view.setUint8(this.at, value);
    this.at += 1;
    return this;
  }

  u16(value: number): this {
    if (!(value >= 0 && value <= U16_MAX && Number.isInteger(value))) throw new RangeError(`u16 ${value}`);
    this.view.setUint16(this.at, value, true);
    this.at += 2;
    return this;
  }

  u32(value: number): this {
    if (!(value >= 0 && value <= U32_MAX && Number.isInteger(value))) throw new RangeError(`u32 ${value}`);
    this.view.setUint32(this.at, value, true);
    this.at += 4;
    return this;
  }

  u64(value: bigint): this {
    if (value < 0n || value > U64_MAX) throw new RangeError(`u64 ${value}`);
    this.view.setBigUint64(this.at, value, true);
    this.at += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.out.set(value, this.at);
    this.at += value.length;
    return this;
  }

  /** The buffer; asserts it was filled exactly. */
  finish(): Uint8Array {
    if (this.at !== this.out.length) throw new Error(`encoder wrote ${this.at} of ${this.out.length} bytes`);
    return this.out;
  }
}

/** Lexicographic order of byte strings (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/** Value of a lowercase hex digit by char code, −1 otherwise. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX_VALUE[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX_VALUE[0x61 + c] = 10 + c;

/** Lowercase hex: the one toHex (devices/protocol/hex.ts; accumulate turns ids into keys with it thousands of times a block). */
export { toHex } from "../../devices/protocol/hex.ts";

/** Lowercase hex to bytes; null when the text is not an even number of lowercase hex digits. */
export function fromLowerHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hiCode = hex.charCodeAt(2 * i);
    const loCode = hex.charCodeAt(2 * i + 1);
    const hi = hiCode < 128 ? HEX_VALUE[hiCode]! : -1;
    const lo = loCode < 128 ? HEX_VALUE[loCode]! : -1;
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const textEncoder = new TextEncoder();

export function ascii(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** The one Result (result.ts), re-exported here for the decoders that import it with the byte plumbing. */
export { fail, ok, type Result } from "./result.ts";
