/**
 * bench/fleet.ts's cluster (`--gateways K`, K ≥ 2), deployed as docs/cluster.md says and every part
 * its own process: a real redis-server (gateway/testing/redis.ts: a free loopback port, its own
 * temp dir, append-only file fsynced every second), `jamgate node start` on its own data dir
 * authorizing each gateway's key, and K × `jamgate start --node ws://… --node-token-file …
 * --cluster redis://… --connections-max N`, each on its own data dir and MQTT and HTTP ports. Devices
 * connect straight to their gateway's port (no balancer: the bench spreads them itself), and the
 * fleet is registered through the first gateway's HTTP API.
 *
 * Every `jamgate` process runs from source with bench/lib/thread-probe.mjs preloaded, so
 * bench/lib/threads.ts can say where each one's cores go from outside. The gateways log at warn
 * (a line per connect at info would be 100,000 lines in the storm, written and read on the cores
 * under test): they are known to be up when `endpoints.json` appears in their data dir, which
 * `jamgate start` writes last. The node logs at info: its `block` lines give each block's import
 * time. Counters come from each gateway's `/metrics`, memory and open files from /proc. With
 * `nodeFirst`, once a gateway listens its threads are set NICE_STEP above the node's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { getPriority, setPriority } from "node:os";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { type RedisServer, startRedis } from "../../gateway/testing/redis.ts";
import { freePort } from "../../node/testing/ports.ts";
import { NICE_STEP } from "../../node/thread/priority.ts";
import { JAMGATE_BIN } from "../../scripts/testing/process.ts";
import type { BlockLine, FleetSample, FleetTarget, GatewaySample, ProcessMemory, RestartFacts } from "./fleet-target.ts";
import { sumCounters } from "./fleet-target.ts";
import { CdpProfiler, inspectorUrl } from "./cdp-profiler.ts";
import type { ProfileSummary } from "./cpuprofile.ts";
import { raiseOpenFilesLimit } from "./proc.ts";
import { redisServerPid, THREAD_PROBE, type Watched } from "./threads.ts";

/** A `jamgate` start from source with 100,000 devices' state, on a 2-core machine others share: minutes at worst. */
const START_TIMEOUT_MS = 300_000;
/** How long a process gets to stop on SIGTERM before SIGKILL: the gateway's stop drains for at most ~27 s (docs/jamgate.service: TimeoutStopSec 60). */
const STOP_TIMEOUT_MS = 60_000;
/** Output kept per process: its tail explains a failed start or a crash. */
const OUTPUT_KEEP_CHARS = 64 * 1024;
/** Warning lines kept (all are counted). */
const WARNINGS_KEPT = 20;
/** How often a start polls for endpoints.json. */
const POLL_MS = 100;
/** One /metrics scrape's bound: a gateway busy with the storm may answer slowly, but not never. */
const SCRAPE_TIMEOUT_MS = 30_000;

/** A `jamgate` process: its output's tail, its warning lines, and a callback per line. */
class JamgateProcess {
  private tail = "";
  private partial = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcess;

  constructor(
    readonly label: string,
    args: readonly string[],
    probeDir: string,
    private readonly onLine: (line: string, label: string) => void,
    /** Node's own flags, before the preload (`--inspect=…` for a profile). */
    nodeArgs: readonly string[] = [],
  ) {
    // Without the caller's JAMGATE_ settings: the command line says everything.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("JAMGATE_")));
    this.child = spawn(process.execPath, [...nodeArgs, "--import", THREAD_PROBE, JAMGATE_BIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...env, BENCH_THREAD_PROBE_DIR: probeDir },
    });
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      this.tail = (this.tail + text).slice(-OUTPUT_KEEP_CHARS);
      const lines = (this.partial + text).split("\n");
      this.partial = lines.pop()!.slice(-OUTPUT_KEEP_CHARS);
      for (const line of lines) if (line !== "") this.onLine(line, this.label);
    };
    this.child.stdout!.on("data", onData);
    this.child.stderr!.on("data", onData);
    this.exited = new Promise((resolve) => this.child.on("close", (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.tail;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A process's memory from /proc/<pid>/status (NaN where it cannot be read). */
export function processMemory(pid: number): ProcessMemory {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib("VmRSS"), peak: kib("VmHWM"), anon: kib("RssAnon") };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN, anon: Number.NaN };
  }
}

function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** "Max open files" of process `pid` (/proc/<pid>/limits), NaN where it cannot be read. */
function openFilesLimitOf(pid: number): { soft: number; hard: number } {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))!;
    const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/);
    return { soft: Number(soft), hard: Number(hard) };
  } catch {
    return { soft: Number.NaN, hard: Number.NaN };
  }
}

