import { describe, expect, it } from "vitest";
import { meterReadings, type MeterReading } from "./simulate.ts";

const take = (n: number, seed: number): MeterReading[] => {
  const out: MeterReading[] = [];
  for (const r of meterReadings(seed, 1_700_000_000_000)) {
    if (out.push(r) === n) break;
  }
  return out;
};

describe("simulated meter readings", () => {
  it("are integers, one a second, with counters that never go down, and the same for the same seed", () => {
    const readings = take(3600, 7);
    expect(take(3600, 7)).toEqual(readings);
    expect(take(10, 8)).not.toEqual(readings.slice(0, 10));
    readings.forEach((r, i) => {
      for (const v of Object.values(r)) expect(Number.isSafeInteger(v)).toBe(true);
      expect(r.timeMs).toBe(1_700_000_000_000 + i * 1000);
      expect(r.voltageV).toBeGreaterThanOrEqual(224);
      expect(r.voltageV).toBeLessThanOrEqual(236);
      if (i > 0) {
        expect(r.importWh).toBeGreaterThanOrEqual(readings[i - 1]!.importWh);
        expect(r.exportWh).toBeGreaterThanOrEqual(readings[i - 1]!.exportWh);
      }
    });
    expect(readings.at(-1)!.importWh + readings.at(-1)!.exportWh).toBeGreaterThan(readings[0]!.importWh + readings[0]!.exportWh);
  });
});
