/**
 * GP v0.7.2 erasure coding (node/availability/erasure.ts) on one core: encode and recover a full
 * W_B = 13,791,360-octet work-package bundle with the full (1,023 chunks from 342) and tiny (6
 * from 2) parameters, the erasure root of the full bundle's chunks, and typeberry's own erasure
 * coding (`@typeberry/lib/erasure-coding`, GP 0.6 layout) for comparison.
 *
 *   node --import tsx bench/erasure.ts [--runs 5]
 *
 * Everything runs on the main thread (reed-solomon-simd in WASM is single-threaded). Each case
 * has one uncounted warm-up run (JIT, WASM heap growth), then `--runs` timed runs; the table shows
 * the median, min and max, and MB/s = input octets / 10^6 / median seconds. Recovery is the worst
 * case (from the last N chunks: recovery shards only) unless said otherwise; every run checks that
 * the recovered data equals the input.
 *
 * typeberry's coder gets a 684,000-octet input (1,000 pieces of 684), not a bundle: it calls the
 * WASM coder once per 684-octet piece and builds per-point objects, so its time and memory grow
 * with the input (measured here: ~2.7 s and ~450 MB RSS for 684 KB, ~11.5 s and ~920 MB for 2 MB);
 * a 13.8 MB bundle would take over a minute and several GB. Our coder runs the same 684,000
 * octets too, for a like-for-like row.
 */
import { BytesBlob } from "@typeberry/lib/bytes";
import { FixedSizeArray } from "@typeberry/lib/collections";
import { decodeDataAndTrim, initEc, padAndEncodeData } from "@typeberry/lib/erasure-coding";
import { encodeChunks, type ErasureParams, erasureParams, erasureRoot, MAX_DATA_BYTES, recoverData, rsHeapBytes } from "../node/availability/erasure.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, max, median, min, summarize, table } from "./lib/stats.ts";
import { pseudoRandomBytes } from "../node/testing/bytes.ts";

const flags = parseFlags(
  "bench/erasure.ts",
  "Erasure coding of a full work-package bundle on one core (node/availability/erasure.ts, and typeberry's for comparison).",
  {
    runs: { kind: "number", default: 5, help: "timed runs of each case, after one warm-up run" },
  },
);
const RUNS = flags.runs;
const TYPEBERRY_BYTES = 684_000;

const bytes = pseudoRandomBytes;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

interface Row {
  readonly key: string;
  readonly label: string;
  readonly bytes: number;
  readonly ms: number[];
}
const rows: Row[] = [];

/** One warm-up, then RUNS timed calls of `fn`. */
function measure(key: string, label: string, inputBytes: number, fn: () => void): void {
  fn();
  const ms: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    fn();
    ms.push(performance.now() - t);
  }
  rows.push({ key, label, bytes: inputBytes, ms });
  process.stderr.write(`${label}: median ${median(ms).toFixed(1)} ms\n`);
}

function lastN(params: ErasureParams, chunks: readonly Uint8Array[]): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (let i = params.chunks - params.dataShards; i < params.chunks; i++) m.set(i, chunks[i]!);
  return m;
}

function firstN(params: ErasureParams, chunks: readonly Uint8Array[]): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (let i = 0; i < params.dataShards; i++) m.set(i, chunks[i]!);
  return m;
}

function checkRecover(params: ErasureParams, chunks: Map<number, Uint8Array>, data: Uint8Array): void {
  const result = recoverData(params, chunks, data.length);
  if (!result.ok || !sameBytes(result.value, data)) throw new Error(`${params.name}: recovery failed: ${result.ok ? "wrong data" : result.error.detail}`);
}

const full = erasureParams("full");
const tiny = erasureParams("tiny");
const bundle = bytes(MAX_DATA_BYTES, 1);