/** The sum of a metric's samples in Prometheus' text format (every label set), 0 when absent. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    sum += Number(rest.slice(rest.lastIndexOf(" ") + 1));
  }
  return sum;
}

export interface FleetClusterOptions {
  readonly gateways: number;
  readonly slotMs: number;
  readonly batchMs: number;
  /** Each gateway's `--connections-max`. */
  readonly connectionsMax: number;
  /** Open files each gateway needs: raised with prlimit where this process may, else left (the gateway warns at start). */
  readonly fdWanted: number;
  /**
   * Run every thread of the gateway processes NICE_STEP above the node's (node/thread/priority.ts),
   * as `jamgate start` runs its own gateway threads beside its embedded node: on one machine the
   * node's block loop is the serial part of the whole cluster. 100,000 devices on 6 gateways, 2
   * cores shared with other work (load average ~20): without it the node had 0.26 cores, 250
   * blocks in 300 s, import p50 668 ms; with it 288 blocks, import p50 166 ms, but the gateways
   * had 0.11 cores each (event loops busy all the time), PUBACK p50 6 s, and their packages
   * reached the node more than L = 24 slots after their anchor (JG_ERR_PACKAGE_ANCHOR, 1,160).
   */
  readonly nodeFirst: boolean;
  /** Run the first gateway with the inspector on a free loopback port, so its main thread can be profiled (profileStart / profileStop). */
  readonly profileFirst?: boolean;
}

/** Sets every thread of process `pid` to at least `nice` (Linux: a nice value is per thread; threads made later inherit their creator's). Returns how many were set. */
function lowerProcess(pid: number, nice: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  let lowered = 0;
  for (const tid of tids) {
    try {
      if (getPriority(Number(tid)) < nice) setPriority(Number(tid), nice);
      lowered++;
    } catch {
      // ended meanwhile
    }
  }
  return lowered;
}

interface GatewayProcess {
  readonly label: string;
  readonly dir: string;
  readonly mqttPort: number;
  readonly httpPort: number;
  proc: JamgateProcess | null;
}

/** The seed of gateway i's key (gateway/cluster-kill.test.ts and bench/lib/cluster.ts do the same): distinct keys, each authorized at genesis. */
const gatewayKeySeed = (i: number) => Buffer.alloc(32, 60 + i);

export class FleetCluster implements FleetTarget {
  private node: JamgateProcess | null = null;
  private readonly blockLines: BlockLine[] = [];
  private warningCount = 0;
  private readonly warningLines: string[] = [];
  private redisClient: Redis | null = null;
  fdLimit = Number.POSITIVE_INFINITY;
  operatorToken = "";

  private constructor(
    private readonly options: FleetClusterOptions,
    private readonly root: string,
    private readonly probeDir: string,
    readonly redis: RedisServer,
    private readonly rpcPort: number,
    private readonly gatewayProcesses: GatewayProcess[],
  ) {}

