/**
 * bench/gateway.ts's comparison runs (`--gateways 2`, `--pairs N`, `--rates A,B,…`): one gateway
 * process against a cluster of gateway processes sharing Redis, on the same cores, in one run,
 * with bare aedes measured beside them as the ceiling, and where the cores go.
 *
 * For each rate (ascending), `repeats` times: bare aedes QoS 1 (`ceilingRuns` runs, their median the
 * ceiling of what follows), then each deployment in turn: `jamgate start` with its embedded node
 * (1), then `jamgate node start` + N × `jamgate start --node … --cluster redis://…` + redis-server
 * (N), so the two alternate 1, N, 1, N … and the machine's drift falls on both. Each deployment is
 * started fresh (bench/lib/cluster.ts), its devices registered, connected (spread evenly over the
 * gateways' MQTT ports), offered `rate` envelopes/s open loop by the same load generator, then
 * stopped. Over the measured window: settled envelopes/s, publish → receipt p50/p99 in slots,
 * envelopes not receipted, settled ÷ bare aedes, and the CPU of every process and of every kind of
 * thread in the jamgate processes (bench/lib/threads.ts).
 *
 * A sweep states, per deployment, the highest rate at which p99 ≤ 3 slots held in every run at it
 * and at every lower rate, and the same with a margin (p99 ≤ 3 − marginSlots).
 */
import { availableParallelism } from "node:os";
import { type Child, gitRevision, machineCpuS } from "./proc.ts";
import { startDeployment } from "./cluster.ts";
import { fmt, max, median, min, table } from "./stats.ts";
import { coresByKind, type ProcessCores, type ProcessSample, sampleAll, THREAD_KINDS, type Watched } from "./threads.ts";

/** What bench/lib/loadgen.ts run-open reports that the comparison uses. */
export interface LoadRun {
  offeredPerS: number;
  acceptedPerS: number;
  settledPerS: number;
  inWindow: number;
  unsettled: number;
  unacked: number;
  duplicates: number;
  errors: Record<string, number>;
  receiptMs: { p50: number; p99: number; max: number; slots: { p50: number; p99: number } };
  ackMs: { p50: number; p99: number; max: number };
}

export interface CompareOptions {
  readonly loadgen: Child;
  readonly devices: number;
  readonly client: string;
  readonly rates: readonly number[];
  /** Deployments in the order run within each repeat: 1 (one process, embedded node) and/or N (a cluster). */
  readonly deployments: readonly number[];
  /** The one-gateway deployment drives a node of its own process (`jamgate node start` + `jamgate start --node`) instead of its embedded one. */
  readonly remoteNode: boolean;
  readonly repeats: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly drainS: number;
  readonly slotMs: number;
  readonly batchMs: number;
  readonly ceilingRuns: number;
  readonly targetP99Slots: number;
  readonly marginSlots: number;
  /** The issue's goal: settled ≥ this share of bare aedes QoS 1, with p99 ≤ targetP99Slots. */
  readonly targetOfAedes: number;
  readonly readings: number;
  readonly envelopeBytes: number;
  /** One bare-aedes run with the load generator's clients: QoS 1 deliveries/s. */
  aedes(): Promise<number>;
  progress(msg: string): void;
}

interface RunResult {
  rate: number;
  deployment: number;
  repeat: number;
  aedesPerS: number;
  run: LoadRun | null;
  failure: string | null;
  startS: number;
  registerS: number;
  connectS: number;
  processes: ProcessCores[];
  machineCores: number;
  othersCores: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A deployment's name in the tables: its gateways, and whether one gateway drives a remote node. */
const deploymentName = (d: number, remoteNode: boolean) => (d === 1 ? (remoteNode ? "1 gateway, remote node" : "1 gateway") : `${d} gateways`);
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "–");
const spread = (xs: number[], d = 0) =>
  xs.length === 0 ? "–" : xs.length === 1 ? fmt(xs[0]!, d) : `${fmt(median(xs), d)} (${fmt(min(xs), d)}–${fmt(max(xs), d)})`;

