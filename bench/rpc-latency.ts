/**
 * Submit → accumulated latency through the JIP-2 RPC server at slot-ms 1000.
 *
 *   node --import tsx bench/rpc-latency.ts [--packages 20] [--pairs 10] [--slot-ms 1000]
 *
 * A JamNode (tiny chain, counter service, authoring a block every slot) with the RPC server on
 * port 0 and an RpcClient over WebSocket. Small counter packages are built and submitted over RPC
 * and followed with subscribeWorkPackageStatus over RPC; latency is from the submit call to the
 * `accumulated` notification, in ms and in slots (accumulatedIn.slot − best slot at submit).
 * Side by side in the same run, interleaved: the same through the in-process NodeApi (no socket).
 * Sequential packages wait a random 0..slotMs before each submit, so submits land at every phase
 * of the slot; "pairs" submit two packages at once, one per core.
 */
import { rmSync } from "node:fs";
import type { NodeApi, WorkPackageStatus } from "../node/api.ts";
import { JamNode, type NodeLogger } from "../node/node.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { startRpcServer } from "../node/rpc/server.ts";
import { counterGenesis, counterItem, COUNTER_SERVICE_ID, packageFor, tempDir } from "../node/testing/fixtures.ts";
import { COUNTER_KEY, counterPayload, readU64 } from "../node/testing/counter/types.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, max, median, min, percentile, table } from "./lib/stats.ts";
import { seededRandom } from "../devices/simulate.ts";

const flags = parseFlags("bench/rpc-latency.ts", "Submit → accumulated latency through the JIP-2 RPC server, next to the in-process NodeApi.", {
  "slot-ms": { kind: "number", default: 1_000, help: "the node's slot, ms" },
  packages: { kind: "number", default: 20, help: "packages submitted one at a time" },
  pairs: { kind: "number", default: 10, help: "pairs of packages submitted at once, one per core" },
});
const SLOT_MS = flags["slot-ms"];
const SEQUENTIAL_RPC = flags.packages;
const PAIRS = flags.pairs;
const RPC_PINGS = 50;

const problems: string[] = [];
const logger: NodeLogger = {
  info() {},
  warn(obj, msg) {
    problems.push(`${msg ?? ""} ${JSON.stringify(obj)}`);
  },
  error(obj, msg) {
    problems.push(`${msg ?? ""} ${JSON.stringify(obj, (_, v) => (v instanceof Error ? v.message : v))}`);
  },
};

const dataDir = tempDir("jamgate-bench-rpc-");
const node = await JamNode.open({ dataDir, chain: "tiny", slotMs: SLOT_MS, services: counterGenesis(), refineTimeoutMs: 10_000, logger });
const server = await startRpcServer(node, { port: 0, host: "127.0.0.1", token: "bench" });
const client = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: "bench" });

// The slot clock, from the node's own block notifications (in-process, no socket delay).
let bestSlot = node.bestSlot;
let lastBlockAt = performance.now();
const blockAt = new Map<number, number>();
await node.subscribeBestBlock((b) => {
  bestSlot = b.slot;
  lastBlockAt = performance.now();
  blockAt.set(b.slot, lastBlockAt);
});
node.start();

const random = seededRandom(20260101);

type Via = "rpc" | "in-process";
interface Sample {
  via: Via;
  mode: "sequential" | "pair";
  ackMs: number;
  refinedMs: number;
  reportedMs: number;
  accumulatedMs: number;
  slots: number;
  phase: number;
  /** accumulated notification received − the node's in-process block event for that slot. */
  notifyMs: number;
}
const samples: Sample[] = [];
let amount = 0n;

