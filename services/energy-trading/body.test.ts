import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "../../devices/cbor.ts";
import { encodeBody } from "../../devices/envelope.ts";
import { encodeReadings } from "../../devices/readings.ts";
import { meterReadings } from "../../devices/simulate.ts";
import {
  BODY_ERRORS,
  type BodyError,
  decodeMeterBody,
  decodeMeterResetBody,
  decodeOrderBody,
  MAP_ENTRIES_MAX,
  type MeterReading,
  ORDER_ENERGY_WH_MAX,
  ORDER_INTERVAL_MAX,
  ORDER_LINES_PER_ENVELOPE_MAX,
  PRICE_MICROS_PER_KWH_MAX,
  READINGS_PER_ENVELOPE_MAX,
  TEXT_BYTES_MAX,
} from "./body.ts";

// ---------------------------------------------------------------------------------------------
// Hand-made CBOR (RFC 8949 §3), byte by byte, for what cbor-x would never write.

/** A head of `major` with argument `n`, shortest form unless `width` (1, 2, 4 or 8 bytes) is given. */
function head(major: number, n: number | bigint, width?: 1 | 2 | 4 | 8): number[] {
  const v = BigInt(n);
  const w = width ?? (v < 24n ? 0 : v < 0x100n ? 1 : v < 0x1_0000n ? 2 : v < 0x1_0000_0000n ? 4 : 8);
  if (w === 0) return [(major << 5) | Number(v)];
  const out = [(major << 5) | (24 + Math.log2(w))];
  for (let i = w - 1; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}
const uint = (n: number | bigint) => head(0, n);
const neg = (n: number) => head(1, -1 - n);
const text = (s: string) => {
  const b = [...new TextEncoder().encode(s)];
  return [...head(3, b.length), ...b];
};
const arr = (n: number) => head(4, n);
const map = (n: number) => head(5, n);
const f64 = (x: number) => {
  const b = new Uint8Array(9);
  b[0] = 0xfb;
  new DataView(b.buffer).setFloat64(1, x);
  return [...b];
};
const cbor = (...parts: number[][]) => new Uint8Array(parts.flat());
/** A map entry of a text key and a value. */
const kv = (key: string, value: number[]) => [...text(key), ...value];
/** One reading map with its three required keys, values as given (hand-encoded). */
const reading = (t: number[], importWh: number[], exportWh: number[], ...extra: number[][]) => [
  ...map(3 + extra.length),
  ...kv("t", t),
  ...kv("importWh", importWh),
  ...kv("exportWh", exportWh),
  ...extra.flat(),
];

const T0 = 1_700_000_000_000;

/** Readings as the simulator makes them (devices/simulate.ts), with the keys bench/lib/devices.ts sends. */
function deviceReadings(count: number, seed = 7, startMs = T0) {
  const out = [];
  const it = meterReadings(seed, startMs);
  for (let i = 0; i < count; i++) {
    const r = it.next().value!;
    out.push({ t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh, powerW: r.powerW, voltageV: r.voltageV });
  }
  return out;
}
const only = (r: { t: number; importWh: number; exportWh: number }): MeterReading => ({ t: r.t, importWh: r.importWh, exportWh: r.exportWh });

function meterError(body: Uint8Array): BodyError | "ok" {
  const decoded = decodeMeterBody(body);
  return decoded.ok ? "ok" : decoded.error;
}
function orderError(body: Uint8Array): BodyError | "ok" {
  const decoded = decodeOrderBody(body);
  return decoded.ok ? "ok" : decoded.error;
}

describe("decodeMeterBody", () => {
  it("reads what devices send: 60 simulated readings, powerW and voltageV skipped", () => {
    const readings = deviceReadings(60);
    const body = encodeBody(readings);
    // cbor-x writes t (≥ 2^32) as a float64: the one float form the reader takes, checked integral.
    expect(body.includes(0xfb)).toBe(true);
    expect(body.length).toBeGreaterThan(3_500);
    expect(body.length).toBeLessThan(4_000);
    const decoded = decodeMeterBody(body);
    expect(decoded).toEqual({ ok: true, value: readings.map(only) });
  });

  it("reads t as major type 0 (a C or Rust encoder's preferred form) the same as cbor-x's float64", () => {
    const asUint = cbor(arr(1), reading(uint(T0), uint(5), uint(0)));
    const asFloat = cbor(arr(1), reading(f64(T0), uint(5), uint(0)));
    expect(asUint[1 + 1 + 2]).toBe(0x1b); // array, map, "t", then a uint64 head
    expect(decodeMeterBody(asUint)).toEqual({ ok: true, value: [{ t: T0, importWh: 5, exportWh: 0 }] });
    expect(decodeMeterBody(asFloat)).toEqual(decodeMeterBody(asUint));
  });

  it("accepts non-shortest integers and lengths", () => {
    const body = cbor(
      head(4, 1, 2),
      head(5, 3, 1),
      kv("t", head(0, 7, 8)),
      kv("importWh", head(0, 5, 1)),
      [...head(3, 8, 4), ...new TextEncoder().encode("exportWh")],
      head(0, 0, 2),
    );
    expect(decodeMeterBody(body)).toEqual({ ok: true, value: [{ t: 7, importWh: 5, exportWh: 0 }] });
  });

  it("reads up to 2^53 − 1 and no further", () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(decodeMeterBody(cbor(arr(1), reading(uint(max), uint(max), uint(max))))).toEqual({ ok: true, value: [{ t: max, importWh: max, exportWh: max }] });
    expect(decodeMeterBody(cbor(arr(1), reading(f64(max), uint(0), uint(0))))).toEqual({ ok: true, value: [{ t: max, importWh: 0, exportWh: 0 }] });
    expect(meterError(cbor(arr(1), reading(uint(2n ** 53n), uint(0), uint(0))))).toBe("out-of-range");
    expect(meterError(cbor(arr(1), reading(uint(0), uint(2n ** 64n - 1n), uint(0))))).toBe("out-of-range");
    expect(meterError(cbor(arr(1), reading(uint(0), uint(0), uint(0), kv("powerW", uint(2n ** 53n)))))).toBe("out-of-range");
  });

  it("takes READINGS_PER_ENVELOPE_MAX readings and refuses one more", () => {
    const readings = deviceReadings(READINGS_PER_ENVELOPE_MAX + 1);
    expect(decodeMeterBody(encodeCbor(readings.slice(0, READINGS_PER_ENVELOPE_MAX)))).toMatchObject({ ok: true, value: { length: READINGS_PER_ENVELOPE_MAX } });
    expect(meterError(encodeCbor(readings))).toBe("too-many");
    // The count alone is refused, before any reading is read.
    expect(meterError(cbor(head(4, READINGS_PER_ENVELOPE_MAX + 1)))).toBe("too-many");
  });

  it("does not depend on the order of keys", () => {
    const keys = ["t", "importWh", "exportWh", "powerW", "voltageV"] as const;
    fc.assert(
      fc.property(fc.shuffledSubarray([...keys], { minLength: keys.length }), (order) => {
        const readings = deviceReadings(3).map((r) => Object.fromEntries(order.map((k) => [k, r[k]])));
        expect(decodeMeterBody(encodeCbor(readings))).toEqual({ ok: true, value: deviceReadings(3).map(only) });
      }),
    );
  });

  it("skips unknown keys with integer or short text values", () => {
    const body = encodeCbor([{ t: T0, importWh: 1, exportWh: 2, powerW: -2_000_000, status: "ok", unit: "é".repeat(TEXT_BYTES_MAX / 2), v2: 0 }]);
    expect(decodeMeterBody(body)).toEqual({ ok: true, value: [{ t: T0, importWh: 1, exportWh: 2 }] });
  });

  const ok3 = [uint(T0), uint(1), uint(2)] as const;
  const refusals: [string, Uint8Array, BodyError][] = [
    ["an empty body", cbor(), "malformed"],
    ["an empty map (the column form without its fields)", cbor(map(0)), "missing-field"],
    ["text, neither an array nor a map", cbor(text("t")), "malformed"],
    ["no readings", cbor(arr(0)), "malformed"],
    ["a reading that is not a map", cbor(arr(1), arr(0)), "malformed"],
    ["a half float (0xf9)", cbor(arr(1), reading([0xf9, 0x3c, 0x00], uint(1), uint(2))), "float"],
    ["a single float (0xfa)", cbor(arr(1), reading([0xfa, 0x3f, 0x80, 0x00, 0x00], uint(1), uint(2))), "float"],
    ["a fractional float64 (0xfb)", cbor(arr(1), reading(uint(T0), f64(1.5), uint(2))), "float"],
    ["a fractional float64 from cbor-x", encodeCbor([{ t: T0, importWh: 1, exportWh: 2.5 }]), "float"],
    ["an integral float64 below 2^32 (cbor-x writes those as integers)", cbor(arr(1), reading(uint(T0), f64(5), uint(2))), "float"],
    ["a float64 of 2^53", cbor(arr(1), reading(f64(2 ** 53), uint(1), uint(2))), "float"],
    ["a negative integral float64", cbor(arr(1), reading(uint(T0), uint(1), uint(2), kv("powerW", f64(-(2 ** 40))))), "float"],
    ["a float64 NaN", cbor(arr(1), reading(f64(Number.NaN), uint(1), uint(2))), "float"],
    ["a float64 infinity", cbor(arr(1), reading(f64(Number.POSITIVE_INFINITY), uint(1), uint(2))), "float"],
    ["a float instead of the body", cbor([0xf9, 0x00, 0x00]), "float"],
    ["a float extra value", cbor(arr(1), reading(...ok3, kv("voltageV", [0xfa, 0x43, 0x66, 0x80, 0x00]))), "float"],
    ["a tag 0 (date string) on t", cbor(arr(1), reading([0xc0, ...text("2026-01-01")], uint(1), uint(2))), "malformed"],
    ["a tag 1 (epoch time) on t", cbor(arr(1), reading([0xc1, ...uint(T0 / 1000)], uint(1), uint(2))), "malformed"],
    ["a tag 2 (bignum) on a counter", cbor(arr(1), reading(uint(T0), [0xc2, 0x41, 0x01], uint(2))), "malformed"],
    ["a tag on the body", cbor([0xd8, 0x40], arr(1), reading(...ok3)), "malformed"],
    ["an indefinite-length array (0x9f)", cbor([0x9f], reading(...ok3), [0xff]), "malformed"],
    ["an indefinite-length map (0xbf)", cbor(arr(1), [0xbf], kv("t", uint(T0)), kv("importWh", uint(1)), kv("exportWh", uint(2)), [0xff]), "malformed"],
    [
      "an indefinite-length key (0x7f)",
      cbor(arr(1), map(3), [0x7f, 0x61, 0x74, 0xff], uint(T0), kv("importWh", uint(1)), kv("exportWh", uint(2))),
      "malformed",
    ],
    ["a break outside indefinite length", cbor(arr(1), reading(...ok3), [0xff]), "malformed"],
    ["reserved additional information (0x1c)", cbor(arr(1), reading([0x1c], uint(1), uint(2))), "malformed"],
    ["true as a value", cbor(arr(1), reading(...ok3, kv("ok", [0xf5]))), "malformed"],
    ["null as a value", cbor(arr(1), reading(...ok3, kv("ok", [0xf6]))), "malformed"],
    ["a negative import counter", cbor(arr(1), reading(uint(T0), neg(-1), uint(2))), "out-of-range"],
    ["a negative export counter", cbor(arr(1), reading(uint(T0), uint(1), neg(-5))), "out-of-range"],
    ["a negative t", cbor(arr(1), reading(neg(-1), uint(1), uint(2))), "out-of-range"],
    ["a counter as text", cbor(arr(1), reading(uint(T0), text("1"), uint(2))), "malformed"],
    ["a counter as a byte string", cbor(arr(1), reading(uint(T0), [0x41, 0x01], uint(2))), "malformed"],
    ["a byte string as an extra value", cbor(arr(1), reading(...ok3, kv("raw", [0x42, 0x01, 0x02]))), "malformed"],
    ["an array as an extra value", cbor(arr(1), reading(...ok3, kv("phases", [...arr(1), ...uint(230)]))), "malformed"],
    ["a map as an extra value", cbor(arr(1), reading(...ok3, kv("meta", map(0)))), "malformed"],
    ["extra text longer than TEXT_BYTES_MAX", cbor(arr(1), reading(...ok3, kv("note", text("x".repeat(TEXT_BYTES_MAX + 1))))), "malformed"],
    ["a byte-string key", cbor(arr(1), map(3), [0x41, 0x74], uint(T0), kv("importWh", uint(1)), kv("exportWh", uint(2))), "malformed"],
    ["an integer key", cbor(arr(1), map(3), uint(1), uint(T0), kv("importWh", uint(1)), kv("exportWh", uint(2))), "malformed"],
    ["a key that is not UTF-8", cbor(arr(1), reading(...ok3, [0x62, 0xff, 0x41, ...uint(0)])), "malformed"],
    ["an overlong UTF-8 key", cbor(arr(1), reading(...ok3, [0x62, 0xc0, 0x80, ...uint(0)])), "malformed"],
    ["a UTF-16 surrogate in a key", cbor(arr(1), reading(...ok3, [0x63, 0xed, 0xa0, 0x80, ...uint(0)])), "malformed"],
    ["extra text cut inside a character", cbor(arr(1), reading(...ok3, kv("u", [0x62, 0x41, 0xc3]))), "malformed"],
    ["t twice", cbor(arr(1), reading(...ok3, kv("t", uint(T0)))), "malformed"],
    ["an unknown key twice", cbor(arr(1), reading(...ok3, kv("powerW", uint(1)), kv("powerW", uint(1)))), "malformed"],
    [
      "more than MAP_ENTRIES_MAX entries",
      cbor(arr(1), reading(...ok3, ...Array.from({ length: MAP_ENTRIES_MAX - 2 }, (_, i) => kv(`k${i}`, uint(i))))),
      "malformed",
    ],
    ["no t", cbor(arr(1), map(2), kv("importWh", uint(1)), kv("exportWh", uint(2))), "missing-field"],
    ["no importWh", cbor(arr(1), map(2), kv("t", uint(T0)), kv("exportWh", uint(2))), "missing-field"],
    ["no exportWh (powerW instead)", cbor(arr(1), map(3), kv("t", uint(T0)), kv("importWh", uint(1)), kv("powerW", uint(2))), "missing-field"],
    ["a t equal to the previous", cbor(arr(2), reading(uint(T0), uint(1), uint(2)), reading(uint(T0), uint(1), uint(2))), "not-increasing"],
    ["a t before the previous", cbor(arr(2), reading(uint(T0), uint(1), uint(2)), reading(uint(T0 - 1000), uint(3), uint(4))), "not-increasing"],
    ["an import counter going back", cbor(arr(2), reading(uint(T0), uint(10), uint(2)), reading(uint(T0 + 1000), uint(9), uint(2))), "counter-backwards"],
    ["an export counter going back", cbor(arr(2), reading(uint(T0), uint(10), uint(2)), reading(uint(T0 + 1000), uint(10), uint(1))), "counter-backwards"],
    ["a trailing byte", cbor(arr(1), reading(...ok3), uint(0)), "malformed"],
    ["a body cut short", cbor(arr(2), reading(...ok3)), "malformed"],
    ["a head cut short", cbor(arr(1), reading(uint(T0), uint(1), [0x19, 0x01])), "malformed"],
    ["a text cut short", cbor(arr(1), map(3), [0x68, 0x69, 0x6d]), "malformed"],
  ];
  it.each(refusals)("refuses %s", (_, body, error) => {
    const decoded = decodeMeterBody(body);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error).toBe(error);
    expect(decoded.detail.length).toBeGreaterThan(0);
  });

  it("accepts what the refusals are next to", () => {
    expect(meterError(cbor(arr(1), reading(...ok3)))).toBe("ok");
    expect(meterError(cbor(arr(1), reading(...ok3, kv("note", text("x".repeat(TEXT_BYTES_MAX))))))).toBe("ok");
    expect(meterError(cbor(arr(1), reading(...ok3, ...Array.from({ length: MAP_ENTRIES_MAX - 3 }, (_, i) => kv(`k${i}`, uint(i))))))).toBe("ok");
    expect(meterError(cbor(arr(1), reading(...ok3, kv("ä€𝄞", neg(-70_000)))))).toBe("ok");
    expect(meterError(cbor(arr(2), reading(uint(T0), uint(10), uint(2)), reading(uint(T0 + 1), uint(10), uint(2))))).toBe("ok"); // counters may stand still
  });
});

