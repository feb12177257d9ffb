/**
 * Block-aligned packing (gateway/settlement/scheduler.ts): once the gateway knows the block clock and how
 * long refine takes, it packs once per slot, just in time for the next block, one package per
 * core; before that it packs every batch deadline. A fake node drives the clock and the statuses
 * (the real node is in gateway.test.ts and bench/gateway.ts); the log is the real LMDB one.
 *
 * The load tests run on vitest's fake clock (timers, performance.now, Date): the fake node's
 * blocks and refines, the devices' sends and the settlement's timers happen at exact simulated
 * times, and the log's LMDB writes (real, asynchronous) are awaited before the clock moves on.
 * So what the settlement sees, and what these tests assert, is the same on any machine at any
 * load: with real timers, a busy machine delayed refines past blocks and appends past slots
 * (3 packages in a packing where 2 were expected, on a 2-core machine).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkPackage } from "@typeberry/lib/block";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type DeviceId, signingBytes } from "../devices/envelope.ts";
import type { BlockDescriptor, NodeApi, WorkPackageStatus } from "../node/api.ts";
import { tinyParams } from "../node/chain/params.ts";
import { encodeOutcome, OutcomeBuilder } from "../services/common/outcome.ts";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { decode } from "../node/codec/jam.ts";
import { decodeEnvelopesItem } from "../services/telemetry/payload.ts";
import { DurableLog, type LogEntry } from "./log.ts";
import { telemetryService } from "./services/telemetry.ts";
import { type DeviceNotice, packageItemsMax, packsAnother, Settlement, settlementLimits, splitAtDevices } from "./settlement/index.ts";

const SLOT_MS = 300;
const BATCH_DEADLINE_MS = 20;
const REFINE_MS = 40;
/** The simulated load: DEVICES devices each send an envelope every ROUND_MS (2,000 envelopes/s, 600 a slot, once all have joined: see appendRounds). */
const DEVICES = 40;
const ROUND_MS = 20;
/** What the fake clock replaces: not setImmediate, which lmdb-js uses to start its writes, and which waits for them here. */
const FAKED: ("setTimeout" | "clearTimeout" | "setInterval" | "clearInterval" | "performance" | "Date")[] = [
  "setTimeout",
  "clearTimeout",
  "setInterval",
  "clearInterval",
  "performance",
  "Date",
];

interface Submitted {
  readonly at: number;
  readonly slot: number;
  readonly core: number;
}

/**
 * A node that authors a block every SLOT_MS, refines each package in `refineMs`, reports at most
 * one refined package per core in each block (as a JAM core takes one report per block) and
 * accumulates it in the next one, settling every envelope.
 */
