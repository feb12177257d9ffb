/**
 * `jamgate sim energy`: an energy market of N households run end to end. Every household is two
 * real MQTT devices (its smart meter and its trading agent) that register through the gateway's
 * HTTP API, connect to its broker and publish signed envelopes; the gateway batches them into
 * work packages; the embedded JAM node refines and accumulates them into the energy-trading
 * service, which clears an auction per interval and settles it against the meters.
 *
 * The clock is the chain's: the service's market time advances `minutesPerSlot` simulated minutes
 * per slot (GP τ), and the simulator follows the node's best block: each slot, meters publish the
 * readings up to the market time, and agents place orders ORDER_LEAD_INTERVALS intervals ahead.
 * Interval k is cleared when market time reaches its start and settled SETTLEMENT_DELAY_INTERVALS
 * after its end. At the end the ledger is read back from the service's state, KPIs computed and a
 * report written.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { MultiBar, Presets } from "cli-progress";
import { type Logger, pino } from "pino";
import { type DeviceKey, deviceKeyFromSecret } from "../../devices/keys.ts";
import { DeviceClient } from "../../devices/client.ts";
import type { NodeApi } from "../../node/api.ts";
import { energyServiceFromChain, marketConfigOnChain } from "../../gateway/services/energy.ts";
import { type Stack, type StackWiring, startStack } from "../../gateway/stack.ts";
import { RpcClient } from "../../node/rpc/client.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { builtinServices, ENERGY_SERVICE } from "../../scripts/genesis.ts";
import {
  AGENT_ORDER_KIND,
  decodeIntervalSummary,
  decodeLedgerEntries,
  decodeMarketProgress,
  intervalKey,
  ledgerKey,
  MARKET_KEY,
  type MarketConfig,
  METER_READING_KIND,
  type StoredLedgerEntry,
} from "../../services/energy-trading/types.ts";
import { HouseholdAgent, ORDER_LEAD_INTERVALS } from "./agent.ts";
import { HouseholdModel } from "./household.ts";
import { computeKpis, type HouseholdIntervalTruth, type Kpis, type LedgerEntryView } from "./kpis.ts";
import { type IntervalRow, type ReportData, writeReport } from "./report.ts";
import type { Scenario } from "./scenario.ts";

/** Slots before the market opens: registration (meters, then agents), connecting, and the first orders. */
export const MARKET_START_SLOT = 24;
/**
 * And at least this long (wall time) on a short slot: the households' registration, their
 * connections and first orders take the same wall time whatever the slot, more on a busy machine
 * (at 250 ms slots, 24 slots were 6 s, and the agents' orders for the first interval sometimes came
 * after its gate closed).
 */
export const MARKET_START_MS_MIN = 20_000;

/** Slots an order takes from sending to accumulated at least: packed for a block, reported in it, accumulated in the next. */
const ORDERS_SETTLE_SLOTS = 3;

/** The slot a simulation's own market opens at, for its node's slot length. */
export function marketStartSlot(slotMs: number): number {
  return Math.max(MARKET_START_SLOT, Math.ceil(MARKET_START_MS_MIN / slotMs));
}
/** Readings of an interval may arrive this many intervals after it ends before it is settled without them. */
export const SETTLEMENT_DELAY_INTERVALS = 2;
/** The simulation gives up when the chain has not settled the last interval this long after it should have (slots). */
const SETTLE_GRACE_SLOTS = 60;

export interface SimOptions {
  readonly scenario: Scenario;
  /** Slot period of the embedded node. */
  readonly slotMs: number;
  /** Simulated minutes per slot. */
  readonly minutesPerSlot: number;
  /** Report directory; null: no report. */
  readonly out: string | null;
  /** Where the node, gateway and devices keep their files; default a temp dir, removed after. */
  readonly dataDir?: string;
  /** Progress on stderr. */
  readonly progress: boolean;
  /**
   * Run against a running jamgate instead of starting one: its MQTT broker, its node's JIP-2
   * WebSocket, its HTTP API and operator token. The market clock is then the chain's: the
   * scenario starts at the first interval far enough ahead to register and place orders, and
   * its interval length is the market's.
   */
  readonly remote?: { readonly mqttUrl: string; readonly nodeUrl: string; readonly gatewayUrl: string; readonly token: string };
}

