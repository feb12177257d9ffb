/**
 * Codec descriptors for service state and outputs, in the style of typeberry's codec (one
 * descriptor beside each type, used to encode, decode and size it): a layout is written once, and
 * its encoder, decoder and size cannot disagree. Over bytes.ts's Reader and Writer, so integers are
 * little-endian fixed width as in the Gray Paper's E_l (GP C.1.1).
 *
 * Decoding is total: a descriptor reads what is there, latches `r.failed` (with a reason, via
 * `r.reject`) on bad bytes and returns a placeholder of its type; `decode` turns that into a
 * Result. Encoding a value outside its descriptor (a u8 of 300, an unknown enum name, an array
 * past its max, a failed `check`) is a bug and throws.
 */
import { bytesEqual, Reader, U16_MAX, U32_MAX, Writer } from "./bytes.ts";
import { fail, ok, type Result } from "./result.ts";

export interface Descriptor<T> {
  readonly name: string;
  /** Bytes of every value when fixed, else null. */
  readonly fixedBytes: number | null;
  bytesOf(value: T): number;
  encodeTo(w: Writer, value: T): void;
  /** Reads a value; on bad bytes latches r.failed (never throws) and returns something of the type. */
  decodeFrom(r: Reader): T;
  /** Optional semantic check after decoding (ranges, enums): a reason, or null. */
  check?(value: T): string | null;
}

/** The value type a descriptor encodes. */
export type TypeOf<D> = D extends Descriptor<infer T> ? T : never;

/** How a count or a length is encoded before what it counts. */
export type LengthOf = "u8" | "u16" | "u32";
const LENGTH_BYTES: Record<LengthOf, number> = { u8: 1, u16: 2, u32: 4 };
const LENGTH_MAX: Record<LengthOf, number> = { u8: 0xff, u16: U16_MAX, u32: U32_MAX };

function readLength(r: Reader, lengthOf: LengthOf): number {
  return lengthOf === "u8" ? r.u8() : lengthOf === "u16" ? r.u16() : r.u32();
}

function writeLength(w: Writer, lengthOf: LengthOf, n: number): void {
  if (lengthOf === "u8") w.u8(n);
  else if (lengthOf === "u16") w.u16(n);
  else w.u32(n);
}

function checkMax(name: string, lengthOf: LengthOf, max: number): void {
  if (!Number.isInteger(max) || max < 0 || max > LENGTH_MAX[lengthOf]) throw new Error(`${name}: max ${max} does not fit its ${lengthOf} length`);
}

/** Reads a value and runs its check; a check's reason latches the reader's failure. */
export function readChecked<T>(desc: Descriptor<T>, r: Reader): T {
  const value = desc.decodeFrom(r);
  if (!r.failed && desc.check !== undefined) {
    const problem = desc.check(value);
    if (problem !== null) r.reject(`${desc.name}: ${problem}`);
  }
  return value;
}

/** Runs a value's check, then writes it; a failed check is a bug (the caller made the value). */
export function writeChecked<T>(desc: Descriptor<T>, w: Writer, value: T): void {
  if (desc.check !== undefined) {
    const problem = desc.check(value);
    if (problem !== null) throw new Error(`${desc.name}: ${problem}`);
  }
  desc.encodeTo(w, value);
}

function sized<T>(desc: Descriptor<T>, value: T): number {
  return desc.fixedBytes ?? desc.bytesOf(value);
}

function fixedInteger<T extends number | bigint>(name: string, bytes: number, read: (r: Reader) => T, write: (w: Writer, v: T) => void): Descriptor<T> {
  return { name, fixedBytes: bytes, bytesOf: () => bytes, encodeTo: write, decodeFrom: read };
}

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const I64_MODULUS = 1n << 64n;

