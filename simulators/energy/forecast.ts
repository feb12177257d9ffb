/**
 * Forecasts of a household's net metered energy per market interval, netWh = importWh − exportWh
 * (positive: it will buy; negative: it will sell), made `horizonIntervals` ahead.
 *
 * - persistence: the latest observation usable at the horizon (0 before any).
 * - ridge: online linear regression by recursive least squares with exponential forgetting and a
 *   ridge (Gaussian) prior centred on persistence (Haykin, "Adaptive Filter Theory", 4th ed., §9
 *   RLS; the prior P₀ = δ⁻¹I is the ridge penalty δ‖θ − θ₀‖²). Features: bias, the last two usable
 *   observations, the same interval yesterday, and time of day as sin/cos of the first two daily
 *   harmonics. See SOURCES.md for the Brooklyn Microgrid context.
 * - perfect: the household model's truth (an oracle injected by the runner), for exact scenarios.
 *
 * Horizon: orders for interval k are placed ORDER_LEAD_INTERVALS = 2 intervals ahead, at the start
 * of interval k − 2, when interval k − 3 is the last one complete. A forecaster with horizon H
 * predicts k from observations of intervals ≤ k − H only; the agent uses H = 3.
 */
import type { ForecasterName } from "./scenario.ts";

export interface Forecaster {
  readonly name: ForecasterName;
  /** Expected netWh of `interval`, from observations of intervals ≤ interval − horizon. */
  predict(interval: number): number;
  /** The metered netWh of a finished interval. */
  observe(interval: number, netWh: number): void;
}

export interface ForecasterOptions {
  readonly intervalsPerDay: number;
  /** Truth per interval, for "perfect". */
  readonly oracle?: (interval: number) => number;
  /** Last usable observation is interval − horizonIntervals; default HORIZON_INTERVALS_DEFAULT. */
  readonly horizonIntervals?: number;
}

/** Orders are placed 2 intervals ahead, at the start of k − 2, so k − 3 is the last complete interval. */
export const HORIZON_INTERVALS_DEFAULT = 3;

/** Observations kept: this many intervals behind the newest, enough for "yesterday" at any horizon up to a day. */
function historyLength(intervalsPerDay: number): number {
  return 2 * intervalsPerDay + 2;
}

/** Observations by interval, bounded to the recent past. */
class History {
  private readonly values = new Map<number, number>();
  private newest = -Infinity;

  constructor(private readonly keep: number) {}

  add(interval: number, value: number): void {
    this.values.set(interval, value);
    if (interval > this.newest) {
      this.newest = interval;
      for (const k of this.values.keys()) if (k <= this.newest - this.keep) this.values.delete(k);
    }
  }

  get(interval: number): number | undefined {
    return this.values.get(interval);
  }

  /** The newest observation at or before `interval` within the kept window: [its interval, value]. */
  latestAtOrBefore(interval: number): [number, number] | undefined {
    const from = Math.min(interval, this.newest);
    for (let k = from; k > from - this.keep; k--) {
      const v = this.values.get(k);
      if (v !== undefined) return [k, v];
    }
    return undefined;
  }
}

class Persistence implements Forecaster {
  readonly name = "persistence" as const;
  private readonly history: History;

  constructor(
    intervalsPerDay: number,
    private readonly horizon: number,
  ) {
    this.history = new History(historyLength(intervalsPerDay));
  }

  predict(interval: number): number {
    return this.history.latestAtOrBefore(interval - this.horizon)?.[1] ?? 0;
  }

  observe(interval: number, netWh: number): void {
    this.history.add(interval, netWh);
  }
}

/** Features are in kWh so that they and the bias and harmonics share a scale (a household's interval net is ±0–3 kWh). */
const WH_PER_UNIT = 1000;
/** Bias, lag 1, lag 2, yesterday, sin/cos of the daily and half-daily harmonic. */
const FEATURES = 8;
/** Ridge strength δ: the prior counts like δ observations' worth of evidence for persistence, so a few hours of data override it. */
export const RIDGE_DELTA = 1;
/** Forgetting factor λ: an effective memory of 1 / (1 − λ) = 500 intervals, about five days at 15 minutes, so the fit follows the season. */
export const RLS_FORGETTING = 0.998;
/** Forgetting inflates P in directions the data does not excite (nights of zeros); above this trace it stops (no "wind-up"). */
const P_TRACE_MAX = 1e4;

class Ridge implements Forecaster {
  readonly name = "ridge" as const;
  private readonly history: History;
  /** Coefficients; the prior mean is persistence (weight 1 on lag 1). */
  private readonly theta = new Float64Array(FEATURES);
  /** Inverse information matrix, row-major. */
  private readonly p = new Float64Array(FEATURES * FEATURES);

  constructor(
    private readonly intervalsPerDay: number,
    private readonly horizon: number,
  ) {
    this.history = new History(historyLength(intervalsPerDay));
    this.theta[1] = 1;
    for (let i = 0; i < FEATURES; i++) this.p[i * FEATURES + i] = 1 / RIDGE_DELTA;
  }

