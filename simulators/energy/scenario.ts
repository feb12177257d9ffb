/**
 * The scenario file of `jamgate sim energy`: which households (load, PV, battery, strategy,
 * forecaster), the market (mode, interval, grid prices) and the clock (start, duration).
 *
 * Validated in two passes, every problem reported with its JSON Pointer (RFC 6901) path, e.g.
 * `/households/2/pv/kWp: must be >= 0`: a JSON Schema (draft 7, checked by ajv) for shapes, types,
 * integers and bounds; then the checks a schema cannot express (dates, divisibility, orderings,
 * unique ids, overlapping fields). Money in micros per kWh, energy in Wh, power in W: integers.
 */
import { Ajv, type ErrorObject } from "ajv";
import type { GridPrices } from "../../services/energy-trading/types.ts";
import { Rng, derive } from "./random.ts";

export type MarketMode = "pay-as-clear" | "pay-as-bid" | "one-sided";
export const MARKET_MODES: readonly MarketMode[] = ["pay-as-clear", "pay-as-bid", "one-sided"];

/** Constant power from `from` to `to` (UTC time of day, "HH:MM"; `to` may be "24:00"), 0 elsewhere. */
export interface ScheduleEntry {
  readonly from: string;
  readonly to: string;
  readonly watts: number;
}
export type LoadSpec = { readonly profile: "h0"; readonly annualKwh: number } | { readonly schedule: readonly ScheduleEntry[] };
export type PvSpec = { readonly kWp: number } | { readonly schedule: readonly ScheduleEntry[] };
export type StrategyName = "zi" | "zip" | "forecast";
export const STRATEGY_NAMES: readonly StrategyName[] = ["zi", "zip", "forecast"];
export type StrategySpec = StrategyName | { readonly bidMicrosPerKwh: readonly [number, number]; readonly askMicrosPerKwh: readonly [number, number] };
export type ForecasterName = "persistence" | "ridge" | "perfect";
export const FORECASTER_NAMES: readonly ForecasterName[] = ["persistence", "ridge", "perfect"];

export interface BatterySpec {
  readonly capacityWh: number;
  readonly powerW: number;
  /** Round trip, AC to AC; default BATTERY_EFFICIENCY_PERCENT_DEFAULT. */
  readonly efficiencyPercent?: number;
}

export interface HouseholdSpec {
  readonly id: string;
  readonly load: LoadSpec;
  readonly pv?: PvSpec;
  readonly battery?: BatterySpec;
  /** Default "zi". */
  readonly strategy?: StrategySpec;
  /** Default: persistence for zi, ridge otherwise. */
  readonly forecaster?: ForecasterName;
}

/** The grid as counterparty: what a household pays to import and is paid to export (feed-in); the service's type. */
export type { GridPrices };

export interface Scenario {
  readonly name: string;
  readonly seed: number;
  /** ISO 8601; interval 0 starts here. */
  readonly start: string;
  readonly durationMinutes: number;
  readonly marketIntervalMinutes: number;
  readonly market: MarketMode;
  readonly grid: GridPrices;
  readonly households: readonly HouseholdSpec[];
  /** Degrees north; default LATITUDE_DEFAULT_DEG (Berlin). */
  readonly latitude?: number;
  /** Seconds between meter readings, dividing the market interval; default READING_INTERVAL_SECONDS_DEFAULT. */
  readonly readingIntervalSeconds?: number;
}

/** The energy-trading service registers at most this many households (services/energy-trading `HOUSEHOLDS_MAX`). */
export const HOUSEHOLDS_MAX = 10_000;
/** 31 days: a month of readings; the CLI's `--hours` stops there too, and every model keeps its per-interval truth in memory. */
export const DURATION_MINUTES_MAX = 31 * 24 * 60;
/**
 * Households × intervals a run may have: the runner keeps each household's truth per interval,
 * and reads every ledger entry back for the KPIs and the report (a few per household and interval,
 * ~0.5 KB in all): 250,000 is ~150 MB. 50 households fit 31 days; 10,000 households fit 6 hours.
 */
