/**
 * A DePIN fleet: 100,000 registered devices, all connected at once, each sending one envelope of 60
 * one-second meter readings a minute (≈ 1,667 envelopes/s), at a 1 s slot, on one gateway or on
 * several sharing Redis.
 *
 *   node --import tsx bench/fleet.ts [--devices 100000] [--minutes 5] [--gateways 6] [--slot-ms 1000] [--per-process 10000]
 *
 * Processes: this one (orchestration); the deployment under test; the devices spread over child
 * processes of at most --per-process each (bench/lib/fleet-client.ts: a light MQTT client per
 * device, bench/lib/raw-mqtt.ts, its envelopes signed with libsodium before anything is timed); and
 * `jamgate device register --from` for the registration. The deployment is
 *
 * - with --gateways 1 (the default): the gateway with its embedded node in one child process
 *   (bench/lib/fleet-one.ts, bench/lib/fleet-server.ts, as `jamgate start` runs them). It holds a
 *   file descriptor per device: where the open-file limit cannot be raised to the fleet (it is
 *   with `prlimit` as root), the run stops and says what `ulimit -n` it needs;
 * - with --gateways K ≥ 2: docs/cluster.md's deployment, every part its own process
 *   (bench/lib/fleet-cluster.ts): a redis-server, `jamgate node start`, and K × `jamgate start --node
 *   ws://… --cluster redis://… --connections-max N`; device g connects straight to gateway g mod K's
 *   MQTT port, so each holds devices/K connections (100,000 on a host limited to 20,000 open files a
 *   process: 6 gateways of 16,667). The fleet is registered through the first gateway's HTTP API.
 *   Every process runs at the same priority; --node-first runs the gateways' threads at nice +5
 *   beside the node's, as `jamgate start` runs its own gateway threads beside its embedded node.
 *
 * In order:
 *
 * 1. Registration: the fleet's public keys as a JSON-lines file, registered by the CLI through
 *    `POST /v1/devices/bulk` (gateway/registration.ts registerMany): time and packages.
 * 2. Restart: the gateways (and in a cluster the node) stop and start again on their data dirs (the
 *    node reopens a state with the whole fleet in it; the gateways' registry caches are cold).
 *    --no-restart keeps them.
 * 3. Connect storm: every device connects at once (--concurrency connects in flight per device
 *    process, a refused or failed one tried again after a second, as devices do after a restart):
 *    time until all are connected, connect latency, failures.
 * 4. Load: each device publishes envelope k at k minutes plus its phase (device g at g/N of the
 *    minute), for --minutes; publish → PUBACK and publish → receipt latency (ms and slots),
 *    envelopes not receipted; RSS (sampled, and its peak) of each gateway process and in total, CPU
 *    per kind of thread from /proc (one gateway: main, node thread, refine threads, the rest;
 *    a cluster: every process, gateways, node and redis-server, by thread kind through
 *    bench/lib/thread-probe.mjs), the device processes' CPU apart, and each block's import time
 *    from the node's own log line.
 *
 * Targets (issue 19): p99 ≤ 3 slots, nothing lost, gateway RSS ≤ 2 GiB (in a cluster: each gateway
 * process, and the total reported beside it). Tables, then one JSON line.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FD_MARGIN } from "../gateway/fd-limit.ts";
import { parseFlags } from "./lib/args.ts";
import type { ProfileSummary } from "./lib/cpuprofile.ts";
import { FleetCluster } from "./lib/fleet-cluster.ts";
import { OneGateway } from "./lib/fleet-one.ts";
import type { FleetSample, FleetTarget, RestartFacts } from "./lib/fleet-target.ts";
import { Child, gitRevision, machineCpuS, openFilesLimit, processCpuS, raiseOpenFilesLimit } from "./lib/proc.ts";
import { fmt, machine, table } from "./lib/stats.ts";
import { coresByKind, type ProcessCores, type ProcessSample, sampleAll, type Watched } from "./lib/threads.ts";

const flags = parseFlags(
  "bench/fleet.ts",
  "A fleet of devices on one gateway or several sharing Redis: registration, a connect storm after a restart, and a minute's envelope from each.",
  {
    devices: { kind: "number", default: 100_000, help: "registered devices, one MQTT connection each" },
    minutes: { kind: "number", default: 5, help: "minutes of load: one envelope per device per minute" },
    gateways: {
      kind: "number",
      default: 1,
      help: "1: one gateway with its embedded node; K ≥ 2: jamgate node start, K × jamgate start --cluster on one redis-server, devices spread evenly",
    },
    "slot-ms": { kind: "number", default: 1_000, help: "the node's slot, ms" },
    "batch-ms": { kind: "number", default: 200, help: "the gateway's batch deadline, ms (jamgate start's)" },
    readings: { kind: "number", default: 60, help: "one-second meter readings per envelope" },
    "per-process": { kind: "number", default: 10_000, help: "devices per device process at most (one fd each)" },
    concurrency: { kind: "number", default: 250, help: "connects in flight per device process during the storm" },
    retries: { kind: "number", default: 5, help: "times a device tries again, a second apart, when its connect fails" },
    keepalive: { kind: "number", default: 300, help: "the devices' MQTT keepalive, s" },
    drain: {
      kind: "number",
      default: 120,
      help: "seconds to wait at most for receipts after the last publish (the wait ends once every receipt is in); one still missing then counts as not receipted",
    },
    "node-first": {
      kind: "boolean",
      help: "a cluster: run the gateway processes' threads at nice +5 beside the node's, as jamgate start runs its own gateway threads beside its embedded node (off by default: on a machine shared with other work it starved the gateways)",
    },
    "no-restart": { kind: "boolean", help: "connect to the gateways that registered the fleet (registry caches warm) instead of restarting them first" },
    profile: {
      kind: "boolean",
      help: "profile the (first) gateway's main thread during the storm and during the load, and print the top functions (node:inspector; a cluster's first gateway runs with --inspect on loopback)",
    },
  },
);
const DEVICES = flags.devices;
const MINUTES = flags.minutes;
const GATEWAYS = flags.gateways;
const SLOT_MS = flags["slot-ms"];
const PER_PROCESS_WANTED = flags["per-process"];
const RESTART = !flags["no-restart"];
const TARGET = { p99Slots: 3, lost: 0, gatewayRssBytes: 2 * 1024 ** 3 } as const;
/** The operator token of the one gateway under test: the CLI registers the fleet with it (a cluster's gateways make their own). */
const FLEET_OPERATOR_TOKEN = "fleet-bench-operator-token";
/** Connections a cluster gateway may hold beyond its share of the fleet (`--connections-max`): a device's retried connect while its old socket closes. */
const CONNECTIONS_SLACK = 1_000;
/** Gateways at most: each is a `jamgate start` process of ~150 MiB before any device, on the same machine. */
const GATEWAYS_MAX = 32;

