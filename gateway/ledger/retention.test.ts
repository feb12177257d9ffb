/**
 * The ledger index's retention (index.ts `prune`, ledgerIndexLimits.retentionSlots and
 * receiptEntriesKeptMax): blocks, packages and receipt entries older than the retained slots go,
 * with their index rows; receipt entries past the count bound go, oldest first; energy entries,
 * intervals, devices and their counters stay. Pruning is bounded per transaction, idempotent and
 * survives a restart; pages read across a prune repeat nothing; the file stops growing. Small
 * bounds stand for the real ones; the stores are real LMDB.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open as openLmdb } from "lmdb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BlockDescriptor, NodeApi } from "../../node/api.ts";
import { encodeBlock, headerHash, makeExtrinsic, sealBlock } from "../../node/chain/block.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { type EnergyEntryInput, type IntervalInput, LedgerIndex, type LedgerIndexOptions, ledgerIndexLimits, type RetentionLimits } from "./index.ts";
import { LedgerIndexer } from "./indexer.ts";
import type { EntryFilter } from "./types.ts";

const TELEMETRY = { name: "telemetry", serviceId: 2, codeHash: new Uint8Array(32).fill(2), kinds: ["meter", "inverter"] as const };
const ENERGY = { name: "energy-trading", serviceId: 3, codeHash: new Uint8Array(32).fill(3), kinds: ["meter", "agent"] as const };

let dir: string;
let index: LedgerIndex;

function open(retention: Partial<RetentionLimits>, options: Partial<LedgerIndexOptions> = {}): LedgerIndex {
  return new LedgerIndex({ path: join(dir, "ledger"), services: [TELEMETRY, ENERGY], retention, ...options });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-ledger-retention-"));
});

afterEach(async () => {
  await index.close();
  rmSync(dir, { recursive: true, force: true });
});

const deviceId = (n: number) => n.toString(16).padStart(32, "0");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** A distinct 32-byte value per (tag, n). */
const bytes32 = (tag: number, n: number): Uint8Array => {
  const b = new Uint8Array(32);
  new DataView(b.buffer).setUint32(0, tag);
  new DataView(b.buffer).setUint32(4, n);
  return b;
};
const block = (slot: number): BlockDescriptor => ({ headerHash: bytes32(1, slot), slot });

let packages = 0;
/** Settles a telemetry package accumulated at `slot`, a receipt for each of `devices` with `seqs`. */
async function settle(devices: readonly number[], slot: number, seqs: readonly number[] = [3 * slot, 3 * slot + 1, 3 * slot + 2]): Promise<Uint8Array> {
  const packageHash = bytes32(2, ++packages);
  await index.packageSettled({
    hash: packageHash,
    serviceId: TELEMETRY.serviceId,
    kind: "envelopes",
    block: block(slot),
    receipts: devices.map((d) => ({ deviceId: deviceId(d), seqs })),
    settled: devices.length * seqs.length,
    refused: 0,
    settledAtMs: 1_700_000_000_000 + slot,
  });
  return packageHash;
}

async function writeBlock(slot: number): Promise<void> {
  await index.writeBlock({
    slot,
    hash: hex(block(slot).headerHash),
    parentHash: hex(block(slot - 1).headerHash),
    priorStateRoot: hex(bytes32(3, slot)),
    stateRoot: hex(bytes32(3, slot + 1)),
    author: 0,
    reports: [],
    assurances: 0,
    serviceIds: [],
    seenAtMs: 1_700_000_000_000 + 1_000 * slot,
  });
}

const household = deviceId(0xa);
const energyEntries: EnergyEntryInput[] = [
  { reason: "grid-import", buyer: household, seller: "grid", energyWh: 100, priceMicrosPerKwh: 300_000, amountMicros: 30_000n },
  { reason: "grid-export", buyer: "grid", seller: household, energyWh: 50, priceMicrosPerKwh: 80_000, amountMicros: 4_000n },
];
/** An energy interval settled at `slot`, with two entries. */
const interval = (k: number, slot: number): IntervalInput => ({
  interval: k,
  startMs: k * 900_000,
  endMs: (k + 1) * 900_000,
  settled: true,
  clearingPriceMicrosPerKwh: null,
  tradedWh: 0n,
  orders: 0,
  trades: 0,
  clearedSlot: slot - 1,
  settledSlot: slot,
  entries: energyEntries,
  readAt: { hash: hex(block(slot).headerHash), seenAtMs: 1 },
});

