/**
 * A DePIN fleet on one gateway: 100,000 registered devices, all connected at once, each sending one
 * envelope of 60 one-second meter readings a minute (≈ 1,667 envelopes/s), at a 1 s slot.
 *
 *   node --import tsx bench/fleet.ts [--devices 100000] [--minutes 5] [--slot-ms 1000] [--per-process 10000]
 *
 * Processes: this one (orchestration), the gateway with its embedded node (bench/lib/fleet-server.ts,
 * as `jamgate start` runs them), the devices spread over child processes of at most --per-process
 * each (bench/lib/fleet-client.ts: a light MQTT client per device, bench/lib/raw-mqtt.ts, its
 * envelopes signed with libsodium before anything is timed), and `jamgate device register --from`
 * for the registration. In order:
 *
 * 1. Registration: the fleet's public keys as a JSON-lines file, registered by the CLI through
 *    `POST /v1/devices/bulk` (gateway/registration.ts registerMany): time and packages.
 * 2. Restart: the gateway process stops and starts again on its data dir (the node reopens a state
 *    with the whole fleet in it; the gateway's registry cache is cold). --no-restart keeps it.
 * 3. Connect storm: every device connects at once (--concurrency connects in flight per device
 *    process, a refused or failed one tried again after a second, as devices do after a restart):
 *    time until all are connected, connect latency, failures.
 * 4. Load: each device publishes envelope k at k minutes plus its phase (device g at g/N of the
 *    minute), for --minutes; publish → PUBACK and publish → receipt latency (ms and slots),
 *    envelopes not receipted; gateway process RSS (sampled, and its peak), CPU per kind of thread
 *    (main, node thread, refine threads, the rest: V8's, libuv's, LMDB's) from /proc, the device
 *    processes' CPU apart, and each block's import time from the node's own log line.
 *
 * Targets (issue 19): p99 ≤ 3 slots, nothing lost, gateway RSS ≤ 2 GiB. Tables, then one JSON line.
 * The gateway process needs a file descriptor per device and the device processes one per device
 * of theirs: each is raised with `prlimit` where this process may (root), else the run stops and
 * says what `ulimit -n` it needs.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFlags } from "./lib/args.ts";
// Types only: the module is the gateway process's, and runs its IPC server when loaded.
import type { BlockLine, ThreadCpu } from "./lib/fleet-server.ts";
import type { ProfileSummary } from "./lib/cpuprofile.ts";
import { Child, gitRevision, machineCpuS, openFilesLimit, processCpuS, raiseOpenFilesLimit } from "./lib/proc.ts";
import { fmt, machine, table } from "./lib/stats.ts";

const flags = parseFlags(
  "bench/fleet.ts",
  "A fleet of devices on one gateway: registration, a connect storm after a restart, and a minute's envelope from each.",
  {
    devices: { kind: "number", default: 100_000, help: "registered devices, one MQTT connection each" },
    minutes: { kind: "number", default: 5, help: "minutes of load: one envelope per device per minute" },
    "slot-ms": { kind: "number", default: 1_000, help: "the node's slot, ms" },
    "batch-ms": { kind: "number", default: 200, help: "the gateway's batch deadline, ms (jamgate start's)" },
    readings: { kind: "number", default: 60, help: "one-second meter readings per envelope" },
    "per-process": { kind: "number", default: 10_000, help: "devices per device process at most (one fd each)" },
    concurrency: { kind: "number", default: 250, help: "connects in flight per device process during the storm" },
    retries: { kind: "number", default: 5, help: "times a device tries again, a second apart, when its connect fails" },
    keepalive: { kind: "number", default: 300, help: "the devices' MQTT keepalive, s" },
    drain: { kind: "number", default: 30, help: "seconds to wait for receipts after the last publish" },
    "no-restart": { kind: "boolean", help: "connect to the gateway that registered the fleet (registry cache warm) instead of restarting it first" },
    profile: { kind: "boolean", help: "profile the gateway's main thread during the storm and during the load, and print the top functions (node:inspector)" },
  },
);
const DEVICES = flags.devices;
const MINUTES = flags.minutes;
const SLOT_MS = flags["slot-ms"];
const PER_PROCESS_WANTED = flags["per-process"];
const RESTART = !flags["no-restart"];
const TARGET = { p99Slots: 3, lost: 0, gatewayRssBytes: 2 * 1024 ** 3 } as const;
/** The operator token of the gateway under test: the CLI registers the fleet with it. */
const FLEET_OPERATOR_TOKEN = "fleet-bench-operator-token";

