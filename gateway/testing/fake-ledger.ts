/**
 * An in-memory LedgerReader for tests of what reads the ledger (the HTTP routes, the event
 * stream, clients): views built by small fixture builders, appended at will (an append of an
 * entry, block, package or interval is also a live event). It pages as the index does (gateway/ledger/index.ts):
 * newest first, `before` exclusive, and `entries` scans at most `scanMax` entries a call, its
 * `next` continuing where the scan stopped.
 */
import { createHash } from "node:crypto";
import type {
  BalanceView,
  BlockView,
  DeviceView,
  EntryFilter,
  EntryView,
  Hex,
  IntervalView,
  LedgerEvent,
  LedgerReader,
  Page,
  PackageStatusName,
  PackageView,
  ServiceView,
} from "../ledger/types.ts";
import { ENTRY_SCAN_MAX, NO_ENERGY_FIELDS } from "../ledger/types.ts";

/** A deterministic hex string of `bytes` octets named by `label` (distinct labels, distinct values). */
export function fakeHex(label: string, bytes = 32): Hex {
  return createHash("sha256")
    .update(label)
    .digest("hex")
    .repeat(2)
    .slice(0, 2 * bytes);
}

export function blockView(slot: number, overrides: Partial<BlockView> = {}): BlockView {
  return {
    slot,
    hash: fakeHex(`block ${slot}`),
    parentHash: slot === 0 ? "00".repeat(32) : fakeHex(`block ${slot - 1}`),
    priorStateRoot: fakeHex(`root ${slot - 1}`),
    stateRoot: fakeHex(`root ${slot}`),
    author: slot % 6,
    reports: [
      {
        packageHash: fakeHex(`package ${slot}`),
        reportHash: fakeHex(`report ${slot}`),
        core: slot % 2,
        serviceIds: [1],
        erasureRoot: fakeHex(`erasure ${slot}`),
        bundleBytes: 1234,
        refineGasUsed: "123456789012345678",
      },
    ],
    assurances: 4,
    accumulated: [fakeHex(`package ${slot - 1}`)],
    serviceIds: [1],
    seenAtMs: 1_700_000_000_000 + slot * 6000,
    ...overrides,
  };
}

export function packageView(order: number, overrides: Partial<PackageView> = {}): PackageView {
  return {
    hash: fakeHex(`package ${order}`),
    serviceId: 1,
    service: "telemetry",
    kind: "envelopes",
    items: 100,
    bytes: 20_000,
    core: order % 2,
    status: "accumulated",
    submittedAtMs: 1_700_000_000_000 + order * 1000,
    refineMs: 150,
    reportedSlot: order + 1,
    accumulatedSlot: order + 2,
    accumulatedBlock: fakeHex(`block ${order + 2}`),
    settled: 99,
    refused: 1,
    error: null,
    ...overrides,
  };
}

export function deviceView(label: string, overrides: Partial<DeviceView> = {}): DeviceView {
  return {
    id: fakeHex(`device ${label}`, 16),
    publicKey: fakeHex(`key ${label}`),
    kind: "meter",
    service: "telemetry",
    serviceId: 1,
    household: null,
    registeredSlot: 3,
    settledHighestSeq: 41,
    envelopesSettled: 42,
    lastSettledSlot: 9,
    ...overrides,
  };
}

/** An "envelopes" entry of a device (every service has them). */
export function envelopesEntry(id: number, device: Hex, overrides: Partial<EntryView> = {}): EntryView {
  return {
    id,
    service: "telemetry",
    serviceId: 1,
    kind: "envelopes",
    slot: 10 + id,
    blockHash: fakeHex(`block ${10 + id}`),
    timeMs: 1_700_000_000_000 + (10 + id) * 6000,
    device,
    seqs: [2 * id, 2 * id + 1],
    packageHash: fakeHex(`package ${id}`),
    ...NO_ENERGY_FIELDS,
    accounts: [],
    ...overrides,
  };
}

/** An energy-market trade between two households. */
export function tradeEntry(id: number, buyer: Hex, seller: Hex, overrides: Partial<EntryView> = {}): EntryView {
  return {
    id,
    service: "energy-trading",
    serviceId: 2,
    kind: "trade",
    slot: 10 + id,
    blockHash: fakeHex(`block ${10 + id}`),
    timeMs: 1_700_000_000_000 + (10 + id) * 6000,
    device: null,
    seqs: null,
    packageHash: null,
    interval: 7,
    index: id % 4,
    buyer,
    seller,
    energyWh: 1500,
    priceMicrosPerKwh: 250_000,
    amountMicros: "375000",
    accounts: [buyer, seller],
    ...overrides,
  };
}

