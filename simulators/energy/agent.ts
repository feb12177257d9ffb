/**
 * A household's trading agent: forecasts the household's net energy for an interval and places
 * one order for it, priced by its strategy; learns from the meter's truth and the market's result.
 *
 * Expected net > 0: a bid for that many Wh; < 0: an ask for |net| Wh; 0: no order. Energy is
 * clamped to the service's ORDER_ENERGY_WH_MAX, prices to its PRICE_MICROS_PER_KWH_MAX
 * (services/energy-trading/body.ts). Deterministic from (scenario.seed, index).
 */
import { ForecastErrors, type Forecaster, makeForecaster } from "./forecast.ts";
import { derive } from "./random.ts";
import { type ForecasterName, type HouseholdSpec, intervalsPerDay, PRICE_MICROS_PER_KWH_MAX, type Scenario, type StrategySpec } from "./scenario.ts";
import { makeStrategy, type MarketFeedback, type OrderIntent, type Strategy } from "./strategy.ts";

/** Orders for interval k are placed at the start of interval k − 2, so they are on the ledger before k opens. */
export const ORDER_LEAD_INTERVALS = 2;
/** When orders for k are placed, k − 3 is the last complete interval: the forecast horizon. */
export const FORECAST_HORIZON_INTERVALS = ORDER_LEAD_INTERVALS + 1;
/** 1 MWh per household per interval is far beyond any home (the service's ORDER_ENERGY_WH_MAX). */
export const ORDER_ENERGY_WH_MAX = 1_000_000;
/** Pending forecasts and intents kept per agent: the runner settles an interval a few intervals after ordering it; a day is ample. */
const PENDING_MAX = 96 * 4;

export const STRATEGY_DEFAULT: StrategySpec = "zi";

/** Persistence for zero intelligence (it ignores the market anyway), ridge for the learning strategies. */
export function defaultForecaster(strategy: StrategySpec): ForecasterName {
  return strategy === "zi" ? "persistence" : "ridge";
}

export class HouseholdAgent {
  readonly id: string;
  readonly forecaster: Forecaster;
  readonly strategy: Strategy;
  readonly errors = new ForecastErrors();
  private readonly grid: Scenario["grid"];
  private readonly predictions = new Map<number, number>();
  private readonly intents = new Map<number, OrderIntent>();

  constructor(spec: HouseholdSpec, scenario: Scenario, index: number, oracle?: (interval: number) => number) {
    this.id = spec.id;
    this.grid = scenario.grid;
    const perDay = intervalsPerDay(scenario);
    const strategy = spec.strategy ?? STRATEGY_DEFAULT;
    this.forecaster = makeForecaster(spec.forecaster ?? defaultForecaster(strategy), {
      intervalsPerDay: perDay,
      horizonIntervals: FORECAST_HORIZON_INTERVALS,
      ...(oracle === undefined ? {} : { oracle }),
    });
    this.strategy = makeStrategy(strategy, derive(scenario.seed, "household", index, "strategy"), { intervalsPerDay: perDay });
  }

  /** The orders for `interval` (placed ORDER_LEAD_INTERVALS ahead): at most one; none when the expected net is 0. */
  ordersFor(interval: number): OrderIntent[] {
    const expectedWh = Math.round(this.forecaster.predict(interval));
    remember(this.predictions, interval, expectedWh);
    if (expectedWh === 0) return [];
    const side = expectedWh > 0 ? "bid" : "ask";
    const energyWh = Math.min(Math.abs(expectedWh), ORDER_ENERGY_WH_MAX);
    const price = this.strategy.price(side, this.grid, interval);
    const intent: OrderIntent = { side, energyWh, priceMicrosPerKwh: Math.max(0, Math.min(PRICE_MICROS_PER_KWH_MAX, Math.round(price))) };
    remember(this.intents, interval, intent);
    return [intent];
  }

  /** The metered net (importWh − exportWh) of a finished interval: trains the forecaster and scores its forecast. */
  observe(interval: number, actualNetWh: number): void {
    this.forecaster.observe(interval, actualNetWh);
    const predicted = this.predictions.get(interval);
    if (predicted !== undefined) {
      this.errors.add(predicted, actualNetWh);
      this.predictions.delete(interval);
    }
  }

  /** The market's result for a settled interval. */
  learn(feedback: MarketFeedback): void {
    this.strategy.learn(feedback, this.intents.get(feedback.interval) ?? null);
    this.intents.delete(feedback.interval);
  }
}

/** Adds to a bounded map, dropping the oldest entry past PENDING_MAX (an interval never observed or settled). */
function remember<V>(map: Map<number, V>, key: number, value: V): void {
  map.set(key, value);
  if (map.size > PENDING_MAX) map.delete(map.keys().next().value!);
}
