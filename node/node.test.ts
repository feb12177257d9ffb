import { Block, tryAsServiceId } from "@typeberry/lib/block";
import { serialize } from "@typeberry/lib/state-merkleization";
import { afterEach, describe, expect, it, vi } from "vitest";
import { COUNTER_KEY, counterPayload, encodeU64, LAST_PACKAGE_KEY, readU64, RECEIVED_KEY, signedIncrementMessage } from "./testing/counter/types.ts";
import type { NodeApi } from "./api.ts";
import { headerHash } from "./chain/block.ts";
import { bytesEqual, decode } from "./codec/jam.ts";
import { keyPairFromSeed, signEd25519 } from "./crypto/ed25519.ts";
import { groupItems, JamNode, PACKAGES_QUEUED_PER_CORE_MAX } from "./node.ts";
import { fullParams } from "./chain/params.ts";
import { ERASURE_CODING_GAS_PER_BUNDLE_BYTE, REFINE_BOUND_FLOOR_MS, REFINE_NS_PER_GAS_MAX } from "./guarantor/refine-pool.ts";
import { buildWorkPackage } from "./intake/builder.ts";
import { RpcClient } from "./rpc/client.ts";
import { startRpcServer } from "./rpc/server.ts";
import { storageKey } from "./state/components.ts";
import { verifyStatePath } from "./state/proof.ts";
import { COUNTER_SERVICE_ID, counterGenesis, counterItem, openTestNode, packageFor, submitterKey, tempDir, waitForStatus } from "./testing/fixtures.ts";

const nodes: JamNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function started(options: Parameters<typeof openTestNode>[0] = {}): Promise<JamNode> {
  const node = await openTestNode(options);
  nodes.push(node);
  node.start();
  return node;
}

async function counter(api: NodeApi, key = COUNTER_KEY, service = COUNTER_SERVICE_ID): Promise<bigint> {
  const best = await api.bestBlock();
  return readU64(await api.serviceValue(best.headerHash, service, key));
}

async function balance(api: NodeApi, service: number): Promise<bigint> {
  const raw = await api.serviceData((await api.bestBlock()).headerHash, service);
  if (raw === null) throw new Error(`no service ${service}`);
  return decode(serialize.serviceData(tryAsServiceId(service)).Codec, raw).balance;
}

