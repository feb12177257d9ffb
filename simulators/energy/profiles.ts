/**
 * Household load after the BDEW standard load profile H0 (VDEW 1999, "Repräsentative VDEW-
 * Lastprofile"; BDEW, "Anwendung der Repräsentativen VDEW-Lastprofile step-by-step", 2000).
 *
 * What is taken from the publication: the structure (96 quarter-hour values for each of
 * workday / Saturday / Sunday × winter / summer / transition), the calendar (winter 1 Nov – 20 Mar,
 * summer 15 May – 14 Sep, transition otherwise; Saturdays, and 24 and 31 December when not a
 * Sunday, are Saturdays; Sundays and public holidays are Sundays), local time, normalization to
 * 1,000 kWh a year, and the dynamization factor for H0,
 * F(d) = −3.92·10⁻¹⁰·d⁴ + 3.2·10⁻⁷·d³ − 7.02·10⁻⁵·d² + 2.1·10⁻³·d + 1.24 (d = day of the year, 1 on
 * 1 January).
 *
 * What is NOT the published table: the 864 quarter-hour values. They are interpolated linearly
 * between hourly characteristic points (night base, morning rise, midday, evening peak) read from
 * the published curves' shape, per day type and for winter and summer; transition is their mean;
 * the whole is then scaled so that each calendar year sums to exactly 1,000 kWh (SOURCES.md).
 * The shape is right in kind, not value for value: per 1,000 kWh/a a night base of ≈ 35–55 W at
 * 3–5 h, an evening peak 3.5–5× that (≈ 270 W on a January workday at 18:45, ≈ 130 W in June at
 * 20:45), weekend midday peaks, and days of ≈ 3.5 kWh in January and ≈ 2.1 kWh in June.
 */
import { rngFor, type Rng } from "./random.ts";
import { minutesOfDay, type ScheduleEntry } from "./scenario.ts";

export type Season = "winter" | "summer" | "transition";
export type DayType = "workday" | "saturday" | "sunday";

export const QUARTERS_PER_DAY = 96;
const MS_PER_MINUTE = 60_000;
const MS_PER_QUARTER = 15 * MS_PER_MINUTE;
const MS_PER_DAY = 24 * 60 * MS_PER_MINUTE;
/** The profile's normalization: every profile value is W for a household using this much a year. */
export const PROFILE_ANNUAL_KWH = 1_000;

/** H0 dynamization factor for day of year d (1 = 1 January), BDEW step-by-step guide (2000). */
export function dynamizationFactor(dayOfYear: number): number {
  const d = dayOfYear;
  return -3.92e-10 * d ** 4 + 3.2e-7 * d ** 3 - 7.02e-5 * d ** 2 + 2.1e-3 * d + 1.24;
}

/** BDEW periods: winter 1 Nov – 20 Mar, summer 15 May – 14 Sep, transition otherwise. Month 1–12. */
export function seasonOf(month: number, day: number): Season {
  const md = month * 100 + day;
  if (md >= 1101 || md <= 320) return "winter";
  if (md >= 515 && md <= 914) return "summer";
  return "transition";
}

/** Easter Sunday (Gregorian), the anonymous algorithm of Nature 1876 / Meeus, "Astronomical Algorithms" ch. 8: [month, day]. */
export function easterSunday(year: number): [number, number] {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return [month, day];
}

/** Nationwide German public holidays: fixed ones and those that move with Easter. */
function isPublicHoliday(year: number, month: number, day: number): boolean {
  const md = month * 100 + day;
  if (md === 101 || md === 501 || md === 1003 || md === 1225 || md === 1226) return true;
  const [em, ed] = easterSunday(year);
  const offset = Math.round((Date.UTC(year, month - 1, day) - Date.UTC(year, em - 1, ed)) / MS_PER_DAY);
  // Good Friday, Easter Monday, Ascension, Whit Monday.
  return offset === -2 || offset === 1 || offset === 39 || offset === 50;
}

/** BDEW day types: Sundays and public holidays are Sundays; 24 and 31 December are Saturdays unless Sundays. */
export function dayTypeOf(year: number, month: number, day: number): DayType {
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay(); // 0 = Sunday
  if (weekday === 0 || isPublicHoliday(year, month, day)) return "sunday";
  if (weekday === 6 || (month === 12 && (day === 24 || day === 31))) return "saturday";
  return "workday";
}

/** Last Sunday of a month (1–12), as a UTC date at 01:00 UTC: when EU summer time starts or ends (Directive 2000/84/EC). */
function lastSundayAt0100Utc(year: number, month: number): number {
  const last = new Date(Date.UTC(year, month, 0)); // day 0 of the next month
  return Date.UTC(year, month - 1, last.getUTCDate() - last.getUTCDay(), 1);
}

