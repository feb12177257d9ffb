/**
 * A block's import, as far as the state goes, as the state grows: the node's state root
 * (node/state/kv.ts, GP D.2) after a block changed some entries, with applying those changes and
 * writing them to the node's LMDB store (node/storage/store.ts writeBlock), against hashing every
 * node (the first root of a state, and what each block cost before the trie kept its hashes).
 *
 *   node --import tsx bench/state-root.ts [--entries 10000,100000,1000000] [--changes 5000] [--runs 7] [--warmup 70] [--cpu-prof FILE]
 *
 * For each size: a State of that many entries (random 31-byte keys, 120-byte values, about a
 * telemetry device record) is built; its first root is timed (every leaf and branch hashed); the
 * entries are written to a new Store in a temporary dir as the node writes its genesis
 * (writeGenesis, one transaction). Then `--warmup` blocks untimed (the store reaches its steady
 * state: LMDB reuses freed pages, and node/storage/state-db.ts has written every slice of the key
 * space once and wrapped its journal), and `--runs` timed blocks, each as node/chain/stf.ts and
 * node/chain/author.ts import one: `--changes` distinct entries (5,000: a block of a fleet of
 * 1,000,000 devices, each record changed every 200 blocks) get new values in an Overlay, whose
 * changes and previous values are taken and which is committed to the State (apply), the root is
 * taken (root), and the changes are written with a block record in one LMDB transaction (write).
 * The values are made before the clock starts; the block's bytes are a 1 KB stand-in.
 *
 * Each part is timed in wall time and in the process's CPU time (getrusage: µs, all its threads, so
 * V8's garbage-collection helpers count), which leaves out waiting for a core (a shared machine) or
 * for the disk (LMDB's commit syncs). The main thread's own clock (schedstat) moved in 4 ms steps
 * on this VM. `--cpu-prof FILE`
 * writes a V8 CPU profile of the largest size's timed blocks only (node:inspector) and prints its
 * top functions.
 *
 * After each size's blocks: the LMDB file's size and the disk it takes, and the process's RSS and
 * V8 heap after a full garbage collection, with that size's State, keys, Store and the undo logs
 * of its last blocks (as node/chain/head.ts keeps them, at most RECENT_STATES_MAX) still held.
 * Sizes run from the first given, in one process, so RSS can carry what a smaller size left;
 * give the largest last. One thread; the tables show medians and ranges; the last line is JSON.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Session } from "node:inspector/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { RECENT_STATES_MAX } from "../node/chain/head.ts";
import { Overlay, State, type UndoLog } from "../node/state/kv.ts";
import { Store } from "../node/storage/store.ts";
import { parseFlags } from "./lib/args.ts";
import { summarizeProfile } from "./lib/cpuprofile.ts";
import { fmt, machine, type Summary, summarize, table } from "./lib/stats.ts";

const flags = parseFlags("bench/state-root.ts", "A block's state changes applied, rooted and written to LMDB, as the state grows.", {
  entries: { kind: "numbers", default: [10_000, 100_000, 1_000_000], help: "state sizes, entries" },
  changes: { kind: "number", default: 5_000, help: "distinct entries each block changes" },
  runs: { kind: "number", default: 7, help: "timed blocks per size" },
  warmup: {
    kind: "number",
    default: 70,
    help: "blocks written before the timed ones: more than the store's STATE_SLICES (64), so every slice has been written and the journal has wrapped",
  },
  "cpu-prof": {
    kind: "string",
    default: null,
    valueName: "FILE",
    help: "write a V8 CPU profile of the largest size's timed blocks only (node:inspector) to FILE and print its top functions",
  },
});

const KEY_BYTES = 31;
const VALUE_BYTES = 120;
/** The stand-in for a block's encoded bytes: the store writes them beside the state changes. */
const BLOCK_BYTES = 1_024;
const MB = 1024 ** 2;

