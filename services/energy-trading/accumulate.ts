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
import { PackageOutcomes, resultsOf } from "../common/dispatch.ts";
import type { RawDeviceId } from "../common/envelope.ts";
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import { type OutcomeBuilder, REJECTED_REGISTRATION_BYTES } from "../common/outcome.ts";
import { type Cell, type KeyedMap, Store } from "../common/store.ts";
import { EMPTY_WINDOW, windowAccepts, windowSettle } from "../common/window.ts";
import { exceedsPowerBig, intervalOfReading } from "./condense.ts";
import { clearInterval, type GridPrices, type Order } from "./market.ts";
import { decodeRefineOutput, type DeviceOutput, type EnvelopesOutput, OrderSide, type RegistrationsOutput } from "./output.ts";
import { DeviceRole, ItemKind } from "./payload.ts";
import { GRID, settleInterval } from "./settlement.ts";
import {
  balanceCodec,
  balanceKey,
  CONFIG_KEY,
  DEVICE_RECORD_BYTES,
  type DeviceRecord,
  deviceKey,
  deviceRecordCodec,
  EMPTY_STATS,
  type EnergyStats,
  GRID_BALANCE_KEY,
  HOUSEHOLDS_KEY,
  HOUSEHOLDS_MAX,
  householdsCodec,
  type IntervalSummary,
  intervalKey,
  intervalStartMs,
  intervalSummaryCodec,
  ledgerEntriesCodec,
  ledgerKey,
  MARKET_KEY,
  MARKET_START,
  type MarketConfig,
  marketConfigCodec,
  type MarketProgress,
  marketProgressCodec,
  marketTimeMs,
  type Metered,
  meteredCodec,
  meteredKey,
  ORDER_PAGES,
  type OrderPage,
  orderPageCodec,
  ordersPageKey,
  STATS_KEY,
  statsCodec,
  type StoredLedgerEntry,
  type StoredTrade,
  tradesCodec,
  tradesKey,
} from "./storage.ts";

export { HOUSEHOLDS_MAX };
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

const SERVICE = "energy-trading";

export function accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void {
  const market = new Market(host);
  const packages = new PackageOutcomes();
  for (const { output, outcome } of resultsOf(SERVICE, items, decodeRefineOutput, packages)) {
    if (output.kind === ItemKind.registrations) market.register(output, outcome);
    else market.applyEnvelopes(output, outcome);
  }
  market.runClock();
  packages.store(host, (outcome) => {
    let rejected = 0;
    for (const run of outcome.rejectedEnvelopes) rejected += run.length;
    market.count({
      devicesRegistered: BigInt(outcome.registrationsSettled),
      envelopesSettled: BigInt(outcome.envelopesSettled),
      envelopesRejected: BigInt(rejected),
    });
  });
  market.flush();
}

/** An order-book page: an interval and the first byte of the households on it. */
interface PageRef {
  readonly interval: number;
  readonly page: number;
}

/** A household's energy in an interval. */
interface MeteredRef {
  readonly interval: number;
  readonly household: Uint8Array;
}

/**
 * The service's state for one accumulate call, over a Store: each value is read at most once and
 * written back once, at `flush`.
 */
class Market {
  private readonly store: Store;
  private readonly config: MarketConfig | null;
  private readonly progress: Cell<MarketProgress>;
  private readonly households: Cell<RawDeviceId[]>;
  private readonly devices: KeyedMap<Uint8Array, DeviceRecord>;
  /** Order-book pages; an emptied page is deleted. */
  private readonly pages: KeyedMap<PageRef, OrderPage>;
  private readonly metered: KeyedMap<MeteredRef, Metered>;
  private readonly trades: KeyedMap<number, StoredTrade[]>;
  private readonly summaries: KeyedMap<number, IntervalSummary>;
  private readonly ledger: KeyedMap<number, StoredLedgerEntry[]>;
  /** A household's balance by its hex id, or the grid's (GRID). */
  private readonly balances: KeyedMap<string, bigint>;
  private readonly stats: Cell<EnergyStats>;

  constructor(private readonly host: AccumulateHost) {
    const store = new Store(host, SERVICE);
    this.store = store;
    this.config = store.cell(CONFIG_KEY, marketConfigCodec).get();
    this.progress = store.cell(MARKET_KEY, marketProgressCodec, MARKET_START);
    this.households = store.cell(HOUSEHOLDS_KEY, householdsCodec, []);
    this.devices = store.map(deviceKey, deviceRecordCodec);
    this.pages = store.map((p: PageRef) => ordersPageKey(p.interval, p.page), orderPageCodec);
    this.metered = store.map((m: MeteredRef) => meteredKey(m.interval, m.household), meteredCodec);
    this.trades = store.map(tradesKey, tradesCodec);
    this.summaries = store.map(intervalKey, intervalSummaryCodec);
    this.ledger = store.map(ledgerKey, ledgerEntriesCodec);
    this.balances = store.map((id: string) => (id === GRID ? GRID_BALANCE_KEY : balanceKey(id)), balanceCodec);
    this.stats = store.cell(STATS_KEY, statsCodec, EMPTY_STATS);
  }

