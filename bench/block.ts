/**
 * Block production time (author + import + state root + LMDB persist) with 0, 1 and 2 full
 * reports per block on the tiny chain (C = 2 cores).
 *
 *   node --import tsx bench/block.ts [--rounds 7]
 *
 * A JamNode in a temp dir with the bench-envelopes service, started with authorBlocks: false.
 * Each round, side by side: (0) two empty blocks; (1) one W_B package of 1 KB envelopes whose
 * refine outputs W_R = 49,152 bytes (a full report), submitted, waited for until `refined`, then
 * produceBlock() for block N (the guarantee) and block N+1 (assurances, availability and
 * accumulation: accumulate writes the 48 KB output to storage); (2) the same with two packages,
 * one per core. Reported per block: produceBlock() wall time, the node's own importMs (from its
 * "block" log line: applyBlock + state root + persist), and the service's accumulate call.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GenesisService } from "../node/chain/genesis.ts";
import { tinyParams } from "../node/chain/params.ts";
import { JamNode, type NodeLogger } from "../node/node.ts";
import { waitForStatus } from "../node/testing/fixtures.ts";
import {
  BENCH_SERVICE_ID,
  benchSubmitter,
  deviceKeys,
  ENVELOPES_MODULE_URL,
  envelopePackage,
  envelopePayload,
  maxEnvelopesPerPackage,
  variant,
} from "./lib/envelopes-gen.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, median, max, min, summarize, table } from "./lib/stats.ts";
import { accumulateProbe, SERVICE_NAME } from "./services/envelopes.ts";

const flags = parseFlags("bench/block.ts", "Block production time with 0, 1 and 2 full reports per block on the tiny chain.", {
  rounds: { kind: "number", default: 7, help: "rounds, each producing the blocks of every case" },
});
const ROUNDS = flags.rounds;
const params = tinyParams;
const W_R = params.maxReportResultsBytes;

interface BlockLog {
  slot: number;
  importMs: number;
  reports: { guaranteed: number; available: number; accumulated: number; timedOut: number };
  failedAccumulations?: unknown;
}
const blockLogs = new Map<number, BlockLog>();
const problems: string[] = [];
const logger: NodeLogger = {
  info(obj, msg) {
    if (msg === "block") blockLogs.set((obj as BlockLog).slot, obj as BlockLog);
  },
  warn(obj, msg) {
    problems.push(`${msg ?? ""} ${JSON.stringify(obj)}`);
  },
  error(obj, msg) {
    problems.push(`${msg ?? ""} ${JSON.stringify(obj, (_, v) => (v instanceof Error ? v.message : v))}`);
  },
};

const t0 = performance.now();
const keys = deviceKeys(1_000);
const { envelopes, packageBytes } = maxEnvelopesPerPackage(params);
const base = envelopePayload(keys, envelopes, W_R);
const dataDir = mkdtempSync(join(tmpdir(), "jamgate-bench-block-"));
const services: GenesisService[] = [
  { id: BENCH_SERVICE_ID, name: SERVICE_NAME, moduleUrl: ENVELOPES_MODULE_URL, balance: 1_000_000_000n, authorizedKeys: [benchSubmitter.publicKey] },
];
const node = await JamNode.open({ dataDir, chain: "tiny", slotMs: 6_000, services, refineTimeoutMs: 60_000, logger });
node.start({ authorBlocks: false });
const setupS = (performance.now() - t0) / 1000;

type Kind = "empty" | "guarantee" | "accumulate";
interface Sample {
  reports: number;
  kind: Kind;
  produceMs: number;
  importMs: number;
  accumulateMs: number | null;
}
const samples: Sample[] = [];
const submitMs: number[] = [];
const refineWaitMs: number[] = [];
let nonce = 1;

async function timedBlock(reports: number, kind: Kind): Promise<void> {
  const probeBefore = accumulateProbe.ms.length;
  const started = performance.now();
  const block = await node.produceBlock();
  const produceMs = performance.now() - started;
  const log = blockLogs.get(block.slot);
  if (log === undefined) throw new Error(`no block log line for slot ${block.slot}`);
  const expected =
    kind === "guarantee"
      ? { guaranteed: reports, accumulated: 0 }
      : kind === "accumulate"
        ? { guaranteed: 0, accumulated: reports }
        : { guaranteed: 0, accumulated: 0 };
  if (log.reports.guaranteed !== expected.guaranteed || log.reports.accumulated !== expected.accumulated || log.failedAccumulations !== undefined) {
    throw new Error(`block ${block.slot} (${kind}, ${reports} reports) logged ${JSON.stringify(log)}`);
  }
  const probe = accumulateProbe.ms.slice(probeBefore);
  samples.push({ reports, kind, produceMs, importMs: log.importMs, accumulateMs: probe.length === 0 ? null : probe.reduce((a, b) => a + b, 0) });
}

async function round(reports: number): Promise<void> {
  if (reports === 0) {
    await timedBlock(0, "empty");
    await timedBlock(0, "empty");
    return;
  }
  const best = await node.bestBlock();
  const anchor = { headerHash: best.headerHash, stateRoot: await node.stateRoot(best.headerHash), slot: best.slot };
  const packages = Array.from({ length: reports }, () => envelopePackage(params, variant(base, keys, nonce++), anchor));
  const started = performance.now();
  for (const [core, pkg] of packages.entries()) {
    const s = performance.now();
    await node.submitWorkPackage(core, pkg.bytes, []);
    submitMs.push(performance.now() - s);
  }
  for (const pkg of packages) {
    const status = await waitForStatus(node, pkg.hash, ["refined"], 60_000);
    if (status.kind !== "refined") throw new Error(`package not refined: ${JSON.stringify(status)}`);
  }
  refineWaitMs.push(performance.now() - started);
  await timedBlock(reports, "guarantee");
  await timedBlock(reports, "accumulate");
  for (const pkg of packages) {
    const status = await node.workPackageStatus(pkg.hash);
    if (status?.kind !== "accumulated") throw new Error(`package not accumulated after two blocks: ${status?.kind}`);
  }
}

try {
  await round(1); // warm-up: JIT, LMDB file growth; not counted
  await round(2);
  samples.length = 0;
  submitMs.length = 0;
  refineWaitMs.length = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const reports of [0, 1, 2]) await round(reports);
    process.stderr.write(`round ${r + 1}/${ROUNDS} done (best slot ${node.bestSlot})\n`);
  }
} finally {
  await node.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

const mc = machine();
const pick = (reports: number, kind: Kind) => samples.filter((s) => s.reports === reports && s.kind === kind);
const rowsSpec: [string, number, Kind][] = [
  ["0 reports (empty block)", 0, "empty"],
  ["1 report: block N (guarantee)", 1, "guarantee"],
  ["1 report: block N+1 (available + accumulate)", 1, "accumulate"],
  ["2 reports: block N (guarantees)", 2, "guarantee"],
  ["2 reports: block N+1 (available + accumulate)", 2, "accumulate"],
];
const f1 = (x: number) => fmt(x, 1);
const rows = rowsSpec.map(([label, reports, kind]) => {
  const s = pick(reports, kind);
  const produce = s.map((x) => x.produceMs);
  const imp = s.map((x) => x.importMs);
  const acc = s.flatMap((x) => (x.accumulateMs === null ? [] : [x.accumulateMs]));
  const outside = s.map((x) => x.produceMs - x.importMs);
  return [
    label,
    String(s.length),
    f1(median(produce)),
    f1(min(produce)),
    f1(max(produce)),
    f1(median(imp)),
    f1(max(imp)),
    f1(median(outside)),
    acc.length === 0 ? "–" : f1(median(acc)),
    acc.length === 0 ? "–" : f1(max(acc)),
  ];
});
console.log(
  `bench/block.ts — node ${mc.node}, ${mc.cpus} cores (${mc.cpuModel}), tiny chain (V=6, C=2), ${ROUNDS} rounds (+1 warm-up), setup ${setupS.toFixed(1)} s`,
);
console.log(
  `each report: a ${fmt(packageBytes)}-byte package of ${fmt(envelopes)} envelopes, refine output ${fmt(W_R)} bytes (W_R), accumulate writes it to storage under its payload hash`,
);
console.log("");
console.log(
  table(["reports per block", "n", "produceBlock p50 ms", "min", "max", "importMs p50", "max", "outside importMs p50", "accumulate p50 ms", "max"], rows),
);
console.log("");
console.log(
  "importMs: the node's log line (applyBlock + state root + LMDB write, whole ms); outside importMs: produceBlock − importMs (assurances, guarantees, seal; see BENCHMARKS.md §2); accumulate: the service's accumulate call.",
);
console.log(
  `off the block path: submitWorkPackage (intake of 13.8 MB: decode, auth, LMDB write) p50 ${f1(median(submitMs))} ms, max ${f1(max(submitMs))} ms (n=${submitMs.length}); submit → all refined p50 ${f1(median(refineWaitMs))} ms`,
);
if (problems.length > 0) console.log(`node warnings/errors: ${problems.slice(0, 5).join(" | ")}`);
const summary: Record<string, unknown> = { bench: "block", node: mc.node, cpus: mc.cpus, rounds: ROUNDS };
for (const [, reports, kind] of rowsSpec) {
  const s = pick(reports, kind);
  summary[`r${reports}_${kind}`] = {
    produceMs: summarize(
      s.map((x) => x.produceMs),
      1,
    ),
    importMs: summarize(
      s.map((x) => x.importMs),
      1,
    ),
  };
}
summary.submitMs = summarize(submitMs, 1);
console.log(JSON.stringify(summary));
