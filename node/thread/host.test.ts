/**
 * NodeThread: the node on its own thread behaves as the NodeApi of an in-process node — values,
 * coded errors, subscriptions, log records, stopping — across the thread boundary.
 */
import { Block } from "@typeberry/lib/block";
import { afterEach, describe, expect, it } from "vitest";
import { COUNTER_KEY, counterPayload, readU64 } from "../testing/counter/types.ts";
import { headerHash } from "../chain/block.ts";
import { tinyParams } from "../chain/params.ts";
import { decode, toHex } from "../codec/jam.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { verifyStatePath } from "../state/proof.ts";
import { COUNTER_SERVICE_ID, counterGenesis, counterItem, packageFor, tempDir, waitForStatus } from "../testing/fixtures.ts";
import { NodeThread } from "./host.ts";

const threads: NodeThread[] = [];
afterEach(async () => {
  for (const t of threads.splice(0)) await t.stop();
});

async function open(dataDir = tempDir(), logs: string[] = []): Promise<NodeThread> {
  const logger = { info: (_o: object, m?: string) => void logs.push(m ?? ""), warn: () => {}, error: () => {} };
  const thread = await NodeThread.open({ dataDir, slotMs: 50, services: counterGenesis(), refineTimeoutMs: 2_000 }, { logger });
  threads.push(thread);
  return thread;
}

describe("NodeThread", () => {
  it("settles a package submitted from another thread, with statuses and block subscriptions, and passes the node's log records on", async () => {
    const logs: string[] = [];
    const node = await open(undefined, logs);
    const slots: number[] = [];
    const unsubscribe = await node.subscribeBestBlock((b) => slots.push(b.slot));
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(5n))]);
    const statuses: string[] = [];
    await node.subscribeWorkPackageStatus(pkg.hash, (s) => statuses.push(s.kind));
    expect(await node.submitWorkPackage(0, pkg.bytes, [])).toEqual(pkg.hash);
    const done = await waitForStatus(node, pkg.hash, ["accumulated", "failed"]);
    expect(done.kind).toBe("accumulated");
    expect(statuses).toContain("refined");
    expect(statuses.at(-1)).toBe("accumulated");
    // Block events follow the block's status events: wait for the one that accumulated the package.
    const accumulatedIn = done.kind === "accumulated" ? done.accumulatedIn.slot : -1;
    for (let i = 0; i < 2_000 && !slots.includes(accumulatedIn); i++) await new Promise((r) => setTimeout(r, 10));
    expect(slots).toContain(accumulatedIn);
    expect(slots).toEqual([...slots].sort((a, b) => a - b));
    expect(node.bestSlot).toBeGreaterThanOrEqual(slots.at(-1)!);
    // Blocks cross the thread as the node stored them: the accumulating block's header hashes to its descriptor's hash.
    if (done.kind !== "accumulated") throw new Error("unreachable");
    const encoded = await node.block(done.accumulatedIn.headerHash);
    if (encoded === null) throw new Error("the accumulating block is not served");
    const header = decode<Block>(Block.Codec, encoded, tinyParams.spec).header;
    expect(toHex(headerHash(tinyParams, header))).toBe(toHex(done.accumulatedIn.headerHash));
    expect(await node.block(new Uint8Array(32))).toBeNull();
    // So do value proofs: the counter's value, proved against the state root of the block named.
    const proof = await node.serviceValueProof(COUNTER_SERVICE_ID, COUNTER_KEY);
    if (proof === null) throw new Error("no proof of the counter across the thread");
    expect(readU64(proof.value)).toBe(5n);
    expect(toHex(proof.stateRoot)).toBe(toHex(await node.stateRoot(proof.block.headerHash)));
    expect(verifyStatePath(proof.stateKey, proof.value, proof.siblings, proof.stateRoot)).toBe(true);
    expect(await node.serviceValueProof(COUNTER_SERVICE_ID, Uint8Array.of(0xee))).toBeNull();
    expect(logs).toContain("block");
    unsubscribe();
    const seen = slots.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(slots.length).toBe(seen);
    expect(await node.errorStats()).toEqual({});
  });

  it("keeps the code of a refusal across the thread, and counts it", async () => {
    const node = await open();
    const refusal = await node.submitWorkPackage(0, Uint8Array.of(1, 2, 3), []).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(JamgateError);
    expect((refusal as JamgateError).code).toBe("JG_ERR_PACKAGE_MALFORMED");
    expect(await node.errorStats()).toEqual({ JG_ERR_PACKAGE_MALFORMED: 1 });
  });

  it("refuses to open a data dir of another chain with JG_ERR_GENESIS, and after stop every call fails with JG_ERR_NODE_STOPPED", async () => {
    const dataDir = tempDir();
    const first = await open(dataDir);
    await first.stop();
    const stopped = await first.bestBlock().catch((e: unknown) => e);
    expect((stopped as JamgateError).code).toBe("JG_ERR_NODE_STOPPED");
    const other = NodeThread.open({ dataDir, slotMs: 50, services: counterGenesis({ balance: 7n }) });
    await expect(other).rejects.toMatchObject({ code: "JG_ERR_GENESIS" });
  });
});
