import { describe, expect, it } from "vitest";
import { FORECAST_HORIZON_INTERVALS, HouseholdAgent, ORDER_ENERGY_WH_MAX, ORDER_LEAD_INTERVALS } from "./agent.ts";
import { HouseholdModel, type MeterReading } from "./household.ts";
import { defaultScenario, type HouseholdSpec, parseScenario, type Scenario } from "./scenario.ts";
import type { OrderIntent } from "./strategy.ts";

function scenarioOf(households: HouseholdSpec[]): Scenario {
  const parsed = parseScenario({
    name: "agents",
    seed: 3,
    start: "2026-06-21T10:00:00Z",
    durationMinutes: 60,
    marketIntervalMinutes: 15,
    market: "pay-as-clear",
    grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    households,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.scenario;
}

const fixed = { bidMicrosPerKwh: [250_000, 250_000], askMicrosPerKwh: [150_000, 150_000] } as const;

describe("HouseholdAgent", () => {
  it("bids for expected import, asks for expected export, places nothing for 0", () => {
    const spec: HouseholdSpec = { id: "a", load: { schedule: [] }, strategy: fixed, forecaster: "perfect" };
    const truth = [500, -400, 0, 2_000_000];
    const agent = new HouseholdAgent(spec, scenarioOf([spec]), 0, (k) => truth[k]!);
    expect(agent.ordersFor(0)).toEqual([{ side: "bid", energyWh: 500, priceMicrosPerKwh: 250_000 }]);
    expect(agent.ordersFor(1)).toEqual([{ side: "ask", energyWh: 400, priceMicrosPerKwh: 150_000 }]);
    expect(agent.ordersFor(2)).toEqual([]);
    expect(agent.ordersFor(3)).toEqual([{ side: "bid", energyWh: ORDER_ENERGY_WH_MAX, priceMicrosPerKwh: 250_000 }]);
  });

  it("with the runner's oracle, orders exactly the hand-computed energy of schedule households", () => {
    // The runner test's two houses: h1 imports 2,000 W × 0.25 h = 500 Wh, h2 exports (2,000 − 400) W × 0.25 h = 400 Wh.
    const specs: HouseholdSpec[] = [
      { id: "h1", load: { schedule: [{ from: "00:00", to: "24:00", watts: 2000 }] }, strategy: fixed, forecaster: "perfect" },
      {
        id: "h2",
        load: { schedule: [{ from: "00:00", to: "24:00", watts: 400 }] },
        pv: { schedule: [{ from: "00:00", to: "24:00", watts: 2000 }] },
        strategy: fixed,
        forecaster: "perfect",
      },
    ];
    const scenario = scenarioOf(specs);
    const orders = specs.map((spec, index) => {
      const shadow = new HouseholdModel(spec, scenario, index);
      const startMs = Date.parse(scenario.start);
      const oracle = (k: number) => {
        shadow.advance(Math.min(shadow.endMs, startMs + (k + 1) * 900_000));
        const e = shadow.intervalEnergy(k);
        return e === undefined ? 0 : e.importWh - e.exportWh;
      };
      const agent = new HouseholdAgent(spec, scenario, index, oracle);
      return [0, 1, 2, 3].map((k) => agent.ordersFor(k));
    });
    for (const k of [0, 1, 2, 3]) {
      expect(orders[0]![k]).toEqual([{ side: "bid", energyWh: 500, priceMicrosPerKwh: 250_000 }]);
      expect(orders[1]![k]).toEqual([{ side: "ask", energyWh: 400, priceMicrosPerKwh: 150_000 }]);
    }
  });

  it("scores its forecasts as intervals are observed, and hands the interval's intent to the strategy", () => {
    const spec: HouseholdSpec = { id: "a", load: { schedule: [] }, strategy: "zip", forecaster: "persistence" };
    const agent = new HouseholdAgent(spec, scenarioOf([spec]), 0);
    expect(agent.forecaster.name).toBe("persistence");
    expect(agent.strategy.name).toBe("zip");
    // Nothing observed yet: expects 0, no order.
    expect(agent.ordersFor(0)).toEqual([]);
    agent.observe(0, 300); // forecast 0, actual 300
    expect(agent.errors.count).toBe(1);
    expect(agent.errors.mae()).toBe(300);
    // Interval 3 (horizon 3): persistence of interval 0.
    const [order] = agent.ordersFor(3);
    expect(order).toMatchObject({ side: "bid", energyWh: 300 });
    const bidBefore = order!.priceMicrosPerKwh;
    agent.observe(3, 200);
    expect(agent.errors.mae()).toBe((300 + 100) / 2);
    // It traded at a price below its bid: ZIP lowers its next bid.
    agent.learn({ interval: 3, clearingPriceMicrosPerKwh: bidBefore - 20_000, myTradedWh: 300 });
    agent.observe(4, 250);
    const [next] = agent.ordersFor(7);
    expect(next!.priceMicrosPerKwh).toBeLessThan(bidBefore);
  });

  it("defaults: zi with persistence; ridge for the learning strategies; a perfect forecaster needs an oracle", () => {
    const scenario = scenarioOf([{ id: "x", load: { schedule: [] } }]);
    const a = new HouseholdAgent({ id: "x", load: { schedule: [] } }, scenario, 0);
    expect([a.strategy.name, a.forecaster.name]).toEqual(["zi", "persistence"]);
    const b = new HouseholdAgent({ id: "x", load: { schedule: [] }, strategy: "forecast" }, scenario, 0);
    expect([b.strategy.name, b.forecaster.name]).toEqual(["forecast", "ridge"]);
    expect(() => new HouseholdAgent({ id: "x", load: { schedule: [] }, forecaster: "perfect" }, scenario, 0)).toThrow(/oracle/);
    expect(FORECAST_HORIZON_INTERVALS).toBe(ORDER_LEAD_INTERVALS + 1);
  });
});

describe("determinism", () => {
  /** Models and agents driven the way the runner does, without the chain: readings and orders per household. */
  function simulate(scenario: Scenario): { readings: MeterReading[][]; orders: { interval: number; orders: OrderIntent[] }[][] } {
    const startMs = Date.parse(scenario.start);
    const intervalMs = scenario.marketIntervalMinutes * 60_000;
    const intervals = scenario.durationMinutes / scenario.marketIntervalMinutes;
    const models = scenario.households.map((spec, i) => new HouseholdModel(spec, scenario, i));
    const agents = scenario.households.map((spec, i) => new HouseholdAgent(spec, scenario, i));
    const readings = models.map(() => [] as MeterReading[]);
    const orders = models.map(() => [] as { interval: number; orders: OrderIntent[] }[]);
    // Orders for intervals 0 and 1 before the market opens, then one step per interval.
    for (let i = 0; i < models.length; i++) for (let k = 0; k < ORDER_LEAD_INTERVALS; k++) orders[i]!.push({ interval: k, orders: agents[i]!.ordersFor(k) });
    for (let k = 0; k < intervals; k++) {
      for (let i = 0; i < models.length; i++) {
        const ordered = k + ORDER_LEAD_INTERVALS;
        if (ordered < intervals) orders[i]!.push({ interval: ordered, orders: agents[i]!.ordersFor(ordered) });
        readings[i]!.push(...models[i]!.advance(startMs + (k + 1) * intervalMs));
        const e = models[i]!.intervalEnergy(k)!;
        agents[i]!.observe(k, e.importWh - e.exportWh);
        agents[i]!.learn({ interval: k, clearingPriceMicrosPerKwh: 150_000 + 1000 * (k % 7), myTradedWh: k % 2 === 0 ? 100 : 0 });
      }
    }
    return { readings, orders };
  }

  it("the same seed gives identical readings and orders; another seed does not", () => {
    const scenario = defaultScenario({ households: 6, hours: 12, seed: 4, market: "pay-as-clear" });
    const a = simulate(scenario);
    const b = simulate(scenario);
    expect(b.readings).toEqual(a.readings);
    expect(b.orders).toEqual(a.orders);
    expect(a.orders.flat().filter((o) => o.orders.length > 0).length).toBeGreaterThan(100);
    const c = simulate(defaultScenario({ households: 6, hours: 12, seed: 5, market: "pay-as-clear" }));
    expect(c.orders).not.toEqual(a.orders);
    expect(c.readings).not.toEqual(a.readings);
  });
});
