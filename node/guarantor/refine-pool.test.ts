import { afterEach, describe, expect, it } from "vitest";
import { counterPayload } from "../testing/counter/types.ts";
import type { RefineTask } from "../refine/task.ts";
import { COUNTER_MODULE_URL } from "../testing/fixtures.ts";
import { ERASURE_CODING_GAS_PER_BUNDLE_BYTE, REFINE_BOUND_FLOOR_MS, REFINE_NS_PER_GAS_MAX, RefinePool, refineBoundMs } from "./refine-pool.ts";

/** A cap far above every gas bound here: what stops a task in these tests is its gas. */
const CAP_MS = 120_000;
const pools: RefinePool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function pool(threads: number): Promise<RefinePool> {
  const p = new RefinePool({ coresCount: threads, refineTimeoutMs: CAP_MS, preloadModuleUrls: [COUNTER_MODULE_URL] });
  pools.push(p);
  await p.warm();
  return p;
}

function task(payload: Uint8Array, gasLimit: bigint, availability: RefineTask["availability"] = null): RefineTask {
  return { packageHash: new Uint8Array(32), coreIndex: 0, items: [{ serviceId: 1, moduleUrl: COUNTER_MODULE_URL, payload, gasLimit }], availability };
}

/** The bound as the docs state it: floor + ns per gas × (items' gas + coding's gas per bundle byte), in whole ms rounded up. */
function statedBoundMs(itemsGas: bigint, coding: { chain: "tiny" | "full"; bundleBytes: number } | null): number {
  const codingGas = coding === null ? 0n : ERASURE_CODING_GAS_PER_BUNDLE_BYTE[coding.chain] * BigInt(coding.bundleBytes);
  return Number(REFINE_BOUND_FLOOR_MS) + Math.ceil(Number((itemsGas + codingGas) * REFINE_NS_PER_GAS_MAX) / 1e6);
}

describe("refine watchdog bound", () => {
  it("grows with the gas the items declare and with the bundle the task erasure-codes", () => {
    expect(refineBoundMs(task(counterPayload.spin(), 0n))).toBe(500);
    expect(refineBoundMs(task(counterPayload.spin(), 10_000_000n))).toBe(statedBoundMs(10_000_000n, null));
    expect(refineBoundMs(task(counterPayload.spin(), 10_000_000n))).toBe(600);
    // G_R of the tiny chain in one item: 10 s of gas on top of the floor.
    expect(refineBoundMs(task(counterPayload.spin(), 1_000_000_000n))).toBe(10_500);
    const items = [
      { serviceId: 1, moduleUrl: COUNTER_MODULE_URL, payload: counterPayload.spin(), gasLimit: 3_000_001n },
      { serviceId: 1, moduleUrl: COUNTER_MODULE_URL, payload: counterPayload.spin(), gasLimit: 4_000_000n },
    ];
    expect(refineBoundMs({ items, availability: null })).toBe(statedBoundMs(7_000_001n, null));
    expect(refineBoundMs({ items, availability: null })).toBe(571); // 70.00001 ms, rounded up
    const bundle = new Uint8Array(1_000_000);
    expect(refineBoundMs({ items, availability: { chain: "tiny", bundle } })).toBe(statedBoundMs(7_000_001n, { chain: "tiny", bundleBytes: bundle.length }));
    expect(refineBoundMs({ items, availability: { chain: "full", bundle } })).toBe(statedBoundMs(7_000_001n, { chain: "full", bundleBytes: bundle.length }));
    expect(refineBoundMs({ items, availability: { chain: "full", bundle } })).toBeGreaterThan(
      refineBoundMs({ items, availability: { chain: "tiny", bundle } }),
    );
    // A gas limit near 2^64 is clamped to what a timer takes rather than overflowing it.
    expect(refineBoundMs(task(counterPayload.spin(), 2n ** 64n - 1n))).toBe(2 ** 31 - 1);
  });
});

describe("refine pool watchdog", () => {
  it("stops a refine that spins at the bound of its declared gas, not at the node's cap", async () => {
    const p = await pool(1);
    const spin = task(counterPayload.spin(), 10_000_000n);
    const outcome = await p.run(spin);
    expect(outcome).toMatchObject({ ok: false, timedOut: true, boundMs: statedBoundMs(10_000_000n, null) });
    if (outcome.ok) throw new Error("unreachable");
    expect(outcome.detail).toBe(`refine exceeded its gas bound of ${statedBoundMs(10_000_000n, null)} ms (10000000 gas declared)`);
    // The thread was replaced: the pool refines on.
    const after = await p.run(task(counterPayload.increment(1n), 10_000_000n));
    expect(after.ok && after.result.items[0]!.ok).toBe(true);
  });

  it("arms the bound when a thread takes the task, so a wait for a thread is not charged to it", async () => {
    const p = await pool(1);
    // The increment waits for the only thread while the spin runs to its bound (600 ms) and the
    // thread is replaced; its own bound (510 ms) is shorter than that wait.
    const small = task(counterPayload.increment(1n), 1_000_000n);
    expect(refineBoundMs(small)).toBeLessThan(refineBoundMs(task(counterPayload.spin(), 10_000_000n)));
    const [spun, waited] = await Promise.all([p.run(task(counterPayload.spin(), 10_000_000n)), p.run(small)]);
    expect(spun).toMatchObject({ ok: false, timedOut: true });
    expect(waited.ok && waited.result.items[0]!.ok).toBe(true);
  });

  it("lets a refine spend every unit of its gas in host calls: it runs out of gas, it is not stopped", async () => {
    const p = await pool(1);
    // 300 M gas of blake2b host calls: ~170 ms here (bench/refine-gas.ts: 0.56 ns per gas), bound 3.5 s.
    const burn = task(counterPayload.burnGas(), 300_000_000n);
    const outcome = await p.run(burn);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) throw new Error(outcome.detail);
    expect(outcome.result.items[0]).toMatchObject({ ok: false, code: "JG_ERR_REFINE_OUT_OF_GAS", gasUsed: 300_000_000n });
  });

  it("charges the thread's CPU time: a thread that has not run its bound's worth is not stopped at the bound, the node's cap still stops it", async () => {
    // A reader that says the thread never ran stands for one that waits for a CPU all along.
    const starved = new RefinePool({ coresCount: 1, refineTimeoutMs: 1_500, preloadModuleUrls: [COUNTER_MODULE_URL], threadCpuNs: () => 0n });
    pools.push(starved);
    await starved.warm();
    expect(await starved.run(task(counterPayload.spin(), 10_000_000n))).toMatchObject({ ok: false, timedOut: true, boundMs: 1_500 });
    // Where no CPU time can be read, wall-clock time is charged: the spin stops at its gas bound.
    const unread = new RefinePool({ coresCount: 1, refineTimeoutMs: CAP_MS, preloadModuleUrls: [COUNTER_MODULE_URL], threadCpuNs: () => null });
    pools.push(unread);
    await unread.warm();
    expect(await unread.run(task(counterPayload.spin(), 10_000_000n))).toMatchObject({ ok: false, timedOut: true, boundMs: statedBoundMs(10_000_000n, null) });
  });

  it("stops a task at the node's cap when that comes first", async () => {
    const p = new RefinePool({ coresCount: 1, refineTimeoutMs: 300, preloadModuleUrls: [COUNTER_MODULE_URL] });
    pools.push(p);
    await p.warm();
    const outcome = await p.run(task(counterPayload.spin(), 10_000_000n));
    expect(outcome).toMatchObject({ ok: false, timedOut: true, boundMs: 300, detail: "refine exceeded the node's cap of 300 ms" });
  });
});
