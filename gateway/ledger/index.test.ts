import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BlockDescriptor } from "../../node/api.ts";
import { balanceKey, encodeBalance, encodeHouseholds, HOUSEHOLDS_KEY } from "../../services/energy-trading/storage.ts";
import { type EnergyEntryInput, householdResults, type IntervalInput, LedgerIndex, type LedgerIndexOptions } from "./index.ts";
import { ENTRY_SCAN_MAX, type LedgerEvent } from "./types.ts";

const TELEMETRY = { name: "telemetry", serviceId: 2, codeHash: new Uint8Array(32).fill(2), kinds: ["meter", "inverter"] as const };
const ENERGY = { name: "energy-trading", serviceId: 3, codeHash: new Uint8Array(32).fill(3), kinds: ["meter", "agent"] as const };

let dir: string;
let index: LedgerIndex;

function open(options: Partial<LedgerIndexOptions> = {}): LedgerIndex {
  return new LedgerIndex({ path: join(dir, "ledger"), services: [TELEMETRY, ENERGY], ...options });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-ledger-index-"));
  index = open();
});

afterEach(async () => {
  await index.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A 16-byte id as 32 hex digits, distinct per n. */
const deviceId = (n: number) => n.toString(16).padStart(32, "0");
const hash32 = (n: number): Uint8Array => new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? n & 0xff : i === 1 ? (n >> 8) & 0xff : 7));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const block = (slot: number): BlockDescriptor => ({ headerHash: hash32(10_000 + slot), slot });

let packages = 0;
/** Settles a telemetry package with one receipt per device in `devices` (seqs `seqs`), accumulated at `slot`. */
async function settle(
  devices: readonly number[],
  slot: number,
  seqs: readonly number[] = [0, 1, 2],
  into: LedgerIndex = index,
  hash = hash32(++packages),
): Promise<Uint8Array> {
  await into.packageSettled({
    hash,
    serviceId: TELEMETRY.serviceId,
    kind: "envelopes",
    block: block(slot),
    receipts: devices.map((d) => ({ deviceId: deviceId(d), seqs })),
    settled: devices.length * seqs.length,
    refused: 0,
    settledAtMs: 1_700_000_000_000 + slot,
  });
  return hash;
}

/** Every entry id, newest first, paging by `limit`. */
async function allIds(limit: number, filter = {}): Promise<number[]> {
  const ids: number[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await index.entries(filter, { limit, ...(before === undefined ? {} : { before }) });
    ids.push(...page.items.map((e) => e.id));
    if (page.next === null) return ids;
    before = page.next;
  }
}

/** Waits for the index's background writes (status, registration) to commit: the next awaited write queues behind them. */
async function committed(into: LedgerIndex = index): Promise<void> {
  await into.skipIntervals({ nextCleared: 0, nextSettled: 0 });
}

