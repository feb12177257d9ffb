/**
 * Envelope bodies of the energy-trading service, device → refine: a strict, small CBOR reader
 * (RFC 8949) for the body kinds the service accepts, `meter.reading` (and `meter.reset`, one
 * reading in the same form) and `agent.order`.
 *
 * Hand-written rather than cbor-x because it runs inside refine, which must be deterministic,
 * integer-only, never throw on garbage and bound its work: cbor-x decodes floats silently,
 * allocates an object for every map and string, and throws on malformed input. This reader
 * walks the bytes once, allocates only the values it returns, and answers a coded error.
 *
 * What it accepts (RFC 8949 §3.1 major types):
 * - 0 unsigned integers and 1 negative integers up to 2^53 − 1 in magnitude (larger → "out-of-range");
 * - 3 text strings of at most TEXT_BYTES_MAX bytes, valid UTF-8 (§3.1; invalid → "malformed");
 * - 4 arrays and 5 maps of definite length, nested only as each body's fixed shape needs (a map
 *   inside the body's map at most: an order line, a meter body's columns);
 * - one float form, narrowly: a float64 (0xfb) whose value is an integer in 2^32 .. 2^53 − 1,
 *   read as that unsigned integer. cbor-x alone writes every integer of 2^32 or more as a float64
 *   (`fb 4278bcfe56800000` for 1,700,000,000,000), so a device on a plain cbor-x (or another
 *   encoder that does the same) sends its readings' `t` (ms since the epoch) that way; the SDK's
 *   devices/cbor.ts writes them as major type 0, as a C or Rust encoder with preferred
 *   serialization does, and both read the same. The value is checked exact before it is used, so
 *   nothing fractional or rounded gets in.
 * Everything else is refused: other floats, half and single precision included ("float"), tags,
 * byte strings, simple values (false, true, null, undefined), indefinite lengths and breaks,
 * reserved additional information, duplicate map keys, trailing bytes ("malformed").
 *
 * Non-shortest encodings of integers and lengths (e.g. 0x18 0x05 for 5) are accepted: preferred
 * serialization (§4.2.1) binds encoders, a decoder may be lenient in what it reads (§5.2), and the
 * envelope's signature covers the exact bytes whichever form a device chose.
 *
 * Maps are read by key, never by position, so the result does not depend on key order. Keys a
 * body kind does not name are skipped if their value is an integer or short text (a meter's
 * powerW, voltageV, …), or in a meter body's columns an array of integers, and refused otherwise. With several faults, the first in byte order is
 * the one reported.
 */
import { type DetailedResult, failWith, ok } from "../common/result.ts";

/** One meter reading: t in ms since the epoch of the market's (possibly simulated) clock; counters in Wh since installation. */
export interface MeterReading {
  readonly t: number;
  readonly importWh: number;
  readonly exportWh: number;
}

/** Readings per meter envelope: an hour of one-second readings; a 64 KiB envelope cannot hold more (≥ 24 bytes each) anyway. */
export const READINGS_PER_ENVELOPE_MAX = 3_600;
/** Order lines per agent envelope: a few price steps per interval; bounds clearing work per household. */
export const ORDER_LINES_PER_ENVELOPE_MAX = 8;
/** Energy of one order line: 1 MWh, far above a household's interval; keeps sums of lines within u32. */
export const ORDER_ENERGY_WH_MAX = 1_000_000;
/** Price of one order line: 10 units per kWh (µ-units), ten times any retail tariff. */
export const PRICE_MICROS_PER_KWH_MAX = 10_000_000;
/** Largest interval an order may name: refine's output carries it as a u32 (output.ts). */
export const ORDER_INTERVAL_MAX = 0xffff_ffff;
/** Entries per map: a reading has five keys today (t, importWh, exportWh, powerW, voltageV); room for more, and bounds the duplicate-key check to 16² comparisons. */
export const MAP_ENTRIES_MAX = 16;
/** Bytes of a key or a skipped text value: the longest key is 17 bytes (priceMicrosPerKwh); a unit or status word fits. */
export const TEXT_BYTES_MAX = 64;

