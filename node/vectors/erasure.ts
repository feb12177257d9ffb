/**
 * Erasure-coding vectors: `erasure/{tiny,full}/<name>.json` (+ sibling `.bin`).
 *
 * Each vector is `{ data, shards }` (schema.asn `ErasureCodingTestVector`): `shards` are the V
 * chunks (6 tiny, 1,023 full) of GP v0.7.2 Appendix H C_k(P_{W_E}(data)). For each file:
 *  1. if a sibling `.bin` exists, it decodes (GP Appendix C: `↕data` then `↕[↕shard]`: the
 *     files carry the shard count V as a length prefix although schema.asn fixes it; every byte
 *     consumed) to the same data and shards as the `.json`;
 *  2. `encodeChunks(data)` (node/availability/erasure.ts) equals `shards` bit for bit;
 *  3. `recoverData` gives `data` back from the vector's own shards: from the last N (all
 *     recovery shards for `full`) and from a random subset of N (seeded by the file name, so a
 *     failure reproduces), N = 342 full, 2 tiny.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { BytesBlob } from "@typeberry/lib/bytes";
import { codec, Decoder } from "@typeberry/lib/codec";
import { expect } from "vitest";
import { encodeChunks, type ErasureParams, erasureParams, recoverData } from "../availability/erasure.ts";
import { expectSameBytes } from "./assert.ts";
import { type CaseOutcome, listFiles, stem, type VectorCase, type VectorFamily } from "./discover.ts";

/** Sub-directories of `erasure/` and their chains. Others are not discovered. */
const SPECS = ["tiny", "full"] as const;

/** `erasure/<spec>/*.json`. */
export const erasureFamily: VectorFamily = {
  name: "erasure",
  discover(root) {
    const cases: VectorCase[] = [];
    for (const spec of SPECS) {
      const dir = join(root, "erasure", spec);
      for (const file of listFiles(dir, ".json")) {
        const base = stem(file, ".json");
        const name = `erasure/${spec}/${base}`;
        cases.push({ name, subfamily: spec, run: () => runErasureCase(name, join(dir, base), erasureParams(spec)) });
      }
    }
    return cases;
  },
};

interface ErasureVector {
  readonly data: Uint8Array;
  readonly shards: readonly Uint8Array[];
}

function runErasureCase(name: string, basePath: string, params: ErasureParams): CaseOutcome {
  const vector = parseJson(name, JSON.parse(readFileSync(`${basePath}.json`, "utf8")), params);
  const units: Record<string, number> = {};

  // 1. The .bin is the same vector.
  if (existsSync(`${basePath}.bin`)) {
    const binCodec = codec.object({ data: codec.blob, shards: codec.sequenceVarLen(codec.blob) });
    const decoded = Decoder.decodeObject(binCodec, new Uint8Array(readFileSync(`${basePath}.bin`)));
    expect(decoded.shards.length, `${name}: .bin shard count`).toBe(params.chunks);
    expectSameBytes(decoded.data, vector.data, `${name}: .bin data`);
    decoded.shards.forEach((s, i) => {
      expectSameBytes(s, vector.shards[i]!, `${name}: .bin shard ${i}`);
    });
    units.bins = 1;
  }

  // 2. Encoding, bit for bit.
  const chunks = encodeChunks(params, vector.data);
  expect(chunks.length, `${name}: chunk count`).toBe(params.chunks);
  chunks.forEach((c, i) => {
    expectSameBytes(BytesBlob.blobFrom(c), vector.shards[i]!, `${name}: shard ${i}`);
  });
  units.shards = chunks.length;

  // 3. Recovery from the vector's shards: the last N, and a random N.
  const n = params.dataShards;
  const last = Array.from({ length: n }, (_, j) => params.chunks - n + j);
  const random = pickDistinct(params.chunks, n, seedOf(name));
  for (const [what, indices] of [
    ["last", last],
    ["random", random],
  ] as const) {
    const subset = new Map(indices.map((i) => [i, vector.shards[i]!] as const));
    const result = recoverData(params, subset, vector.data.length);
    if (!result.ok) expect.fail(`${name}: recovery from ${what} ${n} shards [${indices.join(",")}] failed: ${result.error.kind}: ${result.error.detail}`);
    expectSameBytes(BytesBlob.blobFrom(result.value), vector.data, `${name}: data recovered from ${what} ${n} shards [${indices.join(",")}]`);
  }
  units.recoveries = 2;
  return { kind: "checked", units };
}

function parseJson(name: string, json: unknown, params: ErasureParams): ErasureVector {
  const v = json as { data?: unknown; shards?: unknown };
  if (typeof v.data !== "string" || !Array.isArray(v.shards) || !v.shards.every((s) => typeof s === "string")) {
    throw new Error(`${name}: not an ErasureCodingTestVector { data, shards }`);
  }
  expect(v.shards.length, `${name}: shards in the vector`).toBe(params.chunks);
  return { data: fromHex(v.data), shards: (v.shards as string[]).map(fromHex) };
}

function fromHex(s: string): Uint8Array {
  const hex = s.startsWith("0x") ? s.slice(2) : s;
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`not a hex string: ${s.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** FNV-1a of the case name: a fixed per-file seed. */
function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** `k` distinct indices of 0..n−1 from a seeded mulberry32 (partial Fisher–Yates), sorted. */
function pickDistinct(n: number, k: number, seed: number): number[] {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(next() * (n - i));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, k).sort((a, b) => a - b);
}
