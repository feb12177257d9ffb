import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { pointProblem } from "./point.ts";
import { READINGS_PER_ENVELOPE_MAX, READING_FIELDS_MAX, readingsToPoints } from "./readings.ts";

const DEVICE = "0123456789abcdef0123456789abcdef";
const ENVELOPE_TIME_MS = 1_718_000_000_000;

function map(readings: unknown[]) {
  return readingsToPoints(DEVICE, "meter.reading", readings, ENVELOPE_TIME_MS);
}

describe("readingsToPoints", () => {
  it("makes integer fields, the device tag and the reading's time", () => {
    const r = map([{ t: ENVELOPE_TIME_MS + 1000, energyWh: 1520, powerW: 300 }]);
    expect(r).toEqual({
      points: [{ measurement: "meter.reading", tags: { device: DEVICE }, fields: { energyWh: 1520n, powerW: 300n }, timestampMs: ENVELOPE_TIME_MS + 1000 }],
      skippedReadings: 0,
      skippedFields: 0,
    });
  });

  it("takes timeMs before t, and the envelope's time when neither is there", () => {
    const r = map([{ timeMs: 5, t: 7, a: 1 }, { t: 7, a: 1 }, { a: 1 }]);
    expect(r.points.map((p) => p.timestampMs)).toEqual([5, 7, ENVELOPE_TIME_MS]);
  });

  it("keeps bigints within int64 exactly, skips those outside", () => {
    const r = map([{ energyWh: 9_007_199_254_740_993n, over: 1n << 63n }]);
    expect(r.points[0]?.fields).toEqual({ energyWh: 9_007_199_254_740_993n });
    expect(r.skippedFields).toBe(1);
  });

  it("makes tags only of allowed string keys with plain values", () => {
    const r = map([{ energyWh: 1, phase: "L1", direction: "import", unit: "bad value", note: "free text", channel: "x".repeat(65) }]);
    expect(r.points[0]?.tags).toEqual({ device: DEVICE, phase: "L1", direction: "import" });
    expect(r.skippedFields).toBe(3);
  });

  it("skips floats, nulls, booleans, nested values and odd keys, counting them", () => {
    const r = map([{ energyWh: 1, tempC: 21.5, flag: true, gone: null, nested: { a: 1 }, list: [1], "bad key": 2, time: 3, device: 4 }]);
    expect(r.points[0]?.fields).toEqual({ energyWh: 1n });
    expect(r.skippedFields).toBe(8);
  });

  it("a reading cannot replace the device tag", () => {
    const r = map([{ energyWh: 1, device: "ffffffffffffffffffffffffffffffff" }]);
    expect(r.points[0]?.tags.device).toBe(DEVICE);
  });

  it("ignores a __proto__ key from JSON", () => {
    const r = map([JSON.parse('{"__proto__": 5, "energyWh": 1}')]);
    expect(r.points[0]?.fields).toEqual({ energyWh: 1n });
    expect(Object.keys(r.points[0]?.fields ?? {})).toEqual(["energyWh"]);
  });

  it("skips whole readings that are not objects, have a bad time or no fields", () => {
    const r = map([
      null,
      3,
      "x",
      [1, 2],
      new Map([["a", 1]]),
      new Uint8Array(2),
      { t: -1, a: 1 },
      { t: 1.5, a: 1 },
      { t: "now", a: 1 },
      { note: "only a string" },
      {},
    ]);
    expect(r.points).toEqual([]);
    expect(r.skippedReadings).toBe(11);
  });

  it("skips a reading with too many fields, and readings past the per-envelope bound", () => {
    const wide = Object.fromEntries(Array.from({ length: READING_FIELDS_MAX + 1 }, (_, i) => [`f${i}`, i]));
    expect(map([wide]).skippedReadings).toBe(1);
    const many = map(Array.from({ length: READINGS_PER_ENVELOPE_MAX + 3 }, (_, i) => ({ t: i, a: i })));
    expect(many.points.length).toBe(READINGS_PER_ENVELOPE_MAX);
    expect(many.skippedReadings).toBe(3);
  });

  it("skips readings without a time when the envelope's time is bad", () => {
    expect(readingsToPoints(DEVICE, "meter.reading", [{ a: 1 }], Number.NaN).skippedReadings).toBe(1);
  });

  it("never throws, and every point it makes is one the writer accepts (property)", () => {
    const reading = fc.oneof(
      fc.anything(),
      fc.dictionary(
        fc.oneof(fc.constantFrom("t", "timeMs", "phase", "unit", "energyWh", "__proto__", "time"), fc.string()),
        fc.oneof(fc.integer(), fc.bigInt(), fc.double(), fc.string(), fc.anything()),
      ),
    );
    fc.assert(
      fc.property(fc.array(reading, { maxLength: 20 }), fc.oneof(fc.integer(), fc.double()), (readings, fallback) => {
        const r = readingsToPoints(DEVICE, "meter.reading", readings, fallback);
        for (const p of r.points) expect(pointProblem(p)).toBeNull();
        expect(r.points.length + r.skippedReadings).toBe(readings.length);
      }),
    );
  });
});