describe("embedded node", () => {
  it("takes a package through every status to accumulation and changes the state root", async () => {
    const node = await started();
    const before = await node.bestBlock();
    const rootBefore = await node.stateRoot(before.headerHash);
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(5n)), counterItem(counterPayload.increment(7n))]);
    const seen: string[] = [];
    await node.subscribeWorkPackageStatus(pkg.hash, (s) => seen.push(s.kind));
    expect(await node.submitWorkPackage(0, pkg.bytes, [])).toEqual(pkg.hash);
    const status = await waitForStatus(node, pkg.hash, ["accumulated"]);
    expect(status.kind).toBe("accumulated");
    expect(seen).toEqual(["submitted", "refined", "reported", "available", "accumulated"]);
    expect(await counter(node)).toBe(12n);
    const best = await node.bestBlock();
    expect(bytesEqual(await node.stateRoot(best.headerHash), rootBefore)).toBe(false);
    // A recent block's state stays readable: before the package, the counter was not there.
    expect(await node.serviceValue(before.headerHash, COUNTER_SERVICE_ID, COUNTER_KEY)).toBeNull();
    expect(await node.listServices(before.headerHash)).toEqual([1, 2]);
    if (status.kind !== "accumulated") throw new Error("unreachable");
    expect(status.reportedIn.slot).toBeLessThan(status.accumulatedIn.slot);
    expect(await node.workReport(status.reportHash)).not.toBeNull();
  });

  it("authors a block every slot, empty ones too, linked by parent hash", async () => {
    const node = await started({ slotMs: 20 });
    // Polled, not slept: a busy machine authors the first blocks later.
    await vi.waitFor(async () => expect((await node.bestBlock()).slot).toBeGreaterThanOrEqual(5), { timeout: 20_000, interval: 20 });
    const best = await node.bestBlock();
    for (let slot = 1; slot <= best.slot; slot++) {
      const block = node.blockAt(slot)!;
      const parent = node.blockAt(slot - 1)!;
      expect(block.header.timeSlotIndex).toBe(slot);
      expect(bytesEqual(block.header.parentHeaderHash.raw, (await import("./chain/block.ts")).headerHash(node.params, parent.header))).toBe(true);
    }
  });

  it("runs the full chain spec (1023 validators, 341 cores) end to end", async () => {
    const node = await started({ chain: "full", slotMs: 300 });
    const best = await node.bestBlock();
    const stateRoot = await node.stateRoot(best.headerHash);
    const pkg = buildWorkPackage(fullParams, {
      signer: submitterKey,
      anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot },
      items: [counterItem(counterPayload.increment(2n))],
    });
    await node.submitWorkPackage(340, pkg.bytes, []);
    const status = await waitForStatus(node, pkg.hash, ["accumulated"]);
    expect(status).toMatchObject({ kind: "accumulated", core: 340 });
    expect(await counter(node)).toBe(2n);
    const block = node.blockAt(status.kind === "accumulated" ? status.availableIn.slot : 0)!;
    expect(block.extrinsic.assurances.length).toBeGreaterThan((2 * 1023) / 3);
  });

  it("groups a package's items for parallel refine: consecutive, about equal in bytes, none empty", () => {
    const spans = (bytes: number[], parts: number) => groupItems(bytes, parts).map((g) => [g.from, g.to, g.bytes]);
    expect(spans([500, 500], 2)).toEqual([
      [0, 1, 500],
      [1, 2, 500],
    ]);
    expect(spans([10, 1, 1, 1], 2)).toEqual([
      [0, 1, 10],
      [1, 4, 3],
    ]);
    expect(spans([1, 1, 1, 10], 2)).toEqual([
      [0, 3, 3],
      [3, 4, 10],
    ]);
    expect(spans([4, 4, 4, 4], 2)).toEqual([
      [0, 2, 8],
      [2, 4, 8],
    ]);
    expect(spans([7], 2)).toEqual([[0, 1, 7]]);
    expect(spans([1, 2, 3], 1)).toEqual([[0, 3, 6]]);
    expect(spans([], 2)).toEqual([[0, 0, 0]]);
  });

  it("refines both cores in parallel and accumulates both", async () => {
    const node = await started();
    const a = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    const b = await packageFor(node, [counterItem(counterPayload.increment(2n))]);
    await node.submitWorkPackage(0, a.bytes, []);
    await node.submitWorkPackage(1, b.bytes, []);
    const [sa, sb] = await Promise.all([waitForStatus(node, a.hash, ["accumulated"]), waitForStatus(node, b.hash, ["accumulated"])]);
    expect([sa.kind, sb.kind]).toEqual(["accumulated", "accumulated"]);
    expect(await counter(node)).toBe(3n);
  });

  it("checks signatures in refine: a good one counts, a bad one fails the package", async () => {
    const node = await started();
    const device = keyPairFromSeed(new Uint8Array(32).fill(4));
    const good = signEd25519(device, signedIncrementMessage(10n));
    const ok = await packageFor(node, [counterItem(counterPayload.signedIncrement(device.publicKey, good, 10n))]);
    await node.submitWorkPackage(0, ok.bytes, []);
    expect((await waitForStatus(node, ok.hash, ["accumulated"])).kind).toBe("accumulated");
    const forged = await packageFor(node, [counterItem(counterPayload.signedIncrement(device.publicKey, good, 11n))]);
    await node.submitWorkPackage(0, forged.bytes, []);
    const status = await waitForStatus(node, forged.hash, ["accumulated"]);
    expect(status).toMatchObject({ kind: "failed", code: "JG_ERR_REFINE_PANIC" });
    expect(await counter(node)).toBe(10n);
  });

  it("fails packages whose refine throws, runs out of gas or spins, and keeps running", async () => {
    // The spin is stopped by its gas bound (~0.6 s for the counter's 10 M gas); the node's cap,
    // timed from the hand-off to the pool, is set out of its way. At 1 s, on a 2-core machine at
    // load 10, the out-of-gas case once ended in JG_ERR_REFINE_TIMEOUT instead.
    const node = await started({ refineTimeoutMs: 30_000 });
    const cases = [
      { payload: counterPayload.panic(), code: "JG_ERR_REFINE_PANIC" },
      { payload: counterPayload.burnGas(), code: "JG_ERR_REFINE_OUT_OF_GAS" },
      { payload: counterPayload.spin(), code: "JG_ERR_REFINE_TIMEOUT" },
    ];
    for (const c of cases) {
      const pkg = await packageFor(node, [counterItem(counterPayload.increment(100n)), counterItem(c.payload)]);
      await node.submitWorkPackage(0, pkg.bytes, []);
      expect(await waitForStatus(node, pkg.hash, ["accumulated"])).toMatchObject({ kind: "failed", code: c.code });
    }
    expect(await counter(node)).toBe(0n); // the good first items of the failed packages changed nothing
    const after = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    await node.submitWorkPackage(0, after.bytes, []);
    expect((await waitForStatus(node, after.hash, ["accumulated"])).kind).toBe("accumulated");
    expect(await counter(node)).toBe(1n);
  });

  it("stops a spinning refine at the bound its declared gas allows, not at the node's cap, and lets a heavy one spend all its gas", async () => {
    const node = await started({ refineTimeoutMs: 120_000 });
    const spin = await packageFor(node, [counterItem(counterPayload.spin(), { refineGasLimit: 10_000_000n })]);
    await node.submitWorkPackage(0, spin.bytes, []);
    // One item, one task, which also erasure-codes the bundle: floor + ns per gas × (gas + coding's gas).
    const codingGas = ERASURE_CODING_GAS_PER_BUNDLE_BYTE.tiny * BigInt(spin.bytes.length);
    const boundMs = Number(REFINE_BOUND_FLOOR_MS) + Math.ceil(Number((10_000_000n + codingGas) * REFINE_NS_PER_GAS_MAX) / 1e6);
    expect(boundMs).toBeLessThan(1_000);
    expect(await waitForStatus(node, spin.hash, ["accumulated"], 25_000)).toEqual({
      kind: "failed",
      code: "JG_ERR_REFINE_TIMEOUT",
      detail: `refine exceeded its gas bound of ${boundMs} ms (10000000 gas declared)`,
    });
    // 300 M gas of blake2b host calls (~170 ms here, bench/refine-gas.ts) in each of two items: both run out of gas, neither is stopped.
    const burn = await packageFor(node, [
      counterItem(counterPayload.burnGas(), { refineGasLimit: 300_000_000n }),
      counterItem(counterPayload.burnGas(), { refineGasLimit: 300_000_000n }),
    ]);
    await node.submitWorkPackage(0, burn.bytes, []);
    expect(await waitForStatus(node, burn.hash, ["accumulated"], 25_000)).toMatchObject({ kind: "failed", code: "JG_ERR_REFINE_OUT_OF_GAS" });
    expect(node.errorStats()).toMatchObject({ JG_ERR_REFINE_TIMEOUT: 1, JG_ERR_REFINE_OUT_OF_GAS: 1 });
  });

  it("drops all writes of an accumulate that throws", async () => {
    const node = await started();
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(4n)), counterItem(counterPayload.accumulatePanic())]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    expect((await waitForStatus(node, pkg.hash, ["accumulated"])).kind).toBe("accumulated");
    expect(await counter(node)).toBe(0n); // neither the 4 nor the 999 written before the throw
  });

  it("defers transfers to the next round and credits the destination there", async () => {
    const node = await started();
    const before1 = await balance(node, 1);
    const pkg = await packageFor(node, [counterItem(counterPayload.transfer(2, 500n, 10_000n))]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    expect((await waitForStatus(node, pkg.hash, ["accumulated"])).kind).toBe("accumulated");
    expect(await balance(node, 1)).toBe(before1 - 500n);
    expect(await balance(node, 2)).toBe(500n);
    expect(await counter(node, RECEIVED_KEY, 2)).toBe(500n);
  });

  it("resumes after a restart with the same best block and state root, and replays to the same roots", async () => {
    const dataDir = tempDir();
    const first = await JamNode.open({ dataDir, slotMs: 30, services: counterGenesis() });
    first.start();
    const pkg = await packageFor(first, [counterItem(counterPayload.increment(9n))]);
    await first.submitWorkPackage(1, pkg.bytes, []);
    await waitForStatus(first, pkg.hash, ["accumulated"]);
    await first.stop();
    const second = await JamNode.open({ dataDir, slotMs: 30, services: counterGenesis() });
    nodes.push(second);
    const best = await second.bestBlock();
    expect(best.slot).toBeGreaterThan(0);
    expect(await counter(second)).toBe(9n);
    const replay = second.replay();
    expect(replay.blocks).toBe(best.slot);
    expect(replay.finalStateRoot).toEqual(await second.stateRoot(best.headerHash));
    second.start();
    await vi.waitFor(async () => expect((await second.bestBlock()).slot).toBeGreaterThan(best.slot), { timeout: 20_000, interval: 20 });
  });

  it("refines a package while it is stored, and leaves no trace of one it failed to store", async () => {
    /** Makes the node's bundle writes fail until the returned function is called. */
    const diskFull = (n: JamNode) => {
      const store = (n as unknown as { store: { putSubmitted(...args: unknown[]): void } }).store;
      const putSubmitted = store.putSubmitted.bind(store);
      store.putSubmitted = () => {
        throw new Error("MDB_MAP_FULL: the disk is full");
      };
      return () => {
        store.putSubmitted = putSubmitted;
      };
    };
    const node = await started();
    const freed = diskFull(node);
    // Refining (a thread was free) when the write fails: its outcome is dropped.
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(5n))]);
    await expect(node.submitWorkPackage(0, pkg.bytes, [])).rejects.toThrow(/MDB_MAP_FULL/);
    expect(await node.workPackageStatus(pkg.hash)).toBeNull();
    freed();
    // Submitted again once the disk has room: accepted as new, and settled once.
    expect(await node.submitWorkPackage(0, pkg.bytes, [])).toEqual(pkg.hash);
    expect((await waitForStatus(node, pkg.hash, ["accumulated"])).kind).toBe("accumulated");
    expect(await counter(node)).toBe(5n);
    // Queued (no thread yet) when the write fails: it leaves the queue.
    const idle = await openTestNode();
    nodes.push(idle);
    const idleFreed = diskFull(idle);
    const queued = await packageFor(idle, [counterItem(counterPayload.increment(3n))]);
    await expect(idle.submitWorkPackage(0, queued.bytes, [])).rejects.toThrow(/MDB_MAP_FULL/);
    idleFreed();
    idle.start();
    const other = await packageFor(idle, [counterItem(counterPayload.increment(4n))]);
    await idle.submitWorkPackage(0, other.bytes, []);
    expect((await waitForStatus(idle, other.hash, ["accumulated"])).kind).toBe("accumulated");
    expect(await idle.workPackageStatus(queued.hash)).toBeNull();
    expect(await counter(idle)).toBe(4n);
  });

  it("refuses at intake a package whose service code it has not loaded (JG_ERR_SERVICE_UNKNOWN), and counts it", async () => {
    const node = await started();
    // A service in the state whose code the node has no module for (one made at run time, say).
    (node as unknown as { services: { moduleUrl(codeHash: Uint8Array): string | null } }).services.moduleUrl = () => null;
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    await expect(node.submitWorkPackage(0, pkg.bytes, [])).rejects.toThrow(/^JG_ERR_SERVICE_UNKNOWN: no code loaded for service 1/);
    expect(await node.workPackageStatus(pkg.hash)).toBeNull();
    expect(node.errorStats().JG_ERR_SERVICE_UNKNOWN).toBe(1);
  });

  it("bounds the packages waiting for refine per core", async () => {
    const node = await openTestNode(); // not started: nothing is refined, so the queue fills
    nodes.push(node);
    for (let i = 0; i < PACKAGES_QUEUED_PER_CORE_MAX; i++) {
      await node.submitWorkPackage(0, (await packageFor(node, [counterItem(counterPayload.increment(BigInt(i)))])).bytes, []);
    }
    const extra = await packageFor(node, [counterItem(counterPayload.increment(99n))]);
    await expect(node.submitWorkPackage(0, extra.bytes, [])).rejects.toThrow(/^JG_ERR_QUEUE_FULL/);
    await expect(node.submitWorkPackage(1, extra.bytes, [])).resolves.toEqual(extra.hash); // another core has room
    expect(node.errorStats().JG_ERR_QUEUE_FULL).toBe(1);
  });

  it("refuses a data dir made with another genesis", async () => {
    const dataDir = tempDir();
    const node = await JamNode.open({ dataDir, services: counterGenesis() });
    await node.stop();
    await expect(JamNode.open({ dataDir, services: counterGenesis({ balance: 1n }) })).rejects.toThrow(/JG_ERR_GENESIS/);
  });
});