const usageError = (message: string): never => {
  process.stderr.write(`bench/fleet.ts: ${message}\n`);
  process.exit(2);
};
if (!Number.isInteger(DEVICES) || DEVICES < 1 || DEVICES > 250_000 || !Number.isInteger(MINUTES) || MINUTES < 1 || MINUTES > 60)
  usageError("bounded: 1 to 250,000 devices (the loopback source addresses bench/lib/fleet-devices.ts hands out), 1 to 60 minutes");
if (!Number.isInteger(GATEWAYS) || GATEWAYS < 1 || GATEWAYS > GATEWAYS_MAX) usageError(`--gateways: 1 to ${GATEWAYS_MAX}`);

const progress = (msg: string) => process.stderr.write(`[fleet-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (b: number) => b / 1024 ** 2;
const s1 = (ms: number) => (ms / 1000).toFixed(1);
const r2 = (x: number) => Number(x.toFixed(2));

/** Nearest-rank percentile of an ascending array (bench/lib/stats.ts percentile, without sorting again). */
function rank(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}
function merged(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all.sort();
}

interface Connected {
  ms: number;
  connected: number;
  attempts: number;
  failures: Record<string, number>;
  latencies: Float64Array;
}
interface RunResult {
  devices: number;
  offered: number;
  published: number;
  acked: number;
  receipted: number;
  notConnected: number;
  dropped: number;
  duplicates: number;
  lateMaxMs: number;
  errors: Record<string, number>;
  receiptMs: Float64Array;
  ackMs: Float64Array;
  cpu: { mainS: number; processS: number; wallS: number };
}

const REVISION = gitRevision();
const own = openFilesLimit();
progress(`code ${REVISION}; machine ${JSON.stringify(machine())}; fd limit here: soft ${own.soft}, hard ${own.hard}`);

// A cluster gateway's share of the fleet, its connection cap, and the open files it needs (fd-limit.ts FD_MARGIN beside them).
const perGateway = Math.ceil(DEVICES / GATEWAYS);
const clusterConnectionsMax = perGateway + CONNECTIONS_SLACK;
const clusterFdWanted = clusterConnectionsMax + FD_MARGIN;
if (GATEWAYS > 1 && clusterFdWanted > own.hard && process.getuid?.() !== 0) {
  const fits = own.hard - FD_MARGIN - CONNECTIONS_SLACK;
  usageError(
    `each of ${GATEWAYS} gateways would hold ${fmt(perGateway)} devices and need ${fmt(clusterFdWanted)} open files (its connections, ${fmt(CONNECTIONS_SLACK)} more, and ${fmt(FD_MARGIN)} for the rest of the process), above this host's hard limit ${fmt(own.hard)}: give --gateways ${fits > 0 ? Math.ceil(DEVICES / fits) : "more"} or more`,
  );
}

// Device processes: one fd per device (and ~100 of their own); more than the soft limit allows are raised with prlimit, else fewer per process.
const processes = Math.ceil(DEVICES / PER_PROCESS_WANTED);
const perProcess = Math.ceil(DEVICES / processes);
const CLIENT = new URL("./lib/fleet-client.ts", import.meta.url);
const clients: Child[] = [];
let target: FleetTarget | null = null;
const workDir = mkdtempSync(join(tmpdir(), "jamgate-fleet-bench-"));