// A full collection before memory is read, without asking for --expose-gc on the command line.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

interface SizeResult {
  readonly entries: number;
  readonly buildMs: number;
  readonly firstRootMs: number;
  readonly genesisWriteMs: number;
  readonly applyMs: Summary;
  readonly rootMs: Summary;
  readonly writeMs: Summary;
  readonly blockMs: Summary;
  /** The process's CPU time in each part: what the block costs in CPU, without the time waiting for a core or for the disk. */
  readonly applyCpuMs: Summary;
  readonly rootCpuMs: Summary;
  readonly writeCpuMs: Summary;
  readonly lmdbFileBytes: number;
  readonly lmdbDiskBytes: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly arrayBuffersBytes: number;
}

/** CPU time of the process (user + system, all threads) in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function* entriesOf(keys: readonly string[]): Generator<readonly [string, Uint8Array]> {
  for (const key of keys) yield [key, randomBytes(VALUE_BYTES)];
}

/** `count` distinct indexes below `n`. */
function distinctIndexes(n: number, count: number): number[] {
  const picked = new Set<number>();
  while (picked.size < Math.min(count, n)) picked.add(Math.floor(Math.random() * n));
  return [...picked];
}

/** The profiler of `--cpu-prof`: started before the largest size's first timed block, stopped after its last. */
async function profileStart(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return session;
}

async function profileStop(session: Session, path: string): Promise<void> {
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  writeFileSync(path, JSON.stringify(profile));
  const summary = summarizeProfile(path, 20);
  process.stderr.write(`[state-root] profile of the timed blocks: ${path} (busy ${fmt(summary.busyMs)} ms)\n`);
  for (const f of summary.self) process.stderr.write(`  self ${fmt(f.ms).padStart(7)} ms  ${f.name}\n`);
  for (const f of summary.total) process.stderr.write(`  total ${fmt(f.ms).padStart(6)} ms  ${f.name}\n`);
}

