/**
 * Erasure coding of the Gray Paper v0.7.2 (Appendix H "Erasure Coding") and the erasure root of
 * the availability specifier (§14.4.1 "Availability Specifier"), for the `tiny` chain (6 chunks,
 * any 2 recover the data) and the `full` chain (1,023 chunks, any 342 recover the data).
 *
 * ## The code (GP H.2, eq. "erasurecoding")
 *
 *   C_k(d ∈ B_{W_E·k}) = join#( T[ C(p) | p ∈ T split_2#(split_{2k}(d)) ] )
 *
 * with W_E = 2N the piece size (684 full, 4 tiny) and N the number of data shards (342, 2). So the
 * data, zero-padded to a multiple of W_E (P_{W_E}, GP eq. 14 "zeropadding"), is cut into N
 * *contiguous* shards of 2k octets; each shard is a sequence of k words (two octets,
 * little-endian: GP H.1 "a little-endian B_2 form of the 16-bit GF points"); word position p of
 * every shard forms one message of N words, which the systematic Reed-Solomon code C of GP H.1
 * (GF(2^16), Cantor basis, Lin–Chung–Han 2014) extends to V = 1,023 (tiny: 6) words. Chunk i < N
 * is data shard i itself; chunk N + r holds recovery word r of every position. Measured against
 * every `erasure/{tiny,full}` vector (node/vectors/erasure.ts), bit for bit.
 *
 * ## The Reed-Solomon implementation
 *
 * C is computed by reed-solomon-simd (the GP's reference algorithm) compiled to WASM, from
 * `@typeberry/native`. Every word position is coded independently by the same linear map, so one
 * call codes many positions at once: its shards are the GP shards in its own layout, whose shard
 * size is a multiple of 64 octets and where each 64-octet block carries 32 words as 32 low octets
 * then 32 high octets. {@link toRsLayout} / {@link fromRsLayout} convert.
 *
 * The positions are coded in column stripes of {@link stripeWords} words (full: 4,096 = 8 KiB per
 * shard), one WASM call per stripe: a full W_B bundle takes 5 calls with the full parameters
 * (20,163 words per shard), 106 with the tiny ones (3,447,840 words per shard). Measured here
 * on a full bundle, striping is as fast as one call over 40 KB shards (encode ~0.4 s of WASM
 * either way, 2,048 to 20,192 words per call within noise) and it bounds the WASM heap, which
 * never shrinks, to ~44 MB instead of the ~93 MB (encode) / ~176 MB (recover) that one
 * whole-bundle call leaves behind ({@link rsHeapBytes}).
 * (typeberry's own `@typeberry/lib/erasure-coding` calls WASM once per 684-octet piece, i.e.
 * 20,163 times for a bundle, and uses the older GP 0.6 interleaved layout: not used here.)
 *
 * ## Errors
 *
 * Programmer mistakes (malformed params, data over W_B, a non-byte chunk, inconsistent segment
 * chunk lists) throw `TypeError` / `RangeError`. Bad input that can arrive from the network
 * (too few chunks, a chunk of the wrong length, an index out of range, a proof that does not
 * verify) is a value: a {@link RecoverError} result or `false`.
 */
import { init, reedSolomon } from "@typeberry/native";
import { type ChainName, chainParams } from "../chain/params.ts";
import { hash, hashParts } from "../crypto/hash.ts";
import { err, ok, type Result } from "../../devices/protocol/errors.ts";

// reed-solomon-simd's WASM is instantiated once per thread (async), like the blake2b hasher.
const rsWasm = await init.reedSolomon();

/** Current size of the reed-solomon WASM heap in octets (it grows to the largest call's need, never shrinks). */
export function rsHeapBytes(): number {
  return rsWasm.memory.buffer.byteLength;
}