/**
 * Why a body was refused:
 * - `malformed`: not well-formed CBOR, or not the body's shape (wrong type, tag, byte string,
 *   simple value, indefinite length, duplicate key, too many map entries, text too long or not
 *   UTF-8, an empty readings array, trailing bytes);
 * - `float`: a float, other than the integral float64 described above;
 * - `out-of-range`: an integer beyond 2^53 − 1, a negative counter or field, an order's interval,
 *   energy (0 or above ORDER_ENERGY_WH_MAX) or price (above PRICE_MICROS_PER_KWH_MAX) out of bounds;
 * - `missing-field`: a required key is absent;
 * - `too-many`: more readings than READINGS_PER_ENVELOPE_MAX (a reset: more than one), or lines than ORDER_LINES_PER_ENVELOPE_MAX;
 * - `not-increasing`: a reading's t is not after the previous reading's;
 * - `counter-backwards`: an import or export counter below the previous reading's;
 * - `unknown-side`: an order line's side is text other than "bid" or "ask";
 * - `mixed-sides`: an order body with both bid and ask lines.
 */
export const BODY_ERRORS = [
  "malformed",
  "float",
  "out-of-range",
  "missing-field",
  "too-many",
  "not-increasing",
  "counter-backwards",
  "unknown-side",
  "mixed-sides",
] as const;
export type BodyError = (typeof BODY_ERRORS)[number];

/** A body refused: its error name and what was wrong, in words (the failure of a DetailedResult, services/common/result.ts). */
export type BodyFailure = Extract<DetailedResult<never, BodyError>, { readonly ok: false }>;

export type OrderSideName = "bid" | "ask";

export interface OrderLine {
  readonly side: OrderSideName;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
}

/** An agent's orders for one market interval, all on one side; no lines withdraws its earlier orders. */
export interface OrderBody {
  readonly interval: number;
  readonly orders: readonly OrderLine[];
}

/**
 * Decodes a `meter.reading` body: an array of 1..READINGS_PER_ENVELOPE_MAX maps, each with
 * unsigned integers t, importWh and exportWh; t strictly increasing and both counters
 * non-decreasing within the body. Or the same readings in the column form of devices/readings.ts,
 * a map (decodeMeterColumns). Never throws.
 */
export function decodeMeterBody(body: Uint8Array): DetailedResult<MeterReading[], BodyError> {
  const r = new BodyReader(body);
  if (r.nextMajor === MAJOR_MAP) return decodeMeterColumns(r);
  const count = r.arrayHead("the body");
  if (count < 0) return r.failure();
  if (count === 0) return r.refuse("malformed", "no readings");
  if (count > READINGS_PER_ENVELOPE_MAX) return r.refuse("too-many", `${count} readings > READINGS_PER_ENVELOPE_MAX = ${READINGS_PER_ENVELOPE_MAX}`);
  const readings: MeterReading[] = [];
  let previous: MeterReading | null = null;
  for (let i = 0; i < count; i++) {
    r.enter("reading", i);
    const entries = r.mapHead("the reading");
    if (entries < 0) return r.failure();
    let t = ABSENT;
    let importWh = ABSENT;
    let exportWh = ABSENT;
    for (let j = 0; j < entries; j++) {
      const key = r.key(READING_KEYS);
      if (key === KEY_FAILED) return r.failure();
      if (key === KEY_SKIPPED) continue;
      const name = READING_KEY_NAMES[key]!;
      if ((key === 0 ? t : key === 1 ? importWh : exportWh) !== ABSENT) return r.refuse("malformed", `${name} appears twice`);
      const value = r.uint(name);
      if (value < 0) return r.failure();
      if (key === 0) t = value;
      else if (key === 1) importWh = value;
      else exportWh = value;
    }
    if (t === ABSENT || importWh === ABSENT || exportWh === ABSENT) return r.refuse("missing-field", missing(READING_KEY_NAMES, [t, importWh, exportWh]));
    if (previous !== null) {
      if (t <= previous.t) return r.refuse("not-increasing", `t = ${t} is not after ${previous.t}`);
      if (importWh < previous.importWh) return r.refuse("counter-backwards", `importWh ${importWh} < ${previous.importWh}`);
      if (exportWh < previous.exportWh) return r.refuse("counter-backwards", `exportWh ${exportWh} < ${previous.exportWh}`);
    }
    previous = { t, importWh, exportWh };
    readings.push(previous);
  }
  r.enter("the body");
  if (!r.done) return r.refuse("malformed", `${r.remaining} bytes after the readings`);
  return ok(readings);
}