/** Builds, subscribes, submits and follows one package to `accumulated` through `api`. */
async function follow(api: NodeApi, via: Via, mode: Sample["mode"], core: number, ready?: Promise<void>): Promise<void> {
  amount += 1n;
  const built = await packageFor(api, [counterItem(counterPayload.increment(amount))]);
  const times = new Map<WorkPackageStatus["kind"], number>();
  let accumulatedSlot = -1;
  let resolveDone!: () => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const unsubscribe = await api.subscribeWorkPackageStatus(built.hash, (s) => {
    if (!times.has(s.kind)) times.set(s.kind, performance.now());
    if (s.kind === "accumulated") {
      accumulatedSlot = s.accumulatedIn.slot;
      resolveDone();
    } else if (s.kind === "failed") rejectDone(new Error(`package failed: ${s.code} ${s.detail}`));
  });
  await ready;
  const slotAtSubmit = bestSlot;
  const phase = (performance.now() - lastBlockAt) / SLOT_MS;
  const started = performance.now();
  await api.submitWorkPackage(core, built.bytes, []);
  const ackMs = performance.now() - started;
  const timer = setTimeout(() => rejectDone(new Error("not accumulated within 30 s")), 30_000);
  try {
    await done;
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
  const at = (k: WorkPackageStatus["kind"]) => (times.get(k) ?? Number.NaN) - started;
  samples.push({
    via,
    mode,
    ackMs,
    refinedMs: at("refined"),
    reportedMs: at("reported"),
    accumulatedMs: at("accumulated"),
    slots: accumulatedSlot - slotAtSubmit,
    phase,
    notifyMs: (times.get("accumulated") ?? Number.NaN) - (blockAt.get(accumulatedSlot) ?? Number.NaN),
  });
}

const pingMs: number[] = [];
try {
  // Plain RPC round trip, for scale.
  for (let i = 0; i < RPC_PINGS; i++) {
    const s = performance.now();
    await client.bestBlock();
    pingMs.push(performance.now() - s);
  }
  // Warm-up: one package each way, not counted.
  await follow(client, "rpc", "sequential", 0);
  await follow(node, "in-process", "sequential", 1);
  samples.length = 0;

  // Sequential, random phase: every other RPC package is followed by an in-process one.
  for (let i = 0; i < SEQUENTIAL_RPC; i++) {
    await new Promise((r) => setTimeout(r, random() * SLOT_MS));
    await follow(client, "rpc", "sequential", i % 2);
    if (i % 2 === 1) {
      await new Promise((r) => setTimeout(r, random() * SLOT_MS));
      await follow(node, "in-process", "sequential", i % 2);
    }
    process.stderr.write(`sequential ${i + 1}/${SEQUENTIAL_RPC}: ${samples.at(-1)!.accumulatedMs.toFixed(0)} ms\n`);
  }
  // Pairs over RPC: two packages (one per core) submitted together.
  for (let i = 0; i < PAIRS; i++) {
    await new Promise((r) => setTimeout(r, random() * SLOT_MS));
    let go!: () => void;
    const ready = new Promise<void>((r) => (go = r));
    const both = [follow(client, "rpc", "pair", 0, ready), follow(client, "rpc", "pair", 1, ready)];
    // Both are built and subscribed before either is submitted.
    await new Promise((r) => setTimeout(r, 50));
    go();
    await Promise.all(both);
    process.stderr.write(`pair ${i + 1}/${PAIRS}\n`);
  }
  const best = await client.bestBlock();
  const counter = readU64(await client.serviceValue(best.headerHash, COUNTER_SERVICE_ID, COUNTER_KEY));
  const total = (amount * (amount + 1n)) / 2n;
  if (counter !== total) throw new Error(`counter is ${counter}, expected ${total}`);
} finally {
  await client.close();
  await server.close();
  await node.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

const mc = machine();
const groups: [string, Sample[]][] = [
  ["RPC, sequential", samples.filter((s) => s.via === "rpc" && s.mode === "sequential")],
  ["in-process, sequential", samples.filter((s) => s.via === "in-process")],
  ["RPC, pairs (one per core)", samples.filter((s) => s.via === "rpc" && s.mode === "pair")],
];
const f0 = (x: number) => fmt(x, 0);
const rows = groups.map(([label, s]) => {
  const acc = s.map((x) => x.accumulatedMs);
  const slots = s.map((x) => x.slots);
  return [
    label,
    String(s.length),
    f0(percentile(acc, 50)),
    f0(percentile(acc, 99)),
    f0(min(acc)),
    f0(max(acc)),
    fmt(percentile(acc, 50) / SLOT_MS, 2),
    fmt(percentile(acc, 99) / SLOT_MS, 2),
    `${fmt(median(slots), 1)} (${min(slots)}–${max(slots)})`,
    fmt(median(s.map((x) => x.ackMs)), 1),
    fmt(median(s.map((x) => x.refinedMs)), 1),
    fmt(median(s.map((x) => x.notifyMs)), 2),
  ];
});
console.log(`bench/rpc-latency.ts — node ${mc.node}, ${mc.cpus} cores (${mc.cpuModel}), tiny chain, slot ${SLOT_MS} ms, counter increments`);
console.log(`RPC round trip (bestBlock): p50 ${fmt(percentile(pingMs, 50), 2)} ms, p99 ${fmt(percentile(pingMs, 99), 2)} ms (n=${pingMs.length})`);
console.log("");
console.log(
  table(
    [
      "submit → accumulated",
      "n",
      "p50 ms",
      "p99 ms",
      "min",
      "max",
      "p50 slots",
      "p99 slots",
      "block slots median (min–max)",
      "submit ack ms",
      "→ refined ms",
      "notify after block ms",
    ],
    rows,
  ),
);
console.log("");
console.log(
  `(slots: wall time over ${SLOT_MS} ms; block slots: accumulatedIn.slot − best slot when submitted; p99 of n ≤ 100 is the max. Medians for ack, refined (both from the submit call) and notify`,
);
console.log(
  ` after block: the accumulated update's arrival − the node's own block event, i.e. the RPC notification path; in-process statuses are emitted before block events, hence ≤ 0.)`,
);
if (problems.length > 0) console.log(`node warnings/errors: ${problems.slice(0, 5).join(" | ")}`);
const summary: Record<string, unknown> = {
  bench: "rpc-latency",
  node: mc.node,
  cpus: mc.cpus,
  slotMs: SLOT_MS,
  rpcPingP50Ms: Number(percentile(pingMs, 50).toFixed(2)),
};
for (const [label, s] of groups) {
  const acc = s.map((x) => x.accumulatedMs);
  summary[label] = {
    n: s.length,
    p50Ms: Math.round(percentile(acc, 50)),
    p99Ms: Math.round(percentile(acc, 99)),
    minMs: Math.round(min(acc)),
    maxMs: Math.round(max(acc)),
    slotsMedian: median(s.map((x) => x.slots)),
    slotsMax: max(s.map((x) => x.slots)),
  };
}
console.log(JSON.stringify(summary));