/** Erasure-coding parameters of a chain. */
export interface ErasureParams {
  readonly name: ChainName;
  /** Chunks produced (one per validator): V = 1,023 full, 6 tiny. */
  readonly chunks: number;
  /** Data (original) shards N: any N distinct chunks recover the data. 342 full, 2 tiny. */
  readonly dataShards: number;
  /** W_E = 2N, the erasure-coded piece size in octets (GP I.4.4): 684 full, 4 tiny. */
  readonly pieceBytes: number;
}

/**
 * The parameters of the `tiny` or `full` chain: V chunks from the chain's validator count, and
 * N = W_E / 2 data shards from its piece size W_E (GP I.4.4 W_E = 684, so 342 = the GP's "rate
 * 342:1023"; the tiny test-vector spec has W_E = 4 (1,026 pieces per 4,104-octet segment), so 2).
 */
export function erasureParams(name: ChainName): ErasureParams {
  const cached = PARAMS.get(name);
  if (cached !== undefined) return cached;
  const chain = chainParams(name);
  const pieceBytes = chain.spec.erasureCodedPieceSize as number;
  const params: ErasureParams = Object.freeze({ name, chunks: chain.validatorsCount, dataShards: pieceBytes / 2, pieceBytes });
  checkParams(params);
  PARAMS.set(name, params);
  return params;
}
const PARAMS = new Map<ChainName, ErasureParams>();

/** Largest data encoded or recovered: W_B = 13,791,360 octets, a full work-package bundle (GP I.4.4). */
export const MAX_DATA_BYTES: number = chainParams("full").maxBundleBytes;

/** reed-solomon-simd codes shards in 64-octet blocks of 32 words (GP H.1: a word is 2 octets). */
const RS_BLOCK_BYTES = 64;
const WORDS_PER_BLOCK = 32;

/**
 * Octets of all V shards together coded per WASM call: 8 MiB. Each call has a fixed cost (the
 * decoder's error-locator transform over GF(2^16): measured ~0.9 ms), so the stripe is sized by the whole
 * code word set, not per shard: full (1,023 shards) 4,096 words = 8 KiB per shard; tiny (6
 * shards) would get 699,040 words but is capped at 32,736 ({@link MAX_RS_SHARD_BYTES}).
 */
export const STRIPE_BUDGET_BYTES = 8 << 20;

/**
 * Largest shard the WASM binding takes: its `shard_len` is a 16-bit integer (measured: a
 * 1,398,080-octet shard is silently coded as 1,398,080 mod 65,536 = 21,824 octets), so shards
 * stay ≤ 65,472 octets, the largest multiple of 64 below 2^16, i.e. 32,736 words.
 */
const MAX_RS_SHARD_BYTES = 65_472;

/**
 * Word positions coded per WASM call: a multiple of 32 with V shards × 2 octets × words ≤
 * {@link STRIPE_BUDGET_BYTES} and at most {@link MAX_RS_SHARD_BYTES} per shard.
 */
export function stripeWords(params: ErasureParams): number {
  const words = Math.floor(STRIPE_BUDGET_BYTES / (2 * params.chunks) / WORDS_PER_BLOCK) * WORDS_PER_BLOCK;
  return Math.min(MAX_RS_SHARD_BYTES / 2, Math.max(WORDS_PER_BLOCK, words));
}

/**
 * Octets in each chunk of data of `dataLength` octets: 2k with k = ⌈dataLength / W_E⌉ words
 * (GP 14.4.1: b♣ uses C_{⌈|b|/W_E⌉}(P_{W_E}(b))). 0 for empty data.
 */
export function chunkBytes(params: ErasureParams, dataLength: number): number {
  checkParams(params);
  if (!Number.isSafeInteger(dataLength) || dataLength < 0) throw new RangeError(`data length must be a non-negative integer, got ${dataLength}`);
  return 2 * Math.ceil(dataLength / params.pieceBytes);
}