/**
 * Decodes a `meter.reset` body: the counters of a meter whose counter was replaced or reset, as a
 * `meter.reading` body of exactly one reading (`[{t, importWh, exportWh}]`, what the SDK writes
 * for one reading; the column form of one reading is read too). More readings are "too-many":
 * a reset states one baseline, and readings after it go in `meter.reading` envelopes. Never throws.
 */
export function decodeMeterResetBody(body: Uint8Array): DetailedResult<MeterReading, BodyError> {
  const decoded = decodeMeterBody(body);
  if (!decoded.ok) return decoded;
  if (decoded.value.length !== 1) return failWith("too-many", `the body: ${decoded.value.length} readings; a reset states one`);
  return ok(decoded.value[0]!);
}

/**
 * A `meter.reading` body in the column form (devices/readings.ts): a map {t0, dtMs, cols} with
 * unsigned integers t0 and dtMs ≥ 1 (reading i is at t0 + i·dtMs), and cols a map of columns of
 * equal length 1..READINGS_PER_ENVELOPE_MAX, each the first reading's value and then each
 * reading's difference from the one before. importWh and exportWh are required: their first
 * value is an unsigned integer and their differences too (a negative one is "counter-backwards");
 * other columns are skipped if they hold integers within ±(2^53 − 1). Every t and counter must
 * stay within 2^53 − 1 ("out-of-range").
 */
