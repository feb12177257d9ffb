/**
 * Accumulate of the energy-trading service (GP 12, Ψ_A): sequential and stateful, called in every
 * block (the service is in χ_Z, always-accumulate) so the market runs on the chain's clock.
 *
 * 1. Work results, in the order the node hands them over: registrations go into the registry (a
 *    meter founds a household, an agent joins its meter's household); a meter's condensed
 *    readings add energy to its household's intervals, the gap since its last settled reading
 *    included if it is within the power bound (condense.ts METER_POWER_W_MAX), or, when the
 *    package starts with a `meter.reset`, from the reset's counters on, with no energy for the
 *    gap; an agent's orders replace its household's
 *    orders for an interval not yet cleared. Each (device, seq) settles once (services/common
 *    window), and each package gets an outcome for receipts.
 * 2. The clock: every interval whose start the market time has reached is cleared (a double
 *    auction, market.ts); every cleared interval whose end plus the settlement delay has passed is
 *    settled against what the meters measured (settlement.ts), writing ledger entries and moving
 *    balances. Value is conserved: the balance changes of households and grid sum to zero.
 *
 * Deterministic: state changes depend only on the items, the slot and storage; households are
 * visited in ascending id order; amounts are integers (bigint for money).
 */
import { type AccumulateHost, type AccumulateItem, gasSchedule } from "../../node/service-api/index.ts";
import { compareBytes, fromLowerHex, toHex, U32_MAX } from "../common/bytes.ts";
import type { RawDeviceId } from "../common/envelope.ts";
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import { encodeOutcome, OutcomeBuilder, OutcomeFifo } from "../common/outcome.ts";
import { EMPTY_WINDOW, windowAccepts, windowSettle } from "../common/window.ts";
import { exceedsPowerBig, intervalOfReading } from "./condense.ts";
import { clearInterval, type GridPrices, type Order } from "./market.ts";
import { decodeRefineOutput, type DeviceOutput, type EnvelopesOutput, OrderSide, type RegistrationsOutput } from "./output.ts";
import { DeviceRole, ItemKind } from "./payload.ts";
import { GRID, settleInterval } from "./settlement.ts";
import {
  balanceKey,
  CONFIG_KEY,
  decodeBalance,
  decodeDeviceRecord,
  decodeHouseholds,
  decodeIntervalSummary,
  decodeMarketConfig,
  decodeMarketProgress,
  decodeMetered,
  decodeOrderPage,
  decodeStats,
  decodeTrades,
  DEVICE_RECORD_BYTES,
  type DeviceRecord,
  deviceKey,
  EMPTY_STATS,
  encodeBalance,
  encodeDeviceRecord,
  encodeHouseholds,
  encodeIntervalSummary,
  encodeLedgerEntries,
  encodeMarketProgress,
  encodeMetered,
  encodeOrderPage,
  encodeStats,
  encodeTrades,
  type EnergyStats,
  GRID_BALANCE_KEY,
  HOUSEHOLDS_KEY,
  intervalKey,
  intervalStartMs,
  ledgerKey,
  MARKET_KEY,
  MARKET_START,
  type MarketConfig,
  type MarketProgress,
  marketTimeMs,
  meteredKey,
  ORDER_PAGES,
  type OrderPage,
  ordersPageKey,
  STATS_KEY,
  type StoredLedgerEntry,
  tradesKey,
} from "./storage.ts";

/**
 * Households in one market: clearing and settling an interval reads a few storage values per
 * household; 10,000 households take ~5e7 gas, well within the χ_Z gas genesis gives the service.
 */
export const HOUSEHOLDS_MAX = 10_000;
/** How far ahead an order may be placed: two days of 15-minute intervals. */
export const ORDER_HORIZON_INTERVALS = 192;
/** Intervals cleared, and settled, per block at most: bounds a block's work when the market catches up after a pause. */
export const CLEARINGS_PER_BLOCK_MAX = 4;
export const SETTLEMENTS_PER_BLOCK_MAX = 4;
/**
 * Settled intervals whose ledger and summary stay in state: a week of 15-minute intervals. Older
 * ones are deleted as new ones settle, so state stays bounded however long the market runs (their
 * entries remain in the blocks' history and their inputs in DA; a ledger view archives them).
 */
export const LEDGER_INTERVALS_KEPT = 672;
/** The gas genesis gives the service in χ_Z: the clock's work for HOUSEHOLDS_MAX households with room to spare. */
export const ALWAYS_ACCUMULATE_GAS = 1_000_000_000n;