function fakeNode(refineMs = REFINE_MS, refuseFirst = 0, refuseSubscriptionsFirst = 0) {
  let slot = 0;
  let refused = 0;
  let refusedSubscriptions = 0;
  const blockSubscribers: ((b: BlockDescriptor) => void)[] = [];
  const statusSubscribers = new Map<string, (s: WorkPackageStatus) => void>();
  const lastStatus = new Map<string, WorkPackageStatus>();
  const emit = (hex: string, status: WorkPackageStatus) => {
    lastStatus.set(hex, status);
    statusSubscribers.get(hex)?.(status);
  };
  const refinedOn = new Map<number, { hex: string; slot: number }[]>();
  const reported: string[] = [];
  const submitted: Submitted[] = [];
  /** Each submitted package's bytes, as the node got them. */
  const packages: Uint8Array[] = [];
  /** Per package: the slot it was refined in (the last block before) and the slot of the block that reported it. */
  const lag: { refinedSlot: number; reportedSlot: number }[] = [];
  const block = { headerHash: new Uint8Array(32), slot: 0 };
  /** Block n comes at startedAt + n × SLOT_MS. */
  const startedAt = performance.now();
  const timer = setInterval(() => {
    slot++;
    const at = { headerHash: new Uint8Array(32).fill(slot % 256), slot };
    const report = { core: 0, reportHash: new Uint8Array(32), reportedIn: at };
    for (const hex of reported.splice(0)) emit(hex, { kind: "accumulated", ...report, availableIn: at, accumulatedIn: at });
    for (const queue of refinedOn.values()) {
      const next = queue.shift();
      if (next === undefined) continue;
      emit(next.hex, { kind: "reported", ...report });
      reported.push(next.hex);
      lag.push({ refinedSlot: next.slot, reportedSlot: slot });
    }
    for (const s of blockSubscribers) s(at);
  }, SLOT_MS);
  const api = {
    parameters: async () => ({ slot_period_sec: SLOT_MS / 1000 }),
    bestBlock: async () => ({ ...block, slot }),
    stateRoot: async () => new Uint8Array(32),
    serviceValue: async () => encodeOutcome(new OutcomeBuilder(new Uint8Array(32)).finish(slot)),
    subscribeBestBlock: async (cb: (b: BlockDescriptor) => void) => {
      blockSubscribers.push(cb);
      return () => {};
    },
    submitWorkPackage: async (core: number, bytes: Uint8Array) => {
      if (refused < refuseFirst) {
        refused++;
        throw Object.assign(new Error("core queue full"), { code: "JG_ERR_QUEUE_FULL" });
      }
      const h = hash(bytes);
      const hex = Buffer.from(h).toString("hex");
      submitted.push({ at: performance.now(), slot, core });
      packages.push(bytes.slice());
      setTimeout(() => {
        emit(hex, { kind: "refined", core, reportHash: new Uint8Array(32) });
        const queue = refinedOn.get(core) ?? [];
        queue.push({ hex, slot });
        refinedOn.set(core, queue);
      }, refineMs);
      return h;
    },
    // As the node does: the current status at once, then each change; refuses the first few (a node over its subscription bound).
    subscribeWorkPackageStatus: async (h: Uint8Array, cb: (s: WorkPackageStatus) => void) => {
      if (refusedSubscriptions < refuseSubscriptionsFirst) {
        refusedSubscriptions++;
        throw new Error("more than 4096 status subscriptions");
      }
      const hex = Buffer.from(h).toString("hex");
      statusSubscribers.set(hex, cb);
      const current = lastStatus.get(hex);
      if (current !== undefined) cb(current);
      return () => {};
    },
  } as unknown as NodeApi;
  return {
    api,
    submitted,
    packages,
    lag,
    startedAt,
    refusals: () => refused,
    subscriptionRefusals: () => refusedSubscriptions,
    currentSlot: () => slot,
    stop: () => clearInterval(timer),
  };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  // Last made, first stopped: the settlement and node before the log they write to.
  for (const c of cleanup.splice(0).reverse()) await c();
});

/**
 * A real log in a temp dir, closed and removed after the test. `ioIdle` resolves once none of the
 * settlement's writes to it (markSubmitted, markPending, remove) is still on its way to LMDB.
 */
