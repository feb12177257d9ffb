/**
 * 10,000 concurrent idle device connections to the gateway on loopback, and what they cost it.
 *
 *   node --import tsx bench/idle-connections.ts [--connections 10000] [--steps 4] [--per-process 5000]
 *        [--hold 10] [--keepalive 1200] [--slot-ms 1000] [--samples 3] [--client raw]
 *
 * The gateway and its embedded node (gateway/testing/harness.ts) run in their own process
 * (bench/lib/gateway-server.ts, with --expose-gc so memory is read after a full GC). Every device
 * is registered on the ledger with its own key: in bulk, 960 registrations per package (items of
 * at most 512; W_R bounds a package to ~1,000), submitted to the node directly (one package per
 * device through gateway/registration.ts would take one core-slot each: 10,000 devices = 5,000 s).
 * Clients are MQTT 3.1.1 (clean session, keepalive --keepalive s, no reconnect), each with its own
 * token, subscribed to its devices/{id}/down/# like a real device: bench/lib/raw-mqtt.ts by default
 * (--client raw; the gateway sees the same packets either way) or mqtt.js (--client mqtt.js).
 * They are spread over child processes of at most --per-process clients (each process needs one
 * fd per client; `ulimit -n` cannot be raised from inside) and over loopback source addresses, 100
 * devices each (the gateway allows a burst of 200 CONNECTs per address).
 *
 * Gateway memory after a full GC, medians of --samples reads. Anonymous RSS is the figure: the
 * file-backed part is LMDB's memory maps. (A) started, devices registered on the ledger; (B) the
 * gateway's registry cache warmed with every device (each connect would do that lookup anyway);
 * then --steps equal steps of connections, memory read after each; (C) all connected and idle for
 * --hold s; (D) all disconnected. Per connection: the least-squares slope of memory over the
 * connection count across the steps (a single before/after difference moves by tens of MB with
 * the node's own allocations), and (C − B) / connections next to it. The main thread is profiled
 * (node:inspector) while the connections sit idle.
 */
import type { ProfileSummary } from "./lib/cpuprofile.ts";
import { Child, gitRevision, openFilesLimit } from "./lib/proc.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, median, table } from "./lib/stats.ts";

const flags = parseFlags("bench/idle-connections.ts", "10,000 concurrent idle device connections to the gateway on loopback, and what they cost it.", {
  connections: { kind: "number", default: 10_000, help: "devices connected, each registered on the ledger with its own key" },
  steps: { kind: "number", default: 4, help: "equal steps of connections, memory read after each" },
  "per-process": { kind: "number", default: 5_000, help: "clients per client process at most (one fd each)" },
  hold: { kind: "number", default: 10, help: "seconds all connections sit idle, main thread profiled" },
  keepalive: { kind: "number", default: 1_200, help: "the clients' MQTT keepalive, s" },
  "slot-ms": { kind: "number", default: 1_000, help: "the node's slot, ms" },
  samples: { kind: "number", default: 3, help: "memory reads per point (the median is shown)" },
  client: { kind: "string", default: "raw", choices: ["raw", "mqtt.js"], help: "the devices' MQTT client (bench/lib/loadgen.ts)" },
});
const CONNECTIONS = flags.connections;
const STEPS = flags.steps;
const PER_PROCESS = flags["per-process"];
const HOLD_S = flags.hold;
const KEEPALIVE_S = flags.keepalive;
const SLOT_MS = flags["slot-ms"];
const SAMPLES = flags.samples;
const CLIENT = flags.client;
const TARGET = 10_000;

if (CONNECTIONS > 19_000) throw new Error("bounded: at most 19,000 connections (the gateway process's fd limit here is 20,000)");

