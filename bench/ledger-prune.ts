/**
 * The ledger index's pruning (gateway/ledger/index.ts `pruneStep`): the receipts of `--packages`
 * settled packages of 1,000 devices (3 seqs each, as at the target load) are written, then pruned
 * a transaction at a time with each `--rows` bound (pruneRowsPerWriteMax). The table shows, per
 * bound, the transactions it took, the longest the event loop waited while they ran (what a
 * PUBACK waits at worst behind one), and the process's CPU per receipt pruned (the main thread's
 * deletes and LMDB's commits), medians of `--runs`, bounds alternating.
 *
 *   node --import tsx bench/ledger-prune.ts [--packages 60] [--rows 2000,4000,10000] [--runs 3]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LedgerIndex } from "../gateway/ledger/index.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, median, table } from "./lib/stats.ts";

const flags = parseFlags(
  "bench/ledger-prune.ts",
  "The ledger index's prune transactions: event-loop stall and CPU per receipt, per rows-per-transaction bound.",
  {
    packages: { kind: "number", default: 60, help: "packages of 1,000 receipts written, then pruned" },
    rows: { kind: "numbers", default: [2_000, 4_000, 10_000], help: "rows-per-transaction bounds to compare (pruneRowsPerWriteMax)" },
    runs: { kind: "number", default: 3, help: "runs of every bound" },
  },
);

const DEVICES = 1_000;
const SERVICE = { name: "telemetry", serviceId: 2, codeHash: new Uint8Array(32), kinds: ["meter"] as const };
const deviceId = (n: number) => n.toString(16).padStart(32, "0");

interface Run {
  readonly writes: number;
  readonly stallMs: number;
  readonly cpuUsPerReceipt: number;
}

async function once(rowsMax: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "jamgate-bench-prune-"));
  // Everything written at slots 1..packages is older than the retention of 1 slot at slot packages + 1.
  const index = new LedgerIndex({
    path: join(dir, "ledger"),
    services: [SERVICE],
    retention: { retentionSlots: 1, receiptEntriesKeptMax: Number.MAX_SAFE_INTEGER, pruneRowsPerWriteMax: rowsMax },
  });
  let n = 0;
  const hash = () => {
    const b = new Uint8Array(32);
    new DataView(b.buffer).setUint32(0, ++n);
    return b;
  };
  for (let slot = 1; slot <= flags.packages; slot++) {
    const receipts = Array.from({ length: DEVICES }, (_, d) => ({ deviceId: deviceId(d), seqs: [3 * slot, 3 * slot + 1, 3 * slot + 2] }));
    await index.packageSettled({
      hash: hash(),
      serviceId: SERVICE.serviceId,
      kind: "envelopes",
      block: { headerHash: hash(), slot },
      receipts,
      settled: 3 * DEVICES,
      refused: 0,
      settledAtMs: slot,
    });
  }
  // The longest gap between event-loop turns while the prune runs.
  let last = performance.now();
  let stallMs = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const cpu = process.cpuUsage();
  let writes = 0;
  for (let more = true; more; writes++) more = (await index.pruneStep(flags.packages + 1)).more;
  const used = process.cpuUsage(cpu);
  running = false;
  if ((await index.entries({}, { limit: 1 })).items.length !== 0) throw new Error("receipts left after the prune");
  await index.close();
  rmSync(dir, { recursive: true, force: true });
  return { writes, stallMs, cpuUsPerReceipt: (used.user + used.system) / (flags.packages * DEVICES) };
}

const runs = new Map<number, Run[]>(flags.rows.map((r) => [r, []]));
for (let r = 0; r < flags.runs; r++) {
  for (const rows of flags.rows) {
    process.stderr.write(`run ${r + 1}/${flags.runs}, ${rows} rows a transaction\n`);
    runs.get(rows)!.push(await once(rows));
  }
}
const summary = flags.rows.map((rows) => {
  const of = runs.get(rows)!;
  return { rows, writes: of[0]!.writes, stallMs: median(of.map((x) => x.stallMs)), cpuUsPerReceipt: median(of.map((x) => x.cpuUsPerReceipt)) };
});
console.log(`${flags.packages} packages of ${fmt(DEVICES)} receipts pruned; medians of ${flags.runs} runs`);
console.log(
  table(
    ["rows per transaction", "transactions", "longest event-loop stall ms", "CPU µs per receipt"],
    summary.map((s) => [fmt(s.rows), fmt(s.writes), fmt(s.stallMs, 1), fmt(s.cpuUsPerReceipt, 1)]),
  ),
);
console.log(JSON.stringify({ machine: machine(), packages: flags.packages, receiptsPerPackage: DEVICES, runs: summary }));