function decodeMeterColumns(r: BodyReader): DetailedResult<MeterReading[], BodyError> {
  const entries = r.mapHead("the body");
  if (entries < 0) return r.failure();
  let t0 = ABSENT;
  let dtMs = ABSENT;
  let columns: (number[] | null)[] | null = null;
  let count = -1;
  for (let j = 0; j < entries; j++) {
    r.enter("the body");
    const key = r.key(COLUMNS_BODY_KEYS);
    if (key === KEY_FAILED) return r.failure();
    if (key === KEY_SKIPPED) continue;
    const name = COLUMNS_BODY_KEY_NAMES[key]!;
    if ((key === 0 ? t0 : key === 1 ? dtMs : columns === null ? ABSENT : 0) !== ABSENT) return r.refuse("malformed", `${name} appears twice`);
    if (key === 0) {
      t0 = r.uint(name);
      if (t0 < 0) return r.failure();
      continue;
    }
    if (key === 1) {
      dtMs = r.uint(name);
      if (dtMs < 0) return r.failure();
      if (dtMs === 0) return r.refuse("not-increasing", "dtMs = 0: every reading would have the same t");
      continue;
    }
    const fields = r.mapHead(name, 1);
    if (fields < 0) return r.failure();
    columns = [null, null];
    for (let k = 0; k < fields; k++) {
      r.enter(name);
      const column = r.key(COLUMN_KEYS, 1, false);
      if (column === KEY_FAILED) return r.failure();
      const what = column === KEY_SKIPPED ? "an unknown column" : COLUMN_KEY_NAMES[column]!;
      if (column !== KEY_SKIPPED && columns[column] !== null) return r.refuse("malformed", `${what} appears twice`);
      const length = r.arrayHead(what);
      if (length < 0) return r.failure();
      if (count < 0) {
        if (length === 0) return r.refuse("malformed", "no readings");
        if (length > READINGS_PER_ENVELOPE_MAX) return r.refuse("too-many", `${length} readings > READINGS_PER_ENVELOPE_MAX = ${READINGS_PER_ENVELOPE_MAX}`);
        count = length;
      } else if (length !== count) return r.refuse("malformed", `${what} has ${length} values, an earlier column ${count}`);
      if (column === KEY_SKIPPED) {
        for (let i = 0; i < length; i++) if (!r.skipInteger(what)) return r.failure();
        continue;
      }
      const values: number[] = [];
      let sum = 0;
      for (let i = 0; i < length; i++) {
        r.enter(what, i);
        // A counter's first value is ≥ 0 like any counter; a negative difference means it went back.
        const value = i === 0 ? r.uint("the first value") : r.uint("the difference", "counter-backwards");
        if (value < 0) return r.failure();
        sum += value;
        if (sum > INTEGER_MAX) return r.refuse("out-of-range", `${what} > 2^53 − 1`);
        values.push(sum);
      }
      columns[column] = values;
    }
  }
  r.enter("the body");
  const [importWh, exportWh] = columns ?? [null, null];
  if (t0 === ABSENT || dtMs === ABSENT || importWh == null || exportWh == null) {
    return r.refuse(
      "missing-field",
      missing(["t0", "dtMs", "cols.importWh", "cols.exportWh"], [t0, dtMs, importWh == null ? ABSENT : 0, exportWh == null ? ABSENT : 0]),
    );
  }
  if (!r.done) return r.refuse("malformed", `${r.remaining} bytes after the readings`);
  if (t0 + (count - 1) * dtMs > INTEGER_MAX) return r.refuse("out-of-range", `the last reading's t > 2^53 − 1`);
  const readings: MeterReading[] = [];
  for (let i = 0; i < count; i++) readings.push({ t: t0 + i * dtMs, importWh: importWh[i]!, exportWh: exportWh[i]! });
  return ok(readings);
}

/**
 * Decodes an `agent.order` body: a map {interval, orders} with interval ≤ ORDER_INTERVAL_MAX and
 * 0..ORDER_LINES_PER_ENVELOPE_MAX lines {side: "bid" | "ask", energyWh 1..ORDER_ENERGY_WH_MAX,
 * priceMicrosPerKwh 0..PRICE_MICROS_PER_KWH_MAX}, all on one side. Never throws.
 */
export function decodeOrderBody(body: Uint8Array): DetailedResult<OrderBody, BodyError> {
  const r = new BodyReader(body);
  const entries = r.mapHead("the body");
  if (entries < 0) return r.failure();
  let interval = ABSENT;
  let orders: OrderLine[] | null = null;
  for (let j = 0; j < entries; j++) {
    r.enter("the body");
    const key = r.key(ORDER_KEYS);
    if (key === KEY_FAILED) return r.failure();
    if (key === KEY_SKIPPED) continue;
    if (key === 0) {
      if (interval !== ABSENT) return r.refuse("malformed", "interval appears twice");
      interval = r.uint("interval");
      if (interval < 0) return r.failure();
      if (interval > ORDER_INTERVAL_MAX) return r.refuse("out-of-range", `interval ${interval} > ORDER_INTERVAL_MAX = ${ORDER_INTERVAL_MAX}`);
    } else {
      if (orders !== null) return r.refuse("malformed", "orders appears twice");
      const count = r.arrayHead("orders");
      if (count < 0) return r.failure();
      if (count > ORDER_LINES_PER_ENVELOPE_MAX)
        return r.refuse("too-many", `${count} order lines > ORDER_LINES_PER_ENVELOPE_MAX = ${ORDER_LINES_PER_ENVELOPE_MAX}`);
      orders = [];
      for (let k = 0; k < count; k++) {
        r.enter("line", k);
        const line = readOrderLine(r);
        if (line === null) return r.failure();
        if (k > 0 && line.side !== orders[0]!.side) return r.refuse("mixed-sides", `a ${line.side}, line 0 a ${orders[0]!.side}`);
        orders.push(line);
      }
    }
  }
  r.enter("the body");
  if (interval === ABSENT) return r.refuse("missing-field", "no interval");
  if (orders === null) return r.refuse("missing-field", "no orders");
  if (!r.done) return r.refuse("malformed", `${r.remaining} bytes after the order`);
  return ok({ interval, orders });
}

