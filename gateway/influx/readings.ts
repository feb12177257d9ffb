/**
 * Device readings (the decoded CBOR body of an envelope, devices/envelope.ts) as InfluxDB points.
 * Pure: no clock, no I/O; never throws on any input.
 *
 * One reading is a JSON-like object, e.g. `{ t: 1718000000000, energyWh: 1520, phase: "L1" }`:
 * - integer values (safe-integer numbers, or int64 bigints as cbor-x decodes large ones) become
 *   integer fields (bigint, written `1520i`): energy and money are integers in their smallest
 *   unit (house style), and one type per field avoids InfluxDB's "field type conflict";
 * - `timeMs` or else `t` (ms since the Unix epoch) is the point's time; without one, the
 *   envelope's time (`fallbackTimeMs`);
 * - strings become tags only under the keys in READING_TAG_KEYS, with a short plain value;
 * - anything else (floats, other strings, nulls, nested values, odd keys) is skipped and counted.
 * A reading that is not a plain object, has a bad time, or yields no field is skipped whole.
 * Measurement: the envelope kind (e.g. `meter.reading`); tag `device`: the device id.
 */
import { INT64_MAX, INT64_MIN, type InfluxPoint, TIME_MS_MAX } from "./point.ts";
import { READINGS_PER_ENVELOPE_MAX } from "../../services/energy-trading/types.ts";

/** String keys kept as tags: low-cardinality labels. Free-form strings would make a series per value. */
export const READING_TAG_KEYS: ReadonlySet<string> = new Set(["phase", "channel", "direction", "unit"]);
/** Longest tag value kept from a reading: labels like `L1`, `import`, `kWh`. */
export const READING_TAG_CHARS_MAX = 64;
/** Most fields taken from one reading: a meter reading has a handful; more is not a reading. */
export const READING_FIELDS_MAX = 32;
/**
 * Most readings taken from one envelope: as many as a meter's envelope may carry on the energy
 * service (an hour of one-second readings), so no reading the chain settles is missing from
 * InfluxDB; one value under one name, the service's.
 */
export { READINGS_PER_ENVELOPE_MAX };

/** Field keys: an identifier, so it needs no escaping and cannot collide with `time` handling. */
const FIELD_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Tag values kept: plain label characters only. */
const TAG_VALUE = /^[A-Za-z0-9_.:+-]+$/;
/** Keys that never become fields: the time, and names the point already uses. */
const RESERVED_KEYS: ReadonlySet<string> = new Set(["t", "timeMs", "time", "device", "__proto__"]);

export interface ReadingsAsPoints {
  readonly points: InfluxPoint[];
  /** Readings left out whole (not an object, bad time, no fields, too many fields or readings). */
  readonly skippedReadings: number;
  /** Values left out of readings that were kept. */
  readonly skippedFields: number;
}

export function readingsToPoints(deviceId: string, kind: string, readings: readonly unknown[], fallbackTimeMs: number): ReadingsAsPoints {
  const points: InfluxPoint[] = [];
  let skippedReadings = 0;
  let skippedFields = 0;
  if (!Array.isArray(readings)) return { points, skippedReadings: 1, skippedFields };
  const n = Math.min(readings.length, READINGS_PER_ENVELOPE_MAX);
  skippedReadings += readings.length - n;
  for (let i = 0; i < n; i++) {
    const reading: unknown = readings[i];
    if (!isPlainObject(reading)) {
      skippedReadings += 1;
      continue;
    }
    const timestampMs = timeOf(reading, fallbackTimeMs);
    if (timestampMs === null) {
      skippedReadings += 1;
      continue;
    }
    const tags: Record<string, string> = { device: deviceId };
    const fields: Record<string, bigint> = {};
    let fieldCount = 0;
    let skippedHere = 0;
    for (const key of Object.keys(reading)) {
      if (key === "t" || key === "timeMs") continue;
      const value = reading[key];
      if (typeof value === "string") {
        if (READING_TAG_KEYS.has(key) && value.length <= READING_TAG_CHARS_MAX && TAG_VALUE.test(value)) tags[key] = value;
        else skippedHere += 1;
        continue;
      }
      const integer = asInteger(value);
      if (integer === null || RESERVED_KEYS.has(key) || !FIELD_KEY.test(key)) {
        skippedHere += 1;
        continue;
      }
      fields[key] = integer;
      fieldCount += 1;
    }
    if (fieldCount === 0 || fieldCount > READING_FIELDS_MAX) {
      skippedReadings += 1;
      continue;
    }
    skippedFields += skippedHere;
    points.push({ measurement: kind, tags, fields, timestampMs });
  }
  return { points, skippedReadings, skippedFields };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The reading's time in ms: `timeMs`, else `t`, else the fallback; null when the one given is not a time InfluxDB can store. */
function timeOf(reading: Record<string, unknown>, fallbackTimeMs: number): number | null {
  const given = "timeMs" in reading ? reading.timeMs : "t" in reading ? reading.t : fallbackTimeMs;
  const integer = asInteger(given);
  if (integer === null || integer < 0n || integer > BigInt(TIME_MS_MAX)) return null;
  return Number(integer);
}

function asInteger(v: unknown): bigint | null {
  if (typeof v === "number") return Number.isSafeInteger(v) ? BigInt(v) : null;
  if (typeof v === "bigint") return v >= INT64_MIN && v <= INT64_MAX ? v : null;
  return null;
}
