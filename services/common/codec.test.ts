import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { U32_MAX, U64_MAX } from "./bytes.ts";
import { d, decode, type Descriptor, encode } from "./codec.ts";

/** Encodes, checks the size the descriptor states, decodes, and compares. */
function roundTrips<T>(desc: Descriptor<T>, value: T): void {
  const bytes = encode(desc, value);
  expect(bytes.length).toBe(desc.bytesOf(value));
  if (desc.fixedBytes !== null) expect(bytes.length).toBe(desc.fixedBytes);
  const decoded = decode(desc, bytes);
  expect(decoded).toEqual({ ok: true, value });
  // Canonical: the decoded value encodes to the same bytes.
  if (decoded.ok) expect(Buffer.compare(encode(desc, decoded.value), bytes)).toBe(0);
}

const LEDGER = ["trade", "grid-import", "grid-export"] as const;
const record = d.versioned(
  3,
  d.object({
    id: d.bytes(16),
    count: d.u32,
    balance: d.i64,
    reason: d.enumeration(LEDGER),
    note: d.optional(d.text("u8", 32)),
    slot: d.optionalFixed(d.u32, 0),
    items: d.array(d.object({ side: d.oneOf([0, 1]), energyWh: d.u16 }), "u16", 100),
  }),
  "record",
);
const recordArb = fc.record({
  id: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  count: fc.nat({ max: U32_MAX }),
  balance: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  reason: fc.constantFrom(...LEDGER),
  note: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
  slot: fc.option(fc.nat({ max: U32_MAX }), { nil: null }),
  items: fc.array(fc.record({ side: fc.constantFrom(0 as const, 1 as const), energyWh: fc.nat({ max: 0xffff }) }), { maxLength: 20 }),
});

describe("codec descriptors: round trips (fast-check)", () => {
  it("integers: u8, u16, u32, u64, i64, and bool", () => {
    fc.assert(fc.property(fc.nat({ max: 0xff }), (v) => roundTrips(d.u8, v)));
    fc.assert(fc.property(fc.nat({ max: 0xffff }), (v) => roundTrips(d.u16, v)));
    fc.assert(fc.property(fc.nat({ max: U32_MAX }), (v) => roundTrips(d.u32, v)));
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (v) => roundTrips(d.u64, v)));
    fc.assert(fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (v) => roundTrips(d.i64, v)));
    roundTrips(d.bool, true);
    roundTrips(d.bool, false);
  });

  it("bytes, varBytes and text", () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 7, maxLength: 7 }), (v) => roundTrips(d.bytes(7), v)));
    for (const lengthOf of ["u8", "u16", "u32"] as const) {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (v) => roundTrips(d.varBytes(lengthOf, 40), v)));
    }
    fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 8 }), (v) => roundTrips(d.text("u16", 4096), v)));
  });

  it("literal, versioned and enumeration", () => {
    roundTrips(d.literal(9), 9);
    fc.assert(fc.property(fc.nat({ max: 1000 }), (v) => roundTrips(d.versioned(1, d.u16), v % 0x10000)));
    fc.assert(fc.property(fc.constantFrom(...LEDGER), (v) => roundTrips(d.enumeration(LEDGER), v)));
  });

  it("array, rest, object, optional, optionalFixed and map", () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: U32_MAX }), { maxLength: 30 }), (v) => roundTrips(d.array(d.u32, "u8", 30), v)));
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 5 }), { maxLength: 30 }), (v) => roundTrips(d.rest(d.varBytes("u8", 5), 30), v)));
    fc.assert(fc.property(fc.option(fc.nat({ max: 0xff }), { nil: null }), (v) => roundTrips(d.optional(d.u8), v)));
    fc.assert(fc.property(fc.option(fc.bigInt({ min: 0n, max: U64_MAX }), { nil: null }), (v) => roundTrips(d.optionalFixed(d.u64, 0n), v)));
    const hexId = d.map(
      d.bytes(2),
      (b) => Buffer.from(b).toString("hex"),
      (h) => Uint8Array.from(Buffer.from(h, "hex")),
    );
    fc.assert(fc.property(fc.uint8Array({ minLength: 2, maxLength: 2 }), (b) => roundTrips(hexId, Buffer.from(b).toString("hex"))));
    fc.assert(fc.property(recordArb, (v) => roundTrips(record, v)));
  });
});

