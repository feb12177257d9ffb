/**
 * The energy-trading service's storage (GP 9.2, a service account's storage dictionary): keys and
 * compact binary values, with pure decoders that the gateway, the simulator and the ledger view
 * use to read them through the node's `serviceValue` (JIP-2). Integers little-endian; every
 * value starts with a format version byte.
 *
 * | key | value |
 * |---|---|
 * | "config" | the market: clock, mode, grid prices (`encodeMarketConfig`); set at genesis |
 * | "market" | u32 next interval to clear ⌢ u32 next interval to settle |
 * | "households" | the registered households (their meters' ids), ascending |
 * | "dev/" ⌢ deviceId 16 | device record: key, role, household, replay window, last meter reading |
 * | "orders/" ⌢ u32 interval ⌢ u8 page | the order sets of an interval not yet cleared, of the households whose id starts with byte `page` |
 * | "metered/" ⌢ u32 interval ⌢ household 16 | energy its meter measured in an interval not yet settled |
 * | "trades/" ⌢ u32 interval | the trades of a cleared interval, until it is settled |
 * | "interval/" ⌢ u32 interval | summary of a cleared (and later settled) interval |
 * | "ledger/" ⌢ u32 interval | the ledger entries that settled the interval |
 * | "balance/" ⌢ household 16 | i64 balance in micro-units |
 * | "grid-balance" | i64: what the grid was paid less what it paid |
 * | "stats" | service-wide counters |
 * | "outcome/…", "outcome-fifo…" | package outcomes for receipts (services/common/outcome.ts) |
 */
import { ascii, concatBytes, fail, ok, Reader, type Result, toHex, Writer } from "../common/bytes.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, type RawDeviceId } from "../common/envelope.ts";
import { type DeviceIdInput, rawDeviceId } from "../common/outcome.ts";
import type { ReplayWindow } from "../common/window.ts";
import { type DeviceRole, isDeviceRole } from "./payload.ts";
import { MARKET_MODES, type MarketMode } from "./market.ts";
import { LEDGER_REASONS, type LedgerReason } from "./settlement.ts";
import type { Reading } from "./output.ts";

export const STORAGE_FORMAT_VERSION = 1;

export const CONFIG_KEY = ascii("config");
export const MARKET_KEY = ascii("market");
export const HOUSEHOLDS_KEY = ascii("households");
export const GRID_BALANCE_KEY = ascii("grid-balance");
export const STATS_KEY = ascii("stats");
const DEVICE_PREFIX = ascii("dev/");
const ORDERS_PREFIX = ascii("orders/");
const METERED_PREFIX = ascii("metered/");
const TRADES_PREFIX = ascii("trades/");
const INTERVAL_PREFIX = ascii("interval/");
const LEDGER_PREFIX = ascii("ledger/");
const BALANCE_PREFIX = ascii("balance/");

const u32Bytes = (n: number) => new Writer(4).u32(n).finish();

export const deviceKey = (id: DeviceIdInput): Uint8Array => concatBytes([DEVICE_PREFIX, rawDeviceId(id)]);
/**
 * Order books are kept in ORDER_PAGES pages per interval, by the first byte of the household id
 * (uniform: ids are hashes): clearing 10,000 households reads 256 values instead of 10,000, and
 * an order rewrites a page of ~40 households (a few KB), not a list of all of them.
 */
export const ORDER_PAGES = 256;
export const ordersPageKey = (interval: number, page: number): Uint8Array => concatBytes([ORDERS_PREFIX, u32Bytes(interval), Uint8Array.of(page)]);
export const meteredKey = (interval: number, household: Uint8Array): Uint8Array => concatBytes([METERED_PREFIX, u32Bytes(interval), household]);
export const tradesKey = (interval: number): Uint8Array => concatBytes([TRADES_PREFIX, u32Bytes(interval)]);
export const intervalKey = (interval: number): Uint8Array => concatBytes([INTERVAL_PREFIX, u32Bytes(interval)]);
export const ledgerKey = (interval: number): Uint8Array => concatBytes([LEDGER_PREFIX, u32Bytes(interval)]);
export const balanceKey = (household: DeviceIdInput): Uint8Array => concatBytes([BALANCE_PREFIX, rawDeviceId(household)]);

