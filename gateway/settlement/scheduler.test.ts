/**
 * The pack scheduler on its own, on vitest's fake clock: the lead (slowest recent pack → refined
 * time plus the margin), the packing time it gives for a block, and when its timer starts a
 * packing (every batch deadline, at once for a full package, just in time for the next block).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BlockDescriptor, NodeApi } from "../../node/api.ts";
import { settlementLimits } from "./limits.ts";
import { leadMs, nextPackAt, PackScheduler, targetSlot } from "./scheduler.ts";

const SLOT_MS = 1_000;
const DEADLINE_MS = 50;

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A scheduler on a node whose blocks come when `block()` is called; `packs` records each packing
 * (aligned or not) at its time on the fake clock, from the start.
 */
function scheduler(options: { packing?: "aligned" | "deadline"; full?: () => boolean } = {}) {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  const subscribers: ((b: BlockDescriptor) => void)[] = [];
  const api = {
    parameters: async () => ({ slot_period_sec: SLOT_MS / 1000 }),
    subscribeBestBlock: async (cb: (b: BlockDescriptor) => void) => {
      subscribers.push(cb);
      return () => subscribers.splice(subscribers.indexOf(cb), 1);
    },
  } as unknown as NodeApi;
  const startedAt = performance.now();
  const packs: { at: number; aligned: boolean }[] = [];
  const s = new PackScheduler({
    api,
    packing: options.packing,
    batchDeadlineMs: DEADLINE_MS,
    fullPending: options.full ?? (() => false),
    pack: (aligned) => packs.push({ at: performance.now() - startedAt, aligned }),
  });
  const block = () => {
    for (const cb of subscribers) cb({ headerHash: new Uint8Array(32), slot: 0 });
  };
  return { s, packs, block, subscribers };
}

describe("lead", () => {
  it("is the slowest recent pack → refined time plus the margin, the margin at most its share of a slot", () => {
    expect(leadMs([], SLOT_MS)).toBeNull();
    expect(leadMs([120, 400, 250], SLOT_MS)).toBe(400 + settlementLimits.leadMarginMs);
    // A 300 ms slot: the margin is 0.3 of it, not 300 ms.
    expect(leadMs([40], 300)).toBeCloseTo(40 + 300 * settlementLimits.leadMarginSlotShareMax);
  });

  it("counts only the latest refineSamples packages", () => {
    const { s } = scheduler();
    expect(s.leadMs(SLOT_MS)).toBeNull();
    s.sampleRefine(900);
    for (let i = 0; i < settlementLimits.refineSamples - 1; i++) s.sampleRefine(100);
    expect(s.leadMs(SLOT_MS)).toBe(900 + settlementLimits.leadMarginMs);
    s.sampleRefine(100); // the 900 ms one drops out
    expect(s.leadMs(SLOT_MS)).toBe(100 + settlementLimits.leadMarginMs);
  });
});

describe("nextPackAt", () => {
  const clock = { lastBlockAt: 10_000, lastSlot: 40, slotMs: SLOT_MS };

  it("is the next block's time less the lead", () => {
    expect(nextPackAt(clock, 400, null, 10_100)).toBe(10_600);
    expect(nextPackAt(clock, 400, null, 10_790)).toBe(10_600); // less than half the lead behind: still this block's
  });

  it("moves to the block after once more than half the lead behind, or once packed for", () => {
    expect(nextPackAt(clock, 400, null, 10_850)).toBe(11_600);
    expect(nextPackAt(clock, 400, null, 12_900)).toBe(13_600); // blocks missed since: the next one still reachable
    expect(nextPackAt(clock, 400, 10_600, 10_100)).toBe(11_600);
    expect(nextPackAt(clock, 400, 9_600, 10_100)).toBe(10_600); // the last block's packing does not count
  });

  it("packs as a block arrives when refine takes a slot or more", () => {
    expect(nextPackAt(clock, 1_500, null, 10_000)).toBe(10_000);
    expect(nextPackAt(clock, 1_500, 10_000, 10_000)).toBe(11_000);
  });
});