describe("decodeMeterBody, the column form (devices/readings.ts)", () => {
  /** A column body by hand: {t0, dtMs, cols: {name: values}} with entries in the order given. */
  const columns = (entries: number[][], cols: [string, number[][]][]) => [
    ...map(entries.length + 1),
    ...entries.flat(),
    ...text("cols"),
    ...map(cols.length),
    ...cols.flatMap(([name, values]) => [...text(name), ...arr(values.length), ...values.flat()]),
  ];
  const t0dt = [kv("t0", uint(T0)), kv("dtMs", uint(1_000))];
  const counters = (importWh: number[][], exportWh: number[][]): [string, number[][]][] => [
    ["importWh", importWh],
    ["exportWh", exportWh],
  ];

  it("reads what devices send as rows would read: 60 simulated readings, powerW and voltageV skipped", () => {
    const readings = deviceReadings(60);
    const body = encodeReadings(readings);
    expect(body[0]! >> 5).toBe(5); // a map: the column form
    expect(body.length).toBeLessThan(400);
    expect(decodeMeterBody(body)).toEqual({ ok: true, value: readings.map(only) });
    expect(decodeMeterBody(body)).toEqual(decodeMeterBody(encodeBody(readings)));
  });

  it("reads back any readings at a steady step, and does not depend on the order of keys or columns", () => {
    const step = fc.record({ dImport: fc.nat(10 ** 6), dExport: fc.nat(10 ** 6), powerW: fc.integer({ min: -(2 ** 31), max: 2 ** 31 }) });
    fc.assert(
      fc.property(
        fc.nat(2 ** 50),
        fc.integer({ min: 1, max: 10 ** 6 }),
        fc.array(step, { minLength: 2, maxLength: 40 }),
        fc.boolean(),
        (t0, dtMs, steps, reversed) => {
          let importWh = 0;
          let exportWh = 0;
          const readings = steps.map((s, i) => {
            importWh += s.dImport;
            exportWh += s.dExport;
            const r = { t: t0 + i * dtMs, importWh, exportWh, powerW: s.powerW };
            return reversed ? Object.fromEntries(Object.entries(r).reverse()) : r;
          }) as { t: number; importWh: number; exportWh: number }[];
          expect(decodeMeterBody(encodeReadings(readings))).toEqual({ ok: true, value: readings.map(only) });
        },
      ),
      { numRuns: 300 },
    );
    const body = cbor([
      ...map(3),
      ...kv("dtMs", uint(1_000)),
      ...text("cols"),
      ...map(2),
      ...text("exportWh"),
      ...arr(1),
      ...uint(2),
      ...text("importWh"),
      ...arr(1),
      ...uint(1),
      ...kv("t0", uint(T0)),
    ]);
    expect(decodeMeterBody(body)).toEqual({ ok: true, value: [{ t: T0, importWh: 1, exportWh: 2 }] });
  });

  it("takes READINGS_PER_ENVELOPE_MAX readings, and counters up to 2^53 − 1", () => {
    const n = READINGS_PER_ENVELOPE_MAX;
    const zeros = Array.from({ length: n - 1 }, () => uint(0));
    expect(decodeMeterBody(cbor(columns(t0dt, counters([uint(1), ...zeros], [uint(2), ...zeros]))))).toMatchObject({ ok: true, value: { length: n } });
    const max = Number.MAX_SAFE_INTEGER;
    expect(decodeMeterBody(cbor(columns([kv("t0", uint(max - 1)), kv("dtMs", uint(1))], counters([uint(max - 5), uint(5)], [uint(0), uint(max)]))))).toEqual({
      ok: true,
      value: [
        { t: max - 1, importWh: max - 5, exportWh: 0 },
        { t: max, importWh: max, exportWh: max },
      ],
    });
  });

  const ok = counters([uint(10), uint(1)], [uint(2), uint(0)]);
  const refusals: [string, number[], BodyError][] = [
    ["dtMs = 0", columns([kv("t0", uint(T0)), kv("dtMs", uint(0))], ok), "not-increasing"],
    ["a negative dtMs", columns([kv("t0", uint(T0)), kv("dtMs", neg(-1000))], ok), "out-of-range"],
    ["a negative t0", columns([kv("t0", neg(-1)), kv("dtMs", uint(1000))], ok), "out-of-range"],
    ["a last t past 2^53 − 1", columns([kv("t0", uint(Number.MAX_SAFE_INTEGER)), kv("dtMs", uint(1))], ok), "out-of-range"],
    ["an import counter going back", columns(t0dt, counters([uint(10), neg(-1)], [uint(2), uint(0)])), "counter-backwards"],
    ["an export counter going back", columns(t0dt, counters([uint(10), uint(0)], [uint(2), neg(-3)])), "counter-backwards"],
    ["a negative first counter value", columns(t0dt, counters([neg(-10), uint(1)], [uint(2), uint(0)])), "out-of-range"],
    ["a counter summing past 2^53 − 1", columns(t0dt, counters([uint(Number.MAX_SAFE_INTEGER), uint(1)], [uint(2), uint(0)])), "out-of-range"],
    ["a float difference", columns(t0dt, counters([uint(10), f64(0.5)], [uint(2), uint(0)])), "float"],
    ["columns of different lengths", columns(t0dt, counters([uint(10), uint(1)], [uint(2)])), "malformed"],
    ["an unknown column of another length", columns(t0dt, [...ok, ["powerW", [uint(1)]]]), "malformed"],
    ["an unknown column holding text", columns(t0dt, [...ok, ["status", [text("ok"), text("ok")]]]), "malformed"],
    ["an unknown column holding an integer past 2^53", columns(t0dt, [...ok, ["powerW", [uint(1), neg(-(2 ** 53))]]]), "out-of-range"],
    [
      "an unknown column that is not an array",
      [...map(3), ...t0dt.flat(), ...text("cols"), ...map(3), ...ok.flatMap(([k, v]) => [...text(k), ...arr(v.length), ...v.flat()]), ...kv("powerW", uint(5))],
      "malformed",
    ],
    ["a column twice", columns(t0dt, [...ok, ["importWh", [uint(1), uint(1)]]]), "malformed"],
    [
      "an unknown key twice, around the columns",
      [...columns([...t0dt, kv("unit", uint(1))], [...ok, ["powerW", [uint(1), uint(1)]]]).map((b, i) => (i === 0 ? b + 1 : b)), ...kv("unit", uint(1))],
      "malformed",
    ],
    ["an unknown column twice", columns(t0dt, [...ok, ["powerW", [uint(1), uint(1)]], ["powerW", [uint(1), uint(1)]]]), "malformed"],
    ["t0 twice", columns([...t0dt, kv("t0", uint(T0))], ok), "malformed"],
    ["cols twice", [...columns(t0dt, ok).map((b, i) => (i === 0 ? b + 1 : b)), ...text("cols"), ...map(0)], "malformed"],
    ["no readings", columns(t0dt, counters([], [])), "malformed"],
    [
      "more than READINGS_PER_ENVELOPE_MAX readings",
      columns(
        t0dt,
        counters(
          Array.from({ length: READINGS_PER_ENVELOPE_MAX + 1 }, () => uint(0)),
          [],
        ),
      ),
      "too-many",
    ],
    ["no t0", columns([kv("dtMs", uint(1000))], ok), "missing-field"],
    ["no dtMs", columns([kv("t0", uint(T0))], ok), "missing-field"],
    ["no exportWh", columns(t0dt, [ok[0]!, ["powerW", [uint(1), uint(1)]]]), "missing-field"],
    ["no cols", [...map(2), ...t0dt.flat()], "missing-field"],
    ["cols not a map", [...map(3), ...t0dt.flat(), ...kv("cols", arr(0))], "malformed"],
    ["a trailing byte", [...columns(t0dt, ok), ...uint(0)], "malformed"],
    ["a body cut short", columns(t0dt, ok).slice(0, -1), "malformed"],
  ];
  it.each(refusals)("refuses %s", (_, body, error) => {
    const decoded = decodeMeterBody(cbor(body));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error).toBe(error);
    expect(decoded.detail.length).toBeGreaterThan(0);
  });

  it("accepts what the refusals are next to", () => {
    expect(decodeMeterBody(cbor(columns(t0dt, ok)))).toEqual({
      ok: true,
      value: [
        { t: T0, importWh: 10, exportWh: 2 },
        { t: T0 + 1_000, importWh: 11, exportWh: 2 },
      ],
    });
    expect(meterError(cbor(columns(t0dt, [...ok, ["powerW", [uint(1), neg(-(2 ** 53 - 1))]], ["v", [neg(-1), uint(2 ** 53 - 1)]]])))).toBe("ok");
    expect(meterError(cbor(columns([...t0dt, kv("unit", text("Wh"))], ok)))).toBe("ok");
  });
});

