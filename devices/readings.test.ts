import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCbor, encodeCbor } from "./cbor.ts";
import { decodeBody } from "./envelope.ts";
import { columnsOf, encodeReadings, rowsOf } from "./readings.ts";
import { meterReadings } from "./simulate.ts";

const T0 = 1_700_000_000_000;

function simulated(count: number) {
  const it = meterReadings(3, T0);
  return Array.from({ length: count }, () => {
    const r = it.next().value!;
    return { t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh, powerW: r.powerW, voltageV: r.voltageV };
  });
}

/**
 * Readings at a steady step with integer fields whose differences are safe integers too: what the
 * column form must say exactly. Values within ±2^51, so a difference is within ±2^52 (values of
 * ±2^52 made differences of 2^53, past MAX_SAFE_INTEGER: rows, and a failure for about one seed in
 * a few hundred).
 */
const steadyReadings = fc
  .record({
    t0: fc.nat(2 ** 50),
    dtMs: fc.integer({ min: 1, max: 10 ** 6 }),
    keys: fc.uniqueArray(
      fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== "t" && k !== "__proto__"),
      { minLength: 1, maxLength: 6 },
    ),
    n: fc.integer({ min: 2, max: 50 }),
  })
  .chain(({ t0, dtMs, keys, n }) =>
    fc
      .array(fc.tuple(...keys.map(() => fc.integer({ min: -(2 ** 51), max: 2 ** 51 }))), { minLength: n, maxLength: n })
      .map((values) => values.map((row, i) => ({ t: t0 + i * dtMs, ...Object.fromEntries(keys.map((k, j) => [k, row[j]!])) }))),
  );

describe("the column form of readings", () => {
  it("says 60 simulated meter readings in under a tenth of the rows' bytes", () => {
    const readings = simulated(60);
    const rows = encodeCbor(readings);
    const columns = encodeReadings(readings);
    expect(rows.length).toBeGreaterThan(3_500);
    expect(columns.length).toBeLessThan(400);
    const decoded = decodeCbor(columns) as { t0: number; dtMs: number; cols: Record<string, number[]> };
    expect(decoded.t0).toBe(T0);
    expect(decoded.dtMs).toBe(1_000);
    expect(Object.keys(decoded.cols)).toEqual(["importWh", "exportWh", "powerW", "voltageV"]);
    expect(decoded.cols.importWh![1]).toBe(readings[1]!.importWh - readings[0]!.importWh);
    expect(decodeBody(columns)).toEqual(readings);
  });

  it("gives back exactly the readings it was given", () => {
    fc.assert(
      fc.property(steadyReadings, (readings) => {
        const body = encodeReadings(readings);
        expect(columnsOf(readings)).not.toBeNull();
        expect(decodeBody(body)).toEqual(readings);
      }),
      { numRuns: 300 },
    );
  });

  it("leaves as they are readings it cannot say exactly, and any other value", () => {
    const two = simulated(2);
    const cases: unknown[] = [
      two[0], // not an array
      [two[0]], // one reading
      [{ t: T0 }, { t: T0 + 1 }], // nothing but t
      [{ ...two[0], powerW: 1.5 }, two[1]], // a float
      [
        { ...two[0], note: "x" },
        { ...two[1], note: "y" },
      ], // text
      [two[0], { ...two[1], extra: 1 }], // a key more
      [two[0], { ...two[1], powerW: undefined }], // a key less
      [two[0], { ...two[1], t: T0 }], // t not advancing
      [...two, { ...two[1], t: T0 + 2_500 }], // t not at a steady step
      [
        { t: T0, v: Number.MAX_SAFE_INTEGER },
        { t: T0 + 1, v: -Number.MAX_SAFE_INTEGER },
      ], // a difference past 2^53
      [1, 2, 3],
      { interval: 3, orders: [] },
      JSON.parse(`[{"t": ${T0}, "__proto__": 1}, {"t": ${T0 + 1}, "__proto__": 2}]`), // a key a column could not be
    ];
    for (const value of cases) {
      expect(columnsOf(value)).toBeNull();
      expect(encodeReadings(value)).toEqual(encodeCbor(value));
    }
  });

  it("builds at most the rows asked for", () => {
    const readings = simulated(60);
    expect(decodeBody(encodeReadings(readings), 7)).toEqual(readings.slice(0, 7));
    // The most one-byte differences a body holds: only the rows asked for are made.
    const wide = { t0: T0, dtMs: 1, cols: { a: new Array<number>(60_000).fill(0) } };
    expect(rowsOf(wide, 1_024)).toHaveLength(1_024);
    expect(rowsOf(wide)).toHaveLength(60_000);
  });

  it("reads a map that is not exactly the column form as it is", () => {
    const cases: unknown[] = [
      { t0: T0, dtMs: 1_000, cols: { a: [1, 2], b: [1] } }, // unequal columns
      { t0: T0, dtMs: 1_000, cols: { a: [1, 0.5] } }, // a float
      { t0: T0, dtMs: 0, cols: { a: [1, 2] } }, // no step
      { t0: T0, dtMs: 1_000, cols: {} }, // no columns
      { t0: T0, dtMs: 1_000, cols: { a: [] } }, // no readings
      { t0: T0, dtMs: 1_000, cols: { a: [Number.MAX_SAFE_INTEGER, 1] } }, // a sum past 2^53
      { t0: T0, dtMs: 1_000, cols: { a: [1] }, more: 1 }, // a key more
      { t0: T0, cols: { a: [1] } }, // a key less
      { t0: T0, dtMs: 1_000, cols: JSON.parse('{"__proto__": [1, 2]}') }, // a column that would be lost
      { t0: T0, dtMs: 1_000, cols: { t: [5, 1], a: [1, 2] } }, // a t column, which would overwrite t0 + i·dtMs
    ];
    for (const value of cases) expect(rowsOf(value)).toBe(value);
  });
});