describe("codec descriptors: layouts byte for byte", () => {
  it("writes fields in declaration order, little-endian, with the version byte first", () => {
    const desc = d.versioned(1, d.object({ a: d.u8, b: d.u16, c: d.optionalFixed(d.u32, 0), e: d.array(d.u8, "u8", 4), f: d.i64 }));
    expect(desc.fixedBytes).toBeNull();
    const bytes = encode(desc, { a: 0xaa, b: 0x0102, c: null, e: [7, 8], f: -2n });
    expect(Buffer.from(bytes).toString("hex")).toBe("01" + "aa" + "0201" + "00" + "00000000" + "02" + "0708" + "feffffffffffffff");
    expect(d.versioned(1, d.object({ x: d.u64, y: d.bytes(32), z: d.bool })).fixedBytes).toBe(1 + 8 + 32 + 1);
  });

  it("encoding a value outside its descriptor throws (a bug), and a check runs before encoding", () => {
    expect(() => encode(d.u8, 256)).toThrow();
    expect(() => encode(d.bytes(4), new Uint8Array(3))).toThrow();
    expect(() => encode(d.enumeration(LEDGER), "refund" as never)).toThrow();
    expect(() => encode(d.array(d.u8, "u8", 2), [1, 2, 3])).toThrow();
    expect(() => encode(d.i64, 1n << 63n)).toThrow();
    const even = d.checked(d.u8, (v) => (v % 2 === 0 ? null : "odd"));
    expect(() => encode(even, 3)).toThrow(/odd/);
    expect(decode(even, Uint8Array.of(3))).toEqual({ ok: false, error: "u8: odd" });
  });

  it("decoding refuses wrong versions, bad enum bytes, flags, counts over the max and trailing bytes, with a reason", () => {
    expect(decode(d.versioned(1, d.u8, "thing"), Uint8Array.of(2, 0))).toEqual({ ok: false, error: "thing format 2, not 1" });
    expect(decode(d.enumeration(LEDGER), Uint8Array.of(3)).ok).toBe(false);
    expect(decode(d.bool, Uint8Array.of(2)).ok).toBe(false);
    expect(decode(d.optional(d.u8), Uint8Array.of(2, 0)).ok).toBe(false);
    expect(decode(d.array(d.u8, "u8", 2), Uint8Array.of(3, 1, 2, 3)).ok).toBe(false);
    expect(decode(d.u16, Uint8Array.of(1))).toEqual({ ok: false, error: "u16: truncated" });
    expect(decode(d.u16, Uint8Array.of(1, 2, 3))).toEqual({ ok: false, error: "u16: 1 bytes after the value" });
    expect(decode(d.text("u8", 4), Uint8Array.of(2, 0xc3, 0x28)).ok).toBe(false); // not UTF-8
    expect(decode(d.rest(d.u16, 4), Uint8Array.of(1, 2, 3)).ok).toBe(false); // not whole elements
  });
});

describe("codec descriptors: decode never throws on garbage (fast-check)", () => {
  const descriptors: Descriptor<unknown>[] = [
    d.u8,
    d.u64,
    d.i64,
    d.bool,
    d.bytes(16),
    d.varBytes("u32", 1 << 20),
    d.text("u16", 1000),
    d.literal(1),
    d.enumeration(LEDGER),
    d.array(d.varBytes("u32", 100), "u32", 1 << 20),
    d.rest(d.text("u8", 10), 100),
    d.optional(d.u32),
    d.optionalFixed(d.u64, 0n),
    record,
  ] as Descriptor<unknown>[];

  it("returns a Result for any bytes, for every kind of descriptor", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const desc of descriptors) {
          const decoded = decode(desc, bytes);
          if (!decoded.ok) expect(typeof decoded.error).toBe("string");
          // Whatever decodes is canonical: it encodes back to the same bytes.
          else expect(Buffer.compare(encode(desc, decoded.value), bytes)).toBe(0);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("returns a Result for mutations of valid encodings (near misses reach deeper than random bytes)", () => {
    fc.assert(
      fc.property(recordArb, fc.nat(), fc.nat({ max: 0xff }), fc.nat({ max: 8 }), (value, at, byte, cut) => {
        const bytes = encode(record, value);
        const mutated = bytes.slice(0, Math.max(0, bytes.length - cut));
        if (mutated.length > 0) mutated[at % mutated.length] = byte;
        const decoded = decode(record, mutated);
        if (decoded.ok) expect(Buffer.compare(encode(record, decoded.value), mutated)).toBe(0);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("codec descriptors: unions", () => {
  type Shape =
    | { readonly kind: "none" }
    | { readonly kind: "point"; readonly x: number }
    | { readonly kind: "span"; readonly from: number; readonly to: number };
  const shape: Descriptor<Shape> = d.union<Shape>(
    {
      0: d.constant({ kind: "none" }),
      1: d.map(
        d.object({ x: d.u16 }),
        ({ x }) => ({ kind: "point", x }),
        (s) => ({ x: (s as { x: number }).x }),
      ),
      7: d.map(
        d.object({ from: d.u8, to: d.u8 }),
        ({ from, to }) => ({ kind: "span", from, to }),
        (s) => s as { from: number; to: number },
      ),
    },
    (s) => (s.kind === "none" ? 0 : s.kind === "point" ? 1 : 7),
    "shape",
  );

  it("writes the tag byte then the variant, and round-trips every variant", () => {
    expect(Buffer.from(encode(shape, { kind: "none" })).toString("hex")).toBe("00");
    expect(Buffer.from(encode(shape, { kind: "point", x: 0x0102 })).toString("hex")).toBe("010201");
    expect(Buffer.from(encode(shape, { kind: "span", from: 3, to: 4 })).toString("hex")).toBe("070304");
    const arb = fc.oneof(
      fc.constant({ kind: "none" } as Shape),
      fc.nat({ max: 0xffff }).map((x): Shape => ({ kind: "point", x })),
      fc.tuple(fc.nat({ max: 0xff }), fc.nat({ max: 0xff })).map(([from, to]): Shape => ({ kind: "span", from, to })),
    );
    fc.assert(fc.property(arb, (v) => roundTrips(shape, v)));
  });

  it("refuses an unknown tag, inside a composite too, and never throws on garbage", () => {
    expect(decode(shape, Uint8Array.of(2))).toEqual({ ok: false, error: "shape: tag 2" });
    const list = d.map(
      d.array(shape, "u8", 4),
      (shapes) => shapes.map((s) => s.kind),
      () => [],
    );
    expect(decode(list, Uint8Array.of(2, 0, 9)).ok).toBe(false);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => void decode(list, bytes)));
  });
});
