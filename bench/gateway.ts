/**
 * The gateway end to end, on loopback, with its ceilings measured in the same run.
 *
 *   node --import tsx bench/gateway.ts [--devices 1000] [--rate 5000] [--duration 30] [--warmup 5]
 *        [--drain 15] [--slot-ms 1000] [--batch-ms 200] [--readings 60] [--body columns|rows] [--ceiling-runs 2]
 *        [--aedes-seconds 5] [--verify-seconds 3] [--client raw] [--cpu-prof /tmp/gw-prof] [--what-if-mq-concurrency 0] [--what-if-in-flight 2] [--what-if-packing deadline] [--what-if-lead-margin 250] [--what-if-node-flags="--max-semi-space-size=64"] [--what-if-no-node-first]
 *        [--trace-out /tmp/gw-trace.json] [--alloc-prof] [--dashboard-clients 50]
 *        [--gateways 2] [--pairs 3] [--rates 4000,5000,6000,7000] [--margin-slots 0.5] [--remote-node]
 *
 * Three processes: this one (orchestration, and the verify ceiling on worker threads while
 * nothing else runs), the server (bench/lib/gateway-server.ts: the gateway and its embedded node
 * via gateway/testing/harness.ts, or a bare aedes broker) and the load generator
 * (bench/lib/loadgen.ts: one MQTT client per device). The load generator is its own process so
 * the gateway's event loop never waits for it, but on 2 cores the two still share the CPU: both
 * processes' CPU use is printed. Real devices do not take the gateway machine's CPU, so by
 * default (--client raw) the devices use bench/lib/raw-mqtt.ts, a minimal MQTT 3.1.1 client that
 * writes each PUBLISH frame encoded before the run (its header says what it costs, measured);
 * --client mqtt.js gives every device an mqtt.js client instead (~87 µs of CPU per envelope:
 * publish, PUBACK, receipt, the receipt's PUBACK; 0.26 cores at 3,000/s), to compare the two side
 * by side. Both put the same packets on the same sockets; the bare-aedes ceiling and the gateway
 * run use the chosen client.
 *
 * Devices publish signed envelopes of --readings meter readings (integers: t, importWh, exportWh,
 * powerW, voltageV) at QoS 1 on devices/{id}/up/meter.reading, at a fixed total rate (open loop),
 * device after device; every envelope is signed before anything is timed. Measured over
 * --duration s after --warmup s: envelopes offered, PUBACKed (accepted) and receipted (settled)
 * per second, and publish → PUBACK and publish → receipt latency (ms and slots).
 *
 * Ceilings, half before and half after the gateway run: (1) the same clients on a bare aedes
 * broker (no hooks, the gateway's limits), each subscribed to its own topic and keeping messages
 * of the same size in flight: QoS 1 publish → subscribe deliveries/s; (2) Ed25519 verify/s with
 * libsodium (what refine uses) on one worker thread per core (and on one thread), over the same
 * signing bytes.
 *
 * --dashboard-clients N opens N dashboards on the gateway's HTTP API during the load (bench/lib/
 * dashboard-clients.ts, its own process: each holds the live event stream and refreshes the
 * page's views every 5 s), to show what reading the ledger costs settlement: run it with 0 and
 * with 50 one after the other and compare p99 receipt.
 *
 * --cpu-prof DIR runs the gateway process under `node --cpu-prof` and prints its top functions
 * (main thread and refine threads); the figures of a profiled run are not the benchmark's.
 *
 * Where the cores go: every run also gives the CPU of each process and, inside the gateway
 * process, of each kind of thread (main, node, refine, libuv pool, V8 platform, loader), read from
 * /proc/<pid>/task/<tid>/stat at the measured window's start and end; the gateway process loads
 * bench/lib/thread-probe.mjs, which names its threads (bench/lib/threads.ts).
 *
 * One process against several (bench/lib/compare.ts, bench/lib/cluster.ts): --gateways 2 runs,
 * instead of the default run, `jamgate node start` and two `jamgate start --node … --cluster
 * redis://…` on a real redis-server, the devices spread evenly over the two gateways' MQTT ports;
 * --pairs N alternates it with one `jamgate start` (embedded node) N times in one run, 1, 2, 1, 2 …,
 * each pair after its own bare-aedes ceiling (--ceiling-runs runs), and reports per run: settled
 * envelopes/s, p50/p99 publish → receipt in slots, envelopes not receipted, settled ÷ bare aedes,
 * and the cores of every process (load generator, gateways, node, redis-server) and thread kind.
 * --rates A,B,… (replacing --rate) sweeps the rates, each with those runs (or one run of the
 * --gateways deployment without --pairs), and states the highest rate at which p99 receipt ≤ 3
 * slots held in every run at it and every lower rate, and the same for p99 ≤ 3 − --margin-slots.
 * --remote-node makes the one gateway `jamgate node start` + one `jamgate start --node …` (no
 * Redis), to tell what the node's being another process costs from what the cluster costs.
 * These runs start real `jamgate` processes from source, fresh data dirs each; the default run's
 * what-ifs, profiles, trace and dashboards are not available in them.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { decodeEnvelope, signingBytes } from "../devices/envelope.ts";
import { type ProfileSummary, summarizeProfile } from "./lib/cpuprofile.ts";
import { benchDevice, signedEnvelopes } from "./lib/devices.ts";
import { Child, gitRevision, machineCpuS, openFilesLimit, processCpuS } from "./lib/proc.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, max, median, min, percentile, table } from "./lib/stats.ts";
import { VerifyCeiling } from "./lib/verify-ceiling.ts";
import { coresRows, runComparison } from "./lib/compare.ts";
import { coresByKind, sampleAll, THREAD_PROBE, type Watched } from "./lib/threads.ts";
import type { AllocSummary } from "./lib/allocprofile.ts";
import type { PackageTrace } from "./lib/gateway-server.ts";

const flags = parseFlags("bench/gateway.ts", "The gateway end to end, on loopback, with its ceilings measured in the same run.", {
  devices: { kind: "number", default: 1_000, help: "simulated devices, one MQTT client each" },
  rate: { kind: "number", default: 5_000, help: "envelopes offered per second, in total (open loop)" },
  duration: { kind: "number", default: 30, help: "seconds measured, after the warm-up" },
  warmup: { kind: "number", default: 5, help: "seconds of load before the measured part" },
  drain: { kind: "number", default: 15, help: "seconds to wait for receipts after the last publish" },
  "slot-ms": { kind: "number", default: 1_000, help: "the node's slot, ms" },
  "batch-ms": { kind: "number", default: 200, help: "the gateway's batch deadline, ms" },
  readings: { kind: "number", default: 60, help: "meter readings per envelope" },
  // "columns" is what the SDK sends (devices/readings.ts); "rows" is the same readings as an array of maps, as a device encoding its readings itself may send them, ~7.7× the bytes.
  body: { kind: "string", default: "columns", choices: ["columns", "rows"], help: "how the readings are encoded in each envelope's body" },
  "ceiling-runs": { kind: "number", default: 2, help: "ceiling runs (verify, bare aedes) before the gateway run, and as many after" },
  "aedes-seconds": { kind: "number", default: 5, help: "seconds measured in each bare-aedes ceiling run" },
  "verify-seconds": { kind: "number", default: 3, help: "seconds of each Ed25519 verify ceiling (1 thread, then all cores)" },
  // "raw" (bench/lib/raw-mqtt.ts, pre-encoded frames) or "mqtt.js": both put the same packets on the wire, raw takes less of the CPU the gateway shares with it here.
  client: { kind: "string", default: "raw", choices: ["raw", "mqtt.js"], help: "the simulated devices' MQTT client" },
  "cpu-prof": { kind: "string", default: null, valueName: "DIR", help: "profile the gateway process into DIR and print its top functions" },
  "alloc-prof": {
    kind: "boolean",
    help: "sample where the gateway's main thread allocates during the load (V8 sampling heap profiler, collected objects kept) and print the top sites; the figures of such a run are not the benchmark's",
  },
  "dashboard-clients": { kind: "number", default: 0, help: "dashboards reading the HTTP API during the load (event stream + a refresh every 5 s each)" },
  "trace-out": {
    kind: "string",
    default: null,
    valueName: "FILE",
    help: "write the gateway run's package and block trace and the per-second timeline as JSON to FILE",
  },
  gateways: {
    kind: "number",
    default: 1,
    help: "1: the gateway with its embedded node in one process (the default run); 2 (or more): `jamgate node start` + that many `jamgate start --cluster` on one redis-server, devices spread evenly",
  },
  pairs: {
    kind: "number",
    default: 0,
    help: "compare: N × (bare aedes, `jamgate start`, the --gateways cluster (2 if not given)) alternating in one run, per rate",
  },
  rates: {
    kind: "numbers",
    default: [],
    help: "sweep: run the comparison (or the --gateways deployment) at each rate, and state the highest at which p99 receipt ≤ 3 slots held",
  },
  "remote-node": {
    kind: "boolean",
    help: "with --gateways 1 or --pairs: the one gateway drives `jamgate node start` over JIP-2 (no Redis) instead of its embedded node, to tell the remote node's cost from the cluster's",
  },
  "margin-slots": { kind: "number", default: 0.5, help: "with --rates: the margin also stated: the highest rate at which p99 ≤ 3 − this held" },
  // The what-ifs change one limit inside the gateway process; their runs are not the gateway as shipped.
  // brokerLimits.concurrency is 0 (no queue); it was 1,000 until it crashed at 5,000/s.
  "what-if-mq-concurrency": { kind: "number", default: null, help: "what-if: aedes's mqemitter concurrency (brokerLimits.concurrency)" },
  "what-if-in-flight": { kind: "number", default: null, help: "what-if: settlementLimits.packagesInFlightMax" },
  "what-if-packing": {
    kind: "string",
    default: null,
    choices: ["deadline"],
    help: "what-if: pack every --batch-ms instead of once per slot, aligned to blocks",
  },
  "what-if-lead-margin": { kind: "number", default: null, help: "what-if: settlementLimits.leadMarginMs (300 as shipped)" },
  "what-if-no-node-first": { kind: "boolean", help: "what-if: every thread of the gateway process at one priority (`jamgate start --no-node-first`)" },
  "what-if-node-flags": {
    kind: "string",
    default: null,
    valueName: "FLAGS",
    help: 'what-if: extra node/V8 flags for the gateway process, space-separated, after "=": --what-if-node-flags="--max-semi-space-size=64"',
  },
});
const DEVICES = flags.devices;
const RATE = flags.rate;
const DURATION_S = flags.duration;
const WARMUP_S = flags.warmup;
const DRAIN_S = flags.drain;
const SLOT_MS = flags["slot-ms"];
const BATCH_MS = flags["batch-ms"];
const READINGS = flags.readings;
const BODY = flags.body as "columns" | "rows";
const CEILING_RUNS = flags["ceiling-runs"];
const AEDES_S = flags["aedes-seconds"];
const VERIFY_S = flags["verify-seconds"];
const PROFILE_DIR = flags["cpu-prof"];
const ALLOC_PROF = flags["alloc-prof"];
const CLIENT = flags.client;
const WHAT_IF_MQ = flags["what-if-mq-concurrency"];
const WHAT_IF_IN_FLIGHT = flags["what-if-in-flight"];
const WHAT_IF_PACKING = flags["what-if-packing"];
const WHAT_IF_LEAD_MARGIN = flags["what-if-lead-margin"];
const WHAT_IF_NODE_FLAGS = flags["what-if-node-flags"];
const WHAT_IF_NO_NODE_FIRST = flags["what-if-no-node-first"] === true;
const TRACE_OUT = flags["trace-out"];
const DASHBOARD_CLIENTS = flags["dashboard-clients"];
const GATEWAYS = flags.gateways;
const PAIRS = flags.pairs;
const RATES = flags.rates;
const MARGIN_SLOTS = flags["margin-slots"];
/** --gateways N > 1, --pairs, --rates or --remote-node: `jamgate` processes side by side (bench/lib/compare.ts) instead of the default run. */
const REMOTE_NODE = flags["remote-node"] === true;
const COMPARE = GATEWAYS !== 1 || PAIRS > 0 || RATES.length > 0 || REMOTE_NODE;
const TARGET_PER_S = 5_000;
const TARGET_P99_SLOTS = 3;
/** Issue 19's goal for the comparison runs: settled ≥ half of bare aedes QoS 1 measured in the same run, with p99 ≤ 3 slots. */
const TARGET_OF_AEDES = 0.5;
const CORES = availableParallelism();

