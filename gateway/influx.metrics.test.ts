/**
 * The InfluxDB writer's metrics (gateway/metrics.ts) against a real influxd: what /metrics says
 * (the registry's text, as GET /metrics serves it) is the writer's `stats()` at the time of the
 * scrape, after points were written, refused and invalid, and after influxd stopped and the
 * writer's buffer overflowed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InfluxWriter, type InfluxWriterStats } from "./influx/writer.ts";
import { connectDevice, envelopeBytes, type Harness, startHarness } from "./testing/harness.ts";
import { type Influxd, startInfluxd } from "./testing/influxd.ts";

/** Every wait in this test ends by then. */
const WAIT_MS = 20_000;
/** Small, so five envelopes of 60 readings overflow it while influxd is down. */
const BUFFER_POINTS_MAX = 200;
const READINGS = 60;
const BASE_MS = 1_700_000_000_000;

let influxd: Influxd;
let writer: InfluxWriter;
let h: Harness;

beforeAll(async () => {
  influxd = await startInfluxd();
  writer = new InfluxWriter({
    url: influxd.url,
    batchPointsMax: 100,
    bufferPointsMax: BUFFER_POINTS_MAX,
    flushIntervalMs: 50,
    retryBackoffMs: { initial: 50, max: 200 },
    requestTimeoutMs: 2_000,
  });
  writer.start();
  h = await startHarness({ gateway: { influx: writer } });
}, 30_000);

afterAll(async () => {
  await h?.stop();
  await writer?.stop();
  await influxd?.stop();
});

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${WAIT_MS} ms: ${what} (stats ${JSON.stringify(writer.stats())})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The influx metrics of one scrape, by line name (`name{labels}`); absent lines are missing keys. */
async function scrape(): Promise<Record<string, number>> {
  const text = await h.gateway.metrics.registry.metrics();
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("jamgate_influx_")) continue;
    const space = line.lastIndexOf(" ");
    values[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return values;
}

/** What the metrics must say for these stats. */
function expected(stats: InfluxWriterStats): Record<string, number> {
  return {
    jamgate_influx_buffered_points: stats.buffered,
    'jamgate_influx_points_total{outcome="written"}': stats.written,
    'jamgate_influx_points_total{outcome="dropped"}': stats.dropped,
    'jamgate_influx_points_total{outcome="invalid"}': stats.invalid,
    'jamgate_influx_points_total{outcome="rejected"}': stats.rejected,
    jamgate_influx_failed_batches_total: stats.failedBatches,
  };
}

const readings = (seq: number) => Array.from({ length: READINGS }, (_, i) => ({ t: BASE_MS + seq * 60_000 + i * 1000, importWh: 10_000 + seq * 60 + i }));

describe("the InfluxDB writer on /metrics", () => {
  it("reports the writer's stats when scraped: written, refused and invalid points, then buffered and dropped ones while influxd is down", async () => {
    const key = await h.register();
    const device = await connectDevice(h.gateway.mqttPort, key);
    try {
      const topic = `devices/${key.deviceId}/up/meter.reading`;
      await device.client.publishAsync(topic, Buffer.from(envelopeBytes(key, 0, readings(0))), { qos: 1 });
      await waitUntil("the envelope's readings written", () => writer.stats().written === READINGS);
      // A point refused for its shape, and one InfluxDB refuses: a float into the integer field importWh ("field type conflict", 400).
      writer.add([{ measurement: "", tags: {}, fields: { importWh: 1n }, timestampMs: BASE_MS }]);
      writer.add([{ measurement: "meter.reading", tags: { device: key.deviceId }, fields: { importWh: 1.5 }, timestampMs: BASE_MS - 1 }]);
      await waitUntil("the float point rejected", () => writer.stats().rejected === 1);
      const written = writer.stats();
      expect(written).toMatchObject({ buffered: 0, written: READINGS, dropped: 0, invalid: 1, rejected: 1, failedBatches: 1 });
      // The buffered gauge is 0 after the flush, not what it was when the points were added.
      expect(await scrape()).toEqual(expected(written));

      await influxd.kill();
      for (let seq = 1; seq <= 5; seq++) await device.client.publishAsync(topic, Buffer.from(envelopeBytes(key, seq, readings(seq))), { qos: 1 });
      await waitUntil("a write to the stopped influxd failed", () => writer.stats().failedBatches >= 3);
      // Stopped, the writer's stats hold still, so the scrape can be compared with them exactly.
      await writer.stop();
      const down = writer.stats();
      expect(down).toMatchObject({ buffered: BUFFER_POINTS_MAX, written: READINGS, dropped: 5 * READINGS - BUFFER_POINTS_MAX, invalid: 1, rejected: 1 });
      expect(await scrape()).toEqual(expected(down));
      // Settlement does not wait for InfluxDB; settled, nothing is left in flight when the harness stops.
      await device.until(() => device.receipts.length === 6, WAIT_MS);
    } finally {
      await device.close();
    }
  }, 60_000);
});