/**
 * GP 14.4.1 / H.2: C_{⌈|d|/W_E⌉}(P_{W_E}(d)), all `params.chunks` chunks of `data`, each of
 * {@link chunkBytes} octets (0 for empty data). Chunks `0 … N−1` are the zero-padded data cut into
 * N contiguous shards; the rest are the recovery shards.
 *
 * The chunks are views into one buffer of `chunks × chunkBytes` octets (the only allocation the
 * size of the output; per stripe two buffers of ≤ N × 8 KiB and (V−N) × 8 KiB are used).
 * Throws `RangeError` for data over {@link MAX_DATA_BYTES} (callers check W_B first).
 */
export function encodeChunks(params: ErasureParams, data: Uint8Array): Uint8Array[] {
  checkParams(params);
  if (!(data instanceof Uint8Array)) throw new TypeError("encodeChunks: data must be a Uint8Array");
  if (data.length > MAX_DATA_BYTES) throw new RangeError(`encodeChunks: ${data.length} octets exceed W_B = ${MAX_DATA_BYTES}`);
  const { chunks: total, dataShards: n } = params;
  const recovery = total - n;
  const size = chunkBytes(params, data.length);
  const words = size / 2;
  const all = new Uint8Array(total * size);
  all.set(data); // data shards = P_{W_E}(data) cut in n; the padding is the buffer's zeros.
  forEachStripe(params, words, (w0, count, shardLen, view) => {
    for (let i = 0; i < n; i++) toRsLayout(all, i * size + 2 * w0, count, view, i * shardLen);
    const out = reedSolomon.encode(recovery, new reedSolomon.ShardsCollection(shardLen, view)).take_data();
    if (out.length !== recovery * shardLen) throw new Error(`reed-solomon encode returned ${out.length} octets, expected ${recovery * shardLen}`);
    for (let r = 0; r < recovery; r++) fromRsLayout(out, r * shardLen, count, all, (n + r) * size + 2 * w0);
  });
  const result = new Array<Uint8Array>(total);
  for (let i = 0; i < total; i++) result[i] = all.subarray(i * size, (i + 1) * size);
  return result;
}

/** Why {@link recoverData} could not recover: bad input, reported as a value. */
export interface RecoverError {
  readonly kind:
    | "not-enough-chunks" // fewer than N distinct chunks given
    | "chunk-index" // an index outside 0 … V−1 (or an array longer than V)
    | "chunk-length" // a chunk whose length is not chunkBytes(params, dataLength)
    | "data-length"; // dataLength over W_B
  readonly detail: string;
}

/**
 * GP H.2 R_k: the original data from any N = `params.dataShards` distinct chunks (a `Map` from
 * chunk index to chunk, or an array indexed by chunk index with `null` for missing ones), cut to
 * `dataLength` octets (the bundle length l of the availability specifier).
 *
 * Every given chunk must be exactly {@link chunkBytes}(params, dataLength) octets, and its index
 * in 0 … V−1; otherwise, or with fewer than N chunks, the result is a {@link RecoverError} (bad
 * input from the network is never thrown). With more than N chunks, data shards are used first,
 * then recovery chunks in index order; when all N data shards are present recovery is a copy
 * (GP: "if the original 342 items are known then reconstruction is just their concatenation").
 *
 * Chunk contents are not authenticated here: check each against the erasure root first
 * ({@link verifyChunk}); otherwise wrong chunks give wrong data, not an error.
 *
 * The returned array may be a view into a buffer up to W_E − 1 octets longer (the padding).
 */