export const HOUSEHOLD_INTERVALS_MAX = 250_000;
/** One day: intervals must tile a day (marketIntervalMinutes divides 1,440) so slots of the day line up. */
export const MARKET_INTERVAL_MINUTES_MAX = 24 * 60;
/** Highest price in micros per kWh: 10 currency units per kWh, the service's `PRICE_MICROS_PER_KWH_MAX`. */
export const PRICE_MICROS_PER_KWH_MAX = 10_000_000;
/** Ids name households in reports and ledgers: short, lower-case, URL- and file-safe. */
export const HOUSEHOLD_ID_PATTERN = "^[a-z0-9-]{1,32}$";
/** One entry per quarter hour is as fine as any published load profile gets. */
export const SCHEDULE_ENTRIES_MAX = 96;
/** A German house connection is at most 3 × 63 A ≈ 43 kW; 100 kW leaves room for small businesses. */
export const WATTS_MAX = 100_000;
/** Residential rooftop PV is rarely above 30 kWp; 100 kWp keeps farms and barns possible. */
export const KWP_MAX = 100;
/** A household uses 1,500–6,000 kWh a year; 100,000 covers heat pumps, cars and small businesses. */
export const ANNUAL_KWH_MAX = 100_000;
/** 1 MWh of storage is far beyond any home battery (5–20 kWh). */
export const BATTERY_CAPACITY_WH_MAX = 1_000_000;
/** Inverter power, same bound as a schedule's watts. */
export const BATTERY_POWER_W_MAX = WATTS_MAX;
/** Lithium-ion home batteries reach 85–95 % round trip (AC to AC); 90 % is typical. */
export const BATTERY_EFFICIENCY_PERCENT_DEFAULT = 90;
/** Berlin: the BDEW profile describes German households. */
export const LATITUDE_DEFAULT_DEG = 52.5;
/** Smart meter gateways commonly report every few seconds to minutes; 10 s keeps envelopes small and intervals exact. */
export const READING_INTERVAL_SECONDS_DEFAULT = 10;
/** Readings at least every hour: the service takes at most 3,600 readings per envelope, and intervals need several. */
export const READING_INTERVAL_SECONDS_MAX = 3_600;
/** Scenario names appear in report titles: one line. */
export const NAME_LENGTH_MAX = 200;

const TIME_OF_DAY = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

const scheduleSchema = {
  type: "array",
  maxItems: SCHEDULE_ENTRIES_MAX,
  items: {
    type: "object",
    required: ["from", "to", "watts"],
    additionalProperties: false,
    properties: {
      from: { type: "string", pattern: TIME_OF_DAY },
      to: { type: "string", pattern: TIME_OF_DAY },
      watts: { type: "integer", minimum: 0, maximum: WATTS_MAX },
    },
  },
} as const;

const priceRangeSchema = {
  type: "array",
  minItems: 2,
  maxItems: 2,
  items: { type: "integer", minimum: 0, maximum: PRICE_MICROS_PER_KWH_MAX },
} as const;

const priceSchema = { type: "integer", minimum: 0, maximum: PRICE_MICROS_PER_KWH_MAX } as const;