describe("entries", () => {
  it("pages newest first by id, and a page after new appends continues where the last one ended: no gaps, no repeats", async () => {
    await settle(
      Array.from({ length: 120 }, (_, i) => i),
      5,
    );
    const first = await index.entries({}, { limit: 50 });
    expect(first.items.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => 120 - i));
    expect(first.next).toBe(71);
    // 100 more arrive between the two pages.
    await settle(
      Array.from({ length: 100 }, (_, i) => 1_000 + i),
      6,
    );
    const second = await index.entries({}, { limit: 50, before: first.next! });
    expect(second.items.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => 70 - i));
    const rest = await index.entries({}, { limit: 50, before: second.next! });
    expect(rest.items.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i));
    expect(rest.next).toBeNull();
    // The new ones are above the first page: a client reading from the top sees them.
    expect((await index.entries({}, { limit: 1 })).items[0]!.id).toBe(220);
  });

  it("filters by device, service, slot and time, through the narrowest index, and pages the filtered list without gaps", async () => {
    for (let slot = 1; slot <= 30; slot++) await settle([slot % 3, 100 + slot], slot, [slot]);
    const ofDevice = await allIds(4, { device: deviceId(1) });
    expect(ofDevice).toHaveLength(10);
    for (const id of ofDevice) expect((await index.entry(id))!.device).toBe(deviceId(1));
    expect(ofDevice).toEqual([...ofDevice].sort((a, b) => b - a));
    const page = await index.entries({ device: deviceId(1) }, { limit: 3 });
    expect(page.items.map((e) => e.seqs)).toEqual([[28], [25], [22]]);
    expect(page.items[0]).toMatchObject({
      kind: "envelopes",
      service: "telemetry",
      serviceId: 2,
      slot: 28,
      blockHash: hex(block(28).headerHash),
      timeMs: 1_700_000_000_028,
      accounts: [],
      amountMicros: null,
    });
    expect(await allIds(7, { service: "telemetry" })).toHaveLength(60);
    expect(await allIds(7, { service: "energy-trading" })).toEqual([]);
    expect(await allIds(7, { service: "no-such-service" })).toEqual([]);
    const slots = await index.entries({ fromSlot: 10, toSlot: 12 }, { limit: 100 });
    expect(slots.items.map((e) => e.slot)).toEqual([12, 12, 11, 11, 10, 10]);
    const time = await index.entries({ sinceMs: 1_700_000_000_029, untilMs: 1_700_000_000_030 }, { limit: 100 });
    expect(time.items.map((e) => e.slot)).toEqual([30, 30, 29, 29]);
    expect((await index.entries({ device: deviceId(2), fromSlot: 29 }, { limit: 100 })).items.map((e) => e.slot)).toEqual([29]);
  });

  it("bounds a filtered scan by ENTRY_SCAN_MAX and gives a cursor to go on from where it stopped", async () => {
    const wanted = deviceId(424_242);
    await settle([424_242], 1, [7]);
    for (let p = 0; p < Math.ceil((ENTRY_SCAN_MAX + 500) / 1_000); p++)
      await settle(
        Array.from({ length: 1_000 }, (_, i) => p * 1_000 + i),
        2 + p,
      );
    const total = (await index.entries({}, { limit: 1 })).items[0]!.id;
    // A slot filter has no index: the scan stops after ENTRY_SCAN_MAX entries with nothing found, and says where.
    const first = await index.entries({ toSlot: 1 }, { limit: 10 });
    expect(first.items).toEqual([]);
    expect(first.next).toBe(total - ENTRY_SCAN_MAX + 1);
    const second = await index.entries({ toSlot: 1 }, { limit: 10, before: first.next! });
    expect(second.items.map((e) => e.device)).toEqual([wanted]);
    expect(second.next).toBeNull();
    // The device index finds it at once.
    expect((await index.entries({ device: wanted }, { limit: 10 })).items.map((e) => e.seqs)).toEqual([[7]]);
  });

  it("writes a package's settlement once: settled again (after a crash, before the log forgot it) it adds no entry and counts nothing twice", async () => {
    const hash = await settle([1, 2], 4, [0, 1, 2, 3]);
    await settle([1, 2], 4, [0, 1, 2, 3], index, hash);
    expect(await allIds(100)).toEqual([2, 1]);
    expect((await index.device(deviceId(1)))?.envelopesSettled ?? null).toBeNull(); // not registered: counters only
    index.deviceRegistered({ deviceId: deviceId(1), publicKey: new Uint8Array(32).fill(1), kind: "meter", serviceId: TELEMETRY.serviceId, registeredSlot: 2 });
    await committed();
    expect(await index.device(deviceId(1))).toMatchObject({ envelopesSettled: 4, settledHighestSeq: 3, lastSettledSlot: 4, registeredSlot: 2 });
    expect((await index.services()).find((s) => s.name === "telemetry")).toMatchObject({ entries: 2, devices: 1 });
    expect(await index.package(hex(hash))).toMatchObject({ status: "accumulated", settled: 8, refused: 0, accumulatedSlot: 4 });
  });
});