function openLog(): { log: DurableLog; ioIdle: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "jamgate-packing-"));
  const log = new DurableLog(join(dir, "log"));
  cleanup.push(async () => {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let writing = 0;
  const counted =
    <A extends unknown[], R>(write: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      writing++;
      return write(...args).finally(() => writing--);
    };
  log.markSubmitted = counted(log.markSubmitted.bind(log));
  log.markPending = counted(log.markPending.bind(log));
  log.remove = counted(log.remove.bind(log));
  // Microtasks all run before a setImmediate callback: by then a timer's callback has started
  // the writes it makes, and a write's continuation the write it makes next.
  const ioIdle = async () => {
    do await new Promise((resolve) => setImmediate(resolve));
    while (writing > 0);
  };
  return { log, ioIdle };
}

/** A Settlement of the telemetry service on `node` and `log`; stopped after the test. */
function settlementOn(
  node: ReturnType<typeof fakeNode>,
  log: DurableLog,
  notices: DeviceNotice[] = [],
  packingCores?: (slot: number | null) => readonly number[] | null,
): Settlement {
  const settlement = new Settlement({
    ...(packingCores === undefined ? {} : { packingCores }),
    api: node.api,
    params: tinyParams,
    log,
    signer: keyPairFromSeed(new Uint8Array(32).fill(1)),
    services: new Map([[2, telemetryService(2)]]),
    publicKeyOf: () => new Uint8Array(32),
    notify: (n) => void notices.push(n),
    batchDeadlineMs: BATCH_DEADLINE_MS,
  });
  cleanup.push(async () => {
    // Fake timers: stop() waits for no packing here, and nothing awaits it.
    void settlement.stop();
    node.stop();
  });
  return settlement;
}

const deviceIdOf = (d: number) => `${d.toString(16).padStart(4, "0")}${"0".repeat(28)}` as DeviceId;

/**
 * Every envelope the simulated devices send, one round after another, appended to `log`
 * beforehand in real time (its group commit waits on a timer). The settlement is handed each
 * round at its time; what it does with them is the same as if they had just been appended.
 * The devices join one after another over the first slot, as a fleet connects: the packages
 * made before the first block then hold the devices that had joined, and the others have
 * envelopes to pack while the cores still hold those packages.
 */
async function appendRounds(log: DurableLog, rounds: number): Promise<LogEntry[][]> {
  const joinRound = (d: number) => Math.floor((d * SLOT_MS) / DEVICES / ROUND_MS);
  return Promise.all(
    Array.from({ length: rounds }, (_, round) =>
      Promise.all(
        Array.from({ length: DEVICES }, (_, d) => d)
          .filter((d) => joinRound(d) <= round)
          .map((d) => {
            const deviceId = deviceIdOf(d);
            const seq = round - joinRound(d);
            return log.append({
              deviceId,
              seq,
              signingBytes: signingBytes({ version: 1, device: deviceId, seq, kind: "meter.reading", timeMs: Date.now(), body: new Uint8Array(200) }),
              signature: new Uint8Array(64),
              serviceId: 2,
              acceptedAtMs: Date.now(),
            });
          }),
      ),
    ),
  );
}

/**
 * Moves the fake clock on by `ms`, or until `until()` holds: each step fires the next timer,
 * then waits (`ioIdle`) for the log's writes it started. The fake clock stands still meanwhile,
 * so however long LMDB takes, the settlement sees it take no time.
 */
async function runClock(ioIdle: () => Promise<void>, ms: number, until: () => boolean = () => false): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end && !until()) {
    await vi.advanceTimersToNextTimerAsync();
    await ioIdle();
  }
}

interface Simulation {
  readonly node: ReturnType<typeof fakeNode>;
  /** The submissions, grouped by packing (a packing's packages are all submitted at one moment of the fake clock). */
  readonly packings: Submitted[][];
  /** Envelopes handed to the settlement. */
  readonly added: number;
}

/**
 * On the fake clock: a fake node (refining in `refineMs`, refusing the first `refuseFirst`
 * packages and `refuseSubscriptionsFirst` status subscriptions) and a Settlement on it, while
 * DEVICES devices each send an envelope every ROUND_MS for `slots` slots; then, the devices
 * quiet, on until `until(envelopes added)` holds or `moreSlotsMax` more slots have passed.
 */
async function simulate(options: {
  slots: number;
  refuseFirst?: number;
  refuseSubscriptionsFirst?: number;
  notices?: DeviceNotice[];
  until?: (added: number) => boolean;
  moreSlotsMax?: number;
  packingCores?: (slot: number | null) => readonly number[] | null;
}): Promise<Simulation> {
  const { log, ioIdle } = openLog();
  const rounds = await appendRounds(log, (options.slots * SLOT_MS) / ROUND_MS);
  vi.useFakeTimers({ toFake: FAKED });
  const node = fakeNode(REFINE_MS, options.refuseFirst, options.refuseSubscriptionsFirst);
  const settlement = settlementOn(node, log, options.notices, options.packingCores);
  settlement.start();
  let added = 0;
  const send = () => {
    const round = rounds.shift();
    if (round === undefined) return;
    for (const entry of round) settlement.add(entry);
    added += round.length;
  };
  send();
  const sends = setInterval(send, ROUND_MS);
  await runClock(ioIdle, options.slots * SLOT_MS);
  clearInterval(sends);
  await runClock(ioIdle, (options.moreSlotsMax ?? 0) * SLOT_MS, () => options.until?.(added) ?? true);
  const packings: Submitted[][] = [];
  for (const s of node.submitted) {
    const last = packings.at(-1);
    if (last !== undefined && s.at === last[0]!.at) last.push(s);
    else packings.push([s]);
  }
  return { node, packings, added };
}

