/**
 * Block-aligned packing (Settlement.packDelayMs): once the gateway knows the block clock and how
 * long refine takes, it packs once per slot, just in time for the next block, one package per
 * core; before that it packs every batch deadline. A fake node drives the clock and the statuses
 * (the real node is in gateway.test.ts and bench/gateway.ts); the log is the real LMDB one.
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
import { DurableLog } from "./log.ts";
import { telemetryService } from "./services/telemetry.ts";
import { type DeviceNotice, packageItemsMax, packsAnother, Settlement, settlementLimits, splitAtDevices } from "./settlement.ts";

const SLOT_MS = 300;
const BATCH_DEADLINE_MS = 20;
const REFINE_MS = 40;

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
  return { api, submitted, packages, lag, appendedSeqs: [] as number[], refusals: () => refused, subscriptionRefusals: () => refusedSubscriptions, currentSlot: () => slot, stop: () => clearInterval(timer) };
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/** Runs a Settlement against `node` while 40 devices each send an envelope every 10 ms for `slots` slots; returns the submissions grouped by packing. */
/** A Settlement of the telemetry service on `node`, with a real log in a temp dir; stopped and removed after the test. */
function settlementOn(node: ReturnType<typeof fakeNode>, notices: DeviceNotice[] = []): { settlement: Settlement; log: DurableLog } {
  const dir = mkdtempSync(join(tmpdir(), "jamgate-packing-"));
  const log = new DurableLog(join(dir, "log"));
  const settlement = new Settlement({
    api: node.api,
    params: tinyParams,
    log,
    signer: keyPairFromSeed(new Uint8Array(32).fill(1)),
    services: new Map([[2, telemetryService(2)]]),
    publicKeyOf: () => new Uint8Array(32),
    notify: (n) => notices.push(n),
    batchDeadlineMs: BATCH_DEADLINE_MS,
  });
  cleanup.push(async () => {
    settlement.stop();
    node.stop();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { settlement, log };
}

async function load(node: ReturnType<typeof fakeNode>, slots: number, notices: DeviceNotice[] = []): Promise<Submitted[][]> {
  const { settlement, log } = settlementOn(node, notices);
  settlement.start();
  const until = performance.now() + slots * SLOT_MS;
  for (let seq = 0; performance.now() < until; seq++) {
    // A round's appends go together, as a gateway's do (the log commits them in one transaction).
    const round = Array.from({ length: 40 }, async (_, d) => {
      const deviceId = `${d.toString(16).padStart(4, "0")}${"0".repeat(28)}` as DeviceId;
      node.appendedSeqs.push(seq);
      settlement.add(await log.append({ deviceId, seq, signingBytes: signingBytes({ version: 1, device: deviceId, seq, kind: "meter.reading", timeMs: Date.now(), body: new Uint8Array(200) }), signature: new Uint8Array(64), serviceId: 2, acceptedAtMs: Date.now() }));
    });
    await Promise.all(round);
    await new Promise((r) => setTimeout(r, 10));
  }
  // Group submissions made in one packing: aligned packings are a slot apart, deadline ones 20 ms.
  const packings: Submitted[][] = [];
  for (const s of node.submitted) {
    const last = packings.at(-1);
    if (last !== undefined && s.at - last.at(-1)!.at < 100) last.push(s);
    else packings.push([s]);
  }
  return packings;
}

describe("packing", () => {
  it("splits a package's records into items at device boundaries, about equal in length", () => {
    const records = (counts: number[]) => counts.flatMap((n, d) => Array.from({ length: n }, (_, seq) => ({ deviceId: `d${String(d).padStart(3, "0")}`, seq })));
    const lengths = (r: { deviceId: string }[][]) => r.map((part) => part.length);
    expect(lengths(splitAtDevices(records([3, 3, 3, 3]), 2))).toEqual([6, 6]);
    expect(lengths(splitAtDevices(records([5, 2, 2, 3]), 2))).toEqual([7, 5]); // the cut at 6 moves to where device 1 ends
    expect(lengths(splitAtDevices(records([12]), 2))).toEqual([12]); // one device: one item
    expect(lengths(splitAtDevices(records([3, 3, 3]), 1))).toEqual([9]);
    expect(lengths(splitAtDevices(records([2, 2, 2, 2, 2, 2]), 3))).toEqual([4, 4, 4]);
    // The refine threads are shared among a packing's packages: one package alone is split across
    // both, two packages get one item each (so neither waits for the other's erasure coding).
    expect([packageItemsMax(2, 1), packageItemsMax(2, 2), packageItemsMax(2, 3), packageItemsMax(4, 2), packageItemsMax(1, 1), packageItemsMax(2, 0)]).toEqual([2, 1, 1, 2, 1, 2]);
    for (const parts of [1, 2, 3]) {
      const r = records([4, 1, 7, 2, 2, 9]);
      const split = splitAtDevices(r, parts);
      expect(split.flat()).toEqual(r);
      for (let i = 1; i < split.length; i++) expect(split[i]![0]!.deviceId).not.toBe(split[i - 1]!.at(-1)!.deviceId);
    }
  });

  it("packs every batch deadline until it knows refine's time, then once per slot, one package per core", async () => {
    const node = fakeNode();
    const packings = await load(node, 12);
    // The last 6 slots: aligned. At most one packing per slot (every 20 ms would be ~15 per slot),
    // each one package per core, on distinct cores.
    const lastSlots = packings.filter((p) => p[0]!.slot >= node.currentSlot() - 6);
    const slots = new Set(lastSlots.map((p) => p[0]!.slot));
    expect(lastSlots.length).toBeGreaterThanOrEqual(4);
    expect(lastSlots.length).toBeLessThanOrEqual(slots.size + 1);
    for (const p of lastSlots) {
      expect(p).toHaveLength(tinyParams.coresCount);
      expect(new Set(p.map((s) => s.core)).size).toBe(tinyParams.coresCount);
    }
    // Before the first package was refined there was no lead yet: it packed every deadline.
    const firstSlot = node.submitted.filter((s) => s.slot === 0);
    expect(firstSlot.length).toBeGreaterThan(2);
  });

  it("drains the cores' backlog of refined packages instead of keeping it: later, each package is reported in the first block after its refine", async () => {
    // Before the first block, packing every deadline queues more packages than the cores report
    // in one block (up to packagesUnreportedMax). Packing for every core at every slot would keep
    // that queue, one block of latency for every package after; packing only for free cores drains it.
    const node = fakeNode();
    await load(node, 12);
    const late = node.lag.filter((l) => l.refinedSlot >= node.currentSlot() - 6);
    expect(late.length).toBeGreaterThanOrEqual(6);
    for (const l of late) expect(l.reportedSlot).toBe(l.refinedSlot + 1);
    expect(node.lag.some((l) => l.reportedSlot > l.refinedSlot + 1)).toBe(true); // there was a backlog to drain
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
    const node = fakeNode();
    const { settlement, log } = settlementOn(node);
    // Two rounds of 2,500 envelopes from 50 devices, each pending at once: packages of two items.
    const appended: string[] = [];
    const round = async (from: number) => {
      for (let seq = from; seq < from + 50; seq++) {
        await Promise.all(
          Array.from({ length: 50 }, async (_, d) => {
            const deviceId = `${d.toString(16).padStart(4, "0")}${"0".repeat(28)}` as DeviceId;
            appended.push(`${deviceId}/${seq}`);
            settlement.add(await log.append({ deviceId, seq, signingBytes: signingBytes({ version: 1, device: deviceId, seq, kind: "meter.reading", timeMs: Date.now(), body: new Uint8Array(200).fill(seq) }), signature: new Uint8Array(64).fill(d), serviceId: 2, acceptedAtMs: Date.now() }));
          }),
        );
      }
    };
    await round(0);
    settlement.start();
    const until = (n: number) => vi.waitFor(() => expect(node.packages.length).toBeGreaterThanOrEqual(n), { timeout: 10_000, interval: 20 });
    await until(1);
    await round(50);
    const items: string[][] = [];
    await vi.waitFor(
      () => {
        items.length = 0;
        for (const bytes of node.packages) {
          const p: WorkPackage = decode(WorkPackage.Codec, bytes, tinyParams.spec);
          for (const item of p.items) {
            const records = decodeEnvelopesItem(item.payload.raw);
            if (!records.ok) throw new Error(records.error);
            items.push(records.value.map((r) => `${Buffer.from(r.fields.deviceId).toString("hex")}/${r.fields.seq}`));
          }
        }
        expect(items.flat().length).toBe(appended.length);
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(node.packages.length).toBeGreaterThanOrEqual(2);
    expect(items.length).toBeGreaterThan(node.packages.length); // some package had two items
    expect(new Set(items.flat())).toEqual(new Set(appended)); // every envelope once, none overwritten by a later item's
    for (const item of items) expect(item.length).toBeGreaterThan(0);
  });

  it("puts the envelopes of a package the node refuses back, and settles every envelope once", async () => {
    const node = fakeNode(REFINE_MS, 2);
    // The refused ones are retried after 0.5 s, then 1 s, and settle two blocks after they go.
    await expectEachSettledOnce(node);
    expect(node.refusals()).toBe(2);
  });

  it("follows a package again when the node refuses to subscribe to its status, and settles every envelope once", async () => {
    const node = fakeNode(REFINE_MS, 0, 3);
    await expectEachSettledOnce(node);
    expect(node.subscriptionRefusals()).toBe(3);
  });
});

/** Loads `node` for 6 slots, then waits (up to 15 s) until every envelope is told, and checks each got one receipt and none an error. */
async function expectEachSettledOnce(node: ReturnType<typeof fakeNode>): Promise<void> {
  const notices: DeviceNotice[] = [];
  await load(node, 6, notices);
  const appended = node.appendedSeqs.length;
  const deadline = Date.now() + 15_000;
  const told = () => notices.reduce((n, x) => n + (x.kind === "receipt" ? x.seqs.length : 1), 0);
  while (told() < appended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const receipts = notices.flatMap((n) => (n.kind === "receipt" ? n.seqs.map((seq) => `${n.deviceId}/${seq}`) : []));
  expect(notices.filter((n) => n.kind === "error")).toEqual([]);
  expect(new Set(receipts).size).toBe(receipts.length);
  expect(receipts.length).toBe(appended);
}
