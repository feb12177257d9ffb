import { BytesBlob } from "@typeberry/lib/bytes";
import { initEc, padAndEncodeData } from "@typeberry/lib/erasure-coding";
import { binaryMerkleization } from "@typeberry/lib/state-merkleization";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blake2b, hash } from "../crypto/hash.ts";
import { pseudoRandomBytes } from "../testing/bytes.ts";
import {
  chunkBytes,
  chunkProof,
  type ChunkProof,
  encodeChunks,
  type ErasureParams,
  erasureParams,
  erasureRoot,
  erasureTree,
  MAX_DATA_BYTES,
  recoverData,
  segmentsChunkRoot,
  stripeWords,
  verifyChunk,
  verifyWellBalanced,
  wellBalancedRoot,
  wellBalancedTrace,
} from "./erasure.ts";

const tiny = erasureParams("tiny");
const full = erasureParams("full");

const bytes = pseudoRandomBytes;

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

function subset(chunks: readonly Uint8Array[], indices: readonly number[]): Map<number, Uint8Array> {
  return new Map(indices.map((i) => [i, chunks[i]!] as const));
}

function lastN(params: ErasureParams): number[] {
  return Array.from({ length: params.dataShards }, (_, j) => params.chunks - params.dataShards + j);
}

function recovered(params: ErasureParams, chunks: Map<number, Uint8Array>, length: number): Uint8Array {
  const result = recoverData(params, chunks, length);
  if (!result.ok) throw new Error(`${result.error.kind}: ${result.error.detail}`);
  return result.value;
}

/** typeberry's well-balanced Merkle root (GP E.1.1), as an independent reference. */
function referenceMB(items: readonly Uint8Array[]): Uint8Array {
  const hasher = { hashConcat: (n: Uint8Array, r: Uint8Array[] = []) => blake2b.hashBlobs([n, ...r]) };
  return binaryMerkleization(
    items.map((i) => BytesBlob.blobFrom(i)),
    hasher as never,
  ).raw;
}

describe("erasureParams", () => {
  it("has V chunks and N = W_E / 2 data shards", () => {
    expect(full).toMatchObject({ chunks: 1023, dataShards: 342, pieceBytes: 684 });
    expect(tiny).toMatchObject({ chunks: 6, dataShards: 2, pieceBytes: 4 });
  });

  it("sizes chunks 2⌈l / W_E⌉", () => {
    expect([0, 1, 683, 684, 685, 4104].map((l) => chunkBytes(full, l))).toEqual([0, 2, 2, 2, 4, 12]);
    expect([0, 1, 3, 4, 5, 4104].map((l) => chunkBytes(tiny, l))).toEqual([0, 2, 2, 2, 4, 2052]);
    expect(chunkBytes(full, MAX_DATA_BYTES)).toBe(40_326);
  });
});