// ---------------------------------------------------------------------------------------------
// Market configuration.

/** The market modes (market.ts); their index is the mode's byte in the stored config. */
export { MARKET_MODES };
export type MarketModeName = MarketMode;

/**
 * The market. Its clock is the chain's: at slot s ≥ startSlot the market time is
 * startMs + (s − startSlot) × marketMsPerSlot (real time when marketMsPerSlot is the slot length;
 * a simulation runs faster). Interval k covers [startMs + k·intervalMs, startMs + (k+1)·intervalMs).
 * It is cleared (gate closure) at the first block whose market time reaches its start, and settled
 * at the first block whose market time reaches its end plus settlementDelayMs (time for the last
 * readings to arrive).
 */
export interface MarketConfig {
  readonly startMs: bigint;
  readonly intervalMs: number;
  readonly startSlot: number;
  readonly marketMsPerSlot: number;
  readonly mode: MarketModeName;
  readonly importPriceMicrosPerKwh: number;
  readonly exportPriceMicrosPerKwh: number;
  readonly settlementDelayMs: number;
}

const CONFIG_BYTES = 1 + 8 + 4 + 4 + 4 + 1 + 4 + 4 + 4;

export function encodeMarketConfig(c: MarketConfig): Uint8Array {
  const problem = checkMarketConfig(c);
  if (problem !== null) throw new Error(`market config: ${problem}`);
  return new Writer(CONFIG_BYTES)
    .u8(STORAGE_FORMAT_VERSION)
    .u64(c.startMs)
    .u32(c.intervalMs)
    .u32(c.startSlot)
    .u32(c.marketMsPerSlot)
    .u8(MARKET_MODES.indexOf(c.mode))
    .u32(c.importPriceMicrosPerKwh)
    .u32(c.exportPriceMicrosPerKwh)
    .u32(c.settlementDelayMs)
    .finish();
}

export function decodeMarketConfig(bytes: Uint8Array): Result<MarketConfig> {
  const r = new Reader(bytes);
  const version = r.u8();
  const config = {
    startMs: r.u64(),
    intervalMs: r.u32(),
    startSlot: r.u32(),
    marketMsPerSlot: r.u32(),
    mode: MARKET_MODES[r.u8()],
    importPriceMicrosPerKwh: r.u32(),
    exportPriceMicrosPerKwh: r.u32(),
    settlementDelayMs: r.u32(),
  };
  if (!r.done) return fail(`market config of ${bytes.length} bytes, not ${CONFIG_BYTES}`);
  if (version !== STORAGE_FORMAT_VERSION) return fail(`market config format ${version}`);
  if (config.mode === undefined) return fail("market config: unknown mode");
  const checked = config as MarketConfig;
  const problem = checkMarketConfig(checked);
  return problem === null ? ok(checked) : fail(`market config: ${problem}`);
}

function checkMarketConfig(c: MarketConfig): string | null {
  if (!Number.isInteger(c.intervalMs) || c.intervalMs < 1) return `interval of ${c.intervalMs} ms`;
  if (!Number.isInteger(c.marketMsPerSlot) || c.marketMsPerSlot < 1) return `${c.marketMsPerSlot} market ms per slot`;
  if (c.importPriceMicrosPerKwh < c.exportPriceMicrosPerKwh) return "the import price is below the export price";
  if (!MARKET_MODES.includes(c.mode)) return `mode ${String(c.mode)}`;
  return null;
}

/** Market time at `slot`, or null before the market starts. */
export function marketTimeMs(config: MarketConfig, slot: number): bigint | null {
  if (slot < config.startSlot) return null;
  return config.startMs + BigInt(slot - config.startSlot) * BigInt(config.marketMsPerSlot);
}

