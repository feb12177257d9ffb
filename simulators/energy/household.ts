/**
 * A household behind its smart meter: load, PV and battery stepped at the reading interval, and
 * the meter's readings with cumulative import/export counters.
 *
 * Energy is counted in joules (integer W × integer s), so counters are exact: a counter in Wh is
 * floor(J / 3600) plus the meter's seeded starting value (a real meter is not new). The net the
 * meter sees each step is load − PV + battery charge − battery discharge (all integer W); positive
 * net is imported, negative exported. Interval truth is the difference of those same floored
 * counters at the interval's ends, so it equals what the energy-trading service measures from the
 * readings (services/energy-trading/condense.ts: a reading at time t closes the interval
 * (start + k·I, start + (k+1)·I] it ends).
 *
 * Deterministic from (scenario.seed, index): two models of the same household step identically.
 */
import { H0Load, type PowerSource, SchedulePower, Ar1Noise } from "./profiles.ts";
import { derive, rngFor } from "./random.ts";
import {
  BATTERY_EFFICIENCY_PERCENT_DEFAULT,
  type HouseholdSpec,
  intervalCount,
  LATITUDE_DEFAULT_DEG,
  READING_INTERVAL_SECONDS_DEFAULT,
  type Scenario,
} from "./scenario.ts";
import { PvArray } from "./solar.ts";

export interface MeterReading {
  /** ms since the epoch, simulated time. */
  readonly t: number;
  /** Cumulative energy drawn from the grid. */
  readonly importWh: number;
  /** Cumulative energy fed into the grid. */
  readonly exportWh: number;
  /** Net power over the step that ends at t (the first reading: the step that starts at t): + import, − export. */
  readonly powerW: number;
  readonly voltageV: number;
}

/** Truth of one market interval, Wh (integers). load + charge + export = pv + discharge + import, to rounding. */
export interface IntervalEnergy {
  readonly interval: number;
  readonly loadWh: number;
  readonly pvWh: number;
  readonly importWh: number;
  readonly exportWh: number;
  readonly batteryChargeWh: number;
  readonly batteryDischargeWh: number;
}

const J_PER_WH = 3600;
/** A meter that has run for years: up to 30 MWh imported (5,000 kWh a year for 6 years). */
export const METER_IMPORT_OFFSET_WH_MAX = 30_000_000;
/** Up to 10 MWh exported (PV households only). */
export const METER_EXPORT_OFFSET_WH_MAX = 10_000_000;
/** Nominal low voltage in Europe (IEC 60038). */
export const VOLTAGE_NOMINAL_V = 230;
/** EN 50160: supply voltage within ±10 % of nominal. */
export const VOLTAGE_MIN_V = 207;
export const VOLTAGE_MAX_V = 253;
/** Relative spread of the feeder's voltage (about ±2 V): the neighbourhood's load, not this house's. */
const VOLTAGE_NOISE_SIGMA = 0.008;
/** The feeder voltage drifts over minutes. */
const VOLTAGE_NOISE_CORRELATION_SECONDS = 10 * 60;
/** Drop per kW drawn (rise per kW fed in): a service cable and feeder share of ≈ 0.1 Ω over three phases. */
const VOLTAGE_DROP_V_PER_KW = 0.5;
/** Unknown history: a battery starts half full. */
export const BATTERY_INITIAL_STATE_OF_CHARGE = 0.5;

/** Cumulative quantities tracked per household, in this order in the boundary table. */
const QUANTITIES = 6;
const LOAD = 0;
const PV = 1;
const IMPORT = 2;
const EXPORT = 3;
const CHARGE = 4;
const DISCHARGE = 5;

interface Step {
  readonly loadW: number;
  readonly pvW: number;
  readonly chargeW: number;
  readonly dischargeW: number;
  readonly netW: number;
}

interface Battery {
  readonly capacityJ: number;
  readonly powerW: number;
  /** One-way efficiencies: √(round trip) each. */
  readonly chargeEfficiency: number;
  readonly dischargeEfficiency: number;
  storedJ: number;
}

