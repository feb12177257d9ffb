import { describe, expect, it } from "vitest";
import { CLOUD_INDEX_MIN, clearSkyGhi, clearSkyPvW, cloudIndex, PvArray, sunPosition } from "./solar.ts";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** Energy of a 1-minute sampled power curve over one UTC day, Wh. */
function dayWh(date: string, powerW: (t: number) => number): number {
  const start = Date.parse(`${date}T00:00:00Z`);
  let wh = 0;
  for (let t = start; t < start + DAY_MS; t += MINUTE_MS) wh += powerW(t) / 60;
  return wh;
}

describe("sun position", () => {
  it("peaks at ≈ 61° at 52.5° N on the June solstice, at solar noon ≈ 11:08 UTC for 13.4° E", () => {
    // 90° − 52.5° + 23.44° = 60.94°
    const start = Date.parse("2026-06-21T00:00:00Z");
    let best = { t: 0, elevationDeg: -90 };
    for (let t = start; t < start + DAY_MS; t += MINUTE_MS) {
      const e = sunPosition(t, 52.5).elevationDeg;
      if (e > best.elevationDeg) best = { t, elevationDeg: e };
    }
    expect(Math.abs(best.elevationDeg - 61)).toBeLessThan(1);
    const noonMinutes = (best.t - start) / MINUTE_MS;
    expect(Math.abs(noonMinutes - (11 * 60 + 8))).toBeLessThanOrEqual(3);
  });

  it("is ≈ 14° at the December solstice noon and below the horizon at midnight", () => {
    // 90° − 52.5° − 23.44° = 14.06°
    expect(Math.abs(sunPosition(Date.parse("2026-12-21T11:05:00Z"), 52.5).elevationDeg - 14.06)).toBeLessThan(0.5);
    expect(sunPosition(Date.parse("2026-06-21T23:00:00Z"), 52.5).elevationDeg).toBeLessThan(0);
  });
});

describe("PV", () => {
  it("is zero at night", () => {
    expect(clearSkyGhi(-0.2)).toBe(0);
    const array = new PvArray(8, 52.5, 1, 2);
    for (const time of ["2026-06-21T00:00:00Z", "2026-06-21T21:00:00Z", "2026-12-21T17:00:00Z"]) expect(array.powerW(Date.parse(time))).toBe(0);
  });

  it("yields 6–8 kWh per kWp on a clear midsummer day at 52.5° N, far less at midwinter", () => {
    const june = dayWh("2026-06-21", (t) => clearSkyPvW(t, 1, 52.5));
    expect(june).toBeGreaterThan(6000);
    expect(june).toBeLessThan(8000);
    const december = dayWh("2026-12-21", (t) => clearSkyPvW(t, 1, 52.5));
    expect(december).toBeLessThan(june / 4);
    // Linear in kWp.
    expect(dayWh("2026-06-21", (t) => clearSkyPvW(t, 5, 52.5))).toBeCloseTo(5 * june, 6);
  });

  it("with clouds, June averages 3.5–6 kWh/kWp a day (German PV yields)", () => {
    let wh = 0;
    const array = new PvArray(1, 52.5, 17, 4);
    for (let d = 1; d <= 30; d++) wh += dayWh(`2026-06-${String(d).padStart(2, "0")}`, (t) => array.powerW(t));
    expect(wh / 30).toBeGreaterThan(3500);
    expect(wh / 30).toBeLessThan(6000);
  });

  it("clouds are regional: the same seed gives the same sky; households differ only a little", () => {
    const t0 = Date.parse("2026-06-21T00:00:00Z");
    let differsFromOtherRegion = false;
    for (let t = t0; t < t0 + 3 * DAY_MS; t += 7 * MINUTE_MS) {
      const k = cloudIndex(5, t);
      expect(k).toBeGreaterThanOrEqual(CLOUD_INDEX_MIN);
      expect(k).toBeLessThanOrEqual(1);
      if (Math.abs(k - cloudIndex(6, t)) > 0.05) differsFromOtherRegion = true;
    }
    expect(differsFromOtherRegion).toBe(true);
    const a = new PvArray(5, 52.5, 5, 100);
    const b = new PvArray(5, 52.5, 5, 200);
    const noon = Date.parse("2026-06-21T11:00:00Z");
    for (let t = noon; t < noon + 60 * MINUTE_MS; t += MINUTE_MS) {
      const clear = clearSkyPvW(t, 5, 52.5);
      expect(a.powerW(t)).toBeLessThanOrEqual(clear * 1.25);
      expect(Math.abs(a.powerW(t) - b.powerW(t))).toBeLessThan(0.3 * clear * cloudIndex(5, t));
    }
  });

  it("clouds change smoothly: minute to minute by less than a tenth", () => {
    const t0 = Date.parse("2026-06-21T00:00:00Z");
    let previous = cloudIndex(9, t0);
    for (let t = t0 + MINUTE_MS; t < t0 + 5 * DAY_MS; t += MINUTE_MS) {
      const k = cloudIndex(9, t);
      expect(Math.abs(k - previous)).toBeLessThan(0.1);
      previous = k;
    }
  });
});