export function intervalStartMs(config: MarketConfig, interval: number): bigint {
  return config.startMs + BigInt(interval) * BigInt(config.intervalMs);
}

// ---------------------------------------------------------------------------------------------
// Market progress.

export interface MarketProgress {
  /** Intervals below this are cleared. */
  readonly nextClear: number;
  /** Intervals below this are settled (always ≤ nextClear). */
  readonly nextSettle: number;
}

export const MARKET_START: MarketProgress = { nextClear: 0, nextSettle: 0 };

export function encodeMarketProgress(p: MarketProgress): Uint8Array {
  return new Writer(9).u8(STORAGE_FORMAT_VERSION).u32(p.nextClear).u32(p.nextSettle).finish();
}

export function decodeMarketProgress(bytes: Uint8Array): Result<MarketProgress> {
  const r = new Reader(bytes);
  const version = r.u8();
  const progress = { nextClear: r.u32(), nextSettle: r.u32() };
  if (!r.done || version !== STORAGE_FORMAT_VERSION || progress.nextSettle > progress.nextClear) return fail("market progress is corrupt");
  return ok(progress);
}

// ---------------------------------------------------------------------------------------------
// Households.

export function encodeHouseholds(ids: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(1 + 4 + DEVICE_ID_BYTES * ids.length).u8(STORAGE_FORMAT_VERSION).u32(ids.length);
  for (const id of ids) w.bytes(id);
  return w.finish();
}

export function decodeHouseholds(bytes: Uint8Array): Result<RawDeviceId[]> {
  const r = new Reader(bytes);
  const version = r.u8();
  const count = r.u32();
  if (version !== STORAGE_FORMAT_VERSION || r.failed || r.remaining !== count * DEVICE_ID_BYTES) return fail("household list is corrupt");
  const ids: RawDeviceId[] = [];
  for (let i = 0; i < count; i++) ids.push(r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId);
  return ok(ids);
}

// ---------------------------------------------------------------------------------------------
// Devices.

export interface DeviceRecord {
  readonly publicKey: Uint8Array;
  readonly role: DeviceRole;
  /** The household: a meter's own id, an agent's meter's id. */
  readonly household: RawDeviceId;
  readonly registeredSlot: number;
  readonly window: ReplayWindow;
  /** A meter's last settled reading; null before its first. */
  readonly lastReading: Reading | null;
  readonly envelopesSettled: bigint;
}

export const DEVICE_RECORD_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 1 + DEVICE_ID_BYTES + 4 + 1 + 8 + 8 + 1 + 24 + 8;

export function encodeDeviceRecord(d: DeviceRecord): Uint8Array {
  return new Writer(DEVICE_RECORD_BYTES)
    .u8(STORAGE_FORMAT_VERSION)
    .bytes(d.publicKey)
    .u8(d.role)
    .bytes(d.household)
    .u32(d.registeredSlot)
    .u8(d.window.highestSeq === null ? 0 : 1)
    .u64(d.window.highestSeq ?? 0n)
    .u64(d.window.bitmap)
    .u8(d.lastReading === null ? 0 : 1)
    .u64(d.lastReading?.t ?? 0n)
    .u64(d.lastReading?.importWh ?? 0n)
    .u64(d.lastReading?.exportWh ?? 0n)
    .u64(d.envelopesSettled)
    .finish();
}

