/**
 * The server side of the gateway benchmarks, run as its own process (bench/gateway.ts,
 * bench/idle-connections.ts and bench/wifi.ts fork it): either the gateway with its embedded node
 * (gateway/testing/harness.ts: JamNode + Gateway in one process, refine on the node's worker
 * threads; with `wifi`, the wifi-billing service beside telemetry) or a bare aedes broker (no
 * hooks), answering commands over IPC: start, register devices (meters, or Wi-Fi routers with
 * their owners' and clients' accounts, funded), stats (memory, CPU of the main thread and of the
 * process, event-loop utilisation and delay, the gateway's counters), package and block
 * timelines, stop.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type AddressInfo, type Server } from "node:net";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Aedes } from "aedes";
import { deviceIdOf } from "../../devices/envelope.ts";
import { brokerLimits } from "../../gateway/broker.ts";
import type { IngestService, RegistrationRecord } from "../../gateway/ingest-service.ts";
import { telemetryService } from "../../gateway/services/telemetry.ts";
import { wifiService } from "../../gateway/services/wifi.ts";
import { settlementLimits } from "../../gateway/settlement/index.ts";
import { type Harness, OPERATOR_TOKEN, startHarness } from "../../gateway/testing/harness.ts";
import { registerDashboard } from "../../gateway/dashboard/serve.ts";
import { buildHttp } from "../../gateway/http.ts";
import { Prover } from "../../gateway/ledger/prover.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { toHex } from "../../node/codec/jam.ts";
import { builtinServices, TELEMETRY_SERVICE } from "../../gateway/genesis.ts";
import {
  accountKey,
  ACTIONS_PER_ITEM_MAX,
  decodeAccount,
  type WifiAction,
  wifiActionsGas,
  wifiActionsPayload,
  WIFI_SERVICE_NAME,
} from "../../services/wifi-billing/types.ts";
import { summarizeAllocations } from "./allocprofile.ts";
import { summarizeProfile } from "./cpuprofile.ts";
import { benchDevice, benchWifiAccount, HARNESS_GATEWAY_KEY, registerInBulk, submitInBulk } from "./devices.ts";
import { mainThreadCpuS, openFilesLimit, processCpuS, serve } from "./proc.ts";

let harness: Harness | null = null;
/** The wifi-billing adapter of the running gateway (start-gateway's `wifi`), else null. */
let wifi: IngestService | null = null;
/** The HTTP API beside the gateway, as `jamgate start` serves it (gateway/stack.ts). */
let http: ReturnType<typeof buildHttp> | null = null;
let profiler: Session | null = null;
let allocProfiler: Session | null = null;
let bare: { aedes: Aedes; tcp: Server } | null = null;
const warnings: string[] = [];
let warningCount = 0;

/**
 * Per work package of envelopes, ms on this process's clock: the oldest envelope's acceptance, the
 * gateway's packing (log.markSubmitted), the node's submit call, its statuses, and the moment its
 * receipts were published (log.remove follows the notifications in Settlement.settle).
 */
export interface PackageTrace {
  envelopes: number;
  oldestAcceptedAt: number;
  packStartAt: number;
  markedAt?: number;
  submittedAt?: number;
  submitReturnedAt?: number;
  bytes?: number;
  refinedAt?: number;
  reportedSlot?: number;
  accumulatedAt?: number;
  accumulatedSlot?: number;
  receiptsAt?: number;
  failed?: string;
}
const packages: PackageTrace[] = [];
const byHash = new Map<string, PackageTrace>();
/** performance.now() of a Date.now() time. */
const perfOf = (epochMs: number) => performance.now() - (Date.now() - epochMs);
const blocks: { at: number; slot: number }[] = [];

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
let lastElu = performance.eventLoopUtilization();

function note(line: string): void {
  warningCount++;
  if (warnings.length < 20) {
    warnings.push(line);
    process.stderr.write(`[gateway-server] ${line}\n`);
  }
}
const logger = {
  info() {},
  warn(o: object, m: string) {
    note(`${m} ${JSON.stringify(o).slice(0, 300)}`);
  },
  error(o: object, m: string) {
    note(`ERROR ${m} ${JSON.stringify(o).slice(0, 300)}`);
  },
};
process.on("warning", (w) => note(`process warning: ${w.name}: ${w.message}`));