/** What the simulation needs of a running stack, embedded or remote. */
interface Env {
  readonly api: NodeApi;
  readonly mqttUrl: string;
  readonly httpUrl: string;
  readonly token: string;
  view(deviceId: string): Promise<{ readonly status: string; readonly code?: string; readonly detail?: string } | null>;
  close(): Promise<void>;
}

async function embeddedEnv(market: MarketConfig, dataDir: string, slotMs: number, logger: Logger): Promise<Env> {
  const wiring: StackWiring = {
    genesis: (gatewayKey) => builtinServices([gatewayKey.publicKey], market),
    async services(api) {
      const energy = await energyServiceFromChain(api, ENERGY_SERVICE.id);
      if (energy === null) throw new Error("the node has no energy market");
      return [energy];
    },
    defaultServiceOf: () => ENERGY_SERVICE.name,
  };
  const stack: Stack = await startStack(
    { dataDir, host: "127.0.0.1", mqttPort: 0, wsPort: 0, httpPort: 0, rpcPort: null, slotMs, chain: "tiny", batchMs: 100, logger },
    wiring,
  );
  return {
    api: stack.api,
    mqttUrl: stack.mqttUrl,
    httpUrl: stack.httpUrl,
    token: stack.operatorToken,
    view: (id) => stack.registrations.view(id),
    close: () => stack.stop(),
  };
}

async function remoteEnv(remote: NonNullable<SimOptions["remote"]>): Promise<Env> {
  // The operator token is the RPC token of a `jamgate start` node: reads need it from off loopback.
  const api = await RpcClient.connect(remote.nodeUrl, { token: remote.token });
  const httpUrl = remote.gatewayUrl.replace(/\/+$/, "");
  return {
    api,
    mqttUrl: remote.mqttUrl,
    httpUrl,
    token: remote.token,
    async view(deviceId) {
      const response = await fetch(`${httpUrl}/v1/devices/${deviceId}`, { headers: { authorization: `Bearer ${remote.token}` } });
      if (response.status === 404 || response.status === 403) return null;
      return (await response.json()) as { status: string; code?: string; detail?: string };
    },
    async close() {
      api.close();
    },
  };
}

export interface SimResult {
  readonly kpis: Kpis;
  readonly blocks: number;
  readonly ledgerEntries: number;
  readonly intervals: number;
  readonly envelopes: number;
  readonly receipts: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly reportFiles: readonly string[];
  readonly wallSeconds: number;
}

export function marketOf(scenario: Scenario, minutesPerSlot: number, startSlot: number = MARKET_START_SLOT): MarketConfig {
  const intervalMs = scenario.marketIntervalMinutes * 60_000;
  return {
    startMs: BigInt(Date.parse(scenario.start)),
    intervalMs,
    startSlot,
    marketMsPerSlot: Math.round(minutesPerSlot * 60_000),
    mode: scenario.market,
    importPriceMicrosPerKwh: scenario.grid.importPriceMicrosPerKwh,
    exportPriceMicrosPerKwh: scenario.grid.exportPriceMicrosPerKwh,
    settlementDelayMs: SETTLEMENT_DELAY_INTERVALS * intervalMs,
  };
}

/**
 * Household keys from the scenario's seed and start: the same scenario makes the same devices, and
 * a later run against the same running jamgate (which starts at a later interval) makes new ones,
 * whose seqs start from 0 again.
 */
function keyOf(scenario: Scenario, household: string, role: "meter" | "agent"): DeviceKey {
  return deviceKeyFromSecret(createHash("sha256").update(`jamgate-sim/${scenario.seed}/${scenario.start}/${household}/${role}`).digest());
}

interface Household {
  readonly id: string;
  readonly meterKey: DeviceKey;
  readonly agentKey: DeviceKey;
  readonly model: HouseholdModel;
  readonly agent: HouseholdAgent;
  meter?: DeviceClient;
  trader?: DeviceClient;
  ordered: number;
  observed: number;
}

