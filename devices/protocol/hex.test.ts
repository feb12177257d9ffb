import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "./hex.ts";

describe("toHex", () => {
  it("is Buffer's lowercase hex for any bytes, views into a larger buffer included", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(8), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        expect(toHex(view)).toBe(Buffer.from(view).toString("hex"));
      }),
      { numRuns: 300 },
    );
  });

  it("covers every byte value and long inputs", () => {
    const all = Uint8Array.from({ length: 256 * 1024 }, (_, i) => (i * 131) & 0xff);
    expect(toHex(all)).toBe(Buffer.from(all).toString("hex"));
    expect(toHex(new Uint8Array(0))).toBe("");
  });
});