export function accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void {
  const market = new Market(host);
  const packages = new Map<string, OutcomeBuilder>();
  for (const item of items) {
    if (item.kind !== "result") continue; // a transfer's amount is credited by the node; nothing to record
    const output = decodeRefineOutput(item.output);
    if (!output.ok) throw new Error(`energy-trading: refine output does not decode: ${output.error}`); // a bug: our refine made it
    const hex = toHex(item.packageHash);
    let builder = packages.get(hex);
    if (builder === undefined) {
      builder = new OutcomeBuilder(item.packageHash);
      packages.set(hex, builder);
    }
    if (output.value.kind === ItemKind.registrations) market.register(output.value, builder);
    else market.applyEnvelopes(output.value, builder);
  }
  market.runClock();
  market.flush();

  if (packages.size > 0) {
    const fifo = new OutcomeFifo(host);
    for (const builder of packages.values()) {
      const outcome = builder.finish(host.slot);
      let rejected = 0;
      for (const run of outcome.rejectedEnvelopes) rejected += run.length;
      market.count({ devicesRegistered: BigInt(outcome.registrationsSettled), envelopesSettled: BigInt(outcome.envelopesSettled), envelopesRejected: BigInt(rejected) });
      fifo.push(builder.packageHash, encodeOutcome(outcome));
    }
    fifo.flush();
  }
  market.flushStats();
}

class Market {
  private readonly config: MarketConfig | null;
  private progress: MarketProgress;
  private progressDirty = false;
  private households: RawDeviceId[] | null = null;
  private householdsDirty = false;
  private readonly devices = new Map<string, DeviceRecord | null>();
  private readonly dirtyDevices = new Set<string>();
  private stats: EnergyStats | null = null;
  private statsDirty = false;
  /** Order-book pages read (or made) in this call, by pageId; written back at flush. */
  private readonly pages = new Map<string, OrderPage>();
  /** Whether a page had a value in storage when read (so emptying it must delete it). */
  private readonly pageStored = new Map<string, boolean>();
  private readonly dirtyPages = new Set<string>();

