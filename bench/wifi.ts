/**
 * Wi-Fi billing's throughput end to end beside the energy path's, and refine's compression of a
 * full package of usage updates.
 *
 *   node --import tsx bench/wifi.ts [--devices 1000] [--rate 5000] [--outstanding 25000] [--rounds 3]
 *        [--duration 15] [--warmup 5] [--drain 90] [--slot-ms 1000] [--batch-ms 200] [--readings 60]
 *        [--session-updates 10] [--refine-runs 5] [--part all|e2e|refine] [--client raw|mqtt.js] [--quick]
 *
 * 1. End to end, on loopback: one gateway with its embedded node (bench/lib/gateway-server.ts,
 *    with the wifi-billing service of the built-in genesis beside telemetry), and two load
 *    generators (bench/lib/loadgen.ts), one per path, each with --devices MQTT clients:
 *    - energy: meters publishing envelopes of --readings meter readings (the SDK's column body),
 *      as bench/gateway.ts does; a meter is telemetry's, as `jamgate start` registers one;
 *    - wifi: routers publishing `router.usage` envelopes (devices/wifi.ts sessions of
 *      --session-updates updates: Start, Interim-Updates, Stop), each update countersigned by the
 *      router's client (its voucher); every router onboarded as an operator does it: owner and
 *      client accounts registered and topped up, the router registered with its owner's stake.
 *    The two paths run one after the other, energy then wifi, --rounds times (E W E W …), so the
 *    machine's noise falls on both alike. Each run offers --rate envelopes/s for --warmup +
 *    --duration s, holding back while --outstanding envelopes are published and not yet answered
 *    (receipted or refused): a path that settles less than the rate is offered what it settles
 *    plus that backlog, so what it settles per second is its ceiling. Then up to --drain s for the
 *    last receipts, and until the gateway has nothing pending or in flight, before the next run.
 *    A wifi envelope is settled when its package is accumulated: its update verified (the router's
 *    signature and the client's voucher, chained and monotonic) and billed (the client's balance
 *    charged, the owner paid, a ledger entry written), and receipted to the router.
 * 2. Refine compression: an envelopes item of usage updates at the package's limits
 *    (ENVELOPES_PER_ITEM_MAX envelopes, ENVELOPE_DEVICES_PER_ITEM_MAX routers), refined by
 *    services/wifi-billing's refine on a warmed 1-thread RefinePool with the node's crypto (as
 *    bench/refine-gas.ts runs refine): bytes in (the item payload) against bytes out (refine's
 *    output, what accumulate and the work report carry), and refine time per update, for a few
 *    shapes of the same ENVELOPES_PER_ITEM_MAX updates.
 *
 * --quick is a smoke run (20 devices, 1 round of 2 + 4 s, 1 refine run); flags given beside it win.
 * Figures depend on the machine being otherwise idle: each run prints the CPU other processes took.
 */
import { decodeEnvelope, signingBytes } from "../devices/envelope.ts";
import { tinyParams } from "../node/chain/params.ts";
import { hash } from "../node/crypto/hash.ts";
import { RefinePool } from "../node/guarantor/refine-pool.ts";
import type { RefineTask } from "../node/refine/task.ts";
import { decodeRefineOutput } from "../services/wifi-billing/output.ts";
import {
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  ENVELOPES_PER_ITEM_MAX,
  OCTETS_PER_GB,
  PRICE_MICROS_PER_GB_MAX,
  STAKE_MICROS_MAX,
  TOPUP_MICROS_MAX,
  wifiEnvelopesPayload,
  WifiItemKind,
} from "../services/wifi-billing/types.ts";
import { parseFlags } from "./lib/args.ts";
import { benchDevice, ROUTER_INDEX_BASE, signedUsageEnvelopes, USAGE_INPUT_OCTETS_PER_UPDATE, USAGE_OUTPUT_OCTETS_PER_UPDATE } from "./lib/devices.ts";
import type { PackageTrace } from "./lib/gateway-server.ts";
import { Child, gitRevision, machineCpuS, processCpuS } from "./lib/proc.ts";
import { fmt, machine, max, median, min, table } from "./lib/stats.ts";