/** The scenario's JSON Schema (draft 7). `if`/`then`/`else` rather than `oneOf` for the unions, so a bad branch reports its own errors, not "must match exactly one schema". */
export const SCENARIO_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  required: ["name", "seed", "start", "durationMinutes", "marketIntervalMinutes", "market", "grid", "households"],
  additionalProperties: false,
  properties: {
    name: { type: "string", minLength: 1, maxLength: NAME_LENGTH_MAX },
    seed: { type: "integer", minimum: 0, maximum: 2 ** 32 - 1 },
    start: { type: "string", maxLength: 40 },
    durationMinutes: { type: "integer", minimum: 1, maximum: DURATION_MINUTES_MAX },
    marketIntervalMinutes: { type: "integer", minimum: 1, maximum: MARKET_INTERVAL_MINUTES_MAX },
    market: { type: "string", enum: MARKET_MODES },
    grid: {
      type: "object",
      required: ["importPriceMicrosPerKwh", "exportPriceMicrosPerKwh"],
      additionalProperties: false,
      properties: { importPriceMicrosPerKwh: priceSchema, exportPriceMicrosPerKwh: priceSchema },
    },
    latitude: { type: "number", minimum: -90, maximum: 90 },
    readingIntervalSeconds: { type: "integer", minimum: 1, maximum: READING_INTERVAL_SECONDS_MAX },
    households: {
      type: "array",
      minItems: 1,
      maxItems: HOUSEHOLDS_MAX,
      items: {
        type: "object",
        required: ["id", "load"],
        additionalProperties: false,
        properties: {
          id: { type: "string", pattern: HOUSEHOLD_ID_PATTERN },
          load: {
            type: "object",
            if: { type: "object", required: ["schedule"] },
            then: { type: "object", required: ["schedule"], additionalProperties: false, properties: { schedule: scheduleSchema } },
            else: {
              type: "object",
              required: ["profile", "annualKwh"],
              additionalProperties: false,
              properties: { profile: { type: "string", enum: ["h0"] }, annualKwh: { type: "number", minimum: 0, maximum: ANNUAL_KWH_MAX } },
            },
          },
          pv: {
            type: "object",
            if: { type: "object", required: ["schedule"] },
            then: { type: "object", required: ["schedule"], additionalProperties: false, properties: { schedule: scheduleSchema } },
            else: { type: "object", required: ["kWp"], additionalProperties: false, properties: { kWp: { type: "number", minimum: 0, maximum: KWP_MAX } } },
          },
          battery: {
            type: "object",
            required: ["capacityWh", "powerW"],
            additionalProperties: false,
            properties: {
              capacityWh: { type: "integer", minimum: 1, maximum: BATTERY_CAPACITY_WH_MAX },
              powerW: { type: "integer", minimum: 1, maximum: BATTERY_POWER_W_MAX },
              efficiencyPercent: { type: "integer", minimum: 1, maximum: 100 },
            },
          },
          strategy: {
            if: { type: "string" },
            then: { type: "string", enum: STRATEGY_NAMES },
            else: {
              type: "object",
              required: ["bidMicrosPerKwh", "askMicrosPerKwh"],
              additionalProperties: false,
              properties: { bidMicrosPerKwh: priceRangeSchema, askMicrosPerKwh: priceRangeSchema },
            },
          },
          forecaster: { type: "string", enum: FORECASTER_NAMES },
        },
      },
    },
  },
} as const;

let compiled: ReturnType<Ajv["compile"]> | null = null;
function validator(): ReturnType<Ajv["compile"]> {
  compiled ??= new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile(SCENARIO_SCHEMA);
  return compiled;
}

/** Patterns said in words. */
const PATTERN_WORDS: Readonly<Record<string, string>> = {
  [TIME_OF_DAY]: 'must be a time of day "HH:MM" from 00:00 to 24:00',
  [HOUSEHOLD_ID_PATTERN]: 'must be 1 to 32 characters of a-z, 0-9 and "-"',
};