export async function runEnergySim(options: SimOptions): Promise<SimResult> {
  const started = Date.now();
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "jamgate-sim-"));
  mkdirSync(dataDir, { recursive: true });
  const logger = pino({ base: undefined, level: "info" }, pino.destination({ dest: join(dataDir, "sim.log"), sync: false }));
  let scenario = options.scenario;
  let market: MarketConfig;
  let env: Env;
  /** Market interval of the scenario's interval 0. */
  let k0 = 0;
  if (options.remote === undefined) {
    market = marketOf(scenario, options.minutesPerSlot, marketStartSlot(options.slotMs));
    env = await embeddedEnv(market, join(dataDir, "stack"), options.slotMs, logger);
  } else {
    env = await remoteEnv(options.remote);
    const onChain = await marketConfigOnChain(env.api, ENERGY_SERVICE.id);
    if (onChain === null) {
      await env.close();
      throw new JamgateError("JG_ERR_CLI_ARGUMENT", `the node at ${options.remote.nodeUrl} runs no energy market (service ${ENERGY_SERVICE.id} has no config)`);
    }
    market = onChain;
    // Start at the first interval that opens after registration and the orders' lead time.
    const best = await env.api.bestBlock();
    const nowMs = Number(market.startMs) + Math.max(0, best.slot - market.startSlot) * market.marketMsPerSlot;
    const leadMs = (MARKET_START_SLOT * market.marketMsPerSlot) / 2 + ORDER_LEAD_INTERVALS * market.intervalMs;
    k0 = Math.ceil((nowMs + leadMs - Number(market.startMs)) / market.intervalMs);
    const intervalMinutes = market.intervalMs / 60_000;
    const intervalsWanted = Math.max(1, Math.round(scenario.durationMinutes / intervalMinutes));
    scenario = {
      ...scenario,
      start: new Date(Number(market.startMs) + k0 * market.intervalMs).toISOString(),
      marketIntervalMinutes: intervalMinutes,
      durationMinutes: intervalsWanted * intervalMinutes,
      market: market.mode,
    };
    process.stderr.write(
      `remote market: ${market.mode}, ${intervalMinutes}-minute intervals, ${market.marketMsPerSlot / 60_000} market minutes per slot; the scenario runs from ${scenario.start}\n`,
    );
  }
  const startMs = Number(market.startMs) + k0 * market.intervalMs;
  const intervalMs = market.intervalMs;
  const intervals = scenario.durationMinutes / scenario.marketIntervalMinutes;
  const endMs = startMs + scenario.durationMinutes * 60_000;
  const readingMs = (scenario.readingIntervalSeconds ?? 10) * 1000;
  const marketTime = (slot: number) => Number(market.startMs) + (slot - market.startSlot) * market.marketMsPerSlot;
  const lastSlot = market.startSlot + Math.ceil((endMs - Number(market.startMs) + market.settlementDelayMs) / market.marketMsPerSlot) + 1;

  const bars = options.progress
    ? new MultiBar(
        {
          stream: process.stderr,
          clearOnComplete: false,
          hideCursor: true,
          noTTYOutput: true,
          notTTYSchedule: 5_000,
          format: "{phase} [{bar}] {value}/{total} | slot {slot} | {time} | envelopes {sent} | receipts {receipts} | errors {errors}",
        },
        Presets.shades_classic,
      )
    : null;
  const bar = bars?.create(intervals, 0, { phase: "setup   ", slot: 0, time: "", sent: 0, receipts: 0, errors: 0 });
  let sent = 0;
  let receipts = 0;
  const errors: Record<string, number> = {};
  const count = (code: string) => {
    errors[code] = (errors[code] ?? 0) + 1;
  };

  const households: Household[] = scenario.households.map((spec, index) => {
    const shadow = new HouseholdModel(spec, scenario, index);
    const oracle = (k: number) => {
      shadow.advance(Math.min(endMs, startMs + (k + 1) * intervalMs));
      const e = shadow.intervalEnergy(k);
      return e === undefined ? 0 : e.importWh - e.exportWh;
    };
    return {
      id: spec.id,
      meterKey: keyOf(scenario, spec.id, "meter"),
      agentKey: keyOf(scenario, spec.id, "agent"),
      model: new HouseholdModel(spec, scenario, index),
      agent: new HouseholdAgent(spec, scenario, index, oracle),
      ordered: 0,
      observed: 0,
    };
  });
  const byMeter = new Map(households.map((h) => [h.meterKey.deviceId as string, h]));

  try {
    await registerAll(env, households);
    const clientsDir = join(dataDir, "devices");
    for (const h of households) {
      h.meter = await DeviceClient.connect({ url: env.mqttUrl, key: h.meterKey, dataDir: clientsDir });
      h.trader = await DeviceClient.connect({ url: env.mqttUrl, key: h.agentKey, dataDir: clientsDir });
      for (const client of [h.meter, h.trader]) {
        client.on("receipt", () => receipts++);
        client.on("deviceError", (e: { code: string }) => count(e.code));
      }
    }
    // The first orders (the first intervals') must be settled before the market opens; later than
    // that the first intervals clear without them and the run's results are not the scenario's.
    // Said, rather than reported as a smaller market (a remote market picks its first interval after registration).
    const readyAt = (await env.api.bestBlock()).slot;
    if (options.remote === undefined && readyAt + ORDERS_SETTLE_SLOTS > market.startSlot) {
      throw new Error(
        `the households were connected at slot ${readyAt}, too late for the market opening at slot ${market.startSlot}: the machine is too busy for --slot-ms ${options.slotMs}; try a longer slot`,
      );
    }

    const api = env.api;
    let settledUpTo = 0; // intervals < this are settled and fed back
    // Each settled interval's summary and ledger, read once as it settles: the service keeps only
    // the last LEDGER_INTERVALS_KEPT intervals in state.
    const settled: { summary: Awaited<ReturnType<typeof readSummary>>; entries: StoredLedgerEntry[] }[] = [];
    let slot = (await api.bestBlock()).slot;
    const wake = waiter();
    const unsubscribe = await api.subscribeBestBlock((block) => {
      slot = block.slot;
      wake.notify();
    });
    try {
      while (settledUpTo < intervals) {
        await wake.next();
        const now = marketTime(slot);
        if (slot > lastSlot + SETTLE_GRACE_SLOTS)
          throw new Error(`the chain has not settled interval ${settledUpTo} by slot ${slot}; see ${join(dataDir, "sim.log")}`);
        // Meters: the readings up to now, one envelope each.
        const upTo = Math.min(endMs, startMs + Math.floor((now - startMs) / readingMs) * readingMs);
        for (const h of households) {
          if (upTo <= startMs) break;
          const readings = h.model.advance(upTo);
          if (readings.length > 0 && send(h.meter!, METER_READING_KIND, readings, count)) sent++;
          // Agents learn each interval's truth once it is over.
          while (h.observed < intervals && startMs + (h.observed + 1) * intervalMs <= upTo) {
            const e = h.model.intervalEnergy(h.observed);
            if (e !== undefined) h.agent.observe(h.observed, e.importWh - e.exportWh);
            h.observed++;
          }
          // Agents: orders for the intervals whose gate closes within ORDER_LEAD_INTERVALS.
        }
        for (const h of households) {
          while (h.ordered < intervals && startMs + (h.ordered - ORDER_LEAD_INTERVALS) * intervalMs <= now) {
            const orders = h.agent.ordersFor(h.ordered);
            if (orders.length > 0 && send(h.trader!, AGENT_ORDER_KIND, { interval: k0 + h.ordered, orders }, count)) sent++;
            h.ordered++;
          }
        }
        // Market results: feed settled intervals back to the agents.
        const best = await api.bestBlock();
        const progress = await readProgress(api, best.headerHash);
        while (settledUpTo < Math.min(progress.nextSettle - k0, intervals)) {
          const k = settledUpTo;
          const summary = await readSummary(api, best.headerHash, k0 + k);
          const entries = await readLedger(api, best.headerHash, k0 + k);
          settled.push({ summary, entries });
          for (const h of households) {
            let tradedWh = 0;
            for (const e of entries)
              if (e.reason === "trade" && (hexOf(e.buyer) === h.meterKey.deviceId || hexOf(e.seller) === h.meterKey.deviceId)) tradedWh += e.energyWh;
            h.agent.learn({ interval: k, clearingPriceMicrosPerKwh: summary?.clearingPriceMicrosPerKwh ?? null, myTradedWh: tradedWh });
          }
          settledUpTo++;
        }
        bar?.update(settledUpTo, {
          phase: now < startMs ? "opening " : "trading ",
          slot,
          time: new Date(Math.max(startMs, Math.min(now, endMs))).toISOString().slice(0, 16).replace("T", " "),
          sent,
          receipts,
          errors: Object.values(errors).reduce((a, b) => a + b, 0),
        });
      }
    } finally {
      unsubscribe();
    }

    // The ledger, as read from the service's state while the intervals settled.
    const best = await api.bestBlock();
    const ledger: LedgerEntryView[] = [];
    const rows: IntervalRow[] = [];
    const clearingPrices: { interval: number; priceMicrosPerKwh: number | null; tradedWh: number }[] = [];
    const idOf = (party: StoredLedgerEntry["buyer"]) => (party === "grid" ? "grid" : (byMeter.get(hexOf(party))?.id ?? hexOf(party)));
    for (let k = 0; k < intervals; k++) {
      const { summary, entries } = settled[k]!;
      for (const e of entries)
        ledger.push({
          interval: k,
          buyer: idOf(e.buyer),
          seller: idOf(e.seller),
          energyWh: e.energyWh,
          priceMicrosPerKwh: e.priceMicrosPerKwh,
          amountMicros: e.amountMicros,
          reason: e.reason,
        });
      const tradedWh = Number(summary?.tradedWh ?? 0n);
      clearingPrices.push({ interval: k, priceMicrosPerKwh: summary?.clearingPriceMicrosPerKwh ?? null, tradedWh });
      let loadWh = 0;
      let pvWh = 0;
      for (const h of households) {
        const e = h.model.intervalEnergy(k);
        loadWh += e?.loadWh ?? 0;
        pvWh += e?.pvWh ?? 0;
      }
      let gridImportWh = 0;
      let gridExportWh = 0;
      for (const e of entries) {
        if (e.seller === "grid") gridImportWh += e.energyWh;
        if (e.buyer === "grid") gridExportWh += e.energyWh;
      }
      rows.push({
        interval: k,
        startIso: new Date(startMs + k * intervalMs).toISOString(),
        clearingPriceMicrosPerKwh: summary?.clearingPriceMicrosPerKwh ?? null,
        tradedWh,
        loadWh,
        pvWh,
        gridImportWh,
        gridExportWh,
      });
    }
    const truth = new Map<string, HouseholdIntervalTruth[]>();
    for (const h of households) {
      const list: HouseholdIntervalTruth[] = [];
      for (let k = 0; k < intervals; k++) {
        const e = h.model.intervalEnergy(k);
        if (e !== undefined) list.push({ interval: k, loadWh: e.loadWh, pvWh: e.pvWh, importWh: e.importWh, exportWh: e.exportWh });
      }
      truth.set(h.id, list);
    }
    const kpis = computeKpis({ truth, ledger, grid: scenario.grid, clearingPrices });
    const blocks = best.slot;
    const wallSeconds = (Date.now() - started) / 1000;
    let reportFiles: readonly string[] = [];
    if (options.out !== null) {
      const groups = new Map<string, { forecaster: string; strategy: string; households: number; mae: number; mape: number; mapeCount: number }>();
      for (const h of households) {
        const key = `${h.agent.forecaster.name}/${h.agent.strategy.name}`;
        const g = groups.get(key) ?? { forecaster: h.agent.forecaster.name, strategy: h.agent.strategy.name, households: 0, mae: 0, mape: 0, mapeCount: 0 };
        g.households++;
        g.mae += h.agent.errors.mae();
        const mape = h.agent.errors.mape();
        if (mape !== null) {
          g.mape += mape;
          g.mapeCount++;
        }
        groups.set(key, g);
      }
      const data: ReportData = {
        scenario: {
          name: scenario.name,
          seed: scenario.seed,
          start: scenario.start,
          durationMinutes: scenario.durationMinutes,
          marketIntervalMinutes: scenario.marketIntervalMinutes,
          market: scenario.market,
          grid: scenario.grid,
          households: households.length,
        },
        intervals: rows,
        kpis,
        forecastErrors: [...groups.values()].map((g) => ({
          forecaster: g.forecaster,
          strategy: g.strategy,
          households: g.households,
          maeWh: g.mae / g.households,
          mapePercent: g.mapeCount === 0 ? null : g.mape / g.mapeCount,
        })),
        run: { blocks, ledgerEntries: ledger.length, envelopes: sent, wallSeconds, settledIntervals: intervals },
        imbalance: {
          shortfallWh: ledger.filter((e) => e.reason === "shortfall").reduce((sum, e) => sum + e.energyWh, 0),
          surplusWh: ledger.filter((e) => e.reason === "surplus").reduce((sum, e) => sum + e.energyWh, 0),
        },
      };
      reportFiles = (await writeReport(options.out, data)).files;
    }
    bar?.update(intervals, { phase: "done    " });
    return { kpis, blocks, ledgerEntries: ledger.length, intervals, envelopes: sent, receipts, errors, reportFiles, wallSeconds };
  } finally {
    bars?.stop();
    for (const h of households) {
      await h.meter?.close();
      await h.trader?.close();
    }
    await env.close();
    logger.flush();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Registers every household's meter, then its agent, through the gateway's HTTP API; waits until all are on the ledger. */
async function registerAll(env: Env, households: readonly Household[]): Promise<void> {
  const post = async (key: DeviceKey, kind: "meter" | "agent", household?: string) => {
    const response = await fetch(`${env.httpUrl}/v1/devices`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.token}`, "content-type": "application/json" },
      body: JSON.stringify({
        publicKey: Buffer.from(key.publicKey).toString("hex"),
        kind,
        service: ENERGY_SERVICE.name,
        ...(household === undefined ? {} : { household }),
      }),
    });
    // 409: registered already (a remote market from an earlier run with the same seed): fine.
    if (response.status !== 202 && response.status !== 409) throw new Error(`registering ${key.deviceId}: HTTP ${response.status} ${await response.text()}`);
  };
  const deadline = Date.now() + 120_000;
  const settled = async (keys: readonly DeviceKey[]) => {
    for (const key of keys) {
      for (;;) {
        const view = await env.view(key.deviceId);
        if (view?.status === "registered") break;
        if (view?.status === "failed") throw new Error(`registration of ${key.deviceId} failed: ${view.code} ${view.detail ?? ""}`);
        if (Date.now() > deadline) throw new Error(`registration of ${key.deviceId} not settled within 120 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  // Meters first, settled before any agent is posted: an agent's registration names its meter,
  // which must be registered when the agent's is accumulated. Posted together, the meters and
  // the agents may go in two packages on two cores of one block, accumulated in core order, and
  // the agents' package first refuses them (JG_ERR_ENERGY_HOUSEHOLD).
  await Promise.all(households.map((h) => post(h.meterKey, "meter")));
  await settled(households.map((h) => h.meterKey));
  await Promise.all(households.map((h) => post(h.agentKey, "agent", h.meterKey.deviceId)));
  await settled(households.map((h) => h.agentKey));
}

function send(client: DeviceClient, kind: typeof METER_READING_KIND | typeof AGENT_ORDER_KIND, body: unknown, count: (code: string) => void): boolean {
  const result = client.send(kind, body);
  if (!result.ok) count(result.error.code);
  return result.ok;
}

async function readProgress(api: NodeApi, at: Uint8Array) {
  const raw = await api.serviceValue(at, ENERGY_SERVICE.id, MARKET_KEY);
  if (raw === null) return { nextClear: 0, nextSettle: 0 };
  const decoded = decodeMarketProgress(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

async function readSummary(api: NodeApi, at: Uint8Array, interval: number) {
  const raw = await api.serviceValue(at, ENERGY_SERVICE.id, intervalKey(interval));
  if (raw === null) return null;
  const decoded = decodeIntervalSummary(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

async function readLedger(api: NodeApi, at: Uint8Array, interval: number): Promise<StoredLedgerEntry[]> {
  const raw = await api.serviceValue(at, ENERGY_SERVICE.id, ledgerKey(interval));
  if (raw === null) return [];
  const decoded = decodeLedgerEntries(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

function hexOf(party: StoredLedgerEntry["buyer"]): string {
  return party === "grid" ? "grid" : Buffer.from(party).toString("hex");
}

/** Wakes a loop on each notification (coalescing those that came while it worked). */
function waiter() {
  let pending = false;
  let resolve: (() => void) | null = null;
  return {
    notify() {
      pending = true;
      resolve?.();
      resolve = null;
    },
    next(): Promise<void> {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((r) => {
        resolve = () => {
          pending = false;
          r();
        };
      });
    },
  };
}
