/**
 * A strict, small, generic CBOR reader (RFC 8949) for device bodies inside refine: it decodes one
 * data item into a tree of plain values, never throws, bounds its work, and answers a reason for
 * anything it refuses.
 *
 * Hand-written rather than cbor-x for the reasons energy-trading/body.ts gives (refine must be
 * deterministic and integer-only, and never throw on garbage); unlike that reader, which knows the
 * energy bodies' shapes and refuses byte strings, this one is shape-free and reads byte strings,
 * so a service checks the shape on the tree it returns.
 *
 * Accepted (RFC 8949 §3.1 major types): 0 unsigned and 1 negative integers of any width up to 64
 * bits (as bigint), 2 byte strings and 3 text strings (valid UTF-8) of definite length, 4 arrays
 * and 5 maps of definite length, nested to CBOR_DEPTH_MAX, map keys unsigned integers or text,
 * each key once. Refused: floats of every width, tags, simple values (false, true, null,
 * undefined), indefinite lengths and breaks, reserved additional information, duplicate map keys,
 * trailing bytes. Non-shortest heads (0x18 0x05 for 5) are accepted: preferred serialization
 * binds encoders (§4.2.1), a decoder may be lenient (§5.2), and a signature covers the exact bytes.
 */

/** Nesting of arrays and maps: device bodies are a map, maybe of maps or arrays, never deeper. */
export const CBOR_DEPTH_MAX = 4;
/** Data items in one body: bounds the reader's allocations whatever the declared lengths say. */
export const CBOR_ITEMS_MAX = 4_096;

export type CborValue =
  | { readonly type: "uint"; readonly value: bigint }
  | { readonly type: "negint"; readonly value: bigint }
  | { readonly type: "bytes"; readonly value: Uint8Array }
  | { readonly type: "text"; readonly value: string }
  | { readonly type: "array"; readonly items: readonly CborValue[] }
  | { readonly type: "map"; readonly entries: readonly (readonly [CborValue, CborValue])[] };

export type CborResult = { readonly ok: true; readonly value: CborValue } | { readonly ok: false; readonly detail: string };

const MAJOR_NAMES = [
  "an unsigned integer",
  "a negative integer",
  "a byte string",
  "a text string",
  "an array",
  "a map",
  "a tag",
  "a float or simple value",
] as const;
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes exactly one data item filling `bytes`; never throws. */
export function decodeCborStrict(bytes: Uint8Array): CborResult {
  const reader = new StrictReader(bytes);
  const value = reader.item(0);
  if (value === null) return { ok: false, detail: reader.detail };
  if (reader.at !== bytes.length) return { ok: false, detail: `${bytes.length - reader.at} bytes after the data item` };
  return { ok: true, value };
}

/** The name of a value's CBOR type, for details. */
export function cborTypeName(value: CborValue): string {
  return MAJOR_NAMES[["uint", "negint", "bytes", "text", "array", "map"].indexOf(value.type)]!;
}

class StrictReader {
  at = 0;
  detail = "";
  private items = 0;

  constructor(private readonly bytes: Uint8Array) {}

  private fail(detail: string): null {
    if (this.detail === "") this.detail = detail;
    return null;
  }

  item(depth: number): CborValue | null {
    if (++this.items > CBOR_ITEMS_MAX) return this.fail(`more than CBOR_ITEMS_MAX = ${CBOR_ITEMS_MAX} data items`);
    const b = this.bytes;
    if (this.at >= b.length) return this.fail("the data ends early");
    const offset = this.at;
    const initial = b[this.at++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 6) return this.fail(`a tag at byte ${offset}; tags are not accepted`);
    if (major === 7)
      return this.fail(
        `${info >= 25 && info <= 27 ? "a float" : "a simple value or break"} at byte ${offset}; only integers, strings, arrays and maps are accepted`,
      );
    let argument: bigint;
    if (info < 24) {
      argument = BigInt(info);
    } else if (info <= 27) {
      const n = 1 << (info - 24);
      if (this.at + n > b.length) return this.fail("the data ends early");
      argument = 0n;
      for (let i = 0; i < n; i++) argument = (argument << 8n) | BigInt(b[this.at + i]!);
      this.at += n;
    } else if (info === 31) {
      return this.fail(`an indefinite length at byte ${offset}`);
    } else {
      return this.fail(`reserved additional information ${info} at byte ${offset}`);
    }
    switch (major) {
      case 0:
        return { type: "uint", value: argument };
      case 1:
        return { type: "negint", value: -1n - argument };
      case 2:
      case 3: {
        if (argument > BigInt(b.length - this.at)) return this.fail(`${MAJOR_NAMES[major]} at byte ${offset} runs past the end`);
        const start = this.at;
        this.at += Number(argument);
        const value = b.subarray(start, this.at);
        if (major === 2) return { type: "bytes", value };
        try {
          return { type: "text", value: textDecoder.decode(value) };
        } catch {
          return this.fail(`the text string at byte ${offset} is not UTF-8`);
        }
      }
      case 4:
      case 5: {
        if (depth >= CBOR_DEPTH_MAX) return this.fail(`nesting deeper than CBOR_DEPTH_MAX = ${CBOR_DEPTH_MAX} at byte ${offset}`);
        // Each element takes at least one byte: a longer declared length is truncated data.
        const elements = major === 4 ? argument : 2n * argument;
        if (elements > BigInt(b.length - this.at)) return this.fail(`${MAJOR_NAMES[major]} at byte ${offset} declares more elements than bytes remain`);
        const count = Number(argument);
        if (major === 4) {
          const items: CborValue[] = [];
          for (let i = 0; i < count; i++) {
            const element = this.item(depth + 1);
            if (element === null) return null;
            items.push(element);
          }
          return { type: "array", items };
        }
        const entries: [CborValue, CborValue][] = [];
        const seen = new Set<string>();
        for (let i = 0; i < count; i++) {
          const keyAt = this.at;
          const key = this.item(depth + 1);
          if (key === null) return null;
          if (key.type !== "uint" && key.type !== "text")
            return this.fail(`the map key at byte ${keyAt} is ${cborTypeName(key)}, not text or an unsigned integer`);
          const identity = `${key.type}:${String(key.value)}`;
          if (seen.has(identity)) return this.fail(`the map key at byte ${keyAt} appears twice`);
          seen.add(identity);
          const value = this.item(depth + 1);
          if (value === null) return null;
          entries.push([key, value]);
        }
        return { type: "map", entries };
      }
      default:
        return this.fail(`major type ${major}`); // unreachable: a major type is 3 bits, 6 and 7 refused above
    }
  }
}