/** One deployment at one rate: started, registered, connected, loaded, measured, stopped. */
async function deploymentRun(o: CompareOptions, deployment: number, rate: number, repeat: number, aedesPerS: number): Promise<RunResult> {
  const name = (d: number) => deploymentName(d, o.remoteNode);
  const result: RunResult = {
    rate,
    deployment,
    repeat,
    aedesPerS,
    run: null,
    failure: null,
    startS: Number.NaN,
    registerS: Number.NaN,
    connectS: Number.NaN,
    processes: [],
    machineCores: Number.NaN,
    othersCores: Number.NaN,
  };
  const t0 = performance.now();
  let d: Awaited<ReturnType<typeof startDeployment>> | null = null;
  let connected = false;
  try {
    d = await startDeployment({ gateways: deployment, remoteNode: o.remoteNode, slotMs: o.slotMs, batchMs: o.batchMs });
    result.startS = (performance.now() - t0) / 1000;
    const reg = await d.register(0, o.devices);
    result.registerS = reg.ms / 1000;
    const c = await o.loadgen.call<{ connected: number; errors: object; ms: number }>("connect", {
      from: 0,
      to: o.devices,
      ports: d.mqttPorts,
      subscribe: "down",
      client: o.client,
    });
    connected = true;
    result.connectS = c.ms / 1000;
    if (c.connected !== o.devices) throw new Error(`${c.connected} of ${o.devices} devices connected: ${JSON.stringify(c.errors)}`);
    o.progress(
      `${name(deployment)} at ${fmt(rate)}/s (repeat ${repeat + 1}): started in ${result.startS.toFixed(1)} s, ${o.devices} devices registered in ${result.registerS.toFixed(1)} s, connected in ${result.connectS.toFixed(1)} s over ${d.mqttPorts.length} MQTT port(s)`,
    );
    const watched: Watched[] = [
      ...d.watched,
      { label: "load generator", pid: o.loadgen.proc.pid!, probeDir: null },
      { label: "orchestrator (this process)", pid: process.pid, probeDir: null },
    ];
    // The measured window's two samples, on the load generator's schedule (its run starts when it gets the call).
    const sample = (afterMs: number) => sleep(afterMs).then(() => ({ processes: sampleAll(watched), machine: machineCpuS(), at: performance.now() }));
    const first = sample(o.warmupS * 1000);
    const last = sample((o.warmupS + o.durationS) * 1000);
    const run = await o.loadgen.call<LoadRun>("run-open", {
      rate,
      warmupMs: o.warmupS * 1000,
      measureMs: o.durationS * 1000,
      drainMs: o.drainS * 1000,
      slotMs: o.slotMs,
    });
    const a = await first;
    const b = await last;
    result.run = run;
    result.processes = watched.map((w, i) => coresByKind(w, a.processes[i] as ProcessSample, b.processes[i] as ProcessSample));
    const spanS = (b.at - a.at) / 1000;
    result.machineCores = (b.machine.busy - a.machine.busy) / spanS;
    result.othersCores = Math.max(0, result.machineCores - result.processes.reduce((s, p) => s + (Number.isFinite(p.cores) ? p.cores : 0), 0));
    result.failure = d.failure();
    o.progress(
      `${name(deployment)} at ${fmt(rate)}/s: settled ${fmt(run.settledPerS)}/s (${pct(run.settledPerS / aedesPerS)} of bare aedes), p99 receipt ${run.receiptMs.slots.p99.toFixed(2)} slots, not receipted ${fmt(run.unsettled)}; machine ${result.machineCores.toFixed(2)} cores busy`,
    );
  } catch (e) {
    result.failure = (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 300);
    o.progress(`${name(deployment)} at ${fmt(rate)}/s FAILED: ${result.failure}`);
  } finally {
    if (connected) await o.loadgen.call("disconnect").catch(() => {});
    await d?.stop();
  }
  return result;
}