describe("read-only extensions over the RPC (not in JIP-2)", () => {
  /** A started node behind an RPC server on a free port, and a client without the token (loopback reads). */
  async function overRpc(): Promise<{ node: JamNode; client: RpcClient }> {
    const node = await started({ slotMs: 20 });
    const server = await startRpcServer(node, { port: 0, token: "node-test-token" });
    const client = await RpcClient.connect(`ws://127.0.0.1:${server.port}`);
    cleanups.push(async () => {
      await client.close();
      await server.close();
    });
    return { node, client };
  }

  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("block: the GP-encoded block, whose header hashes to the descriptor's hash; null for an unknown hash", async () => {
    const { node, client } = await overRpc();
    await vi.waitFor(async () => expect((await client.bestBlock()).slot).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 20 });
    const best = await client.bestBlock();
    const encoded = await client.block(best.headerHash);
    if (encoded === null) throw new Error("no best block over the RPC");
    const block = decode<Block>(Block.Codec, encoded, node.params.spec);
    expect(Buffer.from(headerHash(node.params, block.header)).toString("hex")).toBe(Buffer.from(best.headerHash).toString("hex"));
    expect(block.header.timeSlotIndex).toBe(best.slot);
    // Its parent is served too, down to genesis.
    let parent = block.header.parentHeaderHash.raw;
    for (let slot = best.slot - 1; slot >= 0; slot--) {
      const encodedParent = await client.block(parent);
      if (encodedParent === null) throw new Error(`no block at slot ${slot}`);
      const header = decode<Block>(Block.Codec, encodedParent, node.params.spec).header;
      expect(header.timeSlotIndex).toBe(slot);
      expect(Buffer.from(headerHash(node.params, header)).toString("hex")).toBe(Buffer.from(parent).toString("hex"));
      parent = header.parentHeaderHash.raw;
    }
    expect(await client.block(new Uint8Array(32).fill(0xee))).toBeNull();
  });

  it("serviceValueProof: a service's storage value with its path to the best block's state root, which the next header commits to", async () => {
    const { node, client } = await overRpc();
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(5n))]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    expect((await waitForStatus(node, pkg.hash, ["accumulated"])).kind).toBe("accumulated");
    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

    const proof = await client.serviceValueProof(COUNTER_SERVICE_ID, COUNTER_KEY);
    if (proof === null) throw new Error("no proof of the counter");
    expect(readU64(proof.value)).toBe(5n);
    expect(hex(proof.stateKey)).toBe(storageKey(COUNTER_SERVICE_ID, COUNTER_KEY));
    const root = await client.stateRoot(proof.block.headerHash);
    expect(hex(proof.stateRoot)).toBe(hex(root));
    expect(proof.siblings.length).toBeGreaterThan(0);
    expect(verifyStatePath(proof.stateKey, proof.value, proof.siblings, root)).toBe(true);
    expect(verifyStatePath(proof.stateKey, encodeU64(6n), proof.siblings, root)).toBe(false);
    // The package hash the counter's accumulate wrote beside it (32 bytes), under the same kind of proof.
    const last = (await client.serviceValueProof(COUNTER_SERVICE_ID, LAST_PACKAGE_KEY))!;
    expect(hex(last.value)).toBe(hex(pkg.hash));
    expect(verifyStatePath(last.stateKey, last.value, last.siblings, await client.stateRoot(last.block.headerHash))).toBe(true);
    expect(await client.serviceValueProof(COUNTER_SERVICE_ID, Uint8Array.of(0xee))).toBeNull();
    expect(await client.serviceValueProof(99, COUNTER_KEY)).toBeNull();

    // The block after the proof's names it as parent and carries its root as the prior state root (GP 5.1 H_r).
    await vi.waitFor(async () => expect((await client.bestBlock()).slot).toBeGreaterThan(proof.block.slot), { timeout: 20_000, interval: 20 });
    let child = decode<Block>(Block.Codec, (await client.block((await client.bestBlock()).headerHash))!, node.params.spec).header;
    while (hex(child.parentHeaderHash.raw) !== hex(proof.block.headerHash)) {
      child = decode<Block>(Block.Codec, (await client.block(child.parentHeaderHash.raw))!, node.params.spec).header;
    }
    expect(hex(child.priorStateRoot.raw)).toBe(hex(proof.stateRoot));
  });
});

describe("stopping", () => {
  it("does not wait for the next slot: a node with a one-minute slot stops at once", async () => {
    const node = await openTestNode({ slotMs: 60_000 });
    node.start();
    const began = Date.now();
    await node.stop();
    expect(Date.now() - began).toBeLessThan(10_000);
  }, 30_000);
});
