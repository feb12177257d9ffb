/** The gateway's registry cache: how often it reads the node's best block (BEST_BLOCK_REUSE_MS). */
import { describe, expect, it } from "vitest";
import type { BlockDescriptor, NodeApi } from "../node/api.ts";
import type { IngestService } from "./ingest-service.ts";
import { BEST_BLOCK_REUSE_MS, DeviceRegistry } from "./registry.ts";

/** A node whose best block is read through a counter; the first `failing` reads fail. */
function countingNode(failing = 0) {
  let reads = 0;
  const api = {
    bestBlock: async (): Promise<BlockDescriptor> => {
      reads++;
      if (reads <= failing) throw new Error("node unreachable");
      return { headerHash: new Uint8Array(32).fill(reads), slot: reads };
    },
  } as unknown as NodeApi;
  return { api, reads: () => reads };
}

describe("DeviceRegistry.bestBlock", () => {
  it("reads the best block once for the lookups of BEST_BLOCK_REUSE_MS, then again", async () => {
    let now = 1_000;
    const node = countingNode();
    const registry = new DeviceRegistry(node.api, [], () => now);
    const burst = await Promise.all(Array.from({ length: 500 }, () => registry.bestBlock()));
    expect(node.reads()).toBe(1);
    expect(new Set(burst.map((b) => b.slot))).toEqual(new Set([1]));
    now += BEST_BLOCK_REUSE_MS - 1;
    expect((await registry.bestBlock()).slot).toBe(1);
    now += 1;
    expect((await registry.bestBlock()).slot).toBe(2);
    // A clock that steps back (the wall clock set back) reads again rather than keeping a block for long.
    now -= 10_000;
    expect((await registry.bestBlock()).slot).toBe(3);
    expect(node.reads()).toBe(3);
  });

  it("does not keep a failed read: the next lookup asks the node again", async () => {
    const node = countingNode(1);
    const registry = new DeviceRegistry(node.api, [], () => 5_000);
    await expect(registry.bestBlock()).rejects.toThrow("node unreachable");
    expect((await registry.bestBlock()).slot).toBe(2);
    expect(node.reads()).toBe(2);
  });

  it("reads a device it does not find at a shared read again at the latest block, before it counts as unknown", async () => {
    // The chain: block 1 knows device "a"; block 2 (best from the second read on) registers "b" too.
    let reads = 0;
    const valueReads: number[] = [];
    const api = {
      bestBlock: async (): Promise<BlockDescriptor> => {
        reads++;
        const slot = Math.min(reads, 2);
        return { headerHash: new Uint8Array(32).fill(slot), slot };
      },
      serviceValue: async (headerHash: Uint8Array, _service: number, key: Uint8Array) => {
        valueReads.push(headerHash[0]!);
        const id = new TextDecoder().decode(key);
        return id === "a" || (id === "b" && headerHash[0] === 2) ? new TextEncoder().encode(id) : null;
      },
    } as unknown as NodeApi;
    const service = {
      serviceId: 7,
      deviceKey: (id: string) => new TextEncoder().encode(id),
      decodeDevice: () => ({ publicKey: new Uint8Array(32), kind: "meter", settledHighestSeq: -1 }),
    } as unknown as IngestService;
    const registry = new DeviceRegistry(api, [service], () => 1_000);
    expect(await registry.lookup("a")).not.toBeNull(); // the first read: block 1
    expect(await registry.lookup("b")).not.toBeNull(); // not at the shared block 1: read again at block 2
    expect(valueReads).toEqual([1, 1, 2]);
    expect(await registry.lookup("c")).toBeNull(); // the latest block is the one it read: unknown, the device not read twice
    expect(reads).toBe(3);
  });
});
