/**
 * The ledger index: the read side's store (LMDB, `<data-dir>/ledger`), written off the node's
 * critical path and read by the HTTP routes, the dashboard and `jamgate ledger` through
 * LedgerReader (types.ts). What it holds comes from three writers: the indexer (indexer.ts:
 * blocks, the energy market's intervals and ledger entries, and wifi-billing's ledger entries,
 * read from the services' state),
 * settlement (packages as they move on, a receipt entry per device and package as they settle)
 * and registration (device records). Balances are not copied: they are read on demand from the
 * best block's state (NodeApi.serviceValue), so they are never stale.
 *
 * Each write is one LMDB transaction (a block, an interval with its entries, a settled package
 * with its receipts and device counters): a reader sees all of it or none, and a crash keeps all
 * of it or none. A settled package's receipts (an entry per device and package, as the device's
 * receipt message) are one row: entry ids key + 0, key + 1, …; per receipt only the device index
 * row and the device's counters are written, never anything per envelope. Measured (1,000-receipt
 * packages of 3 seqs each written in a loop, `node --cpu-prof`, self time of the index's and
 * lmdb-js's functions on the main thread): ~7.5 ms per package, against ~14 ms with a row, a
 * service index row and a device record object per receipt. Writes are idempotent: a package settled
 * again after a crash (its receipts told, the log not yet cleared) finds itself marked settled and
 * writes nothing; an interval already held is not written again. Every answer comes from the
 * store, so the index answers the same after a restart.
 *
 * | database | key | value |
 * |---|---|---|
 * | `meta` | "market" | `{ nextCleared, nextSettled }`: the energy intervals the index holds |
 * | `meta` | "wifi" | `{ nextSlot }`: wifi-billing's ledger slots below it are held |
 * | `meta` | "prune" | PruneMark: where receipt pruning stands, and the next entry id and package order (never reused once their rows are pruned) |
 * | `counts` | [name, serviceId] | devices and entries per service ("devices", "entries") |
 * | `blocks` | slot | StoredBlock (BlockView less what settlement adds) |
 * | `block-hashes` | hash hex | slot |
 * | `block-accumulated` | [slot, package hash hex] | serviceId: the gateway's packages a block accumulated |
 * | `packages` | hash hex | StoredPackage |
 * | `package-order` | u64 submission order | hash hex |
 * | `devices` | device id hex | StoredFacts: its registration |
 * | `device-stats` | device id hex | StoredStats: [settledHighestSeq, envelopesSettled, lastSettledSlot] |
 * | `devices-by-service` | [serviceId, device id] | true |
 * | `devices-by-household` | [household, device id] | true |
 * | `entries` | u64 id of the row's first entry (append order, from 1) | StoredRow: a package's receipts, one energy entry, or one Wi-Fi entry |
 * | `entries-by-device` | [device id, entry id] | true |
 * | `entries-by-account` | [account, entry id] | true |
 * | `entries-by-service` | [serviceId, row's first entry id] | true |
 * | `entries-by-router` | [router id, entry id] | true: Wi-Fi entries of a router |
 * | `intervals` | interval | StoredInterval (IntervalView with its entries' id range) |
 *
 * A receipt takes ~100 bytes of pages in use (measured: 60 packages of 1,000 receipts from 1,000
 * devices, mdb_stat per database: the receipt rows 27 bytes a receipt, the device index 73), more
 * in the file until LMDB reuses the pages the device counters' rewrites free. At the gateway's
 * target (~2,000 receipts/s) that is ~17 GB a day, so the index is pruned (`prune`, driven by the
 * indexer after each pass, never inside a settlement's write). It keeps the blocks, the packages
 * and the receipt entries (with their device and service index rows) of the last `retentionSlots`
 * slots (ledgerIndexLimits; `jamgate start --ledger-retention-slots`), and of receipt entries at
 * most `receiptEntriesKeptMax`: those within that many ids of the newest, so energy entries among
 * them leave room for a few fewer. Energy entries and intervals are kept: ~100 entries per
 * 15-minute interval, ~10,000 a day, and the chain's state keeps only the last
 * LEDGER_INTERVALS_KEPT intervals, so the index is their archive. Wi-Fi entries (a usage entry per
 * session update, as many as receipts at a router's pace) are pruned as receipts are, by slot and
 * among the newest receiptEntriesKeptMax ids: the index holds the last `retentionSlots` of them,
 * the service's state the last LEDGER_SLOTS_KEPT (a day). Device records and counters
 * (envelopesSettled, settledHighestSeq, lastSettledSlot) are totals and stay.
 *
 * Pruning goes oldest first, in write transactions of at most `pruneRowsPerWriteMax` rows, each
 * moving the "prune" mark with what it removes: a crash keeps all of a batch or none, and a prune
 * run again removes nothing more. LMDB reuses the freed pages: under pruning the file stops
 * growing (retention.test.ts). A pruned entry, block or package is not found (404, as an unknown
 * one); a `before` cursor at a pruned id goes on with what is left below it. A package settled
 * again after a crash (the idempotence above) is recognised only while its record is kept: a
 * retention shorter than a gateway's downtime may write its receipts twice.
 */
import { open, type Database, type RootDatabase } from "lmdb";
import type { NodeApi, WorkPackageStatus } from "../../node/api.ts";
import { toHex } from "../../node/codec/jam.ts";
import { makeLmdbFilesPrivate, makePrivateDir } from "../../node/storage/data-dir.ts";
import { balanceKey, decodeBalance, decodeHouseholds, ENERGY_SERVICE_NAME, HOUSEHOLDS_KEY } from "../../services/energy-trading/types.ts";
import { WIFI_SERVICE_NAME } from "../../services/wifi-billing/types.ts";
import type { IngestService } from "../ingest-service.ts";
import type { DeviceRegistered, LedgerSink, PackageSettled, PackageSubmitted } from "./sink.ts";
import {
  type BalanceView,
  type BlockView,
  type DeviceView,
  ENTRY_KINDS,
  ENTRY_SCAN_MAX,
  type EntryFilter,
  type EntryKind,
  type EntryView,
  type Hex,
  type HouseholdResult,
  type IntervalView,
  type LedgerEvent,
  type LedgerReader,
  LIST_LIMIT_MAX,
  NO_ENERGY_FIELDS,
  PACKAGE_STATUSES,
  type Page,
  type PackageStatusName,
  type PackageView,
  type ReportView,
  type ServiceView,
  WIFI_ENTRY_KINDS,
  type WifiEntryKind,
} from "./types.ts";

/** Reserved address space; LMDB takes disk only as it is used: ~600 million receipts at ~100 bytes each. */
const MAP_SIZE_BYTES = 64 * 1024 ** 3;
/** Named databases in the environment: the 16 of the layout above, with room for later ones (LMDB's default is 12). */
const MAX_DBS = 32;

export interface LedgerIndexLimits {
  readonly packageScanMax: number;
  readonly deviceScanMax: number;
  readonly balanceReadsInFlight: number;
  readonly subscribersMax: number;
  readonly retentionSlots: number;
  readonly receiptEntriesKeptMax: number;
  readonly pruneRowsPerWriteMax: number;
}

export const ledgerIndexLimits: LedgerIndexLimits = {
  /** Packages one `packages` call looks at at most when filtering (by status or service): bounds a request's work like ENTRY_SCAN_MAX. */
  packageScanMax: 20_000,
  /** Devices one `devices` call looks at at most when filtering by kind: bounds a request's work; ten thousand devices is the target. */
  deviceScanMax: 20_000,
  /** Balance reads in flight at once for `balances`: each is a node round trip; a market of HOUSEHOLDS_MAX (10,000) households is read in batches, not 10,000 calls at once. */
  balanceReadsInFlight: 32,
  /** Live-event listeners at once: the HTTP layer bounds its event-stream clients (SSE_CLIENTS_MAX) well below this; past it is a bug in a caller. */
  subscribersMax: 4_096,
  /** Slots whose blocks, packages and receipt entries are kept: 7 days of 6-second slots (~17 GB of receipts a day at the target otherwise, never freed). */
  retentionSlots: 100_800,
  /** Receipt entries kept at most, whatever their age: ~2 GB of pages at the measured ~100 bytes a receipt. */
  receiptEntriesKeptMax: 20_000_000,
  /**
   * Rows (entries and index rows) one prune transaction removes at most: three full packages'
   * receipts (1,002 rows each; a package's go whole). It holds the event loop 19–29 ms at 7–8 µs
   * of CPU a receipt; 10,000 held it 31–45 ms at 4–5 µs, 2,000 19 ms at 13 µs (measured:
   * `node --import tsx bench/ledger-prune.ts`, 60 packages of 1,000 receipts, medians of 3 and 5
   * runs on the 2 shared cores; with the cores busy, all three stall 2–4 times longer).
   */
  pruneRowsPerWriteMax: 4_000,
};
/** The bounds of what the index keeps: ledgerIndexLimits' by default. */
export type RetentionLimits = Pick<LedgerIndexLimits, "retentionSlots" | "receiptEntriesKeptMax" | "pruneRowsPerWriteMax">;