if (!Number.isInteger(DEVICES) || DEVICES < 1 || DEVICES > 250_000 || !Number.isInteger(MINUTES) || MINUTES < 1 || MINUTES > 60)
  throw new Error("bounded: 1 to 250,000 devices (the loopback source addresses bench/lib/fleet-devices.ts hands out), 1 to 60 minutes");

const progress = (msg: string) => process.stderr.write(`[fleet-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (b: number) => b / 1024 ** 2;
const s1 = (ms: number) => (ms / 1000).toFixed(1);

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

interface ServerStats {
  at: number;
  memory: { rss: number; peak: number; anon: number; heapUsed: number; external: number };
  cpu: ThreadCpu;
  eventLoopUtilization: number;
  openFiles: number;
  gateway: {
    accepted: number;
    settled: number;
    packages: number;
    packagesFailed: number;
    connections: number;
    pending: number;
    inFlight: number;
    registryCached: number;
    registrationsInFlight: number;
    bestSlot: number;
  };
  warningCount: number;
  warnings: string[];
  errors: Record<string, number>;
}
interface Started {
  port: number;
  httpUrl: string;
  dataDir: string;
  startMs: number;
  nodeOpenMs: number;
  bestSlot: number;
  threadIds: number[];
  fdLimit: { soft: number; hard: number };
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

// Device processes: one fd per device (and ~100 of their own); more than the soft limit allows are raised with prlimit, else fewer per process.
const processes = Math.ceil(DEVICES / PER_PROCESS_WANTED);
const perProcess = Math.ceil(DEVICES / processes);
const SERVER = new URL("./lib/fleet-server.ts", import.meta.url);
const CLIENT = new URL("./lib/fleet-client.ts", import.meta.url);
const clients: Child[] = [];
let server: Child | null = null;
/** The gateway's data dir, removed at the end whatever happened. */
let gatewayDataDir: string | null = null;
const workDir = mkdtempSync(join(tmpdir(), "jamgate-fleet-bench-"));

/** The gateway process, its fd limit raised to the fleet's connections and 1,000 more (LMDB, HTTP, the node's files, IPC: ~100 in use before any device connects). */
async function startServer(dataDir: string | null): Promise<{ child: Child; started: Started; fd: { soft: number; hard: number; error: string | null } }> {
  const child = await Child.start("gateway", SERVER, ["--expose-gc"]);
  const want = DEVICES + 1_000;
  const fd = raiseOpenFilesLimit(child.proc.pid!, Math.max(want, own.soft));
  if (fd.soft < want)
    throw new Error(
      `the gateway process needs ${want} file descriptors (one per device and 1,000 more) and has ${fd.soft} (${fd.error ?? "prlimit"}): run as root with CAP_SYS_RESOURCE, or raise \`ulimit -n\` (soft and hard) to ${want} before starting the benchmark`,
    );
  const started = await child.call<Started>("start", {
    slotMs: SLOT_MS,
    operatorToken: FLEET_OPERATOR_TOKEN,
    batchMs: flags["batch-ms"],
    connectionsMax: DEVICES + 1_000,
    ...(dataDir === null ? {} : { dataDir }),
  });
  gatewayDataDir = started.dataDir;
  return { child, started, fd };
}

