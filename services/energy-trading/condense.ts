/**
 * What refine keeps of a meter's readings: the energy it imported and exported in each market
 * interval, with its first and last reading. A package carries tens of readings per meter
 * (~60 bytes of CBOR each); the digest is 48 bytes plus 12 per interval touched.
 *
 * Counters are cumulative (Wh), so the energy between two consecutive readings is the difference
 * of their counters; it counts in the interval the later reading closes. A reading at time t
 * measures the energy up to t, so one taken exactly at an interval's end closes that interval:
 * for readings, interval k is (startMs + k·intervalMs, startMs + (k+1)·intervalMs], and a reading
 * at startMs itself is in interval 0 (accumulate.ts bins the gap before a package's first reading
 * with the same `intervalOfReading`). Readings aligned to the boundaries (every 1 s or 10 s from a whole minute) are thus binned exactly; in
 * general the energy of the one reading period that straddles a boundary goes to the later
 * interval, so with 10 s readings an interval's energy is off by at most one period's worth.
 *
 * The first reading contributes nothing here: its predecessor is the meter's last settled
 * reading, in state, and accumulate adds that gap to the interval of `first`.
 *
 * A `meter.reset` envelope (one reading: the counters of a replaced or reset meter) is a new
 * baseline: nothing is taken from the reading before it, whose counters may be higher or lower;
 * the readings after it count from it.
 *
 * Everything is an integer: counters and times are safe integers (body.ts), differences of them
 * are exact, and intervals come from an exact integer division.
 */
import { type DetailedResult, failWith, ok } from "../common/result.ts";
import { type MeterReading, READINGS_PER_ENVELOPE_MAX } from "./body.ts";

/**
 * The most power a meter may show, W: the energy between two readings (import plus export: a
 * meter does one or the other at a time) may be at most this × the time between them. Above any
 * household's grid connection (3 × 63 A at 230 V ≈ 43 kW; the simulator's schedules and PV go to
 * 100 kW, simulators/energy/scenario.ts WATTS_MAX) with room for whole-Wh counters: at 100 kW a
 * 10-second reading gains at most 278 Wh, the bound allows 694. An envelope whose columns hold
 * counters instead of differences (issue 15: +1.2 MWh a second, 4.3 GW) is 17,000 times over it.
 * One service-wide value rather than a rating per meter: the registration item and the device
 * record stay as they are (README, "The power bound").
 */
export const METER_POWER_W_MAX = 250_000;
/** Milliseconds in an hour: energy (Wh) × this = power (W) × time (ms) at the bound. */
const MS_PER_HOUR = 3_600_000;
const MS_PER_HOUR_BIG = 3_600_000n;

/**
 * Whether `energyWh` gained in `elapsedMs` is more than `powerW` delivers: energyWh × 3,600,000 >
 * powerW × elapsedMs, exactly. Both products are computed as numbers when they are safe integers
 * (exact: refine checks every reading this way, ~1 M per package) and as bigints otherwise.
 * Arguments are non-negative safe integers.
 */
export function exceedsPower(energyWh: number, elapsedMs: number, powerW: number = METER_POWER_W_MAX): boolean {
  const scaled = energyWh * MS_PER_HOUR;
  const allowed = powerW * elapsedMs;
  if (Number.isSafeInteger(scaled) && Number.isSafeInteger(allowed)) return scaled > allowed;
  return exceedsPowerBig(BigInt(energyWh), BigInt(elapsedMs), powerW);
}

/** exceedsPower for bigint readings (accumulate's, from state and refine output). */
export function exceedsPowerBig(energyWh: bigint, elapsedMs: bigint, powerW: number = METER_POWER_W_MAX): boolean {
  return energyWh * MS_PER_HOUR_BIG > BigInt(powerW) * elapsedMs;
}

/**
 * The first reading of `readings` (at index ≥ 1, or index 0 when `previous` is given: the reading
 * before them) whose energy since the one before it exceeds `powerW`, or −1. Readings must already
 * have t strictly increasing and counters not decreasing (body.ts checks both within a body).
 */
export function firstOverPower(readings: readonly MeterReading[], previous: MeterReading | null, powerW: number = METER_POWER_W_MAX): number {
  let before = previous;
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    if (before !== null && exceedsPower(r.importWh - before.importWh + (r.exportWh - before.exportWh), r.t - before.t, powerW)) return i;
    before = r;
  }
  return -1;
}

/** The market's clock: interval k starts at startMs + k·intervalMs (ms, the market's possibly simulated time). */
export interface MarketClock {
  readonly startMs: number;
  readonly intervalMs: number;
}

export interface IntervalEnergy {
  readonly interval: number;
  readonly importWh: number;
  readonly exportWh: number;
}

