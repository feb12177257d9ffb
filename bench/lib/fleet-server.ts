/**
 * The gateway process of bench/fleet.ts: the gateway with its embedded node on its own thread, as
 * `jamgate start` runs them (gateway/stack.ts: the node's threads ahead of the rest, packing
 * aligned to blocks with a 200 ms batch deadline, the telemetry service), its HTTP API with the
 * bulk registration route, driven over IPC. Unlike bench/lib/gateway-server.ts (which starts the
 * test harness) it opens the node with a logger, to time every block's import from the node's own
 * `block` lines, and it can start again on the data dir it stopped with (a gateway restart). The
 * MQTT connection bound is raised to the fleet's size (gateway/gateway.ts gatewayLimits.connectionsMax
 * is 20,000 as shipped); nothing else differs from the gateway as shipped.
 *
 * Commands: start, stats (memory, CPU per thread kind, the gateway's counters, event-loop
 * utilisation), blocks (import time, reports accumulated), profile-start/-stop (the main thread),
 * gc, stop (keeping the data dir or not).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { builtinServices, TELEMETRY_SERVICE } from "../../gateway/genesis.ts";
import { Gateway } from "../../gateway/gateway.ts";
import { buildHttp } from "../../gateway/http.ts";
import { Registrations } from "../../gateway/registration.ts";
import { telemetryService } from "../../gateway/services/telemetry.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { NodeThread } from "../../node/thread/host.ts";
import { lowerOtherThreads } from "../../node/thread/priority.ts";
import { summarizeProfile } from "./cpuprofile.ts";
import { HARNESS_GATEWAY_KEY } from "./devices.ts";
import { mainThreadCpuS, openFilesLimit, processCpuS, residentBytes, serve, threadCpuS } from "./proc.ts";

/** A block as the node's `block` line told it (node/chain/author.ts announce). */
export interface BlockLine {
  readonly slot: number;
  /** Import: apply + state root + LMDB write, whole ms. */
  readonly importMs: number;
  readonly accumulated: number;
  readonly at: number;
}

/** CPU seconds by kind of thread, cumulative since the process started (threads that ended count in `other` through the process total). */
export interface ThreadCpu {
  readonly main: number;
  readonly node: number;
  readonly refine: number;
  readonly refineThreads: number;
  readonly other: number;
  readonly process: number;
}

let node: NodeThread | null = null;
let gateway: Gateway | null = null;
let registrations: Registrations | null = null;
let http: ReturnType<typeof buildHttp> | null = null;
let dataDir: string | null = null;
const blocks: BlockLine[] = [];
const warnings: string[] = [];
let warningCount = 0;
let lastElu = performance.eventLoopUtilization();
let profiler: Session | null = null;

function note(line: string): void {
  warningCount++;
  if (warnings.length < 20) {
    warnings.push(line);
    process.stderr.write(`[fleet-server] ${line}\n`);
  }
}

const nodeLogger = {
  info(obj: object, msg?: string) {
    if (msg !== "block") return;
    const b = obj as { slot: number; importMs: number; reports: { accumulated: number } };
    blocks.push({ slot: b.slot, importMs: b.importMs, accumulated: b.reports.accumulated, at: performance.now() });
  },
  warn(obj: object, msg?: string) {
    note(`node: ${msg ?? ""} ${JSON.stringify(obj).slice(0, 300)}`);
  },
  error(obj: object, msg?: string) {
    note(`node ERROR: ${msg ?? ""} ${JSON.stringify(obj).slice(0, 300)}`);
  },
};
// The gateway's lines at warn and above (a connect refused, a package failed) are counted; its info lines (one per connect) are not kept.
const gatewayLogger = {
  info() {},
  warn(o: object, m: string) {
    note(`gateway: ${m} ${JSON.stringify(o).slice(0, 300)}`);
  },
  error(o: object, m: string) {
    note(`gateway ERROR: ${m} ${JSON.stringify(o).slice(0, 300)}`);
  },
};

process.on("uncaughtException", (e) => {
  const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`[fleet-server] CRASH (uncaught exception): ${stack}\n`);
  // lmdb-js's write thread can wait for a dead main thread forever: report, then go (bench/lib/gateway-server.ts does the same).
  process.send!({ crashed: stack.slice(0, 20_000), at: performance.now() }, () => process.kill(process.pid, "SIGKILL"));
  setTimeout(() => process.kill(process.pid, "SIGKILL"), 2_000);
});

async function counterValue(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values.reduce((s, v) => s + v.value, 0);
}

/** File descriptors this process holds (Linux /proc/self/fd), NaN elsewhere. */
function openFileCount(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return Number.NaN;
  }
}

