/**
 * The gateway with `--influx-url`, against a real influxd: accepted readings reach InfluxDB, and
 * InfluxDB being down neither blocks nor loses settlement (the writer buffers, and catches up).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeCbor } from "../devices/cbor.ts";
import { decodeEnvelope } from "../devices/envelope.ts";
import { InfluxWriter } from "./influx/writer.ts";
import { connectDevice, envelopeBytes, type Harness, startHarness } from "./testing/harness.ts";
import { type Influxd, startInfluxd } from "./testing/influxd.ts";

let influxd: Influxd;
let writer: InfluxWriter;
let h: Harness;

beforeAll(async () => {
  influxd = await startInfluxd();
  writer = new InfluxWriter({ url: influxd.url, database: "jamgate", flushIntervalMs: 100, retryBackoffMs: { initial: 50, max: 200 } });
  writer.start();
  h = await startHarness({ gateway: { influx: writer } });
}, 30_000);

afterAll(async () => {
  await h?.stop();
  await writer?.stop();
  await influxd?.stop();
});

async function query(q: string): Promise<number[]> {
  const res = await fetch(`${influxd.url}/query?db=jamgate&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results: { series?: { values: [string, ...number[]][] }[] }[] };
  return (body.results[0]?.series?.[0]?.values[0]?.slice(1) as number[]) ?? [];
}

async function count(): Promise<number> {
  return (await query('SELECT count("importWh") FROM "meter.reading"'))[0] ?? 0;
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within 20 s: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function decodeEnvelopeOk(bytes: Uint8Array) {
  const decoded = decodeEnvelope(bytes);
  if (!decoded.ok) throw new Error(decoded.error.detail);
  return decoded.envelope;
}

const readings = (seq: number) =>
  Array.from({ length: 60 }, (_, i) => ({ t: 1_700_000_000_000 + seq * 60_000 + i * 1000, importWh: 10_000 + seq * 60 + i, powerW: 400 + i }));

describe("gateway → InfluxDB", () => {
  it("writes accepted readings, and keeps settling while InfluxDB is down", async () => {
    const key = await h.register();
    const device = await connectDevice(h.gateway.mqttPort, key);
    try {
      const topic = `devices/${key.deviceId}/up/meter.reading`;
      await device.client.publishAsync(topic, Buffer.from(envelopeBytes(key, 0, readings(0))), { qos: 1 });
      await device.until(() => device.receipts.length === 1);
      await eventually(async () => (await count()) === 60, "60 readings in InfluxDB");
      // The envelope's body was in the column form (devices/readings.ts): every reading's values are its own.
      expect(decodeCbor(decodeEnvelopeOk(envelopeBytes(key, 0, readings(0))).body)).toHaveProperty("cols");
      expect(await query('SELECT min("importWh"), max("importWh"), max("powerW") FROM "meter.reading"')).toEqual([10_000, 10_059, 459]);

      await influxd.kill();
      for (let seq = 1; seq <= 5; seq++) await device.client.publishAsync(topic, Buffer.from(envelopeBytes(key, seq, readings(seq))), { qos: 1 });
      await device.until(() => device.receipts.length === 6); // settlement does not wait for InfluxDB
      expect(writer.stats().buffered).toBeGreaterThanOrEqual(5 * 60);

      await influxd.restart();
      await eventually(async () => (await count()) === 6 * 60, "all 360 readings in InfluxDB after it came back");
      expect(writer.stats().dropped).toBe(0);
    } finally {
      await device.close();
    }
  }, 60_000);
});