if (DEVICES > 1_000 * 250 || DURATION_S > 120 || RATE > 50_000 || DASHBOARD_CLIENTS > 500)
  throw new Error("bounded: at most 250,000 devices, 120 s, 50,000 envelopes/s and 500 dashboard clients");

const usageError = (msg: string): never => {
  process.stderr.write(`bench/gateway.ts: ${msg}\n`);
  process.exit(2);
};
if (!Number.isInteger(GATEWAYS) || GATEWAYS < 1 || GATEWAYS > 4) usageError(`--gateways takes 1 to 4, not ${GATEWAYS}`);
if (!Number.isInteger(PAIRS) || PAIRS < 0 || PAIRS > 20) usageError(`--pairs takes 0 to 20, not ${PAIRS}`);
if (RATES.some((r) => !(r > 0) || r > 50_000) || RATES.length > 12) usageError("--rates takes up to 12 rates, each above 0 and at most 50,000");
if (!(MARGIN_SLOTS >= 0 && MARGIN_SLOTS < TARGET_P99_SLOTS)) usageError(`--margin-slots takes 0 to under ${TARGET_P99_SLOTS}, not ${MARGIN_SLOTS}`);
if (COMPARE) {
  // What only the default run (the in-process harness, bench/lib/gateway-server.ts) can do.
  const only = Object.entries({
    "cpu-prof": PROFILE_DIR !== null,
    "alloc-prof": ALLOC_PROF,
    "trace-out": TRACE_OUT !== null,
    "dashboard-clients": DASHBOARD_CLIENTS > 0,
    "what-if-mq-concurrency": WHAT_IF_MQ !== null,
    "what-if-in-flight": WHAT_IF_IN_FLIGHT !== null,
    "what-if-packing": WHAT_IF_PACKING !== null,
    "what-if-lead-margin": WHAT_IF_LEAD_MARGIN !== null,
    "what-if-node-flags": WHAT_IF_NODE_FLAGS !== null,
    "what-if-no-node-first": WHAT_IF_NO_NODE_FIRST,
  })
    .filter(([, on]) => on)
    .map(([f]) => `--${f}`);
  if (only.length > 0) usageError(`${only.join(", ")}: only in the default run, not with --gateways 2, --pairs or --rates`);
}

