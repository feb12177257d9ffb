import { describe, expect, it } from "vitest";
import { DURATION_MINUTES_MAX, defaultScenario, HOUSEHOLDS_MAX, parseScenario, type Scenario } from "./scenario.ts";

/** A valid scenario using every feature; tests break one thing at a time. */
function valid(): Record<string, unknown> {
  return {
    name: "every feature",
    seed: 7,
    start: "2026-06-21T00:00:00Z",
    durationMinutes: 60,
    marketIntervalMinutes: 15,
    market: "pay-as-bid",
    grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    latitude: 48.1,
    readingIntervalSeconds: 30,
    households: [
      {
        id: "h1",
        load: { schedule: [{ from: "00:00", to: "24:00", watts: 2000 }] },
        strategy: { bidMicrosPerKwh: [250_000, 250_000], askMicrosPerKwh: [100_000, 150_000] },
        forecaster: "perfect",
      },
      {
        id: "h-2",
        load: { profile: "h0", annualKwh: 3500 },
        pv: { kWp: 6.5 },
        battery: { capacityWh: 10_000, powerW: 5_000, efficiencyPercent: 92 },
        strategy: "zip",
        forecaster: "ridge",
      },
      { id: "h3", load: { profile: "h0", annualKwh: 2500 }, pv: { schedule: [{ from: "10:00", to: "14:30", watts: 3000 }] } },
    ],
  };
}

/** `valid()` changed by `edit`, parsed; its errors (expects failure). */
function errorsOf(edit: (s: any) => void): string[] {
  const s = valid();
  edit(s);
  const parsed = parseScenario(JSON.parse(JSON.stringify(s)));
  if (parsed.ok) throw new Error("expected the scenario to be refused");
  return parsed.errors;
}

describe("parseScenario", () => {
  it("accepts a valid file and returns it unchanged (JSON round trip)", () => {
    const text = JSON.stringify(valid());
    const parsed = parseScenario(JSON.parse(text));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(JSON.stringify(parsed.scenario)).toBe(text);
  });

  it("reports schema errors with the JSON path of the offending value", () => {
    expect(errorsOf((s) => (s.households[1].pv.kWp = -1))).toEqual(["/households/1/pv/kWp: must be >= 0"]);
    expect(errorsOf((s) => (s.households[0].load.schedule[0].watts = 1.5))).toEqual(["/households/0/load/schedule/0/watts: must be integer"]);
    expect(errorsOf((s) => (s.households[0].load.schedule[0].watts = -1))).toEqual(["/households/0/load/schedule/0/watts: must be >= 0"]);
    expect(errorsOf((s) => (s.households[1].load.annualKwh = -5))).toEqual(["/households/1/load/annualKwh: must be >= 0"]);
    expect(errorsOf((s) => (s.grid.importPriceMicrosPerKwh = 0.3))).toEqual(["/grid/importPriceMicrosPerKwh: must be integer"]);
    expect(errorsOf((s) => (s.households[1].battery.capacityWh = 0))).toEqual(["/households/1/battery/capacityWh: must be >= 1"]);
    expect(errorsOf((s) => (s.households[1].battery.powerW = 0))).toEqual(["/households/1/battery/powerW: must be >= 1"]);
    expect(errorsOf((s) => (s.households[0].strategy.bidMicrosPerKwh = [1, 10_000_001]))).toEqual([
      "/households/0/strategy/bidMicrosPerKwh/1: must be <= 10000000",
    ]);
    expect(errorsOf((s) => (s.households[0].strategy.askMicrosPerKwh = [1]))).toEqual([
      "/households/0/strategy/askMicrosPerKwh: must NOT have fewer than 2 items",
    ]);
  });

  it("names missing and unknown properties, bad enums and patterns in words", () => {
    expect(errorsOf((s) => delete s.households[1].load.annualKwh)).toEqual(["/households/1/load/annualKwh: is required"]);
    expect(errorsOf((s) => delete s.grid)).toEqual(["/grid: is required"]);
    expect(errorsOf((s) => (s.households[2].colour = "red"))).toEqual(["/households/2/colour: is not a known property"]);
    expect(errorsOf((s) => (s.households[0].load.profile = "h0"))).toEqual(["/households/0/load/profile: is not a known property"]);
    expect(errorsOf((s) => (s.market = "dutch"))).toEqual(['/market: must be one of "pay-as-clear", "pay-as-bid", "one-sided"']);
    expect(errorsOf((s) => (s.households[1].strategy = "greedy"))).toEqual(['/households/1/strategy: must be one of "zi", "zip", "forecast"']);
    expect(errorsOf((s) => (s.households[1].forecaster = "oracle"))).toEqual(['/households/1/forecaster: must be one of "persistence", "ridge", "perfect"']);
    expect(errorsOf((s) => (s.households[0].id = "House 1"))).toEqual(['/households/0/id: must be 1 to 32 characters of a-z, 0-9 and "-"']);
    expect(errorsOf((s) => (s.households[2].pv.schedule[0].to = "14:60"))).toEqual([
      '/households/2/pv/schedule/0/to: must be a time of day "HH:MM" from 00:00 to 24:00',
    ]);
  });

  it("lists every error at once", () => {
    const errors = errorsOf((s) => {
      s.seed = -1;
      s.households[1].pv.kWp = -1;
      s.households[2].load.annualKwh = "many";
    });
    expect(errors).toEqual(["/seed: must be >= 0", "/households/1/pv/kWp: must be >= 0", "/households/2/load/annualKwh: must be number"]);
  });

  it("checks what the schema cannot: dates, divisibility, price order, unique ids, time and price ranges", () => {
    expect(errorsOf((s) => (s.start = "21.06.2026"))[0]).toMatch(/^\/start: must be an ISO 8601 date-time/);
    expect(errorsOf((s) => (s.start = "2026-02-30T00:00:00Z"))[0]).toMatch(/^\/start: /);
    expect(errorsOf((s) => (s.start = "2026-06-21T00:00:00"))[0]).toMatch(/^\/start: .*with a zone/);
    expect(errorsOf((s) => (s.durationMinutes = 50))).toEqual(["/durationMinutes: must be a multiple of marketIntervalMinutes (15), got 50"]);
    expect(errorsOf((s) => (s.marketIntervalMinutes = 7))).toContain("/marketIntervalMinutes: must divide 1440 (a day), got 7");
    expect(errorsOf((s) => (s.readingIntervalSeconds = 7))[0]).toMatch(/^\/readingIntervalSeconds: must divide the market interval \(900 s\)/);
    expect(errorsOf((s) => (s.grid.exportPriceMicrosPerKwh = 300_001))).toEqual([
      "/grid/importPriceMicrosPerKwh: must be >= exportPriceMicrosPerKwh (300001), got 300000",
    ]);
    expect(errorsOf((s) => (s.households[2].id = "h1"))).toEqual(['/households/2/id: "h1" is already the id of /households/0']);
    expect(errorsOf((s) => (s.households[0].load.schedule[0].from = "24:00"))).toEqual(["/households/0/load/schedule/0: from 24:00 must be before to 24:00"]);
    expect(errorsOf((s) => (s.households[2].pv.schedule[0].to = "09:59"))).toEqual(["/households/2/pv/schedule/0: from 10:00 must be before to 09:59"]);
    expect(errorsOf((s) => (s.households[0].strategy.askMicrosPerKwh = [150_000, 100_000]))).toEqual([
      "/households/0/strategy/askMicrosPerKwh: from 150000 must be <= to 100000",
    ]);
  });

  it("bounds households and duration", () => {
    expect(errorsOf((s) => (s.durationMinutes = DURATION_MINUTES_MAX + 15))).toEqual([`/durationMinutes: must be <= ${DURATION_MINUTES_MAX}`]);
    expect(
      errorsOf((s) => (s.households = Array.from({ length: HOUSEHOLDS_MAX + 1 }, (_, i) => ({ id: `h${i}`, load: { profile: "h0", annualKwh: 1000 } })))),
    ).toEqual([`/households: must NOT have more than ${HOUSEHOLDS_MAX} items`]);
    expect(errorsOf((s) => (s.households = []))).toEqual(["/households: must NOT have fewer than 1 items"]);
  });

  it("refuses what is not an object", () => {
    for (const value of [null, 42, "scenario", []]) {
      const parsed = parseScenario(value);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.errors).toEqual(["/: must be object"]);
    }
  });
});