export function decodeDeviceRecord(bytes: Uint8Array): Result<DeviceRecord> {
  const r = new Reader(bytes);
  const version = r.u8();
  const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES).slice();
  const role = r.u8();
  const household = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
  const registeredSlot = r.u32();
  const hasSeq = r.u8();
  const highestSeq = r.u64();
  const bitmap = r.u64();
  const hasReading = r.u8();
  const reading = { t: r.u64(), importWh: r.u64(), exportWh: r.u64() };
  const envelopesSettled = r.u64();
  if (!r.done || version !== STORAGE_FORMAT_VERSION) return fail("device record is corrupt");
  if (!isDeviceRole(role) || hasSeq > 1 || hasReading > 1) return fail("device record is corrupt");
  return ok({
    publicKey,
    role,
    household,
    registeredSlot,
    window: { highestSeq: hasSeq === 1 ? highestSeq : null, bitmap },
    lastReading: hasReading === 1 ? reading : null,
    envelopesSettled,
  });
}

// ---------------------------------------------------------------------------------------------
// Orders and metered energy of open intervals.

export interface StoredOrders {
  readonly seq: bigint;
  readonly lines: readonly { readonly side: 0 | 1; readonly energyWh: number; readonly priceMicrosPerKwh: number }[];
}

/** One page of an interval's order book: household (lowercase hex) → its latest order set. */
export type OrderPage = Map<string, StoredOrders>;

/** u8 version ⌢ u16 n ⌢ n × (household 16 ⌢ u64 seq ⌢ u8 lines ⌢ lines × (u8 side ⌢ u32 energyWh ⌢ u32 price)), households ascending. */
export function encodeOrderPage(page: OrderPage): Uint8Array {
  const households = [...page.keys()].sort();
  let size = 1 + 2;
  for (const h of households) size += DEVICE_ID_BYTES + 8 + 1 + 9 * page.get(h)!.lines.length;
  const w = new Writer(size).u8(STORAGE_FORMAT_VERSION).u16(households.length);
  for (const h of households) {
    const o = page.get(h)!;
    w.bytes(rawDeviceId(h)).u64(o.seq).u8(o.lines.length);
    for (const line of o.lines) w.u8(line.side).u32(line.energyWh).u32(line.priceMicrosPerKwh);
  }
  return w.finish();
}

export function decodeOrderPage(bytes: Uint8Array): Result<OrderPage> {
  const r = new Reader(bytes);
  const version = r.u8();
  const count = r.u16();
  const page: OrderPage = new Map();
  for (let i = 0; i < count && !r.failed; i++) {
    const household = toHex(r.bytes(DEVICE_ID_BYTES));
    const seq = r.u64();
    const lineCount = r.u8();
    const lines: { side: 0 | 1; energyWh: number; priceMicrosPerKwh: number }[] = [];
    for (let k = 0; k < lineCount && !r.failed; k++) {
      const side = r.u8();
      if (side > 1) return fail("stored order side is corrupt");
      lines.push({ side: side as 0 | 1, energyWh: r.u32(), priceMicrosPerKwh: r.u32() });
    }
    page.set(household, { seq, lines });
  }
  if (!r.done || version !== STORAGE_FORMAT_VERSION) return fail("stored order page is corrupt");
  return ok(page);
}

export interface Metered {
  readonly importWh: number;
  readonly exportWh: number;
}

export function encodeMetered(m: Metered): Uint8Array {
  return new Writer(9).u8(STORAGE_FORMAT_VERSION).u32(m.importWh).u32(m.exportWh).finish();
}

export function decodeMetered(bytes: Uint8Array): Result<Metered> {
  const r = new Reader(bytes);
  const version = r.u8();
  const m = { importWh: r.u32(), exportWh: r.u32() };
  if (!r.done || version !== STORAGE_FORMAT_VERSION) return fail("metered energy is corrupt");
  return ok(m);
}

// ---------------------------------------------------------------------------------------------
// Trades, interval summaries and ledger entries.

/** A party of a trade or ledger entry: a household's id, or the grid. */
export type Party = RawDeviceId | "grid";

export interface StoredTrade {
  readonly buyer: RawDeviceId;
  readonly seller: RawDeviceId;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
  readonly amountMicros: bigint;
}

const TRADE_BYTES = 2 * DEVICE_ID_BYTES + 4 + 4 + 8;

