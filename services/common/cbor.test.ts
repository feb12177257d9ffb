import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "../../devices/cbor.ts";
import { CBOR_DEPTH_MAX, CBOR_ITEMS_MAX, decodeCborStrict } from "./cbor.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => Number.parseInt(b, 16));

describe("strict CBOR reader", () => {
  it("reads integers of every width, byte and text strings, arrays and maps", () => {
    const bytes = encodeCbor({ a: 1, b: 2n ** 40n, c: Uint8Array.of(1, 2), d: "é", e: [1, -2], f: { g: 0 } });
    const decoded = decodeCborStrict(bytes);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok || decoded.value.type !== "map") return;
    const byKey = new Map(decoded.value.entries.map(([k, v]) => [k.type === "text" ? k.value : "", v]));
    expect(byKey.get("a")).toEqual({ type: "uint", value: 1n });
    expect(byKey.get("b")).toEqual({ type: "uint", value: 2n ** 40n });
    expect(byKey.get("c")).toMatchObject({ type: "bytes" });
    expect(byKey.get("d")).toEqual({ type: "text", value: "é" });
    expect(byKey.get("e")).toEqual({
      type: "array",
      items: [
        { type: "uint", value: 1n },
        { type: "negint", value: -2n },
      ],
    });
    expect(decodeCborStrict(hex("1bffffffffffffffff"))).toEqual({ ok: true, value: { type: "uint", value: 2n ** 64n - 1n } });
    expect(decodeCborStrict(hex("1805"))).toEqual({ ok: true, value: { type: "uint", value: 5n } }); // a non-shortest head is read
  });

  it.each([
    ["a float64", "fb3ff0000000000000", /float/],
    ["a half float", "f93c00", /float/],
    ["true", "f5", /simple/],
    ["a tag", "c240", /tag/],
    ["an indefinite map", "bf6161 01ff".replace(" ", ""), /indefinite/],
    ["reserved information", "1c", /reserved/],
    ["a duplicate key", "a2616101616102", /twice/],
    ["a map key that is bytes", "a1410101", /key/],
    ["trailing bytes", "0000", /after/],
    ["truncation", "4401", /past the end/],
    ["invalid UTF-8", "62c328", /UTF-8/],
    ["a declared length past the data", "9affffffff", /more elements/],
  ])("refuses %s", (_, bytes, detail) => {
    const decoded = decodeCborStrict(hex(bytes));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.detail).toMatch(detail);
  });

  it("bounds nesting and the number of items", () => {
    expect(decodeCborStrict(hex(`${"81".repeat(CBOR_DEPTH_MAX)}00`)).ok).toBe(true);
    expect(decodeCborStrict(hex(`${"81".repeat(CBOR_DEPTH_MAX + 1)}00`)).ok).toBe(false);
    const many = new Uint8Array(3 + CBOR_ITEMS_MAX);
    many.set([0x99, (CBOR_ITEMS_MAX >> 8) & 0xff, CBOR_ITEMS_MAX & 0xff]);
    const decoded = decodeCborStrict(many);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.detail).toMatch(/CBOR_ITEMS_MAX/);
  });

  it("never throws on garbage", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => void decodeCborStrict(bytes)),
      { numRuns: 2_000 },
    );
  });
});