/** Runs `jamgate device register --from FILE` (from source) and returns its totals line and its wall time. */
function registerWithCli(file: string, httpUrl: string, token: string): Promise<{ summary: Record<string, unknown>; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [
        new URL("../scripts/jamgate.mjs", import.meta.url).pathname,
        "device",
        "register",
        "--from",
        file,
        "--gateway",
        httpUrl,
        "--token",
        token,
        "--poll-ms",
        "250",
        "--timeout-ms",
        "600000",
      ],
      { env: { ...process.env, JAMGATE_FROM_SOURCE: "1" }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout) => {
        const ms = performance.now() - t0;
        const last = stdout.trim().split("\n").at(-1) ?? "";
        if (error) return reject(new Error(`jamgate device register --from failed: ${error.message}; ${last}`));
        try {
          resolve({ summary: JSON.parse(last) as Record<string, unknown>, ms });
        } catch {
          reject(new Error(`jamgate device register --from printed no totals: ${stdout.slice(-500)}`));
        }
      },
    );
    // Its progress line (a line a second off a terminal) goes on to this process's stderr.
    child.stderr?.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim() !== "") process.stderr.write(`[register] ${line}\n`);
    });
  });
}

/** CPU per process and thread kind of a cluster's processes over a window (empty with one gateway: it reports its own). */
function cpuWindow(watched: readonly Watched[], a: readonly ProcessSample[], b: readonly ProcessSample[]): ProcessCores[] {
  return watched.map((w, i) => coresByKind(w, a[i]!, b[i]!));
}
const coresOfKind = (p: ProcessCores, kind: string) => p.kinds.find((k) => k.kind === kind)?.cores ?? 0;

