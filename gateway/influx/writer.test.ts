/** Unit tests: no ports. The real-influxd tests are in writer.influxd.test.ts. */
import { InfluxDB } from "influx";
import { describe, expect, it } from "vitest";
import { type InfluxPoint, pointProblem } from "./point.ts";
import { InfluxWriter, toPackagePoint } from "./writer.ts";

/** A client for its pure `parsePoint` (the line the package would send); constructing it opens nothing. */
const pkg = new InfluxDB({ host: "127.0.0.1", port: 9, database: "unit" });

function point(over: Partial<InfluxPoint> = {}): InfluxPoint {
  return { measurement: "meter.reading", tags: { device: "d1" }, fields: { energyWh: 1n }, timestampMs: 1_000, ...over };
}

describe("the influx package's field coercion", () => {
  it("writes numbers and bigints as floats on its own (why LineInteger exists)", () => {
    const parsed = pkg.parsePoint({ measurement: "m", fields: { n: 5, b: 5n } }, { precision: "ms" });
    expect(parsed.fieldsPairs).toEqual([
      ["b", "5"],
      ["n", "5"],
    ]);
  });

  it("toPackagePoint: bigint → exact `…i` integer, number → float, escaped measurement, sorted tags, timestamp 0 kept", () => {
    const parsed = pkg.parsePoint(
      toPackagePoint({
        measurement: "a b,c",
        tags: { z: "1", a: "x y", empty: "" },
        fields: { big: 9_007_199_254_740_993n, neg: -(1n << 63n), f: 1.5, n: 2, ok: true, s: 'say "hi"\\' },
        timestampMs: 0,
      }),
      { precision: "ms" },
    );
    expect(parsed.measurement).toBe("a\\ b\\,c");
    expect(parsed.tagsNames).toEqual(["a", "z"]);
    expect(Object.fromEntries(parsed.fieldsPairs)).toEqual({
      big: "9007199254740993i",
      neg: "-9223372036854775808i",
      f: "1.5",
      n: "2",
      ok: "true",
      s: '"say \\"hi\\"\\\\"',
    });
    expect(parsed.castedTimestamp).toBe("0");
  });
});

describe("pointProblem", () => {
  it("accepts a well-formed point", () => {
    expect(pointProblem(point({ fields: { a: 1n, b: 1.5, c: false, d: "x" } }))).toBeNull();
  });

  it.each<[string, InfluxPoint]>([
    ["empty measurement", point({ measurement: "" })],
    ["newline in measurement", point({ measurement: "a\nb" })],
    ["backslash in tag value", point({ tags: { device: "a\\" } })],
    ["reserved tag key", point({ tags: { time: "x" } })],
    ["reserved field key", point({ fields: { time: 1n } })],
    ["no fields", point({ fields: {} })],
    ["NaN field", point({ fields: { a: Number.NaN } })],
    ["bigint past int64", point({ fields: { a: 1n << 63n } })],
    ["long string field", point({ fields: { a: "x".repeat(1025) } })],
    ["fractional time", point({ timestampMs: 1.5 })],
    ["time past 2262", point({ timestampMs: 9_300_000_000_000 })],
    ["null field", point({ fields: { a: null as unknown as number } })],
    ["non-string tag", point({ tags: { a: 1 as unknown as string } })],
  ])("refuses %s", (_, p) => {
    expect(pointProblem(p)).not.toBeNull();
  });
});

describe("InfluxWriter without a server", () => {
  it("add never throws on garbage and counts it as invalid", () => {
    const w = new InfluxWriter({ url: "http://127.0.0.1:9", bufferPointsMax: 10, batchPointsMax: 5 });
    const garbage = [
      null,
      3,
      {},
      point({ fields: { a: Number.POSITIVE_INFINITY } }),
      point({ measurement: 7 as unknown as string }),
    ] as unknown as InfluxPoint[];
    expect(() => w.add(garbage)).not.toThrow();
    expect(() => w.add(undefined as unknown as InfluxPoint[])).not.toThrow();
    expect(w.stats()).toMatchObject({ buffered: 0, invalid: 6, dropped: 0 });
  });

  it("keeps at most bufferPointsMax points, counting the dropped ones", () => {
    const w = new InfluxWriter({ url: "http://127.0.0.1:9", bufferPointsMax: 10, batchPointsMax: 5 });
    for (let i = 0; i < 25; i++) w.add([point({ timestampMs: i })]);
    expect(w.stats()).toMatchObject({ buffered: 10, dropped: 15, written: 0 });
  });

  it("refuses limits that cannot work", () => {
    expect(() => new InfluxWriter({ url: "http://127.0.0.1:9", bufferPointsMax: 5, batchPointsMax: 5 })).toThrow(/below bufferPointsMax/);
    expect(() => new InfluxWriter({ url: "http://127.0.0.1:9", flushIntervalMs: 0 })).toThrow(/positive integer/);
    expect(() => new InfluxWriter({ url: "ftp://x" })).toThrow(/http/);
  });
});
