import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeBody } from "../../devices/envelope.ts";
import { meterReadings } from "../../devices/simulate.ts";
import { decodeMeterBody, type MeterReading, READINGS_PER_ENVELOPE_MAX } from "./body.ts";
import { condenseReadings, exceedsPower, exceedsPowerBig, firstOverPower, intervalOfReading, type MarketClock, METER_POWER_W_MAX } from "./condense.ts";

const START = 1_700_000_000_000;
const MINUTE: MarketClock = { startMs: START, intervalMs: 60_000 };
const r = (offsetMs: number, importWh: number, exportWh: number): MeterReading => ({ t: START + offsetMs, importWh, exportWh });

describe("intervalOfReading", () => {
  it("puts a reading in the interval it closes: (start + k·I, start + (k+1)·I], the start itself in 0", () => {
    expect(intervalOfReading(START, MINUTE)).toBe(0);
    expect(intervalOfReading(START + 1, MINUTE)).toBe(0);
    expect(intervalOfReading(START + 60_000, MINUTE)).toBe(0); // the end of interval 0 closes it
    expect(intervalOfReading(START + 60_001, MINUTE)).toBe(1);
    expect(intervalOfReading(START + 120_000, MINUTE)).toBe(1);
    expect(intervalOfReading(START + 900_000, { startMs: START, intervalMs: 900_000 })).toBe(0);
    expect(intervalOfReading(START + 900_001, { startMs: START, intervalMs: 900_000 })).toBe(1);
  });

  it("is exact integer division up to 2^53 − 1 (matches BigInt)", () => {
    const oracle = (t: number, c: MarketClock) => (t <= c.startMs ? 0 : Number((BigInt(t) - 1n - BigInt(c.startMs)) / BigInt(c.intervalMs)));
    expect(intervalOfReading(2 ** 53 - 1, { startMs: 0, intervalMs: 3 })).toBe(3_002_399_751_580_330); // (2^53 − 2) / 3
    expect(intervalOfReading(2 ** 53 - 1, { startMs: 1, intervalMs: 7 })).toBe(1_286_742_750_677_284); // ⌊(2^53 − 3) / 7⌋
    fc.assert(
      fc.property(fc.nat(Number.MAX_SAFE_INTEGER), fc.nat(Number.MAX_SAFE_INTEGER), fc.integer({ min: 1, max: 0xffff_ffff }), (a, b, intervalMs) => {
        const clock = { startMs: Math.min(a, b), intervalMs };
        const t = Math.max(a, b);
        expect(intervalOfReading(t, clock)).toBe(oracle(t, clock));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("condenseReadings", () => {
  it("bins energy by the interval of the later reading, across a boundary and across envelopes", () => {
    // One-minute intervals from START. Each difference counts in the interval of its later reading:
    //   +40 s (1000, 50) → +50 s (1003, 50): import 3, export 0 → interval 0 ((50_000 − 1) / 60_000 = 0)
    //   +50 s → +60 s (1007, 51): import 4, export 1 → interval 0 (exactly at its end: it closes 0)
    //   +60 s → +70 s (1010, 53): import 3, export 2 → interval 1
    //   envelope 2: +70 s → +80 s (1012, 53): import 2, export 0 → interval 1
    //   +80 s → +130 s (1020, 60): import 8, export 7 → interval 2 ((130_000 − 1) / 60_000 = 2)
    // Interval 0: import 3 + 4 = 7, export 0 + 1 = 1; interval 1: 3 + 2 = 5, 2 + 0 = 2; interval 2: 8, 7.
    // Sums: import 7 + 5 + 8 = 20 = 1020 − 1000; export 1 + 2 + 7 = 10 = 60 − 50.
    const envelopes = [
      [r(40_000, 1000, 50), r(50_000, 1003, 50), r(60_000, 1007, 51), r(70_000, 1010, 53)],
      [r(80_000, 1012, 53), r(130_000, 1020, 60)],
    ];
    expect(condenseReadings(envelopes, MINUTE)).toEqual({
      ok: true,
      value: {
        first: r(40_000, 1000, 50),
        last: r(130_000, 1020, 60),
        intervals: [
          { interval: 0, importWh: 7, exportWh: 1 },
          { interval: 1, importWh: 5, exportWh: 2 },
          { interval: 2, importWh: 8, exportWh: 7 },
        ],
      },
    });
  });

  it("lets the first reading contribute nothing and leaves out intervals without energy", () => {
    // The first reading (+10 s) only anchors the counters: accumulate adds the gap from state.
    // Interval 1 (+60..+120 s] has a reading (+90 s) that does not move the counters: no entry.
    // +90 s → +150 s: import 6 → interval 2 ((150_000 − 1) / 60_000 = 2).
    const envelopes = [[r(10_000, 500, 0), r(30_000, 500, 0), r(90_000, 500, 0)], [r(150_000, 506, 0)]];
    const condensed = condenseReadings(envelopes, MINUTE);
    expect(condensed).toEqual({
      ok: true,
      value: { first: r(10_000, 500, 0), last: r(150_000, 506, 0), intervals: [{ interval: 2, importWh: 6, exportWh: 0 }] },
    });
    expect(condenseReadings([[r(0, 1, 1)]], MINUTE)).toEqual({ ok: true, value: { first: r(0, 1, 1), last: r(0, 1, 1), intervals: [] } });
  });

  it("takes a reading at the market's start and refuses one before it", () => {
    // +0 → +1 ms: import 2 → interval 0.
    expect(condenseReadings([[r(0, 10, 0), r(1, 12, 0)]], MINUTE)).toMatchObject({
      ok: true,
      value: { intervals: [{ interval: 0, importWh: 2, exportWh: 0 }] },
    });
    expect(condenseReadings([[r(-1, 10, 0), r(1, 12, 0)]], MINUTE)).toMatchObject({ ok: false, error: "before-start" });
  });

  it("refuses counters going back and time standing still across envelopes", () => {
    const first = [r(10_000, 100, 100), r(20_000, 110, 105)];
    expect(condenseReadings([first, [r(30_000, 109, 105)]], MINUTE)).toMatchObject({ ok: false, error: "counter-backwards" });
    expect(condenseReadings([first, [r(30_000, 110, 104)]], MINUTE)).toMatchObject({ ok: false, error: "counter-backwards" });
    expect(condenseReadings([first, [r(20_000, 110, 105)]], MINUTE)).toMatchObject({ ok: false, error: "not-increasing" });
    expect(condenseReadings([first, [r(15_000, 120, 110)]], MINUTE)).toMatchObject({ ok: false, error: "not-increasing" });
    expect(condenseReadings([first, [r(30_000, 110, 105)]], MINUTE)).toMatchObject({ ok: true }); // counters may stand still
    expect(condenseReadings([[r(10_000, 5, 0), r(20_000, 4, 0)]], MINUTE)).toMatchObject({ ok: false, error: "counter-backwards" }); // within one envelope too
  });

  it("answers empty for no readings and throws on a caller's bug", () => {
    expect(condenseReadings([], MINUTE)).toMatchObject({ ok: false, error: "empty" });
    expect(condenseReadings([[], []], MINUTE)).toMatchObject({ ok: false, error: "empty" });
    expect(() => condenseReadings([[r(0, 0, 0)]], { startMs: START, intervalMs: 0 })).toThrow();
    expect(() => condenseReadings([[r(0, 0, 0)]], { startMs: START + 0.5, intervalMs: 1_000 })).toThrow();
    const tooLong = Array.from({ length: READINGS_PER_ENVELOPE_MAX + 1 }, (_, i) => r(i, 0, 0));
    expect(() => condenseReadings([tooLong], MINUTE)).toThrow();
  });

  it("condenses what devices send: 15 envelopes of 60 one-second readings into 15-minute intervals", () => {
    const clock = { startMs: START, intervalMs: 900_000 };
    const it = meterReadings(3, START + 600_000); // from 10 minutes in: 900 s span intervals 0 and 1
    const envelopes = Array.from({ length: 15 }, () => {
      const batch = Array.from({ length: 60 }, () => {
        const x = it.next().value!;
        return { t: x.timeMs, importWh: x.importWh, exportWh: x.exportWh, powerW: x.powerW, voltageV: x.voltageV };
      });
      const decoded = decodeMeterBody(encodeBody(batch));
      if (!decoded.ok) throw new Error(decoded.detail);
      return decoded.value;
    });
    const condensed = condenseReadings(envelopes, clock);
    if (!condensed.ok) throw new Error(condensed.detail);
    const { first, last, intervals } = condensed.value;
    expect(intervals.map((e) => e.interval).every((k) => k === 0 || k === 1)).toBe(true);
    expect(intervals.reduce((s, e) => s + e.importWh, 0)).toBe(last.importWh - first.importWh);
    expect(intervals.reduce((s, e) => s + e.exportWh, 0)).toBe(last.exportWh - first.exportWh);
  });
});

describe("condenseReadings with resets", () => {
  it("takes a reset's counters as a new baseline: no energy from the reading before it, either way", () => {
    // +10 s (1000) → +20 s (1004): import 4 in interval 0. Reset at +30 s to 0 (a new meter): nothing.
    // +30 s (0) → +70 s (3, 1): import 3, export 1 in interval 1. Reset at +80 s up to 5,000: nothing.
    // +80 s → +130 s (5,002): import 2 in interval 2.
    const envelopes = [[r(10_000, 1000, 0), r(20_000, 1004, 0)], [r(30_000, 0, 0)], [r(70_000, 3, 1)], [r(80_000, 5_000, 1)], [r(130_000, 5_002, 1)]];
    expect(condenseReadings(envelopes, MINUTE, [false, true, false, true, false])).toEqual({
      ok: true,
      value: {
        first: r(10_000, 1000, 0),
        last: r(130_000, 5_002, 1),
        intervals: [
          { interval: 0, importWh: 4, exportWh: 0 },
          { interval: 1, importWh: 3, exportWh: 1 },
          { interval: 2, importWh: 2, exportWh: 0 },
        ],
      },
    });
    // Without the resets the same counters go back.
    expect(condenseReadings(envelopes, MINUTE)).toMatchObject({ ok: false, error: "counter-backwards" });
  });

  it("still needs a reset's time after the reading before it", () => {
    expect(condenseReadings([[r(10_000, 5, 0)], [r(10_000, 0, 0)]], MINUTE, [false, true])).toMatchObject({ ok: false, error: "not-increasing" });
    expect(condenseReadings([[r(10_000, 5, 0)], [r(10_001, 0, 0)]], MINUTE, [false, true])).toMatchObject({ ok: true });
  });
});

describe("the power bound", () => {
  it("is energyWh × 3,600,000 ≤ powerW × elapsedMs, exactly, as a BigInt oracle says, past 2^53 too", () => {
    const oracle = (energyWh: number, elapsedMs: number, powerW: number) => BigInt(energyWh) * 3_600_000n > BigInt(powerW) * BigInt(elapsedMs);
    // 250 kW for 14.4 s is 1,000 Wh: at the bound, not over; one Wh more is over.
    expect(exceedsPower(1_000, 14_400)).toBe(false);
    expect(exceedsPower(1_001, 14_400)).toBe(true);
    expect(exceedsPower(0, 0)).toBe(false);
    expect(exceedsPower(1, 0)).toBe(true);
    // Products past 2^53 (computed as bigints): 2^50 ms at 250 kW is 250,000 × 2^50 / 3,600,000 =
    // 78,187,493,530,737.78 Wh.
    expect(exceedsPower(78_187_493_530_737, 2 ** 50)).toBe(false);
    expect(exceedsPower(78_187_493_530_738, 2 ** 50)).toBe(true);
    expect(exceedsPower(2 ** 53 - 1, 2 ** 53 - 1)).toBe(true);
    const safe = fc.oneof(fc.nat(Number.MAX_SAFE_INTEGER), fc.nat(10_000_000), fc.nat(100));
    fc.assert(
      fc.property(safe, safe, fc.oneof(fc.constant(METER_POWER_W_MAX), fc.nat(10_000_000)), (energyWh, elapsedMs, powerW) => {
        expect(exceedsPower(energyWh, elapsedMs, powerW)).toBe(oracle(energyWh, elapsedMs, powerW));
        expect(exceedsPowerBig(BigInt(energyWh), BigInt(elapsedMs), powerW)).toBe(oracle(energyWh, elapsedMs, powerW));
      }),
      { numRuns: 2_000 },
    );
    // Near the bound, where rounding would decide: energy × 3.6e6 within a few of power × time.
    fc.assert(
      fc.property(fc.integer({ min: 2 ** 40, max: 2 ** 52 }), fc.integer({ min: -3, max: 3 }), (elapsedMs, off) => {
        const energyWh = Math.floor((METER_POWER_W_MAX * elapsedMs) / 3_600_000) + off;
        fc.pre(energyWh >= 0);
        expect(exceedsPower(energyWh, elapsedMs)).toBe(oracle(energyWh, elapsedMs, METER_POWER_W_MAX));
      }),
    );
  });

  it("finds the first reading over it, counting import and export together, from the reading before the envelope too", () => {
    // 14.4 s at 250 kW is 1,000 Wh.
    const ok = [r(0, 0, 0), r(14_400, 600, 400), r(28_800, 1_600, 400)];
    expect(firstOverPower(ok, null)).toBe(-1);
    expect(firstOverPower([r(0, 0, 0), r(14_400, 600, 401)], null)).toBe(1);
    expect(firstOverPower([r(0, 0, 0), r(1, 0, 0), r(14_401, 1_001, 0)], null)).toBe(2);
    expect(firstOverPower([r(14_400, 1_000, 0), r(14_401, 1_000, 0)], r(0, 0, 0))).toBe(-1);
    expect(firstOverPower([r(14_400, 1_000, 1), r(14_401, 1_000, 1)], r(0, 0, 0))).toBe(0);
    expect(firstOverPower([r(0, 5, 0)], null)).toBe(-1); // one reading and nothing before it: nothing to bound
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over arbitrary increasing readings, split arbitrarily into envelopes.

const stepArb = fc.record({
  dt: fc.integer({ min: 1, max: 200_000 }),
  dImport: fc.oneof(fc.constant(0), fc.nat(5_000)),
  dExport: fc.oneof(fc.constant(0), fc.nat(5_000)),
});
const caseArb = fc.record({
  startMs: fc.oneof(fc.constant(0), fc.constant(START), fc.nat(Number.MAX_SAFE_INTEGER - 10 ** 9)),
  intervalMs: fc.oneof(fc.constant(60_000), fc.constant(900_000), fc.integer({ min: 1, max: 0xffff_ffff })),
  offset: fc.nat(1_000_000),
  importWh: fc.nat(10 ** 9),
  exportWh: fc.nat(10 ** 9),
  steps: fc.array(stepArb, { maxLength: 120 }),
  cuts: fc.array(fc.nat(), { maxLength: 6 }),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function readingsOf(c: Case): MeterReading[] {
  let t = c.startMs + c.offset;
  let importWh = c.importWh;
  let exportWh = c.exportWh;
  const out = [{ t, importWh, exportWh }];
  for (const s of c.steps) {
    t += s.dt;
    importWh += s.dImport;
    exportWh += s.dExport;
    out.push({ t, importWh, exportWh });
  }
  return out;
}

/** The readings split at `cuts` (positions modulo the length), keeping order. */
function split(readings: MeterReading[], cuts: number[]): MeterReading[][] {
  const at = [...new Set(cuts.map((c) => c % (readings.length + 1)))].sort((a, b) => a - b);
  const out: MeterReading[][] = [];
  let from = 0;
  for (const c of [...at, readings.length]) {
    if (c > from) out.push(readings.slice(from, c));
    from = Math.max(from, c);
  }
  return out;
}

describe("condenseReadings, properties", () => {
  it("conserves energy, bins like a BigInt oracle, and does not depend on how readings are split into envelopes", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const clock = { startMs: c.startMs, intervalMs: c.intervalMs };
        const readings = readingsOf(c);
        const condensed = condenseReadings(split(readings, c.cuts), clock);
        expect(condensed.ok).toBe(true);
        if (!condensed.ok) return;
        const { first, last, intervals } = condensed.value;
        expect(first).toEqual(readings[0]);
        expect(last).toEqual(readings[readings.length - 1]);
        // Sum of interval energies = last − first counters.
        expect(intervals.reduce((s, e) => s + e.importWh, 0)).toBe(last.importWh - first.importWh);
        expect(intervals.reduce((s, e) => s + e.exportWh, 0)).toBe(last.exportWh - first.exportWh);
        // Strictly ascending, each with energy, fewer than the readings.
        for (const [i, e] of intervals.entries()) {
          if (i > 0) expect(e.interval).toBeGreaterThan(intervals[i - 1]!.interval);
          expect(e.importWh + e.exportWh).toBeGreaterThan(0);
        }
        expect(intervals.length).toBeLessThan(readings.length);
        // An independent oracle: each difference into the BigInt interval of the later reading.
        const oracle = new Map<bigint, [number, number]>();
        for (let i = 1; i < readings.length; i++) {
          const t = BigInt(readings[i]!.t);
          const k = t <= BigInt(c.startMs) ? 0n : (t - 1n - BigInt(c.startMs)) / BigInt(c.intervalMs);
          const [imp, exp] = oracle.get(k) ?? [0, 0];
          oracle.set(k, [imp + readings[i]!.importWh - readings[i - 1]!.importWh, exp + readings[i]!.exportWh - readings[i - 1]!.exportWh]);
        }
        const expected = [...oracle.entries()]
          .filter(([, [imp, exp]]) => imp + exp > 0)
          .map(([k, [importWh, exportWh]]) => ({ interval: Number(k), importWh, exportWh }));
        expect(intervals).toEqual(expected);
        // One envelope or many: the same digest.
        expect(condenseReadings([readings], clock)).toEqual(condensed);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses any reading whose counter goes back, whichever envelope it is in", () => {
    fc.assert(
      fc.property(caseArb, fc.nat(), fc.boolean(), (c, pick, onImport) => {
        const readings = readingsOf(c);
        fc.pre(readings.length >= 2);
        const i = 1 + (pick % (readings.length - 1));
        const back = { ...readings[i]!, ...(onImport ? { importWh: readings[i - 1]!.importWh - 1 } : { exportWh: readings[i - 1]!.exportWh - 1 }) };
        fc.pre(back.importWh >= 0 && back.exportWh >= 0);
        const changed = readings.map((x, k) => (k === i ? back : x));
        expect(condenseReadings(split(changed, c.cuts), { startMs: c.startMs, intervalMs: c.intervalMs })).toMatchObject({
          ok: false,
          error: "counter-backwards",
        });
      }),
      { numRuns: 300 },
    );
  });
});
