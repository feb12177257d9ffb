/**
 * InfluxWriter against a real influxd (InfluxDB 1.6 from Debian), started by the test on free
 * loopback ports. Nothing here is mocked. influxd comes from scripts/test.sh (DEBIAN_NEEDS).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Influxd, influxdAvailable, startInfluxd } from "../testing/influxd.ts";
import type { InfluxPoint } from "./point.ts";
import { readingsToPoints } from "./readings.ts";
import { InfluxWriter } from "./writer.ts";

const DEVICE = "0123456789abcdef0123456789abcdef";
const BASE_MS = 1_718_000_000_000;
/** Every wait in these tests ends by then. */
const WAIT_MS = 15_000;
/** One query's limit. */
const QUERY_TIMEOUT_MS = 5_000;
/** Small, fast limits so retries happen within a test. */
const FAST = { batchPointsMax: 500, flushIntervalMs: 50, retryBackoffMs: { initial: 50, max: 200 }, requestTimeoutMs: 2_000 } as const;

let influxd: Influxd;

beforeAll(async () => {
  if (!influxdAvailable())
    throw new Error("influxd is not installed: run `npm test`, which installs the Debian package influxdb (scripts/test.sh DEBIAN_NEEDS)");
  influxd = await startInfluxd();
});

afterAll(async () => {
  await influxd?.stop();
});