function threadCpu(): ThreadCpu {
  const byTid = threadCpuS();
  const ids = node?.threadIds ?? [];
  const main = byTid.get(process.pid) ?? mainThreadCpuS();
  const nodeS = ids.length > 0 ? (byTid.get(ids[0]!) ?? 0) : 0;
  let refine = 0;
  let refineThreads = 0;
  for (const tid of ids.slice(1)) {
    const s = byTid.get(tid);
    if (s === undefined) continue;
    refine += s;
    refineThreads++;
  }
  const total = processCpuS();
  return { main, node: nodeS, refine, refineThreads, other: Math.max(0, total - main - nodeS - refine), process: total };
}

serve({
  async start(args) {
    const slotMs = Number(args.slotMs);
    const operatorToken = String(args.operatorToken);
    dataDir = typeof args.dataDir === "string" ? args.dataDir : mkdtempSync(join(tmpdir(), "jamgate-fleet-"));
    const started = performance.now();
    node = await NodeThread.open(
      { dataDir: join(dataDir, "node"), slotMs, services: builtinServices([HARNESS_GATEWAY_KEY.publicKey]) },
      { logger: nodeLogger },
    );
    const nodeOpenMs = performance.now() - started;
    const telemetry = telemetryService(TELEMETRY_SERVICE.id);
    gateway = new Gateway({
      dataDir,
      api: node,
      params: tinyParams,
      signer: HARNESS_GATEWAY_KEY,
      operatorToken,
      services: [telemetry],
      mqttPort: 0,
      wsPort: null,
      batchDeadlineMs: Number(args.batchMs),
      packing: "aligned",
      limits: { connectionsMax: Number(args.connectionsMax) },
      logger: gatewayLogger,
    });
    await gateway.start();
    const priorities = lowerOtherThreads(node.threadIds);
    registrations = new Registrations(node, tinyParams, HARNESS_GATEWAY_KEY, gateway.registry, () => telemetry, gateway.ledger);
    http = buildHttp({
      operatorToken,
      registrations,
      metrics: gateway.metrics,
      count: (code) => gateway!.metrics.httpRefused.inc({ code }),
      ledger: gateway.ledger,
    });
    await http.listen({ port: 0, host: "127.0.0.1" });
    return {
      port: gateway.mqttPort,
      httpUrl: `http://127.0.0.1:${(http.server.address() as { port: number }).port}`,
      dataDir,
      startMs: performance.now() - started,
      nodeOpenMs,
      bestSlot: node.bestSlot,
      threadIds: node.threadIds,
      // This process's clock's origin: the orchestrator turns `at` times into its own with it.
      timeOrigin: performance.timeOrigin,
      priorities,
      fdLimit: openFilesLimit(),
    };
  },

  async stats() {
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    const m = process.memoryUsage();
    const g = gateway;
    return {
      at: performance.now(),
      memory: { ...residentBytes(), heapUsed: m.heapUsed, external: m.external },
      cpu: threadCpu(),
      eventLoopUtilization: elu.utilization,
      openFiles: openFileCount(),
      gateway:
        g === null
          ? null
          : {
              accepted: await counterValue(g.metrics.accepted),
              settled: await counterValue(g.metrics.settled),
              packages: await counterValue(g.metrics.packages),
              packagesFailed: await counterValue(g.metrics.packagesFailed),
              connections: (await g.metrics.connections.get()).values[0]?.value ?? 0,
              pending: g.settlement.pendingCount,
              inFlight: g.settlement.inFlightCount,
              registryCached: g.registry.size,
              registrationsInFlight: registrations?.inFlightCount ?? 0,
              bestSlot: node?.bestSlot ?? 0,
            },
      warningCount,
      warnings: warnings.slice(),
      errors: g?.errorStats() ?? {},
    };
  },

  blocks(args) {
    const from = Number(args.fromAt ?? 0);
    return blocks.filter((b) => b.at >= from);
  },

  /** Starts the V8 CPU profiler on the main thread (node:inspector), as bench/lib/gateway-server.ts does. */
  async "profile-start"() {
    profiler ??= new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
    return null;
  },

  /** Stops it and returns its summary (bench/lib/cpuprofile.ts). */
  async "profile-stop"(args) {
    const { profile } = (await profiler!.post("Profiler.stop")) as { profile: object };
    profiler!.disconnect();
    const path = join(tmpdir(), `jamgate-fleet-${process.pid}-${Date.now()}.cpuprofile`);
    writeFileSync(path, JSON.stringify(profile));
    const summary = summarizeProfile(path, Number(args.top ?? 12));
    rmSync(path, { force: true });
    return summary;
  },

  gc() {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error("run with --expose-gc");
    for (let i = 0; i < 3; i++) gc();
    return residentBytes();
  },

  /** Stops the gateway, its HTTP API and the node, as `jamgate start` does on SIGTERM; the data dir stays when `keep` (a restart follows). */
  async stop(args) {
    const started = performance.now();
    await http?.close();
    await gateway?.stop();
    await node?.stop();
    http = null;
    gateway = null;
    node = null;
    registrations = null;
    if (args.keep !== true && dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
    return { ms: performance.now() - started };
  },
});