/** One order line, or null with the reader's error set. */
function readOrderLine(r: BodyReader): OrderLine | null {
  const entries = r.mapHead("the line", 1);
  if (entries < 0) return null;
  let side: OrderSideName | null = null;
  let energyWh = ABSENT;
  let priceMicrosPerKwh = ABSENT;
  for (let j = 0; j < entries; j++) {
    const key = r.key(LINE_KEYS, 1);
    if (key === KEY_FAILED) return null;
    if (key === KEY_SKIPPED) continue;
    const name = LINE_KEY_NAMES[key]!;
    if (key === 0 ? side !== null : (key === 1 ? energyWh : priceMicrosPerKwh) !== ABSENT) return (r.refuse("malformed", `${name} appears twice`), null);
    if (key === 0) {
      side = r.side(name);
      if (side === null) return null;
    } else if (key === 1) {
      energyWh = r.uint(name);
      if (energyWh < 0) return null;
      if (energyWh === 0 || energyWh > ORDER_ENERGY_WH_MAX)
        return (r.refuse("out-of-range", `energyWh = ${energyWh}, not in 1..ORDER_ENERGY_WH_MAX = ${ORDER_ENERGY_WH_MAX}`), null);
    } else {
      priceMicrosPerKwh = r.uint(name);
      if (priceMicrosPerKwh < 0) return null;
      if (priceMicrosPerKwh > PRICE_MICROS_PER_KWH_MAX)
        return (r.refuse("out-of-range", `priceMicrosPerKwh = ${priceMicrosPerKwh} > PRICE_MICROS_PER_KWH_MAX = ${PRICE_MICROS_PER_KWH_MAX}`), null);
    }
  }
  if (side === null || energyWh === ABSENT || priceMicrosPerKwh === ABSENT)
    return (r.refuse("missing-field", missing(LINE_KEY_NAMES, [side === null ? ABSENT : 0, energyWh, priceMicrosPerKwh])), null);
  return { side, energyWh, priceMicrosPerKwh };
}

/** "no t, exportWh": the names whose values are ABSENT. (Out of line: a closure over a loop's fields would slow the loop.) */
function missing(names: readonly string[], values: readonly number[]): string {
  return `no ${names.filter((_, k) => values[k] === ABSENT).join(", ")}`;
}

// ---------------------------------------------------------------------------------------------
// The reader.

const MAJOR_UINT = 0;
const MAJOR_NEGINT = 1;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
const MAJOR_NAMES = ["an unsigned integer", "a negative integer", "a byte string", "text", "an array", "a map", "a tag", "a simple value"];

const INTEGER_MAX = Number.MAX_SAFE_INTEGER;
/** A head's argument beyond INTEGER_MAX is kept as this (2^53, exact), larger than any bound. */
const ARGUMENT_TOO_LARGE = INTEGER_MAX + 1;
/** Smallest integer cbor-x writes as a float64 rather than as major type 0. */
const FLOAT64_INTEGER_MIN = 2 ** 32;

/** A field not yet seen (field values are ≥ 0). */
const ABSENT = -1;
const KEY_SKIPPED = -1;
/** Maps nest at most this deep in a body: the body's map and one inside it (an order line, the columns); a reading is a map in an array. */
const MAP_DEPTHS = 2;
type MapDepth = 0 | 1;
const KEY_FAILED = -2;

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const READING_KEY_NAMES = ["t", "importWh", "exportWh"] as const;
const READING_KEYS = READING_KEY_NAMES.map(ascii);
const COLUMNS_BODY_KEY_NAMES = ["t0", "dtMs", "cols"] as const;
const COLUMNS_BODY_KEYS = COLUMNS_BODY_KEY_NAMES.map(ascii);
const COLUMN_KEY_NAMES = ["importWh", "exportWh"] as const;
const COLUMN_KEYS = COLUMN_KEY_NAMES.map(ascii);
const ORDER_KEYS = ["interval", "orders"].map(ascii);
const LINE_KEY_NAMES = ["side", "energyWh", "priceMicrosPerKwh"] as const;
const LINE_KEYS = LINE_KEY_NAMES.map(ascii);
const BID = ascii("bid");
const ASK = ascii("ask");