/** Runs `jamgate device register --from FILE` (from source) and returns its totals line and its wall time. */
function registerWithCli(file: string, httpUrl: string): Promise<{ summary: Record<string, unknown>; ms: number }> {
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
        FLEET_OPERATOR_TOKEN,
        "--poll-ms",
        "250",
        "--timeout-ms",
        "300000",
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

  // --- 1. registration --------------------------------------------------------------------------
  let gatewayServer = await startServer(null);
  server = gatewayServer.child;
  progress(
    `gateway on MQTT port ${gatewayServer.started.port}, HTTP ${gatewayServer.started.httpUrl}, fd limit ${gatewayServer.fd.soft}, started in ${s1(gatewayServer.started.startMs)} s`,
  );
  progress(`registering ${fmt(DEVICES)} devices: jamgate device register --from ${deviceFile} …`);
  const regBefore = await server.call<ServerStats>("stats");
  const registration = await registerWithCli(deviceFile, gatewayServer.started.httpUrl);
  const regAfter = await server.call<ServerStats>("stats");
  const regBlocks = await server.call<BlockLine[]>("blocks", { fromAt: regBefore.at });
  if (registration.summary.registered !== DEVICES)
    throw new Error(`registration: ${String(registration.summary.registered)} of ${DEVICES} registered: ${JSON.stringify(registration.summary)}`);
  progress(`registered in ${s1(registration.ms)} s, ${String(registration.summary.packages)} packages`);

  // --- 2. restart -------------------------------------------------------------------------------
  let restart: { stopMs: number; startMs: number; nodeOpenMs: number } | null = null;
  if (RESTART) {
    const dataDir = gatewayServer.started.dataDir;
    const stopped = await server.call<{ ms: number }>("stop", { keep: true });
    await server.stop();
    const t0 = performance.now();
    gatewayServer = await startServer(dataDir);
    server = gatewayServer.child;
    restart = { stopMs: stopped.ms, startMs: performance.now() - t0, nodeOpenMs: gatewayServer.started.nodeOpenMs };
    progress(`restarted on its data dir: stop ${s1(stopped.ms)} s, start ${s1(restart.startMs)} s (node open ${s1(restart.nodeOpenMs)} s)`);
  }
  const port = gatewayServer.started.port;

  // --- 3. connect storm -------------------------------------------------------------------------
  progress(`connect storm: ${fmt(DEVICES)} devices at once (${flags.concurrency} in flight per process)…`);
  const stormGcBefore = await server.call<{ rss: number; anon: number }>("gc");
  const stormBefore = await server.call<ServerStats>("stats");
  if (flags.profile) await server.call("profile-start");
  const stormStart = performance.now();
  const storm = await Promise.all(
    clients.map((c) => c.call<Connected>("connect", { port, keepaliveS: flags.keepalive, concurrency: flags.concurrency, retries: flags.retries })),
  );
  const stormMs = performance.now() - stormStart;
  const stormAfter = await server.call<ServerStats>("stats");
  const stormProfile = flags.profile ? await server.call<ProfileSummary>("profile-stop", { top: 12 }) : null;
  // What the connections hold live: memory after full collections, against before the storm (read the same way).
  const storm0Gc = stormGcBefore;
  const storm1Gc = await server.call<{ rss: number; anon: number }>("gc");
  const connected = storm.reduce((s, x) => s + x.connected, 0);
  const attempts = storm.reduce((s, x) => s + x.attempts, 0);
  const stormFailures: Record<string, number> = {};
  for (const x of storm) for (const [k, v] of Object.entries(x.failures)) stormFailures[k] = (stormFailures[k] ?? 0) + v;
  const connectMs = merged(storm.map((x) => x.latencies));
  progress(
    `${fmt(connected)} of ${fmt(DEVICES)} connected in ${s1(stormMs)} s (${fmt(attempts)} attempts); gateway sees ${fmt(stormAfter.gateway.connections)}`,
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
  const load0 = await server.call<ServerStats>("stats");
  if (flags.profile) await server.call("profile-start");
  const samples: ServerStats[] = [];
  while (Date.now() < endAtMs) {
    await sleep(Math.min(5_000, Math.max(0, endAtMs - Date.now())));
    const s = await server.call<ServerStats>("stats");
    samples.push(s);
    progress(
      `t+${s1(Date.now() - startAtMs)} s: accepted ${fmt(s.gateway.accepted)}, settled ${fmt(s.gateway.settled)}, pending ${fmt(s.gateway.pending)}, in flight ${s.gateway.inFlight}, RSS ${fmt(MiB(s.memory.rss))} MiB, main thread ELU ${s.eventLoopUtilization.toFixed(2)}`,
    );
  }
  const load1 = samples.at(-1) ?? (await server.call<ServerStats>("stats"));
  const loadProfile = flags.profile ? await server.call<ProfileSummary>("profile-stop", { top: 12 }) : null;
  const machine1 = machineCpuS();
  const self1 = processCpuS();
  const results = await runs;
  const afterDrain = await server.call<ServerStats>("stats");
  const deviceRss = (await Promise.all(clients.map((c) => c.call<{ rss: number }>("stats")))).reduce((sum, x) => sum + x.rss, 0);
  const loadBlocks = (await server.call<BlockLine[]>("blocks", { fromAt: load0.at })).filter((b) => b.at <= load1.at);

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
  const ackMs = merged(results.map((r) => r.ackMs));
  const p = (xs: Float64Array, q: number) => rank(xs, q);
  const loadS = (load1.at - load0.at) / 1000;
  const cores = (a: number, b: number) => (b - a) / loadS;
  const cpu = {
    main: cores(load0.cpu.main, load1.cpu.main),
    node: cores(load0.cpu.node, load1.cpu.node),
    refine: cores(load0.cpu.refine, load1.cpu.refine),
    other: cores(load0.cpu.other, load1.cpu.other),
    process: cores(load0.cpu.process, load1.cpu.process),
  };
  const devicesCores = sum((r) => r.cpu.processS) / Math.max(1, results[0]?.cpu.wallS ?? 1);
  const machineCores = (machine1.busy - machine0.busy) / ((machine1.total - machine0.total) / machine().cpus);
  const selfCores = (self1 - self0) / loadS;
  const othersCores = Math.max(0, machineCores - cpu.process - devicesCores - selfCores);
  const rssPeakLoad = Math.max(load0.memory.rss, ...samples.map((s) => s.memory.rss));
  const imports = loadBlocks.map((b) => b.importMs).sort((a, b) => a - b);
  const regImports = regBlocks.map((b) => b.importMs).sort((a, b) => a - b);

  console.log(
    `\nfleet (code ${REVISION}): ${fmt(DEVICES)} devices, ${MINUTES} min at one envelope of ${flags.readings} readings per device per minute (${fmt(DEVICES / 60)}/s), ${SLOT_MS} ms slots; ${processes} device processes\n`,
  );
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
        [
          "gateway CPU meanwhile (cores): main / process",
          `${((regAfter.cpu.main - regBefore.cpu.main) / ((regAfter.at - regBefore.at) / 1000)).toFixed(2)} / ${((regAfter.cpu.process - regBefore.cpu.process) / ((regAfter.at - regBefore.at) / 1000)).toFixed(2)}`,
        ],
      ],
    ),
  );
  console.log();
  console.log(
    table(
      [RESTART ? "restart, then connect storm (registry cache cold)" : "connect storm (no restart: registry cache warm)", "value"],
      [
        ...(restart === null
          ? []
          : [["gateway stop / start on its data dir (node open)", `${s1(restart.stopMs)} s / ${s1(restart.startMs)} s (${s1(restart.nodeOpenMs)} s)`]]),
        ["connected / devices", `${fmt(connected)} / ${fmt(DEVICES)} (gateway's gauge ${fmt(stormAfter.gateway.connections)})`],
        ["storm wall time", `${s1(stormMs)} s (${fmt(connected / (stormMs / 1000))} connects/s)`],
        ["connect + subscribe latency p50 / p99 / max (ms)", `${fmt(p(connectMs, 50))} / ${fmt(p(connectMs, 99))} / ${fmt(connectMs.at(-1) ?? Number.NaN)}`],
        ["attempts (retries after a failure)", `${fmt(attempts)} (${fmt(attempts - connected)})`],
        ["failed attempts by reason", Object.keys(stormFailures).length === 0 ? "none" : JSON.stringify(stormFailures)],
        ["gateway RSS before / after (MiB)", `${fmt(MiB(stormBefore.memory.rss))} / ${fmt(MiB(stormAfter.memory.rss))}`],
        [
          "after full GCs: gateway anonymous RSS before / after (MiB); per connected device (KiB)",
          `${fmt(MiB(storm0Gc.anon))} / ${fmt(MiB(storm1Gc.anon))}; ${((storm1Gc.anon - storm0Gc.anon) / Math.max(1, connected) / 1024).toFixed(1)}`,
        ],
        ["gateway open files before / after (limit)", `${fmt(stormBefore.openFiles)} / ${fmt(stormAfter.openFiles)} (${fmt(gatewayServer.fd.soft)})`],
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
        ["publish → PUBACK p50 / p99 (ms)", `${fmt(p(ackMs, 50), 1)} / ${fmt(p(ackMs, 99), 1)}`],
        ["gateway packages settled / failed (whole run)", `${fmt(afterDrain.gateway.packages)} / ${fmt(afterDrain.gateway.packagesFailed)}`],
        ["latest publish behind schedule (ms, device side)", fmt(Math.max(...results.map((r) => r.lateMaxMs)))],
      ],
    ),
  );
  console.log();
  console.log(
    table(
      [`during the load (${s1(loadS * 1000)} s)`, "value"],
      [
        ["gateway process RSS: start / peak sampled / end (MiB)", `${fmt(MiB(load0.memory.rss))} / ${fmt(MiB(rssPeakLoad))} / ${fmt(MiB(load1.memory.rss))}`],
        ["gateway process VmHWM (peak since start, MiB) / anonymous at end", `${fmt(MiB(afterDrain.memory.peak))} / ${fmt(MiB(load1.memory.anon))}`],
        ["gateway registry cache (devices)", fmt(load1.gateway.registryCached)],
        [
          "CPU, cores: gateway main thread (MQTT, acceptance, packing)",
          `${cpu.main.toFixed(2)} (ELU ${(samples.reduce((s, x) => s + x.eventLoopUtilization, 0) / Math.max(1, samples.length)).toFixed(2)})`,
        ],
        ["CPU, cores: node thread (intake, blocks, import)", cpu.node.toFixed(2)],
        [`CPU, cores: refine threads (${load1.cpu.refineThreads})`, cpu.refine.toFixed(2)],
        ["CPU, cores: other threads of the gateway process (GC, libuv, LMDB)", cpu.other.toFixed(2)],
        ["CPU, cores: gateway process", cpu.process.toFixed(2)],
        [`CPU, cores: device processes (${processes})`, devicesCores.toFixed(2)],
        ["device processes' RSS, total (MiB)", fmt(MiB(deviceRss))],
        ["CPU, cores: this process / everything else on the machine", `${selfCores.toFixed(2)} / ${othersCores.toFixed(2)}`],
        ["machine busy (cores)", `${machineCores.toFixed(2)} of ${machine().cpus}`],
        [
          "blocks / import p50 / p99 / max (ms)",
          `${loadBlocks.length} / ${fmt(p(Float64Array.from(imports), 50))} / ${fmt(p(Float64Array.from(imports), 99))} / ${fmt(imports.at(-1) ?? Number.NaN)}`,
        ],
        ["gateway warnings (first ones on stderr)", fmt(afterDrain.warningCount)],
      ],
    ),
  );
  for (const [what, profile] of [
    ["storm", stormProfile],
    ["load", loadProfile],
  ] as const) {
    if (profile === null) continue;
    console.log(`\ngateway main thread during the ${what}: busy ${fmt(profile.busyMs)} ms of ${fmt(profile.wallMs)} ms`);
    console.log(
      table(
        ["self time (top functions)", "ms", "share of busy"],
        profile.self.slice(0, 12).map((x) => [x.name.slice(0, 100), fmt(x.ms), `${(x.share * 100).toFixed(1)}%`]),
      ),
    );
    console.log(
      table(
        ["self time by area", "ms", "share of busy"],
        profile.areas.slice(0, 8).map((x) => [x.name.slice(0, 100), fmt(x.ms), `${(x.share * 100).toFixed(1)}%`]),
      ),
    );
  }
  const p99Slots = p(receiptMs, 99) / SLOT_MS;
  const met = {
    p99: p99Slots <= TARGET.p99Slots,
    nothingLost: lost === TARGET.lost && connected === DEVICES,
    rss: afterDrain.memory.peak <= TARGET.gatewayRssBytes,
  };
  console.log(
    `\ntargets: p99 ≤ ${TARGET.p99Slots} slots: ${met.p99 ? "MET" : "MISSED"} (${p99Slots.toFixed(2)}); nothing lost: ${met.nothingLost ? "MET" : "MISSED"} (${fmt(lost)} not receipted, ${fmt(DEVICES - connected)} not connected); gateway RSS ≤ 2 GiB: ${met.rss ? "MET" : "MISSED"} (peak ${fmt(MiB(afterDrain.memory.peak))} MiB)`,
  );
  const r2 = (x: number) => Number(x.toFixed(2));
  console.log(
    JSON.stringify({
      revision: REVISION,
      devices: DEVICES,
      minutes: MINUTES,
      slotMs: SLOT_MS,
      deviceProcesses: processes,
      registration: { seconds: r2(registration.ms / 1000), packages: registration.summary.packages, registered: registration.summary.registered },
      restart: restart === null ? null : { stopS: r2(restart.stopMs / 1000), startS: r2(restart.startMs / 1000), nodeOpenS: r2(restart.nodeOpenMs / 1000) },
      storm: {
        seconds: r2(stormMs / 1000),
        connected,
        attempts,
        p50Ms: r2(p(connectMs, 50)),
        p99Ms: r2(p(connectMs, 99)),
        anonRssPerDeviceKiB: r2((storm1Gc.anon - storm0Gc.anon) / Math.max(1, connected) / 1024),
      },
      load: {
        offered,
        published,
        acked,
        receipted,
        notReceipted: lost,
        receiptP50Slots: r2(p(receiptMs, 50) / SLOT_MS),
        receiptP99Slots: r2(p99Slots),
        ackP99Ms: r2(p(ackMs, 99)),
        errors: deviceErrors,
      },
      gatewayRssMiB: { start: r2(MiB(load0.memory.rss)), peakSampled: r2(MiB(rssPeakLoad)), vmHwm: r2(MiB(afterDrain.memory.peak)) },
      deviceProcessesRssMiB: r2(MiB(deviceRss)),
      cpuCores: {
        ...Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, r2(v)])),
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
      targetsMet: met,
    }),
  );
  await server.call("stop", { keep: false });
} finally {
  await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
  await server?.stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
  if (gatewayDataDir !== null) rmSync(gatewayDataDir, { recursive: true, force: true });
}
