import { describe, expect, it } from "vitest";
import { HouseholdModel, type MeterReading, VOLTAGE_MAX_V, VOLTAGE_MIN_V } from "./household.ts";
import { defaultScenario, type HouseholdSpec, parseScenario, type Scenario } from "./scenario.ts";

const MINUTE_MS = 60_000;
const INTERVAL_MS = 15 * MINUTE_MS;

function scenarioOf(households: HouseholdSpec[], overrides: Partial<Scenario> = {}): Scenario {
  const parsed = parseScenario({
    name: "test",
    seed: 11,
    start: "2026-06-21T10:00:00Z",
    durationMinutes: 60,
    marketIntervalMinutes: 15,
    market: "pay-as-clear",
    grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    households,
    ...overrides,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.scenario;
}

function runAll(model: HouseholdModel, chunkMs = 5 * MINUTE_MS): MeterReading[] {
  const readings: MeterReading[] = [];
  for (let t = model.startMs + chunkMs; t <= model.endMs; t += chunkMs) readings.push(...model.advance(Math.min(t, model.endMs)));
  if (model.timeMs < model.endMs) readings.push(...model.advance(model.endMs));
  return readings;
}

describe("HouseholdModel with schedules (hand-computed)", () => {
  // From 10:00 UTC: load 2,000 W all day plus 1,000 W 10:00–10:30; PV 3,000 W 10:15–10:45.
  //   interval 0 (10:00–10:15): load 3,000 W, no PV: import 3,000 × 0.25 h = 750 Wh.
  //   interval 1 (10:15–10:30): load 3,000, PV 3,000: net 0; load 750 Wh, PV 750 Wh.
  //   interval 2 (10:30–10:45): load 2,000, PV 3,000: export 1,000 × 0.25 = 250 Wh; load 500, PV 750.
  //   interval 3 (10:45–11:00): load 2,000: import 500 Wh.
  const spec: HouseholdSpec = {
    id: "a",
    load: {
      schedule: [
        { from: "00:00", to: "24:00", watts: 2000 },
        { from: "10:00", to: "10:30", watts: 1000 },
      ],
    },
    pv: { schedule: [{ from: "10:15", to: "10:45", watts: 3000 }] },
  };

  it("gives exactly the scheduled Wh per interval", () => {
    const model = new HouseholdModel(spec, scenarioOf([spec]), 0);
    runAll(model);
    const none = { batteryChargeWh: 0, batteryDischargeWh: 0 };
    expect(model.intervalEnergy(0)).toEqual({ interval: 0, loadWh: 750, pvWh: 0, importWh: 750, exportWh: 0, ...none });
    expect(model.intervalEnergy(1)).toEqual({ interval: 1, loadWh: 750, pvWh: 750, importWh: 0, exportWh: 0, ...none });
    expect(model.intervalEnergy(2)).toEqual({ interval: 2, loadWh: 500, pvWh: 750, importWh: 0, exportWh: 250, ...none });
    expect(model.intervalEnergy(3)).toEqual({ interval: 3, loadWh: 500, pvWh: 0, importWh: 500, exportWh: 0, ...none });
    expect(model.intervalEnergy(4)).toBeUndefined();
  });

  it("meter readings: baseline at the start, one per reading interval, counters that match interval truth", () => {
    const model = new HouseholdModel(spec, scenarioOf([spec]), 0);
    const readings = runAll(model);
    expect(readings).toHaveLength(60 * 6 + 1);
    expect(readings[0]!.t).toBe(model.startMs);
    expect(readings.map((r) => r.t)).toEqual(readings.map((_, i) => model.startMs + i * 10_000));
    const at = (ms: number) => readings.find((r) => r.t === model.startMs + ms)!;
    for (let k = 0; k < 4; k++) {
      const e = model.intervalEnergy(k)!;
      expect(at((k + 1) * INTERVAL_MS).importWh - at(k * INTERVAL_MS).importWh).toBe(e.importWh);
      expect(at((k + 1) * INTERVAL_MS).exportWh - at(k * INTERVAL_MS).exportWh).toBe(e.exportWh);
    }
    // Net power of the step ending at t: 3,000 W in interval 0, −1,000 W in interval 2.
    expect(at(10 * MINUTE_MS).powerW).toBe(3000);
    expect(at(40 * MINUTE_MS).powerW).toBe(-1000);
    for (const r of readings) {
      expect(Number.isInteger(r.importWh) && Number.isInteger(r.exportWh) && Number.isInteger(r.voltageV)).toBe(true);
      expect(r.voltageV).toBeGreaterThanOrEqual(VOLTAGE_MIN_V);
      expect(r.voltageV).toBeLessThanOrEqual(VOLTAGE_MAX_V);
    }
    // A real meter is not new: counters start from a seeded offset.
    expect(readings[0]!.importWh).toBeGreaterThan(0);
  });

  it("interval truth is undefined until its end has passed", () => {
    const model = new HouseholdModel(spec, scenarioOf([spec]), 0);
    model.advance(model.startMs + INTERVAL_MS - 10_000);
    expect(model.intervalEnergy(0)).toBeUndefined();
    expect(model.advance(model.startMs + INTERVAL_MS)).toHaveLength(1);
    expect(model.intervalEnergy(0)?.importWh).toBe(750);
    expect(model.advance(model.startMs + INTERVAL_MS)).toEqual([]);
    expect(model.advance(model.startMs)).toEqual([]);
  });

  it("refuses times off the reading grid or beyond the end (a bug in the caller)", () => {
    const model = new HouseholdModel(spec, scenarioOf([spec]), 0);
    expect(() => model.advance(model.startMs + 5_000)).toThrow(RangeError);
    expect(() => model.advance(model.endMs + 10_000)).toThrow(RangeError);
  });
});

describe("HouseholdModel with a battery", () => {
  it("charges from surplus and discharges into deficit, exactly at 100 % efficiency", () => {
    // PV 4,000 W 10:00–11:00, load 1,000 W; battery 1,000 Wh, 2,000 W, starts half full (500 Wh).
    // Interval 0: surplus 3,000 W, charge 2,000 W for 900 s would be 500 Wh: exactly fills it; export 1,000 W = 250 Wh.
    // Interval 1: full: export 3,000 W = 750 Wh. Then (11:00–) load only, 1,000 W covered by the battery: 250 Wh per interval.
    const spec: HouseholdSpec = {
      id: "b",
      load: { schedule: [{ from: "00:00", to: "24:00", watts: 1000 }] },
      pv: { schedule: [{ from: "10:00", to: "10:30", watts: 4000 }] },
      battery: { capacityWh: 1000, powerW: 2000, efficiencyPercent: 100 },
    };
    const model = new HouseholdModel(spec, scenarioOf([spec], { durationMinutes: 120 }), 0);
    runAll(model);
    expect(model.intervalEnergy(0)).toEqual({ interval: 0, loadWh: 250, pvWh: 1000, importWh: 0, exportWh: 250, batteryChargeWh: 500, batteryDischargeWh: 0 });
    expect(model.intervalEnergy(1)).toEqual({ interval: 1, loadWh: 250, pvWh: 1000, importWh: 0, exportWh: 750, batteryChargeWh: 0, batteryDischargeWh: 0 });
    for (let k = 2; k < 6; k++)
      expect(model.intervalEnergy(k)).toEqual({ interval: k, loadWh: 250, pvWh: 0, importWh: 0, exportWh: 0, batteryChargeWh: 0, batteryDischargeWh: 250 });
    // 1,000 Wh lasts four intervals: then the grid.
    expect(model.intervalEnergy(6)).toEqual({ interval: 6, loadWh: 250, pvWh: 0, importWh: 250, exportWh: 0, batteryChargeWh: 0, batteryDischargeWh: 0 });
    expect(model.batteryStoredWh).toBeCloseTo(0, 9);
  });

  it("never exceeds its capacity or power, loses energy to efficiency, and balances each interval", () => {
    const spec: HouseholdSpec = { id: "c", load: { profile: "h0", annualKwh: 4000 }, pv: { kWp: 9 }, battery: { capacityWh: 5000, powerW: 2500 } };
    const scenario = scenarioOf([spec], { start: "2026-06-21T00:00:00Z", durationMinutes: 2 * 1440 });
    const model = new HouseholdModel(spec, scenario, 0);
    for (let t = model.startMs + MINUTE_MS; t <= model.endMs; t += MINUTE_MS) {
      model.advance(t);
      const stored = model.batteryStoredWh!;
      expect(stored).toBeGreaterThanOrEqual(0);
      expect(stored).toBeLessThanOrEqual(5000);
    }
    let charged = 0;
    let discharged = 0;
    for (let k = 0; k < 192; k++) {
      const e = model.intervalEnergy(k)!;
      expect(e.batteryChargeWh).toBeLessThanOrEqual(2500 / 4 + 1);
      expect(e.batteryDischargeWh).toBeLessThanOrEqual(2500 / 4 + 1);
      expect(e.batteryChargeWh > 0 && e.batteryDischargeWh > 0 && e.pvWh === 0).toBe(false);
      const balance = e.loadWh + e.batteryChargeWh + e.exportWh - (e.pvWh + e.batteryDischargeWh + e.importWh);
      expect(Math.abs(balance)).toBeLessThanOrEqual(4);
      charged += e.batteryChargeWh;
      discharged += e.batteryDischargeWh;
    }
    expect(charged).toBeGreaterThan(5000);
    expect(discharged).toBeGreaterThan(2000);
    // What went in came out at 90 % or stayed in: discharged ≤ 0.9 × (charged + initial 2,500 Wh).
    expect(discharged).toBeLessThanOrEqual(0.9 * (charged + 2500) + 2);
  });
});

describe("HouseholdModel with H0 and PV", () => {
  const scenario = defaultScenario({ households: 8, hours: 48, seed: 21, market: "pay-as-clear" });

  it("counters never go back and each interval balances within rounding", () => {
    scenario.households.forEach((spec, index) => {
      const model = new HouseholdModel(spec, scenario, index);
      const readings = runAll(model, 37 * 10_000);
      const bad = readings.filter(
        (r, i) => i > 0 && (r.t !== readings[i - 1]!.t + 10_000 || r.importWh < readings[i - 1]!.importWh || r.exportWh < readings[i - 1]!.exportWh),
      );
      expect(bad, spec.id).toEqual([]);
      expect(readings).toHaveLength(2 * 24 * 360 + 1);
      let loadWh = 0;
      for (let k = 0; k < 192; k++) {
        const e = model.intervalEnergy(k)!;
        const balance = e.loadWh + e.batteryChargeWh + e.exportWh - (e.pvWh + e.batteryDischargeWh + e.importWh);
        expect(Math.abs(balance), `${spec.id} interval ${k}`).toBeLessThanOrEqual(4);
        loadWh += e.loadWh;
        if (spec.pv === undefined) expect(e.pvWh).toBe(0);
      }
      // Two midsummer days of an H0 household: about 2 × annual / 365 × 0.8 (dynamization).
      if ("profile" in spec.load) {
        const expected = (2 * spec.load.annualKwh * 1000 * 0.8) / 365;
        expect(loadWh / expected).toBeGreaterThan(0.75);
        expect(loadWh / expected).toBeLessThan(1.3);
      }
    });
  });

  it("PV households export at midday and none export at night", () => {
    const index = scenario.households.findIndex((h) => h.pv !== undefined && h.battery === undefined);
    const model = new HouseholdModel(scenario.households[index]!, scenario, index);
    runAll(model);
    const noon = model.intervalEnergy(45)!; // 11:15 UTC
    const night = model.intervalEnergy(4)!; // 01:00 UTC
    expect(noon.pvWh).toBeGreaterThan(0);
    expect(night.pvWh).toBe(0);
    expect(night.exportWh).toBe(0);
    expect(night.importWh).toBeGreaterThan(0);
  });

  it("is deterministic from (seed, index): same readings whatever the chunking; other seeds differ", () => {
    const spec = scenario.households[0]!;
    const a = runAll(new HouseholdModel(spec, scenario, 0), 10_000);
    const b = runAll(new HouseholdModel(spec, scenario, 0), 3 * INTERVAL_MS);
    expect(b).toEqual(a);
    const other = runAll(new HouseholdModel(spec, { ...scenario, seed: 22 }, 0), 3 * INTERVAL_MS);
    expect(other).not.toEqual(a);
    const otherIndex = runAll(new HouseholdModel(spec, scenario, 1), 3 * INTERVAL_MS);
    expect(otherIndex).not.toEqual(a);
  });
});