const u8 = fixedInteger<number>(
  "u8",
  1,
  (r) => r.u8(),
  (w, v) => w.u8(v),
);
const u16 = fixedInteger<number>(
  "u16",
  2,
  (r) => r.u16(),
  (w, v) => w.u16(v),
);
const u32 = fixedInteger<number>(
  "u32",
  4,
  (r) => r.u32(),
  (w, v) => w.u32(v),
);
const u64 = fixedInteger<bigint>(
  "u64",
  8,
  (r) => r.u64(),
  (w, v) => w.u64(v),
);
/** A signed 64-bit integer as its two's complement u64. */
const i64 = fixedInteger<bigint>(
  "i64",
  8,
  (r) => {
    const raw = r.u64();
    return raw > I64_MAX ? raw - I64_MODULUS : raw;
  },
  (w, v) => {
    if (v < I64_MIN || v > I64_MAX) throw new RangeError(`i64 ${v}`);
    w.u64(v < 0n ? v + I64_MODULUS : v);
  },
);

const bool: Descriptor<boolean> = {
  name: "bool",
  fixedBytes: 1,
  bytesOf: () => 1,
  encodeTo: (w, v) => void w.u8(v ? 1 : 0),
  decodeFrom(r) {
    const b = r.u8();
    if (b > 1) r.reject(`bool byte ${b}`);
    return b === 1;
  },
};

/** Exactly n bytes; decoded as a copy (stored values outlive the buffer they came from). */
function bytes(n: number): Descriptor<Uint8Array> {
  if (!Number.isInteger(n) || n < 0) throw new Error(`bytes(${n})`);
  return {
    name: `bytes${n}`,
    fixedBytes: n,
    bytesOf: () => n,
    encodeTo(w, v) {
      if (v.length !== n) throw new RangeError(`bytes${n}: ${v.length} bytes`);
      w.bytes(v);
    },
    decodeFrom(r) {
      const view = r.bytes(n);
      return r.failed ? new Uint8Array(n) : view.slice();
    },
  };
}

