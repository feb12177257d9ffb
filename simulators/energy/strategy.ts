/**
 * How an agent prices its order for one interval of the call auction. Prices leave as integers
 * in micros per kWh; every strategy except an explicit range stays within the band
 * [grid export price, grid import price], the only prices at which a local trade beats the grid
 * for both sides (a seller never sells below feed-in, a buyer never pays above the grid).
 *
 * - zi: ZI-C, zero intelligence constrained (Gode & Sunder 1993, J. Political Economy 101(1)):
 *   a uniform random price within the budget constraint.
 * - zip: ZIP, zero intelligence plus (Cliff 1997, HP Labs technical report HPL-97-91): a profit margin per side,
 *   moved by the Widrow–Hoff rule with momentum toward a perturbed target around the last price.
 * - forecast: predicts the next clearing price per time-of-day slot (exponential moving average,
 *   falling back to the mean of all slots, then to the grid midpoint) and quotes a little on its own
 *   side of the prediction, to trade with high probability.
 * - an explicit range: a uniform seeded draw in [from, to] per side; exactly `from` when from = to.
 */
import { Rng } from "./random.ts";
import type { GridPrices, StrategySpec } from "./scenario.ts";

export type Side = "bid" | "ask";

export interface OrderIntent {
  readonly side: Side;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
}

/** What the market told the agent about one interval once settled. */
export interface MarketFeedback {
  readonly interval: number;
  /** null: nothing cleared. */
  readonly clearingPriceMicrosPerKwh: number | null;
  /** Energy this household traded with peers (bought or sold). */
  readonly myTradedWh: number;
}

export interface Strategy {
  readonly name: string;
  /** The quote for `interval` on `side`, integer micros per kWh. */
  price(side: Side, grid: GridPrices, interval: number): number;
  /** The market's result for an interval; `lastIntent` is the order this agent placed for it (null: none). */
  learn(feedback: MarketFeedback, lastIntent: OrderIntent | null): void;
}

export interface StrategyOptions {
  /** Slots per day for the forecast strategy; default 96 (15-minute intervals). */
  readonly intervalsPerDay?: number;
}

const INTERVALS_PER_DAY_DEFAULT = 96;

function clampToBand(price: number, grid: GridPrices): number {
  return Math.round(Math.max(grid.exportPriceMicrosPerKwh, Math.min(grid.importPriceMicrosPerKwh, price)));
}

class ZeroIntelligence implements Strategy {
  readonly name = "zi";
  constructor(private readonly rng: Rng) {}

  price(_side: Side, grid: GridPrices): number {
    return this.rng.int(grid.exportPriceMicrosPerKwh, grid.importPriceMicrosPerKwh);
  }

  learn(): void {}
}

/** Cliff (1997) parameters, as in his Bristol Stock Exchange's ZIP: β ∈ U[0.1, 0.5], momentum γ ∈ U[0, 0.1], initial margins ∈ U[0.05, 0.35]. */
export const ZIP_BETA_RANGE: readonly [number, number] = [0.1, 0.5];
export const ZIP_MOMENTUM_RANGE: readonly [number, number] = [0, 0.1];
export const ZIP_INITIAL_MARGIN_RANGE: readonly [number, number] = [0.05, 0.35];
/** Relative perturbation c_R: targets are R·q with R ∈ U[1, 1 + c_R] (up) or U[1 − c_R, 1] (down) (Cliff 1997). */
export const ZIP_RELATIVE_PERTURBATION = 0.05;
/**
 * Absolute perturbation c_A: A ∈ U[0, c_A] added (up) or subtracted (down). Cliff's 0.05 was in
 * price units of markets priced around 1–4 units, i.e. a few percent of a price; here 5,000 micros
 * (0.005 per kWh), a few percent of a 200,000-micro price.
 */
export const ZIP_ABSOLUTE_PERTURBATION_MICROS = 5_000;

/**
 * ZIP adapted to a call auction. A buyer's limit is the grid import price and it quotes
 * limit·(1 + μ_b) with μ_b ∈ [−1, 0]; a seller's limit is the feed-in price, quoting limit·(1 + μ_s),
 * μ_s ≥ 0. After each interval, with q the clearing price and p the agent's quote:
 * - it traded: it could perhaps have done better, so it aims beyond q (buyer: target below q,
 *   seller: above q) — the margin rises;
 * - it did not trade although the market cleared at q: it aims at q from its competitive side
 *   (buyer: above q, seller: below q) — the margin falls;
 * - nothing cleared: it moves toward the other side from its own quote (buyer up, seller down).
 * The quote moves by Δ = γ·Δ_prev + (1 − γ)·β·(target − p) (Widrow–Hoff with momentum), and the
 * new margin is accepted only if it stays on the right side of 0 (Cliff 1997; BSE `profit_alter`).
 * Without an order for the interval there is no quote to move, so nothing is learnt.
 */
class Zip implements Strategy {
  readonly name = "zip";
  private readonly beta: number;
  private readonly momentum: number;
  /** Buyer margin ≤ 0, seller margin ≥ 0. */
  private readonly margin: Record<Side, number>;
  private readonly previousChange: Record<Side, number> = { bid: 0, ask: 0 };
  /** Limits as last seen (learn() is not told the grid). */
  private grid: GridPrices | null = null;

