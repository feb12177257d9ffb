/**
 * Rooftop PV: solar geometry, clear-sky irradiance, clouds, and the panel.
 *
 * - Sun position: NOAA Global Monitoring Division, "General Solar Position Calculations" (the
 *   fractional-year Fourier series of Spencer 1971, Search 2(5):172, for the declination and the
 *   equation of time), then cos θz = sin φ sin δ + cos φ cos δ cos h. Good to a few tenths of a
 *   degree, far finer than the rest of this model.
 * - Clear sky: Haurwitz (1945), GHI = 1098 · cos θz · exp(−0.057 / cos θz) W/m², the simplest model
 *   that Reno, Hansen & Stein (Sandia SAND2012-2389, 2012) found among the more accurate ones.
 * - Panel: horizontal (tilt and azimuth ignored: a south-facing 30–35° roof yields more in winter
 *   and about the same at midsummer), P = kWp · GHI / (1000 W/m²) · PR with a performance ratio of
 *   0.8 (inverter, wiring, temperature and soiling losses).
 * - Clouds: a clear-sky index k(t) ∈ [CLOUD_INDEX_MIN, 1], regional (one per scenario, seeded by
 *   the scenario's seed, the same for every household) times a small per-household factor.
 * - Longitude is fixed at LONGITUDE_DEG (Berlin, 13.4° E); the simulation clock is UTC.
 */
import { hashNormal, hashUniform } from "./random.ts";

const DEG = Math.PI / 180;
const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 24 * 60 * MS_PER_MINUTE;

/** Berlin; only shifts solar noon (4 minutes per degree), so one longitude serves every scenario. */
export const LONGITUDE_DEG = 13.4;
/** Losses from panel nameplate to AC meter: 0.75–0.85 for modern systems (IEC 61724 "performance ratio"). */
export const PERFORMANCE_RATIO = 0.8;
/** Standard test conditions: a panel delivers its kWp at 1000 W/m². */
const STC_IRRADIANCE_W_PER_M2 = 1000;

export interface SunPosition {
  /** Degrees above the horizon (negative at night). */
  readonly elevationDeg: number;
  /** cos of the zenith angle, clamped to [−1, 1]. */
  readonly cosZenith: number;
}

/** Day of the year, 1 on 1 January (UTC). */
function dayOfYearUtc(tMs: number): number {
  const d = new Date(tMs);
  return Math.floor((tMs - Date.UTC(d.getUTCFullYear(), 0, 1)) / MS_PER_DAY) + 1;
}

function daysInYearUtc(tMs: number): number {
  const year = new Date(tMs).getUTCFullYear();
  return (Date.UTC(year + 1, 0, 1) - Date.UTC(year, 0, 1)) / MS_PER_DAY;
}