describe("encodeChunks / recoverData round trip", () => {
  const sizes = [0, 1, 683, 684, 685, 4096, 100_000];
  for (const params of [tiny, full]) {
    for (const size of sizes) {
      it(`${params.name}: ${size} octets`, () => {
        const data = bytes(size, size + 7);
        const chunks = encodeChunks(params, data);
        const k = chunkBytes(params, size);
        expect(chunks.length).toBe(params.chunks);
        expect(chunks.every((c) => c.length === k)).toBe(true);
        // Systematic: chunk i < N is the i-th contiguous slice of the zero-padded data.
        const padded = new Uint8Array(params.dataShards * k);
        padded.set(data);
        for (let i = 0; i < params.dataShards; i++) expect(same(chunks[i]!, padded.subarray(i * k, (i + 1) * k))).toBe(true);
        // From the data shards, from the last N (recovery shards only), from all chunks.
        const first = Array.from({ length: params.dataShards }, (_, i) => i);
        expect(same(recovered(params, subset(chunks, first), size), data)).toBe(true);
        expect(same(recovered(params, subset(chunks, lastN(params)), size), data)).toBe(true);
        const all = recoverData(params, chunks, size);
        expect(all.ok && same(all.value, data)).toBe(true);
      });
    }
  }

  it("full: a whole W_B bundle (13,791,360 octets) encodes and recovers from recovery shards only", () => {
    const data = bytes(MAX_DATA_BYTES, 99);
    const chunks = encodeChunks(full, data);
    expect(chunks.length).toBe(1023);
    expect(chunks[0]!.length).toBe(40_326);
    expect(same(recovered(full, subset(chunks, lastN(full)), data.length), data)).toBe(true);
    // A mixed subset: the odd chunks 1, 3, …, 683 (171 data shards, 171 recovery shards).
    const mixed = Array.from({ length: 342 }, (_, j) => 1 + 2 * j);
    expect(same(recovered(full, subset(chunks, mixed), data.length), data)).toBe(true);
  });

  it("full: with k = 1 (684 octets) it agrees with typeberry's per-piece coder (same layout only for one piece)", async () => {
    await initEc();
    const data = bytes(684, 5);
    const ours = encodeChunks(full, data);
    const theirs = padAndEncodeData(BytesBlob.blobFrom(data));
    for (let i = 0; i < 1023; i++) expect(same(ours[i]!, theirs[i]!.raw)).toBe(true);
  });

  it("tiny: data over several WASM calls (stripes of 32,736 words, the binding's 16-bit shard size) round-trips", () => {
    expect(stripeWords(full)).toBe(4096);
    expect(stripeWords(tiny)).toBe(32_736);
    const data = bytes(4 * 75_000 - 3, 17); // 75,000 words per shard: stripes of 32,736, 32,736 and 9,528 words
    const chunks = encodeChunks(tiny, data);
    const lastTwo = recoverData(tiny, subset(chunks, [4, 5]), data.length);
    expect(lastTwo.ok && same(lastTwo.value, data)).toBe(true);
    const mixed = recoverData(tiny, subset(chunks, [1, 3]), data.length);
    expect(mixed.ok && same(mixed.value, data)).toBe(true);
  });

  it("recovers from random subsets of exactly N chunks (property)", () => {
    for (const [params, runs, maxLength] of [
      [tiny, 40, 20_000],
      [full, 6, 20_000],
    ] as const) {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength }),
          fc.shuffledSubarray(
            Array.from({ length: params.chunks }, (_, i) => i),
            { minLength: params.dataShards, maxLength: params.dataShards },
          ),
          (data, indices) => {
            const chunks = encodeChunks(params, data);
            const result = recoverData(params, subset(chunks, indices), data.length);
            return result.ok && same(result.value, data);
          },
        ),
        { numRuns: runs },
      );
    }
  });

  it("takes an array with nulls for missing chunks", () => {
    const data = bytes(5_000, 3);
    const chunks: (Uint8Array | null)[] = encodeChunks(tiny, data);
    const sparse = chunks.map((c, i) => (i === 1 || i === 4 ? c : null));
    const result = recoverData(tiny, sparse, data.length);
    expect(result.ok && same(result.value, data)).toBe(true);
  });
});