/** Every entry id matching `filter`, newest first, paging by `limit`. */
async function allIds(limit: number, filter: EntryFilter = {}): Promise<number[]> {
  const ids: number[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await index.entries(filter, { limit, ...(before === undefined ? {} : { before }) });
    ids.push(...page.items.map((e) => e.id));
    if (page.next === null) return ids;
    before = page.next;
  }
}

/** Rows in each of the index's databases, read from the store itself (the index is closed and opened again around it). */
async function rowCounts(retention: Partial<RetentionLimits>): Promise<Record<string, number>> {
  await index.close();
  const root = openLmdb({ path: join(dir, "ledger"), maxDbs: 32 });
  const names = [
    "entries",
    "entries-by-device",
    "entries-by-service",
    "entries-by-account",
    "blocks",
    "block-hashes",
    "block-accumulated",
    "packages",
    "package-order",
    "device-stats",
  ];
  const counts = Object.fromEntries(names.map((name) => [name, root.openDB({ name }).getKeysCount()]));
  await root.close();
  index = open(retention);
  return counts;
}

async function allEntries(filter: EntryFilter = {}) {
  return (await index.entries(filter, { limit: 500 })).items;
}

/** Waits for the index's background writes (statuses, registrations): the next awaited write queues behind them. */
async function committed(): Promise<void> {
  await index.skipIntervals({ nextCleared: 0, nextSettled: 0 });
}