const progress = (msg: string) => process.stderr.write(`[gateway-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const SERVER = new URL("./lib/gateway-server.ts", import.meta.url);
const LOADGEN = new URL("./lib/loadgen.ts", import.meta.url);
const DASHBOARDS = new URL("./lib/dashboard-clients.ts", import.meta.url);

/** What bench/lib/dashboard-clients.ts reports. */
interface DashboardStats {
  clients: number;
  streamsOpen: number;
  streamErrors: number;
  events: number;
  requests: number;
  failures: number;
  failureCodes: Record<string, number>;
  requestMedianMs: number | null;
  requestP99Ms: number | null;
  cpuS: number;
}

// --- the same signing bytes for the verify ceiling -------------------------------------------
const verifySamples = Array.from({ length: 200 }, (_, i) => {
  const d = benchDevice(i);
  const decoded = decodeEnvelope(signedEnvelopes(d, 1, READINGS, Date.now())[0]!);
  if (!decoded.ok) throw new Error("sample envelope does not decode");
  return { publicKey: d.key.publicKey, message: signingBytes(decoded.envelope), signature: decoded.envelope.signature };
});

const REVISION = gitRevision();
progress(`machine: ${JSON.stringify(machine())}, fd limit ${JSON.stringify(openFilesLimit())}, code ${REVISION}`);
// --rates replaces --rate: each device's envelopes are signed once, for the highest rate run.
const perDevice = Math.ceil(((RATES.length > 0 ? Math.max(...RATES) : RATE) * (WARMUP_S + DURATION_S)) / DEVICES) + 1;
const loadgen = await Child.start("loadgen", LOADGEN);
progress(`pre-signing ${fmt(DEVICES * perDevice)} envelopes (${DEVICES} devices × ${perDevice}, ${READINGS} readings each) on ${CORES} threads…`);
const prepared = await loadgen.call<{ ms: number; envelopes: number; bytes: number; envelopeBytesMedian: number }>("prepare", {
  from: 0,
  to: DEVICES,
  perDevice,
  readings: READINGS,
  body: BODY,
});
progress(
  `signed in ${(prepared.ms / 1000).toFixed(1)} s (${fmt(prepared.envelopes / (prepared.ms / 1000))}/s), envelope ${prepared.envelopeBytesMedian} bytes, ${fmt(prepared.bytes / 1024 ** 2)} MiB`,
);

// --- ceilings ---------------------------------------------------------------------------------
const verify1: number[] = [];
const verifyAll: number[] = [];
const aedesRuns: { deliveredPerS: number; ackedPerS: number; latencyMs: { p50: number; p99: number }; cpu: { processCores: number }; serverCores: number }[] =
  [];
const echoWindow = Math.max(1, Math.ceil(1_000 / DEVICES));

async function verifyCeiling(): Promise<void> {
  const v = new VerifyCeiling(CORES, verifySamples);
  try {
    verify1.push(await v.rate(VERIFY_S * 1000, 1));
    verifyAll.push(await v.rate(VERIFY_S * 1000));
    progress(`verify ceiling: 1 thread ${fmt(verify1.at(-1)!)}/s, ${CORES} threads ${fmt(verifyAll.at(-1)!)}/s`);
  } finally {
    await v.close();
  }
}

async function aedesCeiling(): Promise<void> {
  const server = await Child.start("aedes", SERVER);
  try {
    const { port } = await server.call<{ port: number }>("start-aedes");
    const c = await loadgen.call<{ connected: number; errors: object; ms: number }>("connect", {
      from: 0,
      to: DEVICES,
      port,
      subscribe: "all",
      client: CLIENT,
    });
    if (c.connected !== DEVICES) throw new Error(`bare aedes: ${c.connected} of ${DEVICES} connected: ${JSON.stringify(c.errors)}`);
    const s0 = await server.call<{ at: number; cpu: { processS: number } }>("stats");
    const r = await loadgen.call<(typeof aedesRuns)[number]>("run-echo", { warmupMs: 1_000, measureMs: AEDES_S * 1000, window: echoWindow });
    const s1 = await server.call<{ at: number; cpu: { processS: number } }>("stats");
    r.serverCores = (s1.cpu.processS - s0.cpu.processS) / ((s1.at - s0.at) / 1000);
    aedesRuns.push(r);
    progress(
      `bare aedes: ${fmt(r.deliveredPerS)} deliveries/s, p50 ${r.latencyMs.p50.toFixed(1)} ms (broker ${r.serverCores.toFixed(2)} cores, clients ${r.cpu.processCores.toFixed(2)} cores)`,
    );
    await loadgen.call("disconnect");
    await server.call("stop");
  } finally {
    await server.stop();
  }
}

async function ceilings(): Promise<void> {
  for (let i = 0; i < CEILING_RUNS; i++) {
    await verifyCeiling();
    await aedesCeiling();
  }
}

// --- the gateway --------------------------------------------------------------------------------
interface ServerStats {
  at: number;
  memory: { rss: number };
  cpu: { mainS: number; processS: number };
  eventLoop: { utilization: number; delayP50Ms: number; delayP99Ms: number; delayMaxMs: number };
  gateway: {
    accepted: number;
    settled: number;
    pending: number;
    inFlight: number;
    logged: number;
    packages: number;
    packagesFailed: number;
    bestSlot: number;
    rejected: number;
  } | null;
}
type Snapshot = ServerStats & { localAt: number; loadgenS: number; machine: { busy: number; total: number }; selfS: number };
interface OpenRun {
  devices: number;
  published: number;
  publishLagMax: number;
  offeredPerS: number;
  acceptedPerS: number;
  /** Over whole block periods of the window when receipts came in per-block bursts (settledBlockAligned), else over the window. */
  settledPerS: number;
  settledBlockAligned: boolean;
  windows: { offered: number; accepted: number; settled: number }[];
  inWindow: number;
  unsettled: number;
  unacked: number;
  settledAll: boolean;
  drainS: number;
  duplicates: number;
  errors: Record<string, number>;
  receiptMs: { p50: number; p99: number; max: number; slots: { p50: number; p99: number } };
  ackMs: { p50: number; p99: number; max: number };
  timeline: { published: number[]; accepted: number[]; settled: number[] };
  cpu: { mainCores: number; processCores: number };
}
interface Trace {
  packages: PackageTrace[];
  blocks: { at: number; slot: number }[];
  warnings: string[];
  warningCount: number;
  errors: Record<string, number>;
}

/** How the gateway process's threads were prioritised (node/thread/priority.ts), for the report. */
let priorities = "(not started)";

async function gatewayRun() {
  if (PROFILE_DIR !== null) {
    rmSync(PROFILE_DIR, { recursive: true, force: true });
    mkdirSync(PROFILE_DIR, { recursive: true });
  }
  // The gateway process's threads name themselves (bench/lib/thread-probe.mjs), so the cores can be given per kind of thread.
  const probeDir = mkdtempSync(join(tmpdir(), "jamgate-bench-probe-"));
  process.env.BENCH_THREAD_PROBE_DIR = probeDir;
  const server = await Child.start("gateway", SERVER, [
    "--stack-trace-limit=40",
    ...(WHAT_IF_NODE_FLAGS === null ? [] : WHAT_IF_NODE_FLAGS.split(" ").filter((f) => f !== "")),
    ...(PROFILE_DIR === null ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`]),
    "--import",
    THREAD_PROBE,
  ]).finally(() => delete process.env.BENCH_THREAD_PROBE_DIR);
  try {
    const started = await server.call<{
      port: number;
      httpUrl: string;
      dataDir: string;
      fdLimit: { soft: number };
      priorities: { lowered: number; nice: number | null } | null;
      nodeThreads: number;
    }>("start-gateway", {
      slotMs: SLOT_MS,
      batchMs: BATCH_MS,
      mqConcurrency: WHAT_IF_MQ,
      inFlight: WHAT_IF_IN_FLIGHT,
      packing: WHAT_IF_PACKING,
      leadMargin: WHAT_IF_LEAD_MARGIN,
      noNodeFirst: WHAT_IF_NO_NODE_FIRST,
    });
    const reg = await server.call<{ packages: number; ms: number }>("register", { from: 0, to: DEVICES });
    const warm = await server.call<{ missing: number; ms: number }>("warm-registry", { from: 0, to: DEVICES });
    if (warm.missing > 0) throw new Error(`${warm.missing} devices not registered`);
    const p = started.priorities;
    priorities =
      p === null
        ? "all at one priority"
        : p.nice === null
          ? "not available here"
          : `the node's ${started.nodeThreads} ahead; ${p.lowered} others at nice ${p.nice}`;
    progress(`thread priorities: ${priorities}`);
    progress(
      `gateway on port ${started.port} (fd limit ${started.fdLimit.soft}); ${DEVICES} devices registered in ${reg.packages} packages, ${(reg.ms / 1000).toFixed(1)} s`,
    );
    const c = await loadgen.call<{ connected: number; errors: object; ms: number }>("connect", {
      from: 0,
      to: DEVICES,
      port: started.port,
      subscribe: "down",
      client: CLIENT,
    });
    if (c.connected !== DEVICES) throw new Error(`gateway: ${c.connected} of ${DEVICES} connected: ${JSON.stringify(c.errors)}`);
    progress(
      `${DEVICES} devices (${CLIENT} clients) connected in ${(c.ms / 1000).toFixed(1)} s; offering ${fmt(RATE)} envelopes/s for ${WARMUP_S} + ${DURATION_S} s`,
    );
    const snapshots: Snapshot[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling && server.crashed === null) {
        const s = await server.call<ServerStats>("stats").catch(() => null);
        const l = await loadgen.call<{ cpu: { processS: number } }>("stats").catch(() => null);
        if (s === null || l === null) break;
        snapshots.push({ ...s, localAt: performance.now(), loadgenS: l.cpu.processS, machine: machineCpuS(), selfS: processCpuS() });
        const g = s.gateway!;
        if (snapshots.length % 5 === 0)
          progress(
            `accepted ${fmt(g.accepted)}, settled ${fmt(g.settled)}, pending ${fmt(g.pending)}, in flight ${g.inFlight}, slot ${g.bestSlot}, ELU ${s.eventLoop.utilization.toFixed(2)}, rss ${fmt(s.memory.rss / 1024 ** 2)} MiB`,
          );
        await sleep(1_000);
      }
    })();
    // With --cpu-prof: the main thread is also profiled over exactly the load (warm-up + measured part), through node:inspector.
    let windowProfile: Promise<ProfileSummary> | null = null;
    if (PROFILE_DIR !== null) {
      await server.call("profile-start");
      windowProfile = new Promise((resolve, reject) =>
        setTimeout(() => server.call<ProfileSummary>("profile-stop", { top: 20 }).then(resolve, reject), (WARMUP_S + DURATION_S) * 1000),
      );
      windowProfile.catch(() => {}); // a crashed gateway has no profile to give; handled below, this keeps the rejection from ending the run
    }
    let windowAllocs: Promise<AllocSummary> | null = null;
    if (ALLOC_PROF) {
      await server.call("alloc-start");
      windowAllocs = new Promise((resolve, reject) =>
        setTimeout(() => server.call<AllocSummary>("alloc-stop", { top: 25 }).then(resolve, reject), (WARMUP_S + DURATION_S) * 1000),
      );
      windowAllocs.catch(() => {}); // as with the CPU profile: a crash is reported below
    }
    // Dashboards open through the warm-up and the measured part; their counters restart when the measured part does.
    const dashboards = DASHBOARD_CLIENTS > 0 ? await Child.start("dashboards", DASHBOARDS) : null;
    if (dashboards !== null) {
      await dashboards.call("start", { url: started.httpUrl, clients: DASHBOARD_CLIENTS });
      setTimeout(() => void dashboards.call("reset").catch(() => {}), WARMUP_S * 1000).unref();
      progress(`${DASHBOARD_CLIENTS} dashboards reading ${started.httpUrl}`);
    }
    const watched: Watched[] = [
      { label: "gateway (with its embedded node)", pid: server.proc.pid!, probeDir },
      { label: `load generator (${CLIENT} clients)`, pid: loadgen.proc.pid!, probeDir: null },
      { label: "orchestrator (this process)", pid: process.pid, probeDir: null },
    ];
    const threadSample = (afterMs: number) => sleep(afterMs).then(() => ({ processes: sampleAll(watched), machine: machineCpuS(), at: performance.now() }));
    const threadsFirst = threadSample(WARMUP_S * 1000);
    const threadsLast = threadSample((WARMUP_S + DURATION_S) * 1000);
    const runStart = performance.now();
    const run = await loadgen.call<OpenRun>("run-open", {
      rate: RATE,
      warmupMs: WARMUP_S * 1000,
      measureMs: DURATION_S * 1000,
      drainMs: DRAIN_S * 1000,
      slotMs: SLOT_MS,
    });
    const dashboardStats = dashboards === null ? null : await dashboards.call<DashboardStats>("stats");
    if (dashboards !== null) {
      await dashboards.call("stop");
      await dashboards.stop();
    }
    polling = false;
    await poll;
    const mainProfile = windowProfile === null ? null : await windowProfile.catch(() => null);
    const mainAllocs = windowAllocs === null ? null : await windowAllocs.catch(() => null);
    const crashed = server.crashed === null ? null : { ...server.crashed, afterS: (server.crashed.localAt - runStart) / 1000 };
    const trace = crashed === null ? await server.call<Trace>("trace") : null;
    const batches = crashed === null ? await server.call<{ packages: number; envelopes: number }>("batch-stats") : null;
    await loadgen.call("disconnect");
    if (crashed === null) await server.call("stop");
    else rmSync(started.dataDir, { recursive: true, force: true }); // a crashed gateway leaves its node and log behind
    // CPU over the measured window (or up to a crash), from the 1 s snapshots.
    const a = runStart + WARMUP_S * 1000;
    const b = a + DURATION_S * 1000;
    const inside = snapshots.filter((s) => s.localAt >= a - 500 && s.localAt <= b + 500);
    const first = inside[0] ?? snapshots[0]!;
    const last = inside.at(-1) ?? snapshots.at(-1)!;
    const spanS = (last.localAt - first.localAt) / 1000;
    const cpu = {
      spanS,
      gatewayCores: (last.cpu.processS - first.cpu.processS) / spanS,
      gatewayMainCores: (last.cpu.mainS - first.cpu.mainS) / spanS,
      loadgenCores: (last.loadgenS - first.loadgenS) / spanS,
      selfCores: (last.selfS - first.selfS) / spanS,
      machineCores: (last.machine.busy - first.machine.busy) / spanS,
      othersCores: 0,
    };
    cpu.othersCores = Math.max(0, cpu.machineCores - cpu.gatewayCores - cpu.loadgenCores - cpu.selfCores);
    const elu = inside.slice(1).map((s) => s.eventLoop.utilization);
    const delayP99 = inside.slice(1).map((s) => s.eventLoop.delayP99Ms);
    const rssMax = Math.max(...snapshots.map((s) => s.memory.rss));
    // Per process and kind of thread over the measured window (bench/lib/threads.ts).
    const t0 = await threadsFirst;
    const t1 = await threadsLast;
    const threadSpanS = (t1.at - t0.at) / 1000;
    const processes = watched.map((w, i) => coresByKind(w, t0.processes[i]!, t1.processes[i]!));
    const machineCores = (t1.machine.busy - t0.machine.busy) / threadSpanS;
    const threads = {
      processes,
      machineCores,
      othersCores: Math.max(0, machineCores - processes.reduce((x, p) => x + (Number.isFinite(p.cores) ? p.cores : 0), 0)),
    };
    return { run, trace, batches, cpu, elu, delayP99, rssMax, snapshots, reg, crashed, mainProfile, mainAllocs, dashboardStats, threads };
  } finally {
    await server.stop();
    rmSync(probeDir, { recursive: true, force: true });
  }
}