export function intervalView(interval: number, households: readonly Hex[] = [], overrides: Partial<IntervalView> = {}): IntervalView {
  return {
    interval,
    startMs: 1_700_000_000_000 + interval * 900_000,
    endMs: 1_700_000_000_000 + (interval + 1) * 900_000,
    settled: true,
    clearingPriceMicrosPerKwh: 250_000,
    tradedWh: "15000",
    orders: 12,
    trades: 5,
    gridImportWh: 3000,
    gridExportWh: 500,
    clearedSlot: 100 + interval,
    settledSlot: 101 + interval,
    households: households.map((household, i) => ({
      household,
      boughtWh: 100 * i,
      soldWh: 50 * i,
      gridImportWh: 10,
      gridExportWh: 0,
      paidMicros: String(1000 * i),
      receivedMicros: "500",
      netMicros: String(500 - 1000 * i),
    })),
    ...overrides,
  };
}

export function balanceView(account: Hex, balanceMicros: string, overrides: Partial<BalanceView> = {}): BalanceView {
  return { service: "energy-trading", account, balanceMicros, slot: 20, blockHash: fakeHex("block 20"), ...overrides };
}

function entryMatches(filter: EntryFilter, e: EntryView): boolean {
  return (
    (filter.service === undefined || e.service === filter.service) &&
    (filter.account === undefined || e.accounts.includes(filter.account)) &&
    (filter.device === undefined || e.device === filter.device) &&
    (filter.router === undefined || e.router === filter.router) &&
    (filter.interval === undefined || e.interval === filter.interval) &&
    (filter.fromSlot === undefined || e.slot >= filter.fromSlot) &&
    (filter.toSlot === undefined || e.slot <= filter.toSlot) &&
    (filter.sinceMs === undefined || e.timeMs >= filter.sinceMs) &&
    (filter.untilMs === undefined || e.timeMs <= filter.untilMs)
  );
}

/** Newest first from a list sorted ascending by `key`, `before` exclusive. */
function pageOf<T>(sorted: readonly T[], key: (item: T) => number, before: number | undefined, limit: number): Page<T> {
  const below = before === undefined ? sorted : sorted.filter((item) => key(item) < before);
  const items = below.slice(-limit).reverse();
  const next = below.length > limit ? key(items[items.length - 1]!) : null;
  return { items, next };
}

export class FakeLedger implements LedgerReader {
  readonly blockList: BlockView[] = [];
  /** With their submission order (the `before` cursor). */
  readonly packageList: { readonly order: number; readonly view: PackageView }[] = [];
  readonly serviceList: ServiceView[] = [
    { id: 1, name: "telemetry", codeHash: fakeHex("code telemetry"), kinds: ["meter", "inverter", "router", "client"], devices: 0, entries: 0 },
    { id: 2, name: "energy-trading", codeHash: fakeHex("code energy"), kinds: ["meter", "agent"], devices: 0, entries: 0 },
  ];
  readonly deviceList: DeviceView[] = [];
  readonly entryList: EntryView[] = [];
  readonly intervalList: IntervalView[] = [];
  readonly balanceList: BalanceView[] = [];
  private readonly listeners = new Set<(event: LedgerEvent) => void>();
  /** Entries one `entries` call scans at most (ENTRY_SCAN_MAX unless a test makes it small). */
  scanMax = ENTRY_SCAN_MAX;

  get subscribers(): number {
    return this.listeners.size;
  }