  /** Feature vector for predicting `interval` from observations ≤ interval − horizon; null before any. */
  private features(interval: number): Float64Array | null {
    const lag1 = this.history.latestAtOrBefore(interval - this.horizon);
    if (lag1 === undefined) return null;
    const [lag1Interval, lag1Wh] = lag1;
    const lag2Wh = this.history.get(lag1Interval - 1) ?? lag1Wh;
    const yesterday = interval - this.intervalsPerDay;
    const yesterdayWh = yesterday <= interval - this.horizon ? (this.history.get(yesterday) ?? lag1Wh) : lag1Wh;
    const slot = (((interval % this.intervalsPerDay) + this.intervalsPerDay) % this.intervalsPerDay) / this.intervalsPerDay;
    const angle = 2 * Math.PI * slot;
    return Float64Array.of(
      1,
      lag1Wh / WH_PER_UNIT,
      lag2Wh / WH_PER_UNIT,
      yesterdayWh / WH_PER_UNIT,
      Math.sin(angle),
      Math.cos(angle),
      Math.sin(2 * angle),
      Math.cos(2 * angle),
    );
  }

  predict(interval: number): number {
    const x = this.features(interval);
    if (x === null) return 0;
    let y = 0;
    for (let i = 0; i < FEATURES; i++) y += this.theta[i]! * x[i]!;
    return y * WH_PER_UNIT;
  }

  observe(interval: number, netWh: number): void {
    // Train on the pair (features as they were at the horizon, truth) before adding the truth to the history.
    const x = this.features(interval);
    this.history.add(interval, netWh);
    if (x === null) return;
    const n = FEATURES;
    const p = this.p;
    const px = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += p[i * n + j]! * x[j]!;
      px[i] = s;
    }
    let trace = 0;
    for (let i = 0; i < n; i++) trace += p[i * n + i]!;
    const lambda = trace > P_TRACE_MAX ? 1 : RLS_FORGETTING;
    let denominator = lambda;
    for (let i = 0; i < n; i++) denominator += x[i]! * px[i]!;
    let error = netWh / WH_PER_UNIT;
    for (let i = 0; i < n; i++) error -= this.theta[i]! * x[i]!;
    for (let i = 0; i < n; i++) this.theta[i]! += (px[i]! / denominator) * error;
    // P ← (P − P x xᵀ P / (λ + xᵀ P x)) / λ, symmetric by construction (P x xᵀ P is).
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) p[i * n + j] = (p[i * n + j]! - (px[i]! * px[j]!) / denominator) / lambda;
    }
  }
}

class Perfect implements Forecaster {
  readonly name = "perfect" as const;

  constructor(private readonly oracle: (interval: number) => number) {}

  predict(interval: number): number {
    return this.oracle(interval);
  }

  observe(): void {}
}

export function makeForecaster(name: ForecasterName, options: ForecasterOptions): Forecaster {
  const horizon = options.horizonIntervals ?? HORIZON_INTERVALS_DEFAULT;
  if (!Number.isInteger(options.intervalsPerDay) || options.intervalsPerDay < 1) throw new RangeError(`intervalsPerDay ${options.intervalsPerDay}`);
  if (!Number.isInteger(horizon) || horizon < 1 || horizon > options.intervalsPerDay)
    throw new RangeError(`horizon ${horizon} not in 1…${options.intervalsPerDay}`);
  switch (name) {
    case "persistence":
      return new Persistence(options.intervalsPerDay, horizon);
    case "ridge":
      return new Ridge(options.intervalsPerDay, horizon);
    case "perfect":
      if (options.oracle === undefined) throw new Error("the perfect forecaster needs an oracle (the household model's truth)");
      return new Perfect(options.oracle);
  }
}

/** |actual| below this is left out of MAPE: a percentage of almost nothing says nothing (an interval that nets to ~0). */
export const MAPE_ACTUAL_MIN_WH = 10;

/** Accumulated forecast errors: mean absolute error, and mean absolute percentage error over intervals with |actual| ≥ MAPE_ACTUAL_MIN_WH. */
export class ForecastErrors {
  private n = 0;
  private absoluteWh = 0;
  private percentCount = 0;
  private percentSum = 0;

  add(predictedWh: number, actualWh: number): void {
    const error = Math.abs(predictedWh - actualWh);
    this.n++;
    this.absoluteWh += error;
    if (Math.abs(actualWh) >= MAPE_ACTUAL_MIN_WH) {
      this.percentCount++;
      this.percentSum += (100 * error) / Math.abs(actualWh);
    }
  }

  get count(): number {
    return this.n;
  }

  /** Wh; 0 before any. */
  mae(): number {
    return this.n === 0 ? 0 : this.absoluteWh / this.n;
  }

  /** Percent; null when no interval had |actual| ≥ MAPE_ACTUAL_MIN_WH. */
  mape(): number | null {
    return this.percentCount === 0 ? null : this.percentSum / this.percentCount;
  }
}