describe("recoverData rejects bad input as a value", () => {
  const data = bytes(3_000, 11);
  const chunks = encodeChunks(full, data);

  it("fewer than N chunks", () => {
    const result = recoverData(full, subset(chunks, lastN(full).slice(1)), data.length);
    expect(result).toMatchObject({ ok: false, error: { kind: "not-enough-chunks" } });
    expect(recoverData(tiny, [null, null, null, null, null, encodeChunks(tiny, data)[5]!], data.length)).toMatchObject({
      ok: false,
      error: { kind: "not-enough-chunks" },
    });
  });

  it("a chunk of the wrong length (or data length inconsistent with the chunks)", () => {
    const bad = subset(chunks, lastN(full));
    bad.set(1000, chunks[1000]!.subarray(1));
    expect(recoverData(full, bad, data.length)).toMatchObject({ ok: false, error: { kind: "chunk-length" } });
    expect(recoverData(full, subset(chunks, lastN(full)), data.length + 684)).toMatchObject({ ok: false, error: { kind: "chunk-length" } });
  });

  it("an index out of range, or too many array entries", () => {
    const bad = subset(chunks, lastN(full));
    bad.set(1023, chunks[0]!);
    expect(recoverData(full, bad, data.length)).toMatchObject({ ok: false, error: { kind: "chunk-index" } });
    const neg = new Map([[-1, chunks[0]!]]);
    expect(recoverData(full, neg, data.length)).toMatchObject({ ok: false, error: { kind: "chunk-index" } });
    expect(recoverData(full, [...chunks, chunks[0]!], data.length)).toMatchObject({ ok: false, error: { kind: "chunk-index" } });
  });

  it("a data length over W_B", () => {
    expect(recoverData(full, new Map(), MAX_DATA_BYTES + 1)).toMatchObject({ ok: false, error: { kind: "data-length" } });
  });

  it("throws for programmer mistakes", () => {
    expect(() => encodeChunks(full, new Uint8Array(MAX_DATA_BYTES + 1))).toThrow(RangeError);
    expect(() => encodeChunks({ ...full, dataShards: 341 }, data)).toThrow(RangeError);
    expect(() => recoverData(full, subset(chunks, lastN(full)), -1)).toThrow(RangeError);
    expect(() => recoverData(full, new Map([[0, "x" as unknown as Uint8Array]]), 1)).toThrow(TypeError);
  });
});

