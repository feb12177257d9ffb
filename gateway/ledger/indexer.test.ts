/**
 * The ledger index fed by a real embedded stack (MQTT broker, gateway, node on its thread, the
 * energy-trading service): two households, each a meter and a trading agent, trade in one market
 * interval; the reader then shows the blocks, the packages, each device with its receipts, the
 * interval with its ledger entries and per-household results, and balances that agree with them;
 * and after a restart of the stack, the same.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceClient } from "../../devices/client.ts";
import { type DeviceKey, generateDeviceKey } from "../../devices/keys.ts";
import { ENERGY_SERVICE } from "../genesis.ts";
import { AGENT_ORDER_KIND, type MarketConfig, METER_READING_KIND } from "../../services/energy-trading/types.ts";
import { type Stack, startStack } from "../stack.ts";
import { energyOnlyWiring } from "../testing/energy-wiring.ts";
import type { EntryView, LedgerReader } from "./types.ts";

const SLOT_MS = 100;
/** Generous: an interval settles ~10 s after its orders; a loaded machine may take much longer. */
const DEADLINE_MS = 90_000;

/**
 * One-minute intervals, 2 s of market time a slot: an interval is 30 slots (3 s at 100 ms), settled
 * two intervals after it ends (the readings of its end have 6 s to reach the chain).
 */
const market: MarketConfig = {
  startMs: 1_767_225_600_000n, // 2026-01-01T00:00:00Z
  intervalMs: 60_000,
  startSlot: 0,
  marketMsPerSlot: 2_000,
  mode: "pay-as-clear",
  importPriceMicrosPerKwh: 300_000,
  exportPriceMicrosPerKwh: 80_000,
  settlementDelayMs: 120_000,
};

const wiring = energyOnlyWiring(market);

let dir: string;
let stack: Stack;