describe("decodeMeterResetBody", () => {
  it("reads one reading, in rows (what the SDK writes for one) or columns", () => {
    const at = 1_750_000_000_000;
    expect(decodeMeterResetBody(encodeReadings([{ t: at, importWh: 0, exportWh: 12 }]))).toEqual({ ok: true, value: { t: at, importWh: 0, exportWh: 12 } });
    expect(decodeMeterResetBody(encodeCbor({ t0: at, dtMs: 1_000, cols: { importWh: [7], exportWh: [0] } }))).toEqual({
      ok: true,
      value: { t: at, importWh: 7, exportWh: 0 },
    });
  });

  it("refuses more than one reading, a bare map, and what a meter.reading body may not be", () => {
    const at = 1_750_000_000_000;
    expect(
      decodeMeterResetBody(
        encodeReadings([
          { t: at, importWh: 0, exportWh: 0 },
          { t: at + 1, importWh: 0, exportWh: 0 },
        ]),
      ),
    ).toMatchObject({ ok: false, error: "too-many" });
    expect(decodeMeterResetBody(encodeCbor({ t: at, importWh: 0, exportWh: 0 }))).toMatchObject({ ok: false, error: "missing-field" }); // a map is the column form
    expect(decodeMeterResetBody(encodeCbor([]))).toMatchObject({ ok: false, error: "malformed" });
    expect(decodeMeterResetBody(encodeCbor([{ t: at, importWh: -1, exportWh: 0 }]))).toMatchObject({ ok: false, error: "out-of-range" });
  });
});