/** Highest rate, lowest first, from which down every run held `ok`; null when the lowest did not. */
function highestHeld(rows: RunResult[], rates: readonly number[], ok: (r: RunResult) => boolean): number | null {
  let best: number | null = null;
  for (const rate of rates) {
    const at = rows.filter((r) => r.rate === rate);
    if (at.length === 0 || !at.every(ok)) break;
    best = rate;
  }
  return best;
}

/** A run's cores as coresRows takes them. */
export interface CoresColumnRun {
  readonly processes: readonly ProcessCores[];
  readonly machineCores: number;
  readonly othersCores: number;
}

/**
 * The rows of a "where the cores go" table: each process (its whole CPU), then each kind of thread
 * in it with (n) threads, the CPU of threads that ended in the window if any, and the main
 * thread's event-loop utilisation; then the whole machine. One column per entry of `cols`, each the
 * median (min–max) over its runs.
 */
export function coresRows(cols: readonly (readonly CoresColumnRun[])[]): string[][] {
  const labels: string[] = [];
  for (const c of cols) for (const r of c) for (const p of r.processes) if (!labels.includes(p.label)) labels.push(p.label);
  const cell = (xs: number[]) =>
    xs.length === 0 ? "–" : xs.length === 1 ? xs[0]!.toFixed(2) : `${median(xs).toFixed(2)} (${min(xs).toFixed(2)}–${max(xs).toFixed(2)})`;
  const rows: string[][] = [];
  for (const label of labels) {
    const procs = cols.map((c) => c.map((r) => r.processes.find((p) => p.label === label)).filter((p): p is ProcessCores => p !== undefined));
    rows.push([label, ...procs.map((ps) => cell(ps.map((p) => p.cores)))]);
    for (const kind of THREAD_KINDS) {
      if (kind === "all threads (not probed)") continue;
      const ks = procs.map((ps) => ps.map((p) => p.kinds.find((k) => k.kind === kind)).filter((k) => k !== undefined));
      if (ks.every((k) => k.length === 0)) continue;
      const n = ks.flat()[0]?.threads ?? 0;
      rows.push([`  ${kind} (${n})`, ...ks.map((k) => cell(k.map((x) => x.cores)))]);
    }
    // Runnable and not running: the cores the process's threads would have used had a CPU been free.
    const waiting = procs.map((ps) => ps.map((p) => p.kinds.reduce((s, k) => s + k.waitingCores, 0)).filter((x) => Number.isFinite(x)));
    const mainWaiting = procs.map((ps) =>
      ps.map((p) => p.kinds.find((k) => k.kind === "main thread")?.waitingCores ?? Number.NaN).filter((x) => Number.isFinite(x)),
    );
    if (waiting.some((x) => x.length > 0)) {
      rows.push(["  waiting for a CPU, all threads (run queue)", ...waiting.map(cell)]);
      if (mainWaiting.some((x) => x.length > 0)) rows.push(["  waiting for a CPU, main thread", ...mainWaiting.map(cell)]);
    }
    const lost = procs.map((ps) => ps.map((p) => p.lostCores));
    if (lost.flat().some((x) => x >= 0.005)) rows.push(["  threads ended in the window", ...lost.map(cell)]);
    const elu = procs.map((ps) => ps.map((p) => p.elu).filter((x): x is number => x !== null));
    if (elu.some((x) => x.length > 0)) rows.push(["  main thread event-loop utilisation", ...elu.map(cell)]);
  }
  rows.push(["whole machine busy", ...cols.map((c) => cell(c.map((r) => r.machineCores)))]);
  rows.push(["  of which processes not watched", ...cols.map((c) => cell(c.map((r) => r.othersCores)))]);
  return rows;
}