if (COMPARE) {
  await runComparison({
    loadgen,
    devices: DEVICES,
    client: CLIENT,
    rates: RATES.length > 0 ? RATES : [RATE],
    deployments: PAIRS > 0 ? [1, Math.max(2, GATEWAYS)] : [GATEWAYS],
    remoteNode: REMOTE_NODE,
    repeats: Math.max(1, PAIRS),
    warmupS: WARMUP_S,
    durationS: DURATION_S,
    drainS: DRAIN_S,
    slotMs: SLOT_MS,
    batchMs: BATCH_MS,
    ceilingRuns: CEILING_RUNS,
    targetP99Slots: TARGET_P99_SLOTS,
    marginSlots: MARGIN_SLOTS,
    targetOfAedes: TARGET_OF_AEDES,
    readings: READINGS,
    envelopeBytes: prepared.envelopeBytesMedian,
    aedes: async () => {
      await aedesCeiling();
      return aedesRuns.at(-1)!.deliveredPerS;
    },
    progress,
  });
  await loadgen.stop();
  process.exit(0);
}

await ceilings();
const g = await gatewayRun();
await ceilings();
await loadgen.stop();

// --- profiles --------------------------------------------------------------------------------
const profiles: { thread: string; summary: ProfileSummary }[] = [];
if (PROFILE_DIR !== null) {
  for (const f of readdirSync(PROFILE_DIR).filter((f) => f.endsWith(".cpuprofile"))) {
    const threadId = Number(f.split(".")[4]);
    profiles.push({ thread: threadId === 0 ? "main" : `thread ${threadId}`, summary: summarizeProfile(join(PROFILE_DIR, f)) });
  }
  profiles.sort((x, y) => (x.thread === "main" ? -1 : y.thread === "main" ? 1 : y.summary.busyMs - x.summary.busyMs));
}

