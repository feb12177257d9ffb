/**
 * Data availability through the real node: chunks per validator in LMDB, assurances from what
 * each validator holds, withholding, recovery from a third of the chunks (also over the JIP-2
 * WebSocket), refused chunks and assurances, retention.
 */
import { AvailabilityAssurance } from "@typeberry/lib/block";
import { open } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { COUNTER_KEY, counterPayload, NOTE_KEY, readU64 } from "../testing/counter/types.ts";
import { tinyParams } from "../chain/params.ts";
import { devValidatorKeys } from "../chain/validators.ts";
import { encode } from "../codec/jam.ts";
import { hash } from "../crypto/hash.ts";
import { keyPairFromSeed } from "../crypto/ed25519.ts";
import type { WorkPackageStatus } from "../api.ts";
import type { JamNode } from "../node.ts";
import { RpcClient } from "../rpc/client.ts";
import { startRpcServer } from "../rpc/server.ts";
import { COUNTER_SERVICE_ID, counterItem, openTestNode, packageFor, waitForStatus } from "../testing/fixtures.ts";
import { Store } from "../storage/store.ts";
import { tempDir } from "../testing/fixtures.ts";
import { assure } from "./assurance.ts";
import { encodeBundle } from "./bundle.ts";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(options: Parameters<typeof openTestNode>[0] = {}): Promise<JamNode> {
  const node = await openTestNode(options);
  cleanups.push(() => node.stop());
  node.start();
  return node;
}

async function counter(node: JamNode): Promise<bigint> {
  const best = await node.bestBlock();
  return readU64(await node.serviceValue(best.headerHash, COUNTER_SERVICE_ID, COUNTER_KEY));
}

/** A work item of one increment: a package of about 200 bytes. */
function oneIncrement(amount: bigint) {
  return counterItem(counterPayload.increment(amount));
}

