/**
 * The simulation end to end, on hand-computable scenarios: two households with constant
 * schedules, fixed prices and perfect forecasts, through real MQTT devices, the gateway, the node
 * and the energy-trading service, once per market mode. Every number below is worked out by hand
 * in the comments.
 */
import { describe, expect, it } from "vitest";
import { runEnergySim } from "./runner.ts";
import { parseScenario, type Scenario } from "./scenario.ts";

/**
 * h1: 2,000 W of load all day, no PV: imports 2,000 W × 0.25 h = 500 Wh per 15-minute interval,
 * and (perfect forecast) bids 500 Wh at 0.25/kWh.
 * h2: 400 W of load, 2,000 W of PV: exports 1,600 W × 0.25 h = 400 Wh per interval and asks
 * 400 Wh at 0.15/kWh. Grid: import 0.30, feed-in 0.08. Two intervals (30 minutes).
 */
function twoHouses(market: Scenario["market"]): Scenario {
  const fixed = { bidMicrosPerKwh: [250_000, 250_000], askMicrosPerKwh: [150_000, 150_000] };
  const parsed = parseScenario({
    name: `two houses, ${market}`,
    seed: 3,
    start: "2026-06-21T10:00:00Z",
    durationMinutes: 30,
    marketIntervalMinutes: 15,
    market,
    grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    households: [
      { id: "h1", load: { schedule: [{ from: "00:00", to: "24:00", watts: 2000 }] }, strategy: fixed, forecaster: "perfect" },
      {
        id: "h2",
        load: { schedule: [{ from: "00:00", to: "24:00", watts: 400 }] },
        pv: { schedule: [{ from: "00:00", to: "24:00", watts: 2000 }] },
        strategy: fixed,
        forecaster: "perfect",
      },
    ],
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.scenario;
}

/**
 * 1.25 market minutes a slot: a 15-minute interval is 12 slots and the settlement delay (2
 * intervals) 24, so an interval's last readings have 24 slots (6 s) to be accumulated, where the
 * pipeline takes about 3. With 12 slots (3 s) a suite run on a loaded 2-core machine (load ~15)
 * settled an interval without them (grid import 517 Wh for 200), and at 5 minutes a slot (1.5 s)
 * a busy machine did (self-sufficiency 0.6942 for 0.8333).
 */
async function run(market: Scenario["market"]) {
  return runEnergySim({ scenario: twoHouses(market), slotMs: 250, minutesPerSlot: 1.25, out: null, progress: false });
}

// The same in every mode: 400 Wh traded per interval (800 in all); h1 buys the other 100 Wh per
// interval from the grid (200 in all), nothing is exported to the grid. Community demand
// (2,000 + 400 W) × 0.5 h = 1,200 Wh, production 1,000 Wh: self-sufficiency (1,200 − 200) / 1,200
// = 0.8333, self-consumption (1,000 − 0) / 1,000 = 1. Households only count their own PV: h1 0 and
// (no PV) 0; h2 demand 200 Wh all covered = 1, and it keeps 200 of its 1,000 Wh = 0.2.
// Savings: the market moves 800 Wh from feed-in (0.08) to the import price (0.30) for the
// community: 800 × (300,000 − 80,000) / 1,000 = 176,000 µ, however the modes split it.
function expectCommon(result: Awaited<ReturnType<typeof run>>) {
  const c = result.kpis.community;
  expect(c).toMatchObject({
    tradedWh: 800,
    gridImportWh: 200,
    gridExportWh: 0,
    demandWh: 1200,
    productionWh: 1000,
    selfSufficiency: 0.8333,
    selfConsumption: 1,
    savingsMicros: 176_000,
  });
  expect(result.kpis.households.h1).toMatchObject({ selfSufficiency: 0, demandWh: 1000, productionWh: 0 });
  expect(result.kpis.households.h2).toMatchObject({ selfSufficiency: 1, selfConsumption: 0.2, demandWh: 200, productionWh: 1000 });
  // Per interval: one trade and h1's grid import.
  expect(result.ledgerEntries).toBe(4);
  expect(result.errors).toEqual({});
}

// The three runs at once, each its own node, gateway and devices on free ports: each spends most
// of its time waiting for blocks, so together they take about as long as one.
describe.concurrent("jamgate sim energy, end to end", { timeout: 120_000 }, () => {
  it("pay-as-clear: one price, the midpoint 0.20", async () => {
    const result = await run("pay-as-clear");
    expectCommon(result);
    // Per interval h1 pays 400 Wh × 0.20 = 80,000 and 100 Wh × 0.30 = 30,000 instead of 500 × 0.30 = 150,000: saves 40,000.
    // h2 is paid 80,000 instead of 400 × 0.08 = 32,000: saves 48,000. Two intervals.
    expect(result.kpis.households.h1!.savingsMicros).toBe(80_000);
    expect(result.kpis.households.h2!.savingsMicros).toBe(96_000);
    expect(result.kpis.community.meanClearingPriceMicrosPerKwh).toBe(200_000);
  });

  it("pay-as-bid: trades at the bid, 0.25", async () => {
    const result = await run("pay-as-bid");
    expectCommon(result);
    // h1: 400 × 0.25 = 100,000 + 30,000 = 130,000 vs 150,000: saves 20,000 an interval. h2: 100,000 vs 32,000: 68,000.
    expect(result.kpis.households.h1!.savingsMicros).toBe(40_000);
    expect(result.kpis.households.h2!.savingsMicros).toBe(136_000);
    expect(result.kpis.community.meanClearingPriceMicrosPerKwh).toBe(250_000);
  });

  it("one-sided: buyers take the offer at its price, 0.15", async () => {
    const result = await run("one-sided");
    expectCommon(result);
    // h1: 400 × 0.15 = 60,000 + 30,000 = 90,000 vs 150,000: saves 60,000 an interval. h2: 60,000 vs 32,000: 28,000.
    expect(result.kpis.households.h1!.savingsMicros).toBe(120_000);
    expect(result.kpis.households.h2!.savingsMicros).toBe(56_000);
    expect(result.kpis.community.meanClearingPriceMicrosPerKwh).toBe(150_000);
  });
});
