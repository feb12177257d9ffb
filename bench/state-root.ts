/**
 * The node's state root (node/state/kv.ts, GP D.2) as the state grows: a block's root after it
 * changed some entries, against hashing every node (the first root of a state, and what each
 * block cost before the trie kept its hashes).
 *
 *   node --import tsx bench/state-root.ts [--entries 10000,50000,100000] [--changes 2000] [--runs 7]
 *
 * For each size: a State of that many entries (random 31-byte keys, 120-byte values, about a
 * telemetry device record) is built; its first root is timed (every leaf and branch hashed); then
 * `--runs` times, `--changes` entries get new values (about what one block writes at 3,000
 * envelopes/s from 1,000 devices: each device's record and the packages' outcomes) and the root
 * is timed again. One thread; the table shows medians and ranges.
 */
import { randomBytes } from "node:crypto";
import { State } from "../node/state/kv.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, max, median, min, table } from "./lib/stats.ts";

const flags = parseFlags("bench/state-root.ts", "The node's state root after a block's changes, as the state grows.", {
  entries: { kind: "numbers", default: [10_000, 50_000, 100_000], help: "state sizes, entries" },
  changes: { kind: "number", default: 2_000, help: "entries changed before each timed root" },
  runs: { kind: "number", default: 7, help: "timed roots after changes, per size" },
});

const VALUE_BYTES = 120;
const rows: string[][] = [];
process.stderr.write(`[state-root] ${JSON.stringify(machine())}\n`);
for (const n of flags.entries) {
  const keys = Array.from({ length: n }, () => randomBytes(31).toString("hex"));
  let t = performance.now();
  const state = State.fromEntries(keys.map((k) => [k, randomBytes(VALUE_BYTES)] as const));
  const buildMs = performance.now() - t;
  t = performance.now();
  state.root();
  const firstMs = performance.now() - t;
  const afterMs: number[] = [];
  for (let run = 0; run < flags.runs; run++) {
    for (let i = 0; i < flags.changes; i++) state.set(keys[Math.floor(Math.random() * n)]!, randomBytes(VALUE_BYTES));
    t = performance.now();
    state.root();
    afterMs.push(performance.now() - t);
  }
  rows.push([
    fmt(n),
    fmt(buildMs),
    fmt(firstMs),
    `${fmt(median(afterMs), 1)} (${fmt(min(afterMs), 1)}–${fmt(max(afterMs), 1)})`,
    `${fmt(firstMs / median(afterMs), 1)}×`,
  ]);
  process.stderr.write(`[state-root] ${n} entries done\n`);
}
console.log(`\nstate root, ${flags.changes} entries changed per block, ${flags.runs} blocks per size (ms)\n`);
console.log(table(["entries", "build", "every node hashed (first root)", `root after ${fmt(flags.changes)} changes, median (range)`, "ratio"], rows));