describe("retention by slots", () => {
  it("prunes the blocks, packages and receipt entries of slots before the retained ones, with their index rows; energy entries, intervals, devices and their counters stay", async () => {
    index = open({ retentionSlots: 10, receiptEntriesKeptMax: 1_000_000 });
    for (const n of [1, 2, 3])
      index.deviceRegistered({
        deviceId: deviceId(n),
        publicKey: new Uint8Array(32).fill(n),
        kind: "meter",
        serviceId: TELEMETRY.serviceId,
        registeredSlot: 0,
      });
    // A package that failed before any report, submitted before the retained slots' first block was seen: its time says it is old.
    const failed = bytes32(4, 1);
    index.packageSubmitted({
      hash: failed,
      serviceId: TELEMETRY.serviceId,
      kind: "envelopes",
      items: 1,
      bytes: 10,
      core: 0,
      submittedAtMs: 1_700_000_000_000 + 1_000 * 2,
    });
    index.packageStatus(failed, { kind: "failed", code: "JG_ERR_REFINE_PANIC", detail: "x" }, 0);
    const hashes = new Map<number, Uint8Array>();
    for (let slot = 1; slot <= 30; slot++) {
      await writeBlock(slot);
      hashes.set(slot, await settle([1, 2, 3], slot));
      if (slot === 5) await index.writeInterval(interval(7, 5));
    }
    // A package in flight, submitted after the retained slots began: kept.
    const inFlight = bytes32(4, 2);
    index.packageSubmitted({
      hash: inFlight,
      serviceId: TELEMETRY.serviceId,
      kind: "envelopes",
      items: 1,
      bytes: 10,
      core: 1,
      submittedAtMs: 1_700_000_000_000 + 1_000 * 29,
    });
    await committed();
    const devicesBefore = await Promise.all([1, 2, 3].map((n) => index.device(deviceId(n))));
    expect(devicesBefore[0]).toMatchObject({ envelopesSettled: 90, settledHighestSeq: 92, lastSettledSlot: 30 });
    const oldReceipt = (await allEntries({ toSlot: 3 })).find((e) => e.kind === "envelopes")!;
    expect(oldReceipt).toBeDefined();

    // Head at 30, 10 slots kept: 21..30.
    const pruned = await index.prune(30, Number.MAX_SAFE_INTEGER);
    expect(pruned.more).toBe(false);
    // 20 packages of 3 receipts (5 rows each), 20 blocks (block and hash rows) and their 20 accumulated rows, 21 packages (record and order).
    expect(pruned.removed).toBe(20 * 5 + 20 * 2 + 20 + 21 * 2);

    expect((await index.blocks({ limit: 100 })).items.map((b) => b.slot)).toEqual(Array.from({ length: 10 }, (_, i) => 30 - i));
    expect(await index.block(20)).toBeNull();
    expect(await index.block(hex(block(20).headerHash))).toBeNull();
    expect((await index.block(21))!.accumulated).toEqual([hex(hashes.get(21)!)]);
    expect(await index.package(hex(hashes.get(20)!))).toBeNull();
    expect(await index.package(hex(failed))).toBeNull();
    expect((await index.package(hex(inFlight)))!.status).toBe("submitted");
    expect((await index.packages({ limit: 100 })).items.map((p) => p.accumulatedSlot)).toEqual([null, ...Array.from({ length: 10 }, (_, i) => 30 - i)]);

    const receipts = (await allEntries()).filter((e) => e.kind === "envelopes");
    expect(receipts).toHaveLength(30);
    expect(Math.min(...receipts.map((e) => e.slot))).toBe(21);
    // The device index holds no row of a pruned entry: a device's list is its 10 kept receipts.
    expect((await allEntries({ device: deviceId(2) })).map((e) => e.slot)).toEqual(Array.from({ length: 10 }, (_, i) => 30 - i));
    expect(await allIds(7, { service: "telemetry" })).toEqual(receipts.map((e) => e.id));
    expect(await index.entry(oldReceipt.id)).toBeNull();
    // The energy interval settled at slot 5 and its entries are kept.
    expect((await index.interval(7))!.settledSlot).toBe(5);
    expect((await allEntries({ interval: 7 })).map((e) => e.kind)).toEqual(["grid-export", "grid-import"]);
    expect((await allEntries({ account: household })).map((e) => e.slot)).toEqual([5, 5]);
    expect((await index.services()).map((s) => [s.name, s.entries, s.devices])).toEqual([
      ["telemetry", 30, 3],
      ["energy-trading", 2, 0],
    ]);
    // Devices and their counters are totals: unchanged.
    expect(await Promise.all([1, 2, 3].map((n) => index.device(deviceId(n))))).toEqual(devicesBefore);
    // No index row is left behind for what went (the routes skip a dangling one, so only the store shows it).
    expect(await rowCounts({ retentionSlots: 10, receiptEntriesKeptMax: 1_000_000 })).toEqual({
      entries: 12,
      "entries-by-device": 30,
      "entries-by-service": 12,
      "entries-by-account": 2,
      blocks: 10,
      "block-hashes": 10,
      "block-accumulated": 10,
      packages: 11,
      "package-order": 11,
      "device-stats": 3,
    });

    // Again: nothing more to remove, nothing changes.
    const read = async () =>
      JSON.stringify([await index.blocks({ limit: 100 }), await index.packages({ limit: 100 }), await allEntries(), await index.services()]);
    const held = await read();
    expect(await index.prune(30, Number.MAX_SAFE_INTEGER)).toEqual({ removed: 0, more: false });
    expect(await read()).toBe(held);
  });

  it("is driven by the indexer after each block it follows", async () => {
    index = open({ retentionSlots: 3 });
    const author = keyPairFromSeed(new Uint8Array(32).fill(5));
    const chain: { hash: Uint8Array; bytes: Uint8Array }[] = [];
    let parent: Uint8Array = new Uint8Array(32);
    for (let slot = 0; slot <= 10; slot++) {
      const sealed = sealBlock(
        tinyParams,
        { parentHash: parent, priorStateRoot: hash(Uint8Array.of(slot)), slot, authorIndex: slot % 6 },
        makeExtrinsic([], []),
        author,
      );
      parent = headerHash(tinyParams, sealed.header);
      chain.push({ hash: parent, bytes: encodeBlock(tinyParams, sealed) });
    }
    let best = 1;
    let announce: ((b: BlockDescriptor) => void) | null = null;
    const api = {
      bestBlock: async () => ({ headerHash: chain[best]!.hash, slot: best }),
      subscribeBestBlock: async (cb: (b: BlockDescriptor) => void) => {
        announce = cb;
        return () => (announce = null);
      },
      block: async (h: Uint8Array) => chain.find((b) => hex(b.hash) === hex(h))?.bytes ?? null,
      stateRoot: async () => new Uint8Array(32),
      serviceValue: async () => null,
    } as unknown as NodeApi;
    const indexer = new LedgerIndexer({ api, params: tinyParams, index });
    await indexer.start();
    try {
      for (let slot = 2; slot <= 10; slot++) {
        await settle([1], slot);
        best = slot;
        announce!({ headerHash: chain[slot]!.hash, slot });
        await indexer.idle();
        expect((await index.blocks({ limit: 20 })).items.map((b) => b.slot)).toEqual(Array.from({ length: Math.min(3, slot) }, (_, i) => slot - i));
        expect((await allEntries()).map((e) => e.slot)).toEqual(Array.from({ length: Math.min(3, slot - 1) }, (_, i) => slot - i));
      }
    } finally {
      await indexer.stop();
    }
  });
});