/** One line per ajv error: "path: message", with the path of the offending property itself where ajv gives its parent. */
function formatAjvError(e: ErrorObject): string | null {
  // `if` only says which branch failed; the branch's own errors follow and say why.
  if (e.keyword === "if") return null;
  const at = e.instancePath === "" ? "/" : e.instancePath;
  const child = (name: string) => `${e.instancePath}/${name}`;
  switch (e.keyword) {
    case "required":
      return `${child(String(e.params.missingProperty))}: is required`;
    case "additionalProperties":
      return `${child(String(e.params.additionalProperty))}: is not a known property`;
    case "pattern":
      return `${at}: ${PATTERN_WORDS[String(e.params.pattern)] ?? `must match ${String(e.params.pattern)}`}`;
    case "enum":
      return `${at}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

/** Minutes since midnight of "HH:MM" (already matched by the schema's pattern). */
export function minutesOfDay(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

function checkSchedule(schedule: readonly ScheduleEntry[], path: string, errors: string[]): void {
  schedule.forEach((entry, i) => {
    if (minutesOfDay(entry.from) >= minutesOfDay(entry.to)) errors.push(`${path}/${i}: from ${entry.from} must be before to ${entry.to}`);
  });
}

/** An ISO 8601 date-time with a zone (RFC 3339 §5.6 profile) naming a real calendar day. */
function isIsoDateTime(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/.exec(text);
  if (m === null || Number.isNaN(Date.parse(text))) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth;
}

/** The checks a JSON Schema cannot express; `s` has passed the schema. */
function semanticErrors(s: Scenario): string[] {
  const errors: string[] = [];
  if (!isIsoDateTime(s.start)) {
    errors.push(`/start: must be an ISO 8601 date-time with a zone, e.g. "2026-06-21T00:00:00Z" (got ${JSON.stringify(s.start)})`);
  }
  if (MARKET_INTERVAL_MINUTES_MAX % s.marketIntervalMinutes !== 0)
    errors.push(`/marketIntervalMinutes: must divide 1440 (a day), got ${s.marketIntervalMinutes}`);
  if (s.durationMinutes % s.marketIntervalMinutes !== 0)
    errors.push(`/durationMinutes: must be a multiple of marketIntervalMinutes (${s.marketIntervalMinutes}), got ${s.durationMinutes}`);
  const householdIntervals = s.households.length * Math.ceil(s.durationMinutes / s.marketIntervalMinutes);
  if (householdIntervals > HOUSEHOLD_INTERVALS_MAX) {
    errors.push(
      `/households: ${s.households.length} households × ${Math.ceil(s.durationMinutes / s.marketIntervalMinutes)} intervals = ${householdIntervals} > ${HOUSEHOLD_INTERVALS_MAX} (HOUSEHOLD_INTERVALS_MAX, the memory a run may take); fewer households or a shorter run`,
    );
  }
  if (s.readingIntervalSeconds !== undefined && (s.marketIntervalMinutes * 60) % s.readingIntervalSeconds !== 0) {
    errors.push(
      `/readingIntervalSeconds: must divide the market interval (${s.marketIntervalMinutes * 60} s), so readings close every interval exactly; got ${s.readingIntervalSeconds}`,
    );
  }
  if (s.grid.importPriceMicrosPerKwh < s.grid.exportPriceMicrosPerKwh) {
    errors.push(`/grid/importPriceMicrosPerKwh: must be >= exportPriceMicrosPerKwh (${s.grid.exportPriceMicrosPerKwh}), got ${s.grid.importPriceMicrosPerKwh}`);
  }
  const seen = new Map<string, number>();
  s.households.forEach((h, i) => {
    const path = `/households/${i}`;
    const first = seen.get(h.id);
    if (first !== undefined) errors.push(`${path}/id: ${JSON.stringify(h.id)} is already the id of /households/${first}`);
    else seen.set(h.id, i);
    if ("schedule" in h.load) checkSchedule(h.load.schedule, `${path}/load/schedule`, errors);
    if (h.pv !== undefined && "schedule" in h.pv) checkSchedule(h.pv.schedule, `${path}/pv/schedule`, errors);
    if (h.strategy !== undefined && typeof h.strategy === "object") {
      for (const key of ["bidMicrosPerKwh", "askMicrosPerKwh"] as const) {
        const [from, to] = h.strategy[key];
        if (from > to) errors.push(`${path}/strategy/${key}: from ${from} must be <= to ${to}`);
      }
    }
  });
  return errors;
}

/** Validates a parsed JSON value as a scenario; on failure every problem, each with its JSON path. */
export function parseScenario(value: unknown): { ok: true; scenario: Scenario } | { ok: false; errors: string[] } {
  const validate = validator();
  if (!validate(value)) {
    const errors = (validate.errors ?? []).map(formatAjvError).filter((e): e is string => e !== null);
    return { ok: false, errors: [...new Set(errors)] };
  }
  const scenario = value as Scenario;
  const errors = semanticErrors(scenario);
  return errors.length === 0 ? { ok: true, scenario } : { ok: false, errors };
}

/** Intervals in the scenario. */
export function intervalCount(scenario: Scenario): number {
  return scenario.durationMinutes / scenario.marketIntervalMinutes;
}

/** Market intervals per day. */
export function intervalsPerDay(scenario: Scenario): number {
  return MARKET_INTERVAL_MINUTES_MAX / scenario.marketIntervalMinutes;
}

export interface DefaultScenarioOptions {
  readonly households: number;
  readonly hours: number;
  readonly seed: number;
  readonly market: MarketMode;
  readonly start?: string;
}

/** Midsummer, so PV matters. */
export const DEFAULT_START = "2026-06-21T00:00:00Z";
/** Share of generated households with PV: a community where local trade matters (a majority of prosumers), not a survey figure. */
const PV_SHARE = 0.6;
/** Share of PV households with a battery: a minority, so the market still sees midday surplus. */
const BATTERY_SHARE_OF_PV = 0.2;

/**
 * A generated community: ~60 % with PV (3–10 kWp), ~20 % of those with a battery (5–13.5 kWh,
 * 2.5–5 kW), H0 loads of 2,500–6,000 kWh a year, strategies spread evenly over zi / zip /
 * forecast (persistence forecasts for zi, ridge for the others). Ids h001, h002, …; all draws from
 * `derive(seed, "scenario")`, so the same options give the same scenario.
 */
export function defaultScenario(options: DefaultScenarioOptions): Scenario {
  const rng = new Rng(derive(options.seed, "scenario"));
  const width = Math.max(3, String(options.households).length);
  const households: HouseholdSpec[] = [];
  // Strategies in turn from a seeded offset: an even spread whatever the count.
  const strategyOffset = rng.int(0, STRATEGY_NAMES.length - 1);
  for (let i = 0; i < options.households; i++) {
    const annualKwh = 10 * rng.int(250, 600);
    const hasPv = rng.chance(PV_SHARE);
    const kWp = rng.int(30, 100) / 10;
    const hasBattery = hasPv && rng.chance(BATTERY_SHARE_OF_PV);
    const capacityWh = 100 * rng.int(50, 135);
    const powerW = 100 * rng.int(25, 50);
    const strategy = STRATEGY_NAMES[(i + strategyOffset) % STRATEGY_NAMES.length]!;
    households.push({
      id: `h${String(i + 1).padStart(width, "0")}`,
      load: { profile: "h0", annualKwh },
      ...(hasPv ? { pv: { kWp } } : {}),
      ...(hasBattery ? { battery: { capacityWh, powerW } } : {}),
      strategy,
      forecaster: strategy === "zi" ? "persistence" : "ridge",
    });
  }
  const scenario: Scenario = {
    name: `${options.households} households, ${options.hours} h, ${options.market}, seed ${options.seed}`,
    seed: options.seed,
    start: options.start ?? DEFAULT_START,
    durationMinutes: options.hours * 60,
    marketIntervalMinutes: 15,
    market: options.market,
    grid: { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 },
    households,
  };
  const parsed = parseScenario(scenario);
  if (!parsed.ok) throw new RangeError(`defaultScenario(${JSON.stringify(options)}): ${parsed.errors.join("; ")}`);
  return parsed.scenario;
}