export function recoverData(
  params: ErasureParams,
  chunks: ReadonlyMap<number, Uint8Array> | readonly (Uint8Array | null | undefined)[],
  dataLength: number,
): Result<Uint8Array, RecoverError> {
  checkParams(params);
  const { chunks: total, dataShards: n } = params;
  if (!Number.isSafeInteger(dataLength) || dataLength < 0) throw new RangeError(`recoverData: data length must be a non-negative integer, got ${dataLength}`);
  if (dataLength > MAX_DATA_BYTES) return err({ kind: "data-length", detail: `data length ${dataLength} exceeds W_B = ${MAX_DATA_BYTES}` });
  const size = chunkBytes(params, dataLength);
  const words = size / 2;

  const byIndex = new Array<Uint8Array | undefined>(total);
  let given = 0;
  const entries: Iterable<readonly [number, Uint8Array | null | undefined]> =
    chunks instanceof Map ? chunks.entries() : (chunks as readonly (Uint8Array | null | undefined)[]).entries();
  if (!(chunks instanceof Map) && (chunks as readonly unknown[]).length > total) {
    return err({ kind: "chunk-index", detail: `chunk array has ${(chunks as readonly unknown[]).length} entries, more than the ${total} chunks` });
  }
  for (const [index, chunk] of entries) {
    if (chunk === null || chunk === undefined) continue;
    if (!(chunk instanceof Uint8Array)) throw new TypeError(`recoverData: chunk ${index} is not a Uint8Array`);
    if (!Number.isInteger(index) || index < 0 || index >= total) return err({ kind: "chunk-index", detail: `chunk index ${index} is not in 0..${total - 1}` });
    if (chunk.length !== size) {
      return err({ kind: "chunk-length", detail: `chunk ${index} has ${chunk.length} octets; data of ${dataLength} octets has chunks of ${size}` });
    }
    byIndex[index] = chunk;
    given += 1;
  }
  if (given < n) return err({ kind: "not-enough-chunks", detail: `${given} distinct chunks given, ${n} needed` });

  const out = new Uint8Array(n * size);
  const missing: number[] = [];
  for (let i = 0; i < n; i++) {
    const chunk = byIndex[i];
    if (chunk === undefined) missing.push(i);
    else out.set(chunk, i * size);
  }
  if (missing.length > 0 && words > 0) {
    // Exactly N shards for the decoder: the data shards we have plus the first recovery chunks.
    const use: number[] = [];
    for (let i = 0; i < n; i++) if (byIndex[i] !== undefined) use.push(i);
    for (let i = n; i < total && use.length < n; i++) if (byIndex[i] !== undefined) use.push(i);
    forEachStripe(params, words, (w0, count, shardLen, view) => {
      for (let j = 0; j < n; j++) toRsLayout(byIndex[use[j]!]!, 2 * w0, count, view, j * shardLen);
      const decoded = reedSolomon.decode(n, total - n, new reedSolomon.ShardsCollection(shardLen, view, Uint16Array.from(use)));
      const restored = decoded.take_indices(); // must precede take_data, which frees the collection
      const data = decoded.take_data();
      if (restored === undefined || data.length !== restored.length * shardLen) {
        throw new Error(`reed-solomon decode returned ${data.length} octets for ${restored?.length} shards of ${shardLen}`);
      }
      let filled = 0;
      for (let j = 0; j < restored.length; j++) {
        const index = restored[j]!;
        if (index >= n || byIndex[index] !== undefined) continue; // only missing data shards are needed
        fromRsLayout(data, j * shardLen, count, out, index * size + 2 * w0);
        filled += 1;
      }
      if (filled !== missing.length) throw new Error(`reed-solomon decode restored ${filled} of ${missing.length} missing data shards`);
    });
  }
  return ok(out.subarray(0, dataLength));
}

/**
 * Runs `code` for each stripe of word positions (see {@link stripeWords}), handing it the
 * stripe's first word, its word count, its reed-solomon shard size and an input buffer for N
 * shards of it, reused across stripes (one allocation per encode or recover).
 */
function forEachStripe(params: ErasureParams, words: number, code: (w0: number, count: number, shardLen: number, input: Uint8Array) => void): void {
  if (words === 0) return;
  const stripe = stripeWords(params);
  const buffer = new Uint8Array(params.dataShards * rsShardBytes(Math.min(words, stripe)));
  for (let w0 = 0; w0 < words; w0 += stripe) {
    const count = Math.min(stripe, words - w0);
    const shardLen = rsShardBytes(count);
    code(w0, count, shardLen, buffer.subarray(0, params.dataShards * shardLen));
  }
}

