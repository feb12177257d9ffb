/**
 * The stack with `influxUrl` (as `jamgate start --influx-url` runs it) against a real influxd: the
 * readings of an envelope PUBACKed just before `stop()` are in InfluxDB after it, because stop
 * flushes the writer. The writer's flush interval is set far past the test, so nothing but that
 * flush writes them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDeviceKey } from "../devices/keys.ts";
import { builtinServices, TELEMETRY_SERVICE } from "./genesis.ts";
import { telemetryService } from "./services/telemetry.ts";
import { type Stack, type StackWiring, startStack } from "./stack.ts";
import { connectDevice, envelopeBytes } from "./testing/harness.ts";
import { type Influxd, startInfluxd } from "./testing/influxd.ts";

/** Generous: a loaded machine may be slow to make blocks. */
const DEADLINE_MS = 60_000;
/** Far past the test's length: a timed flush cannot write the points before stop does. */
const FLUSH_INTERVAL_MS = 10 * 60_000;
/** One query's limit. */
const QUERY_TIMEOUT_MS = 5_000;
const READINGS = 60;

const wiring: StackWiring = {
  genesis: (gatewayKey) => builtinServices([gatewayKey.publicKey]),
  services: async () => [telemetryService(TELEMETRY_SERVICE.id)],
  defaultServiceOf: () => TELEMETRY_SERVICE.name,
};

let influxd: Influxd;
let dir: string;
let stack: Stack | undefined;

beforeAll(async () => {
  influxd = await startInfluxd();
  dir = mkdtempSync(join(tmpdir(), "jamgate-influx-stack-"));
}, 30_000);

afterAll(async () => {
  await stack?.stop();
  await influxd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first row of an InfluxQL query on the `jamgate` database, without its time column; [] when there is none. */
async function query(q: string): Promise<number[]> {
  const res = await fetch(`${influxd.url}/query?db=jamgate&q=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const body = JSON.parse(text) as { results: { series?: { values: [string, ...number[]][] }[]; error?: string }[] };
  expect(body.results[0]?.error, text).toBeUndefined();
  return (body.results[0]?.series?.[0]?.values[0]?.slice(1) as number[] | undefined) ?? [];
}

describe("the stack with InfluxDB", () => {
  it("writes the readings of an envelope PUBACKed just before stop()", async () => {
    const started = await startStack(
      {
        dataDir: join(dir, "stack"),
        host: "127.0.0.1",
        mqttPort: 0,
        wsPort: 0,
        httpPort: 0,
        rpcPort: null,
        slotMs: 100,
        chain: "tiny",
        batchMs: 20,
        influxUrl: influxd.url,
        influxFlushIntervalMs: FLUSH_INTERVAL_MS,
        logger: pino({ level: "silent" }),
      },
      wiring,
    );
    stack = started;
    const key = generateDeviceKey();
    await started.registrations.register(key.publicKey, "meter");
    await until("the device registered", async () => {
      const view = await started.registrations.view(key.deviceId);
      // A failed registration never turns registered: say why at once instead of waiting out the deadline.
      if (view?.status === "failed") throw new Error(`device not registered: ${view.code} ${view.detail ?? ""}`);
      return view?.status === "registered";
    });
    // The writer has created its database by now (it does so when it starts): a query of it answers.
    await until("the jamgate database created", async () => {
      const res = await fetch(`${influxd.url}/query?q=${encodeURIComponent("SHOW DATABASES")}`, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
      return (await res.text()).includes('"jamgate"');
    });

    const readings = Array.from({ length: READINGS }, (_, i) => ({ t: 1_700_000_000_000 + i * 1000, importWh: 10_000 + i, powerW: 400 + i }));
    const device = await connectDevice(started.gateway.mqttPort, key);
    try {
      // QoS 1: resolves on the PUBACK, so the envelope is accepted and its points are in the writer.
      await device.client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, 0, readings)), { qos: 1 });
    } finally {
      await device.close();
    }
    expect(await query('SELECT count("importWh") FROM "meter.reading"')).toEqual([]);
    stack = undefined;
    await started.stop();

    expect(await query('SELECT count("importWh"), min("importWh"), max("importWh"), max("powerW") FROM "meter.reading"')).toEqual([
      READINGS,
      10_000,
      10_000 + READINGS - 1,
      400 + READINGS - 1,
    ]);
  }, 120_000);
});