describe("devices", () => {
  async function register(n: number, kind: "meter" | "agent", serviceId: number, household?: string): Promise<void> {
    index.deviceRegistered({
      deviceId: deviceId(n),
      publicKey: new Uint8Array(32).fill(n),
      kind,
      serviceId,
      registeredSlot: n,
      ...(household === undefined ? {} : { household }),
    });
  }

  it("keeps each device's settled seqs, envelope count and last slot from its receipts, the same after a restart", async () => {
    await register(1, "meter", TELEMETRY.serviceId);
    await register(2, "meter", ENERGY.serviceId);
    await register(3, "agent", ENERGY.serviceId, deviceId(2));
    await committed();
    await settle([1], 5, [0, 1, 2]);
    await settle([1, 2], 6, [3, 4]);
    await settle([1], 7, [5]);
    const before = await Promise.all([1, 2, 3].map((n) => index.device(deviceId(n))));
    expect(before[0]).toEqual({
      id: deviceId(1),
      publicKey: hex(new Uint8Array(32).fill(1)),
      kind: "meter",
      service: "telemetry",
      serviceId: 2,
      household: null,
      registeredSlot: 1,
      settledHighestSeq: 5,
      envelopesSettled: 6,
      lastSettledSlot: 7,
    });
    expect(before[1]).toMatchObject({ household: deviceId(2), settledHighestSeq: 4, envelopesSettled: 2, lastSettledSlot: 6 });
    expect(before[2]).toMatchObject({ household: deviceId(2), settledHighestSeq: -1, envelopesSettled: 0, lastSettledSlot: null });
    const listed = await index.devices({ limit: 10 });
    await index.close();
    index = open();
    expect(await Promise.all([1, 2, 3].map((n) => index.device(deviceId(n))))).toEqual(before);
    expect(await index.devices({ limit: 10 })).toEqual(listed);
  });

  it("lists by id with service, kind and household filters, paging after an id", async () => {
    for (let n = 1; n <= 9; n++)
      await register(n, n % 3 === 0 ? "agent" : "meter", n <= 5 ? TELEMETRY.serviceId : ENERGY.serviceId, n % 3 === 0 ? deviceId(1) : undefined);
    await committed();
    const all = await index.devices({ limit: 4 });
    expect(all.items.map((d) => d.id)).toEqual([1, 2, 3, 4].map(deviceId));
    expect(all.next).toBe(deviceId(4));
    const rest = await index.devices({ limit: 10, after: all.next! });
    expect(rest.items.map((d) => d.id)).toEqual([5, 6, 7, 8, 9].map(deviceId));
    expect(rest.next).toBeNull();
    expect((await index.devices({ service: "energy-trading", limit: 10 })).items.map((d) => d.id)).toEqual([6, 7, 8, 9].map(deviceId));
    expect((await index.devices({ service: "energy-trading", kind: "meter", limit: 10 })).items.map((d) => d.id)).toEqual([7, 8].map(deviceId));
    expect((await index.devices({ household: deviceId(1), limit: 10 })).items.map((d) => d.id)).toEqual([3, 6, 9].map(deviceId));
    expect((await index.devices({ household: deviceId(1), service: "telemetry", limit: 10 })).items.map((d) => d.id)).toEqual([3].map(deviceId));
    expect((await index.devices({ service: "energy-trading", after: deviceId(7), limit: 1 })).items.map((d) => d.id)).toEqual([8].map(deviceId));
    // An energy meter is its own household.
    expect((await index.device(deviceId(7)))!.household).toBe(deviceId(7));
    expect((await index.services()).map((s) => [s.name, s.devices])).toEqual([
      ["telemetry", 5],
      ["energy-trading", 4],
    ]);
  });

  it("takes a device settled before its registration was seen from the gateway's registry, and completes it when the registration comes", async () => {
    await index.close();
    index = open({
      deviceFacts: (id) =>
        id === deviceId(5) ? { publicKey: new Uint8Array(32).fill(5), kind: "meter", serviceId: ENERGY.serviceId, settledHighestSeq: 40 } : null,
    });
    await settle([5], 9, [41]);
    expect(await index.device(deviceId(5))).toMatchObject({
      kind: "meter",
      service: "energy-trading",
      household: deviceId(5),
      registeredSlot: null,
      settledHighestSeq: 41,
      envelopesSettled: 1,
    });
    await register(5, "meter", ENERGY.serviceId);
    await committed();
    expect(await index.device(deviceId(5))).toMatchObject({ registeredSlot: 5, settledHighestSeq: 41, envelopesSettled: 1 });
    expect((await index.services()).find((s) => s.name === "energy-trading")!.devices).toBe(1);
  });
});