/** reed-solomon-simd shard size for `words` word positions: whole 64-octet blocks. */
function rsShardBytes(words: number): number {
  return Math.ceil(words / WORDS_PER_BLOCK) * RS_BLOCK_BYTES;
}

/** Whether typed-array views read words little-endian here (all supported platforms do). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * GP words (little-endian octet pairs) `src[srcOff …+2·words]` into reed-solomon-simd layout at
 * `dst[dstOff …]`: per 64-octet block, the low octets of 32 words, then their high octets. The
 * unused tail of a last partial block is zeroed. Whole blocks go through 16/32-bit views when
 * aligned (2.5× faster than octet by octet), the rest octet by octet.
 */
export function toRsLayout(src: Uint8Array, srcOff: number, words: number, dst: Uint8Array, dstOff: number): void {
  const blocks = Math.floor(words / WORDS_PER_BLOCK);
  let w = 0;
  if (LITTLE_ENDIAN && blocks > 0 && ((src.byteOffset + srcOff) & 1) === 0 && ((dst.byteOffset + dstOff) & 3) === 0) {
    const s16 = new Uint16Array(src.buffer, src.byteOffset + srcOff, blocks * WORDS_PER_BLOCK);
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset + dstOff, blocks * (RS_BLOCK_BYTES / 4));
    for (let b = 0, s = 0, d = 0; b < blocks; b++, s += 32, d += 16) {
      for (let j = 0; j < 8; j++) {
        const w0 = s16[s + 4 * j]!;
        const w1 = s16[s + 4 * j + 1]!;
        const w2 = s16[s + 4 * j + 2]!;
        const w3 = s16[s + 4 * j + 3]!;
        d32[d + j] = (w0 & 0xff) | ((w1 & 0xff) << 8) | ((w2 & 0xff) << 16) | ((w3 & 0xff) << 24);
        d32[d + 8 + j] = (w0 >>> 8) | (w1 & 0xff00) | ((w2 & 0xff00) << 8) | ((w3 & 0xff00) << 16);
      }
    }
    w = blocks * WORDS_PER_BLOCK;
  }
  let s = srcOff + 2 * w;
  let d = dstOff + 2 * w;
  for (; w + WORDS_PER_BLOCK <= words; w += WORDS_PER_BLOCK) {
    for (let j = 0; j < WORDS_PER_BLOCK; j++) {
      dst[d + j] = src[s + 2 * j]!;
      dst[d + WORDS_PER_BLOCK + j] = src[s + 2 * j + 1]!;
    }
    s += RS_BLOCK_BYTES;
    d += RS_BLOCK_BYTES;
  }
  const rest = words - w;
  if (rest > 0) {
    for (let j = 0; j < rest; j++) {
      dst[d + j] = src[s + 2 * j]!;
      dst[d + WORDS_PER_BLOCK + j] = src[s + 2 * j + 1]!;
    }
    dst.fill(0, d + rest, d + WORDS_PER_BLOCK);
    dst.fill(0, d + WORDS_PER_BLOCK + rest, d + RS_BLOCK_BYTES);
  }
}