export function encodeTrades(trades: readonly StoredTrade[]): Uint8Array {
  const w = new Writer(1 + 4 + TRADE_BYTES * trades.length).u8(STORAGE_FORMAT_VERSION).u32(trades.length);
  for (const t of trades) w.bytes(t.buyer).bytes(t.seller).u32(t.energyWh).u32(t.priceMicrosPerKwh).u64(t.amountMicros);
  return w.finish();
}

export function decodeTrades(bytes: Uint8Array): Result<StoredTrade[]> {
  const r = new Reader(bytes);
  const version = r.u8();
  const count = r.u32();
  if (version !== STORAGE_FORMAT_VERSION || r.failed || r.remaining !== count * TRADE_BYTES) return fail("trades are corrupt");
  const trades: StoredTrade[] = [];
  for (let i = 0; i < count; i++) {
    trades.push({
      buyer: r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId,
      seller: r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId,
      energyWh: r.u32(),
      priceMicrosPerKwh: r.u32(),
      amountMicros: r.u64(),
    });
  }
  return ok(trades);
}

export interface IntervalSummary {
  readonly settled: boolean;
  /** Uniform price (pay-as-clear), volume-weighted mean (other modes); null when nothing traded. */
  readonly clearingPriceMicrosPerKwh: number | null;
  readonly tradedWh: bigint;
  readonly orders: number;
  readonly trades: number;
  /** Ledger entries written when settled (0 before). */
  readonly ledgerEntries: number;
  /** The slot of the block that cleared it, and of the one that settled it (0 before). */
  readonly clearedSlot: number;
  readonly settledSlot: number;
}

const NO_PRICE = 0xffff_ffff;
const SUMMARY_BYTES = 1 + 1 + 4 + 8 + 4 + 4 + 4 + 4 + 4;

export function encodeIntervalSummary(s: IntervalSummary): Uint8Array {
  return new Writer(SUMMARY_BYTES)
    .u8(STORAGE_FORMAT_VERSION)
    .u8(s.settled ? 1 : 0)
    .u32(s.clearingPriceMicrosPerKwh ?? NO_PRICE)
    .u64(s.tradedWh)
    .u32(s.orders)
    .u32(s.trades)
    .u32(s.ledgerEntries)
    .u32(s.clearedSlot)
    .u32(s.settledSlot)
    .finish();
}

export function decodeIntervalSummary(bytes: Uint8Array): Result<IntervalSummary> {
  const r = new Reader(bytes);
  const version = r.u8();
  const settled = r.u8();
  const price = r.u32();
  const s = { tradedWh: r.u64(), orders: r.u32(), trades: r.u32(), ledgerEntries: r.u32(), clearedSlot: r.u32(), settledSlot: r.u32() };
  if (!r.done || version !== STORAGE_FORMAT_VERSION || settled > 1) return fail("interval summary is corrupt");
  return ok({ settled: settled === 1, clearingPriceMicrosPerKwh: price === NO_PRICE ? null : price, ...s });
}

export { LEDGER_REASONS };
export type LedgerReasonName = LedgerReason;

/** One ledger entry: the buyer paid the seller amountMicros for energyWh at priceMicrosPerKwh. */
export interface StoredLedgerEntry {
  readonly buyer: Party;
  readonly seller: Party;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
  readonly amountMicros: bigint;
  readonly reason: LedgerReasonName;
}

const GRID_PARTY = new Uint8Array(DEVICE_ID_BYTES);
const ENTRY_BYTES = 1 + 1 + 2 * DEVICE_ID_BYTES + 4 + 4 + 8;