export class HouseholdModel {
  readonly id: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly stepMs: number;
  readonly intervalMs: number;
  readonly intervals: number;
  private readonly stepSeconds: number;
  private readonly load: PowerSource;
  private readonly pv: PowerSource | null;
  private readonly battery: Battery | null;
  private readonly voltageNoise: Ar1Noise;
  private readonly importOffsetWh: number;
  private readonly exportOffsetWh: number;
  /** Simulated up to here. */
  private t: number;
  /** The first reading (at the start, the counters' baseline) has been returned. */
  private baselineRead = false;
  /** The step starting at `t`, computed early for the baseline reading's power. */
  private pending: Step | null = null;
  /** Cumulative joules since the start, per quantity. */
  private readonly cumulativeJ = new Float64Array(QUANTITIES);
  /** floor(cumulative J / 3600) at each interval boundary reached: (intervals + 1) × QUANTITIES (Int32: ≤ 100 kW × 31 days ≈ 7.4·10⁷ Wh). */
  private readonly boundaryWh: Int32Array;

  constructor(spec: HouseholdSpec, scenario: Scenario, index: number) {
    this.id = spec.id;
    this.startMs = Date.parse(scenario.start);
    this.endMs = this.startMs + scenario.durationMinutes * 60_000;
    this.stepSeconds = scenario.readingIntervalSeconds ?? READING_INTERVAL_SECONDS_DEFAULT;
    this.stepMs = this.stepSeconds * 1000;
    this.intervalMs = scenario.marketIntervalMinutes * 60_000;
    this.intervals = intervalCount(scenario);
    if (this.intervalMs % this.stepMs !== 0) throw new RangeError(`reading interval ${this.stepSeconds} s does not divide the market interval`);
    this.t = this.startMs;
    const seed = derive(scenario.seed, "household", index);
    this.load = "schedule" in spec.load ? new SchedulePower(spec.load.schedule) : new H0Load(spec.load.annualKwh, derive(seed, "load"), this.stepSeconds);
    const latitude = scenario.latitude ?? LATITUDE_DEFAULT_DEG;
    this.pv =
      spec.pv === undefined
        ? null
        : "schedule" in spec.pv
          ? new SchedulePower(spec.pv.schedule)
          : new PvArray(spec.pv.kWp, latitude, derive(scenario.seed, "clouds"), derive(seed, "pv"));
    if (spec.battery === undefined) {
      this.battery = null;
    } else {
      const oneWay = Math.sqrt((spec.battery.efficiencyPercent ?? BATTERY_EFFICIENCY_PERCENT_DEFAULT) / 100);
      const capacityJ = spec.battery.capacityWh * J_PER_WH;
      this.battery = {
        capacityJ,
        powerW: spec.battery.powerW,
        chargeEfficiency: oneWay,
        dischargeEfficiency: oneWay,
        storedJ: capacityJ * BATTERY_INITIAL_STATE_OF_CHARGE,
      };
    }
    const meter = rngFor(seed, "meter");
    this.importOffsetWh = meter.int(0, METER_IMPORT_OFFSET_WH_MAX);
    this.exportOffsetWh = spec.pv === undefined ? 0 : meter.int(0, METER_EXPORT_OFFSET_WH_MAX);
    this.voltageNoise = new Ar1Noise(rngFor(seed, "voltage"), this.stepSeconds, VOLTAGE_NOISE_SIGMA, VOLTAGE_NOISE_CORRELATION_SECONDS);
    this.boundaryWh = new Int32Array((this.intervals + 1) * QUANTITIES);
  }

  /** Simulated time reached, ms since the epoch. */
  get timeMs(): number {
    return this.t;
  }

  /** Energy in the battery now, Wh (null without a battery). */
  get batteryStoredWh(): number | null {
    return this.battery === null ? null : this.battery.storedJ / J_PER_WH;
  }