try {
  // --- devices: keys, tokens and every envelope signed before anything is timed ---------------
  progress(
    `${processes} device processes of ≤ ${fmt(perProcess)} devices; preparing ${fmt(DEVICES)} devices × ${MINUTES} envelopes of ${flags.readings} readings…`,
  );
  const prepStart = performance.now();
  for (let p = 0; p < processes; p++) {
    const child = await Child.start(`devices-${p}`, CLIENT);
    const fd = raiseOpenFilesLimit(child.proc.pid!, Math.max(perProcess + 1_000, own.soft));
    if (fd.soft < perProcess + 200)
      throw new Error(`device process ${p} needs ${perProcess + 200} file descriptors and has ${fd.soft} (${fd.error}): give a smaller --per-process`);
    clients.push(child);
  }
  const prepared = await Promise.all(
    clients.map((c, p) =>
      c.call<{ ms: number; devices: number; envelopes: number; frameBytes: number; publicKeys: string[] }>("prepare", {
        process: p,
        processes,
        fleet: DEVICES,
        envelopes: MINUTES,
        readings: flags.readings,
      }),
    ),
  );
  const prepMs = performance.now() - prepStart;
  const frameBytes = prepared.reduce((s, x) => s + x.frameBytes, 0);
  progress(`prepared in ${s1(prepMs)} s: ${fmt(prepared.reduce((s, x) => s + x.envelopes, 0))} envelopes, ${fmt(MiB(frameBytes))} MiB of frames`);
  const deviceFile = join(workDir, "fleet.jsonl");
  const lines: string[] = new Array(DEVICES);
  for (const [p, x] of prepared.entries())
    for (const [i, publicKey] of x.publicKeys.entries()) lines[p + i * processes] = JSON.stringify({ publicKey, kind: "meter" });
  writeFileSync(deviceFile, `${lines.join("\n")}\n`);

  // --- the deployment ---------------------------------------------------------------------------
  const deployStart = performance.now();
  const one =
    GATEWAYS === 1
      ? await OneGateway.start({ devices: DEVICES, slotMs: SLOT_MS, batchMs: flags["batch-ms"], operatorToken: FLEET_OPERATOR_TOKEN, ownFdSoft: own.soft })
      : null;
  const cluster =
    one === null
      ? await FleetCluster.start({
          gateways: GATEWAYS,
          slotMs: SLOT_MS,
          batchMs: flags["batch-ms"],
          connectionsMax: clusterConnectionsMax,
          fdWanted: clusterFdWanted,
          nodeFirst: flags["node-first"],
          profileFirst: flags.profile,
        })
      : null;
  const deployment: FleetTarget = one ?? cluster!;
  target = deployment;
  progress(
    one !== null
      ? `gateway on MQTT port ${deployment.mqttPorts[0]}, HTTP ${deployment.httpUrl}, fd limit ${deployment.fdLimit}, started in ${s1(performance.now() - deployStart)} s`
      : `cluster: redis-server on ${cluster!.redis.port}, jamgate node start, ${GATEWAYS} × jamgate start --cluster (MQTT ports ${deployment.mqttPorts.join(", ")}; --connections-max ${fmt(clusterConnectionsMax)}; fd limit ${fmt(deployment.fdLimit)}), started in ${s1(performance.now() - deployStart)} s`,
  );
  const watched = () => cluster?.watched() ?? [];

  // --- 1. registration --------------------------------------------------------------------------
  progress(`registering ${fmt(DEVICES)} devices through ${deployment.httpUrl}: jamgate device register --from ${deviceFile} …`);
  const regBefore = await deployment.sample();
  const regCpu0 = sampleAll(watched());
  const regStats0 = one === null ? null : one.lastStats;
  const registration = await registerWithCli(deviceFile, deployment.httpUrl, deployment.operatorToken);
  const regAfter = await deployment.sample();
  const regCpu1 = sampleAll(watched());
  const regStats1 = one === null ? null : one.lastStats;
  const regBlocks = await deployment.blocks(regBefore.at, regAfter.at);
  const regProcesses = cpuWindow(watched(), regCpu0, regCpu1);
  if (registration.summary.registered !== DEVICES)
    throw new Error(`registration: ${String(registration.summary.registered)} of ${DEVICES} registered: ${JSON.stringify(registration.summary)}`);
  progress(`registered in ${s1(registration.ms)} s, ${String(registration.summary.packages)} packages`);

  // --- 2. restart -------------------------------------------------------------------------------
  let restart: RestartFacts | null = null;
  if (RESTART) {
    restart = await deployment.restart();
    progress(`restarted on the data dirs: stop ${s1(restart.stopMs)} s, start ${s1(restart.startMs)} s (node open ${s1(restart.nodeOpenMs)} s)`);
  }
  const ports = deployment.mqttPorts;

  // --- 3. connect storm -------------------------------------------------------------------------
  progress(`connect storm: ${fmt(DEVICES)} devices at once (${flags.concurrency} in flight per process) to ${ports.length} gateway port(s)…`);
  const stormGcBefore = one === null ? null : await one.gc();
  const stormBefore = await deployment.sample();
  const redisBefore = cluster === null ? null : await cluster.redisInfo();
  const stormCpu0 = sampleAll(watched());
  const profiled = one ?? cluster!;
  if (flags.profile) await profiled.profileStart();
  const stormStart = performance.now();
  const storm = await Promise.all(
    clients.map((c) => c.call<Connected>("connect", { ports, keepaliveS: flags.keepalive, concurrency: flags.concurrency, retries: flags.retries })),
  );
  const stormMs = performance.now() - stormStart;
  const stormCpu1 = sampleAll(watched());
  const stormAfter = await deployment.sample();
  const stormProfile = flags.profile ? await profiled.profileStop(12) : null;
  // What the connections hold live: one gateway, memory after full collections against before the storm (read the same way); a cluster, anonymous RSS as it is.
  const stormGcAfter = one === null ? null : await one.gc();
  const stormProcesses = cpuWindow(watched(), stormCpu0, stormCpu1);
  const connected = storm.reduce((s, x) => s + x.connected, 0);
  const attempts = storm.reduce((s, x) => s + x.attempts, 0);
  const stormFailures: Record<string, number> = {};
  for (const x of storm) for (const [k, v] of Object.entries(x.failures)) stormFailures[k] = (stormFailures[k] ?? 0) + v;
  const connectMs = merged(storm.map((x) => x.latencies));
  const anonBefore = stormGcBefore?.anon ?? stormBefore.gateways.reduce((s, g) => s + g.memory.anon, 0);
  const anonAfter = stormGcAfter?.anon ?? stormAfter.gateways.reduce((s, g) => s + g.memory.anon, 0);
  const anonPerDeviceKiB = (anonAfter - anonBefore) / Math.max(1, connected) / 1024;
  const redisAfterStorm = cluster === null ? null : await cluster.redisInfo();
  progress(
    `${fmt(connected)} of ${fmt(DEVICES)} connected in ${s1(stormMs)} s (${fmt(attempts)} attempts); gateways see ${fmt(stormAfter.total.connections)} (${stormAfter.gateways.map((g) => fmt(g.connections)).join(" + ")})`,
  );
  if (connected < DEVICES) progress(`NOT ALL CONNECTED: ${JSON.stringify(stormFailures)}`);

  // --- 4. load ----------------------------------------------------------------------------------
  await sleep(2_000);
  const startAtMs = Date.now() + 3_000;
  const endAtMs = startAtMs + MINUTES * 60_000;
  progress(`load: ${fmt(DEVICES)} devices × ${MINUTES} envelopes, ${fmt(DEVICES / 60)} envelopes/s offered, from ${new Date(startAtMs).toISOString()}…`);
  const runs = Promise.all(clients.map((c) => c.call<RunResult>("run", { startAtMs, fleet: DEVICES, minutes: MINUTES, drainMs: flags.drain * 1000 })));
  await sleep(startAtMs - Date.now());
  const machine0 = machineCpuS();
  const self0 = processCpuS();
  const load0 = await deployment.sample();
  const load0Stats = one?.lastStats ?? null;
  const loadCpu0 = sampleAll(watched());
  if (flags.profile) await profiled.profileStart();
  const samples: FleetSample[] = [];
  const eluSamples: number[] = [];
  while (Date.now() < endAtMs) {
    await sleep(Math.min(5_000, Math.max(0, endAtMs - Date.now())));
    const s = await deployment.sample();
    samples.push(s);
    if (one?.lastStats) eluSamples.push(one.lastStats.eventLoopUtilization);
    progress(
      `t+${s1(Date.now() - startAtMs)} s: accepted ${fmt(s.total.accepted)}, settled ${fmt(s.total.settled)}, pending ${fmt(s.total.pending)}, in flight ${s.total.inFlight}, gateway RSS ${s.gateways.map((g) => fmt(MiB(g.memory.rss))).join(" + ")} MiB${one?.lastStats ? `, main thread ELU ${one.lastStats.eventLoopUtilization.toFixed(2)}` : ""}`,
    );
  }
  const loadCpu1 = sampleAll(watched());
  const load1 = samples.at(-1) ?? (await deployment.sample());
  const load1Stats = one?.lastStats ?? null;
  const loadProfile = flags.profile ? await profiled.profileStop(12) : null;
  const machine1 = machineCpuS();
  const self1 = processCpuS();
  const loadProcesses = cpuWindow(watched(), loadCpu0, loadCpu1);
  const results = await runs;
  const afterDrain = await deployment.sample();
  const redisAfterLoad = cluster === null ? null : await cluster.redisInfo();
  const deviceRss = (await Promise.all(clients.map((c) => c.call<{ rss: number }>("stats")))).reduce((sum, x) => sum + x.rss, 0);
  const loadBlocks = await deployment.blocks(load0.at, load1.at);
  const warnings = deployment.warnings();

  // --- results ----------------------------------------------------------------------------------
  const sum = (f: (r: RunResult) => number) => results.reduce((s, r) => s + f(r), 0);
  const offered = sum((r) => r.offered);
  const published = sum((r) => r.published);
  const acked = sum((r) => r.acked);
  const receipted = sum((r) => r.receipted);
  const notConnected = sum((r) => r.notConnected);
  const dropped = sum((r) => r.dropped);
  const duplicates = sum((r) => r.duplicates);
  const lost = offered - receipted;
  const deviceErrors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) deviceErrors[k] = (deviceErrors[k] ?? 0) + v;
  const receiptMs = merged(results.map((r) => r.receiptMs));
  // Sorted with the envelopes never receipted (Infinity) last: those that were, alone, tell how late settlement ran.
  const firstMissing = receiptMs.findIndex((x) => !Number.isFinite(x));
  const receiptedMs = firstMissing === -1 ? receiptMs : receiptMs.subarray(0, firstMissing);
  const ackMs = merged(results.map((r) => r.ackMs));
  const p = (xs: Float64Array, q: number) => rank(xs, q);
  const loadS = (load1.at - load0.at) / 1000;
  const devicesCores = sum((r) => r.cpu.processS) / Math.max(1, results[0]?.cpu.wallS ?? 1);
  const machineCores = (machine1.busy - machine0.busy) / ((machine1.total - machine0.total) / machine().cpus);
  const selfCores = (self1 - self0) / loadS;
  // One gateway: its process from its own stats; a cluster: every process watched (gateways, node, redis-server).
  const cores = (a: number, b: number) => (b - a) / loadS;
  const oneCpu =
    load0Stats === null || load1Stats === null
      ? null
      : {
          main: cores(load0Stats.cpu.main, load1Stats.cpu.main),
          node: cores(load0Stats.cpu.node, load1Stats.cpu.node),
          refine: cores(load0Stats.cpu.refine, load1Stats.cpu.refine),
          other: cores(load0Stats.cpu.other, load1Stats.cpu.other),
          process: cores(load0Stats.cpu.process, load1Stats.cpu.process),
        };
  const deploymentCores = oneCpu?.process ?? loadProcesses.reduce((s, x) => s + x.cores, 0);
  const othersCores = Math.max(0, machineCores - deploymentCores - devicesCores - selfCores);
  const imports = loadBlocks.map((b) => b.importMs).sort((a, b) => a - b);
  const regImports = regBlocks.map((b) => b.importMs).sort((a, b) => a - b);
  // RSS: each gateway's peak sampled through the load and its VmHWM; the total's peak sampled (the sum at one time) and the sum of the VmHWMs (an upper bound).
  const allLoadSamples = [load0, ...samples];
  const gatewayRows = afterDrain.gateways.map((g, i) => ({
    label: g.label,
    start: load0.gateways[i]!.memory.rss,
    peakSampled: Math.max(...allLoadSamples.map((s) => s.gateways[i]!.memory.rss)),
    end: load1.gateways[i]!.memory.rss,
    vmHwm: g.memory.peak,
    anonEnd: load1.gateways[i]!.memory.anon,
    connections: stormAfter.gateways[i]!.connections,
    openFiles: stormAfter.gateways[i]!.openFiles,
    accepted: afterDrain.gateways[i]!.accepted,
  }));
  const totalRssPeakSampled = Math.max(...allLoadSamples.map((s) => s.gatewaysRss));
  const totalVmHwm = gatewayRows.reduce((s, g) => s + g.vmHwm, 0);
  const maxGatewayVmHwm = Math.max(...gatewayRows.map((g) => g.vmHwm));
  const nodePeak = afterDrain.node === null ? null : Math.max(...allLoadSamples.map((s) => s.node?.rss ?? 0));
  const redisPeak = afterDrain.redis === null ? null : Math.max(...allLoadSamples.map((s) => s.redis?.rss ?? 0));

  console.log(
    `\nfleet (code ${REVISION}): ${fmt(DEVICES)} devices, ${MINUTES} min at one envelope of ${flags.readings} readings per device per minute (${fmt(DEVICES / 60)}/s), ${SLOT_MS} ms slots; ${
      one !== null
        ? "one gateway with its embedded node"
        : `${GATEWAYS} gateways (jamgate start --cluster, ~${fmt(perGateway)} devices each, --connections-max ${fmt(clusterConnectionsMax)}${flags["node-first"] ? ", at nice +5 beside the node" : ""}) on one redis-server, jamgate node start`
    }; ${processes} device processes\n`,
  );
  const regS = (regAfter.at - regBefore.at) / 1000;
  console.log(
    table(
      ["registration (jamgate device register --from, POST /v1/devices/bulk)", "value"],
      [
        [
          "devices registered / already / failed",
          `${fmt(Number(registration.summary.registered))} / ${fmt(Number(registration.summary.alreadyRegistered))} / ${fmt(Number(registration.summary.failed))}`,
        ],
        ["packages", String(registration.summary.packages)],
        ["wall time, CLI start to its totals", `${s1(registration.ms)} s (${fmt(DEVICES / (registration.ms / 1000))} devices/s)`],
        [
          "blocks meanwhile / import p50 / max (ms)",
          `${regBlocks.length} / ${fmt(p(Float64Array.from(regImports), 50))} / ${fmt(regImports.at(-1) ?? Number.NaN)}`,
        ],
        ...(regStats0 !== null && regStats1 !== null
          ? [
              [
                "gateway CPU meanwhile (cores): main / process",
                `${((regStats1.cpu.main - regStats0.cpu.main) / regS).toFixed(2)} / ${((regStats1.cpu.process - regStats0.cpu.process) / regS).toFixed(2)}`,
              ],
            ]
          : regProcesses.map((x) => [`CPU meanwhile (cores): ${x.label}`, `${x.cores.toFixed(2)} (main thread ${coresOfKind(x, "main thread").toFixed(2)})`])),
      ],
    ),
  );
  console.log();
  console.log(
    table(
      [RESTART ? "restart, then connect storm (registry caches cold)" : "connect storm (no restart: registry caches warm)", "value"],
      [
        ...(restart === null
          ? []
          : [
              [
                one !== null ? "gateway stop / start on its data dir (node open)" : "gateways and node stop / start on their data dirs (node open)",
                `${s1(restart.stopMs)} s / ${s1(restart.startMs)} s (${s1(restart.nodeOpenMs)} s)`,
              ],
            ]),
        [
          "connected / devices",
          `${fmt(connected)} / ${fmt(DEVICES)} (gateways' gauges ${stormAfter.gateways.map((g) => fmt(g.connections)).join(" + ")} = ${fmt(stormAfter.total.connections)})`,
        ],
        ["storm wall time", `${s1(stormMs)} s (${fmt(connected / (stormMs / 1000))} connects/s)`],
        ["connect + subscribe latency p50 / p99 / max (ms)", `${fmt(p(connectMs, 50))} / ${fmt(p(connectMs, 99))} / ${fmt(connectMs.at(-1) ?? Number.NaN)}`],
        ["attempts (retries after a failure)", `${fmt(attempts)} (${fmt(attempts - connected)})`],
        ["failed attempts by reason", Object.keys(stormFailures).length === 0 ? "none" : JSON.stringify(stormFailures)],
        ["gateway RSS before / after (MiB, all gateways)", `${fmt(MiB(stormBefore.gatewaysRss))} / ${fmt(MiB(stormAfter.gatewaysRss))}`],
        [
          one !== null
            ? "after full GCs: gateway anonymous RSS before / after (MiB); per connected device (KiB)"
            : "gateways' anonymous RSS before / after, no forced GC (MiB); per connected device (KiB)",
          `${fmt(MiB(anonBefore))} / ${fmt(MiB(anonAfter))}; ${anonPerDeviceKiB.toFixed(1)}`,
        ],
        [
          "gateway open files before / after (limit)",
          `${stormBefore.gateways.map((g) => fmt(g.openFiles)).join(" + ")} / ${stormAfter.gateways.map((g) => fmt(g.openFiles)).join(" + ")} (${fmt(deployment.fdLimit)} each)`,
        ],
        ...stormProcesses.map((x) => [
          `CPU during the storm (cores): ${x.label}`,
          `${x.cores.toFixed(2)} (main thread ${coresOfKind(x, "main thread").toFixed(2)}${x.elu === null ? "" : `, ELU ${x.elu.toFixed(2)}`})`,
        ]),
        ...(redisBefore === null || redisAfterStorm === null
          ? []
          : [
              [
                "Redis used_memory before / after (MiB); keys; pub/sub channels; clients",
                `${fmt(MiB(redisBefore.usedMemory))} / ${fmt(MiB(redisAfterStorm.usedMemory))}; ${fmt(redisAfterStorm.keys)}; ${fmt(redisAfterStorm.channels)}; ${redisAfterStorm.clients}`,
              ],
            ]),
      ],
    ),
  );
  console.log();
  console.log(
    table(
      ["load", "value"],
      [
        ["envelopes offered / published / PUBACKed / receipted", `${fmt(offered)} / ${fmt(published)} / ${fmt(acked)} / ${fmt(receipted)}`],
        ["not receipted (not connected when due / dropped connections)", `${fmt(lost)} (${fmt(notConnected)} / ${fmt(dropped)})`],
        ["refusals on devices' error topics", Object.keys(deviceErrors).length === 0 ? "none" : JSON.stringify(deviceErrors)],
        ["duplicate receipts", fmt(duplicates)],
        ["publish → receipt p50 / p99 / max (ms)", `${fmt(p(receiptMs, 50))} / ${fmt(p(receiptMs, 99))} / ${fmt(receiptMs.at(-1) ?? Number.NaN)}`],
        ["publish → receipt p50 / p99 (slots)", `${(p(receiptMs, 50) / SLOT_MS).toFixed(2)} / ${(p(receiptMs, 99) / SLOT_MS).toFixed(2)}`],
        [
          "of the receipted only: publish → receipt p50 / p99 / max (slots)",
          `${(p(receiptedMs, 50) / SLOT_MS).toFixed(2)} / ${(p(receiptedMs, 99) / SLOT_MS).toFixed(2)} / ${((receiptedMs.at(-1) ?? Number.NaN) / SLOT_MS).toFixed(2)}`,
        ],
        ["publish → PUBACK p50 / p99 (ms)", `${fmt(p(ackMs, 50), 1)} / ${fmt(p(ackMs, 99), 1)}`],
        ["gateway packages settled / failed (whole run, all gateways)", `${fmt(afterDrain.total.packages)} / ${fmt(afterDrain.total.packagesFailed)}`],
        ["latest publish behind schedule (ms, device side)", fmt(Math.max(...results.map((r) => r.lateMaxMs)))],
      ],
    ),
  );
  console.log();
  const loadRows: string[][] =
    oneCpu !== null && load0Stats !== null && load1Stats !== null
      ? [
          [
            "gateway process RSS: start / peak sampled / end (MiB)",
            `${fmt(MiB(gatewayRows[0]!.start))} / ${fmt(MiB(gatewayRows[0]!.peakSampled))} / ${fmt(MiB(gatewayRows[0]!.end))}`,
          ],
          ["gateway process VmHWM (peak since start, MiB) / anonymous at end", `${fmt(MiB(gatewayRows[0]!.vmHwm))} / ${fmt(MiB(gatewayRows[0]!.anonEnd))}`],
          ["gateway registry cache (devices)", fmt(load1Stats.gateway.registryCached)],
          [
            "CPU, cores: gateway main thread (MQTT, acceptance, packing)",
            `${oneCpu.main.toFixed(2)} (ELU ${(eluSamples.reduce((s, x) => s + x, 0) / Math.max(1, eluSamples.length)).toFixed(2)})`,
          ],
          ["CPU, cores: node thread (intake, blocks, import)", oneCpu.node.toFixed(2)],
          [`CPU, cores: refine threads (${load1Stats.cpu.refineThreads})`, oneCpu.refine.toFixed(2)],
          ["CPU, cores: other threads of the gateway process (GC, libuv, LMDB)", oneCpu.other.toFixed(2)],
          ["CPU, cores: gateway process", oneCpu.process.toFixed(2)],
        ]
      : [
          ...gatewayRows.map((g) => [
            `${g.label} (${fmt(g.connections)} devices, ${fmt(g.accepted)} accepted): RSS start / peak sampled / end / VmHWM (MiB)`,
            `${fmt(MiB(g.start))} / ${fmt(MiB(g.peakSampled))} / ${fmt(MiB(g.end))} / ${fmt(MiB(g.vmHwm))}`,
          ]),
          [
            "gateways in total: RSS start / peak sampled / end (MiB); VmHWMs added",
            `${fmt(MiB(load0.gatewaysRss))} / ${fmt(MiB(totalRssPeakSampled))} / ${fmt(MiB(load1.gatewaysRss))}; ${fmt(MiB(totalVmHwm))}`,
          ],
          ["node process RSS: peak sampled / VmHWM (MiB)", `${fmt(MiB(nodePeak ?? Number.NaN))} / ${fmt(MiB(afterDrain.node?.peak ?? Number.NaN))}`],
          [
            "redis-server RSS: peak sampled / VmHWM (MiB); used_memory at end (MiB); keys",
            `${fmt(MiB(redisPeak ?? Number.NaN))} / ${fmt(MiB(afterDrain.redis?.peak ?? Number.NaN))}; ${fmt(MiB(redisAfterLoad?.usedMemory ?? Number.NaN))}; ${fmt(redisAfterLoad?.keys ?? Number.NaN)}`,
          ],
          ...loadProcesses.map((x) => [
            `CPU, cores: ${x.label}${x.elu === null ? "" : ` (main thread ELU ${x.elu.toFixed(2)})`}`,
            `${x.cores.toFixed(2)}: ${x.kinds
              .filter((k) => k.cores >= 0.005)
              .map((k) => `${k.kind} ${k.cores.toFixed(2)}`)
              .join(", ")}`,
          ]),
          [
            "CPU, cores: gateways in total",
            loadProcesses
              .filter((x) => x.label.startsWith("gateway"))
              .reduce((s, x) => s + x.cores, 0)
              .toFixed(2),
          ],
        ];
  console.log(
    table(
      [`during the load (${s1(loadS * 1000)} s)`, "value"],
      [
        ...loadRows,
        [`CPU, cores: device processes (${processes})`, devicesCores.toFixed(2)],
        ["device processes' RSS, total (MiB)", fmt(MiB(deviceRss))],
        ["CPU, cores: this process / everything else on the machine", `${selfCores.toFixed(2)} / ${othersCores.toFixed(2)}`],
        ["machine busy (cores)", `${machineCores.toFixed(2)} of ${machine().cpus}`],
        [
          "blocks / import p50 / p99 / max (ms)",
          `${loadBlocks.length} / ${fmt(p(Float64Array.from(imports), 50))} / ${fmt(p(Float64Array.from(imports), 99))} / ${fmt(imports.at(-1) ?? Number.NaN)}`,
        ],
        ["warnings logged (first ones on stderr)", fmt(warnings.count)],
      ],
    ),
  );
  for (const [what, profile] of [
    ["storm", stormProfile],
    ["load", loadProfile],
  ] as const) {
    if (profile === null) continue;
    const prof: ProfileSummary = profile;
    console.log(`\n${one === null ? "gateway 1's" : "the gateway's"} main thread during the ${what}: busy ${fmt(prof.busyMs)} ms of ${fmt(prof.wallMs)} ms`);
    console.log(
      table(
        ["self time (top functions)", "ms", "share of busy"],
        prof.self.slice(0, 12).map((x) => [x.name.slice(0, 100), fmt(x.ms), `${(x.share * 100).toFixed(1)}%`]),
      ),
    );
    console.log(
      table(
        ["self time by area", "ms", "share of busy"],
        prof.areas.slice(0, 8).map((x) => [x.name.slice(0, 100), fmt(x.ms), `${(x.share * 100).toFixed(1)}%`]),
      ),
    );
  }
  const p99Slots = p(receiptMs, 99) / SLOT_MS;
  const met = {
    p99: p99Slots <= TARGET.p99Slots,
    nothingLost: lost === TARGET.lost && connected === DEVICES,
    rss: maxGatewayVmHwm <= TARGET.gatewayRssBytes,
  };
  console.log(
    `\ntargets: p99 ≤ ${TARGET.p99Slots} slots: ${met.p99 ? "MET" : "MISSED"} (${p99Slots.toFixed(2)}); nothing lost: ${met.nothingLost ? "MET" : "MISSED"} (${fmt(lost)} not receipted, ${fmt(DEVICES - connected)} not connected); gateway RSS ≤ 2 GiB${GATEWAYS > 1 ? " per gateway process" : ""}: ${met.rss ? "MET" : "MISSED"} (peak ${fmt(MiB(maxGatewayVmHwm))} MiB${GATEWAYS > 1 ? `; ${GATEWAYS} gateways' VmHWMs added ${fmt(MiB(totalVmHwm))} MiB, their RSS together at most ${fmt(MiB(totalRssPeakSampled))} MiB sampled` : ""})`,
  );
  console.log(
    JSON.stringify({
      revision: REVISION,
      devices: DEVICES,
      minutes: MINUTES,
      slotMs: SLOT_MS,
      gateways: GATEWAYS,
      deviceProcesses: processes,
      registration: { seconds: r2(registration.ms / 1000), packages: registration.summary.packages, registered: registration.summary.registered },
      restart: restart === null ? null : { stopS: r2(restart.stopMs / 1000), startS: r2(restart.startMs / 1000), nodeOpenS: r2(restart.nodeOpenMs / 1000) },
      storm: {
        seconds: r2(stormMs / 1000),
        connected,
        attempts,
        p50Ms: r2(p(connectMs, 50)),
        p99Ms: r2(p(connectMs, 99)),
        perGateway: stormAfter.gateways.map((g) => g.connections),
        anonRssPerDeviceKiB: r2(anonPerDeviceKiB),
        anonRssAfterGc: one !== null,
      },
      load: {
        offered,
        published,
        acked,
        receipted,
        notReceipted: lost,
        receiptP50Slots: r2(p(receiptMs, 50) / SLOT_MS),
        receiptP99Slots: r2(p99Slots),
        receiptedOnlyP50Slots: r2(p(receiptedMs, 50) / SLOT_MS),
        receiptedOnlyP99Slots: r2(p(receiptedMs, 99) / SLOT_MS),
        ackP99Ms: r2(p(ackMs, 99)),
        errors: deviceErrors,
      },
      gatewayRssMiB: {
        perGateway: gatewayRows.map((g) => ({ start: r2(MiB(g.start)), peakSampled: r2(MiB(g.peakSampled)), vmHwm: r2(MiB(g.vmHwm)) })),
        totalPeakSampled: r2(MiB(totalRssPeakSampled)),
        totalVmHwm: r2(MiB(totalVmHwm)),
      },
      nodeRssMiB: afterDrain.node === null ? null : { peakSampled: r2(MiB(nodePeak ?? Number.NaN)), vmHwm: r2(MiB(afterDrain.node.peak)) },
      redis:
        afterDrain.redis === null || redisAfterLoad === null
          ? null
          : {
              rssPeakSampledMiB: r2(MiB(redisPeak ?? Number.NaN)),
              vmHwmMiB: r2(MiB(afterDrain.redis.peak)),
              usedMemoryMiB: r2(MiB(redisAfterLoad.usedMemory)),
              keys: redisAfterLoad.keys,
            },
      deviceProcessesRssMiB: r2(MiB(deviceRss)),
      cpuCores: {
        ...(oneCpu === null
          ? Object.fromEntries(
              loadProcesses.map((x) => [x.label, { total: r2(x.cores), main: r2(coresOfKind(x, "main thread")), elu: x.elu === null ? null : r2(x.elu) }]),
            )
          : Object.fromEntries(Object.entries(oneCpu).map(([k, v]) => [k, r2(v)]))),
        deployment: r2(deploymentCores),
        devices: r2(devicesCores),
        machine: r2(machineCores),
        others: r2(othersCores),
      },
      blocks: {
        n: loadBlocks.length,
        importP50Ms: p(Float64Array.from(imports), 50),
        importP99Ms: p(Float64Array.from(imports), 99),
        importMaxMs: imports.at(-1) ?? null,
      },
      warnings: warnings.count,
      targetsMet: met,
    }),
  );
} finally {
  await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
  await target?.stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