describe("decodeOrderBody", () => {
  it("reads what an agent sends", () => {
    const order = {
      interval: 96,
      orders: [
        { side: "bid", energyWh: 500, priceMicrosPerKwh: 250_000 },
        { side: "bid", energyWh: 300, priceMicrosPerKwh: 180_000 },
      ],
    };
    expect(decodeOrderBody(encodeCbor(order))).toEqual({ ok: true, value: order });
    const ask = { interval: 0, orders: [{ side: "ask", energyWh: 1, priceMicrosPerKwh: 0 }] };
    expect(decodeOrderBody(encodeCbor(ask))).toEqual({ ok: true, value: ask });
  });

  it("reads no lines as a withdrawal", () => {
    expect(decodeOrderBody(encodeCbor({ interval: 7, orders: [] }))).toEqual({ ok: true, value: { interval: 7, orders: [] } });
  });

  it("skips unknown keys and does not depend on key order", () => {
    const body = encodeCbor({ note: "step 1", orders: [{ priceMicrosPerKwh: 9, tag: 3, energyWh: 10, side: "ask" }], agent: 1, interval: 5 });
    expect(decodeOrderBody(body)).toEqual({ ok: true, value: { interval: 5, orders: [{ side: "ask", energyWh: 10, priceMicrosPerKwh: 9 }] } });
  });

  it("takes the bounds and refuses one past them", () => {
    const line = (energyWh: number, priceMicrosPerKwh: number) => ({ side: "bid", energyWh, priceMicrosPerKwh });
    const body = (interval: number, lines: object[]) => encodeCbor({ interval, orders: lines });
    expect(orderError(body(ORDER_INTERVAL_MAX, [line(ORDER_ENERGY_WH_MAX, PRICE_MICROS_PER_KWH_MAX)]))).toBe("ok");
    expect(orderError(body(ORDER_INTERVAL_MAX + 1, []))).toBe("out-of-range"); // 2^32: a float64 from cbor-x, read as an integer, then refused
    expect(orderError(body(1, [line(0, 1)]))).toBe("out-of-range");
    expect(orderError(body(1, [line(ORDER_ENERGY_WH_MAX + 1, 1)]))).toBe("out-of-range");
    expect(orderError(body(1, [line(1, PRICE_MICROS_PER_KWH_MAX + 1)]))).toBe("out-of-range");
    expect(
      orderError(
        body(
          1,
          Array.from({ length: ORDER_LINES_PER_ENVELOPE_MAX }, (_, i) => line(1, i)),
        ),
      ),
    ).toBe("ok");
    expect(
      orderError(
        body(
          1,
          Array.from({ length: ORDER_LINES_PER_ENVELOPE_MAX + 1 }, (_, i) => line(1, i)),
        ),
      ),
    ).toBe("too-many");
  });

  const bidLine = () => [...map(3), ...kv("side", text("bid")), ...kv("energyWh", uint(10)), ...kv("priceMicrosPerKwh", uint(100))];
  const orderBody = (...lines: number[][]) => cbor(map(2), kv("interval", uint(3)), text("orders"), arr(lines.length), ...lines);
  const refusals: [string, Uint8Array, BodyError][] = [
    ["an empty body", cbor(), "malformed"],
    ["an array, not a map", cbor(arr(0)), "malformed"],
    // The lines' maps are read between the two: the body's unknown keys are still remembered.
    [
      "an unknown key twice, around the lines",
      cbor(
        map(4),
        kv("note", uint(1)),
        kv("interval", uint(1)),
        text("orders"),
        arr(1),
        map(4),
        kv("side", text("bid")),
        kv("energyWh", uint(1)),
        kv("priceMicrosPerKwh", uint(1)),
        kv("tag", uint(0)),
        kv("note", uint(1)),
      ),
      "malformed",
    ],
    [
      "mixed sides",
      encodeCbor({
        interval: 1,
        orders: [
          { side: "bid", energyWh: 1, priceMicrosPerKwh: 1 },
          { side: "ask", energyWh: 1, priceMicrosPerKwh: 1 },
        ],
      }),
      "mixed-sides",
    ],
    ["an unknown side", encodeCbor({ interval: 1, orders: [{ side: "buy", energyWh: 1, priceMicrosPerKwh: 1 }] }), "unknown-side"],
    ["a side that is not text", encodeCbor({ interval: 1, orders: [{ side: 0, energyWh: 1, priceMicrosPerKwh: 1 }] }), "malformed"],
    ["a fractional price", encodeCbor({ interval: 1, orders: [{ side: "bid", energyWh: 1, priceMicrosPerKwh: 0.5 }] }), "float"],
    [
      "a half-float energy",
      orderBody([...map(3), ...kv("side", text("bid")), ...kv("energyWh", [0xf9, 0x3c, 0x00]), ...kv("priceMicrosPerKwh", uint(1))]),
      "float",
    ],
    ["a negative interval", encodeCbor({ interval: -1, orders: [] }), "out-of-range"],
    ["a negative energy", encodeCbor({ interval: 1, orders: [{ side: "bid", energyWh: -5, priceMicrosPerKwh: 1 }] }), "out-of-range"],
    ["no interval", encodeCbor({ orders: [] }), "missing-field"],
    ["no orders", encodeCbor({ interval: 1 }), "missing-field"],
    ["a line without a price", encodeCbor({ interval: 1, orders: [{ side: "bid", energyWh: 1 }] }), "missing-field"],
    ["a line without a side", encodeCbor({ interval: 1, orders: [{ energyWh: 1, priceMicrosPerKwh: 1 }] }), "missing-field"],
    ["orders that are not an array", encodeCbor({ interval: 1, orders: { side: "bid" } }), "malformed"],
    ["a line that is not a map", orderBody(uint(1)), "malformed"],
    ["interval twice", cbor(map(3), kv("interval", uint(3)), kv("interval", uint(4)), kv("orders", arr(0))), "malformed"],
    [
      "side twice",
      orderBody([...map(4), ...kv("side", text("bid")), ...kv("side", text("bid")), ...kv("energyWh", uint(10)), ...kv("priceMicrosPerKwh", uint(100))]),
      "malformed",
    ],
    ["a tag on the interval", cbor(map(2), kv("interval", [0xc1, ...uint(3)]), kv("orders", arr(0))), "malformed"],
    ["an indefinite-length orders array", cbor(map(2), kv("interval", uint(3)), text("orders"), [0x9f], bidLine(), [0xff]), "malformed"],
    ["nine lines, by the count alone", cbor(map(2), kv("interval", uint(3)), text("orders"), arr(ORDER_LINES_PER_ENVELOPE_MAX + 1)), "too-many"],
    ["a trailing byte", cbor([...orderBody(bidLine())], uint(0)), "malformed"],
  ];
  it.each(refusals)("refuses %s", (_, body, error) => {
    const decoded = decodeOrderBody(body);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.error).toBe(error);
    expect(decoded.detail.length).toBeGreaterThan(0);
  });

  it("accepts the hand-made body the refusals are variations of", () => {
    expect(decodeOrderBody(orderBody(bidLine(), bidLine()))).toEqual({
      ok: true,
      value: { interval: 3, orders: [0, 1].map(() => ({ side: "bid", energyWh: 10, priceMicrosPerKwh: 100 })) },
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Garbage: never a throw, always ok or a known code.

const known = new Set<string>(BODY_ERRORS);

function checkMeter(body: Uint8Array): void {
  const decoded = decodeMeterBody(body);
  if (!decoded.ok) {
    expect(known.has(decoded.error)).toBe(true);
    expect(typeof decoded.detail).toBe("string");
    return;
  }
  const readings = decoded.value;
  expect(readings.length).toBeGreaterThanOrEqual(1);
  expect(readings.length).toBeLessThanOrEqual(READINGS_PER_ENVELOPE_MAX);
  for (const [i, r] of readings.entries()) {
    for (const v of [r.t, r.importWh, r.exportWh]) expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
    if (i > 0) {
      expect(r.t).toBeGreaterThan(readings[i - 1]!.t);
      expect(r.importWh).toBeGreaterThanOrEqual(readings[i - 1]!.importWh);
      expect(r.exportWh).toBeGreaterThanOrEqual(readings[i - 1]!.exportWh);
    }
  }
}

function checkOrder(body: Uint8Array): void {
  const decoded = decodeOrderBody(body);
  if (!decoded.ok) {
    expect(known.has(decoded.error)).toBe(true);
    expect(typeof decoded.detail).toBe("string");
    return;
  }
  const { interval, orders } = decoded.value;
  expect(Number.isInteger(interval) && interval >= 0 && interval <= ORDER_INTERVAL_MAX).toBe(true);
  expect(orders.length).toBeLessThanOrEqual(ORDER_LINES_PER_ENVELOPE_MAX);
  for (const line of orders) {
    expect(line.side).toBe(orders[0]!.side);
    expect(Number.isInteger(line.energyWh) && line.energyWh >= 1 && line.energyWh <= ORDER_ENERGY_WH_MAX).toBe(true);
    expect(Number.isInteger(line.priceMicrosPerKwh) && line.priceMicrosPerKwh >= 0 && line.priceMicrosPerKwh <= PRICE_MICROS_PER_KWH_MAX).toBe(true);
  }
}

/** A valid body changed at a few places: bytes overwritten, cut short, or bytes inserted. */
function mutated(valid: Uint8Array) {
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.nat(255) }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), byte: fc.constant(0) }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.nat(255) }),
  );
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let b = Array.from(valid);
    for (const e of edits) {
      const at = b.length === 0 ? 0 : e.at % b.length;
      if (e.kind === "set") b[at] = e.byte;
      else if (e.kind === "cut") b = b.slice(0, at);
      else b.splice(at, 0, e.byte);
    }
    return new Uint8Array(b);
  });
}