const progress = (msg: string) => process.stderr.write(`[idle-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (b: number) => b / 1024 ** 2;

interface Memory {
  rss: number;
  rssAnon: number;
  rssFile: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
type Stats = { at: number; cpu: { processS: number; mainS: number }; gateway: { connections: number } };
type ConnectResult = { ms: number; connected: number; errors: Record<string, number> };

/** Least-squares slope of y over x. */
function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

const own = openFilesLimit();
const REVISION = gitRevision();
progress(`code ${REVISION}; machine: ${JSON.stringify(machine())}; fd limit of this process: soft ${own.soft}, hard ${own.hard}`);
const perProcess = Math.min(PER_PROCESS, own.soft - 200);
const processes = Math.ceil(CONNECTIONS / perProcess);

const server = await Child.start("gateway", new URL("./lib/gateway-server.ts", import.meta.url), ["--expose-gc"]);
const clients: Child[] = [];
try {
  const started = await server.call<{ port: number; fdLimit: { soft: number; hard: number } }>("start-gateway", { slotMs: SLOT_MS, batchMs: 200 });
  progress(
    `gateway on port ${started.port}, fd limit soft ${started.fdLimit.soft}, hard ${started.fdLimit.hard}${started.fdLimit.soft < CONNECTIONS + 100 ? " — TOO LOW for the connections asked" : ""}`,
  );
  const memorySample = async (): Promise<Memory> => {
    const xs: Memory[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      xs.push(await server.call<Memory>("gc"));
      await sleep(500);
    }
    const m = (k: keyof Memory) => median(xs.map((x) => x[k]));
    return {
      rss: m("rss"),
      rssAnon: m("rssAnon"),
      rssFile: m("rssFile"),
      heapUsed: m("heapUsed"),
      heapTotal: m("heapTotal"),
      external: m("external"),
      arrayBuffers: m("arrayBuffers"),
    };
  };

  const reg = await server.call<{ packages: number; ms: number }>("register", { from: 0, to: CONNECTIONS });
  progress(`${fmt(CONNECTIONS)} devices registered in ${reg.packages} packages, ${(reg.ms / 1000).toFixed(1)} s`);
  await sleep(3 * SLOT_MS);
  const memA = await memorySample();
  const warm = await server.call<{ ms: number; missing: number; cached: number }>("warm-registry", { from: 0, to: CONNECTIONS });
  if (warm.missing > 0) throw new Error(`${warm.missing} devices are not registered`);
  await sleep(3 * SLOT_MS);
  const memB = await memorySample();
  progress(
    `registry warmed (${fmt(warm.cached)} cached, ${(warm.ms / 1000).toFixed(1)} s); anonymous RSS ${fmt(MiB(memA.rssAnon))} → ${fmt(MiB(memB.rssAnon))} MiB`,
  );

  for (let p = 0; p < processes; p++) clients.push(await Child.start(`clients-${p}`, new URL("./lib/loadgen.ts", import.meta.url), ["--expose-gc"]));
  const points: { n: number; m: Memory }[] = [{ n: 0, m: memB }];
  const errors: Record<string, number> = {};
  let connected = 0;
  let connectMs = 0;
  for (let step = 1; step <= STEPS; step++) {
    const from = Math.round(((step - 1) * CONNECTIONS) / STEPS);
    const to = Math.round((step * CONNECTIONS) / STEPS);
    const calls: Promise<ConnectResult>[] = [];
    for (let p = 0; p < processes; p++) {
      const a = Math.max(from, p * perProcess);
      const b = Math.min(to, (p + 1) * perProcess);
      if (a < b)
        calls.push(
          clients[p]!.call<ConnectResult>("connect", {
            from: a,
            to: b,
            append: true,
            port: started.port,
            keepaliveS: KEEPALIVE_S,
            subscribe: "down",
            concurrency: 100,
            client: CLIENT,
          }),
        );
    }
    const t0 = performance.now();
    const results = await Promise.all(calls);
    connectMs += performance.now() - t0;
    for (const r of results) {
      connected += r.connected;
      for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    }
    await sleep(2_000);
    points.push({ n: connected, m: await memorySample() });
    progress(`step ${step}: ${fmt(connected)} connected (${(connectMs / 1000).toFixed(1)} s so far); anonymous RSS ${fmt(MiB(points.at(-1)!.m.rssAnon))} MiB`);
  }

  const s0 = await server.call<Stats>("stats");
  progress(`holding ${HOLD_S} s idle (main thread profiled)…`);
  await server.call("profile-start");
  await sleep(HOLD_S * 1000);
  const profile = await server.call<ProfileSummary>("profile-stop", { top: 8 });
  const s1 = await server.call<Stats>("stats");
  const memC = await memorySample();
  const stillConnected = (await Promise.all(clients.map((c) => c.call<{ connected: number }>("stats")))).reduce((s, x) => s + x.connected, 0);
  const clientRss = (await Promise.all(clients.map((c) => c.call<number>("gc")))).reduce((s, x) => s + x, 0);
  const idleCores = (s1.cpu.processS - s0.cpu.processS) / ((s1.at - s0.at) / 1000);
  const idleMainCores = (s1.cpu.mainS - s0.cpu.mainS) / ((s1.at - s0.at) / 1000);
  const gatewayConnections = s1.gateway.connections;

  const disconnectStart = performance.now();
  await Promise.all(clients.map((c) => c.call("disconnect")));
  const disconnectMs = performance.now() - disconnectStart;
  await sleep(2_000);
  const memD = await memorySample();

  const kib = (bytes: number) => (bytes / 1024).toFixed(1);
  const per = (x: number) => kib(x / Math.max(1, connected));
  // The slope over the steps alone: (B) is read before any client process exists and drifts with the node's own allocations.
  const fitted = points.length > 2 ? points.slice(1) : points;
  const fit = (k: keyof Memory) => slope(fitted.map((p) => ({ x: p.n, y: p.m[k] })));
  const row = (label: string, m: Memory) => [
    label,
    fmt(MiB(m.rss), 1),
    fmt(MiB(m.rssAnon), 1),
    fmt(MiB(m.rssFile), 1),
    fmt(MiB(m.heapUsed), 1),
    fmt(MiB(m.external), 1),
  ];
  console.log(
    `\nidle connections (code ${REVISION}): ${fmt(connected)} devices connected to the gateway on loopback (${CLIENT} MQTT clients, ${processes} client processes, ${fmt(Math.ceil(CONNECTIONS / 100))} source addresses), keepalive ${KEEPALIVE_S} s, each subscribed to devices/{id}/down/#\n`,
  );
  console.log(
    table(
      [`gateway process memory after full GC (MiB, median of ${SAMPLES})`, "RSS", "anonymous", "file-backed", "V8 heap used", "external"],
      [
        row("(A) started, devices registered on the ledger", memA),
        row(`(B) + registry cache of ${fmt(warm.cached)} devices`, memB),
        ...points.slice(1).map((p, i) => row(`    step ${i + 1}: ${fmt(p.n)} connected`, p.m)),
        row(`(C) ${fmt(connected)} connected, after ${HOLD_S} s idle`, memC),
        row("(D) after every client disconnected", memD),
      ],
    ),
  );
  console.log("(file-backed RSS is LMDB's memory-mapped state, chunks and log: pages the kernel maps in and out, not the connections' cost)");
  console.log();
  console.log(
    table(
      ["per connection / per device (KiB)", "anonymous RSS", "RSS", "V8 heap used", "external"],
      [
        [`per idle connection: slope over the ${fitted.length} steps`, kib(fit("rssAnon")), kib(fit("rss")), kib(fit("heapUsed")), kib(fit("external"))],
        [
          "per idle connection: (C − B) / connections",
          per(memC.rssAnon - memB.rssAnon),
          per(memC.rss - memB.rss),
          per(memC.heapUsed - memB.heapUsed),
          per(memC.external - memB.external),
        ],
        [
          "per cached registered device: (B − A) / devices",
          per(memB.rssAnon - memA.rssAnon),
          per(memB.rss - memA.rss),
          per(memB.heapUsed - memA.heapUsed),
          per(memB.external - memA.external),
        ],
      ],
    ),
  );
  console.log();
  console.log(
    table(
      ["other figures", "value"],
      [
        ["fd limit (soft/hard): gateway process", `${started.fdLimit.soft} / ${started.fdLimit.hard}`],
        ["fd limit (soft/hard): this process and each client process", `${own.soft} / ${own.hard}; ${fmt(perProcess)} clients per process at most`],
        ["registration: devices / packages / time", `${fmt(CONNECTIONS)} / ${reg.packages} / ${(reg.ms / 1000).toFixed(1)} s`],
        ["connect + subscribe, all steps (wall)", `${(connectMs / 1000).toFixed(1)} s (${fmt(connected / (connectMs / 1000))}/s)`],
        ["connected: gateway's gauge / clients after the hold", `${fmt(gatewayConnections)} / ${fmt(stillConnected)}`],
        [
          "gateway CPU while idle, all threads / main thread (cores; blocks are still authored every slot)",
          `${idleCores.toFixed(3)} / ${idleMainCores.toFixed(3)}`,
        ],
        ["client processes' RSS, total (MiB)", fmt(MiB(clientRss))],
        ["disconnect all (wall)", `${(disconnectMs / 1000).toFixed(1)} s`],
        ["connect errors", Object.keys(errors).length === 0 ? "none" : JSON.stringify(errors)],
      ],
    ),
  );
  console.log(`\nmain thread while idle (${HOLD_S} s profile): busy ${fmt(profile.busyMs)} ms of ${fmt(profile.wallMs)} ms`);
  console.log(
    table(
      ["self time (top functions)", "ms", "share of busy"],
      profile.self.slice(0, 8).map((x) => [x.name.slice(0, 100), fmt(x.ms), `${(x.share * 100).toFixed(1)}%`]),
    ),
  );
  console.log(
    table(
      ["total time (inclusive)", "ms", "share of busy"],
      profile.total.slice(0, 10).map((x) => [x.name.slice(0, 100), fmt(x.ms), `${(x.share * 100).toFixed(1)}%`]),
    ),
  );
  const met = connected >= TARGET && stillConnected >= TARGET && gatewayConnections >= TARGET;
  const perConn = fit("rssAnon");
  console.log(
    `\ntarget: ${fmt(TARGET)} concurrent idle device connections: ${met ? "MET" : "MISSED"} (${fmt(connected)} connected, ${fmt(stillConnected)} still connected after ${HOLD_S} s); ` +
      `~${kib(perConn)} KiB of gateway memory (anonymous RSS) per idle connection, ${fmt(MiB(perConn * connected))} MiB for all of them`,
  );
  const r1 = (x: number) => Number(x.toFixed(1));
  console.log(
    JSON.stringify({
      revision: REVISION,
      connections: connected,
      stillConnected,
      client: CLIENT,
      clientProcesses: processes,
      gatewayFdLimit: started.fdLimit.soft,
      anonRssMiB: {
        a: r1(MiB(memA.rssAnon)),
        b: r1(MiB(memB.rssAnon)),
        steps: points.slice(1).map((p) => r1(MiB(p.m.rssAnon))),
        c: r1(MiB(memC.rssAnon)),
        d: r1(MiB(memD.rssAnon)),
      },
      rssMiB: { a: r1(MiB(memA.rss)), b: r1(MiB(memB.rss)), c: r1(MiB(memC.rss)), d: r1(MiB(memD.rss)) },
      perConnectionKiB: {
        anonRssSlope: r1(fit("rssAnon") / 1024),
        anonRssCminusB: r1((memC.rssAnon - memB.rssAnon) / connected / 1024),
        heapSlope: r1(fit("heapUsed") / 1024),
        externalSlope: r1(fit("external") / 1024),
      },
      perCachedDeviceKiB: r1((memB.rssAnon - memA.rssAnon) / connected / 1024),
      connectS: r1(connectMs / 1000),
      idleCores: Number(idleCores.toFixed(3)),
      idleMainCores: Number(idleMainCores.toFixed(3)),
      targetMet: met,
    }),
  );
  await server.call("stop");
} finally {
  await Promise.all(clients.map((c) => c.stop()));
  await server.stop();
}