  constructor(private readonly rng: Rng) {
    this.beta = rng.uniform(...ZIP_BETA_RANGE);
    this.momentum = rng.uniform(...ZIP_MOMENTUM_RANGE);
    this.margin = { bid: -rng.uniform(...ZIP_INITIAL_MARGIN_RANGE), ask: rng.uniform(...ZIP_INITIAL_MARGIN_RANGE) };
  }

  /** The current margin of one side (for tests and reports). */
  marginOf(side: Side): number {
    return this.margin[side];
  }

  private limit(side: Side, grid: GridPrices): number {
    return side === "bid" ? grid.importPriceMicrosPerKwh : grid.exportPriceMicrosPerKwh;
  }

  price(side: Side, grid: GridPrices): number {
    this.grid = grid;
    return clampToBand(this.limit(side, grid) * (1 + this.margin[side]), grid);
  }

  private targetUp(price: number): number {
    return price * (1 + ZIP_RELATIVE_PERTURBATION * this.rng.next()) + ZIP_ABSOLUTE_PERTURBATION_MICROS * this.rng.next();
  }

  private targetDown(price: number): number {
    return price * (1 - ZIP_RELATIVE_PERTURBATION * this.rng.next()) - ZIP_ABSOLUTE_PERTURBATION_MICROS * this.rng.next();
  }

  learn(feedback: MarketFeedback, lastIntent: OrderIntent | null): void {
    if (lastIntent === null || this.grid === null) return;
    const side = lastIntent.side;
    const quote = lastIntent.priceMicrosPerKwh;
    const q = feedback.clearingPriceMicrosPerKwh;
    const traded = feedback.myTradedWh > 0;
    let target: number;
    if (q === null) target = side === "bid" ? this.targetUp(quote) : this.targetDown(quote);
    else if (traded) target = side === "bid" ? this.targetDown(q) : this.targetUp(q);
    else target = side === "bid" ? this.targetUp(q) : this.targetDown(q);
    const change = this.momentum * this.previousChange[side] + (1 - this.momentum) * this.beta * (target - quote);
    this.previousChange[side] = change;
    const limit = this.limit(side, this.grid);
    if (limit <= 0) return;
    const margin = (quote + change) / limit - 1;
    if (side === "bid" ? margin <= 0 && margin >= -1 : margin >= 0) this.margin[side] = margin;
  }
}

/** Weight of the newest clearing price in a slot's moving average: about the last three days count. */
export const FORECAST_PRICE_SMOOTHING = 0.3;
/** How far on its own side of the predicted price the forecast strategy quotes, as a share of the grid spread. */
export const FORECAST_QUOTE_OFFSET = 0.05;

class ForecastPrice implements Strategy {
  readonly name = "forecast";
  private readonly slots: Float64Array;
  private readonly seen: Uint8Array;
  private sum = 0;
  private count = 0;

  constructor(private readonly intervalsPerDay: number) {
    this.slots = new Float64Array(intervalsPerDay);
    this.seen = new Uint8Array(intervalsPerDay);
  }

  private slot(interval: number): number {
    return ((interval % this.intervalsPerDay) + this.intervalsPerDay) % this.intervalsPerDay;
  }

  /** Predicted clearing price for the interval: its slot's average, else the mean of all clearing prices, else the grid midpoint. */
  predict(interval: number, grid: GridPrices): number {
    const s = this.slot(interval);
    if (this.seen[s] === 1) return this.slots[s]!;
    if (this.count > 0) return this.sum / this.count;
    return (grid.importPriceMicrosPerKwh + grid.exportPriceMicrosPerKwh) / 2;
  }

  price(side: Side, grid: GridPrices, interval: number): number {
    const offset = FORECAST_QUOTE_OFFSET * (grid.importPriceMicrosPerKwh - grid.exportPriceMicrosPerKwh);
    const predicted = this.predict(interval, grid);
    return clampToBand(side === "bid" ? predicted + offset : predicted - offset, grid);
  }

  learn(feedback: MarketFeedback): void {
    const q = feedback.clearingPriceMicrosPerKwh;
    if (q === null) return;
    const s = this.slot(feedback.interval);
    this.slots[s] = this.seen[s] === 1 ? (1 - FORECAST_PRICE_SMOOTHING) * this.slots[s]! + FORECAST_PRICE_SMOOTHING * q : q;
    this.seen[s] = 1;
    this.sum += q;
    this.count++;
  }
}

class FixedRange implements Strategy {
  readonly name = "range";
  constructor(
    private readonly rng: Rng,
    private readonly bid: readonly [number, number],
    private readonly ask: readonly [number, number],
  ) {}

  price(side: Side): number {
    const [from, to] = side === "bid" ? this.bid : this.ask;
    return from === to ? from : this.rng.int(from, to);
  }

  learn(): void {}
}

export function makeStrategy(spec: StrategySpec, seed: number, options: StrategyOptions = {}): Strategy {
  const rng = new Rng(seed);
  if (typeof spec === "object") return new FixedRange(rng, spec.bidMicrosPerKwh, spec.askMicrosPerKwh);
  switch (spec) {
    case "zi":
      return new ZeroIntelligence(rng);
    case "zip":
      return new Zip(rng);
    case "forecast":
      return new ForecastPrice(options.intervalsPerDay ?? INTERVALS_PER_DAY_DEFAULT);
  }
}

export type { GridPrices };