const ABOUT = "Wi-Fi billing end to end beside the energy path (alternating runs), and refine's compression of a full package of usage updates.";
const flags = parseFlags("bench/wifi.ts", ABOUT, {
  devices: { kind: "number", default: 1_000, help: "devices per path: meters for energy, routers for wifi (one MQTT client each)" },
  rate: { kind: "number", default: 5_000, help: "envelopes offered per second in each run (open loop, held back by --outstanding)" },
  outstanding: { kind: "number", default: 25_000, help: "envelopes published and not yet answered at most, per run: a slower path's backlog" },
  rounds: { kind: "number", default: 3, help: "rounds; each runs energy, then wifi" },
  duration: { kind: "number", default: 15, help: "seconds measured in each run, after the warm-up" },
  warmup: { kind: "number", default: 5, help: "seconds of load before the measured part of each run" },
  drain: { kind: "number", default: 90, help: "seconds to wait for the last receipts after a run, and again for the gateway to empty" },
  "slot-ms": { kind: "number", default: 1_000, help: "the node's slot, ms" },
  "batch-ms": { kind: "number", default: 200, help: "the gateway's batch deadline, ms" },
  readings: { kind: "number", default: 60, help: "meter readings per energy envelope" },
  "session-updates": { kind: "number", default: 10, help: "updates per Wi-Fi session (Start, Interim-Updates, Stop)" },
  "refine-runs": { kind: "number", default: 5, help: "timed refines of each compression case (after one cold run)" },
  part: { kind: "string", default: "all", choices: ["all", "e2e", "refine"], help: "what to measure: both parts, end to end only, or refine compression only" },
  // As in bench/gateway.ts: "raw" (bench/lib/raw-mqtt.ts, pre-encoded frames) takes less of the CPU the gateway shares with it here.
  client: { kind: "string", default: "raw", choices: ["raw", "mqtt.js"], help: "the simulated devices' MQTT client" },
  quick: {
    kind: "boolean",
    help: "smoke run: --devices 20 --rate 200 --outstanding 2000 --rounds 1 --duration 4 --warmup 2 --drain 30 --session-updates 5 --refine-runs 1 (flags given win)",
  },
});

/** A flag given on the command line (so --quick leaves it as given). */
const given = (name: string) => process.argv.slice(2).some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
const QUICK: Record<string, number> = {
  devices: 20,
  rate: 200,
  outstanding: 2_000,
  rounds: 1,
  duration: 4,
  warmup: 2,
  drain: 30,
  "session-updates": 5,
  "refine-runs": 1,
};
const num = (name: keyof typeof flags & string): number => (flags.quick && name in QUICK && !given(name) ? QUICK[name]! : (flags[name] as number));

/** Each flag's bounds: what one run on this 2-core machine can hold (memory of pre-signed envelopes, registrations, wall time). */
const BOUNDS: Record<string, [number, number]> = {
  devices: [1, 10_000],
  rate: [1, 20_000],
  outstanding: [1, 200_000],
  rounds: [1, 10],
  duration: [1, 120],
  warmup: [0, 60],
  drain: [1, 600],
  "slot-ms": [100, 6_000],
  "batch-ms": [0, 6_000],
  readings: [1, 600],
  // At least 2, so every session ends with its Stop (the service bounds a router's open sessions).
  "session-updates": [2, 100_000],
  "refine-runs": [1, 50],
};
const value: Record<string, number> = {};
for (const [name, [lo, hi]] of Object.entries(BOUNDS)) {
  const x = num(name as keyof typeof flags & string);
  if (!Number.isInteger(x) || x < lo || x > hi) {
    process.stderr.write(`bench/wifi.ts: --${name} takes an integer in ${fmt(lo)} .. ${fmt(hi)}, not ${x}\n`);
    process.exit(2);
  }
  value[name] = x;
}
const DEVICES = value.devices!;
const RATE = value.rate!;
const OUTSTANDING = value.outstanding!;
const ROUNDS = value.rounds!;
const DURATION_S = value.duration!;
const WARMUP_S = value.warmup!;
const DRAIN_S = value.drain!;
const SLOT_MS = value["slot-ms"]!;
const BATCH_MS = value["batch-ms"]!;
const READINGS = value.readings!;
const SESSION_UPDATES = value["session-updates"]!;
const REFINE_RUNS = value["refine-runs"]!;
const PART = flags.part;
const CLIENT = flags.client;
/** Envelopes pre-signed per device and path: every round at the full rate (a held-back run uses fewer). */
const PER_RUN = Math.ceil(RATE * (WARMUP_S + DURATION_S));
const PER_DEVICE = Math.ceil((PER_RUN * ROUNDS) / DEVICES) + 1;
/** Envelopes pre-signed per path at most: ~500 MB of frames in each load generator. */
const PRESIGNED_MAX = 1_000_000;
if (PER_DEVICE * DEVICES > PRESIGNED_MAX) {
  process.stderr.write(
    `bench/wifi.ts: ${fmt(PER_DEVICE * DEVICES)} envelopes per path to pre-sign (rate × (warm-up + duration) × rounds) > ${fmt(PRESIGNED_MAX)}: lower --rate, --duration or --rounds\n`,
  );
  process.exit(2);
}