// Full parameters, whole bundle.
let fullChunks = encodeChunks(full, bundle);
measure("full_encode", "full (342→1023): encode W_B", bundle.length, () => {
  fullChunks = encodeChunks(full, bundle);
});
const fullLast = lastN(full, fullChunks);
measure("full_recover", "full: recover W_B from 342 recovery chunks", bundle.length, () => checkRecover(full, fullLast, bundle));
const fullFirst = firstN(full, fullChunks);
measure("full_recover_systematic", "full: recover W_B from the 342 data chunks (copy)", bundle.length, () => checkRecover(full, fullFirst, bundle));
measure("full_erasure_root", "full: erasure root of W_B chunks (1,023 hashes + tree)", bundle.length, () => {
  erasureRoot(fullChunks);
});
const heapAfterFull = rsHeapBytes();

// Tiny parameters, whole bundle.
let tinyChunks = encodeChunks(tiny, bundle);
measure("tiny_encode", "tiny (2→6): encode W_B", bundle.length, () => {
  tinyChunks = encodeChunks(tiny, bundle);
});
const tinyLast = lastN(tiny, tinyChunks);
measure("tiny_recover", "tiny: recover W_B from 2 recovery chunks", bundle.length, () => checkRecover(tiny, tinyLast, bundle));

// Like for like with typeberry: 684,000 octets.
const small = bytes(TYPEBERRY_BYTES, 2);
let smallChunks = encodeChunks(full, small);
measure("full_encode_684k", "full: encode 684,000 octets", small.length, () => {
  smallChunks = encodeChunks(full, small);
});
const smallLast = lastN(full, smallChunks);
measure("full_recover_684k", "full: recover 684,000 octets from 342 recovery chunks", small.length, () => checkRecover(full, smallLast, small));

await initEc();
const smallBlob = BytesBlob.blobFrom(small);
let tbChunks = padAndEncodeData(smallBlob);
measure("typeberry_encode_684k", "typeberry (GP 0.6 layout): encode 684,000 octets", small.length, () => {
  tbChunks = padAndEncodeData(smallBlob);
});
const tbInput = FixedSizeArray.new(
  Array.from({ length: 342 }, (_, j) => [681 + j, tbChunks[681 + j]!] as [number, BytesBlob]),
  342,
);
measure("typeberry_recover_684k", "typeberry: recover 684,000 octets from 342 recovery chunks", small.length, () => {
  const back = decodeDataAndTrim(tbInput as Parameters<typeof decodeDataAndTrim>[0], small.length);
  if (!sameBytes(back.raw, small)) throw new Error("typeberry: recovery failed");
});

const mc = machine();
const mbps = (r: Row) => r.bytes / 1e6 / (median(r.ms) / 1000);
const f1 = (x: number) => fmt(x, 1);
console.log(`bench/erasure.ts — node ${mc.node}, ${mc.cpus} cores (${mc.cpuModel}), one thread, ${RUNS} runs (+1 warm-up) per case`);
console.log(
  `W_B bundle = ${fmt(MAX_DATA_BYTES)} octets (full: ${fmt(fullChunks[0]!.length)}-octet chunks; tiny: ${fmt(tinyChunks[0]!.length)}-octet chunks); reed-solomon WASM heap after the full bundle: ${fmt(heapAfterFull / 1e6, 1)} MB`,
);
console.log("");
console.log(
  table(
    ["case", "input octets", "n", "median ms", "min", "max", "MB/s"],
    rows.map((r) => [r.label, fmt(r.bytes), String(r.ms.length), f1(median(r.ms)), f1(min(r.ms)), f1(max(r.ms)), f1(mbps(r))]),
  ),
);
console.log("");
console.log(
  `typeberry runs on ${fmt(TYPEBERRY_BYTES)} octets, not a bundle: it codes one 684-octet piece per WASM call with per-point objects (seconds and hundreds of MB per MB of input; a 13.8 MB bundle runs out of memory). MB = 10^6 octets.`,
);
const summary: Record<string, unknown> = {
  bench: "erasure",
  node: mc.node,
  cpus: mc.cpus,
  runs: RUNS,
  bundleBytes: MAX_DATA_BYTES,
  rsHeapMB: Number((heapAfterFull / 1e6).toFixed(1)),
};
for (const r of rows) summary[r.key] = { bytes: r.bytes, ms: summarize(r.ms, 1), mbps: Number(mbps(r).toFixed(1)) };
console.log(JSON.stringify(summary));