export interface MeterDigest {
  readonly first: MeterReading;
  readonly last: MeterReading;
  /**
   * Ascending by interval, one entry per interval, only those with energy (import or export > 0):
   * an interval whose readings did not move the counters adds nothing. There are fewer entries
   * than readings, so at most envelopes × READINGS_PER_ENVELOPE_MAX − 1.
   */
  readonly intervals: readonly IntervalEnergy[];
}

/**
 * - `not-increasing`: a reading's t is not after the one before it (in the same or an earlier envelope);
 * - `counter-backwards`: an import or export counter below the one before it;
 * - `before-start`: a reading before the market's start;
 * - `empty`: no readings at all.
 */
export type CondenseError = "not-increasing" | "counter-backwards" | "before-start" | "empty";

export type CondenseResult = DetailedResult<MeterDigest, CondenseError>;

/** The interval a reading at `t` (≥ startMs) closes: 0 at startMs, else ⌊(t − 1 − startMs) / intervalMs⌋. */
export function intervalOfReading(t: number, clock: MarketClock): number {
  if (t <= clock.startMs) return 0;
  const elapsed = t - 1 - clock.startMs;
  // Integer division: elapsed − remainder is an exact multiple of intervalMs, so the quotient is exact.
  return (elapsed - (elapsed % clock.intervalMs)) / clock.intervalMs;
}

/**
 * Condenses one meter's envelopes of one package (each envelope's readings, envelopes in seq
 * order) into its digest. Across envelopes, as within one, t must strictly increase and the
 * counters must not decrease, except into an envelope marked in `resets` (a `meter.reset`: one
 * reading, a new baseline that adds no energy). Throws only on a caller's bug: a clock that is not
 * safe integers with intervalMs ≥ 1, or an envelope of more than READINGS_PER_ENVELOPE_MAX
 * readings (body.ts never yields one), which also bounds `intervals`.
 */
export function condenseReadings(envelopes: readonly (readonly MeterReading[])[], clock: MarketClock, resets: readonly boolean[] = []): CondenseResult {
  const { startMs, intervalMs } = clock;
  if (!(Number.isSafeInteger(startMs) && startMs >= 0 && Number.isSafeInteger(intervalMs) && intervalMs >= 1)) {
    throw new Error(`condenseReadings: market clock ${startMs} ms + k × ${intervalMs} ms is not safe integers with an interval ≥ 1 ms`);
  }
  let first: MeterReading | null = null;
  let previous: MeterReading | null = null;
  const intervals: { interval: number; importWh: number; exportWh: number }[] = [];
  for (let e = 0; e < envelopes.length; e++) {
    const readings = envelopes[e]!;
    if (readings.length > READINGS_PER_ENVELOPE_MAX)
      throw new Error(`condenseReadings: envelope ${e} has ${readings.length} readings > READINGS_PER_ENVELOPE_MAX = ${READINGS_PER_ENVELOPE_MAX}`);
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      if (r.t < startMs) return failWith("before-start", `envelope ${e}, reading ${i}: t = ${r.t} is before the market's start ${startMs}`);
      if (previous === null) {
        first = r;
      } else if (i === 0 && resets[e] === true) {
        // A reset's counters are a new baseline: no energy is taken from the reading before it.
        if (r.t <= previous.t) return failWith("not-increasing", `envelope ${e} (a reset): t = ${r.t} is not after ${previous.t}`);
      } else {
        if (r.t <= previous.t) return failWith("not-increasing", `envelope ${e}, reading ${i}: t = ${r.t} is not after ${previous.t}`);
        if (r.importWh < previous.importWh) return failWith("counter-backwards", `envelope ${e}, reading ${i}: importWh ${r.importWh} < ${previous.importWh}`);
        if (r.exportWh < previous.exportWh) return failWith("counter-backwards", `envelope ${e}, reading ${i}: exportWh ${r.exportWh} < ${previous.exportWh}`);
        const importWh = r.importWh - previous.importWh;
        const exportWh = r.exportWh - previous.exportWh;
        if (importWh > 0 || exportWh > 0) {
          const interval = intervalOfReading(r.t, clock);
          // Readings ascend in time, so their intervals do: one entry per interval, appended in order.
          // Sums stay exact: an interval's energy is at most last − first of a safe-integer counter.
          const open = intervals[intervals.length - 1];
          if (open !== undefined && open.interval === interval) {
            open.importWh += importWh;
            open.exportWh += exportWh;
          } else {
            intervals.push({ interval, importWh, exportWh });
          }
        }
      }
      previous = r;
    }
  }
  if (first === null || previous === null) return failWith("empty", "no readings");
  return ok({ first, last: previous, intervals });
}