if (TRACE_OUT !== null) writeFileSync(TRACE_OUT, JSON.stringify({ trace: g.trace, timeline: g.run.timeline, snapshots: g.snapshots }, null, 1));

// --- report ------------------------------------------------------------------------------------
const r = g.run;
const readingsPerS = r.settledPerS * READINGS;
// Whole 5 s windows of the measured part (bench/lib/loadgen.ts); a --duration under 5 s has none, shown as "—" (null in the JSON).
const hasWindows = r.windows.length > 0;
const w = (k: "offered" | "accepted" | "settled") => {
  const xs = r.windows.map((x) => x[k]);
  return hasWindows ? `${fmt(median(xs))} (${fmt(min(xs))}–${fmt(max(xs))})` : "—";
};
const vAll = median(verifyAll);
const v1 = median(verify1);
const aedes = median(aedesRuns.map((x) => x.deliveredPerS));
const p99Slots = r.receiptMs.slots.p99;
const met = g.crashed === null && r.settledPerS >= TARGET_PER_S * 0.99 && r.acceptedPerS >= TARGET_PER_S * 0.99 && p99Slots <= TARGET_P99_SLOTS;

if (WHAT_IF_MQ !== null)
  console.log(`\nWHAT-IF RUN, not the gateway as shipped: aedes mqemitter concurrency set to ${WHAT_IF_MQ} (brokerLimits.concurrency is 0, no queue)`);