describe("packing", () => {
  it("splits a package's records into items at device boundaries, about equal in length", () => {
    const records = (counts: number[]) =>
      counts.flatMap((n, d) => Array.from({ length: n }, (_, seq) => ({ deviceId: `d${String(d).padStart(3, "0")}`, seq })));
    const lengths = (r: { deviceId: string }[][]) => r.map((part) => part.length);
    expect(lengths(splitAtDevices(records([3, 3, 3, 3]), 2))).toEqual([6, 6]);
    expect(lengths(splitAtDevices(records([5, 2, 2, 3]), 2))).toEqual([7, 5]); // the cut at 6 moves to where device 1 ends
    expect(lengths(splitAtDevices(records([12]), 2))).toEqual([12]); // one device: one item
    expect(lengths(splitAtDevices(records([3, 3, 3]), 1))).toEqual([9]);
    expect(lengths(splitAtDevices(records([2, 2, 2, 2, 2, 2]), 3))).toEqual([4, 4, 4]);
    // The refine threads are shared among a packing's packages: one package alone is split across
    // both, two packages get one item each (so neither waits for the other's erasure coding).
    expect([packageItemsMax(2, 1), packageItemsMax(2, 2), packageItemsMax(2, 3), packageItemsMax(4, 2), packageItemsMax(1, 1), packageItemsMax(2, 0)]).toEqual([
      2, 1, 1, 2, 1, 2,
    ]);
    for (const parts of [1, 2, 3]) {
      const r = records([4, 1, 7, 2, 2, 9]);
      const split = splitAtDevices(r, parts);
      expect(split.flat()).toEqual(r);
      for (let i = 1; i < split.length; i++) expect(split[i]![0]!.deviceId).not.toBe(split[i - 1]!.at(-1)!.deviceId);
    }
  });

  it("packs every batch deadline until it knows refine's time, then once per slot, one package per core, just in time for the next block", async () => {
    const { node, packings } = await simulate({ slots: 12 });
    // Before the first package was refined there was no lead yet: it packed every deadline, one
    // package a packing, up to the bound on packages not yet reported.
    const firstSlot = packings.filter((p) => p[0]!.slot === 0);
    expect(firstSlot.length).toBe(settlementLimits.packagesUnreportedMax);
    for (const p of firstSlot) expect(p).toHaveLength(1);
    // The last 6 slots: aligned. One packing in each slot (every 20 ms would be ~15 a slot), each
    // one package per core on distinct cores, made after the slot's middle (just in time: the
    // lead is refine's 40 ms plus the margin) and early enough to be refined before the block.
    const lastSlots = packings.filter((p) => p[0]!.slot >= node.currentSlot() - 6);
    expect(lastSlots.map((p) => p[0]!.slot)).toEqual(Array.from({ length: 6 }, (_, i) => node.currentSlot() - 6 + i));
    for (const p of lastSlots) {
      expect(p).toHaveLength(tinyParams.coresCount);
      expect(new Set(p.map((s) => s.core)).size).toBe(tinyParams.coresCount);
      const intoSlotMs = (p[0]!.at - node.startedAt) % SLOT_MS;
      expect(intoSlotMs).toBeGreaterThan(SLOT_MS / 2);
      expect(intoSlotMs).toBeLessThanOrEqual(SLOT_MS - REFINE_MS);
    }
  });

  it("drains the cores' backlog of refined packages instead of keeping it: later, each package is reported in the first block after its refine", async () => {
    // Before the first block, packing every deadline queues more packages than the cores report
    // in one block (up to packagesUnreportedMax). Packing for every core at every slot would keep
    // that queue, one block of latency for every package after; packing only for free cores drains it.
    const { node } = await simulate({ slots: 12 });
    const late = node.lag.filter((l) => l.refinedSlot >= node.currentSlot() - 6);
    expect(late.length).toBeGreaterThanOrEqual(6);
    for (const l of late) expect(l.reportedSlot).toBe(l.refinedSlot + 1);
    expect(node.lag.some((l) => l.reportedSlot > l.refinedSlot + 1)).toBe(true); // there was a backlog to drain
  });

  it("drains a backlog on the one core it packs for (a cluster gateway's share): later, each package is reported in the first block after its refine", async () => {
    // With a core of its own only, no other core is free while its core holds a package: packing
    // one for it at every block anyway kept the startup backlog, a block of latency for every package after.
    const { node } = await simulate({ slots: 14, packingCores: () => [1] });
    expect(node.submitted.every((s) => s.core === 1)).toBe(true);
    expect(node.lag.some((l) => l.reportedSlot > l.refinedSlot + 1)).toBe(true); // there was a backlog to drain
    const late = node.lag.filter((l) => l.refinedSlot >= node.currentSlot() - 5);
    expect(late.length).toBeGreaterThanOrEqual(3);
    for (const l of late) expect(l.reportedSlot).toBe(l.refinedSlot + 1);
  });

  it("makes one more package past the cores' share only for a full package or, aligned to a block, for a backlog", () => {
    const min = settlementLimits.backlogPackageEnvelopesMin;
    const p = { aligned: true, made: 1, parts: 1, pending: min, fullPending: false };
    expect(packsAnother({ ...p, made: 0 })).toBe(true); // within the share
    expect(packsAnother(p)).toBe(true); // a backlog: one more package
    expect(packsAnother({ ...p, pending: min - 1 })).toBe(false); // a small rest waits for the next block
    expect(packsAnother({ ...p, made: 2 })).toBe(false); // one backlog package a packing, not more
    expect(packsAnother({ ...p, made: 2, fullPending: true })).toBe(true); // a full package goes at once
    expect(packsAnother({ ...p, aligned: false })).toBe(false); // packing every deadline: no backlog package
    expect(packsAnother({ ...p, parts: 2, made: 2, pending: 5 * min })).toBe(true);
  });

  it("builds each package, and each of its items, from its own envelopes (one payload buffer is reused for all)", async () => {
    // Two rounds of 2,500 envelopes from 50 devices, each pending at once: packages of two items.
    const { log, ioIdle } = openLog();
    const appended: string[] = [];
    const round = (from: number) =>
      Promise.all(
        Array.from({ length: 50 * 50 }, (_, i) => {
          const seq = from + Math.floor(i / 50);
          const d = i % 50;
          const deviceId = deviceIdOf(d);
          appended.push(`${deviceId}/${seq}`);
          return log.append({
            deviceId,
            seq,
            signingBytes: signingBytes({ version: 1, device: deviceId, seq, kind: "meter.reading", timeMs: Date.now(), body: new Uint8Array(200).fill(seq) }),
            signature: new Uint8Array(64).fill(d),
            serviceId: 2,
            acceptedAtMs: Date.now(),
          });
        }),
      );
    const [first, second] = [await round(0), await round(50)];
    vi.useFakeTimers({ toFake: FAKED });
    const node = fakeNode();
    const settlement = settlementOn(node, log);
    // Each package's items, as "device/seq" lists, decoded once.
    const items: string[][] = [];
    let decodedPackages = 0;
    const packed = () => {
      for (; decodedPackages < node.packages.length; decodedPackages++) {
        const p: WorkPackage = decode(WorkPackage.Codec, node.packages[decodedPackages]!, tinyParams.spec);
        for (const item of p.items) {
          const records = decodeEnvelopesItem(item.payload.raw);
          if (!records.ok) throw new Error(records.error);
          items.push(records.value.map((r) => `${Buffer.from(r.fields.deviceId).toString("hex")}/${r.fields.seq}`));
        }
      }
      return items.flat().length;
    };
    for (const entry of first) settlement.add(entry);
    settlement.start();
    await runClock(ioIdle, 10 * SLOT_MS, () => node.packages.length >= 1);
    for (const entry of second) settlement.add(entry);
    await runClock(ioIdle, 50 * SLOT_MS, () => packed() >= appended.length);
    expect(packed()).toBe(appended.length);
    expect(node.packages.length).toBeGreaterThanOrEqual(2);
    expect(items.length).toBeGreaterThan(node.packages.length); // some package had two items
    expect(new Set(items.flat())).toEqual(new Set(appended)); // every envelope once, none overwritten by a later item's
    for (const item of items) expect(item.length).toBeGreaterThan(0);
  });

  it("packs, as one of three gateways sharing core 1, only for the blocks of its turn, and settles every envelope once", async () => {
    // cluster/members.ts coresFor: the third of three gateways on a core packs for blocks at slots ≡ 2 (mod 3).
    const turn = (slot: number | null) => (slot === null || slot % 3 === 2 ? [1] : []);
    const notices: DeviceNotice[] = [];
    const told = () => notices.reduce((n, x) => n + (x.kind === "receipt" ? x.seqs.length : 1), 0);
    const { node, packings, added } = await simulate({ slots: 15, packingCores: turn, notices, until: (n) => told() >= n, moreSlotsMax: 30 });
    expect(told()).toBe(added);
    expect(notices.filter((n) => n.kind === "error")).toEqual([]);
    expect(node.submitted.every((s) => s.core === 1)).toBe(true);
    // Once aligned (the fake node's block every SLOT_MS and a refine time known): a packing only
    // in the slot before a block of its turn, and each package reported in that block.
    const aligned = packings.filter((p) => p[0]!.slot >= 6);
    expect(aligned.length).toBeGreaterThanOrEqual(4);
    for (const p of aligned) expect((p[0]!.slot + 1) % 3).toBe(2);
    const late = node.lag.filter((l) => l.refinedSlot >= 6);
    expect(late.length).toBeGreaterThanOrEqual(4);
    for (const l of late) expect(l.reportedSlot).toBe(l.refinedSlot + 1);
  });

  it("puts the envelopes of a package the node refuses back, and settles every envelope once", async () => {
    // The refused ones are retried after 0.5 s, then 1 s, and settle two blocks after they go.
    const node = await expectEachSettledOnce({ refuseFirst: 2 });
    expect(node.refusals()).toBe(2);
  });

  it("follows a package again when the node refuses to subscribe to its status, and settles every envelope once", async () => {
    const node = await expectEachSettledOnce({ refuseSubscriptionsFirst: 3 });
    expect(node.subscriptionRefusals()).toBe(3);
  });
});

/** Loads a fake node for 6 slots, then runs on (up to 50 slots of the fake clock) until every envelope is told, and checks each got one receipt and none an error. */
async function expectEachSettledOnce(refusing: { refuseFirst?: number; refuseSubscriptionsFirst?: number }): Promise<ReturnType<typeof fakeNode>> {
  const notices: DeviceNotice[] = [];
  const told = () => notices.reduce((n, x) => n + (x.kind === "receipt" ? x.seqs.length : 1), 0);
  const run = await simulate({ slots: 6, ...refusing, notices, until: (added) => told() >= added, moreSlotsMax: 50 });
  const receipts = notices.flatMap((n) => (n.kind === "receipt" ? n.seqs.map((seq) => `${n.deviceId}/${seq}`) : []));
  expect(notices.filter((n) => n.kind === "error")).toEqual([]);
  expect(new Set(receipts).size).toBe(receipts.length);
  expect(receipts.length).toBe(run.added);
  return run.node;
}