describe("availability", () => {
  it("stores each chunk as it was given, a large one then smaller ones with other proofs (one encoding buffer serves them all)", async () => {
    const store = new Store(tempDir("jamgate-chunks-"));
    cleanups.push(() => store.close());
    const chunks = [300_000, 7, 4_104, 0].map((bytes, i) => ({
      chunk: new Uint8Array(bytes).map((_, j) => (i * 31 + j) % 251),
      segmentsRoot: new Uint8Array(32).fill(i + 1),
      path: Array.from({ length: 3 - (i % 3) }, (_, k) => new Uint8Array(32).fill(10 * i + k)),
    }));
    for (const [i, c] of chunks.entries()) store.putChunk("ab".repeat(32), i, c);
    for (const [i, c] of chunks.entries()) {
      const back = store.chunk("ab".repeat(32), i)!;
      expect(Buffer.from(back.chunk).equals(Buffer.from(c.chunk))).toBe(true);
      expect([...back.segmentsRoot]).toEqual([...c.segmentsRoot]);
      expect(back.path.map((p) => [...p])).toEqual(c.path.map((p) => [...p]));
    }
  });

  it('moves the chunks of a data dir made before (msgpack, "da-chunks") to the binary database when it opens, and drops the old one', async () => {
    const dir = tempDir("jamgate-chunks-v1-");
    const chunks = [5_000, 40, 684].map((bytes, i) => ({
      chunk: new Uint8Array(bytes).map((_, j) => (i * 7 + j) % 253),
      segmentsRoot: new Uint8Array(32).fill(i + 9),
      path: [new Uint8Array(32).fill(i), new Uint8Array(64).fill(i + 100)],
    }));
    // The layout before: the chunk object as lmdb-js's default (msgpack) encoding stores it.
    const v1 = open({ path: dir, compression: false });
    const old = v1.openDB<unknown, string>({ name: "da-chunks" });
    for (const [i, c] of chunks.entries()) old.putSync(`${"cd".repeat(32)}:${i}`, c);
    await v1.close();
    const store = new Store(dir);
    cleanups.push(() => store.close());
    expect(store.migratedChunks).toBe(3);
    for (const [i, c] of chunks.entries()) {
      const back = store.chunk("cd".repeat(32), i)!;
      expect(Buffer.from(back.chunk).equals(Buffer.from(c.chunk))).toBe(true);
      expect([...back.segmentsRoot]).toEqual([...c.segmentsRoot]);
      expect(back.path.map((p) => [...p])).toEqual(c.path.map((p) => [...p]));
    }
    await store.close();
    const after = open({ path: dir, compression: false });
    expect([...after.getKeys()]).not.toContain("da-chunks");
    await after.close();
    // Opened again: nothing left to move.
    const again = new Store(dir);
    cleanups.push(() => again.close());
    expect(again.migratedChunks).toBe(0);
    expect(again.chunk("cd".repeat(32), 2)!.chunk).toHaveLength(684);
  });

  it("accumulates when one validator in six withholds its chunk (5 > 2·6/3)", async () => {
    const node = await started({ withholdingValidators: [5] });
    const pkg = await packageFor(node, [oneIncrement(3n)]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    const status = await waitForStatus(node, pkg.hash, ["accumulated"]);
    expect(status.kind).toBe("accumulated");
    if (status.kind !== "accumulated") return;
    const assurances = node.blockAt(status.availableIn.slot)!.extrinsic.assurances.map((a) => a.validatorIndex);
    expect(assurances).toEqual([0, 1, 2, 3, 4]);
    expect(await counter(node)).toBe(3n);
  });

  it("drops the report after U slots when two of six withhold (4 is not more than two thirds)", async () => {
    const node = await started({ withholdingValidators: [1, 4] });
    const pkg = await packageFor(node, [oneIncrement(3n)]);
    // Every status is recorded from before the submission: "reported" lasts only U slots, which a
    // late subscriber on a busy machine could miss.
    const seen: WorkPackageStatus[] = [];
    const unsubscribe = await node.subscribeWorkPackageStatus(pkg.hash, (s) => seen.push(s));
    await node.submitWorkPackage(1, pkg.bytes, []);
    const final = await waitForStatus(node, pkg.hash, ["accumulated"], 30_000);
    unsubscribe();
    expect(final).toMatchObject({ kind: "failed", code: "JG_ERR_REPORT_TIMEOUT" });
    const reported = seen.find((s) => s.kind === "reported");
    expect(reported?.kind).toBe("reported");
    if (reported?.kind !== "reported") return;
    const dropSlot = (await node.bestBlock()).slot;
    expect(dropSlot - reported.reportedIn.slot).toBeGreaterThanOrEqual(tinyParams.availabilityTimeoutSlots);
    expect(await counter(node)).toBe(0n);
    // The core is free again: the next package on it goes through.
    const next = await packageFor(node, [oneIncrement(1n)]);
    await node.submitWorkPackage(1, next.bytes, []);
    expect((await waitForStatus(node, next.hash, ["reported", "available", "accumulated"], 30_000)).kind).not.toBe("failed");
  });

  it("gives a package back byte for byte over the JIP-2 WebSocket after two thirds of its chunks are deleted", async () => {
    const node = await started();
    const rpc = await startRpcServer(node, { port: 0, token: "availability-test" });
    cleanups.push(() => rpc.close());
    const client = await RpcClient.connect(`ws://127.0.0.1:${rpc.port}`, { token: "availability-test" });
    cleanups.push(() => client.close());
    // 300 KB of device data: the bundle spans hundreds of erasure pieces.
    const data = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
    const pkg = await packageFor(client, [counterItem(counterPayload.note(data), { refineGasLimit: 50_000_000n }), counterItem(counterPayload.increment(1n))]);
    const small = await packageFor(client, [counterItem(counterPayload.increment(2n))]);
    for (const p of [pkg, small]) {
      expect(await client.submitWorkPackage(0, p.bytes, [])).toEqual(p.hash);
      expect((await waitForStatus(client, p.hash, ["accumulated"])).kind).toBe("accumulated");
    }
    const best = await client.bestBlock();
    expect(await client.serviceValue(best.headerHash, COUNTER_SERVICE_ID, NOTE_KEY)).toEqual(hash(data));
    node.availability.dropChunks(pkg.hash, [0, 2, 3, 5]); // 4 of 6 gone: validators 1 and 4 are left
    expect(Buffer.compare(await client.fetchWorkPackage(pkg.hash), pkg.bytes)).toBe(0);
    node.availability.dropChunks(pkg.hash, [1]);
    await expect(client.fetchWorkPackage(pkg.hash)).rejects.toMatchObject({ code: "JG_ERR_DA_UNAVAILABLE" });
    expect(Buffer.compare(await client.fetchWorkPackage(small.hash), small.bytes)).toBe(0);
  });

  it("refuses chunks that do not match, are truncated, or belong to no report: not stored, counted", async () => {
    const node = await started();
    const pkg = await packageFor(node, [oneIncrement(1n)]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    await waitForStatus(node, pkg.hash, ["accumulated"]);
    const encoded = encodeBundle("tiny", pkg.bytes);
    node.availability.dropChunks(pkg.hash, [3]);
    const chunk = encoded.chunks[3]!;
    const flipped = chunk.slice();
    flipped[0]! ^= 1;
    await expect(node.submitChunk(encoded.erasureRoot, 3, flipped, encoded.proofs[3]!)).rejects.toThrow(/^JG_ERR_DA_CHUNK_MISMATCH/);
    await expect(node.submitChunk(encoded.erasureRoot, 3, chunk.subarray(1), encoded.proofs[3]!)).rejects.toThrow(/^JG_ERR_DA_CHUNK_LENGTH/);
    await expect(node.submitChunk(encoded.erasureRoot, 2, chunk, encoded.proofs[3]!)).rejects.toThrow(/^JG_ERR_DA_CHUNK_MISMATCH/);
    await expect(node.submitChunk(new Uint8Array(32), 3, chunk, encoded.proofs[3]!)).rejects.toThrow(/^JG_ERR_DA_UNKNOWN_REPORT/);
    expect(node.availability.holds(encoded.erasureRoot, 3)).toBe(false);
    await node.submitChunk(encoded.erasureRoot, 3, chunk, encoded.proofs[3]!); // the real one is taken
    expect(node.availability.holds(encoded.erasureRoot, 3)).toBe(true);
    expect(node.errorStats()).toMatchObject({ JG_ERR_DA_CHUNK_MISMATCH: 2, JG_ERR_DA_CHUNK_LENGTH: 1, JG_ERR_DA_UNKNOWN_REPORT: 1 });
  });

  it("refuses assurances from non-validators, for idle cores, off the best block, or garbled: never counted", async () => {
    const node = await openTestNode({ withholdingValidators: [2, 3] }); // 4 of 6 assure on their own: not enough
    cleanups.push(() => node.stop());
    node.start({ authorBlocks: false });
    const pkg = await packageFor(node, [oneIncrement(7n)]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    await waitForStatus(node, pkg.hash, ["refined"]);
    await node.produceBlock(); // reported on core 0
    const best = await node.bestBlock();
    const validators = devValidatorKeys(tinyParams.validatorsCount);
    const stranger = keyPairFromSeed(new Uint8Array(32).fill(77));
    const bytesOf = (a: AvailabilityAssurance) => encode(AvailabilityAssurance.Codec, a, tinyParams.spec);
    await expect(node.submitAssurance(bytesOf(assure(tinyParams, stranger, 2, best.headerHash, [0])))).rejects.toThrow(/^JG_ERR_DA_ASSURANCE_SIGNER/);
    await expect(node.submitAssurance(bytesOf(assure(tinyParams, validators[2]!, 2, best.headerHash, [1])))).rejects.toThrow(/^JG_ERR_DA_UNKNOWN_REPORT/);
    await expect(node.submitAssurance(bytesOf(assure(tinyParams, validators[2]!, 2, new Uint8Array(32), [0])))).rejects.toThrow(/^JG_ERR_DA_ASSURANCE_ANCHOR/);
    await expect(node.submitAssurance(Uint8Array.of(1, 2, 3))).rejects.toThrow(/^JG_ERR_DA_ASSURANCE_MALFORMED/);
    const next = await node.produceBlock();
    expect(node.blockAt(next.slot)!.extrinsic.assurances.map((a) => a.validatorIndex)).toEqual([0, 1, 4, 5]);
    expect((await node.workPackageStatus(pkg.hash))?.kind).toBe("reported");
    // A real assurance from validator 2 tips it over: 5 of 6.
    await node.submitAssurance(bytesOf(assure(tinyParams, validators[2]!, 2, next.headerHash, [0])));
    const third = await node.produceBlock();
    expect(node.blockAt(third.slot)!.extrinsic.assurances.map((a) => a.validatorIndex)).toEqual([0, 1, 2, 4, 5]);
    expect((await node.workPackageStatus(pkg.hash))?.kind).toBe("accumulated");
  });

  it("prunes chunks past the retention horizon and says so", async () => {
    const lines: string[] = [];
    const logger = { info: (_: object, msg?: string) => lines.push(msg ?? ""), warn() {}, error() {} };
    const node = await openTestNode({ daRetentionSlots: 8, logger });
    cleanups.push(() => node.stop());
    node.start({ authorBlocks: false });
    const pkg = await packageFor(node, [oneIncrement(1n)]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    await waitForStatus(node, pkg.hash, ["refined"]);
    for (let i = 0; i < 3; i++) await node.produceBlock();
    expect((await node.workPackageStatus(pkg.hash))?.kind).toBe("accumulated");
    expect((await node.fetchWorkPackage(pkg.hash)).length).toBe(pkg.bytes.length);
    for (let i = 0; i < 8; i++) await node.produceBlock();
    expect(lines).toContain("pruned DA chunks");
    await expect(node.fetchWorkPackage(pkg.hash)).rejects.toThrow(/^JG_ERR_DA_UNAVAILABLE/);
    expect(node.availability.bytesStored).toBe(0);
  });

  it("keeps stored chunks within the byte bound, but never prunes chunks a report may still need", async () => {
    const lines: string[] = [];
    const logger = { info: (_: object, msg?: string) => lines.push(msg ?? ""), warn() {}, error() {} };
    const node = await openTestNode({ daMaxBytes: 1, logger });
    cleanups.push(() => node.stop());
    node.start({ authorBlocks: false });
    const pkg = await packageFor(node, [oneIncrement(4n)]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    await waitForStatus(node, pkg.hash, ["refined"]);
    await node.produceBlock();
    await node.produceBlock();
    // Over the bound from the start, yet the report became available and was accumulated.
    expect((await node.workPackageStatus(pkg.hash))?.kind).toBe("accumulated");
    expect(lines).toContain("DA storage over its bound: only chunks of reports that may still become available are left");
    expect(lines).not.toContain("pruned DA chunks");
    for (let i = 0; i < tinyParams.availabilityTimeoutSlots + 2; i++) await node.produceBlock();
    expect(lines).toContain("pruned DA chunks");
    expect(node.availability.bytesStored).toBe(0);
  });
});