describe("blocks and packages", () => {
  const blockView = (slot: number) => ({
    slot,
    hash: hex(block(slot).headerHash),
    parentHash: hex(block(slot - 1).headerHash),
    priorStateRoot: hex(hash32(500 + slot)),
    stateRoot: hex(hash32(501 + slot)),
    author: slot % 6,
    reports: [],
    assurances: 0,
    serviceIds: slot % 2 === 0 ? [2] : [],
    seenAtMs: 1_700_000_000_000 + slot,
  });

  it("keeps blocks by slot and hash, newest first, with the gateway's packages each accumulated", async () => {
    for (let slot = 1; slot <= 12; slot++) await index.writeBlock(blockView(slot));
    await index.writeBlock(blockView(12)); // again: no change
    expect((await index.head())!.slot).toBe(12);
    const page = await index.blocks({ limit: 5 });
    expect(page.items.map((b) => b.slot)).toEqual([12, 11, 10, 9, 8]);
    expect((await index.blocks({ limit: 5, before: page.next! })).items.map((b) => b.slot)).toEqual([7, 6, 5, 4, 3]);
    expect((await index.blocks({ limit: 5, before: 3 })).next).toBeNull();
    expect((await index.block(hex(block(7).headerHash)))!.slot).toBe(7);
    expect((await index.block(7))!.hash).toBe(hex(block(7).headerHash));
    expect(await index.block(99)).toBeNull();
    // A package of the energy service accumulated in block 7.
    const hash = hash32(77);
    index.packageSubmitted({ hash, serviceId: ENERGY.serviceId, kind: "envelopes", items: 3, bytes: 900, core: 1, submittedAtMs: 1_000 });
    index.packageStatus(hash, { kind: "refined", core: 1, reportHash: hash32(78) }, 1_250);
    index.packageStatus(hash, { kind: "reported", core: 1, reportHash: hash32(78), reportedIn: block(6) }, 1_400);
    index.packageStatus(hash, { kind: "refined", core: 1, reportHash: hash32(78) }, 1_500); // a repeat of an earlier stage changes nothing
    index.packageStatus(
      hash,
      { kind: "accumulated", core: 1, reportHash: hash32(78), reportedIn: block(6), availableIn: block(6), accumulatedIn: block(7) },
      1_600,
    );
    await committed();
    expect(await index.block(7)).toMatchObject({ accumulated: [hex(hash)], serviceIds: [3] });
    expect(await index.block(8)).toMatchObject({ accumulated: [], serviceIds: [2] });
    expect(await index.package(hex(hash))).toEqual({
      hash: hex(hash),
      serviceId: 3,
      service: "energy-trading",
      kind: "envelopes",
      items: 3,
      bytes: 900,
      core: 1,
      status: "accumulated",
      submittedAtMs: 1_000,
      refineMs: 250,
      reportedSlot: 6,
      accumulatedSlot: 7,
      accumulatedBlock: hex(block(7).headerHash),
      settled: 0,
      refused: 0,
      error: null,
    });
  });

  it("lists packages newest first by submission, filtered by status and service", async () => {
    const hashes = Array.from({ length: 9 }, (_, i) => hash32(200 + i));
    hashes.forEach((hash, i) => {
      index.packageSubmitted({
        hash,
        serviceId: i % 3 === 0 ? ENERGY.serviceId : TELEMETRY.serviceId,
        kind: "envelopes",
        items: i,
        bytes: 10,
        core: i % 2,
        submittedAtMs: i,
      });
    });
    index.packageStatus(hashes[4]!, { kind: "failed", code: "JG_ERR_REFINE_PANIC", detail: "boom" }, 10);
    await committed();
    const page = await index.packages({ limit: 4 });
    expect(page.items.map((p) => p.items)).toEqual([8, 7, 6, 5]);
    expect((await index.packages({ limit: 4, before: page.next! })).items.map((p) => p.items)).toEqual([4, 3, 2, 1]);
    expect((await index.packages({ limit: 10, service: "energy-trading" })).items.map((p) => p.items)).toEqual([6, 3, 0]);
    expect((await index.packages({ limit: 10, status: "failed" })).items).toMatchObject([{ items: 4, error: { code: "JG_ERR_REFINE_PANIC", detail: "boom" } }]);
  });
});