  // -------------------------------------------------------------------------------------------
  // Registry.

  register(output: RegistrationsOutput, outcome: OutcomeBuilder): void {
    for (const r of output.registrations) {
      const refuse = (code: RejectionCode) => outcome.rejectRegistration(r.deviceId, code);
      if (this.devices.has(r.deviceId)) {
        refuse(REJECTION_CODES.JG_ERR_DEVICE_EXISTS);
        continue;
      }
      if (r.role === DeviceRole.agent) {
        const household = this.devices.get(r.household);
        if (household === null || household.role !== DeviceRole.meter) {
          refuse(REJECTION_CODES.JG_ERR_ENERGY_HOUSEHOLD);
          continue;
        }
      } else {
        const list = this.households.get();
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
        this.households.set(list);
      }
      this.devices.set(r.deviceId, {
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
      const record = this.devices.get(device.deviceId);
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
    const progress = this.progress.get();
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
      if (set.interval < progress.nextClear) {
        refuse(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_CLOSED);
        continue;
      }
      if (set.interval >= progress.nextClear + ORDER_HORIZON_INTERVALS) {
        refuse(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_FAR);
        continue;
      }
      const ref = { interval: set.interval, page: record.household[0]! };
      const page = this.pages.get(ref) ?? new Map();
      const household = toHex(record.household);
      const stored = page.get(household);
      // The latest seq wins, whatever order packages arrive in.
      if (stored === undefined || stored.seq < set.seq) {
        if (set.lines.length === 0) page.delete(household);
        else page.set(household, { seq: set.seq, lines: set.lines });
        this.pages.set(ref, page.size > 0 ? page : null);
      }
      record = { ...record, window, envelopesSettled: record.envelopesSettled + 1n };
      outcome.settleEnvelope(device.deviceId, set.seq);
    }
    if (record !== initial) this.devices.set(device.deviceId, record);
  }

  /**
   * A meter's envelopes of one package settle together or not at all: they are one digest. A
   * refused digest writes nothing: no energy, and the meter's last reading and window stay, so
   * the next good package counts from the last settled reading.
   */
  private applyReadings(device: DeviceOutput, seqs: readonly bigint[], outcome: OutcomeBuilder): void {
    const config = this.config!;
    const record = this.devices.get(device.deviceId)!;
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
    if (gap && exceedsPowerBig(digest.first.importWh - last.importWh + (digest.first.exportWh - last.exportWh), digest.first.t - last.t))
      return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_POWER);
    // Energy of intervals already settled (readings that came late) rolls forward into the first
    // one still open: it is not lost, and the counters stay continuous.
    const nextSettle = this.progress.get().nextSettle;
    const open = (interval: number) => Math.max(interval, nextSettle);
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
    const updates: [MeteredRef, Metered][] = [];
    for (const interval of [...energy.keys()].sort((a, b) => a - b)) {
      const e = energy.get(interval)!;
      const ref = { interval, household: record.household };
      const before = this.metered.get(ref) ?? { importWh: 0, exportWh: 0 };
      const importWh = BigInt(before.importWh) + e.importWh;
      const exportWh = BigInt(before.exportWh) + e.exportWh;
      if (importWh > BigInt(U32_MAX) || exportWh > BigInt(U32_MAX)) return refuseAll(REJECTION_CODES.JG_ERR_ENERGY_COUNTER);
      updates.push([ref, { importWh: Number(importWh), exportWh: Number(exportWh) }]);
    }
    for (const [ref, value] of updates) this.metered.set(ref, value);
    let window = record.window;
    for (const seq of seqs) {
      window = windowSettle(window, seq)!;
      outcome.settleEnvelope(device.deviceId, seq);
    }
    this.devices.set(device.deviceId, { ...record, window, lastReading: digest.last, envelopesSettled: record.envelopesSettled + BigInt(seqs.length) });
  }

  // -------------------------------------------------------------------------------------------
  // The clock: clearing and settlement.

  runClock(): void {
    const config = this.config;
    if (config === null) return;
    const now = marketTimeMs(config, this.host.slot);
    if (now === null) return;
    const grid: GridPrices = { importPriceMicrosPerKwh: config.importPriceMicrosPerKwh, exportPriceMicrosPerKwh: config.exportPriceMicrosPerKwh };
    for (let n = 0; n < CLEARINGS_PER_BLOCK_MAX && intervalStartMs(config, this.progress.get().nextClear) <= now; n++) {
      const progress = this.progress.get();
      this.clear(progress.nextClear, config, grid);
      this.progress.set({ ...progress, nextClear: progress.nextClear + 1 });
    }
    for (let n = 0; n < SETTLEMENTS_PER_BLOCK_MAX && this.progress.get().nextSettle < this.progress.get().nextClear; n++) {
      const progress = this.progress.get();
      const k = progress.nextSettle;
      if (intervalStartMs(config, k + 1) + BigInt(config.settlementDelayMs) > now) break;
      this.settle(k, grid);
      this.progress.set({ ...progress, nextSettle: k + 1 });
    }
  }

  private clear(interval: number, config: MarketConfig, grid: GridPrices): void {
    const orders: Order[] = [];
    for (let p = 0; p < ORDER_PAGES; p++) {
      const ref = { interval, page: p };
      const page = this.pages.get(ref);
      if (page === null) continue;
      for (const [household, stored] of page) {
        for (const line of stored.lines)
          orders.push({ household, side: line.side === OrderSide.bid ? "bid" : "ask", energyWh: line.energyWh, priceMicrosPerKwh: line.priceMicrosPerKwh });
      }
      this.pages.set(ref, null);
    }
    const clearing = clearInterval(orders, config.mode, grid);
    if (clearing.trades.length > 0) {
      this.trades.set(
        interval,
        clearing.trades.map((t) => ({
          buyer: raw(t.buyer),
          seller: raw(t.seller),
          energyWh: t.energyWh,
          priceMicrosPerKwh: t.priceMicrosPerKwh,
          amountMicros: t.amountMicros,
        })),
      );
    }
    this.summaries.set(interval, {
      settled: false,
      clearingPriceMicrosPerKwh: clearing.clearingPriceMicrosPerKwh,
      tradedWh: BigInt(clearing.tradedWh),
      orders: orders.length,
      trades: clearing.trades.length,
      ledgerEntries: 0,
      clearedSlot: this.host.slot,
      settledSlot: 0,
    });
    this.count({ intervalsCleared: 1n, tradedWh: BigInt(clearing.tradedWh) });
  }

  private settle(interval: number, grid: GridPrices): void {
    const trades = this.trades.get(interval) ?? [];
    this.trades.set(interval, null);
    const metered = new Map<string, Metered>();
    for (const household of this.households.get()) {
      const ref = { interval, household };
      const m = this.metered.get(ref);
      if (m === null) continue;
      this.metered.set(ref, null);
      metered.set(toHex(household), m);
    }
    const result = settleInterval({
      interval,
      trades: trades.map((t) => ({
        buyer: toHex(t.buyer),
        seller: toHex(t.seller),
        energyWh: t.energyWh,
        priceMicrosPerKwh: t.priceMicrosPerKwh,
        amountMicros: t.amountMicros,
      })),
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
    if (entries.length > 0) this.ledger.set(interval, entries);
    if (interval >= LEDGER_INTERVALS_KEPT) {
      this.ledger.set(interval - LEDGER_INTERVALS_KEPT, null);
      this.summaries.set(interval - LEDGER_INTERVALS_KEPT, null);
    }
    for (const id of [...result.balanceDeltasMicros.keys()].sort()) {
      const delta = result.balanceDeltasMicros.get(id)!;
      if (delta === 0n) continue;
      this.balances.set(id, (this.balances.get(id) ?? 0n) + delta);
    }
    const summary = this.summaries.get(interval);
    if (summary === null) throw new Error(`${SERVICE}: interval ${interval} settles before it was cleared`); // a bug
    this.summaries.set(interval, { ...summary, settled: true, ledgerEntries: entries.length, settledSlot: this.host.slot });
    this.count({ intervalsSettled: 1n, ledgerEntries: BigInt(entries.length) });
  }

  // -------------------------------------------------------------------------------------------
  // Counters and writes.

  count(add: Partial<EnergyStats>): void {
    const next = { ...this.stats.get() };
    for (const [field, value] of Object.entries(add) as [keyof EnergyStats, bigint][]) next[field] += value;
    this.stats.set(next);
  }

  /** Writes every value changed in this call, once. */
  flush(): void {
    this.store.flush();
  }
}

function seqsOf(device: DeviceOutput): bigint[] {
  const seqs: bigint[] = [];
  for (const run of device.accepted) for (let k = 0; k < run.length; k++) seqs.push(run.start + BigInt(k));
  return seqs;
}

function raw(hex: string): RawDeviceId {
  const bytes = fromLowerHex(hex);
  if (bytes === null || bytes.length !== 16) throw new Error(`${SERVICE}: not a household id: ${hex}`); // a bug: ids come from our storage
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
const PER_REGISTRATION_GAS = 2n * DEVICE_GAS + g.perByteWritten * BigInt(REJECTED_REGISTRATION_BYTES);
/** Household list rewrite, stats, outcome FIFO and the outcome itself. */
const PER_ITEM_GAS = 12n * g.hostCallBase + (g.perByteRead + g.perByteWritten) * BigInt(HOUSEHOLDS_MAX * 16) + 4096n * g.perByteWritten;

/**
 * An accumulate gas limit that always suffices for an item of this shape (the clock's work is paid
 * by χ_Z): e.g. 256 devices × 8 envelopes ≈ 6.6e6, within G_A = 1e7.
 */
export function accumulateGasLimit(shape: { readonly devices?: number; readonly envelopes?: number; readonly registrations?: number }): bigint {
  return (
    PER_ITEM_GAS +
    BigInt(shape.devices ?? 0) * PER_DEVICE_GAS +
    BigInt(shape.envelopes ?? 0) * PER_ENVELOPE_GAS +
    BigInt(shape.registrations ?? 0) * PER_REGISTRATION_GAS
  );
}