  constructor(private readonly host: AccumulateHost) {
    const raw = host.read(CONFIG_KEY);
    if (raw === null) {
      this.config = null;
    } else {
      const config = decodeMarketConfig(raw);
      if (!config.ok) throw new Error(`energy-trading: stored config: ${config.error}`);
      this.config = config.value;
    }
    const progress = host.read(MARKET_KEY);
    if (progress === null) {
      this.progress = MARKET_START;
    } else {
      const decoded = decodeMarketProgress(progress);
      if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
      this.progress = decoded.value;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Registry.

  private device(id: Uint8Array): DeviceRecord | null {
    const hex = toHex(id);
    if (this.devices.has(hex)) return this.devices.get(hex)!;
    const raw = this.host.read(deviceKey(id));
    let record: DeviceRecord | null = null;
    if (raw !== null) {
      const decoded = decodeDeviceRecord(raw);
      if (!decoded.ok) throw new Error(`energy-trading: device ${hex}: ${decoded.error}`);
      record = decoded.value;
    }
    this.devices.set(hex, record);
    return record;
  }

  private putDevice(id: Uint8Array, record: DeviceRecord): void {
    const hex = toHex(id);
    this.devices.set(hex, record);
    this.dirtyDevices.add(hex);
  }

  private householdList(): RawDeviceId[] {
    if (this.households === null) {
      const raw = this.host.read(HOUSEHOLDS_KEY);
      if (raw === null) {
        this.households = [];
      } else {
        const decoded = decodeHouseholds(raw);
        if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
        this.households = decoded.value;
      }
    }
    return this.households;
  }

  register(output: RegistrationsOutput, outcome: OutcomeBuilder): void {
    for (const r of output.registrations) {
      const refuse = (code: RejectionCode) => outcome.rejectRegistration(r.deviceId, code);
      if (this.device(r.deviceId) !== null) {
        refuse(REJECTION_CODES.JG_ERR_DEVICE_EXISTS);
        continue;
      }
      if (r.role === DeviceRole.agent) {
        const household = this.device(r.household);
        if (household === null || household.role !== DeviceRole.meter) {
          refuse(REJECTION_CODES.JG_ERR_ENERGY_HOUSEHOLD);
          continue;
        }
      } else {
        const list = this.householdList();
        if (list.length >= HOUSEHOLDS_MAX) {
          refuse(REJECTION_CODES.JG_ERR_ENERGY_FULL);
          continue;
        }
        // Binary search on the bytes (the order of their hex): a batch of 640 registrations into
        // 10,000 households would otherwise compare hex strings millions of times.
        let low = 0;
        let high = list.length;
        while (low < high) {
          const mid = (low + high) >>> 1;
          if (compareBytes(list[mid]!, r.deviceId) < 0) low = mid + 1;
          else high = mid;
        }
        list.splice(low, 0, r.deviceId);
        this.householdsDirty = true;
      }
      this.putDevice(r.deviceId, {
        publicKey: r.publicKey,
        role: r.role,
        household: r.household,
        registeredSlot: this.host.slot,
        window: EMPTY_WINDOW,
        lastReading: null,
        envelopesSettled: 0n,
      });
      outcome.settleRegistration();
    }
  }

  private orderPage(interval: number, page: number): OrderPage {
    const id = pageId(interval, page);
    let cached = this.pages.get(id);
    if (cached === undefined) {
      const raw = this.host.read(ordersPageKey(interval, page));
      if (raw === null) {
        cached = new Map();
      } else {
        const decoded = decodeOrderPage(raw);
        if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
        cached = decoded.value;
      }
      this.pages.set(id, cached);
      this.pageStored.set(id, raw !== null);
    }
    return cached;
  }

  // -------------------------------------------------------------------------------------------
  // Readings and orders.

  applyEnvelopes(output: EnvelopesOutput, outcome: OutcomeBuilder): void {
    outcome.commitments.push(output.commitment);
    const clockMatches = this.config !== null && output.marketStartMs === this.config.startMs && output.intervalMs === this.config.intervalMs;
    for (const device of output.devices) {
      for (const r of device.rejected) outcome.rejectEnvelope(device.deviceId, r.seq, r.code);
      const accepted = seqsOf(device);
      if (!clockMatches) {
        for (const seq of accepted) outcome.rejectEnvelope(device.deviceId, seq, REJECTION_CODES.JG_ERR_ENERGY_CLOCK);
        continue;
      }
      const record = this.device(device.deviceId);
      if (record === null) {
        for (const seq of accepted) outcome.rejectEnvelope(device.deviceId, seq, REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED);
        continue;
      }
      const orderSeqs = new Set(device.orders.map((o) => o.seq));
      this.applyOrders(device, record, outcome);
      const meterSeqs = accepted.filter((seq) => !orderSeqs.has(seq));
      if (meterSeqs.length > 0) this.applyReadings(device, meterSeqs, outcome);
    }
  }

  private applyOrders(device: DeviceOutput, initial: DeviceRecord, outcome: OutcomeBuilder): void {
    let record = initial;
    for (const set of device.orders) {
      const refuse = (code: RejectionCode) => outcome.rejectEnvelope(device.deviceId, set.seq, code);
      if (record.role !== DeviceRole.agent) {
        refuse(REJECTION_CODES.JG_ERR_ENERGY_KIND);
        continue;
      }
      const window = windowSettle(record.window, set.seq);
      if (window === null) {
        refuse(REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY);
        continue;
      }
      if (set.interval < this.progress.nextClear) {
        refuse(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_CLOSED);
        continue;
      }
      if (set.interval >= this.progress.nextClear + ORDER_HORIZON_INTERVALS) {
        refuse(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_FAR);
        continue;
      }
      const page = this.orderPage(set.interval, record.household[0]!);
      const household = toHex(record.household);
      const stored = page.get(household);
      // The latest seq wins, whatever order packages arrive in.
      if (stored === undefined || stored.seq < set.seq) {
        if (set.lines.length === 0) page.delete(household);
        else page.set(household, { seq: set.seq, lines: set.lines });
        this.dirtyPages.add(pageId(set.interval, record.household[0]!));
      }
      record = { ...record, window, envelopesSettled: record.envelopesSettled + 1n };
      outcome.settleEnvelope(device.deviceId, set.seq);
    }
    if (record !== initial) this.putDevice(device.deviceId, record);
  }

  /**
   * A meter's envelopes of one package settle together or not at all: they are one digest. A
   * refused digest writes nothing: no energy, and the meter's last reading and window stay, so
   * the next good package counts from the last settled reading.
   */
  private applyReadings(device: DeviceOutput, seqs: readonly bigint[], outcome: OutcomeBuilder): void {
    const config = this.config!;
    const record = this.device(device.deviceId)!;
    const refuseAll = (code: RejectionCode) => {
      for (const seq of seqs) outcome.rejectEnvelope(device.deviceId, seq, code);
    };
    const digest = device.meter;
    if (record.role !== DeviceRole.meter || digest === null) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_KIND);
    if (seqs.some((seq) => !windowAccepts(record.window, seq))) return refuseAll(REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY);
    const last = record.lastReading;
    if (last !== null && digest.first.t <= last.t) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_COUNTER);
    // A reset (signed by the meter's key) is the new baseline: its counters may be lower or higher
    // than the last settled ones, and the gap before it credits nothing. Readings after it are
    // bounded from it as from any reading, so it cannot make room for more energy than the
    // meter's power delivers (README, "A meter whose counter was replaced or reset").
    const gap = last !== null && !digest.firstIsReset;
    if (gap && (digest.first.importWh < last.importWh || digest.first.exportWh < last.exportWh)) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_COUNTER);
    if (gap && exceedsPowerBig(digest.first.importWh - last.importWh + (digest.first.exportWh - last.exportWh), digest.first.t - last.t)) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_POWER);
    // Energy of intervals already settled (readings that came late) rolls forward into the first
    // one still open: it is not lost, and the counters stay continuous.
    const open = (interval: number) => Math.max(interval, this.progress.nextSettle);
    // Refine made these times from safe integers (body.ts), so Number() is exact.
    const firstInterval = open(intervalOfReading(Number(digest.first.t), { startMs: Number(config.startMs), intervalMs: config.intervalMs }));
    const now = marketTimeMs(config, this.host.slot) ?? config.startMs;
    if (digest.last.t >= now + BigInt(config.intervalMs)) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_FAR);

    // The energy since the last settled reading counts in the interval of this package's first one.
    const energy = new Map<number, { importWh: bigint; exportWh: bigint }>();
    const add = (interval: number, importWh: bigint, exportWh: bigint) => {
      const e = energy.get(interval) ?? { importWh: 0n, exportWh: 0n };
      energy.set(interval, { importWh: e.importWh + importWh, exportWh: e.exportWh + exportWh });
    };
    if (gap) add(firstInterval, digest.first.importWh - last.importWh, digest.first.exportWh - last.exportWh);
    for (const e of digest.intervals) add(open(e.interval), BigInt(e.importWh), BigInt(e.exportWh));
    const writes: [Uint8Array, Uint8Array][] = [];
    for (const interval of [...energy.keys()].sort((a, b) => a - b)) {
      const e = energy.get(interval)!;
      const key = meteredKey(interval, record.household);
      const raw = this.host.read(key);
      const stored = raw === null ? { importWh: 0, exportWh: 0 } : decodeMetered(raw);
      if ("ok" in stored && !stored.ok) throw new Error(`energy-trading: ${stored.error}`);
      const before = "ok" in stored ? stored.value : stored;
      const importWh = BigInt(before.importWh) + e.importWh;
      const exportWh = BigInt(before.exportWh) + e.exportWh;
      if (importWh > BigInt(U32_MAX) || exportWh > BigInt(U32_MAX)) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_COUNTER);
      writes.push([key, encodeMetered({ importWh: Number(importWh), exportWh: Number(exportWh) })]);
    }
    for (const [key, value] of writes) this.host.write(key, value);
    let window = record.window;
    for (const seq of seqs) {
      window = windowSettle(window, seq)!;
      outcome.settleEnvelope(device.deviceId, seq);
    }
    this.putDevice(device.deviceId, { ...record, window, lastReading: digest.last, envelopesSettled: record.envelopesSettled + BigInt(seqs.length) });
  }

  // -------------------------------------------------------------------------------------------
  // The clock: clearing and settlement.

  runClock(): void {
    const config = this.config;
    if (config === null) return;
    const now = marketTimeMs(config, this.host.slot);
    if (now === null) return;
    const grid: GridPrices = { importPriceMicrosPerKwh: config.importPriceMicrosPerKwh, exportPriceMicrosPerKwh: config.exportPriceMicrosPerKwh };
    for (let n = 0; n < CLEARINGS_PER_BLOCK_MAX && intervalStartMs(config, this.progress.nextClear) <= now; n++) {
      this.clear(this.progress.nextClear, config, grid);
      this.progress = { ...this.progress, nextClear: this.progress.nextClear + 1 };
      this.progressDirty = true;
    }
    for (let n = 0; n < SETTLEMENTS_PER_BLOCK_MAX && this.progress.nextSettle < this.progress.nextClear; n++) {
      const k = this.progress.nextSettle;
      if (intervalStartMs(config, k + 1) + BigInt(config.settlementDelayMs) > now) break;
      this.settle(k, grid);
      this.progress = { ...this.progress, nextSettle: k + 1 };
      this.progressDirty = true;
    }
  }

  private clear(interval: number, config: MarketConfig, grid: GridPrices): void {
    const orders: Order[] = [];
    for (let p = 0; p < ORDER_PAGES; p++) {
      const page = this.orderPage(interval, p);
      for (const [household, stored] of page) {
        for (const line of stored.lines) orders.push({ household, side: line.side === OrderSide.bid ? "bid" : "ask", energyWh: line.energyWh, priceMicrosPerKwh: line.priceMicrosPerKwh });
      }
      if (page.size > 0 || this.pageStored.get(pageId(interval, p))) {
        page.clear();
        this.dirtyPages.add(pageId(interval, p));
      }
    }
    const clearing = clearInterval(orders, config.mode, grid);
    if (clearing.trades.length > 0) {
      this.host.write(tradesKey(interval), encodeTrades(clearing.trades.map((t) => ({ buyer: raw(t.buyer), seller: raw(t.seller), energyWh: t.energyWh, priceMicrosPerKwh: t.priceMicrosPerKwh, amountMicros: t.amountMicros }))));
    }
    this.host.write(
      intervalKey(interval),
      encodeIntervalSummary({
        settled: false,
        clearingPriceMicrosPerKwh: clearing.clearingPriceMicrosPerKwh,
        tradedWh: BigInt(clearing.tradedWh),
        orders: orders.length,
        trades: clearing.trades.length,
        ledgerEntries: 0,
        clearedSlot: this.host.slot,
        settledSlot: 0,
      }),
    );
    this.count({ intervalsCleared: 1n, tradedWh: BigInt(clearing.tradedWh) });
  }

  private settle(interval: number, grid: GridPrices): void {
    const rawTrades = this.host.read(tradesKey(interval));
    const trades = rawTrades === null ? { ok: true as const, value: [] } : decodeTrades(rawTrades);
    if (!trades.ok) throw new Error(`energy-trading: ${trades.error}`);
    if (rawTrades !== null) this.host.write(tradesKey(interval), null);
    const metered = new Map<string, { importWh: number; exportWh: number }>();
    for (const household of this.householdList()) {
      const key = meteredKey(interval, household);
      const value = this.host.read(key);
      if (value === null) continue;
      const m = decodeMetered(value);
      if (!m.ok) throw new Error(`energy-trading: ${m.error}`);
      this.host.write(key, null);
      metered.set(toHex(household), m.value);
    }
    const result = settleInterval({
      interval,
      trades: trades.value.map((t) => ({ buyer: toHex(t.buyer), seller: toHex(t.seller), energyWh: t.energyWh, priceMicrosPerKwh: t.priceMicrosPerKwh, amountMicros: t.amountMicros })),
      metered,
      grid,
    });
    const entries: StoredLedgerEntry[] = result.entries.map((e) => ({
      buyer: party(e.buyer),
      seller: party(e.seller),
      energyWh: e.energyWh,
      priceMicrosPerKwh: e.priceMicrosPerKwh,
      amountMicros: e.amountMicros,
      reason: e.reason,
    }));
    if (entries.length > 0) this.host.write(ledgerKey(interval), encodeLedgerEntries(entries));
    if (interval >= LEDGER_INTERVALS_KEPT) {
      this.host.write(ledgerKey(interval - LEDGER_INTERVALS_KEPT), null);
      this.host.write(intervalKey(interval - LEDGER_INTERVALS_KEPT), null);
    }
    for (const id of [...result.balanceDeltasMicros.keys()].sort()) {
      const delta = result.balanceDeltasMicros.get(id)!;
      if (delta === 0n) continue;
      const key = id === GRID ? GRID_BALANCE_KEY : balanceKey(id);
      const stored = this.host.read(key);
      const before = stored === null ? { ok: true as const, value: 0n } : decodeBalance(stored);
      if (!before.ok) throw new Error(`energy-trading: ${before.error}`);
      this.host.write(key, encodeBalance(before.value + delta));
    }
    const summaryRaw = this.host.read(intervalKey(interval));
    if (summaryRaw === null) throw new Error(`energy-trading: interval ${interval} settles before it was cleared`); // a bug
    const summary = decodeIntervalSummaryOrThrow(summaryRaw);
    this.host.write(intervalKey(interval), encodeIntervalSummary({ ...summary, settled: true, ledgerEntries: entries.length, settledSlot: this.host.slot }));
    this.count({ intervalsSettled: 1n, ledgerEntries: BigInt(entries.length) });
  }

  // -------------------------------------------------------------------------------------------
  // Counters and writes.

  count(add: Partial<EnergyStats>): void {
    if (this.stats === null) {
      const raw = this.host.read(STATS_KEY);
      const decoded = raw === null ? { ok: true as const, value: EMPTY_STATS } : decodeStats(raw);
      if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
      this.stats = decoded.value;
    }
    const next = { ...this.stats };
    for (const [field, value] of Object.entries(add) as [keyof EnergyStats, bigint][]) next[field] += value;
    this.stats = next;
    this.statsDirty = true;
  }

  /** Writes devices (ascending id), order pages, the household list and the market's progress. */
  flush(): void {
    for (const id of [...this.dirtyPages].sort()) {
      const [interval, page] = id.split("/").map(Number) as [number, number];
      const value = this.pages.get(id)!;
      if (value.size > 0) this.host.write(ordersPageKey(interval, page), encodeOrderPage(value));
      else if (this.pageStored.get(id)) this.host.write(ordersPageKey(interval, page), null);
    }
    this.dirtyPages.clear();
    for (const hex of [...this.dirtyDevices].sort()) this.host.write(deviceKey(hex), encodeDeviceRecord(this.devices.get(hex)!));
    this.dirtyDevices.clear();
    if (this.householdsDirty) this.host.write(HOUSEHOLDS_KEY, encodeHouseholds(this.householdList()));
    if (this.progressDirty) this.host.write(MARKET_KEY, encodeMarketProgress(this.progress));
  }

  flushStats(): void {
    if (this.statsDirty && this.stats !== null) this.host.write(STATS_KEY, encodeStats(this.stats));
  }
}

