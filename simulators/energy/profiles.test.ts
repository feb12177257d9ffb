import { describe, expect, it } from "vitest";
import {
  Ar1Noise,
  dayTypeOf,
  dynamizationFactor,
  easterSunday,
  germanLocalDay,
  germanUtcOffsetMinutes,
  H0Load,
  h0PowerW,
  LOAD_NOISE_SIGMA,
  SchedulePower,
  seasonOf,
} from "./profiles.ts";
import { Rng } from "./random.ts";

const HOUR_MS = 3_600_000;
const QUARTER_MS = HOUR_MS / 4;

describe("BDEW calendar", () => {
  it("dynamization factor is the published polynomial", () => {
    // F(1) = −3.92e-10 + 3.2e-7 − 7.02e-5 + 2.1e-3 + 1.24
    expect(dynamizationFactor(1)).toBeCloseTo(1.2420301, 6);
    // F(100) = −0.0392 + 0.32 − 0.702 + 0.21 + 1.24
    expect(dynamizationFactor(100)).toBeCloseTo(1.0288, 9);
    // Highest in winter, lowest around midsummer (≈ 0.8), back up by December.
    expect(dynamizationFactor(172)).toBeLessThan(0.82);
    expect(dynamizationFactor(172)).toBeGreaterThan(0.76);
    expect(dynamizationFactor(365)).toBeGreaterThan(1.1);
  });

  it("seasons follow the BDEW periods", () => {
    expect([seasonOf(3, 20), seasonOf(3, 21), seasonOf(5, 14), seasonOf(5, 15), seasonOf(9, 14), seasonOf(9, 15), seasonOf(10, 31), seasonOf(11, 1)]).toEqual([
      "winter",
      "transition",
      "transition",
      "summer",
      "summer",
      "transition",
      "transition",
      "winter",
    ]);
  });

  it("day types: Sundays and holidays, Saturdays and 24/31 December", () => {
    expect(easterSunday(2026)).toEqual([4, 5]);
    expect(easterSunday(2024)).toEqual([3, 31]);
    expect(dayTypeOf(2026, 6, 17)).toBe("workday"); // a Wednesday
    expect(dayTypeOf(2026, 6, 20)).toBe("saturday");
    expect(dayTypeOf(2026, 6, 21)).toBe("sunday");
    expect(dayTypeOf(2026, 4, 3)).toBe("sunday"); // Good Friday
    expect(dayTypeOf(2026, 5, 14)).toBe("sunday"); // Ascension
    expect(dayTypeOf(2026, 10, 3)).toBe("sunday"); // German Unity Day (a Saturday in 2026): holidays are Sundays
    expect(dayTypeOf(2026, 12, 24)).toBe("saturday"); // a Thursday
    expect(dayTypeOf(2028, 12, 24)).toBe("sunday"); // a Sunday stays a Sunday
  });

  it("local time is CET/CEST with EU switch dates", () => {
    expect(germanUtcOffsetMinutes(Date.parse("2026-01-15T12:00:00Z"))).toBe(60);
    expect(germanUtcOffsetMinutes(Date.parse("2026-03-29T00:59:00Z"))).toBe(60);
    expect(germanUtcOffsetMinutes(Date.parse("2026-03-29T01:00:00Z"))).toBe(120);
    expect(germanUtcOffsetMinutes(Date.parse("2026-10-25T00:59:00Z"))).toBe(120);
    expect(germanUtcOffsetMinutes(Date.parse("2026-10-25T01:00:00Z"))).toBe(60);
    expect(germanLocalDay(Date.parse("2026-06-20T22:30:00Z"))).toEqual({ year: 2026, month: 6, day: 21, dayOfYear: 172, quarter: 2 });
  });
});

describe("H0 load", () => {
  it("sums to the annual energy over a year, without and with noise (±2 %)", () => {
    const start = Date.UTC(2026, 0, 1);
    const end = Date.UTC(2027, 0, 1);
    let plainWh = 0;
    let noisyWh = 0;
    const load = new H0Load(3500, 99, QUARTER_MS / 1000);
    for (let t = start; t < end; t += QUARTER_MS) {
      plainWh += h0PowerW(t, 3500) / 4;
      noisyWh += load.powerW(t) / 4;
    }
    expect(Math.abs(plainWh / 3_500_000 - 1)).toBeLessThan(0.001);
    expect(Math.abs(noisyWh / 3_500_000 - 1)).toBeLessThan(0.02);
    expect(noisyWh).not.toBe(plainWh);
  });

  it("has an evening peak well above the night base on every day type and season", () => {
    const days = ["2026-01-14", "2026-01-17", "2026-01-18", "2026-06-17", "2026-06-20", "2026-06-21", "2026-04-15", "2026-04-18", "2026-04-19"];
    for (const day of days) {
      const midnight = Date.parse(`${day}T00:00:00Z`);
      const offsetMs = germanUtcOffsetMinutes(midnight) * 60_000;
      const at = (localHour: number) => h0PowerW(midnight - offsetMs + localHour * HOUR_MS, 1000);
      const night = Math.min(at(2), at(3), at(4));
      const evening = Math.max(at(18), at(19), at(20), at(21));
      const morning = at(8);
      expect(evening, day).toBeGreaterThan(2.5 * night);
      expect(morning, day).toBeGreaterThan(night);
      expect(night, day).toBeGreaterThan(20);
    }
  });

  it("is higher in winter than in summer", () => {
    const dayWh = (date: string) => {
      let wh = 0;
      for (let q = 0; q < 96; q++) wh += h0PowerW(Date.parse(`${date}T00:00:00Z`) + q * QUARTER_MS, 1000) / 4;
      return wh;
    };
    expect(dayWh("2026-01-14")).toBeGreaterThan(1.3 * dayWh("2026-06-17"));
  });

  it("noise is smooth: consecutive 10 s factors differ far less than the spread", () => {
    const noise = new Ar1Noise(new Rng(3), 10);
    let previous = noise.next();
    let maxJump = 0;
    let sum = 0;
    let squares = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const x = noise.next();
      maxJump = Math.max(maxJump, Math.abs(x - previous));
      previous = x;
      sum += x;
      squares += (x - 1) ** 2;
    }
    expect(maxJump).toBeLessThan(0.05);
    expect(Math.abs(sum / n - 1)).toBeLessThan(0.01);
    expect(Math.sqrt(squares / n)).toBeGreaterThan(0.6 * LOAD_NOISE_SIGMA);
    expect(Math.sqrt(squares / n)).toBeLessThan(1.4 * LOAD_NOISE_SIGMA);
  });
});

describe("SchedulePower", () => {
  it("gives exact watts within [from, to) in UTC, summing overlaps, 0 elsewhere", () => {
    const s = new SchedulePower([
      { from: "00:00", to: "24:00", watts: 400 },
      { from: "10:00", to: "10:30", watts: 1000 },
    ]);
    const day = Date.parse("2026-06-21T00:00:00Z");
    expect(s.powerW(day)).toBe(400);
    expect(s.powerW(day + 10 * HOUR_MS - 1)).toBe(400);
    expect(s.powerW(day + 10 * HOUR_MS)).toBe(1400);
    expect(s.powerW(day + 10.5 * HOUR_MS - 1)).toBe(1400);
    expect(s.powerW(day + 10.5 * HOUR_MS)).toBe(400);
    expect(s.powerW(day + 24 * HOUR_MS - 1)).toBe(400);
    expect(new SchedulePower([{ from: "06:00", to: "07:00", watts: 5 }]).powerW(day + 5 * HOUR_MS)).toBe(0);
  });
});