/** Minutes to add to UTC for German local time: CET (+60) or CEST (+120) from the last Sunday of March to the last of October, 01:00 UTC. */
export function germanUtcOffsetMinutes(tMs: number): number {
  const year = new Date(tMs).getUTCFullYear();
  return tMs >= lastSundayAt0100Utc(year, 3) && tMs < lastSundayAt0100Utc(year, 10) ? 120 : 60;
}

export interface LocalDay {
  readonly year: number;
  /** 1–12. */
  readonly month: number;
  readonly day: number;
  /** 1 on 1 January. */
  readonly dayOfYear: number;
  /** 0–95: the local quarter hour. */
  readonly quarter: number;
}

/** The German local calendar day and quarter hour of an instant. */
export function germanLocalDay(tMs: number): LocalDay {
  const local = new Date(tMs + germanUtcOffsetMinutes(tMs) * MS_PER_MINUTE);
  const year = local.getUTCFullYear();
  const month = local.getUTCMonth() + 1;
  const day = local.getUTCDate();
  const dayOfYear = Math.round((Date.UTC(year, month - 1, day) - Date.UTC(year, 0, 1)) / MS_PER_DAY) + 1;
  const quarter = Math.floor((local.getUTCHours() * 60 + local.getUTCMinutes()) / 15);
  return { year, month, day, dayOfYear, quarter };
}

/**
 * Characteristic points, W per 1,000 kWh/a at each full local hour 0…23 (see the module comment:
 * a shape, not the published values). Winter: morning peak 7–8 h, lunch 12 h, evening peak 18–20 h.
 * Summer: lower, the evening peak later (20–21 h) and flatter. Weekends: later mornings, a midday
 * cooking peak, strongest on Sundays.
 */
const POINTS: Readonly<Record<"winter" | "summer", Readonly<Record<DayType, readonly number[]>>>> = {
  winter: {
    workday: [75, 60, 50, 45, 44, 48, 70, 120, 135, 130, 125, 130, 150, 145, 130, 122, 130, 170, 215, 230, 215, 190, 155, 110],
    saturday: [71, 60, 50, 46, 44, 45, 52, 75, 115, 150, 170, 180, 185, 170, 150, 140, 145, 175, 210, 220, 205, 185, 160, 120],
    sunday: [85, 70, 58, 50, 46, 45, 48, 58, 90, 140, 180, 215, 230, 195, 155, 140, 140, 160, 195, 205, 190, 170, 140, 105],
  },
  summer: {
    workday: [88, 68, 57, 51, 48, 52, 72, 110, 121, 119, 119, 127, 143, 138, 121, 112, 116, 127, 143, 154, 165, 176, 160, 121],
    saturday: [94, 73, 59, 53, 50, 50, 55, 75, 110, 143, 160, 170, 176, 160, 138, 127, 127, 138, 152, 160, 165, 174, 160, 127],
    sunday: [105, 82, 66, 57, 52, 50, 52, 61, 88, 132, 165, 198, 215, 182, 143, 130, 127, 134, 148, 156, 163, 170, 152, 116],
  },
};

/** 96 quarter-hour values from 24 hourly points: linear between them, taken at each quarter's middle, wrapping over midnight. */
function quarterValues(points: readonly number[]): Float64Array {
  const out = new Float64Array(QUARTERS_PER_DAY);
  for (let q = 0; q < QUARTERS_PER_DAY; q++) {
    const hour = (q * 15 + 7.5) / 60;
    const i = Math.floor(hour);
    const f = hour - i;
    out[q] = points[i]! * (1 - f) + points[(i + 1) % 24]! * f;
  }
  return out;
}

const DAY_TYPES: readonly DayType[] = ["workday", "saturday", "sunday"];
const SHAPES: ReadonlyMap<string, Float64Array> = (() => {
  const shapes = new Map<string, Float64Array>();
  for (const dayType of DAY_TYPES) {
    const winter = quarterValues(POINTS.winter[dayType]);
    const summer = quarterValues(POINTS.summer[dayType]);
    shapes.set(`winter/${dayType}`, winter);
    shapes.set(`summer/${dayType}`, summer);
    shapes.set(
      `transition/${dayType}`,
      winter.map((w, q) => (w + summer[q]!) / 2),
    );
  }
  return shapes;
})();

function shape(season: Season, dayType: DayType): Float64Array {
  return SHAPES.get(`${season}/${dayType}`)!;
}

/** Years whose normalization is cached; a run spans at most two (31 days), tests a few more. */
const NORMALIZATION_CACHE_YEARS_MAX = 64;
const normalization = new Map<number, number>();