describe("targetSlot", () => {
  const clock = { lastBlockAt: 10_000, lastSlot: 40, slotMs: SLOT_MS };

  it("is the slot of the block nextPackAt's packing is for: the next one, a later one once more than half the lead behind", () => {
    expect(targetSlot(clock, 400, 10_100)).toBe(41);
    expect(targetSlot(clock, 400, 10_600)).toBe(41); // the aligned packing for the next block
    expect(targetSlot(clock, 400, 10_790)).toBe(41); // less than half the lead behind: still this block's
    expect(targetSlot(clock, 400, 10_850)).toBe(42);
    expect(targetSlot(clock, 400, 12_900)).toBe(44); // blocks missed since: the next one still reachable
    expect(targetSlot(clock, 0, 10_000)).toBe(41); // no lead known yet
    expect(targetSlot(clock, 1_500, 10_000)).toBe(41); // refine a slot or more: packing as a block arrives, for the next
    // Where nextPackAt packs, targetSlot names the block it packs for.
    for (const now of [10_050, 10_700, 11_300, 15_420]) {
      const packAt = nextPackAt(clock, 400, null, now);
      expect(targetSlot(clock, 400, packAt)).toBe(clock.lastSlot + (packAt + 400 - clock.lastBlockAt) / SLOT_MS);
    }
  });
});

describe("PackScheduler", () => {
  it("packs every batch deadline until it knows the block clock and a refine time, then just in time for the next block", async () => {
    const { s, packs, block } = scheduler();
    s.start();
    await vi.advanceTimersByTimeAsync(DEADLINE_MS);
    expect(packs).toEqual([{ at: DEADLINE_MS, aligned: false }]);
    // A block, but no refine time yet: still the deadline.
    block();
    s.schedule();
    await vi.advanceTimersByTimeAsync(DEADLINE_MS);
    expect(packs.at(-1)).toEqual({ at: 2 * DEADLINE_MS, aligned: false });
    // A block at 200; refine 100 ms: the lead is 400 ms, so the packing for the block at 1,200 is at 800.
    await vi.advanceTimersByTimeAsync(100);
    block();
    s.sampleRefine(100);
    s.schedule();
    await vi.advanceTimersByTimeAsync(599);
    expect(packs).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(packs.at(-1)).toEqual({ at: 800, aligned: true });
    // Packed for that block: the next packing is for the one after (at 1,800), even if asked at once.
    s.schedule();
    await vi.advanceTimersByTimeAsync(999);
    expect(packs).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(packs.at(-1)).toEqual({ at: 1_800, aligned: true });
    s.stop();
  });

  it("packs a full package at once, and every deadline with packing 'deadline'", async () => {
    let full = true;
    const { s, packs, block } = scheduler({ packing: "deadline", full: () => full });
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(packs).toEqual([{ at: 0, aligned: false }]);
    full = false;
    block();
    s.sampleRefine(100);
    s.schedule();
    await vi.advanceTimersByTimeAsync(DEADLINE_MS);
    expect(packs.at(-1)).toEqual({ at: DEADLINE_MS, aligned: false });
    s.stop();
  });

  it("keeps one timer: schedule leaves a set one, reschedule replaces it, stop clears it and the block subscription", async () => {
    const { s, packs, subscribers } = scheduler();
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(subscribers).toHaveLength(1);
    s.schedule(10);
    await vi.advanceTimersByTimeAsync(DEADLINE_MS);
    expect(packs).toEqual([{ at: DEADLINE_MS, aligned: false }]); // the start's timer held
    s.schedule();
    s.reschedule(500); // a retry's backoff
    await vi.advanceTimersByTimeAsync(499);
    expect(packs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(packs).toHaveLength(2);
    s.schedule();
    s.stop();
    await vi.advanceTimersByTimeAsync(10 * SLOT_MS);
    expect(packs).toHaveLength(2);
    expect(subscribers).toHaveLength(0);
    s.schedule();
    await vi.advanceTimersByTimeAsync(DEADLINE_MS);
    expect(packs).toHaveLength(2);
  });
});