/** Inverse of {@link toRsLayout}: `words` words from reed-solomon-simd layout to GP octet pairs. */
export function fromRsLayout(src: Uint8Array, srcOff: number, words: number, dst: Uint8Array, dstOff: number): void {
  const blocks = Math.floor(words / WORDS_PER_BLOCK);
  let w = 0;
  if (LITTLE_ENDIAN && blocks > 0 && ((src.byteOffset + srcOff) & 3) === 0 && ((dst.byteOffset + dstOff) & 1) === 0) {
    const s32 = new Uint32Array(src.buffer, src.byteOffset + srcOff, blocks * (RS_BLOCK_BYTES / 4));
    const d16 = new Uint16Array(dst.buffer, dst.byteOffset + dstOff, blocks * WORDS_PER_BLOCK);
    for (let b = 0, s = 0, d = 0; b < blocks; b++, s += 16, d += 32) {
      for (let j = 0; j < 8; j++) {
        const lo = s32[s + j]!;
        const hi = s32[s + 8 + j]!;
        d16[d + 4 * j] = (lo & 0xff) | ((hi & 0xff) << 8);
        d16[d + 4 * j + 1] = ((lo >>> 8) & 0xff) | (hi & 0xff00);
        d16[d + 4 * j + 2] = ((lo >>> 16) & 0xff) | ((hi >>> 8) & 0xff00);
        d16[d + 4 * j + 3] = (lo >>> 24) | ((hi >>> 16) & 0xff00);
      }
    }
    w = blocks * WORDS_PER_BLOCK;
  }
  let s = srcOff + 2 * w;
  let d = dstOff + 2 * w;
  for (; w < words; w += WORDS_PER_BLOCK) {
    const m = Math.min(WORDS_PER_BLOCK, words - w);
    for (let j = 0; j < m; j++) {
      dst[d + 2 * j] = src[s + j]!;
      dst[d + 2 * j + 1] = src[s + WORDS_PER_BLOCK + j]!;
    }
    s += RS_BLOCK_BYTES;
    d += RS_BLOCK_BYTES;
  }
}

function checkParams(params: ErasureParams): void {
  const { chunks, dataShards, pieceBytes } = params;
  if (
    !Number.isInteger(chunks) ||
    !Number.isInteger(dataShards) ||
    dataShards < 1 ||
    dataShards >= chunks ||
    chunks > 65_535 ||
    pieceBytes !== 2 * dataShards
  ) {
    throw new RangeError(`invalid erasure params ${JSON.stringify(params)}: need 1 <= dataShards < chunks <= 65535 and pieceBytes = 2 * dataShards`);
  }
}

// ---------------------------------------------------------------------------------------------
// Well-balanced Merkle tree (GP E.1.1) and the erasure root (GP 14.4.1)
// ---------------------------------------------------------------------------------------------

/** The `$node` prefix of GP E.1 eq. "merklenode": the octets of "node". */
const NODE_PREFIX = new TextEncoder().encode("node");
const HASH_BYTES = 32;

/**
 * GP E.1.1 M_B(v, H) with H = blake2b: H(v₀) for one item, else N(v, H), where N gives H₀ (32 zero
 * octets) for none, v₀ for one, else H($node ⌢ N(v_{…⌈|v|/2⌉}) ⌢ N(v_{⌈|v|/2⌉…})).
 */
export function wellBalancedRoot(items: readonly Uint8Array[]): Uint8Array {
  return new WellBalancedTree(items).root;
}

/**
 * GP E.1 trace T(v, i, H): the opposite node at each level, top to bottom, on the way to item i.
 * Each is an item itself (when that subtree has one item) or a 32-octet node hash.
 */
export function wellBalancedTrace(items: readonly Uint8Array[], index: number): Uint8Array[] {
  return new WellBalancedTree(items).trace(index);
}

/** A well-balanced tree whose node values are computed once (so all traces cost O(V) hashes). */
class WellBalancedTree {
  private readonly nodes = new Map<number, Uint8Array>();
  readonly root: Uint8Array;

  constructor(private readonly items: readonly Uint8Array[]) {
    this.root = items.length === 1 ? hash(items[0]!) : this.node(0, items.length);
  }

  /** N(v_{lo…hi}, H), memoized. */
  private node(lo: number, hi: number): Uint8Array {
    const count = hi - lo;
    if (count === 0) return new Uint8Array(HASH_BYTES);
    if (count === 1) return this.items[lo]!;
    const key = lo * (this.items.length + 1) + hi;
    let value = this.nodes.get(key);
    if (value === undefined) {
      const mid = lo + Math.ceil(count / 2);
      value = hashParts(NODE_PREFIX, this.node(lo, mid), this.node(mid, hi));
      this.nodes.set(key, value);
    }
    return value;
  }