function decodeIntervalSummaryOrThrow(bytes: Uint8Array) {
  const decoded = decodeIntervalSummary(bytes);
  if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
  return decoded.value;
}

/** The cache id of an order-book page: interval and page, zero-padded so ids sort in key order. */
function pageId(interval: number, page: number): string {
  return `${interval.toString().padStart(10, "0")}/${page.toString().padStart(3, "0")}`;
}

function seqsOf(device: DeviceOutput): bigint[] {
  const seqs: bigint[] = [];
  for (const run of device.accepted) for (let k = 0; k < run.length; k++) seqs.push(run.start + BigInt(k));
  return seqs;
}

function raw(hex: string): RawDeviceId {
  const bytes = fromLowerHex(hex);
  if (bytes === null || bytes.length !== 16) throw new Error(`energy-trading: not a household id: ${hex}`); // a bug: ids come from our storage
  return bytes as RawDeviceId;
}

function party(id: string): StoredLedgerEntry["buyer"] {
  return id === GRID ? "grid" : raw(id);
}

// ---------------------------------------------------------------------------------------------
// Gas: what the gateway sets as a work item's accumulate gas limit (GP 11.1.4 g).

const g = gasSchedule;
const DEVICE_GAS = 2n * g.hostCallBase + (g.perByteRead + g.perByteWritten) * BigInt(20 + DEVICE_RECORD_BYTES);
/** A meter touches a few intervals per package (read and write each), an agent one order set. */
const PER_DEVICE_GAS = DEVICE_GAS + 8n * (2n * g.hostCallBase + (g.perByteRead + g.perByteWritten) * 40n);
const PER_ENVELOPE_GAS = 2n * g.hostCallBase + g.perByteWritten * 120n;
const PER_REGISTRATION_GAS = 2n * DEVICE_GAS + g.perByteWritten * 17n;
/** Household list rewrite, stats, outcome FIFO and the outcome itself. */
const PER_ITEM_GAS = 12n * g.hostCallBase + (g.perByteRead + g.perByteWritten) * BigInt(HOUSEHOLDS_MAX * 16) + 4096n * g.perByteWritten;

/**
 * An accumulate gas limit that always suffices for an item of this shape (the clock's work is paid
 * by χ_Z): e.g. 256 devices × 8 envelopes ≈ 6.6e6, within G_A = 1e7.
 */
export function accumulateGasLimit(shape: { readonly devices?: number; readonly envelopes?: number; readonly registrations?: number }): bigint {
  return PER_ITEM_GAS + BigInt(shape.devices ?? 0) * PER_DEVICE_GAS + BigInt(shape.envelopes ?? 0) * PER_ENVELOPE_GAS + BigInt(shape.registrations ?? 0) * PER_REGISTRATION_GAS;
}
