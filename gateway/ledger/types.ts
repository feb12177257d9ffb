/**
 * The settlement ledger's read side, as the HTTP API, the dashboard and `jamgate ledger` see it:
 * plain JSON views (hashes and keys as lowercase hex, amounts that may pass 2^53 as decimal
 * strings) and the reader interface the routes query. The views are kept by the ledger index
 * (index.ts) off the node's critical path: it follows blocks and the gateway's settlements and
 * writes what it learns to its own LMDB store, so a read never waits on the node's thread.
 */

/** 64 lowercase hex digits (a hash) or another lowercase hex string (keys, ids). */
export type Hex = string;

/** A work report as a block carried it (GP 11.1.4, E_G guarantees). */
export interface ReportView {
  readonly packageHash: Hex;
  readonly reportHash: Hex;
  readonly core: number;
  /** The services its results are for (GP 11.1.4 r_s), ascending, unique. */
  readonly serviceIds: readonly number[];
  readonly erasureRoot: Hex;
  /** Octets of the work-package bundle in DA (GP 14.3 l). */
  readonly bundleBytes: number;
  /** Refine gas its results used, summed (GP 11.1.4 u), decimal. */
  readonly refineGasUsed: string;
}

export interface BlockView {
  readonly slot: number;
  readonly hash: Hex;
  readonly parentHash: Hex;
  /** The state root before the block (GP 5.1 H_r): its parent's posterior root. */
  readonly priorStateRoot: Hex;
  /** The state root after the block. */
  readonly stateRoot: Hex;
  readonly author: number;
  /** Reports guaranteed in this block (E_G). */
  readonly reports: readonly ReportView[];
  /** Availability assurances it carried (E_A). */
  readonly assurances: number;
  /** Packages this block accumulated (known to the gateway: its own packages). */
  readonly accumulated: readonly Hex[];
  /** Services a report or an accumulation of this block touched, ascending, unique. */
  readonly serviceIds: readonly number[];
  /** When the gateway saw it (Unix ms): its clock, not the chain's. */
  readonly seenAtMs: number;
}

export const PACKAGE_STATUSES = ["submitted", "refined", "reported", "available", "accumulated", "failed"] as const;
export type PackageStatusName = (typeof PACKAGE_STATUSES)[number];

/** What a package carries: devices' envelopes, registrations, or operator actions (wifi-billing's top-ups, price changes, deregistrations). */
export const PACKAGE_KINDS = ["envelopes", "registrations", "actions"] as const;
export type PackageKind = (typeof PACKAGE_KINDS)[number];

/** A work package the gateway submitted. */
export interface PackageView {
  readonly hash: Hex;
  readonly serviceId: number;
  readonly service: string;
  readonly kind: PackageKind;
  /** Envelopes, registrations or actions it carries. */
  readonly items: number;
  readonly bytes: number;
  /** The core it was submitted to; null when unknown (submitted before a restart). */
  readonly core: number | null;
  readonly status: PackageStatusName;
  readonly submittedAtMs: number;
  /** Submit → refined, as the gateway saw it; null before refined or when unknown. */
  readonly refineMs: number | null;
  readonly reportedSlot: number | null;
  readonly accumulatedSlot: number | null;
  readonly accumulatedBlock: Hex | null;
  /** Envelopes settled and refused (after accumulation). */
  readonly settled: number;
  readonly refused: number;
  readonly error: { readonly code: string; readonly detail: string } | null;
}

export interface ServiceView {
  readonly id: number;
  readonly name: string;
  readonly codeHash: Hex;
  readonly kinds: readonly string[];
  /** Devices registered through this gateway (the index's count). */
  readonly devices: number;
  /** Settlement entries the index holds for it. */
  readonly entries: number;
}

export interface DeviceView {
  readonly id: Hex;
  readonly publicKey: Hex;
  readonly kind: string;
  readonly service: string;
  readonly serviceId: number;
  /** An energy agent's household (its meter's id); a meter is its own household; null otherwise. */
  readonly household: Hex | null;
  /** The slot whose block accumulated its registration; null when unknown. */
  readonly registeredSlot: number | null;
  /** The highest seq its service has settled, -1 before the first. */
  readonly settledHighestSeq: number;
  /** Envelopes of it the index holds as settled. */
  readonly envelopesSettled: number;
  readonly lastSettledSlot: number | null;
}