/** The gateway's knowledge of a device it settles for (its registry cache), for a device whose registration the index has not seen (registered before the index existed). */
export interface DeviceFacts {
  readonly publicKey: Uint8Array;
  readonly kind: string;
  readonly serviceId: number;
  /** The highest seq its service had settled when the gateway read its record (-1: none). */
  readonly settledHighestSeq?: number;
}

/** One energy ledger entry as the service stored it (services/energy-trading/storage.ts), parties as a household id (hex) or "grid". */
export interface EnergyEntryInput {
  readonly reason: Exclude<EntryKind, "envelopes">;
  readonly buyer: string;
  readonly seller: string;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
  readonly amountMicros: bigint;
}

/** One wifi-billing ledger entry as the service stored it (services/wifi-billing/storage.ts LedgerEntry), ids as hex (null: zero bytes, no session or router), with the router's owner when known. */
export interface WifiEntryInput {
  readonly reason: WifiEntryKind;
  readonly session: Hex | null;
  readonly router: Hex | null;
  readonly client: Hex;
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly priceMicrosPerGb: bigint;
  readonly amountMicros: bigint;
  readonly feeMicros: bigint;
  readonly attested: boolean;
  /** The router's owner (read from the router's record): its earnings move with usage entries, so the `account` filter finds them. */
  readonly owner: Hex | null;
}

/** The Wi-Fi entries of one slot's block (read from the service's `ledger/<slot>`), in stored order. */
export interface WifiSlotInput {
  readonly slot: number;
  readonly entries: readonly WifiEntryInput[];
  /** The block they are dated by when the index does not hold the block at `slot`: the block they were read at. */
  readonly readAt: { readonly hash: Hex; readonly seenAtMs: number };
}

/** An energy interval as the service's state summarises it (storage.ts IntervalSummary), with its time span; `entries` once settled. */
export interface IntervalInput {
  readonly interval: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly settled: boolean;
  readonly clearingPriceMicrosPerKwh: number | null;
  readonly tradedWh: bigint;
  readonly orders: number;
  readonly trades: number;
  readonly clearedSlot: number;
  readonly settledSlot: number;
  /** The ledger entries that settled it, in the stored order (their `index`); [] before it is settled. */
  readonly entries: readonly EnergyEntryInput[];
  /** The block the entries are dated by when the index did not see the block at settledSlot (caught up after a stop): the block they were read at. */
  readonly readAt: { readonly hash: Hex; readonly seenAtMs: number };
}

export interface LedgerIndexOptions {
  /** The LMDB directory (`<data-dir>/ledger`). */
  readonly path: string;
  /** The services the gateway settles on: names, ids, code hashes, device kinds. */
  readonly services: readonly Pick<IngestService, "name" | "serviceId" | "codeHash" | "kinds">[];
  /** For balances (read on demand from the best block's state); without it, balances are empty. */
  readonly api?: Pick<NodeApi, "bestBlock" | "serviceValue">;
  /** Facts of a device settled before the index saw its registration (the gateway's registry cache). */
  readonly deviceFacts?: (deviceId: string) => DeviceFacts | null;
  readonly logger?: { warn(o: object, m: string): void };
  /** Overrides of the retention bounds (`jamgate start --ledger-retention-slots`; tests use small ones). */
  readonly retention?: Partial<RetentionLimits>;
}

/** What one prune transaction did: rows removed (entries and index rows), and whether more is due. */
export interface PruneStep {
  readonly removed: number;
  readonly more: boolean;
}

// --- stored forms -----------------------------------------------------------------------------

/** BlockView less what settlement adds later (`accumulated`, and the services of those packages). */
type StoredBlock = Omit<BlockView, "accumulated" | "serviceIds"> & { readonly reportServiceIds: readonly number[] };

/** PackageView less what the service list gives (`hash` is the key, `service` its name), plus the index's own marks. */
type StoredPackage = Omit<PackageView, "hash" | "service"> & {
  /** Submission order: the packages list pages by it. */
  readonly order: number;
  /** False for a package the index first heard of from its status or settlement: its submit time is unknown, so no refine time. */
  readonly submitKnown: boolean;
  /** Its settlement is written (receipts, counters): the idempotence mark. */
  readonly settledWritten: boolean;
};

/** A device's registration, as the index learnt it. */
interface StoredFacts {
  readonly publicKey: Hex;
  readonly kind: string;
  readonly serviceId: number;
  readonly household: Hex | null;
  /** null: taken from the gateway's registry at a receipt, before the registration was seen. */
  readonly registeredSlot: number | null;
}

/** A device's settled counters: [settledHighestSeq, envelopesSettled, lastSettledSlot]. */
type StoredStats = readonly [number, number, number | null];
const NO_STATS: StoredStats = [-1, 0, null];

/** A receipt: the device (16 bytes) and its seqs. */
type ReceiptItem = readonly [Uint8Array, readonly number[]];
/** An energy entry: [kind index, interval, index, buyer (null: the grid), seller, energyWh, priceMicrosPerKwh, amountMicros]. */
type EnergyItem = readonly [number, number, number, Uint8Array | null, Uint8Array | null, number, number, string];
/** A Wi-Fi entry: [kind index, session (null: none), router (null: none), client, inputOctets, outputOctets, priceMicrosPerGb, amountMicros, feeMicros, attested, owner (null: unknown)]; amounts decimal. */
type WifiItem = readonly [number, Uint8Array | null, Uint8Array | null, Uint8Array, string, string, string, string, string, boolean, Uint8Array | null];
/**
 * Entries written together, keyed by the first one's id (item i is entry key + i): a settled
 * package's receipts, [serviceId, slot, blockHash, timeMs, packageHash, receipts], or one energy
 * or Wi-Fi entry, [serviceId, slot, blockHash, timeMs, null, [entry]] (told apart by the entry's
 * kind index).
 */
type StoredRow =
  | readonly [number, number, Uint8Array, number, Uint8Array, readonly ReceiptItem[]]
  | readonly [number, number, Uint8Array, number, null, readonly [EnergyItem]]
  | readonly [number, number, Uint8Array, number, null, readonly [WifiItem]];

type StoredInterval = IntervalView & { readonly firstEntryId: number; readonly entryCount: number };

/** An entry as a scan meets it: its row and its place there. */
interface Candidate {
  readonly id: number;
  readonly row: StoredRow;
  readonly at: number;
}

interface MarketMark {
  readonly nextCleared: number;
  readonly nextSettled: number;
}

/** Where pruning stands: entry rows below `receiptsFrom` were looked at (receipts and Wi-Fi entries removed, energy entries kept); the ids and orders handed out so far. */
interface PruneMark {
  readonly receiptsFrom: number;
  readonly nextEntryId: number;
  readonly nextPackageOrder: number;
}

const GRID = "grid";
const MARKET_META = "market";
const WIFI_META = "wifi";
/** The first kind index of a Wi-Fi entry: energy items' kinds are below it. */
const WIFI_KIND_FIRST = ENTRY_KINDS.indexOf(WIFI_ENTRY_KINDS[0]);
const PRUNE_META = "prune";
const HOUSEHOLD_HEX = /^[0-9a-f]{32}$/;

function kindIndex(kind: EntryKind): number {
  return ENTRY_KINDS.indexOf(kind);
}

/** Clamps a caller's page size into 1..LIST_LIMIT_MAX. */
function pageLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.max(1, Math.min(LIST_LIMIT_MAX, Math.floor(limit))) : LIST_LIMIT_MAX;
}

/** The exclusive upper cursor as the inclusive start of a reverse scan. */
function below(before: number | undefined): number {
  return before === undefined || !Number.isFinite(before) ? Number.MAX_SAFE_INTEGER : Math.floor(before) - 1;
}