/** The factor that makes `year` (German local calendar) sum to exactly PROFILE_ANNUAL_KWH with dynamization. */
function normalizationOf(year: number): number {
  const cached = normalization.get(year);
  if (cached !== undefined) return cached;
  let wh = 0;
  const days = Math.round((Date.UTC(year + 1, 0, 1) - Date.UTC(year, 0, 1)) / MS_PER_DAY);
  for (let d = 1; d <= days; d++) {
    const date = new Date(Date.UTC(year, 0, d));
    const month = date.getUTCMonth() + 1;
    const day = date.getUTCDate();
    const values = shape(seasonOf(month, day), dayTypeOf(year, month, day));
    let dayWh = 0;
    for (let q = 0; q < QUARTERS_PER_DAY; q++) dayWh += values[q]! / 4;
    wh += dayWh * dynamizationFactor(d);
  }
  const factor = (PROFILE_ANNUAL_KWH * 1000) / wh;
  if (normalization.size >= NORMALIZATION_CACHE_YEARS_MAX) normalization.clear();
  normalization.set(year, factor);
  return factor;
}

/** H0 power in W for a household using `annualKwh` a year, at instant tMs: constant within each local quarter hour, as the profile is. */
export function h0PowerW(tMs: number, annualKwh: number): number {
  const local = germanLocalDay(tMs);
  const values = shape(seasonOf(local.month, local.day), dayTypeOf(local.year, local.month, local.day));
  return values[local.quarter]! * dynamizationFactor(local.dayOfYear) * normalizationOf(local.year) * (annualKwh / PROFILE_ANNUAL_KWH);
}

/** Standard deviation of the multiplicative load noise: ±15 % is two standard deviations. */
export const LOAD_NOISE_SIGMA = 0.075;
/** Correlation time of the noise: appliances run for tens of minutes, so the deviation persists about that long. */
export const LOAD_NOISE_CORRELATION_SECONDS = 30 * 60;
/** The noise stays within four standard deviations of 1: load never goes negative, extremes stay plausible. */
const NOISE_CLAMP_SIGMAS = 4;

/**
 * AR(1) noise around 1 (a discretized Ornstein–Uhlenbeck process): x ← φx + σ√(1−φ²)·z with
 * φ = exp(−Δt/τ), so its spread and correlation time do not depend on the step. Starts from its
 * stationary distribution.
 */
export class Ar1Noise {
  private x: number;
  private readonly phi: number;
  private readonly innovation: number;
  private readonly clamp: number;

  constructor(
    private readonly rng: Rng,
    stepSeconds: number,
    sigma = LOAD_NOISE_SIGMA,
    correlationSeconds = LOAD_NOISE_CORRELATION_SECONDS,
  ) {
    this.phi = Math.exp(-stepSeconds / correlationSeconds);
    this.innovation = sigma * Math.sqrt(1 - this.phi * this.phi);
    this.clamp = NOISE_CLAMP_SIGMAS * sigma;
    this.x = sigma * rng.normal();
  }

  /** The factor for the next step, in [1 − 4σ, 1 + 4σ]. */
  next(): number {
    this.x = this.phi * this.x + this.innovation * this.rng.normal();
    return 1 + Math.max(-this.clamp, Math.min(this.clamp, this.x));
  }
}

/** Something that draws power: queried once per step, in time order. */
export interface PowerSource {
  /** Mean power over the step that starts at tMs, W (float; the household rounds). */
  powerW(tMs: number): number;
}

/** H0 scaled to `annualKwh`, times AR(1) noise seeded per household. */
export class H0Load implements PowerSource {
  private readonly noise: Ar1Noise;
  private cachedQuarter = Number.NaN;
  private cachedW = 0;

  constructor(
    private readonly annualKwh: number,
    seed: number,
    stepSeconds: number,
  ) {
    this.noise = new Ar1Noise(rngFor(seed, "load-noise"), stepSeconds);
  }

  powerW(tMs: number): number {
    // Local quarter hours start on UTC quarter hours (offsets are whole hours): compute once per quarter.
    const quarter = Math.floor(tMs / MS_PER_QUARTER);
    if (quarter !== this.cachedQuarter) {
      this.cachedQuarter = quarter;
      this.cachedW = h0PowerW(tMs, this.annualKwh);
    }
    return this.cachedW * this.noise.next();
  }
}

/**
 * A schedule of constant powers (UTC time of day, [from, to), summed where entries overlap), with
 * no noise: the exact scenarios of hand-computed tests rely on it. A step takes the power at its
 * start, so an entry boundary inside a reading step takes effect from the next step.
 */
export class SchedulePower implements PowerSource {
  private readonly entries: readonly { readonly fromMs: number; readonly toMs: number; readonly watts: number }[];

  constructor(schedule: readonly ScheduleEntry[]) {
    this.entries = schedule.map((e) => ({ fromMs: minutesOfDay(e.from) * MS_PER_MINUTE, toMs: minutesOfDay(e.to) * MS_PER_MINUTE, watts: e.watts }));
  }

  powerW(tMs: number): number {
    const ofDay = ((tMs % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
    let watts = 0;
    for (const e of this.entries) if (ofDay >= e.fromMs && ofDay < e.toMs) watts += e.watts;
    return watts;
  }
}