/** The routers' terms and their accounts' top-ups (services/wifi-billing/README.md): $0.50/GB as Helium Mobile's offload, a client funded far past any run. */
const PRICE_MICROS_PER_GB = 500_000n;
const STAKE_MICROS = 1_000_000n;
const CLIENT_TOPUP_MICROS = TOPUP_MICROS_MAX;
if (PRICE_MICROS_PER_GB > PRICE_MICROS_PER_GB_MAX || STAKE_MICROS > STAKE_MICROS_MAX) throw new Error("bench terms outside the service's limits");

const progress = (msg: string) => process.stderr.write(`[wifi-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const SERVER = new URL("./lib/gateway-server.ts", import.meta.url);
const LOADGEN = new URL("./lib/loadgen.ts", import.meta.url);
const REVISION = gitRevision();
const mc = machine();

// --- 1. end to end ------------------------------------------------------------------------------

type Path = "energy" | "wifi";
/** What bench/lib/loadgen.ts run-open reports (the fields used here). */
interface OpenRun {
  published: number;
  receipted: number;
  offeredPerS: number;
  acceptedPerS: number;
  settledPerS: number;
  settledBlockAligned: boolean;
  inWindow: number;
  unsettled: number;
  unacked: number;
  settledAll: boolean;
  drainS: number;
  duplicates: number;
  errors: Record<string, number>;
  receiptMs: { p50: number; p99: number; max: number; slots: { p50: number; p99: number } };
}
interface ServerStats {
  at: number;
  cpu: { processS: number };
  gateway: { pending: number; inFlight: number; accepted: number; settled: number; bestSlot: number } | null;
}
interface RunResult {
  path: Path;
  round: number;
  run: OpenRun;
  /** Cores over the run (load and drain) from CPU time: the gateway process, both load generators and this one, and the rest of the machine. */
  cores: { gateway: number; loadgens: number; others: number };
  /** The gateway's envelopes packages packed during the run. */
  packages: { count: number; envelopesMedian: number; envelopesMax: number };
  quiet: boolean;
}

async function endToEnd() {
  const server = await Child.start("gateway", SERVER, ["--stack-trace-limit=40"]);
  const loadgens: Record<Path, Child> = { energy: await Child.start("loadgen-energy", LOADGEN), wifi: await Child.start("loadgen-wifi", LOADGEN) };
  try {
    const started = await server.call<{ port: number; priorities: { lowered: number; nice: number | null } | null; nodeThreads: number }>("start-gateway", {
      slotMs: SLOT_MS,
      batchMs: BATCH_MS,
      wifi: true,
    });
    progress(`gateway on port ${started.port}; registering ${DEVICES} meters (telemetry) and ${DEVICES} routers with their owners and clients (wifi-billing)…`);
    const meters = await server.call<{ packages: number; ms: number }>("register", { from: 0, to: DEVICES });
    const routers = await server.call<{ packages: number; ms: number; registrations: number; topups: number }>("register-wifi", {
      from: ROUTER_INDEX_BASE,
      to: ROUTER_INDEX_BASE + DEVICES,
      priceMicrosPerGb: String(PRICE_MICROS_PER_GB),
      stakeMicros: String(STAKE_MICROS),
      clientTopupMicros: String(CLIENT_TOPUP_MICROS),
    });
    for (const [from, what] of [
      [0, "meters"],
      [ROUTER_INDEX_BASE, "routers"],
    ] as const) {
      const warm = await server.call<{ missing: number }>("warm-registry", { from, to: from + DEVICES });
      if (warm.missing > 0) throw new Error(`${warm.missing} ${what} not registered`);
    }
    progress(
      `registered: meters in ${meters.packages} packages (${(meters.ms / 1000).toFixed(1)} s); ${routers.registrations} Wi-Fi registrations and ${routers.topups} top-ups in ${routers.packages} packages (${(routers.ms / 1000).toFixed(1)} s)`,
    );

    progress(`pre-signing ${fmt(PER_DEVICE * DEVICES)} envelopes per path (${DEVICES} devices × ${PER_DEVICE})…`);
    const prepared = {
      energy: await loadgens.energy.call<{ ms: number; envelopeBytesMedian: number }>("prepare", {
        from: 0,
        to: DEVICES,
        perDevice: PER_DEVICE,
        readings: READINGS,
        body: "columns",
        kind: "meter.reading",
      }),
      wifi: await loadgens.wifi.call<{ ms: number; envelopeBytesMedian: number }>("prepare", {
        from: ROUTER_INDEX_BASE,
        to: ROUTER_INDEX_BASE + DEVICES,
        perDevice: PER_DEVICE,
        kind: "router.usage",
        sessionUpdates: SESSION_UPDATES,
      }),
    };
    progress(
      `signed: energy ${(prepared.energy.ms / 1000).toFixed(1)} s (${prepared.energy.envelopeBytesMedian} bytes an envelope), wifi ${(prepared.wifi.ms / 1000).toFixed(1)} s (${prepared.wifi.envelopeBytesMedian} bytes)`,
    );
    for (const path of ["energy", "wifi"] as const) {
      const c = await loadgens[path].call<{ connected: number; errors: object; ms: number }>("connect", {
        from: path === "energy" ? 0 : ROUTER_INDEX_BASE,
        to: (path === "energy" ? 0 : ROUTER_INDEX_BASE) + DEVICES,
        port: started.port,
        subscribe: "down",
        client: CLIENT,
      });
      if (c.connected !== DEVICES) throw new Error(`${path}: ${c.connected} of ${DEVICES} connected: ${JSON.stringify(c.errors)}`);
    }
    progress(`${DEVICES} meters and ${DEVICES} routers connected (${CLIENT} clients)`);

    const results: RunResult[] = [];
    const offsets: Record<Path, number> = { energy: 0, wifi: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of ["energy", "wifi"] as const) {
        const load = loadgens[path];
        const s0 = await server.call<ServerStats>("stats");
        const c0 = { machine: machineCpuS().busy, loadgens: await loadgenCpuS(loadgens), self: processCpuS(), at: performance.now() };
        progress(`round ${round + 1}/${ROUNDS}, ${path}: offering ${fmt(RATE)}/s (at most ${fmt(OUTSTANDING)} unanswered) for ${WARMUP_S} + ${DURATION_S} s`);
        const run = await load.call<OpenRun>("run-open", {
          rate: RATE,
          warmupMs: WARMUP_S * 1000,
          measureMs: DURATION_S * 1000,
          drainMs: DRAIN_S * 1000,
          slotMs: SLOT_MS,
          offset: offsets[path],
          outstandingMax: OUTSTANDING,
        });
        offsets[path] += run.published;
        const quiet = await quiesce(server);
        const s1 = await server.call<ServerStats>("stats");
        const c1 = { machine: machineCpuS().busy, loadgens: await loadgenCpuS(loadgens), self: processCpuS(), at: performance.now() };
        const spanS = (c1.at - c0.at) / 1000;
        const gateway = (s1.cpu.processS - s0.cpu.processS) / spanS;
        const loadgenCores = (c1.loadgens - c0.loadgens) / spanS;
        const others = Math.max(0, (c1.machine - c0.machine) / spanS - gateway - loadgenCores - (c1.self - c0.self) / spanS);
        const trace = await server.call<{ packages: PackageTrace[] }>("trace");
        const sizes = trace.packages.filter((p) => p.packStartAt >= s0.at && p.packStartAt < s1.at).map((p) => p.envelopes);
        results.push({
          path,
          round,
          run,
          cores: { gateway, loadgens: loadgenCores, others },
          packages: { count: sizes.length, envelopesMedian: median(sizes), envelopesMax: max(sizes) },
          quiet,
        });
        progress(
          `  settled ${fmt(run.settledPerS)}/s of ${fmt(run.offeredPerS)}/s offered, p99 receipt ${run.receiptMs.slots.p99.toFixed(2)} slots, ${fmt(run.unsettled)} unsettled, refused ${JSON.stringify(run.errors)}; ${sizes.length} packages (median ${fmt(median(sizes))} envelopes); other processes ${others.toFixed(2)} cores${quiet ? "" : "; THE GATEWAY DID NOT EMPTY within --drain"}`,
        );
      }
    }
    // What was billed, read back from the accounts: every receipted update is 5 MB at the routers' price, nothing else charges the clients.
    const totals = await server.call<{ chargedMicros: string; paidMicros: string }>("wifi-totals", {
      from: ROUTER_INDEX_BASE,
      to: ROUTER_INDEX_BASE + DEVICES,
      clientTopupMicros: String(CLIENT_TOPUP_MICROS),
    });
    const billing = {
      chargedMicros: BigInt(totals.chargedMicros),
      paidMicros: BigInt(totals.paidMicros),
      updates: results.filter((x) => x.path === "wifi").reduce((n, x) => n + x.run.receipted, 0),
    };
    for (const l of Object.values(loadgens)) await l.call("disconnect");
    await server.call("stop");
    return { results, prepared, billing };
  } finally {
    for (const l of Object.values(loadgens)) await l.stop();
    await server.stop();
  }
}

async function loadgenCpuS(loadgens: Record<Path, Child>): Promise<number> {
  let s = 0;
  for (const l of Object.values(loadgens)) s += (await l.call<{ cpu: { processS: number } }>("stats")).cpu.processS;
  return s;
}

/** Waits until the gateway has nothing pending or in flight (the last run's backlog settled), up to --drain s; false if it did not. */
async function quiesce(server: Child): Promise<boolean> {
  const deadline = performance.now() + DRAIN_S * 1000;
  for (;;) {
    const g = (await server.call<ServerStats>("stats")).gateway;
    if (g !== null && g.pending === 0 && g.inFlight === 0) return true;
    if (performance.now() > deadline) return false;
    await sleep(200);
  }
}

// --- 2. refine compression ---------------------------------------------------------------------

const WIFI_URL = new URL("../services/wifi-billing/service.ts", import.meta.url).href;
const REFINE_GAS_LIMIT = 10_000_000_000n;
const START_MS = 1_750_000_000_000;

interface CompressionCase {
  readonly name: string;
  readonly routers: number;
  /** Updates per session: a router's updates are one session when this is at least its share. */
  readonly sessionUpdates: number;
  readonly attested: boolean;
}

/** The same ENVELOPES_PER_ITEM_MAX updates in shapes that condense more or less. */
const PER_ITEM = ENVELOPES_PER_ITEM_MAX;
const ROUTERS_MAX = ENVELOPE_DEVICES_PER_ITEM_MAX;
const CASES: readonly CompressionCase[] = [
  { name: `${ROUTERS_MAX} routers, one session each`, routers: ROUTERS_MAX, sessionUpdates: Math.ceil(PER_ITEM / ROUTERS_MAX), attested: false },
  { name: "8 routers, one session each", routers: 8, sessionUpdates: Math.ceil(PER_ITEM / 8), attested: false },
  { name: "1 router, one session", routers: 1, sessionUpdates: PER_ITEM, attested: false },
  { name: `${ROUTERS_MAX} routers, a session per update (worst)`, routers: ROUTERS_MAX, sessionUpdates: 1, attested: false },
  {
    name: `${ROUTERS_MAX} routers, one session each, router-attested (no vouchers)`,
    routers: ROUTERS_MAX,
    sessionUpdates: Math.ceil(PER_ITEM / ROUTERS_MAX),
    attested: true,
  },
];

/** Router r's share of the item's updates (as even as whole envelopes allow). */
const shareOf = (c: CompressionCase, r: number) => Math.floor(PER_ITEM / c.routers) + (r < PER_ITEM % c.routers ? 1 : 0);
/** Session deltas refine should output: a router's sessions, each condensed to one. */
const sessionsOf = (c: CompressionCase) => Array.from({ length: c.routers }, (_, r) => Math.ceil(shareOf(c, r) / c.sessionUpdates)).reduce((a, b) => a + b, 0);

/** The envelopes item of a case, as the gateway builds it (wifiEnvelopesPayload: sorted by router and seq). */
function casePayload(c: CompressionCase): Uint8Array {
  const records = [];
  for (let r = 0; r < c.routers; r++) {
    const router = benchDevice(ROUTER_INDEX_BASE + r);
    for (const wire of signedUsageEnvelopes(router, shareOf(c, r), START_MS, { sessionUpdates: c.sessionUpdates, attested: c.attested })) {
      const decoded = decodeEnvelope(wire);
      if (!decoded.ok) throw new Error(`${c.name}: an envelope does not decode`);
      records.push({ publicKey: router.key.publicKey, signingBytes: signingBytes(decoded.envelope), signature: decoded.envelope.signature });
    }
  }
  return wifiEnvelopesPayload(records);
}

async function refineCompression() {
  const pool = new RefinePool({ coresCount: 1, refineTimeoutMs: 600_000, preloadModuleUrls: [WIFI_URL] });
  await pool.warm();
  const rows: { c: CompressionCase; bytesIn: number; bytesOut: number; sessions: number; gasUsed: bigint; coldMs: number; ms: number[] }[] = [];
  try {
    for (const c of CASES) {
      const payload = casePayload(c);
      const task: RefineTask = {
        packageHash: hash(payload),
        coreIndex: 0,
        items: [{ serviceId: 1, moduleUrl: WIFI_URL, payload, gasLimit: REFINE_GAS_LIMIT }],
        availability: null,
      };
      const ms: number[] = [];
      let coldMs = 0;
      let out: Uint8Array | null = null;
      let gasUsed = 0n;
      for (let run = 0; run <= REFINE_RUNS; run++) {
        const t0 = performance.now();
        const outcome = await pool.run(task);
        const t = performance.now() - t0;
        if (!outcome.ok) throw new Error(`${c.name}: ${outcome.detail}`);
        const item = outcome.result.items[0]!;
        if (!item.ok) throw new Error(`${c.name}: ${item.code} ${item.detail}`);
        out = item.output;
        gasUsed = item.gasUsed;
        if (run === 0) coldMs = t;
        else ms.push(t);
      }
      // Every update accepted and condensed as the case says: a refused one would make the figure a lie.
      const decoded = decodeRefineOutput(out!);
      if (!decoded.ok || decoded.value.kind !== WifiItemKind.envelopes) throw new Error(`${c.name}: refine output does not decode as an envelopes output`);
      const routers = decoded.value.routers;
      const refused = routers.reduce((n, r) => n + r.rejected.length, 0);
      const sessions = routers.reduce((n, r) => n + r.sessions.length, 0);
      const expected = sessionsOf(c);
      if (refused !== 0 || sessions !== expected)
        throw new Error(`${c.name}: ${refused} updates refused, ${sessions} session deltas (expected 0 and ${expected})`);
      rows.push({ c, bytesIn: payload.length, bytesOut: out!.length, sessions, gasUsed, coldMs, ms });
      progress(`refine: ${c.name}: ${fmt(payload.length)} → ${fmt(out!.length)} bytes, ${fmt(median(ms), 1)} ms`);
    }
  } finally {
    await pool.close();
  }
  return rows;
}

// --- run and report ----------------------------------------------------------------------------

progress(`machine: ${JSON.stringify(mc)}, code ${REVISION}${flags.quick ? ", --quick (smoke run: figures mean nothing)" : ""}`);
const e2e = PART === "refine" ? null : await endToEnd();
const compression = PART === "e2e" ? null : await refineCompression();

const slots = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "∞");
const range = (xs: number[], d = 0) => `${fmt(median(xs), d)} (${fmt(min(xs), d)}–${fmt(max(xs), d)})`;
const summary: Record<string, unknown> = { bench: "wifi", revision: REVISION, quick: flags.quick, cpus: mc.cpus };

if (e2e !== null) {
  const { results, prepared, billing } = e2e;
  const bound = (tinyParams.coresCount * ENVELOPES_PER_ITEM_MAX * 1000) / SLOT_MS;
  console.log(
    `\nend to end (code ${REVISION}): ${fmt(DEVICES)} devices a path (${CLIENT} MQTT clients), QoS 1, offered ${fmt(RATE)} envelopes/s with at most ${fmt(OUTSTANDING)} unanswered, ${WARMUP_S} + ${DURATION_S} s a run, ${ROUNDS} round(s) of energy then wifi; slot ${SLOT_MS} ms, batch deadline ${BATCH_MS} ms${flags.quick ? " — QUICK SMOKE RUN: the figures mean nothing" : ""}`,
  );
  console.log(
    `energy: meters' envelopes of ${READINGS} readings (${prepared.energy.envelopeBytesMedian} bytes, column body) on telemetry; wifi: routers' router.usage envelopes (${prepared.wifi.envelopeBytesMedian} bytes), sessions of ${SESSION_UPDATES} updates of ${fmt(Number(USAGE_INPUT_OCTETS_PER_UPDATE + USAGE_OUTPUT_OCTETS_PER_UPDATE) / 1e6)} MB, each countersigned by the client, billed at ${fmt(Number(PRICE_MICROS_PER_GB))} micros/GB\n`,
  );
  console.log(
    table(
      [
        "run",
        "offered /s",
        "accepted /s",
        "settled /s",
        "settled ÷ offered",
        "packages (median envelopes)",
        "receipt p50 / p99 slots",
        "unsettled",
        "refused",
        "gateway / other processes (cores)",
      ],
      results.map((x) => [
        `${x.round + 1} ${x.path}`,
        fmt(x.run.offeredPerS),
        fmt(x.run.acceptedPerS),
        fmt(x.run.settledPerS),
        pct(x.run.settledPerS / x.run.offeredPerS),
        `${x.packages.count} (${fmt(x.packages.envelopesMedian)})`,
        `${slots(x.run.receiptMs.slots.p50)} / ${slots(x.run.receiptMs.slots.p99)}`,
        `${fmt(x.run.unsettled)}${x.quiet ? "" : " !"}`,
        Object.entries(x.run.errors)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ") || "0",
        `${x.cores.gateway.toFixed(2)} / ${x.cores.others.toFixed(2)}`,
      ]),
    ),
  );
  if (results.some((x) => !x.quiet))
    console.log("! the gateway still had envelopes pending or in flight --drain s after the run: the next run started on its backlog");
  const of = (path: Path) => results.filter((x) => x.path === path);
  const settled = (path: Path) => of(path).map((x) => x.run.settledPerS);
  const paired = results
    .filter((x) => x.path === "wifi")
    .map((w) => w.run.settledPerS / results.find((e) => e.path === "energy" && e.round === w.round)!.run.settledPerS);
  console.log();
  console.log(
    table(
      [
        `per path, ${ROUNDS} run(s) each`,
        "settled /s, median (min–max)",
        "receipt p50 slots",
        "receipt p99 slots",
        "signature checks an envelope",
        "bytes an envelope",
      ],
      (["energy", "wifi"] as const).map((path) => [
        path === "energy" ? "energy: meter readings settled (envelopes)" : "wifi: vouchers verified and billed (envelopes)",
        range(settled(path)),
        slots(median(of(path).map((x) => x.run.receiptMs.slots.p50))),
        slots(median(of(path).map((x) => x.run.receiptMs.slots.p99))),
        path === "energy" ? "1 (device)" : "2 (router, client's voucher)",
        fmt(prepared[path].envelopeBytesMedian),
      ]),
    ),
  );
  const ratio = median(settled("wifi")) / median(settled("energy"));
  console.log(
    `\nwifi ÷ energy, settled envelopes per second: ${ratio.toFixed(3)} (ratio of the medians); ${median(paired).toFixed(3)} (median of the rounds' ratios: ${paired.map((r) => r.toFixed(3)).join(", ")})`,
  );
  const expectedMicros = (BigInt(billing.updates) * (USAGE_INPUT_OCTETS_PER_UPDATE + USAGE_OUTPUT_OCTETS_PER_UPDATE) * PRICE_MICROS_PER_GB) / OCTETS_PER_GB;
  const billedRight = billing.chargedMicros === expectedMicros;
  console.log(
    `billed, read back from the accounts: clients charged ${fmt(Number(billing.chargedMicros))} micros for ${fmt(billing.updates)} receipted updates (${billedRight ? "exactly" : `NOT the ${fmt(Number(expectedMicros))} expected from`} their octets at the price), owners paid ${fmt(Number(billing.paidMicros))}, protocol fee ${fmt(Number(billing.chargedMicros - billing.paidMicros))} (${pct(Number(billing.chargedMicros - billing.paidMicros) / Math.max(1, Number(billing.chargedMicros)))})`,
  );
  console.log(
    `energy readings settled per second: ${fmt(median(settled("energy")) * READINGS)} (median); the packing bound of wifi at this slot: ${tinyParams.coresCount} cores × ${ENVELOPES_PER_ITEM_MAX} envelopes a package (ENVELOPES_PER_ITEM_MAX) a block = ${fmt(bound)}/s`,
  );
  summary.e2e = {
    devices: DEVICES,
    rate: RATE,
    outstanding: OUTSTANDING,
    rounds: ROUNDS,
    durationS: DURATION_S,
    slotMs: SLOT_MS,
    sessionUpdates: SESSION_UPDATES,
    energySettledPerS: { median: Math.round(median(settled("energy"))), min: Math.round(min(settled("energy"))), max: Math.round(max(settled("energy"))) },
    wifiSettledPerS: { median: Math.round(median(settled("wifi"))), min: Math.round(min(settled("wifi"))), max: Math.round(max(settled("wifi"))) },
    wifiOverEnergy: Number(ratio.toFixed(3)),
    wifiOverEnergyPaired: Number(median(paired).toFixed(3)),
    energyReceiptP99Slots: Number(median(of("energy").map((x) => x.run.receiptMs.slots.p99)).toFixed(2)),
    wifiReceiptP99Slots: Number(median(of("wifi").map((x) => x.run.receiptMs.slots.p99)).toFixed(2)),
    otherProcessesCoresMax: Number(max(results.map((x) => x.cores.others)).toFixed(2)),
    billedMicros: Number(billing.chargedMicros),
    billedExactly: billedRight,
    refused: results.reduce((n, x) => n + Object.values(x.run.errors).reduce((a, b) => a + b, 0), 0),
  };
}