if (WHAT_IF_IN_FLIGHT !== null)
  console.log(`\nWHAT-IF RUN, not the gateway as shipped: settlementLimits.packagesInFlightMax set to ${WHAT_IF_IN_FLIGHT} (8 as shipped)`);
if (WHAT_IF_LEAD_MARGIN !== null)
  console.log(`\nWHAT-IF RUN, not the gateway as shipped: settlementLimits.leadMarginMs set to ${WHAT_IF_LEAD_MARGIN} (300 as shipped)`);
if (WHAT_IF_NODE_FLAGS !== null) console.log(`\nWHAT-IF RUN, not the gateway as shipped: gateway process started with ${WHAT_IF_NODE_FLAGS}`);
if (WHAT_IF_NO_NODE_FIRST)
  console.log(`\nWHAT-IF RUN, not the gateway as shipped: every thread at one priority (as shipped, the gateway's threads run at nice +5 beside the node's)`);
if (WHAT_IF_PACKING !== null) console.log(`\nWHAT-IF RUN, not the gateway as shipped: packing "${WHAT_IF_PACKING}" ("aligned" as shipped)`);
console.log(
  `\ngateway end to end (code ${REVISION}): ${fmt(DEVICES)} devices (${CLIENT} MQTT clients), ${READINGS} readings (${fmt(prepared.envelopeBytesMedian)} bytes, as ${BODY}) per envelope, QoS 1, offered ${fmt(RATE)} envelopes/s, slot ${SLOT_MS} ms, batch deadline ${BATCH_MS} ms; ${DURATION_S} s measured after ${WARMUP_S} s warm-up\n`,
);
console.log(
  table(
    ["per second, measured window", "whole window", "5 s windows median (min–max)"],
    [
      ["envelopes offered (PUBLISH sent)", fmt(r.offeredPerS), w("offered")],
      ["envelopes accepted (PUBACK)", fmt(r.acceptedPerS), w("accepted")],
      [r.settledBlockAligned ? "envelopes settled (receipt; whole blocks of the window)" : "envelopes settled (receipt)", fmt(r.settledPerS), w("settled")],
      ["readings settled", fmt(readingsPerS), hasWindows ? fmt(median(r.windows.map((x) => x.settled)) * READINGS) : "—"],
    ],
  ),
);
console.log();
console.log(
  table(
    ["latency (envelopes published in the window)", "n", "p50 ms", "p99 ms", "max ms", "p50 slots", "p99 slots"],
    [
      [
        "publish → PUBACK",
        fmt(r.inWindow),
        fmt(r.ackMs.p50, 1),
        fmt(r.ackMs.p99, 1),
        fmt(r.ackMs.max, 1),
        (r.ackMs.p50 / SLOT_MS).toFixed(2),
        (r.ackMs.p99 / SLOT_MS).toFixed(2),
      ],
      [
        "publish → receipt",
        fmt(r.inWindow),
        fmt(r.receiptMs.p50, 0),
        fmt(r.receiptMs.p99, 0),
        fmt(r.receiptMs.max, 0),
        r.receiptMs.slots.p50.toFixed(2),
        r.receiptMs.slots.p99.toFixed(2),
      ],
    ],
  ),
);
console.log(
  `not receipted within ${DRAIN_S} s after the last publish: ${fmt(r.unsettled)} of ${fmt(r.inWindow)} (counted as ∞ in the percentiles); not PUBACKed: ${fmt(r.unacked)}; coded errors: ${JSON.stringify(r.errors)}; duplicate receipts: ${r.duplicates}`,
);
console.log();
const aedesCell = (f: (x: (typeof aedesRuns)[number]) => number, d = 0) =>
  `${fmt(median(aedesRuns.map(f)), d)} (${fmt(min(aedesRuns.map(f)), d)}–${fmt(max(aedesRuns.map(f)), d)})`;
if (CEILING_RUNS === 0) console.log("ceilings: not measured in this run (--ceiling-runs 0)");
else
  console.log(
    table(
      ["ceiling (same run, half before, half after)", "n", "median (min–max)", "settled ÷ ceiling", "signature checks ÷ ceiling"],
      [
        [
          `bare aedes, QoS 1 publish → subscribe, ${fmt(DEVICES)} clients, /s`,
          String(aedesRuns.length),
          aedesCell((x) => x.deliveredPerS),
          pct(r.settledPerS / aedes),
          "–",
        ],
        [
          `Ed25519 verify, libsodium, ${CORES} threads, /s`,
          String(verifyAll.length),
          `${fmt(vAll)} (${fmt(min(verifyAll))}–${fmt(max(verifyAll))})`,
          pct(r.settledPerS / vAll),
          pct(r.settledPerS / vAll),
        ],
        [
          "Ed25519 verify, libsodium, 1 thread, /s",
          String(verify1.length),
          `${fmt(v1)} (${fmt(min(verify1))}–${fmt(max(verify1))})`,
          pct(r.settledPerS / v1),
          pct(r.settledPerS / v1),
        ],
      ],
    ),
  );
console.log(
  `(each envelope's signature is checked once, by refine on a core's worker thread; the gateway checks it before PUBACK too only with verifySignaturesBeforePuback, off here)`,
);
if (CEILING_RUNS > 0)
  console.log(
    `bare aedes: publish → delivery p50 ${aedesCell((x) => x.latencyMs.p50, 1)} ms; broker process ${aedesCell((x) => x.serverCores, 2)} cores, clients ${aedesCell((x) => x.cpu.processCores, 2)} cores; ${echoWindow} message(s) in flight per client`,
  );