describe("energy intervals", () => {
  const a = deviceId(0xa);
  const b = deviceId(0xb);
  const entries: EnergyEntryInput[] = [
    { reason: "trade", buyer: a, seller: b, energyWh: 300, priceMicrosPerKwh: 200_000, amountMicros: 60_000n },
    { reason: "grid-import", buyer: a, seller: "grid", energyWh: 100, priceMicrosPerKwh: 300_000, amountMicros: 30_000n },
    { reason: "surplus", buyer: "grid", seller: a, energyWh: 50, priceMicrosPerKwh: 80_000, amountMicros: 4_000n },
    { reason: "grid-export", buyer: "grid", seller: b, energyWh: 200, priceMicrosPerKwh: 80_000, amountMicros: 16_000n },
  ];
  const interval = (k: number, settled: boolean): IntervalInput => ({
    interval: k,
    startMs: k * 900_000,
    endMs: (k + 1) * 900_000,
    settled,
    clearingPriceMicrosPerKwh: 200_000,
    tradedWh: 300n,
    orders: 2,
    trades: 1,
    clearedSlot: 10 * k,
    settledSlot: settled ? 10 * k + 5 : 0,
    entries: settled ? entries : [],
    readAt: { hash: hex(block(10 * k + 6).headerHash), seenAtMs: 42 },
  });

  it("sums each household's part of an interval from its entries", () => {
    expect(householdResults(entries)).toEqual([
      { household: a, boughtWh: 300, soldWh: 0, gridImportWh: 100, gridExportWh: 50, paidMicros: "90000", receivedMicros: "4000", netMicros: "-86000" },
      { household: b, boughtWh: 0, soldWh: 300, gridImportWh: 0, gridExportWh: 200, paidMicros: "0", receivedMicros: "76000", netMicros: "76000" },
    ]);
  });

  it("holds an interval once cleared, then settled with its entries (once), found by interval and by account", async () => {
    const events: LedgerEvent[] = [];
    index.subscribe((e) => events.push(e));
    await index.writeInterval(interval(4, false));
    expect(await index.interval(4)).toMatchObject({ settled: false, households: [], clearedSlot: 40, settledSlot: 0 });
    expect(index.marketMark()).toEqual({ nextCleared: 5, nextSettled: 0 });
    await index.writeInterval(interval(4, true));
    await index.writeInterval(interval(4, true)); // again: nothing
    await index.writeInterval(interval(4, false)); // an older read: nothing
    expect(index.marketMark()).toEqual({ nextCleared: 5, nextSettled: 5 });
    const view = (await index.interval(4))!;
    expect(view).toMatchObject({ settled: true, tradedWh: "300", gridImportWh: 100, gridExportWh: 250, settledSlot: 45 });
    expect(view.households.map((h) => h.household)).toEqual([a, b]);
    expect((await index.intervals({ limit: 10 })).items[0]!.households).toEqual([]);
    const all = await index.entries({ interval: 4 }, { limit: 10 });
    expect(all.items.map((e) => [e.kind, e.index])).toEqual([
      ["grid-export", 3],
      ["surplus", 2],
      ["grid-import", 1],
      ["trade", 0],
    ]);
    expect(all.items[3]).toMatchObject({
      service: "energy-trading",
      buyer: a,
      seller: b,
      energyWh: 300,
      amountMicros: "60000",
      accounts: [a, b],
      slot: 45,
      timeMs: 42,
      device: null,
    });
    // The block at slot 45 was not seen: the entries carry the block they were read at.
    expect(all.items[3]!.blockHash).toBe(hex(block(46).headerHash));
    expect((await index.entries({ account: b }, { limit: 10 })).items.map((e) => e.kind)).toEqual(["grid-export", "trade"]);
    expect((await index.entries({ account: a, interval: 4 }, { limit: 2 })).items.map((e) => e.kind)).toEqual(["surplus", "grid-import"]);
    expect(events.map((e) => e.kind)).toEqual(["interval", "interval", "entry", "entry", "entry", "entry"]);
    expect((await index.services()).find((s) => s.name === "energy-trading")!.entries).toBe(4);
  });

  it("answers the same after a restart", async () => {
    await index.writeInterval(interval(1, true));
    await settle([1, 2, 3], 20);
    await index.writeInterval(interval(2, true));
    const read = async () =>
      JSON.stringify([
        await index.intervals({ limit: 10 }),
        await index.interval(2),
        await index.entries({}, { limit: 100 }),
        await index.services(),
        await index.packages({ limit: 10 }),
        index.marketMark(),
      ]);
    const before = await read();
    await index.close();
    index = open();
    expect(await read()).toBe(before);
    // Ids go on after the last one.
    await settle([9], 30);
    expect((await index.entries({}, { limit: 1 })).items[0]!.id).toBe(12);
  });
});