/** A length (u8, u16 or u32) then that many bytes, at most `max`. */
function varBytes(lengthOf: LengthOf, max: number): Descriptor<Uint8Array> {
  const name = `varBytes(${lengthOf}, ${max})`;
  checkMax(name, lengthOf, max);
  const prefix = LENGTH_BYTES[lengthOf];
  return {
    name,
    fixedBytes: null,
    bytesOf: (v) => prefix + v.length,
    encodeTo(w, v) {
      if (v.length > max) throw new RangeError(`${name}: ${v.length} bytes`);
      writeLength(w, lengthOf, v.length);
      w.bytes(v);
    },
    decodeFrom(r) {
      const length = readLength(r, lengthOf);
      if (length > max) {
        r.reject(`${name}: ${length} bytes`);
        return new Uint8Array(0);
      }
      const view = r.bytes(length);
      return r.failed ? new Uint8Array(0) : view.slice();
    },
  };
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF-8 text: a length then its bytes, at most `maxBytes`; invalid UTF-8 does not decode. */
function text(lengthOf: LengthOf, maxBytes: number): Descriptor<string> {
  const raw = varBytes(lengthOf, maxBytes);
  const name = `text(${lengthOf}, ${maxBytes})`;
  return {
    name,
    fixedBytes: null,
    bytesOf: (v) => raw.bytesOf(utf8Encoder.encode(v)),
    encodeTo: (w, v) => raw.encodeTo(w, utf8Encoder.encode(v)),
    decodeFrom(r) {
      const value = raw.decodeFrom(r);
      if (r.failed) return "";
      try {
        return utf8Decoder.decode(value);
      } catch {
        // TextDecoder reports invalid UTF-8 only by throwing: it is the input's fault, not a bug.
        r.reject(`${name}: not UTF-8`);
        return "";
      }
    },
  };
}

/** One byte that must equal `byte` (a format version): encodes `byte` whatever the value. */
function literal<B extends number>(byte: B): Descriptor<B> {
  if (!Number.isInteger(byte) || byte < 0 || byte > 0xff) throw new Error(`literal(${byte})`);
  return {
    name: `literal(${byte})`,
    fixedBytes: 1,
    bytesOf: () => 1,
    encodeTo: (w) => void w.u8(byte),
    decodeFrom(r) {
      const b = r.u8();
      if (!r.failed && b !== byte) r.reject(`format ${b}, not ${byte}`);
      return byte;
    },
  };
}

/** `version` (one byte that must match) then the value: how every stored value starts, so a later layout can be told apart. */
function versioned<T>(version: number, desc: Descriptor<T>, name: string = desc.name): Descriptor<T> {
  if (!Number.isInteger(version) || version < 0 || version > 0xff) throw new Error(`versioned(${version})`);
  return {
    name,
    fixedBytes: desc.fixedBytes === null ? null : 1 + desc.fixedBytes,
    bytesOf: (v) => 1 + sized(desc, v),
    encodeTo(w, v) {
      w.u8(version);
      writeChecked(desc, w, v);
    },
    decodeFrom(r) {
      const b = r.u8();
      if (!r.failed && b !== version) r.reject(`${name} format ${b}, not ${version}`);
      return readChecked(desc, r);
    },
  };
}

/** One byte: the index of the value in `values`. */
function enumeration<const V extends readonly string[]>(values: V, name = `enumeration(${values.join("|")})`): Descriptor<V[number]> {
  if (values.length === 0 || values.length > 256) throw new Error(`${name}: ${values.length} values`);
  return {
    name,
    fixedBytes: 1,
    bytesOf: () => 1,
    encodeTo(w, v) {
      const index = values.indexOf(v);
      if (index < 0) throw new RangeError(`${name}: ${String(v)}`);
      w.u8(index);
    },
    decodeFrom(r) {
      const index = r.u8();
      const value = values[index];
      if (value === undefined) {
        if (!r.failed) r.reject(`${name}: index ${index}`);
        return values[0]!;
      }
      return value;
    },
  };
}

/** A count (u8, u16 or u32, at most `max`) then that many elements. */
function array<T>(elem: Descriptor<T>, lengthOf: LengthOf, max: number, name = `array(${elem.name}, ${lengthOf}, ${max})`): Descriptor<T[]> {
  checkMax(name, lengthOf, max);
  const prefix = LENGTH_BYTES[lengthOf];
  return {
    name,
    fixedBytes: null,
    bytesOf(v) {
      if (elem.fixedBytes !== null) return prefix + v.length * elem.fixedBytes;
      let size = prefix;
      for (const e of v) size += elem.bytesOf(e);
      return size;
    },
    encodeTo(w, v) {
      if (v.length > max) throw new RangeError(`${name}: ${v.length} elements`);
      writeLength(w, lengthOf, v.length);
      for (const e of v) writeChecked(elem, w, e);
    },
    decodeFrom(r) {
      const count = readLength(r, lengthOf);
      if (r.failed) return [];
      if (count > max) {
        r.reject(`${name}: ${count} elements`);
        return [];
      }
      // A count the remaining bytes cannot hold fails before anything is allocated for it.
      if (count * (elem.fixedBytes ?? 0) > r.remaining) {
        r.reject(`${name}: ${count} elements in ${r.remaining} bytes`);
        return [];
      }
      const out: T[] = [];
      for (let i = 0; i < count && !r.failed; i++) out.push(readChecked(elem, r));
      return out;
    },
  };
}

/** Elements up to the end of the bytes (the count is implied by what remains), at most `max`. */
function rest<T>(elem: Descriptor<T>, max: number): Descriptor<T[]> {
  const name = `rest(${elem.name}, ${max})`;
  return {
    name,
    fixedBytes: null,
    bytesOf(v) {
      if (elem.fixedBytes !== null) return v.length * elem.fixedBytes;
      let size = 0;
      for (const e of v) size += elem.bytesOf(e);
      return size;
    },
    encodeTo(w, v) {
      if (v.length > max) throw new RangeError(`${name}: ${v.length} elements`);
      for (const e of v) writeChecked(elem, w, e);
    },
    decodeFrom(r) {
      if (elem.fixedBytes !== null && (r.remaining % elem.fixedBytes !== 0 || r.remaining / elem.fixedBytes > max)) {
        r.reject(`${name}: ${r.remaining} bytes are not whole elements within the max`);
        return [];
      }
      const out: T[] = [];
      while (r.remaining > 0 && !r.failed) {
        if (out.length === max) {
          r.reject(`${name}: more than ${max} elements`);
          break;
        }
        const before = r.remaining;
        out.push(readChecked(elem, r));
        if (r.remaining === before) {
          r.reject(`${name}: an element of no bytes`); // would never reach the end
          break;
        }
      }
      return out;
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: each field has its own value type; `unknown` would not let ObjectOf infer them.
type Fields = Record<string, Descriptor<any>>;
/** The value an object descriptor encodes: each field's type. */
export type ObjectOf<F extends Fields> = { readonly [K in keyof F]: TypeOf<F[K]> };

/** The fields in declaration order, each with its own descriptor. */
function object<F extends Fields>(fields: F, name = "object"): Descriptor<ObjectOf<F>> {
  const entries = Object.entries(fields);
  let fixed: number | null = 0;
  for (const [, desc] of entries) fixed = fixed === null || desc.fixedBytes === null ? null : fixed + desc.fixedBytes;
  const fixedBytes = fixed;
  return {
    name,
    fixedBytes,
    bytesOf(v) {
      if (fixedBytes !== null) return fixedBytes;
      let size = 0;
      for (const [key, desc] of entries) size += sized(desc, (v as Record<string, unknown>)[key]);
      return size;
    },
    encodeTo(w, v) {
      for (const [key, desc] of entries) writeChecked(desc, w, (v as Record<string, unknown>)[key]);
    },
    decodeFrom(r) {
      const out: Record<string, unknown> = {};
      for (const [key, desc] of entries) out[key] = readChecked(desc, r);
      return out as ObjectOf<F>;
    },
  };
}

/** u8 0|1, then the value when 1. */
function optional<T>(desc: Descriptor<T>): Descriptor<T | null> {
  const name = `optional(${desc.name})`;
  return {
    name,
    fixedBytes: null,
    bytesOf: (v) => (v === null ? 1 : 1 + sized(desc, v)),
    encodeTo(w, v) {
      w.u8(v === null ? 0 : 1);
      if (v !== null) writeChecked(desc, w, v);
    },
    decodeFrom(r) {
      const flag = r.u8();
      if (flag > 1) r.reject(`${name}: flag ${flag}`);
      return flag === 1 ? readChecked(desc, r) : null;
    },
  };
}

/**
 * u8 0|1, then always the value's bytes (`placeholder`'s when absent, which must be them when
 * read): an optional of fixed size, as stored records keep every field at a fixed offset.
 */
function optionalFixed<T>(desc: Descriptor<T>, placeholder: T): Descriptor<T | null> {
  if (desc.fixedBytes === null) throw new Error(`optionalFixed(${desc.name}): not of fixed size`);
  const name = `optionalFixed(${desc.name})`;
  const size = desc.fixedBytes;
  const absent = encode(desc, placeholder);
  return {
    name,
    fixedBytes: 1 + size,
    bytesOf: () => 1 + size,
    encodeTo(w, v) {
      w.u8(v === null ? 0 : 1);
      if (v === null) w.bytes(absent);
      else writeChecked(desc, w, v);
    },
    decodeFrom(r) {
      const flag = r.u8();
      if (flag === 1) return readChecked(desc, r);
      if (flag > 1) r.reject(`${name}: flag ${flag}`);
      const raw = r.bytes(size);
      if (!r.failed && !bytesEqual(raw, absent)) r.reject(`${name}: absent, yet not the placeholder's bytes`);
      return null;
    },
  };
}

/** No bytes: decodes to `value` (a variant of a union that carries nothing but its tag). */
function constant<T>(value: T, name = "constant"): Descriptor<T> {
  return { name, fixedBytes: 0, bytesOf: () => 0, encodeTo: () => undefined, decodeFrom: () => value };
}

/** One tag byte, `tagOf(value)`, then that tag's variant: values told apart by their first byte (a kind, a flag). */
function union<T>(variants: Readonly<Record<number, Descriptor<T>>>, tagOf: (value: T) => number, name = "union"): Descriptor<T> {
  const variantOf = (value: T): [number, Descriptor<T>] => {
    const tag = tagOf(value);
    const variant = variants[tag];
    if (variant === undefined) throw new RangeError(`${name}: no variant ${tag}`);
    return [tag, variant];
  };
  return {
    name,
    fixedBytes: null,
    bytesOf: (v) => 1 + sized(variantOf(v)[1], v),
    encodeTo(w, v) {
      const [tag, variant] = variantOf(v);
      w.u8(tag);
      writeChecked(variant, w, v);
    },
    decodeFrom(r) {
      const tag = r.u8();
      const variant = variants[tag];
      if (variant !== undefined) return readChecked(variant, r);
      if (!r.failed) r.reject(`${name}: tag ${tag}`);
      // A placeholder of the type, read by the first variant from the failed reader (zeros).
      return Object.values(variants)[0]!.decodeFrom(r);
    },
  };
}

/** A stored shape ⇄ a domain type: `to` after decoding (and the stored shape's check), `from` before encoding. */
function map<S, T>(desc: Descriptor<S>, to: (stored: S) => T, from: (value: T) => S, name: string = desc.name): Descriptor<T> {
  return {
    name,
    fixedBytes: desc.fixedBytes,
    bytesOf: (v) => sized(desc, from(v)),
    encodeTo: (w, v) => writeChecked(desc, w, from(v)),
    decodeFrom(r) {
      const stored = readChecked(desc, r);
      return to(stored);
    },
  };
}

/** `desc` with a semantic check (ranges, enums, invariants across fields), run on decode and before encode. */
function checked<T>(desc: Descriptor<T>, check: (value: T) => string | null, name: string = desc.name): Descriptor<T> {
  const inner = desc.check;
  return {
    ...desc,
    name,
    check: inner === undefined ? check : (v) => inner(v) ?? check(v),
  };
}

/** A u8 whose value is one of `codes` (a numeric enum of a layout, e.g. a role or a side). */
function oneOf<const C extends readonly number[]>(codes: C, name = `oneOf(${codes.join("|")})`): Descriptor<C[number]> {
  return checked(u8 as Descriptor<C[number]>, (v) => (codes.includes(v) ? null : `${v} is not one of ${codes.join(", ")}`), name);
}

export const d = {
  u8,
  u16,
  u32,
  /** bigint */
  u64,
  /** bigint, two's complement */
  i64,
  /** one byte 0|1 */
  bool,
  bytes,
  varBytes,
  text,
  literal,
  versioned,
  enumeration,
  oneOf,
  array,
  rest,
  object,
  optional,
  optionalFixed,
  constant,
  union,
  map,
  checked,
} as const;

/** The value's bytes, exactly its size (asserted); throws when the value is outside its descriptor (a bug). */
export function encode<T>(desc: Descriptor<T>, value: T): Uint8Array {
  const w = new Writer(sized(desc, value));
  writeChecked(desc, w, value);
  return w.finish();
}

/** Decodes the whole of `bytes`; never throws: bad, short or long bytes are an error with a reason. */
export function decode<T>(desc: Descriptor<T>, bytes: Uint8Array): Result<T> {
  const r = new Reader(bytes);
  const value = readChecked(desc, r);
  if (r.failed) return fail(r.error === null ? `${desc.name}: truncated` : r.error.startsWith(desc.name) ? r.error : `${desc.name}: ${r.error}`);
  if (!r.done) return fail(`${desc.name}: ${r.remaining} bytes after the value`);
  return ok(value);
}