console.log();
const pk = g.trace?.packages ?? [];
const submitted = pk.filter((p) => p.submittedAt !== undefined);
const settledPk = pk.filter((p) => p.accumulatedAt !== undefined);
const blocks = g.trace?.blocks ?? [];
const blockGaps = blocks.slice(1).map((b, i) => b.at - blocks[i]!.at);
const medMax = (xs: number[], d = 0) => (xs.length === 0 ? "–" : `${fmt(median(xs), d)} (${fmt(max(xs), d)})`);
console.log(
  table(
    [`where the time and CPU went (${fmt(g.cpu.spanS, 0)} s of 1 s samples in the measured window)`, "value"],
    [
      ["gateway process CPU, all threads (cores)", g.cpu.gatewayCores.toFixed(2)],
      ["gateway main thread CPU (cores)", g.cpu.gatewayMainCores.toFixed(2)],
      ["gateway thread priorities", priorities],
      ["gateway main thread event-loop utilisation, 1 s samples, median (max)", `${median(g.elu).toFixed(2)} (${max(g.elu).toFixed(2)})`],
      ["gateway event-loop delay p99 per 1 s, median (max) ms", medMax(g.delayP99, 1)],
      [`load generator process CPU (cores; ${CLIENT} clients)`, g.cpu.loadgenCores.toFixed(2)],
      ["this orchestrating process (cores)", g.cpu.selfCores.toFixed(2)],
      [`whole machine busy (cores of ${CORES}) / of which other processes`, `${g.cpu.machineCores.toFixed(2)} / ${g.cpu.othersCores.toFixed(2)}`],
      ["gateway RSS max (MiB)", fmt(g.rssMax / 1024 ** 2)],
      [
        "block interval, median (p99, max) ms",
        blockGaps.length === 0 ? "–" : `${fmt(median(blockGaps))} (${fmt(percentile(blockGaps, 99))}, ${fmt(max(blockGaps))})`,
      ],
      ["gateway warnings", g.trace === null ? "(crashed)" : `${g.trace.warningCount}${g.trace.warnings[0] ? `: ${g.trace.warnings[0].slice(0, 120)}` : ""}`],
    ],
  ),
);
console.log();
console.log(
  table(
    [
      `where the cores go, per kind of thread (CPU-seconds, or seconds runnable and waiting for a CPU, per second of the ${DURATION_S} s measured window; (n) threads)`,
      "cores",
    ],
    coresRows([[g.threads]]),
  ),
);
console.log();
const d = g.dashboardStats;
if (d !== null) {
  const spanS = DURATION_S + DRAIN_S;
  console.log(
    table(
      [`${d.clients} dashboards on the HTTP API (counted from the end of the warm-up, ~${spanS} s)`, "value"],
      [
        ["event streams open at the end / failed to open or dropped", `${d.streamsOpen} / ${d.streamErrors}`],
        ["events received (all streams)", fmt(d.events)],
        ["view requests answered / failed", `${fmt(d.requests)} / ${fmt(d.failures)}${d.failures > 0 ? ` ${JSON.stringify(d.failureCodes)}` : ""}`],
        ["view request p50 / p99 ms", d.requestMedianMs === null ? "–" : `${fmt(d.requestMedianMs, 1)} / ${fmt(d.requestP99Ms!, 1)}`],
        ["dashboard clients' process CPU (cores)", (d.cpuS / spanS).toFixed(2)],
      ],
    ),
  );
  console.log();
}
if (g.trace === null) console.log("settlement, per work package: no trace (the gateway crashed)");
const stage = (f: (p: PackageTrace) => number | undefined) => pk.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
if (g.trace !== null)
  console.log(
    table(
      [
        `settlement, per work package (${pk.length} packed, ${submitted.length} submitted, ${settledPk.length} accumulated, ${pk.filter((p) => p.failed).length} failed)`,
        "median",
        "max",
      ],
      [
        ["envelopes per package", ...medMax(stage((p) => p.envelopes)).split(" ")],
        ["package bytes", ...medMax(stage((p) => p.bytes)).split(" ")],
        ["oldest envelope: accepted → packing starts (waiting, then building), ms", ...medMax(stage((p) => p.packStartAt - p.oldestAcceptedAt)).split(" ")],
        [
          "log.markSubmitted (LMDB, one member list per package), ms",
          ...medMax(stage((p) => (p.markedAt === undefined ? undefined : p.markedAt - p.packStartAt))).split(" "),
        ],
        [
          "node submitWorkPackage call (intake), ms",
          ...medMax(stage((p) => (p.submitReturnedAt === undefined ? undefined : p.submitReturnedAt - p.submittedAt!))).split(" "),
        ],
        ["submitted → refined, ms", ...medMax(stage((p) => (p.refinedAt === undefined ? undefined : p.refinedAt - p.submittedAt!))).split(" ")],
        ["refined → accumulated, ms", ...medMax(stage((p) => (p.accumulatedAt === undefined ? undefined : p.accumulatedAt - p.refinedAt!))).split(" ")],
        [
          "accumulated → receipts published, ms",
          ...medMax(stage((p) => (p.receiptsAt === undefined ? undefined : p.receiptsAt - p.accumulatedAt!))).split(" "),
        ],
        [
          "oldest envelope: accepted → receipts published, ms",
          ...medMax(stage((p) => (p.receiptsAt === undefined ? undefined : p.receiptsAt - p.oldestAcceptedAt))).split(" "),
        ],
        [
          "packages in flight when packed (submitted, not settled)",
          ...medMax(
            pk.map(
              (p) =>
                pk.filter((q) => q.submittedAt !== undefined && q.submittedAt < p.packStartAt && (q.receiptsAt ?? Number.POSITIVE_INFINITY) > p.packStartAt)
                  .length,
            ),
          ).split(" "),
        ],
      ].map((r) => [r[0]!, r[1]!, (r[2] ?? "").replace(/[()]/g, "")]),
    ),
  );