/** Sun elevation at latitude/longitude and instant (NOAA "General Solar Position Calculations"). */
export function sunPosition(tMs: number, latitudeDeg: number, longitudeDeg = LONGITUDE_DEG): SunPosition {
  const minutesOfDay = (((tMs % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY) / MS_PER_MINUTE;
  // Fractional year γ in radians.
  const gamma = ((2 * Math.PI) / daysInYearUtc(tMs)) * (dayOfYearUtc(tMs) - 1 + (minutesOfDay / 60 - 12) / 24);
  const equationOfTimeMin =
    229.18 * (0.000075 + 0.001868 * Math.cos(gamma) - 0.032077 * Math.sin(gamma) - 0.014615 * Math.cos(2 * gamma) - 0.040849 * Math.sin(2 * gamma));
  const declination =
    0.006918 -
    0.399912 * Math.cos(gamma) +
    0.070257 * Math.sin(gamma) -
    0.006758 * Math.cos(2 * gamma) +
    0.000907 * Math.sin(2 * gamma) -
    0.002697 * Math.cos(3 * gamma) +
    0.00148 * Math.sin(3 * gamma);
  const trueSolarMin = minutesOfDay + equationOfTimeMin + 4 * longitudeDeg;
  const hourAngle = (trueSolarMin / 4 - 180) * DEG;
  const phi = latitudeDeg * DEG;
  const cosZenith = Math.max(-1, Math.min(1, Math.sin(phi) * Math.sin(declination) + Math.cos(phi) * Math.cos(declination) * Math.cos(hourAngle)));
  return { elevationDeg: 90 - Math.acos(cosZenith) / DEG, cosZenith };
}

/** Haurwitz (1945) clear-sky global horizontal irradiance, W/m²; 0 with the sun below the horizon. */
export function clearSkyGhi(cosZenith: number): number {
  return cosZenith <= 0 ? 0 : 1098 * cosZenith * Math.exp(-0.057 / cosZenith);
}

/** PV AC power of a horizontal array under a clear sky, W. */
export function clearSkyPvW(tMs: number, kWp: number, latitudeDeg: number): number {
  return kWp * clearSkyGhi(sunPosition(tMs, latitudeDeg).cosZenith) * (STC_IRRADIANCE_W_PER_M2 / 1000) * PERFORMANCE_RATIO;
}

/** Even a dark overcast sky lets diffuse light through: typical clear-sky index of heavy overcast ≈ 0.1–0.2. */
export const CLOUD_INDEX_MIN = 0.1;
/** Spacing of the smooth cloud process's knots: cumulus fields change over tens of minutes. */
export const CLOUD_KNOT_MINUTES = 20;
/** Per-household variation: panels a few km apart see the same weather but not the same cloud edges. */
export const HOUSEHOLD_CLOUD_SIGMA = 0.05;
const HOUSEHOLD_KNOT_MINUTES = 10;

/** A day's weather: mean clear-sky index and how much it varies within the day. */
interface DayWeather {
  readonly mean: number;
  readonly spread: number;
}

/**
 * Day types for central Europe in summer, roughly a third clear, half mixed, a sixth overcast;
 * the mean clear-sky index comes to ≈ 0.7, in line with German June yields (~4.5–5 kWh/kWp/day
 * against ~6.5 clear-sky from this model). An assumption, stated in SOURCES.md.
 */
function dayWeather(seed: number, day: number): DayWeather {
  const u = hashUniform(seed, day, 0);
  const v = hashUniform(seed, day, 1);
  if (u < 0.35) return { mean: 0.9 + 0.08 * v, spread: 0.04 }; // clear
  if (u < 0.83) return { mean: 0.5 + 0.35 * v, spread: 0.2 }; // broken clouds
  return { mean: 0.2 + 0.2 * v, spread: 0.06 }; // overcast
}

/** Cosine interpolation between hashed standard normals at knots `knotMs` apart: smooth, random-access, seeded. */
function smoothNormal(seed: number, tMs: number, knotMs: number): number {
  const x = tMs / knotMs;
  const i = Math.floor(x);
  const f = (1 - Math.cos((x - i) * Math.PI)) / 2;
  return hashNormal(seed, i) * (1 - f) + hashNormal(seed, i + 1) * f;
}

/**
 * The regional clear-sky index k(t): each UTC day draws a weather (mean, spread), interpolated
 * linearly between noons so days blend overnight; within the day a smooth normal process with
 * knots every CLOUD_KNOT_MINUTES. A pure function of (seed, t): every household that asks gets the
 * same sky, in any order.
 */
export function cloudIndex(seed: number, tMs: number): number {
  const dayPosition = tMs / MS_PER_DAY - 0.5; // 0 at noon of day 0
  const day = Math.floor(dayPosition);
  const f = dayPosition - day;
  const a = dayWeather(seed, day);
  const b = dayWeather(seed, day + 1);
  const mean = a.mean * (1 - f) + b.mean * f;
  const spread = a.spread * (1 - f) + b.spread * f;
  const k = mean + spread * smoothNormal(seed ^ 0x5f3759df, tMs, CLOUD_KNOT_MINUTES * MS_PER_MINUTE);
  return Math.max(CLOUD_INDEX_MIN, Math.min(1, k));
}

/** A household's PV array: clear sky × regional clouds × its own small variation. */
export class PvArray {
  constructor(
    private readonly kWp: number,
    private readonly latitudeDeg: number,
    /** The scenario's cloud seed (shared). */
    private readonly regionSeed: number,
    /** This household's seed. */
    private readonly ownSeed: number,
  ) {}

  /** AC power at tMs, W (float). */
  powerW(tMs: number): number {
    const clear = clearSkyPvW(tMs, this.kWp, this.latitudeDeg);
    if (clear === 0) return 0;
    const own = 1 + HOUSEHOLD_CLOUD_SIGMA * smoothNormal(this.ownSeed, tMs, HOUSEHOLD_KNOT_MINUTES * MS_PER_MINUTE);
    return Math.max(0, clear * cloudIndex(this.regionSeed, tMs) * own);
  }
}
