/**
 * Plausible smart-meter readings from a seed, for `jamgate device publish --simulate` and tests:
 * one a second; import and export energy counters that only grow; net power and voltage. All
 * integers in the smallest unit the name says (house style), and the same seed gives the same
 * readings (house style, "Determinism": the seed and start time are the only inputs).
 */
export interface MeterReading {
  readonly timeMs: number;
  /** Energy drawn from the grid since the meter was installed. */
  readonly importWh: number;
  /** Energy fed into the grid (solar surplus) since the meter was installed. */
  readonly exportWh: number;
  /** Net power this second: positive imports, negative exports. */
  readonly powerW: number;
  readonly voltageV: number;
}

const J_PER_WH = 3600;

/** mulberry32: a 32-bit seeded generator, small and good enough for test data (not for keys). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** An endless stream of one-second readings from `startMs`. */
export function* meterReadings(seed: number, startMs: number): Generator<MeterReading> {
  const random = seededRandom(seed);
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  // Counters kept in joules (W × s), so whole watts add up exactly; shown in Wh.
  let importJ = int(1_000, 20_000_000) * J_PER_WH;
  let exportJ = int(0, 5_000_000) * J_PER_WH;
  let loadW = int(200, 1_500);
  let solarW = int(0, 4_000);
  for (let second = 0; ; second++) {
    loadW = clamp(loadW + int(-50, 50), 80, 9_000);
    solarW = clamp(solarW + int(-30, 30), 0, 6_000);
    const powerW = loadW - solarW;
    if (powerW > 0) importJ += powerW;
    else exportJ -= powerW;
    yield {
      timeMs: startMs + second * 1000,
      importWh: Math.floor(importJ / J_PER_WH),
      exportWh: Math.floor(exportJ / J_PER_WH),
      powerW,
      voltageV: int(224, 236),
    };
  }
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