/**
 * A cursor over one body. Each read returns its value, or a negative number (null for `side`)
 * after recording the error, which `failure()` then hands back; nothing throws. Details name
 * where the reader is (`enter`) and are built only on failure: the happy path makes no strings.
 */
class BodyReader {
  private at = 0;
  /** Major type and argument (value, length or count) of the last head read. */
  private major = 0;
  private argument = 0;
  private scope = "the body";
  private index = -1;
  private error: BodyError = "malformed";
  private detail = "";
  /**
   * (start, length) of the unknown keys of the maps being read, for the duplicate check: those of
   * the body's map (depth 0) and of the map inside it being read (depth 1: an order line, the
   * columns), MAP_ENTRIES_MAX each, so reading an inner map does not forget the outer one's.
   */
  private readonly skippedKeys = new Int32Array(2 * MAP_ENTRIES_MAX * MAP_DEPTHS);
  private readonly skippedKeyCounts = new Int32Array(MAP_DEPTHS);
  private view: DataView | null = null;

  constructor(private readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at === this.bytes.length;
  }

  get remaining(): number {
    return this.bytes.length - this.at;
  }

  /** The major type of the next data item, or −1 at the end. */
  get nextMajor(): number {
    return this.at < this.bytes.length ? this.bytes[this.at]! >> 5 : -1;
  }

  /** Names where the reader is, for details: "the body", or "reading 3", "line 0". */
  enter(scope: string, index = -1): void {
    this.scope = scope;
    this.index = index;
  }

  failure(): BodyFailure {
    return failWith(this.error, this.detail);
  }

  /** Records an error found by the caller and returns it. */
  refuse(error: BodyError, detail: string): BodyFailure {
    this.fail(error, detail);
    return this.failure();
  }

  private fail(error: BodyError, detail: string): false {
    this.error = error;
    this.detail = `${this.index < 0 ? this.scope : `${this.scope} ${this.index}`}: ${detail}`;
    return false;
  }

  /** Reads an initial byte and its argument (RFC 8949 §3). */
  private head(what: string): boolean {
    const b = this.bytes;
    if (this.at >= b.length) return this.fail("malformed", `${what}: the body ends early`);
    const offset = this.at;
    const initial = b[this.at++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === MAJOR_TAG) return this.fail("malformed", `${what}: a tag (byte ${offset}); tags are not accepted`);
    if (major === MAJOR_SIMPLE) return this.simple(what, info, offset);
    if (info < 24) {
      this.argument = info;
    } else if (info <= 27) {
      const n = 1 << (info - 24);
      if (this.at + n > b.length) return this.fail("malformed", `${what}: the body ends early`);
      const at = this.at;
      if (n === 1) this.argument = b[at]!;
      else if (n === 2) this.argument = (b[at]! << 8) | b[at + 1]!;
      else if (n === 4) this.argument = u32At(b, at);
      else {
        const high = u32At(b, at);
        this.argument = high > 0x1f_ffff ? ARGUMENT_TOO_LARGE : high * 2 ** 32 + u32At(b, at + 4);
      }
      this.at += n;
    } else if (info === 31) {
      return this.fail("malformed", `${what}: indefinite length or break (byte ${offset})`);
    } else {
      return this.fail("malformed", `${what}: reserved additional information ${info} (byte ${offset})`);
    }
    this.major = major;
    return true;
  }

