/**
 * One InfluxDB 1.x point as jamgate writes it, its limits, and the check every point passes
 * before it is buffered, so a write is never refused for its shape. Rules are InfluxDB 1.x line
 * protocol's (docs.influxdata.com/influxdb/v1.6/write_protocols/line_protocol_reference/), and
 * what influxd 1.6 did when tried by hand (curl against the test instance): an empty tag value
 * fails the whole line ("missing tag value"), a tag key `time` is refused ("invalid tag key"), a
 * field key `time` is silently dropped, an integer outside int64 fails the line.
 */

/**
 * A point. Field types follow the JavaScript type, never the value: `bigint` is an InfluxDB
 * integer (line protocol `123i`), `number` a float, so a field never changes type between
 * points (InfluxDB refuses a float into an integer field: "field type conflict").
 */
export interface InfluxPoint {
  readonly measurement: string;
  /** Empty values are left out: InfluxDB treats an absent tag as the empty string in queries. */
  readonly tags: Readonly<Record<string, string>>;
  readonly fields: Readonly<Record<string, number | bigint | boolean | string>>;
  /** ms since the Unix epoch; written with precision=ms. */
  readonly timestampMs: number;
}

/** Longest measurement, tag key, tag value or field key: series keys stay short (InfluxDB's own limit is 64 KiB per key). */
export const NAME_CHARS_MAX = 256;
/** Most tags on a point: jamgate's are `device` and a few reading labels; every tag multiplies series. */
export const TAGS_PER_POINT_MAX = 16;
/** Most fields on a point: a meter reading has a handful; 64 keeps one line small. */
export const FIELDS_PER_POINT_MAX = 64;
/** Longest string field: labels, not payloads; keeps a 5,000-point batch far under influxd's 25 MB max-body-size. */
export const STRING_FIELD_CHARS_MAX = 1024;
/** Latest time InfluxDB 1.x stores (int64 ns, 2262-04-11), in ms, minus one. */
export const TIME_MS_MAX = 9_223_372_036_853;
/** Earliest time InfluxDB 1.x stores (1677-09-21), in ms, plus one. */
export const TIME_MS_MIN = -9_223_372_036_853;
/** InfluxDB integers are int64 [line protocol reference, "Integer"]. */
export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);

/**
 * Why a point cannot be written, or null when it can. Names may not hold a newline (ends a line)
 * or a backslash (the influx package escapes only `,`, `=` and space, so a trailing `\` would
 * escape the separator after it); `time` is reserved.
 */
export function pointProblem(p: InfluxPoint): string | null {
  if (typeof p !== "object" || p === null) return "not an object";
  const nameProblem = badName(p.measurement);
  if (nameProblem !== null) return `measurement ${nameProblem}`;
  if (!Number.isSafeInteger(p.timestampMs) || p.timestampMs > TIME_MS_MAX || p.timestampMs < TIME_MS_MIN)
    return "timestampMs is not an integer ms InfluxDB can store";
  if (typeof p.tags !== "object" || p.tags === null) return "tags is not an object";
  let tags = 0;
  for (const key in p.tags) {
    if (!Object.hasOwn(p.tags, key)) continue;
    if (++tags > TAGS_PER_POINT_MAX) return `more than ${TAGS_PER_POINT_MAX} tags`;
    const keyProblem = key === "time" ? "is reserved" : badName(key);
    if (keyProblem !== null) return `tag key ${JSON.stringify(key.slice(0, 40))} ${keyProblem}`;
    const value = p.tags[key];
    if (value === "") continue;
    const valueProblem = badName(value);
    if (valueProblem !== null) return `tag ${key} value ${valueProblem}`;
  }
  if (typeof p.fields !== "object" || p.fields === null) return "fields is not an object";
  let fields = 0;
  for (const key in p.fields) {
    if (!Object.hasOwn(p.fields, key)) continue;
    if (++fields > FIELDS_PER_POINT_MAX) return `more than ${FIELDS_PER_POINT_MAX} fields`;
    const keyProblem = key === "time" ? "is reserved" : badName(key);
    if (keyProblem !== null) return `field key ${JSON.stringify(key.slice(0, 40))} ${keyProblem}`;
    const value = p.fields[key];
    switch (typeof value) {
      case "bigint":
        if (value > INT64_MAX || value < INT64_MIN) return `field ${key} is outside int64`;
        break;
      case "number":
        if (!Number.isFinite(value)) return `field ${key} is not finite`;
        break;
      case "boolean":
        break;
      case "string":
        if (value.length > STRING_FIELD_CHARS_MAX) return `field ${key} is longer than ${STRING_FIELD_CHARS_MAX} chars`;
        break;
      default:
        return `field ${key} is a ${value === null ? "null" : typeof value}`;
    }
  }
  if (fields === 0) return "no fields";
  return null;
}

function badName(name: unknown): string | null {
  if (typeof name !== "string") return "is not a string";
  if (name.length === 0) return "is empty";
  if (name.length > NAME_CHARS_MAX) return `is longer than ${NAME_CHARS_MAX} chars`;
  if (/[\\\n\r]/.test(name)) return "holds a backslash or line break";
  return null;
}