// A crash of the gateway is a result: it is reported to the orchestrator, then the process is
// killed, because after a fatal exception mid-write lmdb-js's write thread waits for the main
// thread forever and the process would hang in exit (seen: main thread in uv_thread_join, the
// threadpool thread in lmdb WriteWorker::WaitForCallbacks).
process.on("uncaughtException", (e) => {
  const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`[gateway-server] CRASH (uncaught exception): ${stack}\n`);
  process.send!({ crashed: stack.slice(0, 20_000), at: performance.now() }, () => process.kill(process.pid, "SIGKILL"));
  setTimeout(() => process.kill(process.pid, "SIGKILL"), 2_000);
});

async function counterValue(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values.reduce((s, v) => s + v.value, 0);
}

/** Memory of this process; rssAnon excludes file-backed pages (LMDB maps its files, and those pages come and go). */
function memory() {
  const m = process.memoryUsage();
  const status = readFileSync("/proc/self/status", "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
  return {
    rss: m.rss,
    rssAnon: kib("RssAnon"),
    rssFile: kib("RssFile"),
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

serve({
  async "start-gateway"(args) {
    const slotMs = Number(args.slotMs);
    // What-if only (bench/gateway.ts --what-if-packing deadline): the gateway as shipped packs "aligned".
    const packing = args.packing === "deadline" ? "deadline" : "aligned";
    // As `jamgate start` runs: the node's threads ahead of the gateway's (what-if: --what-if-no-node-first).
    // With wifi: the gateway takes the wifi-billing service of the built-in genesis too (routers and their accounts), as `jamgate start` does.
    const services = [telemetryService(TELEMETRY_SERVICE.id)];
    if (args.wifi === true) {
      const genesis = builtinServices([HARNESS_GATEWAY_KEY.publicKey]).find((s) => s.name === WIFI_SERVICE_NAME);
      if (genesis === undefined) throw new Error(`the built-in genesis (gateway/genesis.ts) has no ${WIFI_SERVICE_NAME} service`);
      wifi = wifiService(genesis.id);
      services.push(wifi);
    }
    harness = await startHarness({
      slotMs,
      gateway: { batchDeadlineMs: Number(args.batchMs), logger, wsPort: null, packing, services },
      nodeFirst: args.noNodeFirst !== true,
    });
    const h = harness;
    if (args.inFlight !== undefined && args.inFlight !== null) {
      // What-if only (bench/gateway.ts --what-if-in-flight): the gateway as shipped uses settlementLimits.packagesInFlightMax.
      (settlementLimits as { packagesInFlightMax: number }).packagesInFlightMax = Number(args.inFlight);
    }
    if (args.leadMargin !== undefined && args.leadMargin !== null) {
      // What-if only (bench/gateway.ts --what-if-lead-margin): the gateway as shipped uses settlementLimits.leadMarginMs.
      (settlementLimits as { leadMarginMs: number }).leadMarginMs = Number(args.leadMargin);
    }
    if (args.mqConcurrency !== undefined && args.mqConcurrency !== null) {
      // What-if only (bench/gateway.ts --what-if-mq-concurrency): the gateway as shipped uses brokerLimits.concurrency.
      (h.gateway as unknown as { broker: { aedes: { mq: { concurrency: number } } } }).broker.aedes.mq.concurrency = Number(args.mqConcurrency);
    }
    await h.node.subscribeBestBlock((b) => blocks.push({ at: performance.now(), slot: b.slot }));
    // Trace every package the gateway's settlement submits (the node is the harness's JamNode).
    // Trace the settlement's packages (bench instrumentation: wrappers around the log's and the node's methods; behaviour unchanged).
    const log = h.gateway.log;
    const markSubmitted = log.markSubmitted.bind(log);
    log.markSubmitted = async (entries, packageHash) => {
      const trace: PackageTrace = {
        envelopes: entries.length,
        oldestAcceptedAt: perfOf(Math.min(...entries.map((e) => e.acceptedAtMs))),
        packStartAt: performance.now(),
      };
      byHash.set(packageHash, trace);
      packages.push(trace);
      const out = await markSubmitted(entries, packageHash);
      trace.markedAt = performance.now();
      return out;
    };
    const remove = log.remove.bind(log);
    log.remove = async (entries) => {
      const hex = entries[0]?.packageHash;
      const trace = hex === undefined ? undefined : byHash.get(hex);
      if (trace !== undefined) trace.receiptsAt ??= performance.now();
      return remove(entries);
    };
    const submit = h.node.submitWorkPackage.bind(h.node);
    h.node.submitWorkPackage = async (core, bytes, extrinsics) => {
      const submittedAt = performance.now();
      const hash = await submit(core, bytes, extrinsics);
      const trace = byHash.get(toHex(hash));
      if (trace === undefined) return hash; // a registration package
      trace.submittedAt = submittedAt;
      trace.submitReturnedAt = performance.now();
      trace.bytes = bytes.length;
      void h.node.subscribeWorkPackageStatus(hash, (s) => {
        if (s.kind === "refined") trace.refinedAt ??= performance.now();
        if (s.kind === "reported") trace.reportedSlot ??= s.reportedIn.slot;
        if (s.kind === "accumulated") {
          trace.accumulatedAt = performance.now();
          trace.accumulatedSlot = s.accumulatedIn.slot;
        }
        if (s.kind === "failed") trace.failed = s.code;
      });
      return hash;
    };
    // The HTTP API (ledger read routes, events, proofs, dashboard) as `jamgate start` serves it: dashboard clients (bench/lib/dashboard-clients.ts) read it.
    http = buildHttp({
      operatorToken: OPERATOR_TOKEN,
      registrations: h.registrations,
      metrics: h.gateway.metrics,
      count: (code) => h.gateway.metrics.httpRefused.inc({ code }),
      ledger: h.gateway.ledger,
      prover: new Prover({ api: h.node, reader: h.gateway.ledger, chain: "tiny", services: [telemetryService(TELEMETRY_SERVICE.id)] }),
      dashboard: (app) => registerDashboard(app, { currency: "EUR", coresCount: tinyParams.coresCount }),
    });
    await http.listen({ port: 0, host: "127.0.0.1" });
    const httpUrl = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
    return {
      port: h.gateway.mqttPort,
      httpUrl,
      dataDir: h.dataDir,
      fdLimit: openFilesLimit(),
      memory: memory(),
      priorities: h.priorities,
      nodeThreads: h.node.threadIds.length,
    };
  },

  /** Registers devices [from, to) in bulk (through the node), then looks each up once so the gateway's registry knows it. */
  async register(args) {
    const h = harness!;
    const from = Number(args.from);
    const to = Number(args.to);
    const keys = Array.from({ length: to - from }, (_, i) => benchDevice(from + i).key.publicKey);
    const service = telemetryService(TELEMETRY_SERVICE.id);
    return registerInBulk(h.node, tinyParams, HARNESS_GATEWAY_KEY, service, keys);
  },

  /**
   * Wi-Fi routers [from, to) (bench device indices, bench/lib/devices.ts ROUTER_INDEX_BASE on)
   * on the wifi-billing service, as an operator onboards them (services/wifi-billing/README.md): each
   * router's owner and client accounts registered, the owner topped up with the stake and the
   * client with `clientTopupMicros`, then the router with its terms (the stake locked from the
   * owner's balance). Resolves once every account holds what it should; throws otherwise.
   */
  async "register-wifi"(args) {
    const h = harness!;
    if (wifi === null) throw new Error("start-gateway was not given wifi");
    const service = wifi;
    const from = Number(args.from);
    const to = Number(args.to);
    const priceMicrosPerGb = BigInt(String(args.priceMicrosPerGb));
    const stakeMicros = BigInt(String(args.stakeMicros));
    const clientTopupMicros = BigInt(String(args.clientTopupMicros));
    const started = performance.now();
    const indices = Array.from({ length: to - from }, (_, i) => from + i);
    const owners = indices.map((i) => benchWifiAccount(i, "owner"));
    const clients = indices.map((i) => benchWifiAccount(i, "client"));
    const perPackage = service.registrationsPerPackageMax; // one item a package: wifi-billing's registration outputs (≤ 156 bytes) fill W_R at ~300
    const accounts = await registerInBulk(
      h.node,
      tinyParams,
      HARNESS_GATEWAY_KEY,
      service,
      [...owners, ...clients].map((k): RegistrationRecord => ({ publicKey: k.publicKey, kind: "client" })),
      perPackage,
    );
    const topups: WifiAction[] = indices.flatMap((_, j) => [
      { actionId: new Uint8Array(randomBytes(16)), type: "topup" as const, account: deviceIdOf(owners[j]!.publicKey), amountMicros: stakeMicros },
      { actionId: new Uint8Array(randomBytes(16)), type: "topup" as const, account: deviceIdOf(clients[j]!.publicKey), amountMicros: clientTopupMicros },
    ]);
    // One actions item of ACTIONS_PER_ITEM_MAX a package (41 output bytes each, far inside W_R).
    const actionPackages = [];
    for (let i = 0; i < topups.length; i += ACTIONS_PER_ITEM_MAX) {
      const batch = topups.slice(i, i + ACTIONS_PER_ITEM_MAX);
      actionPackages.push([
        {
          serviceId: service.serviceId,
          codeHash: service.codeHash,
          payload: wifiActionsPayload(batch),
          refineGasLimit: 10_000_000n,
          accumulateGasLimit: wifiActionsGas(batch.length),
        },
      ]);
    }
    const funded = await submitInBulk(h.node, tinyParams, HARNESS_GATEWAY_KEY, actionPackages);
    const routers = await registerInBulk(
      h.node,
      tinyParams,
      HARNESS_GATEWAY_KEY,
      service,
      indices.map(
        (i, j): RegistrationRecord => ({
          publicKey: benchDevice(i).key.publicKey,
          kind: "router",
          router: {
            owner: deviceIdOf(owners[j]!.publicKey),
            priceMicrosPerGb,
            stakeMicros,
            capacityBitsPerSecond: 1_000_000_000n,
            attested: false,
            name: `bench router ${i}`,
          },
        }),
      ),
      perPackage,
    );
    // Every account as it should be: the owner's whole top-up locked as the stake, the client's top-up its balance.
    const best = await h.node.bestBlock();
    const wrong: string[] = [];
    for (const [who, keys, balance, locked] of [
      ["owner", owners, 0n, stakeMicros],
      ["client", clients, clientTopupMicros, 0n],
    ] as const) {
      for (const key of keys) {
        const id = deviceIdOf(key.publicKey);
        const value = await h.node.serviceValue(best.headerHash, service.serviceId, accountKey(id));
        const account = value === null ? null : decodeAccount(value);
        if (account === null || !account.ok || account.value.balanceMicros !== balance || account.value.lockedMicros !== locked) {
          if (wrong.length < 3)
            wrong.push(
              `${who} ${id}: ${account === null ? "not registered" : account.ok ? `balance ${account.value.balanceMicros}, locked ${account.value.lockedMicros}` : account.error}`,
            );
          else wrong.push("");
        }
      }
    }
    if (wrong.length > 0)
      throw new Error(
        `${wrong.length} Wi-Fi accounts not as onboarded (want owners 0 + ${stakeMicros} locked, clients ${clientTopupMicros}): ${wrong.filter((w) => w !== "").join("; ")}`,
      );
    return {
      packages: accounts.packages + funded.packages + routers.packages,
      registrations: 3 * indices.length,
      topups: topups.length,
      ms: performance.now() - started,
    };
  },

  /**
   * What the Wi-Fi accounts of routers [from, to) (as register-wifi made them) say was billed:
   * micros the clients were charged (their top-up less their balance) and micros the owners were
   * paid (their balance: the stake took their top-up).
   */
  async "wifi-totals"(args) {
    const h = harness!;
    if (wifi === null) throw new Error("start-gateway was not given wifi");
    const clientTopupMicros = BigInt(String(args.clientTopupMicros));
    const best = await h.node.bestBlock();
    const balanceOf = async (index: number, role: "owner" | "client") => {
      const value = await h.node.serviceValue(best.headerHash, wifi!.serviceId, accountKey(deviceIdOf(benchWifiAccount(index, role).publicKey)));
      const account = value === null ? null : decodeAccount(value);
      if (account === null || !account.ok) throw new Error(`${role} account of router ${index} does not read back`);
      return account.value.balanceMicros;
    };
    let chargedMicros = 0n;
    let paidMicros = 0n;
    for (let i = Number(args.from); i < Number(args.to); i++) {
      chargedMicros += clientTopupMicros - (await balanceOf(i, "client"));
      paidMicros += await balanceOf(i, "owner");
    }
    return { chargedMicros: String(chargedMicros), paidMicros: String(paidMicros) };
  },

  /** Looks devices [from, to) up in the gateway's registry (reads the ledger once per device, then caches). */
  async "warm-registry"(args) {
    const h = harness!;
    const started = performance.now();
    let missing = 0;
    for (let i = Number(args.from); i < Number(args.to); i++) if ((await h.gateway.registry.lookup(benchDevice(i).deviceId)) === null) missing++;
    return { ms: performance.now() - started, missing, cached: h.gateway.registry.size };
  },

  async "start-aedes"() {
    // A bare broker: aedes with the gateway's limits (gateway/broker.ts) and no hooks at all.
    const aedes = await Aedes.createBroker({
      maxTopicLevels: brokerLimits.maxTopicLevels,
      drainTimeout: brokerLimits.drainTimeoutMs,
      queueLimit: brokerLimits.queueLimit,
      concurrency: brokerLimits.concurrency,
      connectTimeout: brokerLimits.connectTimeoutMs,
      keepaliveLimit: brokerLimits.keepaliveLimitS,
    });
    const tcp = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    bare = { aedes, tcp };
    return { port: (tcp.address() as AddressInfo).port, fdLimit: openFilesLimit(), memory: memory() };
  },

  async stats() {
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    const out = {
      at: performance.now(),
      memory: memory(),
      cpu: { mainS: mainThreadCpuS(), processS: processCpuS() },
      eventLoop: { utilization: elu.utilization, delayP50Ms: delay.percentile(50) / 1e6, delayP99Ms: delay.percentile(99) / 1e6, delayMaxMs: delay.max / 1e6 },
      connections: bare?.aedes.connectedClients ?? null,
      gateway: null as null | Record<string, number>,
    };
    delay.reset();
    if (harness !== null) {
      const g = harness.gateway;
      const m = g.metrics;
      out.gateway = {
        accepted: await counterValue(m.accepted),
        rejected: await counterValue(m.rejected),
        settled: await counterValue(m.settled),
        packages: await counterValue(m.packages),
        packagesFailed: await counterValue(m.packagesFailed),
        pending: g.settlement.pendingCount,
        inFlight: g.settlement.inFlightCount,
        logged: g.log.count,
        connections: (await m.connections.get()).values[0]?.value ?? 0,
        bestSlot: harness.node.bestSlot,
      };
    }
    return out;
  },

  gc() {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error("run with --expose-gc");
    for (let i = 0; i < 3; i++) gc();
    return memory();
  },

  trace() {
    return {
      packages: packages.map((p) => ({ ...p })),
      blocks: blocks.slice(),
      warnings: warnings.slice(),
      warningCount,
      errors: harness?.gateway.errorStats() ?? {},
    };
  },

  async "batch-stats"() {
    if (harness === null) return null;
    const m = harness.gateway.metrics;
    const values = (await m.batchEnvelopes.get()).values;
    const sum = values.find((v) => v.metricName === "jamgate_batch_envelopes_sum")?.value ?? 0;
    const count = values.find((v) => v.metricName === "jamgate_batch_envelopes_count")?.value ?? 0;
    return { packages: count, envelopes: sum };
  },

  /** Starts the V8 CPU profiler on this process's main thread (node:inspector). */
  async "profile-start"() {
    profiler ??= new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
    return null;
  },

  /** Stops it and returns the summary (bench/lib/cpuprofile.ts). */
  async "profile-stop"(args) {
    const { profile } = (await profiler!.post("Profiler.stop")) as { profile: object };
    profiler!.disconnect();
    const path = join(tmpdir(), `jamgate-bench-${process.pid}.cpuprofile`);
    writeFileSync(path, JSON.stringify(profile));
    const summary = summarizeProfile(path, Number(args.top ?? 12));
    rmSync(path, { force: true });
    return summary;
  },

  /**
   * Starts the V8 sampling heap profiler on this process's main thread, keeping the objects GC
   * collects: the profile is then where the thread allocates, not what is alive at the end.
   */
  async "alloc-start"() {
    allocProfiler ??= new Session();
    allocProfiler.connect();
    await allocProfiler.post("HeapProfiler.enable");
    await allocProfiler.post("HeapProfiler.startSampling", {
      samplingInterval: 16 * 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return null;
  },

  /** Stops it and returns the summary (bench/lib/allocprofile.ts). */
  async "alloc-stop"(args) {
    const { profile } = (await allocProfiler!.post("HeapProfiler.stopSampling")) as { profile: Parameters<typeof summarizeAllocations>[0] };
    allocProfiler!.disconnect();
    return summarizeAllocations(profile, Number(args.top ?? 20));
  },

  async stop() {
    wifi = null;
    if (http !== null) {
      await http.close();
      http = null;
    }
    if (harness !== null) {
      const dir = harness.dataDir;
      await harness.stop();
      harness = null;
      rmSync(dir, { recursive: true, force: true });
    }
    if (bare !== null) {
      const b = bare;
      bare = null;
      await new Promise<void>((resolve) => b.aedes.close(() => resolve()));
      await new Promise<void>((resolve) => b.tcp.close(() => resolve()));
    }
    return null;
  },
});