/** The reasons of wifi-billing's ledger entries (services/wifi-billing/storage.ts LEDGER_REASONS), in its order. */
export const WIFI_ENTRY_KINDS = ["usage", "balance-exhausted", "disputed", "topup", "stake-lock", "stake-return"] as const;
export type WifiEntryKind = (typeof WIFI_ENTRY_KINDS)[number];

/**
 * What kind of settlement an entry records: a device's envelopes settled in a package (every
 * service), an energy ledger entry (services/energy-trading/settlement.ts LEDGER_REASONS), or a
 * wifi-billing ledger entry (its reason).
 */
export const ENTRY_KINDS = ["envelopes", "trade", "grid-import", "grid-export", "shortfall", "surplus", ...WIFI_ENTRY_KINDS] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/**
 * One settlement entry. `id` is the index's append order: larger is newer, never reused, so a
 * cursor (`before`/`after` an id) stays valid while new entries arrive.
 */
export interface EntryView {
  readonly id: number;
  readonly service: string;
  readonly serviceId: number;
  readonly kind: EntryKind;
  /** The block that settled it. */
  readonly slot: number;
  readonly blockHash: Hex;
  /** When the gateway saw that block (Unix ms). */
  readonly timeMs: number;
  /** "envelopes": the device, its settled seqs (ascending, at most RECEIPT_SEQS_MAX) and the package. */
  readonly device: Hex | null;
  readonly seqs: readonly number[] | null;
  readonly packageHash: Hex | null;
  /** Energy entries: the market interval, the entry's place in the interval's stored ledger, the parties (a household id or "grid"), energy, price and amount. */
  readonly interval: number | null;
  readonly index: number | null;
  readonly buyer: string | null;
  readonly seller: string | null;
  readonly energyWh: number | null;
  readonly priceMicrosPerKwh: number | null;
  /** Decimal micro-units (may pass 2^53). */
  readonly amountMicros: string | null;
  /** The accounts it moves money for (households; Wi-Fi: the client or account, and the router's owner), for the `account` filter. */
  readonly accounts: readonly Hex[];
  /**
   * Wi-Fi entries only (service wifi-billing; absent on others): the entry's reason (its `kind`),
   * the session (null for entries of none: top-ups, stakes), the router (null for a top-up), the
   * account it moves (`client`: the client for usage, the owner for stakes, the account topped
   * up), the octets of the session's delta (input, output, their sum), the session's price, the
   * amount (`amountMicros`) and the protocol fee of it, and whether the usage was router-attested
   * (no client voucher).
   */
  readonly reason?: WifiEntryKind;
  readonly session?: Hex | null;
  readonly router?: Hex | null;
  readonly client?: Hex;
  readonly inputOctets?: string;
  readonly outputOctets?: string;
  readonly octets?: string;
  readonly priceMicrosPerGb?: string;
  readonly feeMicros?: string;
  readonly attested?: boolean;
}

/** The energy fields of an entry that is not an energy entry ("envelopes"). */
export const NO_ENERGY_FIELDS = {
  interval: null,
  index: null,
  buyer: null,
  seller: null,
  energyWh: null,
  priceMicrosPerKwh: null,
  amountMicros: null,
} as const satisfies Partial<EntryView>;

export interface EntryFilter {
  readonly service?: string;
  readonly account?: Hex;
  readonly device?: Hex;
  /** Wi-Fi entries of this router. */
  readonly router?: Hex;
  readonly interval?: number;
  /** Slot range, inclusive. */
  readonly fromSlot?: number;
  readonly toSlot?: number;
  /** Block time range (Unix ms), inclusive. */
  readonly sinceMs?: number;
  readonly untilMs?: number;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Pass as `before` for the next (older) page; null at the end. */
  readonly next: number | null;
}

export interface HouseholdResult {
  readonly household: Hex;
  /** Energy bought from and sold to other households (trades), and from and to the grid, in the interval. */
  readonly boughtWh: number;
  readonly soldWh: number;
  readonly gridImportWh: number;
  readonly gridExportWh: number;
  /** Money paid and received in the interval, decimal micro-units; net = received − paid. */
  readonly paidMicros: string;
  readonly receivedMicros: string;
  readonly netMicros: string;
}

