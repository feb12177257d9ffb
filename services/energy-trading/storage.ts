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
import { ascii, concatBytes, type Result, toHex, U16_MAX, U32_MAX } from "../common/bytes.ts";
import { d, decode, type Descriptor, encode } from "../common/codec.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, type RawDeviceId, rawDeviceIdCodec } from "../common/envelope.ts";
import { type DeviceIdInput, rawDeviceId } from "../common/outcome.ts";
import type { ReplayWindow } from "../common/window.ts";
import { DeviceRole } from "./payload.ts";
import { MARKET_MODES, type MarketMode } from "./market.ts";
import { LEDGER_REASONS, type LedgerReason } from "./settlement.ts";
import { type Reading, readingCodec } from "./output.ts";

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

const u32Bytes = (n: number) => encode(d.u32, n);

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

function checkMarketConfig(c: MarketConfig): string | null {
  if (!Number.isInteger(c.intervalMs) || c.intervalMs < 1) return `interval of ${c.intervalMs} ms`;
  if (!Number.isInteger(c.marketMsPerSlot) || c.marketMsPerSlot < 1) return `${c.marketMsPerSlot} market ms per slot`;
  if (c.importPriceMicrosPerKwh < c.exportPriceMicrosPerKwh) return "the import price is below the export price";
  return null;
}

/** version ⌢ u64 startMs ⌢ u32 intervalMs ⌢ u32 startSlot ⌢ u32 marketMsPerSlot ⌢ u8 mode ⌢ u32 import price ⌢ u32 export price ⌢ u32 settlementDelayMs. */
export const marketConfigCodec: Descriptor<MarketConfig> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.checked(
    d.object({
      startMs: d.u64,
      intervalMs: d.u32,
      startSlot: d.u32,
      marketMsPerSlot: d.u32,
      mode: d.enumeration(MARKET_MODES, "market mode"),
      importPriceMicrosPerKwh: d.u32,
      exportPriceMicrosPerKwh: d.u32,
      settlementDelayMs: d.u32,
    }),
    checkMarketConfig,
    "market config",
  ),
  "market config",
);

/** Throws (a caller's bug) on a config the service would refuse. */
export const encodeMarketConfig = (c: MarketConfig): Uint8Array => encode(marketConfigCodec, c);
export const decodeMarketConfig = (bytes: Uint8Array): Result<MarketConfig> => decode(marketConfigCodec, bytes);

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

/** version ⌢ u32 nextClear ⌢ u32 nextSettle. */
export const marketProgressCodec: Descriptor<MarketProgress> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.checked(
    d.object({ nextClear: d.u32, nextSettle: d.u32 }),
    (p) => (p.nextSettle > p.nextClear ? `settled up to ${p.nextSettle}, past cleared ${p.nextClear}` : null),
    "market progress",
  ),
  "market progress",
);

export const encodeMarketProgress = (p: MarketProgress): Uint8Array => encode(marketProgressCodec, p);
export const decodeMarketProgress = (bytes: Uint8Array): Result<MarketProgress> => decode(marketProgressCodec, bytes);

// ---------------------------------------------------------------------------------------------
// Households.

/**
 * Households in one market: clearing and settling an interval reads a few storage values per
 * household; 10,000 households take ~5e7 gas, well within the χ_Z gas genesis gives the service.
 */
export const HOUSEHOLDS_MAX = 10_000;

/** version ⌢ u32 n ⌢ n × household 16, ascending. */
export const householdsCodec: Descriptor<RawDeviceId[]> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.array(rawDeviceIdCodec, "u32", HOUSEHOLDS_MAX),
  "household list",
);

export const encodeHouseholds = (ids: readonly Uint8Array[]): Uint8Array => encode(householdsCodec, ids as RawDeviceId[]);
export const decodeHouseholds = (bytes: Uint8Array): Result<RawDeviceId[]> => decode(householdsCodec, bytes);

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

const NO_READING: Reading = { t: 0n, importWh: 0n, exportWh: 0n };

/**
 * version ⌢ publicKey 32 ⌢ u8 role ⌢ household 16 ⌢ u32 registeredSlot ⌢ u8 has seq ⌢ u64 highestSeq
 * ⌢ u64 bitmap ⌢ u8 has reading ⌢ reading (u64 t ⌢ u64 importWh ⌢ u64 exportWh) ⌢ u64 envelopesSettled;
 * an absent seq or reading is stored as zeros.
 */