/** Runs the comparison and prints its tables, then one JSON line. */
export async function runComparison(o: CompareOptions): Promise<void> {
  const revision = gitRevision();
  const name = (d: number) => deploymentName(d, o.remoteNode);
  const rates = [...o.rates].sort((x, y) => x - y);
  const results: RunResult[] = [];
  for (const rate of rates) {
    for (let repeat = 0; repeat < o.repeats; repeat++) {
      const aedesRuns: number[] = [];
      for (let i = 0; i < o.ceilingRuns; i++) aedesRuns.push(await o.aedes());
      const aedesPerS = aedesRuns.length === 0 ? Number.NaN : median(aedesRuns);
      for (const deployment of o.deployments) results.push(await deploymentRun(o, deployment, rate, repeat, aedesPerS));
    }
  }
  const ok = (r: RunResult) => r.run !== null && r.failure === null;
  const p99 = (r: RunResult) => (r.run === null ? Number.POSITIVE_INFINITY : r.run.receiptMs.slots.p99);

  console.log(
    `\ngateway processes side by side (code ${revision}): ${fmt(o.devices)} devices (${o.client} MQTT clients, spread evenly over each deployment's gateways), ${o.readings} readings (${fmt(o.envelopeBytes)} bytes) per envelope, QoS 1, slot ${o.slotMs} ms, batch deadline ${o.batchMs} ms; ${o.durationS} s measured after ${o.warmupS} s warm-up; ${o.repeats} × (bare aedes ×${o.ceilingRuns}, ${o.deployments.map(name).join(", ")}) per rate`,
  );
  console.log(
    `1 gateway: ${o.remoteNode ? "`jamgate node start` + one `jamgate start --node …` (no Redis)" : "`jamgate start` (embedded node on its own thread)"}; N gateways: \`jamgate node start\` + N × \`jamgate start --node … --cluster redis://…\` + redis-server; every process on the same ${availableParallelism()} cores\n`,
  );
  const runRows = results.map((r) => {
    const gwMain = r.processes.filter((p) => p.label.startsWith("gateway"));
    const mainCores = gwMain.map((p) => p.kinds.find((k) => k.kind === "main thread")?.cores ?? Number.NaN);
    const elus = gwMain.map((p) => p.elu ?? Number.NaN);
    const mainWaits = gwMain.map((p) => p.kinds.find((k) => k.kind === "main thread")?.waitingCores ?? Number.NaN);
    return [
      `${fmt(r.rate)}/s #${r.repeat + 1}  ${name(r.deployment)}`,
      r.run === null ? "–" : fmt(r.run.offeredPerS),
      r.run === null ? "–" : fmt(r.run.settledPerS),
      r.run === null ? "–" : r.run.receiptMs.slots.p50.toFixed(2),
      r.run === null ? "–" : r.run.receiptMs.slots.p99.toFixed(2),
      r.run === null ? "–" : `${fmt(r.run.unsettled)} / ${fmt(r.run.inWindow)}`,
      Number.isFinite(r.aedesPerS) ? fmt(r.aedesPerS) : "–",
      r.run === null ? "–" : pct(r.run.settledPerS / r.aedesPerS),
      mainCores.length === 0 ? "–" : mainCores.map((x) => x.toFixed(2)).join(" "),
      elus.length === 0 ? "–" : elus.map((x) => (Number.isFinite(x) ? x.toFixed(2) : "–")).join(" "),
      mainWaits.length === 0 ? "–" : mainWaits.map((x) => (Number.isFinite(x) ? x.toFixed(2) : "–")).join(" "),
      Number.isFinite(r.machineCores) ? `${r.machineCores.toFixed(2)} / ${r.othersCores.toFixed(2)}` : "–",
      // Receipts are counted inside the window: while the first ones take longer than the warm-up, the window starts before the pipeline is full.
      r.failure ?? (r.run !== null && r.run.receiptMs.p50 / 1000 > o.warmupS ? "p50 > warm-up: settled/s counted short" : ""),
    ];
  });
  console.log(
    table(
      [
        "run",
        "offered/s",
        "settled/s",
        "p50 slots",
        "p99 slots",
        "not receipted",
        "bare aedes/s",
        "settled ÷ aedes",
        "gw main cores",
        "gw main ELU",
        "gw main waiting",
        "machine / others",
        "failure / note",
      ],
      runRows,
    ),
  );
  console.log(
    `(publish → receipt of envelopes published in the window, in slots; not receipted within ${o.drainS} s after the last publish counts as ∞; "gw main": each gateway process's main thread: CPU in cores, event-loop utilisation, and time runnable but waiting for a CPU in cores; machine: busy cores of the whole machine / of them, processes not watched)`,
  );

  // Per deployment at each rate, over the repeats; and the N ÷ 1 ratio per repeat.
  console.log();
  const summaryRows: string[][] = [];
  const summary: Record<string, unknown>[] = [];
  for (const rate of rates)
    for (const dep of o.deployments) {
      const rs = results.filter((r) => r.rate === rate && r.deployment === dep && r.run !== null);
      const settled = rs.map((r) => r.run!.settledPerS);
      const ratios = rs.map((r) => r.run!.settledPerS / r.aedesPerS);
      const p99s = rs.map(p99);
      const failed = results.filter((r) => r.rate === rate && r.deployment === dep && !ok(r)).length;
      summaryRows.push([
        `${fmt(rate)}/s  ${name(dep)}`,
        String(rs.length),
        spread(settled),
        spread(p99s, 2),
        fmt(rs.reduce((s, r) => s + r.run!.unsettled, 0)),
        spread(
          ratios.map((x) => x * 100),
          1,
        ),
        failed === 0 ? "" : String(failed),
      ]);
      summary.push({
        rate,
        gateways: dep,
        runs: rs.length,
        failed,
        settledPerS: settled.length === 0 ? null : { median: Math.round(median(settled)), min: Math.round(min(settled)), max: Math.round(max(settled)) },
        receiptP99Slots:
          p99s.length === 0 ? null : { median: Number(median(p99s).toFixed(2)), min: Number(min(p99s).toFixed(2)), max: Number(max(p99s).toFixed(2)) },
        notReceipted: rs.reduce((s, r) => s + r.run!.unsettled, 0),
        ofAedes:
          ratios.length === 0 ? null : { median: Number(median(ratios).toFixed(3)), min: Number(min(ratios).toFixed(3)), max: Number(max(ratios).toFixed(3)) },
      });
    }
  console.log(table(["rate  deployment", "runs", "settled/s median (min–max)", "p99 slots", "not receipted (sum)", "% of bare aedes", "failed"], summaryRows));
  const multi = o.deployments.find((d) => d > 1);
  if (o.deployments.includes(1) && multi !== undefined) {
    const pairs: string[] = [];
    const pairRatios: { rate: number; repeat: number; settledRatio: number; p99One: number; p99Many: number }[] = [];
    for (const rate of rates)
      for (let repeat = 0; repeat < o.repeats; repeat++) {
        const one = results.find((r) => r.rate === rate && r.repeat === repeat && r.deployment === 1);
        const many = results.find((r) => r.rate === rate && r.repeat === repeat && r.deployment === multi);
        if (one?.run == null || many?.run == null) continue;
        const x = many.run.settledPerS / one.run.settledPerS;
        pairRatios.push({ rate, repeat, settledRatio: Number(x.toFixed(3)), p99One: Number(p99(one).toFixed(2)), p99Many: Number(p99(many).toFixed(2)) });
        pairs.push(`${fmt(rate)}/s #${repeat + 1}: ${x.toFixed(3)} (p99 ${p99(one).toFixed(2)} → ${p99(many).toFixed(2)})`);
      }
    console.log(`\n${name(multi)} ÷ ${name(1)}, settled envelopes/s per pair: ${pairs.join("; ") || "–"}`);
    summary.push({ pairs: pairRatios });
  }

  // Where the cores go: per rate, each process and kind of thread, median over the repeats.
  for (const rate of rates) {
    const cols = o.deployments.map((dep) => results.filter((r) => r.rate === rate && r.deployment === dep && r.run !== null));
    if (cols.every((c) => c.length === 0)) continue;
    const rows = coresRows(cols);
    console.log();
    console.log(
      table(
        [
          `where the cores go at ${fmt(rate)}/s offered (CPU-seconds, or seconds runnable and waiting for a CPU, per second of the measured window; median (min–max) of ${o.repeats}; (n) threads)`,
          ...o.deployments.map(name),
        ],
        rows,
      ),
    );
  }

  // The rate at which p99 ≤ target holds, with and without the margin, and the issue's goal.
  console.log();
  const verdicts: Record<string, unknown>[] = [];
  for (const dep of o.deployments) {
    const rows = results.filter((r) => r.deployment === dep);
    const held = highestHeld(rows, rates, (r) => ok(r) && p99(r) <= o.targetP99Slots);
    const heldMargin = highestHeld(rows, rates, (r) => ok(r) && p99(r) <= o.targetP99Slots - o.marginSlots);
    const goalRates = rates.filter((rate) => {
      const at = rows.filter((r) => r.rate === rate);
      return at.length > 0 && at.every((r) => ok(r) && p99(r) <= o.targetP99Slots && r.run!.settledPerS / r.aedesPerS >= o.targetOfAedes);
    });
    const bestRatio = max(rows.filter((r) => ok(r) && p99(r) <= o.targetP99Slots).map((r) => r.run!.settledPerS / r.aedesPerS));
    const tried = rates.length > 1 ? `rates tried ${rates.map((x) => fmt(x)).join(", ")}/s` : `at ${fmt(rates[0]!)}/s`;
    console.log(
      `${name(dep)}: p99 receipt ≤ ${o.targetP99Slots} slots held in every run ${held === null ? `at no rate tried (${tried})` : `up to ${fmt(held)}/s (${tried})`}; with a margin of ${o.marginSlots} slots (p99 ≤ ${(o.targetP99Slots - o.marginSlots).toFixed(2)} in every run) ${heldMargin === null ? "at none" : `up to ${fmt(heldMargin)}/s`}; goal ≥ ${(o.targetOfAedes * 100).toFixed(0)}% of bare aedes with p99 ≤ ${o.targetP99Slots}: ${goalRates.length > 0 ? `MET at ${goalRates.map((x) => fmt(x)).join(", ")}/s` : `MISSED (best with p99 ≤ ${o.targetP99Slots}: ${pct(bestRatio)})`}`,
    );
    verdicts.push({ gateways: dep, p99HeldUpToPerS: held, p99HeldWithMarginUpToPerS: heldMargin, marginSlots: o.marginSlots, goalMetAtPerS: goalRates });
  }

  console.log(
    JSON.stringify({
      mode: "compare",
      remoteNode: o.remoteNode,
      revision,
      devices: o.devices,
      client: o.client,
      rates,
      repeats: o.repeats,
      deployments: o.deployments,
      summary,
      verdicts,
      runs: results.map((r) => ({
        rate: r.rate,
        gateways: r.deployment,
        repeat: r.repeat,
        failure: r.failure,
        aedesPerS: Number.isFinite(r.aedesPerS) ? Math.round(r.aedesPerS) : null,
        settledPerS: r.run === null ? null : Math.round(r.run.settledPerS),
        acceptedPerS: r.run === null ? null : Math.round(r.run.acceptedPerS),
        receiptSlots: r.run === null ? null : { p50: Number(r.run.receiptMs.slots.p50.toFixed(2)), p99: Number(r.run.receiptMs.slots.p99.toFixed(2)) },
        ackMs: r.run === null ? null : { p50: Number(r.run.ackMs.p50.toFixed(1)), p99: Number(r.run.ackMs.p99.toFixed(1)) },
        unsettled: r.run?.unsettled ?? null,
        machineCores: Number(r.machineCores.toFixed(2)),
        othersCores: Number(r.othersCores.toFixed(2)),
        processes: r.processes.map((p) => ({
          label: p.label,
          cores: Number(p.cores.toFixed(3)),
          elu: p.elu === null ? null : Number(p.elu.toFixed(3)),
          threads: Object.fromEntries(p.kinds.map((k) => [k.kind, Number(k.cores.toFixed(3))])),
          waitingForCpu: Object.fromEntries(p.kinds.map((k) => [k.kind, Number.isFinite(k.waitingCores) ? Number(k.waitingCores.toFixed(3)) : null])),
        })),
      })),
    }),
  );
}
