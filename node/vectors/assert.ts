/** Shared assertions for the vector runners. */
import type { BytesBlob } from "@typeberry/lib/bytes";
import { expect } from "vitest";

/**
 * Assert that `actual` has exactly the bytes of `expected`; on mismatch report
 * both lengths and a hex window around the first differing byte (a plain hex
 * diff of a whole block would be unreadable).
 */
export function expectSameBytes(actual: BytesBlob, expected: Uint8Array, what: string): void {
  const a = actual.raw;
  const n = Math.min(a.length, expected.length);
  let first = 0;
  while (first < n && a[first] === expected[first]) first += 1;
  if (first === n && a.length === expected.length) return;
  const from = Math.max(0, first - 8);
  const window = (b: Uint8Array) => Buffer.from(b.subarray(from, first + 24)).toString("hex");
  expect.fail(
    `${what}: ${a.length} bytes, expected ${expected.length}; first difference at byte ${first}\n` +
      `  actual   [${from}..]: ${window(a)}\n  expected [${from}..]: ${window(expected)}`,
  );
}