/** u8 version ⌢ u32 n ⌢ n × (u8 reason ⌢ u8 grid flags (1 buyer, 2 seller) ⌢ buyer 16 ⌢ seller 16 ⌢ u32 energyWh ⌢ u32 price ⌢ u64 amountMicros). */
export function encodeLedgerEntries(entries: readonly StoredLedgerEntry[]): Uint8Array {
  const w = new Writer(1 + 4 + ENTRY_BYTES * entries.length).u8(STORAGE_FORMAT_VERSION).u32(entries.length);
  for (const e of entries) {
    w.u8(LEDGER_REASONS.indexOf(e.reason))
      .u8((e.buyer === "grid" ? 1 : 0) | (e.seller === "grid" ? 2 : 0))
      .bytes(e.buyer === "grid" ? GRID_PARTY : e.buyer)
      .bytes(e.seller === "grid" ? GRID_PARTY : e.seller)
      .u32(e.energyWh)
      .u32(e.priceMicrosPerKwh)
      .u64(e.amountMicros);
  }
  return w.finish();
}

export function decodeLedgerEntries(bytes: Uint8Array): Result<StoredLedgerEntry[]> {
  const r = new Reader(bytes);
  const version = r.u8();
  const count = r.u32();
  if (version !== STORAGE_FORMAT_VERSION || r.failed || r.remaining !== count * ENTRY_BYTES) return fail("ledger entries are corrupt");
  const entries: StoredLedgerEntry[] = [];
  for (let i = 0; i < count; i++) {
    const reason = LEDGER_REASONS[r.u8()];
    const flags = r.u8();
    const buyer = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    const seller = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    if (reason === undefined || flags > 3) return fail(`ledger entry ${i} is corrupt`);
    entries.push({ buyer: flags & 1 ? "grid" : buyer, seller: flags & 2 ? "grid" : seller, energyWh: r.u32(), priceMicrosPerKwh: r.u32(), amountMicros: r.u64(), reason });
  }
  return ok(entries);
}

// ---------------------------------------------------------------------------------------------
// Balances and counters.

const I64_MODULUS = 1n << 64n;

/** A signed balance in micro-units, as a two's-complement u64. */
export function encodeBalance(balanceMicros: bigint): Uint8Array {
  if (balanceMicros < -(1n << 63n) || balanceMicros >= 1n << 63n) throw new Error(`balance ${balanceMicros} is not an i64`);
  return new Writer(9).u8(STORAGE_FORMAT_VERSION).u64(balanceMicros < 0n ? balanceMicros + I64_MODULUS : balanceMicros).finish();
}

export function decodeBalance(bytes: Uint8Array): Result<bigint> {
  const r = new Reader(bytes);
  const version = r.u8();
  const raw = r.u64();
  if (!r.done || version !== STORAGE_FORMAT_VERSION) return fail("balance is corrupt");
  return ok(raw >= 1n << 63n ? raw - I64_MODULUS : raw);
}

export interface EnergyStats {
  readonly devicesRegistered: bigint;
  readonly envelopesSettled: bigint;
  readonly envelopesRejected: bigint;
  readonly intervalsCleared: bigint;
  readonly intervalsSettled: bigint;
  readonly ledgerEntries: bigint;
  readonly tradedWh: bigint;
}

export const EMPTY_STATS: EnergyStats = { devicesRegistered: 0n, envelopesSettled: 0n, envelopesRejected: 0n, intervalsCleared: 0n, intervalsSettled: 0n, ledgerEntries: 0n, tradedWh: 0n };
const STATS_FIELDS = Object.keys(EMPTY_STATS) as (keyof EnergyStats)[];

export function encodeStats(stats: EnergyStats): Uint8Array {
  const w = new Writer(1 + 8 * STATS_FIELDS.length).u8(STORAGE_FORMAT_VERSION);
  for (const field of STATS_FIELDS) w.u64(stats[field]);
  return w.finish();
}

export function decodeStats(bytes: Uint8Array): Result<EnergyStats> {
  const r = new Reader(bytes);
  const version = r.u8();
  const stats = Object.fromEntries(STATS_FIELDS.map((field) => [field, r.u64()])) as unknown as EnergyStats;
  if (!r.done || version !== STORAGE_FORMAT_VERSION) return fail("stats are corrupt");
  return ok(stats);
}