describe("retention by count", () => {
  it("keeps at most receiptEntriesKeptMax receipt entries, the newest, whatever their slot; energy entries are not counted out", async () => {
    index = open({ retentionSlots: 1_000_000, receiptEntriesKeptMax: 50 });
    for (let p = 1; p <= 20; p++) {
      await settle(
        Array.from({ length: 10 }, (_, i) => i),
        p,
      );
      if (p % 5 === 0) await index.writeInterval(interval(p, p));
    }
    // 200 receipts and 8 energy entries: ids 1..208.
    expect((await index.entries({}, { limit: 1 })).items[0]!.id).toBe(208);
    await index.prune(20, Number.MAX_SAFE_INTEGER);
    const held = await allEntries();
    const receipts = held.filter((e) => e.kind === "envelopes");
    // Rows whose first id is at least 209 - 50 = 159 are kept: whole packages, at most 50 receipts.
    expect(receipts.length).toBeLessThanOrEqual(50);
    expect(Math.min(...receipts.map((e) => e.id))).toBeGreaterThanOrEqual(159);
    expect(receipts.length).toBe(40);
    expect(receipts.map((e) => e.slot).sort((a, b) => a - b)[0]).toBe(17);
    expect(held.filter((e) => e.kind !== "envelopes").map((e) => e.interval)).toEqual([20, 20, 15, 15, 10, 10, 5, 5]);
    // Blocks and packages are bounded by slots only: the 20 packages stay.
    expect((await index.packages({ limit: 100 })).items).toHaveLength(20);
    expect((await index.services()).find((s) => s.name === "telemetry")!.entries).toBe(40);
  });
});

describe("reading across a prune", () => {
  it("pages on without repeats: a cursor at a pruned id goes on with what is left, a pruned id is not found", async () => {
    index = open({ retentionSlots: 50, receiptEntriesKeptMax: 1_000_000 });
    for (let slot = 1; slot <= 100; slot++) {
      await settle([slot % 4, 100 + slot], slot);
      if (slot === 30) await index.writeInterval(interval(3, 30));
    }
    // Ids: slot s ≤ 30 holds 2s - 1 and 2s, the interval 61 and 62, slot s > 30 2s + 1 and 2s + 2; the first page ends at slot 41.
    const first = await index.entries({}, { limit: 120 });
    const firstDevice = await index.entries({ device: deviceId(1) }, { limit: 20 });
    // The prune runs between pages: the next cursors point into what it removed.
    await index.prune(100, Number.MAX_SAFE_INTEGER);
    expect(first.next).not.toBeNull();
    expect(await index.entry(first.next! - 1)).toBeNull();
    const rest: number[] = [];
    let before = first.next;
    while (before !== null) {
      const page = await index.entries({}, { limit: 7, before });
      rest.push(...page.items.map((e) => e.id));
      before = page.next;
    }
    const ids = [...first.items.map((e) => e.id), ...rest];
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    // Below the cursor only the energy entries (slot 30) were left.
    expect(rest).toHaveLength(2);
    for (const id of rest) expect((await index.entry(id))!.interval).toBe(3);
    // The same through the device index.
    const deviceRest = await index.entries({ device: deviceId(1) }, { limit: 20, before: firstDevice.next! });
    const deviceIds = [...firstDevice.items.map((e) => e.id), ...deviceRest.items.map((e) => e.id)];
    expect(new Set(deviceIds).size).toBe(deviceIds.length);
    expect(deviceRest.items.every((e) => e.slot >= 51)).toBe(true);
    // A cursor at an id long gone, and one below everything.
    expect((await index.entries({}, { limit: 10, before: 5 })).items).toEqual([]);
    expect((await index.entries({ device: deviceId(1) }, { limit: 10, before: 5 })).next).toBeNull();
    expect((await index.blocks({ limit: 10, before: 3 })).items).toEqual([]);
  });
});