  trace(index: number): Uint8Array[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.items.length)
      throw new RangeError(`trace: index ${index} is not in 0..${this.items.length - 1}`);
    const path: Uint8Array[] = [];
    let lo = 0;
    let hi = this.items.length;
    while (hi - lo > 1) {
      const mid = lo + Math.ceil((hi - lo) / 2);
      if (index < mid) {
        path.push(this.node(mid, hi));
        hi = mid;
      } else {
        path.push(this.node(lo, mid));
        lo = mid;
      }
    }
    return path;
  }
}

/**
 * Whether `item` at `index` of a `count`-item sequence has the well-balanced root `root` given
 * the trace `path` (GP E.1 T, top to bottom). The path must have exactly the tree's shape: one
 * entry per level, an item-sized entry (`item.length` octets) where the opposite subtree holds a
 * single item and a 32-octet hash elsewhere. Never throws on malformed input: returns false.
 */
export function verifyWellBalanced(root: Uint8Array, count: number, index: number, item: Uint8Array, path: readonly Uint8Array[]): boolean {
  if (!(root instanceof Uint8Array) || root.length !== HASH_BYTES || !(item instanceof Uint8Array) || !Array.isArray(path)) return false;
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) return false;
  if (count === 1) return path.length === 0 && equalBytes(hash(item), root);
  const onRight: boolean[] = []; // sibling on the right of the path at each level, top to bottom
  const single: boolean[] = []; // sibling subtree holds one item
  let lo = 0;
  let hi = count;
  while (hi - lo > 1) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    if (index < mid) {
      onRight.push(true);
      single.push(hi - mid === 1);
      hi = mid;
    } else {
      onRight.push(false);
      single.push(mid - lo === 1);
      lo = mid;
    }
  }
  if (path.length !== onRight.length) return false;
  let value = item;
  for (let level = onRight.length - 1; level >= 0; level--) {
    const sibling = path[level];
    if (!(sibling instanceof Uint8Array) || sibling.length !== (single[level] ? item.length : HASH_BYTES)) return false;
    value = onRight[level] ? hashParts(NODE_PREFIX, value, sibling) : hashParts(NODE_PREFIX, sibling, value);
  }
  return equalBytes(value, root);
}

/**
 * s♣ for one validator (GP 14.4.1): M_B of its chunks of the exported segments and their paged
 * proofs, [C_6(x)_i | x ∈ s ⌢ P(s)]. H₀ (32 zero octets) when the package exports nothing.
 */
export function segmentsChunkRoot(validatorSegmentChunks: readonly Uint8Array[]): Uint8Array {
  return wellBalancedRoot(validatorSegmentChunks);
}

/**
 * The erasure-root leaves (GP 14.4.1): for each validator i, b♣_i ⌢ s♣_i (64 octets) where
 * b♣_i = H(bundle chunk i) and s♣_i = {@link segmentsChunkRoot} of its segment chunks.
 *
 * `segmentChunks[j]` is the chunk list ({@link encodeChunks}, one chunk per validator) of the j-th
 * item of s ⌢ P(s): the exported segments followed by their paged-proof segments (GP 14.10
 * "pagedproofs"). Empty (the default) for a package without exports.
 */
export function erasureLeaves(bundleChunks: readonly Uint8Array[], segmentChunks: readonly (readonly Uint8Array[])[] = []): Uint8Array[] {
  if (bundleChunks.length === 0) throw new RangeError("erasure root of zero chunks");
  const total = bundleChunks.length;
  for (const [j, list] of segmentChunks.entries()) {
    if (list.length !== total) throw new RangeError(`segment ${j} has ${list.length} chunks, the bundle ${total}`);
  }
  const leaves = new Array<Uint8Array>(total);
  for (let i = 0; i < total; i++) {
    const chunk = bundleChunks[i];
    if (!(chunk instanceof Uint8Array)) throw new TypeError(`bundle chunk ${i} is not a Uint8Array`);
    const leaf = new Uint8Array(2 * HASH_BYTES);
    leaf.set(hash(chunk), 0);
    if (segmentChunks.length > 0) leaf.set(segmentsChunkRoot(segmentChunks.map((list) => list[i]!)), HASH_BYTES);
    leaves[i] = leaf; // s♣_i = H₀ without exports: the zeros already there
  }
  return leaves;
}