export const deviceRecordCodec: Descriptor<DeviceRecord> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.map(
    d.object({
      publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
      role: d.oneOf([DeviceRole.meter, DeviceRole.agent], "device role"),
      household: rawDeviceIdCodec,
      registeredSlot: d.u32,
      highestSeq: d.optionalFixed(d.u64, 0n),
      bitmap: d.u64,
      lastReading: d.optionalFixed(readingCodec, NO_READING),
      envelopesSettled: d.u64,
    }),
    ({ highestSeq, bitmap, ...rest }) => ({ ...rest, window: { highestSeq, bitmap } }),
    ({ window, ...rest }) => ({ ...rest, highestSeq: window.highestSeq, bitmap: window.bitmap }),
  ),
  "device record",
);

export const DEVICE_RECORD_BYTES = deviceRecordCodec.fixedBytes!;
export const encodeDeviceRecord = (record: DeviceRecord): Uint8Array => encode(deviceRecordCodec, record);
export const decodeDeviceRecord = (bytes: Uint8Array): Result<DeviceRecord> => decode(deviceRecordCodec, bytes);

// ---------------------------------------------------------------------------------------------
// Orders and metered energy of open intervals.

export interface StoredOrders {
  readonly seq: bigint;
  readonly lines: readonly { readonly side: 0 | 1; readonly energyWh: number; readonly priceMicrosPerKwh: number }[];
}

/** One page of an interval's order book: household (lowercase hex) → its latest order set. */
export type OrderPage = Map<string, StoredOrders>;

const orderLineCodec = d.object({ side: d.oneOf([0, 1] as const, "order side"), energyWh: d.u32, priceMicrosPerKwh: d.u32 });
/** A page's households and lines are bounded by their counts' widths (u16, u8); refine bounds the lines of a set far lower (ORDER_LINES_MAX). */
const orderPageEntryCodec = d.object({ household: rawDeviceIdCodec, seq: d.u64, lines: d.array(orderLineCodec, "u8", 0xff) });

/** version ⌢ u16 n ⌢ n × (household 16 ⌢ u64 seq ⌢ u8 lines ⌢ lines × (u8 side ⌢ u32 energyWh ⌢ u32 price)), households ascending. */
export const orderPageCodec: Descriptor<OrderPage> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.map(
    d.array(orderPageEntryCodec, "u16", U16_MAX),
    (entries): OrderPage => new Map(entries.map((e) => [toHex(e.household), { seq: e.seq, lines: e.lines }])),
    (page) => [...page.keys()].sort().map((h) => ({ household: rawDeviceId(h), seq: page.get(h)!.seq, lines: [...page.get(h)!.lines] })),
  ),
  "order page",
);

export const encodeOrderPage = (page: OrderPage): Uint8Array => encode(orderPageCodec, page);
export const decodeOrderPage = (bytes: Uint8Array): Result<OrderPage> => decode(orderPageCodec, bytes);

export interface Metered {
  readonly importWh: number;
  readonly exportWh: number;
}

/** version ⌢ u32 importWh ⌢ u32 exportWh. */
export const meteredCodec: Descriptor<Metered> = d.versioned(STORAGE_FORMAT_VERSION, d.object({ importWh: d.u32, exportWh: d.u32 }), "metered energy");

export const encodeMetered = (m: Metered): Uint8Array => encode(meteredCodec, m);
export const decodeMetered = (bytes: Uint8Array): Result<Metered> => decode(meteredCodec, bytes);

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

/**
 * Trades and ledger entries of one interval are bounded by its orders (each a household's, of at
 * most ORDER_LINES_MAX lines) and its households; their stored count is a u32.
 */
const INTERVAL_ENTRIES_MAX = U32_MAX;

const tradeCodec: Descriptor<StoredTrade> = d.object({
  buyer: rawDeviceIdCodec,
  seller: rawDeviceIdCodec,
  energyWh: d.u32,
  priceMicrosPerKwh: d.u32,
  amountMicros: d.u64,
});

/** version ⌢ u32 n ⌢ n × (buyer 16 ⌢ seller 16 ⌢ u32 energyWh ⌢ u32 price ⌢ u64 amountMicros). */
export const tradesCodec: Descriptor<StoredTrade[]> = d.versioned(STORAGE_FORMAT_VERSION, d.array(tradeCodec, "u32", INTERVAL_ENTRIES_MAX), "trades");

export const encodeTrades = (trades: readonly StoredTrade[]): Uint8Array => encode(tradesCodec, trades as StoredTrade[]);
export const decodeTrades = (bytes: Uint8Array): Result<StoredTrade[]> => decode(tradesCodec, bytes);

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

/** The stored price of an interval that traded nothing. */
const NO_PRICE = 0xffff_ffff;

