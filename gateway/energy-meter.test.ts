/**
 * A meter of the energy market through the real stack (MQTT broker, gateway, embedded node, the
 * energy-trading service), as a device sees it with the SDK: one envelope that overstates its
 * counters is refused on the device's error topic and bricks nothing, the next correct reading
 * gets its receipt, and a meter whose counter was replaced comes back with a signed meter.reset
 * (issue 15, point 7; services/energy-trading/README.md).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceClient } from "../devices/client.ts";
import { NON_FINAL_CODES } from "../devices/errors.ts";
import { generateDeviceKey } from "../devices/keys.ts";
import type { DeviceError, Receipt } from "../devices/messages.ts";
import { ENERGY_SERVICE } from "./genesis.ts";
import type { MarketConfig } from "../services/energy-trading/types.ts";
import { type Stack, startStack } from "./stack.ts";
import { energyOnlyWiring } from "./testing/energy-wiring.ts";

const SLOT_MS = 100;
/** Generous: a package settles in a few slots; a loaded machine may take many more. */
const ANSWER_TIMEOUT_MS = 30_000;

let dir: string;
let stack: Stack;
let market: MarketConfig;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-energy-meter-"));
  // Real time from the first slot (market time = start + slot × slot length), 15-minute intervals.
  market = {
    startMs: BigInt(Math.floor(Date.now() / 1_000) * 1_000),
    intervalMs: 900_000,
    startSlot: 0,
    marketMsPerSlot: SLOT_MS,
    mode: "pay-as-clear",
    importPriceMicrosPerKwh: 300_000,
    exportPriceMicrosPerKwh: 80_000,
    settlementDelayMs: 900_000,
  };
  stack = await startStack(
    {
      dataDir: join(dir, "stack"),
      host: "127.0.0.1",
      mqttPort: 0,
      wsPort: 0,
      httpPort: 0,
      rpcPort: null,
      slotMs: SLOT_MS,
      chain: "tiny",
      batchMs: 20,
      logger: pino({ level: "silent" }),
    },
    energyOnlyWiring(market),
  );
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A registered meter on the SDK's client, with what the gateway told it. */
async function meter(name: string) {
  const key = generateDeviceKey();
  await stack.registrations.register(key.publicKey, "meter", { service: ENERGY_SERVICE.name });
  const deadline = Date.now() + ANSWER_TIMEOUT_MS;
  while ((await stack.registrations.view(key.deviceId))?.status !== "registered") {
    if (Date.now() > deadline) throw new Error(`meter ${name} not registered within ${ANSWER_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const client = await DeviceClient.connect({ url: stack.mqttUrl, key, dataDir: join(dir, "devices") });
  const receipts = new Map<number, Receipt>();
  const errors = new Map<number, DeviceError>();
  client.on("receipt", (r) => receipts.set(r.seq, r));
  client.on("deviceError", (e) => {
    // A failed package is retried by the gateway (JG_ERR_SETTLEMENT_FAILED): not the envelope's answer.
    if (e.seq !== null && !NON_FINAL_CODES.has(e.code)) errors.set(e.seq, e);
  });
  /** Sends readings (or any body) as `kind` and resolves with its receipt ("receipt") or its refusal's code. */
  async function send(kind: "meter.reading" | "meter.reset", body: unknown): Promise<string> {
    const sent = client.send(kind, body);
    if (!sent.ok) throw new Error(`${sent.error.code}: ${sent.error.detail}`);
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    while (!receipts.has(sent.seq) && !errors.has(sent.seq)) {
      if (Date.now() > deadline) throw new Error(`seq ${sent.seq}: no receipt or error within ${ANSWER_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return receipts.has(sent.seq) ? "receipt" : errors.get(sent.seq)!.code;
  }
  return { key, client, send };
}

const at = (offsetMs: number) => Number(market.startMs) + offsetMs;

describe("an energy meter through the gateway and the node", { timeout: 120_000 }, () => {
  it("is not bricked by an envelope of absolute values in place of differences: refused on its error topic, the next reading gets a receipt", async () => {
    const m = await meter("absolute values");
    try {
      expect(
        await m.send("meter.reading", [
          { t: at(1_000), importWh: 1_234_560, exportWh: 0 },
          { t: at(2_000), importWh: 1_234_561, exportWh: 0 },
        ]),
      ).toBe("receipt");
      // Columns whose "differences" are the counters themselves: read as the column form says, the
      // counter climbs 1.2 MWh a second. Before the power bound this was receipted and credited, and
      // every correct reading after it was refused with JG_ERR_ENERGY_COUNTER.
      expect(await m.send("meter.reading", { t0: at(3_000), dtMs: 1_000, cols: { importWh: [1_234_562, 1_234_563, 1_234_564], exportWh: [0, 0, 0] } })).toBe(
        "JG_ERR_ENERGY_POWER",
      );
      expect(
        await m.send("meter.reading", [
          { t: at(6_000), importWh: 1_234_565, exportWh: 0 },
          { t: at(7_000), importWh: 1_234_566, exportWh: 0 },
        ]),
      ).toBe("receipt");
    } finally {
      await m.client.close();
    }
  });

  it("comes back from a replaced counter with a signed meter.reset", async () => {
    const m = await meter("replaced counter");
    try {
      expect(
        await m.send("meter.reading", [
          { t: at(1_000), importWh: 5_000, exportWh: 0 },
          { t: at(2_000), importWh: 5_001, exportWh: 0 },
        ]),
      ).toBe("receipt");
      // The new counter starts from 0: its readings go backwards from the last settled one.
      expect(
        await m.send("meter.reading", [
          { t: at(3_000), importWh: 1, exportWh: 0 },
          { t: at(4_000), importWh: 2, exportWh: 0 },
        ]),
      ).toBe("JG_ERR_ENERGY_COUNTER");
      expect(await m.send("meter.reset", [{ t: at(5_000), importWh: 2, exportWh: 0 }])).toBe("receipt");
      expect(
        await m.send("meter.reading", [
          { t: at(6_000), importWh: 3, exportWh: 0 },
          { t: at(7_000), importWh: 4, exportWh: 0 },
        ]),
      ).toBe("receipt");
    } finally {
      await m.client.close();
    }
  });
});
