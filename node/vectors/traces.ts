/**
 * Block-import traces: `traces/<trace>/*.json` (+ optional sibling `.bin`).
 *
 * Each step file holds `pre_state`, `block`, `post_state`; `genesis.json` holds
 * `header` and `state`. Every state is `{ state_root, keyvals }` where `keyvals`
 * is the serialized state: 31-byte keys (GP Appendix D.1, state-key
 * construction `C`) mapped to the serialized values. For each file:
 *  1. GP Appendix D (state merklization): `M_σ` of each state's keyvals, i.e. the
 *     binary Patricia-Merkle trie root with blake2b, equals its `state_root`, both
 *     as typeberry computes it and as the node's State (node/state/kv.ts) does;
 *  2. for steps, the block header's prior-state root `H_r` (GP §5) equals
 *     `pre_state.state_root`;
 *  3. if a sibling `.bin` exists, it is the GP Appendix C encoding of the same
 *     trace: the JSON, parsed and encoded with typeberry, matches it byte-for-byte.
 *
 * Files with no `{ state_root, keyvals }` state fail (`UnknownVectorType`).
 * The traces in jam-test-vectors use the `tiny` chain spec.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Codec, Encoder } from "@typeberry/lib/codec";
import { tinyChainSpec } from "@typeberry/lib/config";
import { Blake2b } from "@typeberry/lib/hash";
import { type FromJson, parseFromJson } from "@typeberry/lib/json-parser";
import { StateEntries } from "@typeberry/lib/state-merkleization";
import { StateTransition, StateTransitionGenesis, TestState } from "@typeberry/lib/state-vectors";
import { expect } from "vitest";
import { toHex } from "../codec/jam.ts";
import { keyHex, State } from "../state/kv.ts";
import { expectSameBytes } from "./assert.ts";
import { type CaseOutcome, listDirs, listFiles, stem, UnknownVectorType, type VectorCase, type VectorFamily } from "./discover.ts";

/** Keys under which a trace file may hold a `{ state_root, keyvals }` state, in check order. */
const STATE_FIELDS = ["state", "pre_state", "post_state"] as const;

/** blake2b hasher (WASM-backed, created once). */
let blake2b: Promise<Blake2b> | undefined;
function getBlake2b(): Promise<Blake2b> {
  blake2b ??= Blake2b.createHasher();
  return blake2b;
}

/** `traces/<trace>/*.json`; the sub-directory name is the summary subfamily. */
export const tracesFamily: VectorFamily = {
  name: "traces",
  discover(root) {
    const cases: VectorCase[] = [];
    for (const trace of listDirs(join(root, "traces"))) {
      const dir = join(root, "traces", trace);
      for (const file of listFiles(dir, ".json")) {
        const base = stem(file, ".json");
        cases.push({
          name: `traces/${trace}/${base}`,
          subfamily: trace,
          run: () => runTraceCase(`traces/${trace}/${base}`, join(dir, base)),
        });
      }
    }
    return cases;
  },
};

/** Run the checks listed in the module doc on `<basePath>.json` (and `.bin`). */
async function runTraceCase(name: string, basePath: string): Promise<CaseOutcome> {
  const raw: unknown = JSON.parse(readFileSync(`${basePath}.json`, "utf8"));
  if (!isRecord(raw)) throw new UnknownVectorType(name, "not a JSON object");
  const fields = STATE_FIELDS.filter((f) => isTestStateJson(raw[f]));
  if (fields.length === 0) throw new UnknownVectorType(name, "no { state_root, keyvals } state");

  // 1. State roots (GP Appendix D).
  const hasher = await getBlake2b();
  for (const field of fields) {
    const state = parseFromJson(raw[field], TestState.fromJson, `${name}.${field}`);
    // Keys are the 31-byte state keys; merklization hashes the leaves/branches with blake2b.
    const entries = state.keyvals.map((kv) => [kv.key, kv.value] as const);
    const root = StateEntries.fromEntriesUnsafe(entries).getRootHash(hasher);
    const what = `${name}: merklized ${field}.keyvals vs ${field}.state_root`;
    expect(root.toString(), what).toBe(state.state_root.toString());
    const ours = State.fromEntries(entries.map(([k, v]) => [keyHex(k.raw), v.raw] as const)).root();
    expect(`0x${toHex(ours)}`, `${what} (node State)`).toBe(state.state_root.toString());
  }
  const units: Record<string, number> = { roots: fields.length };

  // 2. Header's prior state root H_r == pre-state root.
  const parentStateRoot = headerField(raw.block, "parent_state_root");
  const preState = raw.pre_state;
  if (parentStateRoot !== undefined && isTestStateJson(preState)) {
    expect(parentStateRoot, `${name}: block.header.parent_state_root vs pre_state.state_root`).toBe(preState.state_root);
  }

  // 3. JSON <-> .bin (GP Appendix C).
  const traceType = traceCodec(raw);
  if (traceType !== undefined && existsSync(`${basePath}.bin`)) {
    const bin = new Uint8Array(readFileSync(`${basePath}.bin`));
    const parsed = parseFromJson(raw, traceType.fromJson, name);
    const encoded = Encoder.encodeObject(traceType.codec, parsed, tinyChainSpec);
    expectSameBytes(encoded, bin, `${name}: encoded .json vs .bin`);
    units["bin files"] = 1;
  }
  return { kind: "checked", units };
}

/** typeberry's trace-vector type matching the file's shape (step or genesis). */
function traceCodec(raw: Record<string, unknown>): { codec: Codec<unknown>; fromJson: FromJson<unknown> } | undefined {
  if ("pre_state" in raw && "post_state" in raw && "block" in raw) {
    return { codec: StateTransition.Codec as Codec<unknown>, fromJson: StateTransition.fromJson as FromJson<unknown> };
  }
  if ("state" in raw && "header" in raw) {
    return {
      codec: StateTransitionGenesis.Codec as Codec<unknown>,
      fromJson: StateTransitionGenesis.fromJson as FromJson<unknown>,
    };
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Whether `v` looks like `{ state_root: string, keyvals: [...] }`. */
function isTestStateJson(v: unknown): v is { state_root: string; keyvals: unknown[] } {
  return isRecord(v) && typeof v.state_root === "string" && Array.isArray(v.keyvals);
}

/** `block.header[field]` as a string, if present. */
function headerField(block: unknown, field: string): string | undefined {
  if (!isRecord(block) || !isRecord(block.header)) return undefined;
  const value = block.header[field];
  return typeof value === "string" ? value : undefined;
}