function partyBytes(party: string): Uint8Array | null {
  return party === GRID ? null : Buffer.from(party, "hex");
}

// --- the index --------------------------------------------------------------------------------

export class LedgerIndex implements LedgerReader, LedgerSink {
  private readonly root: RootDatabase;
  private readonly meta: Database<unknown, string>;
  private readonly counts: Database<number, [string, number]>;
  private readonly blocksDb: Database<StoredBlock, number>;
  private readonly blockHashes: Database<number, string>;
  private readonly blockAccumulated: Database<number, [number, string]>;
  private readonly packagesDb: Database<StoredPackage, string>;
  private readonly packageOrder: Database<string, number>;
  private readonly devicesDb: Database<StoredFacts, string>;
  private readonly deviceStats: Database<StoredStats, string>;
  private readonly devicesByService: Database<true, [number, string]>;
  private readonly devicesByHousehold: Database<true, [string, string]>;
  private readonly entriesDb: Database<StoredRow, number>;
  private readonly entriesByDevice: Database<true, [string, number]>;
  private readonly entriesByAccount: Database<true, [string, number]>;
  private readonly entriesByService: Database<true, [number, number]>;
  private readonly entriesByRouter: Database<true, [string, number]>;
  private readonly intervalsDb: Database<StoredInterval, number>;
  private readonly retention: RetentionLimits;
  private readonly serviceList: LedgerIndexOptions["services"];
  private readonly energy: LedgerIndexOptions["services"][number] | null;
  private readonly wifi: LedgerIndexOptions["services"][number] | null;
  /** Next entry id and package order; advanced inside write transactions, which run one at a time in call order. */
  private nextEntryId: number;
  private nextPackageOrder: number;
  private readonly listeners = new Set<(event: LedgerEvent) => void>();
  /** Write transactions not yet committed (bounded by their writers: packages in flight, one block and one interval at a time). */
  private readonly writes = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly options: LedgerIndexOptions) {
    makePrivateDir(options.path);
    this.root = open({ path: options.path, mapSize: MAP_SIZE_BYTES, compression: false, maxDbs: MAX_DBS });
    makeLmdbFilesPrivate(options.path);
    this.meta = this.root.openDB({ name: "meta" });
    this.counts = this.root.openDB({ name: "counts" });
    this.blocksDb = this.root.openDB({ name: "blocks" });
    this.blockHashes = this.root.openDB({ name: "block-hashes" });
    this.blockAccumulated = this.root.openDB({ name: "block-accumulated" });
    this.packagesDb = this.root.openDB({ name: "packages" });
    this.packageOrder = this.root.openDB({ name: "package-order" });
    this.devicesDb = this.root.openDB({ name: "devices" });
    this.deviceStats = this.root.openDB({ name: "device-stats" });
    this.devicesByService = this.root.openDB({ name: "devices-by-service" });
    this.devicesByHousehold = this.root.openDB({ name: "devices-by-household" });
    this.entriesDb = this.root.openDB({ name: "entries" });
    this.entriesByDevice = this.root.openDB({ name: "entries-by-device" });
    this.entriesByAccount = this.root.openDB({ name: "entries-by-account" });
    this.entriesByService = this.root.openDB({ name: "entries-by-service" });
    this.entriesByRouter = this.root.openDB({ name: "entries-by-router" });
    this.intervalsDb = this.root.openDB({ name: "intervals" });
    this.serviceList = options.services;
    this.energy = options.services.find((s) => s.name === ENERGY_SERVICE_NAME) ?? null;
    this.wifi = options.services.find((s) => s.name === WIFI_SERVICE_NAME) ?? null;
    this.retention = { ...ledgerIndexLimits, ...options.retention };
    // After the last row, or past ids and orders whose rows were pruned (the newest may be).
    const pruned = this.pruneMark();
    this.nextEntryId = Math.max(1, pruned.nextEntryId);
    for (const { key, value } of this.entriesDb.getRange({ reverse: true, limit: 1 })) this.nextEntryId = Math.max(this.nextEntryId, key + value[5].length);
    this.nextPackageOrder = Math.max(lastKey(this.packageOrder) + 1, pruned.nextPackageOrder);
  }

  // --- writing ------------------------------------------------------------------------------

  /** Runs `fn` in a write transaction (after those queued before it); resolves once committed. */
  private write<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error("the ledger index is closed"));
    const p = this.root.transaction(fn) as Promise<T>;
    this.writes.add(p);
    const done = () => this.writes.delete(p);
    p.then(done, done);
    return p;
  }

  /** A write nobody awaits: a failure is logged, never thrown at the caller (settlement and registration go on without the index). */
  private background<T>(what: string, fn: () => T, after: (result: T) => void): void {
    if (this.closed) return;
    this.write(fn).then(after, (e: unknown) => this.options.logger?.warn({ err: String(e) }, `ledger index: ${what} not written`));
  }

  private emit(event: LedgerEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (e) {
        this.options.logger?.warn({ err: String(e), event: event.kind }, "ledger index: an event listener threw");
      }
    }
  }

  private bump(name: "devices" | "entries", serviceId: number, by: number): void {
    if (by !== 0) this.counts.put([name, serviceId], (this.counts.get([name, serviceId]) ?? 0) + by);
  }

  packageSubmitted(p: PackageSubmitted): void {
    const hash = toHex(p.hash);
    this.background(
      "a submitted package",
      () => {
        if (this.packagesDb.get(hash) !== undefined) return null;
        const stored: StoredPackage = {
          ...this.stubPackage(p.serviceId, p.kind, p.items, p.submittedAtMs),
          bytes: p.bytes,
          core: p.core,
          submitKnown: p.core !== null,
        };
        this.packagesDb.put(hash, stored);
        this.packageOrder.put(stored.order, hash);
        return stored;
      },
      (stored) => {
        if (stored !== null) this.emit({ kind: "package", package: this.packageView(hash, stored) });
      },
    );
  }

  packageStatus(hashBytes: Uint8Array, status: WorkPackageStatus, atMs: number): void {
    const hash = toHex(hashBytes);
    this.background(
      "a package's status",
      () => {
        const old = this.packagesDb.get(hash);
        // Unknown: a package of before the index (the settle writes it), or its submit not yet written (it is queued first).
        if (old === undefined) return null;
        const next = withStatus(old, status, atMs);
        if (next === old) return null;
        this.packagesDb.put(hash, next);
        if (status.kind === "accumulated" && old.accumulatedBlock === null) this.blockAccumulated.put([status.accumulatedIn.slot, hash], old.serviceId);
        return next;
      },
      (stored) => {
        if (stored !== null) this.emit({ kind: "package", package: this.packageView(hash, stored) });
      },
    );
  }

  async packageSettled(p: PackageSettled): Promise<void> {
    const hash = toHex(p.hash);
    const blockHash = Buffer.from(p.block.headerHash);
    const items: ReceiptItem[] = p.receipts.map((r) => [Buffer.from(r.deviceId, "hex"), r.seqs]);
    const written = await this.write(() => {
      const old = this.packagesDb.get(hash);
      if (old?.settledWritten === true) return null;
      const timeMs = this.blocksDb.get(p.block.slot)?.seenAtMs ?? p.settledAtMs;
      // Reads first, writes after: an async transaction keeps the writes made before a throw (log.ts).
      const stats = new Map<string, StoredStats>();
      const created = new Map<string, StoredFacts>();
      for (const r of p.receipts) {
        let st = stats.get(r.deviceId) ?? this.deviceStats.get(r.deviceId);
        if (st === undefined) {
          // Its first receipt: a device registered before the index saw it is taken from the gateway's registry.
          st = NO_STATS;
          if (this.devicesDb.get(r.deviceId) === undefined) {
            const f = this.options.deviceFacts?.(r.deviceId) ?? null;
            if (f !== null) {
              created.set(r.deviceId, {
                publicKey: toHex(f.publicKey),
                kind: f.kind,
                serviceId: f.serviceId,
                household: this.ownHousehold(r.deviceId, f.kind, f.serviceId),
                registeredSlot: null,
              });
              st = [f.settledHighestSeq ?? -1, 0, null];
            }
          }
        }
        stats.set(r.deviceId, [Math.max(st[0], r.seqs.at(-1) ?? -1), st[1] + r.seqs.length, Math.max(st[2] ?? p.block.slot, p.block.slot)]);
      }
      const base = old ?? this.stubPackage(p.serviceId, p.kind, p.settled + p.refused, p.settledAtMs);
      const stored: StoredPackage = {
        ...base,
        status: "accumulated",
        error: null,
        accumulatedSlot: p.block.slot,
        accumulatedBlock: toHex(blockHash),
        settled: p.settled,
        refused: p.refused,
        settledWritten: true,
      };
      const first = this.nextEntryId;
      this.nextEntryId += items.length;
      this.packagesDb.put(hash, stored);
      if (old === undefined) this.packageOrder.put(stored.order, hash);
      if (base.accumulatedBlock === null) this.blockAccumulated.put([p.block.slot, hash], p.serviceId);
      if (items.length > 0) {
        this.entriesDb.put(first, [p.serviceId, p.block.slot, blockHash, timeMs, Buffer.from(p.hash), items]);
        this.entriesByService.put([p.serviceId, first], true);
        p.receipts.forEach((r, i) => {
          this.entriesByDevice.put([r.deviceId, first + i], true);
        });
      }
      for (const [id, st] of stats) this.deviceStats.put(id, st);
      for (const [id, facts] of created) {
        this.devicesDb.put(id, facts);
        this.indexDevice(id, facts);
      }
      this.bump("entries", p.serviceId, items.length);
      return { stored, first, timeMs };
    }).catch((e: unknown) => {
      this.options.logger?.warn({ err: String(e), package: hash }, "ledger index: a settled package not written");
      throw e;
    });
    if (written === null) return;
    this.emit({ kind: "package", package: this.packageView(hash, written.stored) });
    if (this.listeners.size > 0 && items.length > 0) {
      const row: StoredRow = [p.serviceId, p.block.slot, blockHash, written.timeMs, p.hash, items];
      for (let i = 0; i < items.length; i++) this.emit({ kind: "entry", entry: this.entryView(written.first + i, row, i) });
    }
  }

  deviceRegistered(d: DeviceRegistered): void {
    const facts: StoredFacts = {
      publicKey: toHex(d.publicKey),
      kind: d.kind,
      serviceId: d.serviceId,
      household: d.household ?? this.ownHousehold(d.deviceId, d.kind, d.serviceId),
      registeredSlot: d.registeredSlot,
    };
    this.background(
      "a registered device",
      () => {
        const old = this.devicesDb.get(d.deviceId);
        // Written once; facts taken from the gateway's registry at a receipt (no slot, no agent's household) are completed.
        if (old !== undefined && old.registeredSlot !== null) return;
        this.devicesDb.put(d.deviceId, facts);
        if (old === undefined) this.indexDevice(d.deviceId, facts);
        else if (facts.household !== null && old.household !== facts.household) this.devicesByHousehold.put([facts.household, d.deviceId], true);
      },
      () => undefined,
    );
  }

  /** An energy meter is its own household; other devices have none of their own. */
  private ownHousehold(deviceId: string, kind: string, serviceId: number): Hex | null {
    return kind === "meter" && this.energy?.serviceId === serviceId ? deviceId : null;
  }

  /** The devices-by-service and -by-household rows and the service's device count, once a device's facts are first known. */
  private indexDevice(deviceId: string, facts: StoredFacts): void {
    this.devicesByService.put([facts.serviceId, deviceId], true);
    if (facts.household !== null) this.devicesByHousehold.put([facts.household, deviceId], true);
    this.bump("devices", facts.serviceId, 1);
  }

  /** A package record as first known: submitted, with nothing of its later stages, and the next submission order. */
  private stubPackage(serviceId: number, kind: StoredPackage["kind"], items: number, atMs: number): StoredPackage {
    return {
      order: this.nextPackageOrder++,
      serviceId,
      kind,
      items,
      bytes: 0,
      core: null,
      status: "submitted",
      submittedAtMs: atMs,
      submitKnown: false,
      refineMs: null,
      reportedSlot: null,
      accumulatedSlot: null,
      accumulatedBlock: null,
      settled: 0,
      refused: 0,
      error: null,
      settledWritten: false,
    };
  }

  // --- the indexer's writes -----------------------------------------------------------------

  /** The energy-trading service whose market the index holds, or null when the gateway settles on none. */
  get energyServiceId(): number | null {
    return this.energy?.serviceId ?? null;
  }

  /** The newest block held, or null before the first. */
  lastBlock(): { readonly slot: number; readonly hash: Hex } | null {
    for (const { value } of this.blocksDb.getRange({ reverse: true, limit: 1 })) return { slot: value.slot, hash: value.hash };
    return null;
  }

  hasBlock(hash: Hex): boolean {
    return this.blockHashes.get(hash) !== undefined;
  }

  /** Writes a block (idempotent: a block already held is not written again). */
  async writeBlock(view: Omit<BlockView, "accumulated">): Promise<void> {
    const stored: StoredBlock = {
      slot: view.slot,
      hash: view.hash,
      parentHash: view.parentHash,
      priorStateRoot: view.priorStateRoot,
      stateRoot: view.stateRoot,
      author: view.author,
      reports: view.reports,
      assurances: view.assurances,
      reportServiceIds: view.serviceIds,
      seenAtMs: view.seenAtMs,
    };
    const wrote = await this.write(() => {
      const held = this.blocksDb.get(view.slot);
      if (held?.hash === view.hash) return false;
      // Another block at this slot (a remote node's fork): the newer one replaces it.
      if (held !== undefined) this.blockHashes.remove(held.hash);
      this.blocksDb.put(view.slot, stored);
      this.blockHashes.put(view.hash, view.slot);
      return true;
    });
    if (wrote) this.emit({ kind: "block", block: this.blockView(stored) });
  }

  /** The energy intervals the index holds: those below nextCleared are held as cleared, those below nextSettled as settled. */
  marketMark(): MarketMark {
    return (this.meta.get(MARKET_META) as MarketMark | undefined) ?? { nextCleared: 0, nextSettled: 0 };
  }

  /** Moves the mark past intervals the chain's state no longer holds (pruned before the index read them). */
  async skipIntervals(mark: MarketMark): Promise<void> {
    await this.write(() => {
      const old = this.marketMark();
      this.meta.put(MARKET_META, { nextCleared: Math.max(old.nextCleared, mark.nextCleared), nextSettled: Math.max(old.nextSettled, mark.nextSettled) });
    });
  }

  /**
   * Writes an interval: cleared (its summary, no entries), or settled (its summary, its ledger
   * entries and the per-household results computed from them). Idempotent: a settled interval
   * already held is not written again.
   */
  async writeInterval(input: IntervalInput): Promise<void> {
    if (this.energy === null) throw new Error("the ledger index has no energy service to hold intervals for");
    const serviceId = this.energy.serviceId;
    const written = await this.write(() => {
      const old = this.intervalsDb.get(input.interval);
      if (old?.settled === true || (old !== undefined && !input.settled)) return null;
      const block = input.settled ? this.blocksDb.get(input.settledSlot) : undefined;
      const blockHash = Buffer.from(block?.hash ?? input.readAt.hash, "hex");
      const timeMs = block?.seenAtMs ?? input.readAt.seenAtMs;
      const first = this.nextEntryId;
      this.nextEntryId += input.entries.length;
      const view: StoredInterval = {
        interval: input.interval,
        startMs: input.startMs,
        endMs: input.endMs,
        settled: input.settled,
        clearingPriceMicrosPerKwh: input.clearingPriceMicrosPerKwh,
        tradedWh: input.tradedWh.toString(),
        orders: input.orders,
        trades: input.trades,
        gridImportWh: sumWh(input.entries, (e) => e.seller === GRID),
        gridExportWh: sumWh(input.entries, (e) => e.buyer === GRID),
        clearedSlot: input.clearedSlot,
        settledSlot: input.settledSlot,
        households: householdResults(input.entries),
        firstEntryId: first,
        entryCount: input.entries.length,
      };
      // A row per entry (an interval has a few per household, and an account's page reads only its own).
      const stored: StoredRow[] = input.entries.map((e, index) => [
        serviceId,
        input.settledSlot,
        blockHash,
        timeMs,
        null,
        [[kindIndex(e.reason), input.interval, index, partyBytes(e.buyer), partyBytes(e.seller), e.energyWh, e.priceMicrosPerKwh, e.amountMicros.toString()]],
      ]);
      this.intervalsDb.put(input.interval, view);
      stored.forEach((row, i) => {
        const id = first + i;
        this.entriesDb.put(id, row);
        this.entriesByService.put([serviceId, id], true);
        for (const account of accountsOf(input.entries[i]!)) this.entriesByAccount.put([account, id], true);
      });
      this.bump("entries", serviceId, stored.length);
      const mark = this.marketMark();
      this.meta.put(MARKET_META, {
        nextCleared: Math.max(mark.nextCleared, input.interval + 1),
        nextSettled: input.settled ? Math.max(mark.nextSettled, input.interval + 1) : mark.nextSettled,
      });
      return { view, stored, first };
    });
    if (written === null) return;
    this.emit({ kind: "interval", interval: publicInterval(written.view, true) });
    if (this.listeners.size > 0)
      written.stored.forEach((row, i) => {
        this.emit({ kind: "entry", entry: this.entryView(written.first + i, row, 0) });
      });
  }

  /** The wifi-billing service whose ledger the index holds, or null when the gateway settles on none. */
  get wifiServiceId(): number | null {
    return this.wifi?.serviceId ?? null;
  }

  /** The first wifi-billing ledger slot the index does not hold yet (0 before any). */
  wifiMark(): number {
    return (this.meta.get(WIFI_META) as { readonly nextSlot: number } | undefined)?.nextSlot ?? 0;
  }

  /**
   * Writes the Wi-Fi entries of consecutive slots' blocks (a row per entry) and moves the mark to
   * `nextSlot` (past slots without entries too), in one transaction. Idempotent: slots below the
   * mark are not written again.
   */
  async writeWifiSlots(slots: readonly WifiSlotInput[], nextSlot: number): Promise<void> {
    if (this.wifi === null) throw new Error("the ledger index has no wifi-billing service to hold entries for");
    const serviceId = this.wifi.serviceId;
    const written = await this.write(() => {
      const mark = this.wifiMark();
      const rows: { readonly id: number; readonly row: StoredRow }[] = [];
      for (const input of slots) {
        if (input.slot < mark) continue;
        const block = this.blocksDb.get(input.slot);
        const blockHash = Buffer.from(block?.hash ?? input.readAt.hash, "hex");
        const timeMs = block?.seenAtMs ?? input.readAt.seenAtMs;
        for (const e of input.entries) {
          const id = this.nextEntryId++;
          const item: WifiItem = [
            kindIndex(e.reason),
            e.session === null ? null : Buffer.from(e.session, "hex"),
            e.router === null ? null : Buffer.from(e.router, "hex"),
            Buffer.from(e.client, "hex"),
            e.inputOctets.toString(),
            e.outputOctets.toString(),
            e.priceMicrosPerGb.toString(),
            e.amountMicros.toString(),
            e.feeMicros.toString(),
            e.attested,
            e.owner === null ? null : Buffer.from(e.owner, "hex"),
          ];
          const row: StoredRow = [serviceId, input.slot, blockHash, timeMs, null, [item]];
          this.entriesDb.put(id, row);
          this.entriesByService.put([serviceId, id], true);
          if (e.router !== null) this.entriesByRouter.put([e.router, id], true);
          for (const account of wifiAccounts(e.client, e.owner)) this.entriesByAccount.put([account, id], true);
          rows.push({ id, row });
        }
      }
      this.bump("entries", serviceId, rows.length);
      if (nextSlot > mark) this.meta.put(WIFI_META, { nextSlot });
      return rows;
    });
    if (this.listeners.size > 0) for (const { id, row } of written) this.emit({ kind: "entry", entry: this.entryView(id, row, 0) });
  }

  // --- retention ----------------------------------------------------------------------------

  private pruneMark(): PruneMark {
    return (this.meta.get(PRUNE_META) as PruneMark | undefined) ?? { receiptsFrom: 1, nextEntryId: 1, nextPackageOrder: 1 };
  }

  /**
   * Removes what the retention bounds let go, as of the block at `headSlot` (the newest the
   * indexer has seen): blocks, packages and receipt entries of slots before the last
   * `retentionSlots`, and receipt entries more than `receiptEntriesKeptMax` ids below the newest.
   * At most `writesMax` transactions of at most `pruneRowsPerWriteMax` rows each, one after the
   * other (settlement's writes queue between them), none once `stopped` says so; resolves with
   * what they removed and whether more is due.
   */
  async prune(headSlot: number, writesMax: number, stopped: () => boolean = () => false): Promise<PruneStep> {
    let removed = 0;
    for (let w = 0; w < writesMax; w++) {
      if (this.closed || stopped()) return { removed, more: true };
      // Read outside a transaction first: most passes have nothing to prune, and need no write.
      if (!this.pruneDue(headSlot)) return { removed, more: false };
      const step = await this.pruneStep(headSlot);
      removed += step.removed;
      if (!step.more) return { removed, more: false };
    }
    return { removed, more: true };
  }

  /** Whether a prune transaction would change anything now (from what is committed). */
  private pruneDue(headSlot: number): boolean {
    const keptFromSlot = headSlot - this.retention.retentionSlots + 1;
    const receipts = this.prunableReceipts(keptFromSlot, 1);
    return (
      receipts.remove.length > 0 ||
      receipts.from !== this.pruneMark().receiptsFrom ||
      this.prunableBlocks(keptFromSlot, 1).rows > 0 ||
      this.prunablePackages(keptFromSlot, 1).rows.length > 0
    );
  }

  /** One prune transaction: receipts, then blocks, then packages, oldest first, within pruneRowsPerWriteMax rows. */
  pruneStep(headSlot: number): Promise<PruneStep> {
    return this.write(() => {
      const keptFromSlot = headSlot - this.retention.retentionSlots + 1;
      let budget = this.retention.pruneRowsPerWriteMax;
      // Reads first, writes after (an async transaction keeps the writes made before a throw, and a range is not read while it is changed).
      const receipts = this.prunableReceipts(keptFromSlot, budget);
      budget -= receipts.rows;
      const blocks = budget > 0 ? this.prunableBlocks(keptFromSlot, budget) : { slots: [], hashes: [], accumulated: [], rows: 0, more: true };
      budget -= blocks.rows;
      const packages = budget > 0 ? this.prunablePackages(keptFromSlot, budget) : { rows: [], more: true };
      const entriesByService = new Map<number, number>();
      for (const { key, value } of receipts.remove) {
        this.entriesDb.remove(key);
        this.entriesByService.remove([value[0], key]);
        if (value[4] === null) {
          // A Wi-Fi entry: its router's and accounts' index rows.
          const [, , router, client, , , , , , , owner] = value[5][0] as WifiItem;
          if (router !== null) this.entriesByRouter.remove([toHex(router), key]);
          for (const account of wifiAccounts(toHex(client), owner === null ? null : toHex(owner))) this.entriesByAccount.remove([account, key]);
        } else {
          (value[5] as readonly ReceiptItem[]).forEach(([device], i) => {
            this.entriesByDevice.remove([toHex(device), key + i]);
          });
        }
        entriesByService.set(value[0], (entriesByService.get(value[0]) ?? 0) + value[5].length);
      }
      for (const [serviceId, n] of entriesByService) this.bump("entries", serviceId, -n);
      blocks.slots.forEach((slot) => {
        this.blocksDb.remove(slot);
      });
      blocks.hashes.forEach((hash) => {
        this.blockHashes.remove(hash);
      });
      blocks.accumulated.forEach((key) => {
        this.blockAccumulated.remove(key);
      });
      for (const [order, hash] of packages.rows) {
        this.packageOrder.remove(order);
        if (hash !== null) this.packagesDb.remove(hash);
      }
      const mark = this.pruneMark();
      const next: PruneMark = { receiptsFrom: receipts.from, nextEntryId: this.nextEntryId, nextPackageOrder: this.nextPackageOrder };
      if (next.receiptsFrom !== mark.receiptsFrom || next.nextEntryId !== mark.nextEntryId || next.nextPackageOrder !== mark.nextPackageOrder)
        this.meta.put(PRUNE_META, next);
      const removed = receipts.removed + blocks.rows + packages.rows.reduce((n, [, hash]) => n + (hash === null ? 1 : 2), 0);
      return { removed, more: receipts.more || blocks.more || packages.more };
    });
  }

  /**
   * Receipt and Wi-Fi rows to remove, oldest first from the prune mark, until the first one kept:
   * those of slots before `keptFromSlot` or more than receiptEntriesKeptMax ids below the newest.
   * Energy rows are passed over (kept), a row each of the budget. A receipt row costs its receipts
   * (device index rows), itself and its service index row; a Wi-Fi row itself, its service, router
   * and account rows (4, at most). The first row goes even past the budget, so a transaction
   * always moves on (a package's receipts are never split).
   */
  private prunableReceipts(keptFromSlot: number, budget: number) {
    const belowId = this.nextEntryId - this.retention.receiptEntriesKeptMax;
    const remove: { readonly key: number; readonly value: StoredRow }[] = [];
    let from = this.pruneMark().receiptsFrom;
    let rows = 0;
    let removed = 0;
    let more = false;
    for (const { key, value } of this.entriesDb.getRange({ start: from })) {
      const wifi = value[4] === null && (value[5][0] as EnergyItem | WifiItem)[0] >= WIFI_KIND_FIRST;
      if (value[4] === null && !wifi) {
        if (rows + 1 > budget && rows > 0) {
          more = true;
          break;
        }
        rows += 1;
        from = key + 1;
        continue;
      }
      if (value[1] >= keptFromSlot && key >= belowId) break;
      const cost = wifi ? 4 : value[5].length + 2;
      if (rows + cost > budget && rows > 0) {
        more = true;
        break;
      }
      remove.push({ key, value });
      rows += cost;
      removed += cost;
      from = key + value[5].length;
    }
    return { remove, from, rows, removed, more };
  }

  /** Blocks of slots before `keptFromSlot`, their hash rows, and the accumulated-package rows of those slots (also of slots whose block was never held). */
  private prunableBlocks(keptFromSlot: number, budget: number) {
    const slots: number[] = [];
    const hashes: string[] = [];
    const accumulated: [number, string][] = [];
    let rows = 0;
    // The first row goes even past the budget, as above.
    for (const { key, value } of this.blocksDb.getRange({ end: keptFromSlot })) {
      if (rows + 2 > budget && rows > 0) return { slots, hashes, accumulated, rows, more: true };
      slots.push(key);
      if (this.blockHashes.get(value.hash) === key) hashes.push(value.hash);
      rows += 2;
    }
    for (const key of this.blockAccumulated.getKeys({ end: [keptFromSlot, ""] })) {
      if (rows + 1 > budget && rows > 0) return { slots, hashes, accumulated, rows, more: true };
      accumulated.push(key);
      rows += 1;
    }
    return { slots, hashes, accumulated, rows, more: false };
  }

  /**
   * Packages oldest first (submission order) until the first one kept: one accumulated or
   * reported before `keptFromSlot`, or with neither (failed before a report, or never heard of
   * again) submitted before the oldest kept block was seen. Each is its order row and its record
   * (null: the record is gone already).
   */
  private prunablePackages(keptFromSlot: number, budget: number) {
    let oldestKeptMs: number | null = null;
    for (const { value } of this.blocksDb.getRange({ start: keptFromSlot, limit: 1 })) oldestKeptMs = value.seenAtMs;
    const rows: [number, string | null][] = [];
    let cost = 0;
    for (const { key: order, value: hash } of this.packageOrder.getRange({})) {
      if (cost + 2 > budget && cost > 0) return { rows, more: true };
      const p = this.packagesDb.get(hash);
      if (p !== undefined && p.order === order) {
        const slot = p.accumulatedSlot ?? p.reportedSlot;
        const old = slot !== null ? slot < keptFromSlot : oldestKeptMs !== null && p.submittedAtMs < oldestKeptMs;
        if (!old) break;
        rows.push([order, hash]);
        cost += 2;
      } else {
        rows.push([order, null]);
        cost += 1;
      }
    }
    return { rows, more: false };
  }

  /** The index's file: its page size and the highest page in use (LMDB's last page number); freed pages are reused below it. */
  fileStats(): { readonly pageSize: number; readonly lastPage: number } {
    const stats = this.root.getStats() as { readonly pageSize: number; readonly lastPageNumber: number };
    return { pageSize: stats.pageSize, lastPage: stats.lastPageNumber };
  }

  // --- reading ------------------------------------------------------------------------------

  subscribe(onEvent: (event: LedgerEvent) => void): () => void {
    if (this.listeners.size >= ledgerIndexLimits.subscribersMax) throw new Error(`ledger index: ${ledgerIndexLimits.subscribersMax} event listeners already`);
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  async head(): Promise<BlockView | null> {
    for (const { value } of this.blocksDb.getRange({ reverse: true, limit: 1 })) return this.blockView(value);
    return null;
  }

  async blocks(query: { readonly before?: number; readonly limit: number }): Promise<Page<BlockView>> {
    const limit = pageLimit(query.limit);
    const items: BlockView[] = [];
    let more = false;
    for (const { value } of this.blocksDb.getRange({ start: below(query.before), reverse: true, limit: limit + 1 })) {
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(this.blockView(value));
    }
    return { items, next: more ? items.at(-1)!.slot : null };
  }

  async block(hashOrSlot: Hex | number): Promise<BlockView | null> {
    const slot = typeof hashOrSlot === "number" ? hashOrSlot : this.blockHashes.get(hashOrSlot.toLowerCase());
    if (slot === undefined) return null;
    const stored = this.blocksDb.get(slot);
    return stored === undefined ? null : this.blockView(stored);
  }

  async packages(query: {
    readonly status?: PackageStatusName;
    readonly service?: string;
    readonly before?: number;
    readonly limit: number;
  }): Promise<Page<PackageView>> {
    const limit = pageLimit(query.limit);
    const serviceId = query.service === undefined ? undefined : this.serviceIdOf(query.service);
    if (serviceId === null) return { items: [], next: null };
    const items: PackageView[] = [];
    let scanned = 0;
    let last: number | null = null;
    for (const { key: order, value: hash } of this.packageOrder.getRange({ start: below(query.before), reverse: true })) {
      if (items.length === limit || scanned === ledgerIndexLimits.packageScanMax) return { items, next: last };
      scanned++;
      last = order;
      const stored = this.packagesDb.get(hash);
      if (stored === undefined) continue;
      if (query.status !== undefined && stored.status !== query.status) continue;
      if (serviceId !== undefined && stored.serviceId !== serviceId) continue;
      items.push(this.packageView(hash, stored));
    }
    return { items, next: null };
  }

  async package(hash: Hex): Promise<PackageView | null> {
    const key = hash.toLowerCase();
    const stored = this.packagesDb.get(key);
    return stored === undefined ? null : this.packageView(key, stored);
  }

  async services(): Promise<readonly ServiceView[]> {
    return this.serviceList.map((s) => ({
      id: s.serviceId,
      name: s.name,
      codeHash: toHex(s.codeHash),
      kinds: [...s.kinds],
      devices: this.counts.get(["devices", s.serviceId]) ?? 0,
      entries: this.counts.get(["entries", s.serviceId]) ?? 0,
    }));
  }

  async devices(query: {
    readonly service?: string;
    readonly kind?: string;
    readonly household?: Hex;
    readonly after?: Hex;
    readonly limit: number;
  }): Promise<{ readonly items: readonly DeviceView[]; readonly next: Hex | null }> {
    const limit = pageLimit(query.limit);
    const serviceId = query.service === undefined ? undefined : this.serviceIdOf(query.service);
    if (serviceId === null) return { items: [], next: null };
    const after = query.after?.toLowerCase();
    // The most selective index the filter allows; ids ascending, strictly after `after`.
    let ids: Iterable<string>;
    if (query.household !== undefined) {
      const household = query.household.toLowerCase();
      ids = mapKeys(this.devicesByHousehold.getKeys({ start: [household, after ?? ""], end: [household, "\uffff"] }), (k) => k[1]);
    } else if (serviceId !== undefined) {
      ids = mapKeys(this.devicesByService.getKeys({ start: [serviceId, after ?? ""], end: [serviceId, "\uffff"] }), (k) => k[1]);
    } else {
      ids = this.devicesDb.getKeys(after === undefined ? {} : { start: after });
    }
    const items: DeviceView[] = [];
    let scanned = 0;
    let last: string | null = null;
    for (const id of ids) {
      if (id === after) continue;
      if (items.length === limit || scanned === ledgerIndexLimits.deviceScanMax) return { items, next: last };
      scanned++;
      last = id;
      const view = this.deviceView(id);
      if (view === null) continue;
      if (serviceId !== undefined && view.serviceId !== serviceId) continue;
      if (query.kind !== undefined && view.kind !== query.kind) continue;
      if (query.household !== undefined && view.household !== query.household.toLowerCase()) continue;
      items.push(view);
    }
    return { items, next: null };
  }

  async device(id: Hex): Promise<DeviceView | null> {
    const key = id.toLowerCase();
    return this.deviceView(key);
  }

  async entries(filter: EntryFilter, page: { readonly before?: number; readonly limit: number }): Promise<Page<EntryView>> {
    const limit = pageLimit(page.limit);
    const start = below(page.before);
    let serviceId: number | undefined;
    if (filter.service !== undefined) {
      const id = this.serviceIdOf(filter.service);
      if (id === null) return { items: [], next: null };
      serviceId = id;
    }
    // Candidates newest first from the narrowest index the filter names; every filter is checked on each.
    let candidates: Iterable<Candidate>;
    if (filter.device !== undefined) {
      const device = filter.device.toLowerCase();
      candidates = this.byIds(mapKeys(this.entriesByDevice.getKeys({ start: [device, start], end: [device, 0], reverse: true }), (k) => k[1]));
    } else if (filter.router !== undefined) {
      const router = filter.router.toLowerCase();
      candidates = this.byIds(mapKeys(this.entriesByRouter.getKeys({ start: [router, start], end: [router, 0], reverse: true }), (k) => k[1]));
    } else if (filter.interval !== undefined) {
      const interval = this.intervalsDb.get(filter.interval);
      if (interval === undefined || interval.entryCount === 0) return { items: [], next: null };
      const top = Math.min(start, interval.firstEntryId + interval.entryCount - 1);
      candidates = this.inRows(this.entriesDb.getRange({ start: top, end: interval.firstEntryId - 1, reverse: true }), top);
    } else if (filter.account !== undefined) {
      const account = filter.account.toLowerCase();
      candidates = this.byIds(mapKeys(this.entriesByAccount.getKeys({ start: [account, start], end: [account, 0], reverse: true }), (k) => k[1]));
    } else if (serviceId !== undefined) {
      const s = serviceId;
      const rows = mapKeys(this.entriesByService.getKeys({ start: [s, start], end: [s, 0], reverse: true }), (k) => ({
        key: k[1],
        value: this.entriesDb.get(k[1])!,
      }));
      candidates = this.inRows(rows, start);
    } else {
      candidates = this.inRows(this.entriesDb.getRange({ start, end: 0, reverse: true }), start);
    }
    const items: EntryView[] = [];
    let scanned = 0;
    let last: number | null = null;
    for (const { id, row, at } of candidates) {
      if (items.length === limit || scanned === ENTRY_SCAN_MAX) return { items, next: last };
      scanned++;
      last = id;
      const view = this.entryView(id, row, at);
      if (matches(view, filter, serviceId)) items.push(view);
    }
    return { items, next: null };
  }

  async entry(id: number): Promise<EntryView | null> {
    const found = Number.isSafeInteger(id) ? this.rowOf(id) : null;
    return found === null ? null : this.entryView(id, found.row, found.at);
  }

  /** The row holding entry `id`, and its place in it. */
  private rowOf(id: number): { readonly row: StoredRow; readonly at: number } | null {
    for (const { key, value } of this.entriesDb.getRange({ start: id, reverse: true, limit: 1 })) {
      return id - key < value[5].length ? { row: value, at: id - key } : null;
    }
    return null;
  }

  /** Entries of rows (newest row first), each row's from its last down, none above `top`. */
  private *inRows(rows: Iterable<{ readonly key: number; readonly value: StoredRow }>, top: number): Generator<Candidate> {
    for (const { key, value } of rows) {
      for (let at = Math.min(value[5].length - 1, top - key); at >= 0; at--) yield { id: key + at, row: value, at };
    }
  }

  /** Entries by id (an index's, newest first): a package's receipts share a row, read once while its receipts come in a run. */
  private *byIds(ids: Iterable<number>): Generator<Candidate> {
    let held: { readonly key: number; readonly row: StoredRow } | null = null;
    for (const id of ids) {
      if (held === null || id < held.key || id - held.key >= held.row[5].length) {
        const found = this.rowOf(id);
        if (found === null) continue;
        held = { key: id - found.at, row: found.row };
      }
      yield { id, row: held.row, at: id - held.key };
    }
  }

  async intervals(query: { readonly before?: number; readonly limit: number }): Promise<Page<IntervalView>> {
    const limit = pageLimit(query.limit);
    const items: IntervalView[] = [];
    let more = false;
    for (const { value } of this.intervalsDb.getRange({ start: below(query.before), reverse: true, limit: limit + 1 })) {
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(publicInterval(value, false));
    }
    return { items, next: more ? items.at(-1)!.interval : null };
  }

  async interval(interval: number): Promise<IntervalView | null> {
    const stored = Number.isSafeInteger(interval) ? this.intervalsDb.get(interval) : undefined;
    return stored === undefined ? null : publicInterval(stored, true);
  }

  async balances(service: string): Promise<readonly BalanceView[]> {
    const api = this.options.api;
    if (api === undefined || this.energy === null || service !== this.energy.name) return [];
    const energy = this.energy;
    const best = await api.bestBlock();
    const households = await this.households(best.headerHash);
    const out: BalanceView[] = [];
    for (let at = 0; at < households.length; at += ledgerIndexLimits.balanceReadsInFlight) {
      const batch = households.slice(at, at + ledgerIndexLimits.balanceReadsInFlight);
      const values = await Promise.all(batch.map((h) => api.serviceValue(best.headerHash, energy.serviceId, balanceKey(h))));
      batch.forEach((h, i) => {
        out.push({ service: energy.name, account: h, balanceMicros: balanceOf(values[i]!), slot: best.slot, blockHash: toHex(best.headerHash) });
      });
    }
    return out;
  }

  async balance(service: string, account: Hex): Promise<BalanceView | null> {
    const api = this.options.api;
    const id = account.toLowerCase();
    if (api === undefined || this.energy === null || service !== this.energy.name || !HOUSEHOLD_HEX.test(id)) return null;
    const best = await api.bestBlock();
    const value = await api.serviceValue(best.headerHash, this.energy.serviceId, balanceKey(id));
    // No balance stored: a household that never settled has 0; anything else is no account.
    if (value === null && !(await this.households(best.headerHash)).includes(id)) return null;
    return { service: this.energy.name, account: id, balanceMicros: balanceOf(value), slot: best.slot, blockHash: toHex(best.headerHash) };
  }

  private async households(at: Uint8Array): Promise<string[]> {
    const raw = await this.options.api!.serviceValue(at, this.energy!.serviceId, HOUSEHOLDS_KEY);
    if (raw === null) return [];
    const decoded = decodeHouseholds(raw);
    if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
    return decoded.value.map((h) => toHex(h));
  }

  /** Resolves once every write so far is committed, then closes the store; later writes are refused, and the sink's background writes dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await Promise.allSettled([...this.writes]);
    await this.root.close();
  }

  // --- views --------------------------------------------------------------------------------

  private serviceIdOf(name: string): number | null {
    return this.serviceList.find((s) => s.name === name)?.serviceId ?? null;
  }

  private serviceName(serviceId: number): string {
    return this.serviceList.find((s) => s.serviceId === serviceId)?.name ?? String(serviceId);
  }

  private blockView(stored: StoredBlock): BlockView {
    const accumulated: Hex[] = [];
    const serviceIds = new Set(stored.reportServiceIds);
    for (const { key, value } of this.blockAccumulated.getRange({ start: [stored.slot, ""], end: [stored.slot, "\uffff"] })) {
      accumulated.push(key[1]);
      serviceIds.add(value);
    }
    const { reportServiceIds: _, ...rest } = stored;
    return { ...rest, accumulated, serviceIds: [...serviceIds].sort((a, b) => a - b) };
  }

  private packageView(hash: Hex, p: StoredPackage): PackageView {
    return {
      hash,
      serviceId: p.serviceId,
      service: this.serviceName(p.serviceId),
      kind: p.kind,
      items: p.items,
      bytes: p.bytes,
      core: p.core,
      status: p.status,
      submittedAtMs: p.submittedAtMs,
      refineMs: p.refineMs,
      reportedSlot: p.reportedSlot,
      accumulatedSlot: p.accumulatedSlot,
      accumulatedBlock: p.accumulatedBlock,
      settled: p.settled,
      refused: p.refused,
      error: p.error,
    };
  }

  private deviceView(id: Hex): DeviceView | null {
    const facts = this.devicesDb.get(id);
    if (facts === undefined) return null;
    const [settledHighestSeq, envelopesSettled, lastSettledSlot] = this.deviceStats.get(id) ?? NO_STATS;
    return {
      id,
      publicKey: facts.publicKey,
      kind: facts.kind,
      service: this.serviceName(facts.serviceId),
      serviceId: facts.serviceId,
      household: facts.household,
      registeredSlot: facts.registeredSlot,
      settledHighestSeq,
      envelopesSettled,
      lastSettledSlot,
    };
  }

  private entryView(id: number, row: StoredRow, at: number): EntryView {
    const common = { id, serviceId: row[0], service: this.serviceName(row[0]), slot: row[1], blockHash: toHex(row[2]), timeMs: row[3] };
    if (row[4] !== null) {
      const [device, seqs] = row[5][at] as ReceiptItem;
      return {
        ...common,
        kind: "envelopes",
        device: toHex(device),
        seqs: [...seqs],
        packageHash: toHex(row[4]),
        ...NO_ENERGY_FIELDS,
        accounts: [],
      };
    }
    if ((row[5][at] as EnergyItem | WifiItem)[0] >= WIFI_KIND_FIRST) return { ...common, ...wifiEntryFields(row[5][at] as WifiItem) };
    const [kind, interval, index, buyerBytes, sellerBytes, energyWh, priceMicrosPerKwh, amountMicros] = row[5][at] as EnergyItem;
    const buyer = buyerBytes === null ? GRID : toHex(buyerBytes);
    const seller = sellerBytes === null ? GRID : toHex(sellerBytes);
    return {
      ...common,
      kind: ENTRY_KINDS[kind]!,
      device: null,
      seqs: null,
      packageHash: null,
      interval,
      index,
      buyer,
      seller,
      energyWh,
      priceMicrosPerKwh,
      amountMicros,
      accounts: accountsOf({ buyer, seller }),
    };
  }
}

// --- helpers ----------------------------------------------------------------------------------

/** The largest numeric key of a database, 0 when empty. */
// biome-ignore lint: any value type
function lastKey(db: Database<any, number>): number {
  for (const key of db.getKeys({ reverse: true, limit: 1 })) return key;
  return 0;
}

function* mapKeys<K, T>(keys: Iterable<K>, f: (key: K) => T): Generator<T> {
  for (const k of keys) yield f(k);
}

/** `p` moved on by a status the node reported (the furthest stage is kept; a failure always is), or `p` itself when nothing changes. */
function withStatus(p: StoredPackage, status: WorkPackageStatus, atMs: number): StoredPackage {
  if (status.kind === "failed") {
    // Accumulated but without an outcome (the service's accumulate failed) is a failure too; a settled package is not.
    if (p.status === "failed" || p.settledWritten) return p;
    return { ...p, status: "failed", error: { code: status.code, detail: status.detail } };
  }
  if (p.status === "failed" || p.settledWritten || PACKAGE_STATUSES.indexOf(status.kind) <= PACKAGE_STATUSES.indexOf(p.status)) return p;
  const core = p.core ?? status.core;
  const refineMs = p.refineMs ?? (p.submitKnown && status.kind !== "submitted" ? Math.max(0, atMs - p.submittedAtMs) : null);
  const reportedSlot = "reportedIn" in status ? status.reportedIn.slot : p.reportedSlot;
  const accumulated =
    status.kind === "accumulated" ? { accumulatedSlot: status.accumulatedIn.slot, accumulatedBlock: toHex(status.accumulatedIn.headerHash) } : {};
  return { ...p, status: status.kind, core, refineMs, reportedSlot, ...accumulated };
}

/** The households an energy entry moves money for (the grid is no account). */
function accountsOf(e: { readonly buyer: string; readonly seller: string }): Hex[] {
  const accounts: Hex[] = [];
  if (e.buyer !== GRID) accounts.push(e.buyer);
  if (e.seller !== GRID && e.seller !== e.buyer) accounts.push(e.seller);
  return accounts;
}

/** The accounts a Wi-Fi entry moves money for: its account and, for a router's usage, the router's owner. */
function wifiAccounts(client: Hex, owner: Hex | null): Hex[] {
  return owner === null || owner === client ? [client] : [client, owner];
}

/** An EntryView's fields of a stored Wi-Fi entry (those of no other kind null). */
function wifiEntryFields(item: WifiItem) {
  const [kind, session, router, client, inputOctets, outputOctets, priceMicrosPerGb, amountMicros, feeMicros, attested, owner] = item;
  const clientHex = toHex(client);
  return {
    kind: ENTRY_KINDS[kind]!,
    device: null,
    seqs: null,
    packageHash: null,
    ...NO_ENERGY_FIELDS,
    amountMicros,
    accounts: wifiAccounts(clientHex, owner === null ? null : toHex(owner)),
    reason: ENTRY_KINDS[kind] as WifiEntryKind,
    session: session === null ? null : toHex(session),
    router: router === null ? null : toHex(router),
    client: clientHex,
    inputOctets,
    outputOctets,
    octets: (BigInt(inputOctets) + BigInt(outputOctets)).toString(),
    priceMicrosPerGb,
    feeMicros,
    attested,
  };
}

function sumWh(entries: readonly EnergyEntryInput[], which: (e: EnergyEntryInput) => boolean): number {
  let wh = 0;
  for (const e of entries) if (which(e)) wh += e.energyWh;
  return wh;
}

/**
 * Each household's part of an interval, from its ledger entries (services/energy-trading/
 * settlement.ts): trades count as bought and sold; every entry with the grid as seller
 * (grid-import, and shortfall: energy sold but not delivered, which the grid delivered) as grid
 * import, with the grid as buyer (grid-export, and surplus: bought but not consumed) as grid
 * export; money paid as buyer, received as seller. Households ascending.
 */
export function householdResults(entries: readonly EnergyEntryInput[]): HouseholdResult[] {
  const acc = new Map<string, { boughtWh: number; soldWh: number; gridImportWh: number; gridExportWh: number; paid: bigint; received: bigint }>();
  const of = (h: string) => {
    let r = acc.get(h);
    if (r === undefined) {
      r = { boughtWh: 0, soldWh: 0, gridImportWh: 0, gridExportWh: 0, paid: 0n, received: 0n };
      acc.set(h, r);
    }
    return r;
  };
  for (const e of entries) {
    if (e.buyer !== GRID) {
      const b = of(e.buyer);
      b.paid += e.amountMicros;
      if (e.seller === GRID) b.gridImportWh += e.energyWh;
      else b.boughtWh += e.energyWh;
    }
    if (e.seller !== GRID) {
      const s = of(e.seller);
      s.received += e.amountMicros;
      if (e.buyer === GRID) s.gridExportWh += e.energyWh;
      else s.soldWh += e.energyWh;
    }
  }
  return [...acc.keys()].sort().map((household) => {
    const r = acc.get(household)!;
    return {
      household,
      boughtWh: r.boughtWh,
      soldWh: r.soldWh,
      gridImportWh: r.gridImportWh,
      gridExportWh: r.gridExportWh,
      paidMicros: r.paid.toString(),
      receivedMicros: r.received.toString(),
      netMicros: (r.received - r.paid).toString(),
    };
  });
}

function publicInterval(stored: StoredInterval, withHouseholds: boolean): IntervalView {
  const { firstEntryId: _f, entryCount: _c, households, ...view } = stored;
  return { ...view, households: withHouseholds ? households : [] };
}

function matches(view: EntryView, filter: EntryFilter, serviceId: number | undefined): boolean {
  if (serviceId !== undefined && view.serviceId !== serviceId) return false;
  if (filter.router !== undefined && view.router !== filter.router.toLowerCase()) return false;
  if (filter.device !== undefined && view.device !== filter.device.toLowerCase()) return false;
  if (filter.account !== undefined && !view.accounts.includes(filter.account.toLowerCase())) return false;
  if (filter.interval !== undefined && view.interval !== filter.interval) return false;
  if (filter.fromSlot !== undefined && view.slot < filter.fromSlot) return false;
  if (filter.toSlot !== undefined && view.slot > filter.toSlot) return false;
  if (filter.sinceMs !== undefined && view.timeMs < filter.sinceMs) return false;
  if (filter.untilMs !== undefined && view.timeMs > filter.untilMs) return false;
  return true;
}

function balanceOf(value: Uint8Array | null): string {
  if (value === null) return "0";
  const decoded = decodeBalance(value);
  if (!decoded.ok) throw new Error(`energy-trading: ${decoded.error}`);
  return decoded.value.toString();
}

export type { ReportView };