describe("decoders on garbage", () => {
  it("never throw on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (body) => {
        checkMeter(body);
        checkOrder(body);
      }),
      { numRuns: 2_000 },
    );
  });

  it("never throw on bytes that start like a body", () => {
    // Arbitrary bytes rarely get past the first head; these do, into the readings and the lines.
    const prefixes = [
      cbor(arr(2), map(5), text("t")),
      cbor(arr(1), map(3)),
      cbor(map(3), kv("t0", uint(T0)), kv("dtMs", uint(1)), text("cols"), map(2)),
      cbor(map(3), text("cols"), map(1), text("importWh")),
      cbor(map(2), text("orders"), arr(3), map(3), text("side")),
      cbor(map(2), kv("interval", uint(1)), text("orders")),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 128 }), (prefix, rest) => {
        const body = new Uint8Array([...prefix, ...rest]);
        checkMeter(body);
        checkOrder(body);
      }),
      { numRuns: 2_000 },
    );
  });

  it("never throw on mutated meter bodies", () => {
    const valid = encodeCbor(deviceReadings(4));
    fc.assert(
      fc.property(mutated(valid), (body) => checkMeter(body)),
      { numRuns: 2_000 },
    );
  });

  it("never throw on mutated meter bodies in the column form", () => {
    const valid = encodeReadings(deviceReadings(4));
    fc.assert(
      fc.property(mutated(valid), (body) => checkMeter(body)),
      { numRuns: 2_000 },
    );
  });

  it("never throw on mutated order bodies", () => {
    const valid = encodeCbor({
      interval: 12,
      orders: [
        { side: "ask", energyWh: 700, priceMicrosPerKwh: 120_000 },
        { side: "ask", energyWh: 300, priceMicrosPerKwh: 90_000 },
      ],
    });
    fc.assert(
      fc.property(mutated(valid), (body) => checkOrder(body)),
      { numRuns: 2_000 },
    );
  });

  it("read back any valid readings cbor-x writes", () => {
    const step = fc.record({
      dt: fc.integer({ min: 1, max: 10 ** 7 }),
      dImport: fc.nat(10 ** 6),
      dExport: fc.nat(10 ** 6),
      powerW: fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
    });
    fc.assert(
      fc.property(fc.nat(Number.MAX_SAFE_INTEGER - 2 * 10 ** 10), fc.array(step, { minLength: 1, maxLength: 40 }), (t0, steps) => {
        let t = t0;
        let importWh = 0;
        let exportWh = 0;
        const readings = steps.map((s) => {
          t += s.dt;
          importWh += s.dImport;
          exportWh += s.dExport;
          return { t, importWh, exportWh, powerW: s.powerW };
        });
        expect(decodeMeterBody(encodeCbor(readings))).toEqual({ ok: true, value: readings.map(only) });
      }),
      { numRuns: 300 },
    );
  });
});