export interface IntervalView {
  readonly interval: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly settled: boolean;
  readonly clearingPriceMicrosPerKwh: number | null;
  readonly tradedWh: string;
  readonly orders: number;
  readonly trades: number;
  /** Energy the interval's entries moved from and to the grid, and the community's total metered import and export. */
  readonly gridImportWh: number;
  readonly gridExportWh: number;
  readonly clearedSlot: number;
  readonly settledSlot: number;
  /** Per household (the detail route only; [] in lists). */
  readonly households: readonly HouseholdResult[];
}

export interface BalanceView {
  readonly service: string;
  readonly account: Hex;
  /** Signed, decimal micro-units, at `slot`. */
  readonly balanceMicros: string;
  readonly slot: number;
  readonly blockHash: Hex;
}

/**
 * The data of `event: entries`, what a digest stream (`GET /v1/events?entries=digest`) gets in place
 * of one `entry` event per entry: at most once per ENTRY_DIGEST_MS (events.ts), and only when
 * entries matching the stream's filter arrived since its last digest. The stream makes it, not the
 * reader: it is not a LedgerEvent.
 */
export interface EntryDigestView {
  /** Entries matching the stream's filter since the last digest. */
  readonly count: number;
  /** The id of the newest of them. */
  readonly lastId: number;
  /** The newest of them, at most ENTRY_DIGEST_LATEST_MAX (events.ts), newest first. */
  readonly latest: readonly EntryView[];
}

/** What the reader's live updates are, and what the live stream (`GET /v1/events`, Server-Sent Events) sends: the event name is `kind` (a digest stream gets `entries`, an EntryDigestView, in place of `entry`). */
export type LedgerEvent =
  | { readonly kind: "block"; readonly block: BlockView }
  | { readonly kind: "entry"; readonly entry: EntryView }
  | { readonly kind: "package"; readonly package: PackageView }
  | { readonly kind: "interval"; readonly interval: IntervalView };

/** The read side the HTTP routes query. Every method is bounded: lists take a limit ≤ LIST_LIMIT_MAX. */
export interface LedgerReader {
  head(): Promise<BlockView | null>;
  /** Newest first; `before`: a slot (exclusive). */
  blocks(query: { readonly before?: number; readonly limit: number }): Promise<Page<BlockView>>;
  block(hashOrSlot: Hex | number): Promise<BlockView | null>;
  /** Newest first; `before`: a submission order cursor (exclusive). */
  packages(query: {
    readonly status?: PackageStatusName;
    readonly service?: string;
    readonly before?: number;
    readonly limit: number;
  }): Promise<Page<PackageView>>;
  package(hash: Hex): Promise<PackageView | null>;
  services(): Promise<readonly ServiceView[]>;
  devices(query: {
    readonly service?: string;
    readonly kind?: string;
    readonly household?: Hex;
    readonly after?: Hex;
    readonly limit: number;
  }): Promise<{ readonly items: readonly DeviceView[]; readonly next: Hex | null }>;
  device(id: Hex): Promise<DeviceView | null>;
  /** Newest first; `before`: an entry id (exclusive). Scans at most ENTRY_SCAN_MAX entries per call: `next` continues where the scan stopped, even when fewer than `limit` matched. */
  entries(filter: EntryFilter, page: { readonly before?: number; readonly limit: number }): Promise<Page<EntryView>>;
  entry(id: number): Promise<EntryView | null>;
  /** Newest first; `before`: an interval (exclusive). */
  intervals(query: { readonly before?: number; readonly limit: number }): Promise<Page<IntervalView>>;
  interval(interval: number): Promise<IntervalView | null>;
  /** Accounts with a balance in a service (energy: its households), read from the best block's state. */
  balances(service: string): Promise<readonly BalanceView[]>;
  balance(service: string, account: Hex): Promise<BalanceView | null>;
  /** Live events; returns the unsubscribe. */
  subscribe(onEvent: (event: LedgerEvent) => void): () => void;
}

/** Largest page any list route returns. */
export const LIST_LIMIT_MAX = 500;
/** Entries one `entries` call looks at at most when filtering: bounds a request's work whatever the filter. */
export const ENTRY_SCAN_MAX = 20_000;