/** Runs an InfluxQL query; returns the raw JSON text (exact integers) and its parse. */
async function query(database: string, q: string): Promise<{ text: string; series: { columns: string[]; values: unknown[][] }[] }> {
  const res = await fetch(`${influxd.url}/query?db=${encodeURIComponent(database)}&epoch=ms&q=${encodeURIComponent(q)}`, {
    signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const body = JSON.parse(text) as { results: { series?: { columns: string[]; values: unknown[][] }[]; error?: string }[] };
  expect(body.results[0]?.error, text).toBeUndefined();
  return { text, series: body.results[0]?.series ?? [] };
}

async function waitUntil(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function reading(seq: number): InfluxPoint[] {
  return readingsToPoints(DEVICE, "meter.reading", [{ t: BASE_MS + seq, seq, energyWh: 1000 + seq, phase: "L1" }], BASE_MS).points;
}

describe("InfluxWriter with a real influxd", () => {
  it("writes readings that query back, with integers as integers (exact past 2^53)", async () => {
    const writer = new InfluxWriter({ url: influxd.url, database: "happy", bufferPointsMax: 10_000, ...FAST });
    writer.start();
    try {
      for (let seq = 0; seq < 1_200; seq++) writer.add(reading(seq));
      writer.add(readingsToPoints(DEVICE, "meter.reading", [{ t: BASE_MS - 1, big: 9_007_199_254_740_993n }], BASE_MS).points);
      await writer.flush();
      expect(writer.stats()).toMatchObject({ buffered: 0, written: 1_201, dropped: 0, invalid: 0, rejected: 0 });

      const count = await query(
        "happy",
        `SELECT count("energyWh"), min("seq"), max("seq") FROM "meter.reading" WHERE "device" = '${DEVICE}' AND "phase" = 'L1'`,
      );
      expect(count.series[0]?.values[0]?.slice(1)).toEqual([1_200, 0, 1_199]);

      const one = await query("happy", `SELECT "energyWh", "seq" FROM "meter.reading" WHERE time = ${BASE_MS + 7}ms`);
      expect(one.series[0]?.values).toEqual([[BASE_MS + 7, 1_007, 7]]);

      const types = await query("happy", `SHOW FIELD KEYS FROM "meter.reading"`);
      expect(Object.fromEntries(types.series[0]?.values as [string, string][])).toEqual({ big: "integer", energyWh: "integer", seq: "integer" });

      // JSON.parse would round it; the response text carries InfluxDB's exact int64.
      const big = await query("happy", `SELECT "big" FROM "meter.reading" WHERE "big" > 0`);
      expect(big.text).toContain("9007199254740993");
    } finally {
      await writer.stop();
    }
  });

  it("counts a refused batch (field type conflict) without retrying it, and recreates a dropped database", async () => {
    const writer = new InfluxWriter({ url: influxd.url, database: "conflict", bufferPointsMax: 10_000, ...FAST });
    writer.start();
    try {
      const at = (ms: number, energyWh: number | bigint): InfluxPoint => ({
        measurement: "meter.reading",
        tags: { device: DEVICE },
        fields: { energyWh },
        timestampMs: ms,
      });
      writer.add([at(1, 5n)]);
      await writer.flush();
      writer.add([at(2, 6n), at(3, 1.5), at(4, 7n)]);
      await writer.flush();
      expect(writer.stats()).toMatchObject({ buffered: 0, written: 3, rejected: 1 });
      expect(writer.stats().lastError?.kind).toBe("rejected");

      await query("conflict", `DROP DATABASE "conflict"`);
      writer.add([at(5, 8n)]);
      await waitUntil("the point is written after the database is recreated", () => writer.stats().written === 4);
      const count = await query("conflict", `SELECT count("energyWh") FROM "meter.reading"`);
      expect(count.series[0]?.values[0]?.[1]).toBe(1);
    } finally {
      await writer.stop();
    }
  });

  it("with influxd down: add stays fast, the bound drops the oldest, and a restart gets the buffered points written", async () => {
    const bufferPointsMax = 2_000;
    const writer = new InfluxWriter({ url: influxd.url, database: "outage", bufferPointsMax, ...FAST });
    writer.start();
    try {
      for (let seq = 0; seq < 100; seq++) writer.add(reading(seq));
      await writer.flush();
      expect(writer.stats()).toMatchObject({ written: 100, buffered: 0 });

      await influxd.kill();
      // A writer started while InfluxDB is down creates its database once it is back.
      const late = new InfluxWriter({ url: influxd.url, database: "late", bufferPointsMax: 100, ...FAST, batchPointsMax: 50 });
      late.start();
      late.add(Array.from({ length: 10 }, (_, i) => reading(i)).flat());

      writer.add(reading(100));
      await writer.flush(); // fails fast (connection refused); the writer is now backing off
      expect(writer.stats().lastError?.kind).toBe("unavailable");
      expect(writer.stats().buffered).toBe(1);

      // add does not wait on the network: these are taken synchronously, the bound drops the rest.
      const adds = 10_000;
      for (let seq = 101; seq < 101 + adds; seq++) writer.add(reading(seq));
      expect(writer.stats()).toMatchObject({ buffered: bufferPointsMax, dropped: adds + 1 - bufferPointsMax, written: 100 });

      const failedBefore = writer.stats().failedBatches;
      await waitUntil("the writer retries in the background", () => writer.stats().failedBatches > failedBefore);

      await influxd.restart();
      await waitUntil("the buffered points are written after the restart", () => writer.stats().buffered === 0 && late.stats().buffered === 0);
      expect(writer.stats()).toMatchObject({ written: 100 + bufferPointsMax, dropped: adds + 1 - bufferPointsMax, rejected: 0 });

      // The newest bufferPointsMax of seq 100 … 10,100 were kept: 8,101 … 10,100.
      const kept = await query("outage", `SELECT count("seq"), min("seq"), max("seq") FROM "meter.reading" WHERE "seq" >= 100`);
      expect(kept.series[0]?.values[0]?.slice(1)).toEqual([bufferPointsMax, 101 + adds - bufferPointsMax, 100 + adds]);
      const before = await query("outage", `SELECT count("seq") FROM "meter.reading" WHERE "seq" < 100`);
      expect(before.series[0]?.values[0]?.[1]).toBe(100);
      const lateCount = await query("late", `SELECT count("seq") FROM "meter.reading"`);
      expect(lateCount.series[0]?.values[0]?.[1]).toBe(10);
      await late.stop();
    } finally {
      await writer.stop();
    }
  });
});