describe("balances", () => {
  it("reads each household's balance from the best block's state", async () => {
    const a = deviceId(0xa);
    const b = deviceId(0xb);
    const best = block(33);
    const state = new Map<string, Uint8Array>([
      [hex(HOUSEHOLDS_KEY), encodeHouseholds([Buffer.from(a, "hex"), Buffer.from(b, "hex")])],
      [hex(balanceKey(a)), encodeBalance(-1_234n)],
    ]);
    await index.close();
    index = open({
      api: {
        bestBlock: async () => best,
        serviceValue: async (at, serviceId, key) => {
          expect(Buffer.compare(at, best.headerHash)).toBe(0);
          return serviceId === ENERGY.serviceId ? (state.get(hex(key)) ?? null) : null;
        },
      },
    });
    expect(await index.balances("energy-trading")).toEqual([
      { service: "energy-trading", account: a, balanceMicros: "-1234", slot: 33, blockHash: hex(best.headerHash) },
      { service: "energy-trading", account: b, balanceMicros: "0", slot: 33, blockHash: hex(best.headerHash) },
    ]);
    expect(await index.balances("telemetry")).toEqual([]);
    expect((await index.balance("energy-trading", b))!.balanceMicros).toBe("0");
    expect(await index.balance("energy-trading", deviceId(0xc))).toBeNull();
    expect(await index.balance("energy-trading", "not hex")).toBeNull();
  });
});

describe("events", () => {
  it("tells listeners of each committed write, and stops at unsubscribe", async () => {
    const events: LedgerEvent[] = [];
    const unsubscribe = index.subscribe((e) => events.push(e));
    const hash = hash32(999);
    index.packageSubmitted({ hash, serviceId: TELEMETRY.serviceId, kind: "envelopes", items: 2, bytes: 10, core: 0, submittedAtMs: 5 });
    await settle([1, 2], 3, [0], index, hash);
    expect(events.map((e) => e.kind)).toEqual(["package", "package", "entry", "entry"]);
    const entry = events[2] as Extract<LedgerEvent, { kind: "entry" }>;
    expect(await index.entry(entry.entry.id)).toEqual(entry.entry);
    unsubscribe();
    await settle([3], 4);
    expect(events).toHaveLength(4);
  });
});