  /**
   * Simulates from the current time to toMs (the start plus a multiple of the reading interval,
   * at most the scenario's end) and returns the readings taken at every reading time in
   * (current, toMs]. The first call also returns the reading at the start itself: the counters'
   * baseline, without which the service could not measure the first step. A toMs not after the
   * current time returns no readings (nothing moves back).
   */
  advance(toMs: number): MeterReading[] {
    if (!Number.isSafeInteger(toMs) || (toMs - this.startMs) % this.stepMs !== 0 || toMs > this.endMs) {
      throw new RangeError(`advance(${toMs}): not the start plus a multiple of ${this.stepMs} ms up to the end ${this.endMs}`);
    }
    const readings: MeterReading[] = [];
    if (!this.baselineRead && toMs > this.t) {
      this.baselineRead = true;
      this.pending = this.computeStep(this.t);
      readings.push(this.reading(this.pending.netW));
    }
    while (this.t < toMs) {
      const step = this.pending ?? this.computeStep(this.t);
      this.pending = null;
      this.apply(step);
      this.t += this.stepMs;
      const sinceStart = this.t - this.startMs;
      if (sinceStart % this.intervalMs === 0) this.recordBoundary(sinceStart / this.intervalMs);
      readings.push(this.reading(step.netW));
    }
    return readings;
  }

  /** Truth for market interval k (0 starts at the scenario's start); undefined until advance() has passed its end. */
  intervalEnergy(interval: number): IntervalEnergy | undefined {
    if (!Number.isInteger(interval) || interval < 0 || interval >= this.intervals) return undefined;
    if (this.t < this.startMs + (interval + 1) * this.intervalMs) return undefined;
    const a = interval * QUANTITIES;
    const b = a + QUANTITIES;
    const d = (q: number) => this.boundaryWh[b + q]! - this.boundaryWh[a + q]!;
    return { interval, loadWh: d(LOAD), pvWh: d(PV), importWh: d(IMPORT), exportWh: d(EXPORT), batteryChargeWh: d(CHARGE), batteryDischargeWh: d(DISCHARGE) };
  }

  /** Powers of the step that starts at tMs; self-consumption first: surplus PV charges, a deficit discharges. */
  private computeStep(tMs: number): Step {
    const loadW = Math.max(0, Math.round(this.load.powerW(tMs)));
    const pvW = this.pv === null ? 0 : Math.max(0, Math.round(this.pv.powerW(tMs)));
    let chargeW = 0;
    let dischargeW = 0;
    const b = this.battery;
    if (b !== null) {
      if (pvW > loadW) {
        const roomW = Math.floor((b.capacityJ - b.storedJ) / (b.chargeEfficiency * this.stepSeconds));
        chargeW = Math.max(0, Math.min(pvW - loadW, b.powerW, roomW));
      } else if (loadW > pvW) {
        const availableW = Math.floor((b.storedJ * b.dischargeEfficiency) / this.stepSeconds);
        dischargeW = Math.max(0, Math.min(loadW - pvW, b.powerW, availableW));
      }
    }
    return { loadW, pvW, chargeW, dischargeW, netW: loadW - pvW + chargeW - dischargeW };
  }

  private apply(step: Step): void {
    const s = this.stepSeconds;
    const c = this.cumulativeJ;
    c[LOAD]! += step.loadW * s;
    c[PV]! += step.pvW * s;
    c[CHARGE]! += step.chargeW * s;
    c[DISCHARGE]! += step.dischargeW * s;
    if (step.netW > 0) c[IMPORT]! += step.netW * s;
    else c[EXPORT]! -= step.netW * s;
    const b = this.battery;
    if (b !== null) {
      const stored = b.storedJ + step.chargeW * s * b.chargeEfficiency - (step.dischargeW * s) / b.dischargeEfficiency;
      b.storedJ = Math.max(0, Math.min(b.capacityJ, stored)); // only float rounding is clamped: the step limits keep it in range
    }
  }

  private recordBoundary(k: number): void {
    const at = k * QUANTITIES;
    for (let q = 0; q < QUANTITIES; q++) this.boundaryWh[at + q] = Math.floor(this.cumulativeJ[q]! / J_PER_WH);
  }

  private reading(netW: number): MeterReading {
    const volts = VOLTAGE_NOMINAL_V * this.voltageNoise.next() - (netW / 1000) * VOLTAGE_DROP_V_PER_KW;
    return {
      t: this.t,
      importWh: this.importOffsetWh + Math.floor(this.cumulativeJ[IMPORT]! / J_PER_WH),
      exportWh: this.exportOffsetWh + Math.floor(this.cumulativeJ[EXPORT]! / J_PER_WH),
      powerW: netW,
      voltageV: Math.max(VOLTAGE_MIN_V, Math.min(VOLTAGE_MAX_V, Math.round(volts))),
    };
  }
}