const start = () =>
  startStack(
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
    wiring,
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-ledger-indexer-"));
  stack = await start();
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, read: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await read();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function register(key: DeviceKey, kind: "meter" | "agent", household?: string): Promise<void> {
  await stack.registrations.register(key.publicKey, kind, { service: ENERGY_SERVICE.name, ...(household === undefined ? {} : { household }) });
  await until(`registration of ${kind} ${key.deviceId}`, async () => (await stack.registrations.view(key.deviceId))?.status === "registered");
}

/** Everything a reader answers about the households, as JSON: compared before and after a restart. */
async function snapshot(reader: LedgerReader, ids: readonly string[], interval: number): Promise<string> {
  return JSON.stringify({
    devices: await Promise.all(ids.map((id) => reader.device(id))),
    list: await reader.devices({ limit: 10 }),
    interval: await reader.interval(interval),
    entries: await reader.entries({ service: ENERGY_SERVICE.name }, { limit: 100 }),
    services: await reader.services(),
  });
}

describe("the ledger index on a running stack", { timeout: 240_000 }, () => {
  it("shows a traded interval: blocks, packages, devices, entries, per-household results and balances, the same after a restart", async () => {
    const meterA = generateDeviceKey();
    const meterB = generateDeviceKey();
    const agentA = generateDeviceKey();
    const agentB = generateDeviceKey();
    await register(meterA, "meter");
    await register(meterB, "meter");
    await register(agentA, "agent", meterA.deviceId);
    await register(agentB, "agent", meterB.deviceId);
    const [a, b] = [meterA.deviceId, meterB.deviceId];

    // The interval two ahead of the market's now: orders reach the chain before its gate closes.
    const best = await stack.api.bestBlock();
    const k = Math.floor((best.slot * market.marketMsPerSlot) / market.intervalMs) + 2;
    const t0 = Number(market.startMs) + k * market.intervalMs;
    const clients = await Promise.all(
      [meterA, meterB, agentA, agentB].map((key) => DeviceClient.connect({ url: stack.mqttUrl, key, dataDir: join(dir, "devices") })),
    );
    try {
      const [ma, mb, aa, ab] = clients as [DeviceClient, DeviceClient, DeviceClient, DeviceClient];
      expect(aa.send(AGENT_ORDER_KIND, { interval: k, orders: [{ side: "bid", energyWh: 300, priceMicrosPerKwh: 250_000 }] }).ok).toBe(true);
      expect(ab.send(AGENT_ORDER_KIND, { interval: k, orders: [{ side: "ask", energyWh: 300, priceMicrosPerKwh: 100_000 }] }).ok).toBe(true);
      // Once the interval is open (the service refuses readings more than an interval ahead of its
      // clock): A imports 500 Wh in it, B exports 400 Wh.
      await until(`interval ${k} open`, async () => (await stack.api.bestBlock()).slot * market.marketMsPerSlot >= k * market.intervalMs);
      expect(
        ma.send(METER_READING_KIND, [
          { t: t0 + 1_000, importWh: 10_000, exportWh: 0 },
          { t: t0 + 59_000, importWh: 10_500, exportWh: 0 },
        ]).ok,
      ).toBe(true);
      expect(
        mb.send(METER_READING_KIND, [
          { t: t0 + 1_000, importWh: 0, exportWh: 20_000 },
          { t: t0 + 59_000, importWh: 0, exportWh: 20_400 },
        ]).ok,
      ).toBe(true);

      const reader = stack.ledger;
      const interval = await until(`interval ${k} settled in the index`, async () => {
        const view = await reader.interval(k);
        return view?.settled === true ? view : null;
      });
      expect(interval).toMatchObject({
        interval: k,
        startMs: t0,
        endMs: t0 + market.intervalMs,
        trades: 1,
        orders: 2,
        tradedWh: "300",
        gridImportWh: 200,
        gridExportWh: 100,
      });
      const results = new Map(interval.households.map((h) => [h.household, h]));
      expect(results.get(a)).toMatchObject({ boughtWh: 300, soldWh: 0, gridImportWh: 200, gridExportWh: 0 });
      expect(results.get(b)).toMatchObject({ boughtWh: 0, soldWh: 300, gridImportWh: 0, gridExportWh: 100 });

      // Its ledger entries, as the service stored them, by interval and by account.
      const entries = (await reader.entries({ interval: k }, { limit: 100 })).items;
      const trade = entries.find((e) => e.kind === "trade")!;
      expect(trade).toMatchObject({
        service: ENERGY_SERVICE.name,
        buyer: a,
        seller: b,
        energyWh: 300,
        interval: k,
        slot: interval.settledSlot,
        accounts: [a, b],
      });
      expect(entries.find((e) => e.kind === "grid-import")).toMatchObject({ buyer: a, seller: "grid", energyWh: 200 });
      expect(entries.find((e) => e.kind === "grid-export")).toMatchObject({ buyer: "grid", seller: b, energyWh: 100 });
      expect((await reader.entries({ account: b }, { limit: 100 })).items.map((e) => e.kind).sort()).toEqual(["grid-export", "trade"]);
      // The block that settled it is indexed, and is the entries' block.
      expect((await reader.block(interval.settledSlot))?.hash).toBe(trade.blockHash);

      // Balances from the best block's state: what the interval's entries moved (the only interval anyone traded in).
      const balances = await until("balances of both households", async () => {
        const list = await reader.balances(ENERGY_SERVICE.name);
        return list.length === 2 && list.every((x) => x.balanceMicros !== "0") ? list : null;
      });
      expect(new Map(balances.map((x) => [x.account, x.balanceMicros]))).toEqual(
        new Map([
          [a, results.get(a)!.netMicros],
          [b, results.get(b)!.netMicros],
        ]),
      );
      expect((await reader.balance(ENERGY_SERVICE.name, a))!.balanceMicros).toBe(results.get(a)!.netMicros);

      // Each device's envelopes settled, as receipts: the meter's reading, the agent's order.
      const receiptOf = async (id: string) => until(`a receipt entry of ${id}`, async () => (await reader.entries({ device: id }, { limit: 10 })).items[0]);
      const meterReceipt: EntryView = await receiptOf(a);
      expect(meterReceipt).toMatchObject({ kind: "envelopes", device: a, seqs: [0], service: ENERGY_SERVICE.name });
      await receiptOf(agentA.deviceId);
      expect(await reader.device(a)).toMatchObject({
        kind: "meter",
        household: a,
        settledHighestSeq: 0,
        envelopesSettled: 1,
        lastSettledSlot: meterReceipt.slot,
      });
      expect(await reader.device(agentA.deviceId)).toMatchObject({ kind: "agent", household: a, settledHighestSeq: 0, envelopesSettled: 1 });
      expect((await reader.devices({ household: a, limit: 10 })).items.map((d) => d.id).sort()).toEqual([a, agentA.deviceId].sort());
      expect((await reader.device(a))!.registeredSlot).toBeGreaterThan(0);

      // The meter's package: accumulated in the receipt's block, which lists it, after a block that carried its report.
      const pkg = (await reader.package(meterReceipt.packageHash!))!;
      expect(pkg).toMatchObject({
        status: "accumulated",
        kind: "envelopes",
        service: ENERGY_SERVICE.name,
        accumulatedSlot: meterReceipt.slot,
        accumulatedBlock: meterReceipt.blockHash,
      });
      expect(pkg.settled).toBeGreaterThanOrEqual(1);
      expect(pkg.refineMs).not.toBeNull();
      expect((await reader.block(meterReceipt.slot))!.accumulated).toContain(pkg.hash);
      const reported = (await reader.block(pkg.reportedSlot!))!;
      expect(reported.reports.map((r) => r.packageHash)).toContain(pkg.hash);
      expect(reported.reports.find((r) => r.packageHash === pkg.hash)).toMatchObject({ serviceIds: [ENERGY_SERVICE.id], core: pkg.core });
      expect(BigInt(reported.reports[0]!.refineGasUsed)).toBeGreaterThan(0n);
      // Blocks link: each one's parent is the one before, its prior state root the parent's posterior.
      const recent = (await reader.blocks({ limit: 5 })).items;
      for (let i = 0; i + 1 < recent.length; i++) {
        expect(recent[i]!.parentHash).toBe(recent[i + 1]!.hash);
        expect(recent[i]!.priorStateRoot).toBe(recent[i + 1]!.stateRoot);
      }
      expect((await reader.services()).find((s) => s.name === ENERGY_SERVICE.name)).toMatchObject({ devices: 4 });

      // The stack serves the index over HTTP.
      const served = await fetch(`${stack.httpUrl}/v1/energy/intervals/${k}`);
      expect(served.status).toBe(200);
      expect(await served.json()).toEqual(JSON.parse(JSON.stringify(await reader.interval(k))));

      const before = await snapshot(reader, [a, b, agentA.deviceId, agentB.deviceId], k);
      for (const c of clients) await c.close();
      clients.length = 0;
      await stack.stop();
      stack = await start();
      expect(await snapshot(stack.ledger, [a, b, agentA.deviceId, agentB.deviceId], k)).toBe(before);
      // And it goes on indexing blocks after the restart.
      const head = (await stack.ledger.head())!.slot;
      await until("a block after the restart", async () => ((await stack.ledger.head())?.slot ?? 0) > head);
    } finally {
      for (const c of clients) await c.close();
    }
  });
});
