import { describe, expect, it } from "vitest";
import { ForecastErrors, makeForecaster, MAPE_ACTUAL_MIN_WH } from "./forecast.ts";
import { Rng } from "./random.ts";

const PER_DAY = 96;

/** Runs a forecaster the way the runner does: predict k once, then (later) observe it; returns its errors. */
function score(name: "persistence" | "ridge", signal: readonly number[], horizon: number, skip: number): ForecastErrors {
  const f = makeForecaster(name, { intervalsPerDay: PER_DAY, horizonIntervals: horizon });
  const errors = new ForecastErrors();
  const predicted = new Map<number, number>();
  for (let k = 0; k < signal.length; k++) {
    // At the time orders for k are placed, intervals ≤ k − horizon are observed.
    if (k - horizon >= 0) f.observe(k - horizon, signal[k - horizon]!);
    predicted.set(k, f.predict(k));
  }
  for (let k = skip; k < signal.length; k++) errors.add(predicted.get(k)!, signal[k]!);
  return errors;
}

describe("forecasters", () => {
  it("ridge beats persistence in MAE on a daily periodic signal with noise (4 days, horizon 3)", () => {
    const rng = new Rng(1);
    const signal = Array.from(
      { length: 5 * PER_DAY },
      (_, k) => 300 + 500 * Math.sin((2 * Math.PI * k) / PER_DAY) + 200 * Math.cos((4 * Math.PI * k) / PER_DAY) + 60 * rng.normal(),
    );
    const persistence = score("persistence", signal, 3, PER_DAY);
    const ridge = score("ridge", signal, 3, PER_DAY);
    expect(ridge.mae()).toBeLessThan(0.8 * persistence.mae());
    // The noise floor: ridge cannot beat the noise (E|N(0, 60)| ≈ 48), but should come near it.
    expect(ridge.mae()).toBeLessThan(2 * 48);
  });

  it("ridge also beats persistence on a PV-like household: import at night, export at midday", () => {
    const rng = new Rng(2);
    const signal = Array.from({ length: 6 * PER_DAY }, (_, k) => {
      const hour = ((k % PER_DAY) + 0.5) / 4;
      const sun = Math.max(0, Math.sin((Math.PI * (hour - 5)) / 16));
      const cloud = 0.6 + 0.4 * Math.abs(Math.sin(k / 37));
      return Math.round(120 + 60 * rng.normal() - 1400 * sun * cloud);
    });
    expect(score("ridge", signal, 3, PER_DAY).mae()).toBeLessThan(score("persistence", signal, 3, PER_DAY).mae());
  });

  it("persistence repeats the latest observation at or before k − horizon, 0 before any", () => {
    const f = makeForecaster("persistence", { intervalsPerDay: PER_DAY, horizonIntervals: 2 });
    expect(f.predict(5)).toBe(0);
    f.observe(0, 100);
    f.observe(1, 200);
    f.observe(2, 300);
    expect(f.predict(3)).toBe(200); // k − 2 = 1
    expect(f.predict(4)).toBe(300);
    expect(f.predict(9)).toBe(300); // the latest there is
    expect(f.predict(2)).toBe(100);
  });

  it("ridge starts from persistence (its ridge prior) and needs an observation at the horizon", () => {
    // Before any observation at the horizon, nothing to go on.
    const r = makeForecaster("ridge", { intervalsPerDay: PER_DAY, horizonIntervals: 3 });
    expect(r.predict(10)).toBe(0);
    r.observe(8, 500); // newer than 10 − 3: not usable for 10
    expect(r.predict(10)).toBe(0);
    expect(r.predict(11)).toBeCloseTo(500, 6);
    // With only a few observations the prior (persistence) dominates.
    const c = makeForecaster("ridge", { intervalsPerDay: PER_DAY, horizonIntervals: 1 });
    c.observe(0, 400);
    expect(Math.abs(c.predict(1) - 400)).toBeLessThan(1);
  });

  it("perfect asks the oracle, and needs one", () => {
    const f = makeForecaster("perfect", { intervalsPerDay: PER_DAY, oracle: (k) => k * 7 });
    expect(f.predict(6)).toBe(42);
    expect(() => makeForecaster("perfect", { intervalsPerDay: PER_DAY })).toThrow(/oracle/);
  });

  it("rejects a horizon outside 1…intervalsPerDay", () => {
    expect(() => makeForecaster("ridge", { intervalsPerDay: PER_DAY, horizonIntervals: 0 })).toThrow(RangeError);
    expect(() => makeForecaster("ridge", { intervalsPerDay: PER_DAY, horizonIntervals: PER_DAY + 1 })).toThrow(RangeError);
  });
});

describe("ForecastErrors", () => {
  it("computes MAE and MAPE on a hand example", () => {
    const e = new ForecastErrors();
    expect(e.mae()).toBe(0);
    expect(e.mape()).toBeNull();
    e.add(100, 110); // |10|, 10/110 = 9.0909 %
    e.add(50, 40); // |10|, 10/40 = 25 %
    e.add(-30, -60); // |30|, 30/60 = 50 % (negative actuals count by magnitude)
    e.add(5, 0); // |5|, |actual| < 10 Wh: not in MAPE
    e.add(0, -9); // |9|, not in MAPE
    expect(e.count).toBe(5);
    expect(e.mae()).toBeCloseTo((10 + 10 + 30 + 5 + 9) / 5, 12);
    expect(e.mape()).toBeCloseTo((100 * (10 / 110) + 25 + 50) / 3, 12);
  });

  it("MAPE is null when every actual is below the threshold", () => {
    const e = new ForecastErrors();
    e.add(3, MAPE_ACTUAL_MIN_WH - 1);
    expect(e.mae()).toBe(6);
    expect(e.mape()).toBeNull();
    e.add(0, MAPE_ACTUAL_MIN_WH);
    expect(e.mape()).toBe(100);
  });
});