  emit(event: LedgerEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  addBlock(block: BlockView): BlockView {
    this.blockList.push(block);
    this.emit({ kind: "block", block });
    return block;
  }

  addPackage(view: PackageView): PackageView {
    this.packageList.push({ order: this.packageList.length, view });
    this.emit({ kind: "package", package: view });
    return view;
  }

  addDevice(view: DeviceView): DeviceView {
    this.deviceList.push(view);
    this.deviceList.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return view;
  }

  /** Appends an entry; its id must be the next (the index's append order). */
  addEntry(entry: EntryView): EntryView {
    if (entry.id !== this.entryList.length) throw new Error(`entry ${entry.id} is not the next id ${this.entryList.length}`);
    this.entryList.push(entry);
    this.emit({ kind: "entry", entry });
    return entry;
  }

  addInterval(view: IntervalView): IntervalView {
    this.intervalList.push(view);
    this.emit({ kind: "interval", interval: { ...view, households: [] } });
    return view;
  }

  setBalance(view: BalanceView): void {
    const i = this.balanceList.findIndex((b) => b.service === view.service && b.account === view.account);
    if (i >= 0) this.balanceList[i] = view;
    else this.balanceList.push(view);
  }

  async head(): Promise<BlockView | null> {
    return this.blockList[this.blockList.length - 1] ?? null;
  }

  async blocks(query: { readonly before?: number; readonly limit: number }): Promise<Page<BlockView>> {
    return pageOf(this.blockList, (b) => b.slot, query.before, query.limit);
  }

  async block(hashOrSlot: Hex | number): Promise<BlockView | null> {
    return this.blockList.find((b) => (typeof hashOrSlot === "number" ? b.slot === hashOrSlot : b.hash === hashOrSlot)) ?? null;
  }

  async packages(query: {
    readonly status?: PackageStatusName;
    readonly service?: string;
    readonly before?: number;
    readonly limit: number;
  }): Promise<Page<PackageView>> {
    const matching = this.packageList.filter(
      (p) => (query.status === undefined || p.view.status === query.status) && (query.service === undefined || p.view.service === query.service),
    );
    const page = pageOf(matching, (p) => p.order, query.before, query.limit);
    return { items: page.items.map((p) => p.view), next: page.next };
  }

  async package(hash: Hex): Promise<PackageView | null> {
    return this.packageList.find((p) => p.view.hash === hash)?.view ?? null;
  }

  async services(): Promise<readonly ServiceView[]> {
    return this.serviceList.map((s) => ({
      ...s,
      devices: this.deviceList.filter((d) => d.serviceId === s.id).length,
      entries: this.entryList.filter((e) => e.serviceId === s.id).length,
    }));
  }

  async devices(query: {
    readonly service?: string;
    readonly kind?: string;
    readonly household?: Hex;
    readonly after?: Hex;
    readonly limit: number;
  }): Promise<{ readonly items: readonly DeviceView[]; readonly next: Hex | null }> {
    const matching = this.deviceList.filter(
      (d) =>
        (query.service === undefined || d.service === query.service) &&
        (query.kind === undefined || d.kind === query.kind) &&
        (query.household === undefined || d.household === query.household) &&
        (query.after === undefined || d.id > query.after),
    );
    const items = matching.slice(0, query.limit);
    return { items, next: matching.length > query.limit ? items[items.length - 1]!.id : null };
  }

  async device(id: Hex): Promise<DeviceView | null> {
    return this.deviceList.find((d) => d.id === id) ?? null;
  }

  async entries(filter: EntryFilter, page: { readonly before?: number; readonly limit: number }): Promise<Page<EntryView>> {
    const items: EntryView[] = [];
    let id = Math.min(page.before ?? this.entryList.length, this.entryList.length) - 1;
    for (let scanned = 0; id >= 0; id--, scanned++) {
      if (scanned === this.scanMax) return { items, next: id + 1 };
      const entry = this.entryList[id]!;
      if (!entryMatches(filter, entry)) continue;
      items.push(entry);
      if (items.length === page.limit) return { items, next: id > 0 ? id : null };
    }
    return { items, next: null };
  }

  async entry(id: number): Promise<EntryView | null> {
    return this.entryList[id] ?? null;
  }

  async intervals(query: { readonly before?: number; readonly limit: number }): Promise<Page<IntervalView>> {
    const page = pageOf(this.intervalList, (i) => i.interval, query.before, query.limit);
    return { items: page.items.map((i) => ({ ...i, households: [] })), next: page.next };
  }

  async interval(interval: number): Promise<IntervalView | null> {
    return this.intervalList.find((i) => i.interval === interval) ?? null;
  }

  async balances(service: string): Promise<readonly BalanceView[]> {
    return this.balanceList.filter((b) => b.service === service);
  }

  async balance(service: string, account: Hex): Promise<BalanceView | null> {
    return this.balanceList.find((b) => b.service === service && b.account === account) ?? null;
  }

  subscribe(onEvent: (event: LedgerEvent) => void): () => void {
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }
}