async function measure(n: number, profilePath: string | null): Promise<SizeResult> {
  const keys = Array.from({ length: n }, () => randomBytes(KEY_BYTES).toString("hex"));
  let t = performance.now();
  const state = State.fromEntries(entriesOf(keys));
  const buildMs = performance.now() - t;
  t = performance.now();
  const genesisRoot = state.root();
  const firstRootMs = performance.now() - t;

  const dir = mkdtempSync(join(tmpdir(), "jamgate-state-root-"));
  const store = new Store(dir);
  try {
    t = performance.now();
    store.writeGenesis({ slot: 0, hash: randomBytes(32), encoded: randomBytes(BLOCK_BYTES), stateRoot: genesisRoot }, state);
    const genesisWriteMs = performance.now() - t;

    const applyMs: number[] = [];
    const rootMs: number[] = [];
    const writeMs: number[] = [];
    const blockMs: number[] = [];
    const applyCpuMs: number[] = [];
    const rootCpuMs: number[] = [];
    const writeCpuMs: number[] = [];
    /** Held as node/chain/head.ts holds them: the memory read below counts the latest blocks' previous values. */
    const undoLogs: UndoLog[] = [];
    let profiler: Session | null = null;
    for (let slot = 1; slot <= flags.warmup + flags.runs; slot++) {
      const timed = slot > flags.warmup;
      if (slot === flags.warmup + 1 && profilePath !== null) profiler = await profileStart();
      const changed = distinctIndexes(n, flags.changes).map((i) => [keys[i]!, randomBytes(VALUE_BYTES)] as const);
      const encoded = randomBytes(BLOCK_BYTES);
      const hash = randomBytes(32);
      const c0 = cpuMs();
      const t0 = performance.now();
      // As stf.ts applyBlock ends: the overlay's changes and the values they replace, then the commit.
      const overlay = new Overlay(state);
      for (const [key, value] of changed) overlay.set(key, value);
      const changes = new Map(overlay.changes);
      const previous = new Map([...changes.keys()].map((key) => [key, state.get(key)] as const));
      overlay.commit();
      const t1 = performance.now();
      const c1 = cpuMs();
      const stateRoot = state.root();
      const t2 = performance.now();
      const c2 = cpuMs();
      store.writeBlock({ block: { slot, hash, encoded, stateRoot }, stateChanges: changes, packages: [], reports: new Map() });
      const t3 = performance.now();
      const c3 = cpuMs();
      if (previous.size !== changed.length) throw new Error(`block ${slot} changed ${previous.size} entries, not ${changed.length}`);
      undoLogs.unshift({ slot, previous });
      if (undoLogs.length > RECENT_STATES_MAX) undoLogs.pop();
      if (!timed) continue;
      applyMs.push(t1 - t0);
      rootMs.push(t2 - t1);
      writeMs.push(t3 - t2);
      blockMs.push(t3 - t0);
      applyCpuMs.push(c1 - c0);
      rootCpuMs.push(c2 - c1);
      writeCpuMs.push(c3 - c2);
    }
    if (profiler !== null) await profileStop(profiler, profilePath!);
    gc();
    const memory = process.memoryUsage();
    const file = statSync(join(dir, "data.mdb"));
    return {
      entries: n,
      buildMs,
      firstRootMs,
      genesisWriteMs,
      applyMs: summarize(applyMs),
      rootMs: summarize(rootMs),
      writeMs: summarize(writeMs),
      blockMs: summarize(blockMs),
      applyCpuMs: summarize(applyCpuMs),
      rootCpuMs: summarize(rootCpuMs),
      writeCpuMs: summarize(writeCpuMs),
      lmdbFileBytes: file.size,
      lmdbDiskBytes: file.blocks * 512,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      arrayBuffersBytes: memory.arrayBuffers,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stderr.write(`[state-root] ${JSON.stringify(machine())}\n`);
const results: SizeResult[] = [];
const largest = Math.max(...flags.entries);
for (const n of flags.entries) {
  results.push(await measure(n, n === largest ? flags["cpu-prof"] : null));
  gc();
  process.stderr.write(`[state-root] ${fmt(n)} entries done\n`);
}

const range = (s: Summary, digits = 1) => `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
console.log(
  `\nblock import as far as the state goes: ${fmt(flags.changes)} distinct entries changed per block, ${flags.runs} blocks per size after ${flags.warmup} untimed (ms, median (range))\n`,
);
console.log(
  table(
    ["entries", "apply", "root", "LMDB write", "block: apply + root + write"],
    results.map((r) => [fmt(r.entries), range(r.applyMs), range(r.rootMs), range(r.writeMs), range(r.blockMs)]),
  ),
);
console.log("\nthe same blocks' CPU time, the process's (ms, median (range)): without waiting for a core or the disk\n");
console.log(
  table(
    ["entries", "apply", "root", "LMDB write"],
    results.map((r) => [fmt(r.entries), range(r.applyCpuMs), range(r.rootCpuMs), range(r.writeCpuMs)]),
  ),
);
console.log("\nonce per size (ms) and memory after the blocks (MB, after a full GC)\n");
console.log(
  table(
    ["entries", "build", "first root (every node hashed)", "genesis write", "LMDB file", "LMDB on disk", "RSS", "V8 heap used", "array buffers"],
    results.map((r) => [
      fmt(r.entries),
      fmt(r.buildMs),
      fmt(r.firstRootMs),
      fmt(r.genesisWriteMs),
      fmt(r.lmdbFileBytes / MB),
      fmt(r.lmdbDiskBytes / MB),
      fmt(r.rssBytes / MB),
      fmt(r.heapUsedBytes / MB),
      fmt(r.arrayBuffersBytes / MB),
    ]),
  ),
);
console.log(JSON.stringify({ machine: machine(), changes: flags.changes, runs: flags.runs, warmup: flags.warmup, sizes: results }));