  /** Major type 7: only a float64 holding an integer in FLOAT64_INTEGER_MIN..INTEGER_MAX passes, as major type 0. */
  private simple(what: string, info: number, offset: number): boolean {
    if (info === 25 || info === 26) return this.fail("float", `${what}: a ${info === 25 ? "half" : "single"}-precision float (byte ${offset})`);
    if (info !== 27) return this.fail("malformed", `${what}: ${info === 31 ? "a break" : "a simple value (false, true, null, …)"} (byte ${offset})`);
    if (this.at + 8 > this.bytes.length) return this.fail("malformed", `${what}: the body ends early`);
    // Reading the float64 is exact (IEEE 754 binary64 is a JS number); it is used only if it is an integer.
    this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const value = this.view.getFloat64(this.at);
    this.at += 8;
    if (!(Number.isInteger(value) && value >= FLOAT64_INTEGER_MIN && value <= INTEGER_MAX)) {
      return this.fail("float", `${what}: a float64 that is not an integer in 2^32..2^53 − 1 (byte ${offset})`);
    }
    this.major = MAJOR_UINT;
    this.argument = value;
    return true;
  }

  /** An unsigned integer ≤ 2^53 − 1, or −1; a negative integer is the error `negative`. */
  uint(what: string, negative: BodyError = "out-of-range"): number {
    if (!this.head(what)) return -1;
    if (this.major === MAJOR_NEGINT) return (this.fail(negative, `${what} is negative`), -1);
    if (this.major !== MAJOR_UINT) return (this.fail("malformed", `${what} is ${MAJOR_NAMES[this.major]}, not an unsigned integer`), -1);
    if (this.argument > INTEGER_MAX) return (this.fail("out-of-range", `${what} > 2^53 − 1`), -1);
    return this.argument;
  }

  /** Skips an integer within ±(2^53 − 1); false with the error recorded otherwise. */
  skipInteger(what: string): boolean {
    if (!this.head(what)) return false;
    if (this.major !== MAJOR_UINT && this.major !== MAJOR_NEGINT) return this.fail("malformed", `${what} holds ${MAJOR_NAMES[this.major]}, not an integer`);
    // A negative integer is −1 − argument (RFC 8949 §3.1).
    if (this.argument > (this.major === MAJOR_UINT ? INTEGER_MAX : INTEGER_MAX - 1))
      return this.fail("out-of-range", `${what} holds an integer beyond ±(2^53 − 1)`);
    return true;
  }

  /** An array's length, or −1. */
  arrayHead(what: string): number {
    if (!this.head(what)) return -1;
    if (this.major !== MAJOR_ARRAY) return (this.fail("malformed", `${what} is ${MAJOR_NAMES[this.major]}, not an array`), -1);
    return this.argument;
  }

  /** A map's entry count (≤ MAP_ENTRIES_MAX), or −1; starts the map's duplicate-key check. */
  mapHead(what: string, depth: MapDepth = 0): number {
    if (!this.head(what)) return -1;
    if (this.major !== MAJOR_MAP) return (this.fail("malformed", `${what} is ${MAJOR_NAMES[this.major]}, not a map`), -1);
    if (this.argument > MAP_ENTRIES_MAX) return (this.fail("malformed", `${what} has ${this.argument} entries > MAP_ENTRIES_MAX = ${MAP_ENTRIES_MAX}`), -1);
    this.skippedKeyCounts[depth] = 0;
    return this.argument;
  }