/** version ⌢ u8 settled ⌢ u32 clearing price (NO_PRICE: none) ⌢ u64 tradedWh ⌢ u32 orders ⌢ u32 trades ⌢ u32 ledgerEntries ⌢ u32 clearedSlot ⌢ u32 settledSlot. */
export const intervalSummaryCodec: Descriptor<IntervalSummary> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.object({
    settled: d.bool,
    clearingPriceMicrosPerKwh: d.map(
      d.u32,
      (price) => (price === NO_PRICE ? null : price),
      (price: number | null) => price ?? NO_PRICE,
    ),
    tradedWh: d.u64,
    orders: d.u32,
    trades: d.u32,
    ledgerEntries: d.u32,
    clearedSlot: d.u32,
    settledSlot: d.u32,
  }),
  "interval summary",
);

export const encodeIntervalSummary = (s: IntervalSummary): Uint8Array => encode(intervalSummaryCodec, s);
export const decodeIntervalSummary = (bytes: Uint8Array): Result<IntervalSummary> => decode(intervalSummaryCodec, bytes);

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

/** The bytes of the grid as a party (its flag says it is the grid). */
const GRID_PARTY = new Uint8Array(DEVICE_ID_BYTES) as RawDeviceId;
const GRID_BUYER = 1;
const GRID_SELLER = 2;

/** u8 reason ⌢ u8 grid flags (1 buyer, 2 seller) ⌢ buyer 16 ⌢ seller 16 ⌢ u32 energyWh ⌢ u32 price ⌢ u64 amountMicros. */
const ledgerEntryCodec: Descriptor<StoredLedgerEntry> = d.map(
  d.object({
    reason: d.enumeration(LEDGER_REASONS, "ledger reason"),
    grid: d.checked(d.u8, (flags) => (flags > (GRID_BUYER | GRID_SELLER) ? `grid flags ${flags}` : null)),
    buyer: rawDeviceIdCodec,
    seller: rawDeviceIdCodec,
    energyWh: d.u32,
    priceMicrosPerKwh: d.u32,
    amountMicros: d.u64,
  }),
  ({ grid, buyer, seller, ...rest }) => ({ ...rest, buyer: grid & GRID_BUYER ? "grid" : buyer, seller: grid & GRID_SELLER ? "grid" : seller }),
  ({ buyer, seller, ...rest }) => ({
    ...rest,
    grid: (buyer === "grid" ? GRID_BUYER : 0) | (seller === "grid" ? GRID_SELLER : 0),
    buyer: buyer === "grid" ? GRID_PARTY : buyer,
    seller: seller === "grid" ? GRID_PARTY : seller,
  }),
  "ledger entry",
);

/** version ⌢ u32 n ⌢ n × ledger entry. */
export const ledgerEntriesCodec: Descriptor<StoredLedgerEntry[]> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.array(ledgerEntryCodec, "u32", INTERVAL_ENTRIES_MAX),
  "ledger entries",
);

export const encodeLedgerEntries = (entries: readonly StoredLedgerEntry[]): Uint8Array => encode(ledgerEntriesCodec, entries as StoredLedgerEntry[]);
export const decodeLedgerEntries = (bytes: Uint8Array): Result<StoredLedgerEntry[]> => decode(ledgerEntriesCodec, bytes);

// ---------------------------------------------------------------------------------------------
// Balances and counters.

/** version ⌢ i64 balance in micro-units (two's complement). */
export const balanceCodec: Descriptor<bigint> = d.versioned(STORAGE_FORMAT_VERSION, d.i64, "balance");

/** Throws (a bug) on a balance past an i64. */
export const encodeBalance = (balanceMicros: bigint): Uint8Array => encode(balanceCodec, balanceMicros);
export const decodeBalance = (bytes: Uint8Array): Result<bigint> => decode(balanceCodec, bytes);

export interface EnergyStats {
  readonly devicesRegistered: bigint;
  readonly envelopesSettled: bigint;
  readonly envelopesRejected: bigint;
  readonly intervalsCleared: bigint;
  readonly intervalsSettled: bigint;
  readonly ledgerEntries: bigint;
  readonly tradedWh: bigint;
}

export const EMPTY_STATS: EnergyStats = {
  devicesRegistered: 0n,
  envelopesSettled: 0n,
  envelopesRejected: 0n,
  intervalsCleared: 0n,
  intervalsSettled: 0n,
  ledgerEntries: 0n,
  tradedWh: 0n,
};

/** version ⌢ the counters as u64, in declaration order. */
export const statsCodec: Descriptor<EnergyStats> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.object({
    devicesRegistered: d.u64,
    envelopesSettled: d.u64,
    envelopesRejected: d.u64,
    intervalsCleared: d.u64,
    intervalsSettled: d.u64,
    ledgerEntries: d.u64,
    tradedWh: d.u64,
  }),
  "stats",
);

export const encodeStats = (stats: EnergyStats): Uint8Array => encode(statsCodec, stats);
export const decodeStats = (bytes: Uint8Array): Result<EnergyStats> => decode(statsCodec, bytes);