if (g.crashed !== null) {
  const lines = g.crashed.stack.split("\n");
  const frames = new Map<string, number>();
  for (const l of lines.slice(1)) frames.set(l.trim(), (frames.get(l.trim()) ?? 0) + 1);
  const end = Math.floor(g.crashed.afterS);
  const from = end > WARMUP_S + 1 ? WARMUP_S : 0;
  const sum = (xs: number[]) => xs.slice(from, end).reduce((x, y) => x + y, 0);
  const span = Math.max(1, end - from);
  console.log(`\nTHE GATEWAY PROCESS CRASHED ${g.crashed.afterS.toFixed(1)} s after the load started: ${lines[0]}`);
  console.log(
    `before the crash (seconds ${from}–${end} of the load): offered ${fmt(sum(r.timeline.published) / span)}/s, accepted ${fmt(sum(r.timeline.accepted) / span)}/s, settled ${fmt(sum(r.timeline.settled) / span)}/s`,
  );
  console.log(
    `innermost frames (of ${lines.length - 1} kept; × = times in those):\n${[...frames]
      .slice(0, 14)
      .map(([f, n]) => `  ${n > 1 ? `${n}× ` : ""}${f}`)
      .join("\n")}`,
  );
}
console.log();
const shortfall = (1 - r.settledPerS / TARGET_PER_S) * 100;
console.log(
  `target: ≥ ${fmt(TARGET_PER_S)} envelopes/s (${fmt(TARGET_PER_S * 60)} readings/s) sustained, p99 receipt ≤ ${TARGET_P99_SLOTS} slots: ${met ? "MET" : "MISSED"} — settled ${fmt(r.settledPerS)}/s (${shortfall > 0 ? `${shortfall.toFixed(0)}% short` : `${(-shortfall).toFixed(0)}% over`}), accepted ${fmt(r.acceptedPerS)}/s, p99 receipt ${p99Slots.toFixed(2)} slots`,
);
console.log(
  `timeline (per second: published / accepted / settled): ${r.timeline.published.map((p, i) => `${p}/${r.timeline.accepted[i]}/${r.timeline.settled[i]}`).join(" ")}`,
);

if (g.mainProfile !== null) profiles.unshift({ thread: `main, during the load only (${WARMUP_S + DURATION_S} s)`, summary: g.mainProfile });
for (const p of profiles) {
  if (p.thread === "main") continue; // the whole-lifetime main-thread profile includes start-up and registration: the windowed one is shown instead
  if (!p.thread.startsWith("main") && p.summary.busyMs - (p.summary.self.find((x) => x.name.startsWith("atomicsWaitLoop"))?.ms ?? 0) < 2_000) continue; // idle loader threads
  const s = p.summary;
  console.log(`\nprofile of the gateway process, ${p.thread}: busy ${fmt(s.busyMs)} ms of ${fmt(s.wallMs)} ms`);
  console.log(
    table(
      ["self time (top functions)", "ms", "share of busy"],
      s.self.slice(0, p.thread.startsWith("main") ? 20 : 8).map((x) => [x.name.slice(0, 110), fmt(x.ms), pct(x.share)]),
    ),
  );
  console.log(
    table(
      ["self time by area", "ms", "share of busy"],
      s.areas.slice(0, 10).map((x) => [x.name, fmt(x.ms), pct(x.share)]),
    ),
  );
  if (p.thread.startsWith("main"))
    console.log(
      table(
        ["total time (inclusive)", "ms", "share of busy"],
        s.total.slice(0, 40).map((x) => [x.name.slice(0, 110), fmt(x.ms), pct(x.share)]),
      ),
    );
}

if (g.mainAllocs !== null) {
  const a = g.mainAllocs;
  const perS = a.totalBytes / (WARMUP_S + DURATION_S);
  console.log(
    `\nallocations on the gateway's main thread during the load (${WARMUP_S + DURATION_S} s, sampled every 16 KiB): ${fmt(a.totalBytes / 1024 ** 2)} MiB, ${fmt(perS / 1024 ** 2)} MiB/s, ${fmt(perS / Math.max(1, r.acceptedPerS))} bytes per accepted envelope`,
  );
  console.log(
    table(
      ["allocated by (self)", "MiB", "share"],
      a.self.map((x) => [x.name.slice(0, 110), fmt(x.bytes / 1024 ** 2), pct(x.share)]),
    ),
  );
  console.log(
    table(
      ["allocated under (inclusive)", "MiB", "share"],
      a.total.slice(0, 40).map((x) => [x.name.slice(0, 110), fmt(x.bytes / 1024 ** 2), pct(x.share)]),
    ),
  );
  console.log(
    table(
      ["allocated by area", "MiB", "share"],
      a.areas.map((x) => [x.name, fmt(x.bytes / 1024 ** 2), pct(x.share)]),
    ),
  );
}

const round = (x: number, d = 1) => Number(x.toFixed(d));
console.log(
  JSON.stringify({
    revision: REVISION,
    devices: DEVICES,
    client: CLIENT,
    readingsPerEnvelope: READINGS,
    body: BODY,
    envelopeBytes: prepared.envelopeBytesMedian,
    offeredPerS: round(r.offeredPerS),
    acceptedPerS: round(r.acceptedPerS),
    settledPerS: round(r.settledPerS),
    readingsPerS: round(readingsPerS),
    settledPerSWindows: hasWindows
      ? { median: median(r.windows.map((x) => x.settled)), min: min(r.windows.map((x) => x.settled)), max: max(r.windows.map((x) => x.settled)) }
      : null,
    receiptMs: { p50: round(r.receiptMs.p50), p99: round(r.receiptMs.p99) },
    receiptSlots: { p50: round(r.receiptMs.slots.p50, 2), p99: round(r.receiptMs.slots.p99, 2) },
    ackMs: { p50: round(r.ackMs.p50), p99: round(r.ackMs.p99) },
    unsettled: r.unsettled,
    aedesDeliveriesPerS: round(aedes),
    verifyAllCoresPerS: round(vAll),
    verify1CorePerS: round(v1),
    ofAedes: round(r.settledPerS / aedes, 3),
    ofVerifyAllCores: round(r.settledPerS / vAll, 3),
    gatewayCores: round(g.cpu.gatewayCores, 2),
    gatewayMainCores: round(g.cpu.gatewayMainCores, 2),
    loadgenCores: round(g.cpu.loadgenCores, 2),
    otherProcessesCores: round(g.cpu.othersCores, 2),
    threadCores: Object.fromEntries(
      g.threads.processes.map((p) => [
        p.label,
        { cores: round(p.cores, 3), elu: p.elu === null ? null : round(p.elu, 3), ...Object.fromEntries(p.kinds.map((k) => [k.kind, round(k.cores, 3)])) },
      ]),
    ),
    crashed: g.crashed === null ? null : { afterS: round(g.crashed.afterS), error: g.crashed.stack.split("\n")[0] },
    targetMet: met,
    profiled: PROFILE_DIR !== null,
    whatIfMqConcurrency: WHAT_IF_MQ,
    whatIfInFlight: WHAT_IF_IN_FLIGHT,
    whatIfPacking: WHAT_IF_PACKING,
    whatIfNodeFlags: WHAT_IF_NODE_FLAGS,
    whatIfLeadMargin: WHAT_IF_LEAD_MARGIN,
    whatIfNoNodeFirst: WHAT_IF_NO_NODE_FIRST,
  }),
);