if (compression !== null) {
  console.log(
    `\nrefine compression: one envelopes item of ${ENVELOPES_PER_ITEM_MAX} usage updates (ENVELOPES_PER_ITEM_MAX; at most ${ENVELOPE_DEVICES_PER_ITEM_MAX} routers, ENVELOPE_DEVICES_PER_ITEM_MAX), services/wifi-billing refine on a warmed 1-thread RefinePool, node ${mc.node}, ${REFINE_RUNS} run(s) after a cold one${flags.quick ? " — QUICK SMOKE RUN" : ""}\n`,
  );
  console.log(
    table(
      ["case", "bytes in (item payload)", "bytes out (refine output)", "in ÷ out", "session deltas", "refine ms, median (min–max)", "µs an update", "gas used"],
      compression.map((r) => [
        r.c.name,
        fmt(r.bytesIn),
        fmt(r.bytesOut),
        `${(r.bytesIn / r.bytesOut).toFixed(1)}×`,
        fmt(r.sessions),
        range(r.ms, 1),
        fmt((median(r.ms) * 1000) / ENVELOPES_PER_ITEM_MAX, 1),
        fmt(Number(r.gasUsed)),
      ]),
    ),
  );
  summary.refine = compression.map((r) => ({
    case: r.c.name,
    bytesIn: r.bytesIn,
    bytesOut: r.bytesOut,
    ratio: Number((r.bytesIn / r.bytesOut).toFixed(2)),
    sessionDeltas: r.sessions,
    msMedian: Number(median(r.ms).toFixed(2)),
    usPerUpdate: Number(((median(r.ms) * 1000) / ENVELOPES_PER_ITEM_MAX).toFixed(1)),
    gasUsed: Number(r.gasUsed),
  }));
}

console.log(JSON.stringify(summary));