/**
 * The erasure root u of the availability specifier (GP 14.4.1):
 *
 *   u = M_B([ ⌢x | x ∈ T[b♣, s♣] ]),  b♣ = H#(C_{⌈|b|/W_E⌉}(P_{W_E}(b))),  s♣ = M_B#(T C_6#(s ⌢ P(s)))
 *
 * i.e. the well-balanced Merkle root of the V leaves H(bundle chunk i) ⌢ s♣_i. For a package with
 * no exports s♣_i = M_B([]) = H₀, so each leaf is H(bundle chunk i) followed by 32 zero octets.
 */
export function erasureRoot(bundleChunks: readonly Uint8Array[], segmentChunks: readonly (readonly Uint8Array[])[] = []): Uint8Array {
  return wellBalancedRoot(erasureLeaves(bundleChunks, segmentChunks));
}

/** What a validator needs, besides its bundle chunk, to check that chunk against the erasure root. */
export interface ChunkProof {
  /** s♣_i: {@link segmentsChunkRoot} of this validator's segment chunks (H₀ without exports). */
  readonly segmentsRoot: Uint8Array;
  /** GP E.1 T(leaves, i): opposite nodes top to bottom; 64-octet leaves or 32-octet hashes. */
  readonly path: readonly Uint8Array[];
}

/** The erasure root and every validator's {@link ChunkProof}, from one tree (O(V) hashes in all). */
export interface ErasureTree {
  readonly root: Uint8Array;
  readonly leaves: readonly Uint8Array[];
  proof(index: number): ChunkProof;
}

/** Build the erasure-root tree once, to hand out proofs to all validators. */
export function erasureTree(bundleChunks: readonly Uint8Array[], segmentChunks: readonly (readonly Uint8Array[])[] = []): ErasureTree {
  const leaves = erasureLeaves(bundleChunks, segmentChunks);
  const tree = new WellBalancedTree(leaves);
  return {
    root: tree.root,
    leaves,
    proof: (index) => ({ segmentsRoot: leaves[checkIndex(index, leaves.length)]!.slice(HASH_BYTES), path: tree.trace(index) }),
  };
}

/** The {@link ChunkProof} of chunk `index` (throws `RangeError` for an index out of range). */
export function chunkProof(bundleChunks: readonly Uint8Array[], index: number, segmentChunks: readonly (readonly Uint8Array[])[] = []): ChunkProof {
  return erasureTree(bundleChunks, segmentChunks).proof(index);
}

/**
 * Whether `chunk` is bundle chunk `index` of the package with erasure root `root`: recomputes
 * the leaf H(chunk) ⌢ proof.segmentsRoot and folds the path up (GP E.1). False for any malformed
 * proof, an index outside 0 … V−1, or a chunk that does not match its hash.
 */
export function verifyChunk(params: ErasureParams, root: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): boolean {
  checkParams(params);
  if (!(chunk instanceof Uint8Array) || typeof proof !== "object" || proof === null) return false;
  const { segmentsRoot, path } = proof;
  if (!(segmentsRoot instanceof Uint8Array) || segmentsRoot.length !== HASH_BYTES) return false;
  const leaf = new Uint8Array(2 * HASH_BYTES);
  leaf.set(hash(chunk), 0);
  leaf.set(segmentsRoot, HASH_BYTES);
  return verifyWellBalanced(root, params.chunks, index, leaf, path);
}

function checkIndex(index: number, count: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`chunk index ${index} is not in 0..${count - 1}`);
  return index;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