describe("bounded, idempotent, restart-safe", () => {
  it("removes at most pruneRowsPerWriteMax rows a transaction (a package's receipts whole), goes on after a restart, and never hands out a pruned id or package order again", async () => {
    const retention = { retentionSlots: 1, receiptEntriesKeptMax: 1_000_000, pruneRowsPerWriteMax: 25 };
    index = open(retention);
    for (let slot = 1; slot <= 9; slot++)
      await settle(
        Array.from({ length: 10 }, (_, i) => i),
        slot,
      );
    const devicesBefore = await index.device(deviceId(3));
    // A package's receipts cost 12 rows (10 device rows, the row, its service row): two a transaction.
    const step = await index.pruneStep(100);
    expect(step.more).toBe(true);
    expect(step.removed).toBeLessThanOrEqual(25);
    expect((await allEntries()).map((e) => e.slot).at(-1)).toBe(3);
    // A bound below one package's rows still takes one package whole.
    await index.close();
    index = open({ ...retention, pruneRowsPerWriteMax: 5 });
    expect(await index.pruneStep(100)).toEqual({ removed: 12, more: true });
    expect((await allEntries()).map((e) => e.slot).at(-1)).toBe(4);
    // A restart between batches: the rest goes, nothing twice.
    await index.close();
    index = open(retention);
    const rest = await index.prune(100, 2);
    expect(rest.more).toBe(true);
    await index.prune(100, Number.MAX_SAFE_INTEGER);
    expect(await allEntries()).toEqual([]);
    expect((await index.packages({ limit: 100 })).items).toEqual([]);
    expect(await index.device(deviceId(3))).toEqual(devicesBefore);
    // Every row gone, and again after a restart: ids and orders go on from where they were.
    await index.close();
    index = open(retention);
    await settle([1], 200);
    expect((await allEntries()).map((e) => e.id)).toEqual([91]);
    index.packageSubmitted({ hash: bytes32(5, 1), serviceId: TELEMETRY.serviceId, kind: "envelopes", items: 1, bytes: 1, core: 0, submittedAtMs: 0 });
    await committed();
    const listed = await index.packages({ limit: 1 });
    expect(listed.items[0]!.hash).toBe(hex(bytes32(5, 1)));
    const older = await index.packages({ limit: 10, before: 11 });
    expect(older.items.map((p) => p.accumulatedSlot)).toEqual([200]);
  });
});

describe("a bound of one row", () => {
  it("still moves on every transaction: each takes its first row whatever it costs", async () => {
    index = open({ retentionSlots: 2, pruneRowsPerWriteMax: 1 });
    for (let slot = 1; slot <= 6; slot++) {
      await writeBlock(slot);
      await settle([1, 2], slot);
      if (slot === 2) await index.writeInterval(interval(1, 2));
    }
    let writes = 0;
    for (let more = true; more; writes++) more = (await index.pruneStep(6)).more;
    // Receipt rows (4), the energy rows passed (2), blocks (4), accumulated rows (4), packages (4): one each at most.
    expect(writes).toBeLessThanOrEqual(4 + 2 + 4 + 4 + 4 + 1);
    expect((await index.blocks({ limit: 10 })).items.map((b) => b.slot)).toEqual([6, 5]);
    expect((await allEntries()).map((e) => e.slot)).toEqual([6, 6, 5, 5, 2, 2]);
  });
});

describe("disk use", () => {
  it("stops growing once pruning keeps up: LMDB reuses the pages it frees", async () => {
    /** The file's highest page after each of 24 cycles of 5 packages of 1,000 receipts, each cycle followed by a prune. */
    const cycles = async (): Promise<number[]> => {
      const devices = Array.from({ length: 1_000 }, (_, i) => i);
      const lastPages: number[] = [];
      let slot = 0;
      for (let cycle = 0; cycle < 24; cycle++) {
        for (let p = 0; p < 5; p++) await settle(devices, ++slot);
        await index.prune(slot, Number.MAX_SAFE_INTEGER);
        lastPages.push(index.fileStats().lastPage);
      }
      return lastPages;
    };
    index = open({ retentionSlots: 1_000_000, receiptEntriesKeptMax: 5_000 });
    const pruned = await cycles();
    await index.close();
    rmSync(join(dir, "ledger"), { recursive: true, force: true });
    index = open({ retentionSlots: 1_000_000, receiptEntriesKeptMax: 1_000_000 });
    const kept = await cycles();
    // 120,000 receipts written, at most 5,000 held: after the first cycles the file's highest page stays put.
    expect(Math.max(...pruned.slice(8))).toBeLessThanOrEqual(pruned[7]! * 1.1);
    // Kept, the same writes go on growing the file, to several times the pruned one's (measured: 838 pages pruned from the second cycle on, 5,922 kept).
    expect(kept[23]!).toBeGreaterThan(1.5 * kept[7]!);
    expect(kept[23]!).toBeGreaterThan(3 * pruned[23]!);
  });
});

it("defaults: 7 days of 6-second slots, 20 million receipts", () => {
  expect(ledgerIndexLimits.retentionSlots).toBe((7 * 24 * 3600) / 6);
  expect(ledgerIndexLimits.receiptEntriesKeptMax).toBe(20_000_000);
  expect(ledgerIndexLimits.pruneRowsPerWriteMax).toBeLessThanOrEqual(10_000);
});