  /**
   * A map key: its index in `known`, or KEY_SKIPPED once an unknown key and (with `skipValue`) its
   * value (an integer or short text) are skipped, or KEY_FAILED. Duplicate unknown keys fail here;
   * the caller checks its known ones. Without `skipValue` the caller reads or skips the value.
   */
  key(known: readonly Uint8Array[], depth: MapDepth = 0, skipValue = true): number {
    const start = this.text("a key", false);
    if (start < 0) return KEY_FAILED;
    const length = this.argument;
    const b = this.bytes;
    for (let k = 0; k < known.length; k++) if (bytesAt(b, start, length, known[k]!)) return k;
    // Known keys are ASCII; an unknown one must be UTF-8.
    if (!isUtf8(b, start, start + length)) return (this.fail("malformed", "a key is not UTF-8"), KEY_FAILED);
    const keys = this.skippedKeys;
    const base = 2 * MAP_ENTRIES_MAX * depth;
    const count = this.skippedKeyCounts[depth]!;
    for (let n = 0; n < count; n++) {
      if (keys[base + 2 * n + 1] === length && sameBytes(b, start, keys[base + 2 * n]!, length)) {
        return (this.fail("malformed", "a key appears twice"), KEY_FAILED);
      }
    }
    keys[base + 2 * count] = start;
    keys[base + 2 * count + 1] = length;
    this.skippedKeyCounts[depth] = count + 1;
    if (!skipValue) return KEY_SKIPPED;
    const what = "the value of an unknown key";
    if (!this.head(what)) return KEY_FAILED;
    if (this.major === MAJOR_UINT || this.major === MAJOR_NEGINT) {
      if (this.argument > INTEGER_MAX) return (this.fail("out-of-range", `${what} is beyond ±2^53`), KEY_FAILED);
      return KEY_SKIPPED;
    }
    if (this.major === MAJOR_TEXT) return this.textBody(what, true) < 0 ? KEY_FAILED : KEY_SKIPPED;
    return (this.fail("malformed", `${what} is ${MAJOR_NAMES[this.major]}, neither an integer nor short text`), KEY_FAILED);
  }

  /** An order line's side, or null. */
  side(what: string): OrderSideName | null {
    const start = this.text(what, false); // compared with ASCII, so not checked for UTF-8
    if (start < 0) return null;
    if (bytesAt(this.bytes, start, this.argument, BID)) return "bid";
    if (bytesAt(this.bytes, start, this.argument, ASK)) return "ask";
    return (this.fail("unknown-side", `${what} is neither "bid" nor "ask"`), null);
  }

  /** Reads a text head and its bytes; returns where they start (their length is `argument`), or −1. */
  private text(what: string, checkUtf8: boolean): number {
    if (!this.head(what)) return -1;
    if (this.major !== MAJOR_TEXT) return (this.fail("malformed", `${what} is ${MAJOR_NAMES[this.major]}, not text`), -1);
    return this.textBody(what, checkUtf8);
  }

  private textBody(what: string, checkUtf8: boolean): number {
    const length = this.argument;
    if (length > TEXT_BYTES_MAX) return (this.fail("malformed", `${what} is text of ${length} bytes > TEXT_BYTES_MAX = ${TEXT_BYTES_MAX}`), -1);
    if (length > this.remaining) return (this.fail("malformed", `${what}: the body ends early`), -1);
    const start = this.at;
    if (checkUtf8 && !isUtf8(this.bytes, start, start + length)) return (this.fail("malformed", `${what} is not UTF-8`), -1);
    this.at += length;
    return start;
  }
}

function u32At(b: Uint8Array, at: number): number {
  return b[at]! * 2 ** 24 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

function bytesAt(b: Uint8Array, start: number, length: number, expected: Uint8Array): boolean {
  if (length !== expected.length) return false;
  for (let i = 0; i < length; i++) if (b[start + i] !== expected[i]) return false;
  return true;
}

function sameBytes(b: Uint8Array, x: number, y: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}

/** Well-formed UTF-8 (RFC 3629 §4): no overlong forms, no surrogates, nothing above U+10FFFF. */
function isUtf8(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let low = 0x80;
    let high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0) low = 0xa0;
      else if (c === 0xed) high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0) low = 0x90;
      else if (c === 0xf4) high = 0x8f;
    } else return false;
    if (i + more >= end) return false;
    const second = b[i + 1]!;
    if (second < low || second > high) return false;
    for (let k = 2; k <= more; k++) if ((b[i + k]! & 0xc0) !== 0x80) return false;
    i += more + 1;
  }
  return true;
}
