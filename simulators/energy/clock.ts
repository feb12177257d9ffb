/**
 * The market's clock and where a simulation sits on it. The energy-trading service's market time
 * advances `marketMsPerSlot` per slot from `startMs` at `startSlot` (GP τ); interval k starts at
 * `startMs + k × intervalMs`. A simulation's own market opens at its scenario's start after
 * registration; on a running jamgate's market the scenario moves to the first interval that
 * opens after registration and the orders' lead time.
 */
import type { MarketConfig } from "../../services/energy-trading/types.ts";
import { ORDER_LEAD_INTERVALS } from "./agent.ts";
import { READING_INTERVAL_SECONDS_DEFAULT, type Scenario } from "./scenario.ts";

/** Slots before the market opens: registration (meters, then agents), connecting, and the first orders. */
export const MARKET_START_SLOT = 24;
/**
 * And at least this long (wall time) on a short slot: the households' registration, their
 * connections and first orders take the same wall time whatever the slot, more on a busy machine
 * (at 250 ms slots, 24 slots were 6 s, and the agents' orders for the first interval sometimes came
 * after its gate closed).
 */
export const MARKET_START_MS_MIN = 20_000;
/** Readings of an interval may arrive this many intervals after it ends before it is settled without them. */
export const SETTLEMENT_DELAY_INTERVALS = 2;
/** Slots an order takes from sending to accumulated at least: packed for a block, reported in it, accumulated in the next. */
export const ORDERS_SETTLE_SLOTS = 3;

/** The slot a simulation's own market opens at, for its node's slot length. */
export function marketStartSlot(slotMs: number): number {
  return Math.max(MARKET_START_SLOT, Math.ceil(MARKET_START_MS_MIN / slotMs));
}

/** The market of a simulation's own chain: the scenario's start, interval, mode and grid prices, `minutesPerSlot` market minutes a slot. */
export function marketOf(scenario: Scenario, minutesPerSlot: number, startSlot: number = MARKET_START_SLOT): MarketConfig {
  const intervalMs = scenario.marketIntervalMinutes * 60_000;
  return {
    startMs: BigInt(Date.parse(scenario.start)),
    intervalMs,
    startSlot,
    marketMsPerSlot: Math.round(minutesPerSlot * 60_000),
    mode: scenario.market,
    importPriceMicrosPerKwh: scenario.grid.importPriceMicrosPerKwh,
    exportPriceMicrosPerKwh: scenario.grid.exportPriceMicrosPerKwh,
    settlementDelayMs: SETTLEMENT_DELAY_INTERVALS * intervalMs,
  };
}

/**
 * The scenario on a running chain's market at `bestSlot`: it starts at the first interval that
 * opens after registration (half of MARKET_START_SLOT's market time) and the orders' lead time,
 * takes the market's interval length and mode, and lasts the whole intervals nearest its duration
 * (at least one). Its grid prices stay the scenario's: the KPIs' baseline.
 */
export function placeOnMarket(scenario: Scenario, market: MarketConfig, bestSlot: number): { readonly scenario: Scenario; readonly firstInterval: number } {
  const nowMs = Number(market.startMs) + Math.max(0, bestSlot - market.startSlot) * market.marketMsPerSlot;
  const leadMs = (MARKET_START_SLOT * market.marketMsPerSlot) / 2 + ORDER_LEAD_INTERVALS * market.intervalMs;
  const firstInterval = Math.ceil((nowMs + leadMs - Number(market.startMs)) / market.intervalMs);
  const intervalMinutes = market.intervalMs / 60_000;
  const intervalsWanted = Math.max(1, Math.round(scenario.durationMinutes / intervalMinutes));
  return {
    firstInterval,
    scenario: {
      ...scenario,
      start: new Date(Number(market.startMs) + firstInterval * market.intervalMs).toISOString(),
      marketIntervalMinutes: intervalMinutes,
      durationMinutes: intervalsWanted * intervalMinutes,
      market: market.mode,
    },
  };
}

/** A run's times on the market clock (market milliseconds since the epoch, like `MarketConfig.startMs`). */
export interface SimClock {
  /** The market's interval of the scenario's interval 0. */
  readonly firstInterval: number;
  /** Start of the scenario's interval 0, and end of its last. */
  readonly startMs: number;
  readonly endMs: number;
  readonly intervalMs: number;
  /** The scenario's intervals. */
  readonly intervals: number;
  /** A meter's reading period. */
  readonly readingMs: number;
  /** The slot by which the last interval should be settled. */
  readonly lastSlot: number;
  /** The market time at `slot`. */
  marketTime(slot: number): number;
}

export function simClock(market: MarketConfig, scenario: Scenario, firstInterval: number): SimClock {
  const startMs = Number(market.startMs) + firstInterval * market.intervalMs;
  const endMs = startMs + scenario.durationMinutes * 60_000;
  return {
    firstInterval,
    startMs,
    endMs,
    intervalMs: market.intervalMs,
    intervals: scenario.durationMinutes / scenario.marketIntervalMinutes,
    readingMs: (scenario.readingIntervalSeconds ?? READING_INTERVAL_SECONDS_DEFAULT) * 1000,
    lastSlot: market.startSlot + Math.ceil((endMs - Number(market.startMs) + market.settlementDelayMs) / market.marketMsPerSlot) + 1,
    marketTime: (slot) => Number(market.startMs) + (slot - market.startSlot) * market.marketMsPerSlot,
  };
}

/**
 * Whether households connected at `readySlot` are too late for their own market's opening: the
 * first intervals' orders must be on the chain before it opens, or those intervals clear without
 * them and the results are not the scenario's.
 */
export function missesOpening(readySlot: number, market: MarketConfig): boolean {
  return readySlot + ORDERS_SETTLE_SLOTS > market.startSlot;
}
