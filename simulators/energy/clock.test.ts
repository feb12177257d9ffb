/** The market clock of a run: its own market, a running chain's market the scenario is placed on, and the run's times on it. Every number is worked out in the comments. */
import { describe, expect, it } from "vitest";
import type { MarketConfig } from "../../services/energy-trading/types.ts";
import { MARKET_START_SLOT, marketOf, marketStartSlot, missesOpening, placeOnMarket, simClock } from "./clock.ts";
import { parseScenario, type Scenario } from "./scenario.ts";

function scenario(durationMinutes: number, marketIntervalMinutes = 15): Scenario {
  const parsed = parseScenario({
    name: "clock",
    seed: 1,
    start: "2026-06-21T10:00:00Z",
    durationMinutes,
    marketIntervalMinutes,
    market: "pay-as-bid",
    grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    households: [{ id: "h1", load: { schedule: [{ from: "00:00", to: "24:00", watts: 1000 }] } }],
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.scenario;
}

const T0 = Date.parse("2026-06-21T00:00:00Z");
/** A `jamgate start` market: real time at 6 s slots, 15-minute intervals, pay-as-clear, from slot 0. */
const running: MarketConfig = {
  startMs: BigInt(T0),
  intervalMs: 900_000,
  startSlot: 0,
  marketMsPerSlot: 6_000,
  mode: "pay-as-clear",
  importPriceMicrosPerKwh: 250_000,
  exportPriceMicrosPerKwh: 50_000,
  settlementDelayMs: 900_000,
};

describe("a run's own market", () => {
  it("opens after MARKET_START_SLOT slots, or 20 s of wall time on short slots", () => {
    expect(marketStartSlot(1000)).toBe(MARKET_START_SLOT); // 24 s ≥ 20 s
    expect(marketStartSlot(250)).toBe(80); // 24 slots are 6 s: 20 s is 80
  });

  it("is the scenario's: its start, interval, mode and grid prices, settled two intervals after each ends", () => {
    const market = marketOf(scenario(30), 1.25, 80);
    expect(market).toEqual({
      startMs: BigInt(Date.parse("2026-06-21T10:00:00Z")),
      intervalMs: 900_000,
      startSlot: 80,
      marketMsPerSlot: 75_000,
      mode: "pay-as-bid",
      importPriceMicrosPerKwh: 300_000,
      exportPriceMicrosPerKwh: 80_000,
      settlementDelayMs: 1_800_000,
    });
  });

  it("gives the run's times: 30 minutes from the market's start are 2 intervals, settled by slot 129", () => {
    const s = scenario(30);
    const clock = simClock(marketOf(s, 1.25, 80), s, 0);
    expect(clock.startMs).toBe(Date.parse("2026-06-21T10:00:00Z"));
    expect(clock.endMs - clock.startMs).toBe(1_800_000);
    expect(clock.intervals).toBe(2);
    expect(clock.readingMs).toBe(10_000); // READING_INTERVAL_SECONDS_DEFAULT
    // (30 min of intervals + 30 min of settlement delay) / 1.25 min a slot = 48 slots after slot 80, and one more.
    expect(clock.lastSlot).toBe(129);
    expect(clock.marketTime(80)).toBe(clock.startMs);
    expect(clock.marketTime(92)).toBe(clock.startMs + 900_000); // 12 slots × 1.25 min
  });

  it("is missed when the households are connected less than 3 slots (an order's way onto the chain) before it opens", () => {
    expect(missesOpening(21, running)).toBe(true); // 21 + 3 > 0
    const own = marketOf(scenario(30), 5, 24);
    expect(missesOpening(21, own)).toBe(false); // 21 + 3 = 24
    expect(missesOpening(22, own)).toBe(true);
  });
});

describe("a scenario on a running chain's market", () => {
  it("starts at the first interval opening after registration and the orders' lead time", () => {
    // Slot 1030: market time 6,180 s after T0. Lead: 24 slots × 6 s / 2 = 72 s, plus two intervals
    // (1,800 s): 1,872 s. (6,180 + 1,872) / 900 = 8.95 → interval 9, at 02:15 (with all 144 s of
    // MARKET_START_SLOT's market time it would be 10).
    const placed = placeOnMarket(scenario(30, 30), running, 1030);
    expect(placed.firstInterval).toBe(9);
    expect(placed.scenario.start).toBe("2026-06-21T02:15:00.000Z");
    // The market's interval and mode; the scenario's grid prices (the KPIs' baseline).
    expect(placed.scenario).toMatchObject({ marketIntervalMinutes: 15, durationMinutes: 30, market: "pay-as-clear" });
    expect(placed.scenario.grid).toEqual({ importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 });
    const clock = simClock(running, placed.scenario, placed.firstInterval);
    expect(clock.startMs).toBe(Date.parse(placed.scenario.start));
    expect(clock.intervals).toBe(2);
  });

  it("lasts the whole intervals nearest its duration, at least one", () => {
    expect(placeOnMarket(scenario(60, 60), running, 1000).scenario.durationMinutes).toBe(60);
    expect(placeOnMarket(scenario(20, 20), running, 1000).scenario.durationMinutes).toBe(15); // 20 / 15 rounds to 1
    expect(placeOnMarket(scenario(5, 5), running, 1000).scenario.durationMinutes).toBe(15); // 0 rounds up to 1
  });

  it("counts from the market's start when the chain is not there yet", () => {
    // Slot 0 of a market opening at slot 100: now is its start; 1,872 s / 900 = 2.08 → interval 3.
    expect(placeOnMarket(scenario(30), { ...running, startSlot: 100 }, 0).firstInterval).toBe(3);
  });
});
