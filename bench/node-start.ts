/**
 * The node's start-up on a data dir whose state holds `--entries` device records (1,000,000: the
 * fleet of issue 19), as after a restart:
 *
 *   node --import tsx bench/node-start.ts [--entries 1000000] [--runs 3]
 *
 * The data dir is made once (lib/node-data-dir.ts): the counter test service's genesis, then the
 * records as storage entries of service 1 (the key a device's 8-byte index, the value 120 bytes,
 * about a telemetry device record, from a seeded generator) written as one block's state in one
 * transaction. Each run opens it in a fresh process (lib/node-open.ts): JamNode.open reads every
 * state entry from LMDB into the trie and hashes all of it once, to check it against the best
 * block's state root (node.ts open, chain/head.ts checkStateRoot); then the parts are timed again
 * one by one. The tables show medians and ranges; the last line is JSON.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seededRandom } from "../devices/simulate.ts";
import { storageKey } from "../node/state/components.ts";
import { counterGenesis } from "../node/testing/fixtures.ts";
import { parseFlags } from "./lib/args.ts";
import { writeDataDirWithEntries } from "./lib/node-data-dir.ts";
import type { OpenMeasured } from "./lib/node-open.ts";
import { Child } from "./lib/proc.ts";
import { fmt, machine, type Summary, summarize, table } from "./lib/stats.ts";

const flags = parseFlags("bench/node-start.ts", "The node's start-up on a data dir whose state holds N device records.", {
  entries: { kind: "number", default: 1_000_000, help: "device records in state, besides the genesis" },
  runs: { kind: "number", default: 3, help: "opens, each in a fresh process" },
});

const SERVICE_ID = 1;
const VALUE_BYTES = 120;
const MB = 1024 ** 2;

/** `n` device records: service storage under the device's u64 index, 120 seeded bytes each. */
function* records(n: number): Generator<readonly [string, Uint8Array]> {
  const random = seededRandom(19);
  const key = new Uint8Array(8);
  const view = new DataView(key.buffer);
  for (let i = 0; i < n; i++) {
    view.setBigUint64(0, BigInt(i), true);
    const value = new Uint8Array(VALUE_BYTES);
    for (let b = 0; b < VALUE_BYTES; b++) value[b] = Math.floor(random() * 256);
    yield [storageKey(SERVICE_ID, key), value];
  }
}

process.stderr.write(`[node-start] ${JSON.stringify(machine())}\n`);
const dataDir = mkdtempSync(join(tmpdir(), "jamgate-node-start-"));
const services = counterGenesis();
try {
  let started = performance.now();
  const written = await writeDataDirWithEntries(dataDir, services, records(flags.entries));
  const prepareMs = performance.now() - started;
  const lmdbFileBytes = statSync(join(dataDir, "data.mdb")).size;
  process.stderr.write(`[node-start] data dir: ${fmt(written.stateEntries)} entries, ${fmt(lmdbFileBytes / MB)} MB, made in ${fmt(prepareMs)} ms\n`);

  const runs: OpenMeasured[] = [];
  for (let run = 0; run < flags.runs; run++) {
    const child = await Child.start("node-open", new URL("./lib/node-open.ts", import.meta.url));
    try {
      started = performance.now();
      runs.push(await child.call<OpenMeasured>("open", { dataDir, services }));
      process.stderr.write(`[node-start] run ${run + 1}: open ${fmt(runs.at(-1)!.openMs)} ms\n`);
    } finally {
      await child.stop();
    }
  }
  const s = (pick: (r: OpenMeasured) => number, scale = 1): Summary => summarize(runs.map((r) => pick(r) / scale));
  const range = (x: Summary) => `${fmt(x.median)} (${fmt(x.min)}–${fmt(x.max)})`;
  const result = {
    entries: written.stateEntries,
    lmdbFileBytes,
    openMs: s((r) => r.openMs),
    openCpuMs: s((r) => r.openCpuMs),
    storeOpenMs: s((r) => r.storeOpenMs),
    readAndBuildMs: s((r) => r.readAndBuildMs),
    readAndBuildCpuMs: s((r) => r.readAndBuildCpuMs),
    firstRootMs: s((r) => r.firstRootMs),
    firstRootCpuMs: s((r) => r.firstRootCpuMs),
    rssMB: s((r) => r.rssBytes, MB),
    heapUsedMB: s((r) => r.heapUsedBytes, MB),
    arrayBuffersMB: s((r) => r.arrayBuffersBytes, MB),
  };
  if (runs.some((r) => r.stateEntries !== written.stateEntries || r.bestSlot !== 1)) throw new Error("the node opened another state than was written");
  console.log(
    `\nnode start-up on a data dir of ${fmt(written.stateEntries)} state entries (LMDB ${fmt(lmdbFileBytes / MB)} MB), ${flags.runs} runs, each a fresh process (ms, MB; median (range))\n`,
  );
  console.log(
    table(
      ["", "JamNode.open", "of which: LMDB open", "read + trie", "first root", "RSS after open", "V8 heap used", "array buffers"],
      [
        [
          "wall",
          range(result.openMs),
          range(result.storeOpenMs),
          range(result.readAndBuildMs),
          range(result.firstRootMs),
          range(result.rssMB),
          range(result.heapUsedMB),
          range(result.arrayBuffersMB),
        ],
        ["main-thread CPU", range(result.openCpuMs), "", range(result.readAndBuildCpuMs), range(result.firstRootCpuMs), "", "", ""],
      ],
    ),
  );
  console.log(JSON.stringify({ machine: machine(), runs: flags.runs, ...result }));
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