describe("well-balanced Merkle tree (GP E.1.1)", () => {
  it("M_B matches typeberry's binaryMerkleization for 0..40 and 1023 items of mixed sizes", () => {
    for (const n of [...Array.from({ length: 41 }, (_, i) => i), 1023]) {
      const items = Array.from({ length: n }, (_, i) => bytes(i % 3 === 0 ? 64 : i % 3 === 1 ? 32 : 12, i + 1));
      expect(Buffer.from(wellBalancedRoot(items)).toString("hex"), `n=${n}`).toBe(Buffer.from(referenceMB(items)).toString("hex"));
    }
    expect(same(wellBalancedRoot([]), new Uint8Array(32))).toBe(true);
    expect(same(wellBalancedRoot([bytes(64)]), hash(bytes(64)))).toBe(true);
  });

  it("every trace verifies, and only at its own index", () => {
    for (const n of [1, 2, 3, 5, 6, 7, 16, 33]) {
      const items = Array.from({ length: n }, (_, i) => bytes(64, i + 1));
      const root = wellBalancedRoot(items);
      for (let i = 0; i < n; i++) {
        const path = wellBalancedTrace(items, i);
        expect(path.length).toBeGreaterThanOrEqual(Math.floor(Math.log2(n)));
        expect(path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
        expect(verifyWellBalanced(root, n, i, items[i]!, path), `n=${n} i=${i}`).toBe(true);
        if (n > 1) expect(verifyWellBalanced(root, n, (i + 1) % n, items[i]!, path)).toBe(false);
      }
    }
  });
});

describe("erasure root (GP 14.4.1)", () => {
  it("without exports: M_B over H(bundle chunk i) ⌢ H₀", () => {
    for (const params of [tiny, full]) {
      const chunks = encodeChunks(params, bytes(10_000, 21));
      const leaves = chunks.map((c) => {
        const leaf = new Uint8Array(64);
        leaf.set(hash(c));
        return leaf;
      });
      expect(same(erasureRoot(chunks), referenceMB(leaves))).toBe(true);
    }
  });

  it("with exports: M_B over H(bundle chunk i) ⌢ M_B([segment chunks of validator i])", () => {
    const bundle = encodeChunks(tiny, bytes(9_000, 31));
    const segments = [bytes(4104, 1), bytes(4104, 2), bytes(4104, 3)].map((s) => encodeChunks(tiny, s));
    expect(segments[0]![0]!.length).toBe(2052); // tiny: W_E = 4, so a 4,104-octet segment has 1,026-word chunks
    const leaves = bundle.map((c, i) => {
      const leaf = new Uint8Array(64);
      leaf.set(hash(c));
      leaf.set(referenceMB(segments.map((s) => s[i]!)), 32);
      return leaf;
    });
    expect(same(erasureRoot(bundle, segments), referenceMB(leaves))).toBe(true);
    // One segment: s♣_i = H(its chunk).
    const one = erasureTree(bundle, [segments[0]!]);
    expect(same(one.leaves[2]!.subarray(32), hash(segments[0]![2]!))).toBe(true);
    expect(same(segmentsChunkRoot([segments[0]![2]!]), hash(segments[0]![2]!))).toBe(true);
  });

  it("full: every chunk's proof verifies; a changed chunk, a wrong index or a damaged proof do not", () => {
    const chunks = encodeChunks(full, bytes(50_000, 41));
    const tree = erasureTree(chunks);
    expect(same(tree.root, erasureRoot(chunks))).toBe(true);
    for (let i = 0; i < 1023; i++) {
      const proof = tree.proof(i);
      expect(proof.path.length).toBeGreaterThanOrEqual(9);
      expect(proof.path.length).toBeLessThanOrEqual(10);
      expect(verifyChunk(full, tree.root, i, chunks[i]!, proof), `chunk ${i}`).toBe(true);
    }
    const i = 500;
    const proof = chunkProof(chunks, i);
    const changed = chunks[i]!.slice();
    changed[0]! ^= 1;
    expect(verifyChunk(full, tree.root, i, changed, proof)).toBe(false);
    expect(verifyChunk(full, tree.root, i + 1, chunks[i]!, proof)).toBe(false);
    expect(verifyChunk(full, tree.root, i, chunks[i + 1]!, proof)).toBe(false);
    expect(verifyChunk(full, tree.root, 1023, chunks[i]!, proof)).toBe(false);
    expect(verifyChunk(full, tree.root, -1, chunks[i]!, proof)).toBe(false);
    const damaged: ChunkProof[] = [
      { ...proof, path: proof.path.slice(1) },
      { ...proof, path: [...proof.path, new Uint8Array(32)] },
      { ...proof, path: proof.path.map((p, j) => (j === 3 ? p.subarray(1) : p)) },
      { ...proof, path: proof.path.map((p, j) => (j === 0 ? p.map((b) => b ^ 0xff) : p)) },
      { ...proof, segmentsRoot: new Uint8Array(32).fill(1) },
      { ...proof, segmentsRoot: new Uint8Array(31) },
      { segmentsRoot: proof.segmentsRoot, path: "nope" as unknown as Uint8Array[] },
    ];
    for (const [j, bad] of damaged.entries()) expect(verifyChunk(full, tree.root, i, chunks[i]!, bad), `damaged proof ${j}`).toBe(false);
    expect(verifyChunk(full, new Uint8Array(32), i, chunks[i]!, proof)).toBe(false);
    expect(verifyChunk(tiny, tree.root, 0, chunks[0]!, tree.proof(0))).toBe(false);
  });

  it("tiny: proofs with exports carry the validator's segments root", () => {
    const bundle = encodeChunks(tiny, bytes(777, 51));
    const segments = [encodeChunks(tiny, bytes(4104, 52))];
    const tree = erasureTree(bundle, segments);
    for (let i = 0; i < 6; i++) {
      const proof = tree.proof(i);
      expect(same(proof.segmentsRoot, segmentsChunkRoot([segments[0]![i]!]))).toBe(true);
      expect(verifyChunk(tiny, tree.root, i, bundle[i]!, proof)).toBe(true);
      expect(verifyChunk(tiny, tree.root, i, bundle[i]!, { ...proof, segmentsRoot: new Uint8Array(32) })).toBe(false);
    }
  });
});