describe("defaultScenario", () => {
  const options = { households: 300, hours: 24, seed: 5, market: "pay-as-clear" as const };

  it("is valid, deterministic and midsummer by default", () => {
    const a = defaultScenario(options);
    expect(parseScenario(JSON.parse(JSON.stringify(a))).ok).toBe(true);
    expect(defaultScenario(options)).toEqual(a);
    expect(defaultScenario({ ...options, seed: 6 })).not.toEqual(a);
    expect(a).toMatchObject({
      start: "2026-06-21T00:00:00Z",
      durationMinutes: 1440,
      marketIntervalMinutes: 15,
      market: "pay-as-clear",
      grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    });
    expect(defaultScenario({ ...options, start: "2026-01-10T00:00:00Z" }).start).toBe("2026-01-10T00:00:00Z");
  });

  it("draws the documented mix", () => {
    const s: Scenario = defaultScenario(options);
    expect(s.households.map((h) => h.id).slice(0, 3)).toEqual(["h001", "h002", "h003"]);
    const withPv = s.households.filter((h) => h.pv !== undefined);
    const withBattery = s.households.filter((h) => h.battery !== undefined);
    expect(withPv.length / s.households.length).toBeGreaterThan(0.5);
    expect(withPv.length / s.households.length).toBeLessThan(0.7);
    expect(withBattery.length / withPv.length).toBeGreaterThan(0.1);
    expect(withBattery.length / withPv.length).toBeLessThan(0.3);
    for (const h of s.households) {
      if (!("profile" in h.load)) throw new Error("H0 loads only");
      expect(h.load.annualKwh).toBeGreaterThanOrEqual(2500);
      expect(h.load.annualKwh).toBeLessThanOrEqual(6000);
      if (h.pv !== undefined && "kWp" in h.pv) {
        expect(h.pv.kWp).toBeGreaterThanOrEqual(3);
        expect(h.pv.kWp).toBeLessThanOrEqual(10);
      }
      if (h.battery !== undefined) {
        expect(h.pv).toBeDefined();
        expect(h.battery.capacityWh).toBeGreaterThanOrEqual(5000);
        expect(h.battery.capacityWh).toBeLessThanOrEqual(13_500);
        expect(h.battery.powerW).toBeGreaterThanOrEqual(2500);
        expect(h.battery.powerW).toBeLessThanOrEqual(5000);
      }
      expect(h.forecaster).toBe(h.strategy === "zi" ? "persistence" : "ridge");
    }
    const counts = { zi: 0, zip: 0, forecast: 0 };
    for (const h of s.households) counts[h.strategy as keyof typeof counts]++;
    expect(counts).toEqual({ zi: 100, zip: 100, forecast: 100 });
  });

  it("throws on options that cannot make a valid scenario", () => {
    expect(() => defaultScenario({ ...options, hours: 24 * 32 })).toThrow(/durationMinutes/);
  });
});