  get mqttPorts(): number[] {
    return this.gatewayProcesses.map((g) => g.mqttPort);
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.gatewayProcesses[0]!.httpPort}`;
  }

  get nodeDir(): string {
    return join(this.root, "node");
  }

  /** Starts Redis, the node and the gateways; resolves once every gateway listens. */
  static async start(options: FleetClusterOptions): Promise<FleetCluster> {
    const root = mkdtempSync(join(tmpdir(), "jamgate-fleet-cluster-"));
    const probeDir = join(root, "probe");
    mkdirSync(probeDir);
    let redis: RedisServer;
    try {
      redis = await startRedis();
    } catch (e) {
      rmSync(root, { recursive: true, force: true });
      throw e;
    }
    const gateways: GatewayProcess[] = [];
    for (let i = 0; i < options.gateways; i++) {
      const dir = join(root, `gateway-${i + 1}`);
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, "gateway-key"), `${gatewayKeySeed(i).toString("hex")}\n`, { mode: 0o600 });
      gateways.push({ label: `gateway ${i + 1}`, dir, mqttPort: await freePort(), httpPort: await freePort(), proc: null });
    }
    const cluster = new FleetCluster(options, root, probeDir, redis, await freePort(), gateways);
    try {
      await cluster.startNode();
      await cluster.startGateways();
      cluster.operatorToken = readFileSync(join(gateways[0]!.dir, "operator-token"), "utf8").trim();
      return cluster;
    } catch (e) {
      await cluster.stop();
      throw e;
    }
  }

  private onLine = (line: string, label: string): void => {
    if (line.includes('"msg":"block"')) {
      try {
        const b = JSON.parse(line) as { slot: number; importMs: number; reports: { accumulated: number } };
        this.blockLines.push({ slot: b.slot, importMs: b.importMs, accumulated: b.reports.accumulated, at: performance.now() });
      } catch {
        // not a whole JSON line
      }
      return;
    }
    // pino's levels: 40 warn, 50 error, 60 fatal.
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
    if (level >= 40 || !line.startsWith("{")) {
      this.warningCount++;
      if (this.warningLines.length < WARNINGS_KEPT) {
        const text = `${label}: ${line.slice(0, 400)}`;
        this.warningLines.push(text);
        process.stderr.write(`[fleet-cluster] ${text}\n`);
      }
    }
  };

  /** `jamgate node start` on the node's data dir; resolves with its open time (spawn to "node started"). */
  private async startNode(): Promise<number> {
    const t0 = performance.now();
    const args = [
      "node",
      "start",
      "--data-dir",
      this.nodeDir,
      "--rpc-port",
      String(this.rpcPort),
      "--slot-ms",
      String(this.options.slotMs),
      ...this.gatewayProcesses.flatMap((g) => ["--authorize", g.dir]),
    ];
    const started = new Promise<void>((resolve, reject) => {
      const node = new JamgateProcess("node", args, this.probeDir, (line, label) => {
        if (line.includes('"msg":"node started"')) resolve();
        this.onLine(line, label);
      });
      this.node = node;
      void node.exited.then(({ code, signal }) =>
        reject(new Error(`node exited (${code ?? signal}) before it started; its output's end:\n${node.output().slice(-4000)}`)),
      );
      setTimeout(
        () => reject(new Error(`node: not started within ${START_TIMEOUT_MS} ms; its output's end:\n${node.output().slice(-4000)}`)),
        START_TIMEOUT_MS,
      ).unref();
    });
    await started;
    return performance.now() - t0;
  }

  /** Every gateway, at once; resolves once each has written its endpoints.json (the last thing `jamgate start` does). */
  private async startGateways(): Promise<void> {
    const started = this.gatewayProcesses.map(async (g) => {
      const proc = new JamgateProcess(
        g.label,
        [
          "start",
          "--data-dir",
          g.dir,
          "--node",
          `ws://127.0.0.1:${this.rpcPort}`,
          "--node-token-file",
          join(this.nodeDir, "rpc-token"),
          "--cluster",
          this.redis.url,
          "--mqtt-port",
          String(g.mqttPort),
          "--http-port",
          String(g.httpPort),
          "--ws-port",
          "0",
          "--radius-port",
          "0",
          "--batch-ms",
          String(this.options.batchMs),
          "--connections-max",
          String(this.options.connectionsMax),
          "--log-level",
          "warn",
        ],
        this.probeDir,
        (line, label) => {
          if (g === this.gatewayProcesses[0]) this.inspectorUrl = inspectorUrl(line) ?? this.inspectorUrl;
          this.onLine(line, label);
        },
        this.options.profileFirst === true && g === this.gatewayProcesses[0] ? ["--inspect=127.0.0.1:0"] : [],
      );
      g.proc = proc;
      // Node raises its soft limit to the hard one as it starts: only a hard limit below what it needs is raised (root only).
      if (openFilesLimitOf(process.pid).hard < this.options.fdWanted) raiseOpenFilesLimit(proc.pid, this.options.fdWanted);
      const deadline = performance.now() + START_TIMEOUT_MS;
      while (!existsSync(join(g.dir, "endpoints.json"))) {
        if (!proc.running) throw new Error(`${g.label} exited before it listened; its output's end:\n${proc.output().slice(-4000)}`);
        if (performance.now() > deadline)
          throw new Error(`${g.label}: not listening within ${START_TIMEOUT_MS} ms; its output's end:\n${proc.output().slice(-4000)}`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      if (this.options.nodeFirst && this.node !== null) lowerProcess(proc.pid, Math.min(19, getPriority(this.node.pid) + NICE_STEP));
      return openFilesLimitOf(proc.pid).soft;
    });
    const limits = await Promise.all(started);
    this.fdLimit = Math.min(...limits);
  }

  /** The first gateway's inspector (options.profileFirst), as its latest start printed it. */
  private inspectorUrl: string | null = null;
  private profiler: CdpProfiler | null = null;

  /** Starts the V8 CPU profiler on the first gateway's main thread (options.profileFirst), over its inspector. */
  async profileStart(): Promise<void> {
    if (this.inspectorUrl === null) throw new Error("the first gateway has no inspector: FleetClusterOptions.profileFirst");
    this.profiler = await CdpProfiler.connect(this.inspectorUrl);
    await this.profiler.start();
  }

  /** Stops it and returns its summary (bench/lib/cpuprofile.ts). */
  async profileStop(top: number): Promise<ProfileSummary> {
    const profiler = this.profiler!;
    this.profiler = null;
    try {
      return await profiler.stop(top);
    } finally {
      profiler.close();
    }
  }

  /** Every process to watch for CPU: the gateways, the node and redis-server. */
  watched(): Watched[] {
    const out: Watched[] = this.gatewayProcesses.map((g) => ({ label: g.label, pid: g.proc!.pid, probeDir: this.probeDir }));
    if (this.node !== null) out.push({ label: "node", pid: this.node.pid, probeDir: this.probeDir });
    const redisPid = redisServerPid(this.redis.port);
    if (redisPid !== null) out.push({ label: "redis-server", pid: redisPid, probeDir: null });
    return out;
  }

  private async scrape(g: GatewayProcess): Promise<GatewaySample> {
    const response = await fetch(`http://127.0.0.1:${g.httpPort}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    const text = await response.text();
    const pid = g.proc!.pid;
    return {
      label: g.label,
      pid,
      accepted: metricSum(text, "jamgate_envelopes_accepted_total"),
      settled: metricSum(text, "jamgate_envelopes_settled_total"),
      packages: metricSum(text, "jamgate_packages_submitted_total"),
      packagesFailed: metricSum(text, "jamgate_packages_failed_total"),
      connections: metricSum(text, "jamgate_mqtt_connections"),
      pending: metricSum(text, "jamgate_queue_pending_envelopes"),
      inFlight: metricSum(text, "jamgate_queue_packages_in_flight"),
      memory: processMemory(pid),
      openFiles: openFiles(pid),
    };
  }

  async sample(): Promise<FleetSample> {
    const at = performance.now();
    const gateways = await Promise.all(this.gatewayProcesses.map((g) => this.scrape(g)));
    const redisPid = redisServerPid(this.redis.port);
    return {
      at,
      total: sumCounters(gateways),
      gatewaysRss: gateways.reduce((s, g) => s + g.memory.rss, 0),
      gateways,
      node: this.node === null ? null : processMemory(this.node.pid),
      redis: redisPid === null ? null : processMemory(redisPid),
    };
  }

  /** Redis's own account: used_memory (its allocator's, bytes), keys in the database, clients and pub/sub channels. */
  async redisInfo(): Promise<{ usedMemory: number; usedMemoryPeak: number; keys: number; clients: number; channels: number }> {
    this.redisClient ??= new Redis(this.redis.url, { lazyConnect: false, maxRetriesPerRequest: 3 });
    const memory = await this.redisClient.info("memory");
    const clients = await this.redisClient.info("clients");
    const field = (text: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(text)?.[1] ?? Number.NaN);
    const stats = await this.redisClient.info("stats");
    return {
      usedMemory: field(memory, "used_memory"),
      usedMemoryPeak: field(memory, "used_memory_peak"),
      keys: await this.redisClient.dbsize(),
      clients: field(clients, "connected_clients"),
      channels: field(stats, "pubsub_channels") + field(stats, "pubsub_patterns"),
    };
  }

  async blocks(fromAt: number, toAt = Number.POSITIVE_INFINITY): Promise<BlockLine[]> {
    return this.blockLines.filter((b) => b.at >= fromAt && b.at <= toAt);
  }

  /** Gateways stopped, then the node; the node started again on its data dir, then the gateways (Redis stays up). */
  async restart(): Promise<RestartFacts> {
    const t0 = performance.now();
    await Promise.all(this.gatewayProcesses.map((g) => g.proc?.stop()));
    await this.node?.stop();
    const stopMs = performance.now() - t0;
    const t1 = performance.now();
    const nodeOpenMs = await this.startNode();
    await this.startGateways();
    return { stopMs, startMs: performance.now() - t1, nodeOpenMs };
  }

  warnings(): { count: number; first: readonly string[] } {
    return { count: this.warningCount, first: this.warningLines.slice() };
  }

  /** A process that ended before it was stopped, or null. */
  failure(): string | null {
    for (const p of [...this.gatewayProcesses.map((g) => g.proc), this.node])
      if (p !== null && !p.running && p.child.exitCode !== 0)
        return `${p.label} exited (${p.child.exitCode ?? p.child.signalCode}): ${p.output().slice(-2000)}`;
    return null;
  }

  /** Gateways first, then the node and Redis; every data dir removed. */
  async stop(): Promise<void> {
    this.redisClient?.disconnect();
    this.redisClient = null;
    await Promise.all(this.gatewayProcesses.map((g) => g.proc?.stop().catch(() => undefined)));
    await this.node?.stop().catch(() => undefined);
    await this.redis.stop().catch(() => undefined);
    rmSync(this.root, { recursive: true, force: true });
  }
}
