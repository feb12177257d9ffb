/**
 * Readings as an envelope body: rows, or the same rows as columns when that is possible.
 *
 * Rows are what a device means: a CBOR array of readings such as
 * `[{t, importWh, exportWh, powerW, voltageV}, …]`. Written as rows, 60 one-second meter readings
 * take 3,662 bytes, 61 a reading, more than half of them the five key names repeated in every
 * reading. The column form says the same in 346 bytes (devices/simulate.ts's readings; the
 * benchmark's envelopes):
 *
 *     {t0: first t, dtMs: step, cols: {name: [first value, Δ1, Δ2, …], …}}
 *
 * reading i has t = t0 + i·dtMs and, in each column, the first value plus the differences up to
 * i. Counters that grow by a few Wh a second and values that move a little cost one or two bytes a
 * reading. It is plain RFC 8949 data (maps, arrays, integers), so any CBOR decoder on a meter, a
 * PLC or a server reads it; decoding it back to rows is a running sum. A device pays for every
 * byte on a metered link, and so does everything after the gateway: the log, the work package
 * (W_B), its hashing and erasure coding, and the availability store.
 *
 * `encodeReadings` writes the column form when the readings allow it exactly (see `columnsOf`)
 * and rows otherwise; `rowsOf` (and `decodeBody` in ./envelope.ts, which decodes and calls it)
 * gives rows back for either. Browser-safe: no Node built-ins.
 */
import { encodeCbor } from "./cbor.ts";

/** The column form on the wire (integers as JS numbers here; ./cbor.ts writes those ≥ 2^32 as 8-byte integers). */
export interface ReadingColumns {
  readonly t0: number;
  readonly dtMs: number;
  /** Per field (every field of the readings but t): the first value, then each reading's difference from the one before. */
  readonly cols: Record<string, number[]>;
}

/** The readings' time field: ms since the epoch. */
const TIME_KEY = "t";
/** A key that cannot be a column: assigning it on a plain object sets the object's prototype. */
const UNSAFE_KEY = "__proto__";

/**
 * The body of `readings` (any CBOR value): the column form when `columnsOf` finds one, else the
 * value as it is (ordinarily rows).
 */
export function encodeReadings(readings: unknown): Uint8Array {
  return encodeCbor(columnsOf(readings) ?? readings);
}

/**
 * The column form of `readings`, or null when it cannot say them exactly: when they are not an
 * array of at least two plain objects with the same keys, among them t and at least one other
 * (none of them `__proto__`); when a value is not a safe integer (a float, a string, a bigint, a
 * nested value); when t does not advance by one step of at least 1 ms; or when a difference is
 * not a safe integer.
 */
export function columnsOf(readings: unknown): ReadingColumns | null {
  if (!Array.isArray(readings) || readings.length < 2) return null;
  const first: unknown = readings[0];
  if (!isPlainObject(first) || !(TIME_KEY in first)) return null;
  const keys = Object.keys(first).filter((k) => k !== TIME_KEY);
  // "__proto__" as a plain object's key would set its prototype instead, and the column be lost.
  if (keys.length === 0 || keys.includes(UNSAFE_KEY)) return null;
  const t0 = first[TIME_KEY];
  const t1 = (readings[1] as Record<string, unknown> | null)?.[TIME_KEY];
  if (!Number.isSafeInteger(t0) || !Number.isSafeInteger(t1)) return null;
  const dtMs = (t1 as number) - (t0 as number);
  if (dtMs < 1) return null;
  const cols: Record<string, number[]> = {};
  for (const k of keys) cols[k] = [];
  let previous: Record<string, unknown> | null = null;
  for (let i = 0; i < readings.length; i++) {
    const reading: unknown = readings[i];
    if (!isPlainObject(reading) || Object.keys(reading).length !== keys.length + 1) return null;
    if (reading[TIME_KEY] !== (t0 as number) + i * dtMs) return null;
    for (const k of keys) {
      const value = reading[k];
      if (!Number.isSafeInteger(value)) return null; // also absent keys
      const delta = previous === null ? (value as number) : (value as number) - (previous[k] as number);
      if (!Number.isSafeInteger(delta)) return null;
      cols[k]!.push(delta);
    }
    previous = reading;
  }
  if (!Number.isSafeInteger((t0 as number) + (readings.length - 1) * dtMs)) return null;
  return { t0: t0 as number, dtMs, cols };
}

/**
 * Rows of a decoded body: the column form turned back into readings (t first, then the columns
 * in their order), at most the first `rowsMax` of them, anything else as it is. A 64 KiB body
 * can hold ~65,000 one-byte differences, so a caller that uses only some rows (the gateway's
 * InfluxDB writer takes up to 3,600 an envelope) bounds what is built.
 */
export function rowsOf(value: unknown, rowsMax = Number.POSITIVE_INFINITY): unknown {
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 3 || !("t0" in value) || !("dtMs" in value) || !("cols" in value)) return value;
  const { t0, dtMs, cols } = value;
  if (!Number.isSafeInteger(t0) || !Number.isSafeInteger(dtMs) || (dtMs as number) < 1 || !isPlainObject(cols)) return value;
  const names = Object.keys(cols);
  // A `t` column would overwrite the times t0 + i·dtMs say: not the column form (columnsOf never writes one).
  if (names.includes(UNSAFE_KEY) || names.includes(TIME_KEY)) return value;
  const columns = names.map((k) => cols[k]);
  const n = Array.isArray(columns[0]) ? columns[0].length : -1;
  if (n < 1 || !columns.every((c) => Array.isArray(c) && c.length === n && c.every((v) => Number.isSafeInteger(v)))) return value;
  if (!Number.isSafeInteger((t0 as number) + (n - 1) * (dtMs as number))) return value;
  const rows: Record<string, number>[] = [];
  const sums = new Array<number>(names.length).fill(0);
  for (let i = 0; i < Math.min(n, rowsMax); i++) {
    const row: Record<string, number> = { [TIME_KEY]: (t0 as number) + i * (dtMs as number) };
    for (let c = 0; c < names.length; c++) {
      const sum = sums[c]! + (columns[c] as number[])[i]!;
      if (!Number.isSafeInteger(sum)) return value;
      sums[c] = sum;
      row[names[c]!] = sum;
    }
    rows.push(row);
  }
  return rows;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) && Object.getPrototypeOf(v) === Object.prototype;
}
