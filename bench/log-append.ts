/**
 * The durable log's cost per accepted envelope, with and without group commit, side by side.
 *
 *   node --import tsx bench/log-append.ts [--rate 3000] [--seconds 10] [--rounds 2] [--delays 0,5]
 *
 * Each configuration runs in its own child process (this file, with --child), alternating
 * (0, 5, 0, 5 ms …) so the machine's drift falls on both: 1,000 devices append records of a
 * 60-reading envelope (3.7 KB of signed bytes) at --rate per second in 1 ms ticks, as the
 * gateway's acceptance does, through gateway/log.ts with `commitDelayMs` set to the delay
 * (0 = a commit per event-loop turn that wrote, as lmdb-js does on its own); settled entries
 * are removed in batches, as settlement does. Measured: the process's CPU per append (all
 * threads: the main thread, lmdb-js's commit and sync threads, V8's helpers), the main thread's
 * and the other threads' cores, and append → resolved (on disk) latency. The 1 ms ticks' own
 * cost is in every figure alike.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DurableLog, type LogEntry } from "../gateway/log.ts";
import { gitRevision } from "./lib/proc.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, median, percentile, table } from "./lib/stats.ts";

const flags = parseFlags("bench/log-append.ts", "The durable log's cost per accepted envelope, with and without group commit, side by side.", {
  rate: { kind: "number", default: 3_000, help: "appends per second" },
  seconds: { kind: "number", default: 10, help: "seconds per run" },
  rounds: { kind: "number", default: 2, help: "rounds, each running every delay once" },
  delays: { kind: "numbers", default: [0, 5], help: "commit delays to compare, ms (0 = a commit per event-loop turn)" },
  // Set by this script when it runs itself as a child process for one configuration.
  child: { kind: "boolean", help: "internal: run one configuration and print its result as JSON" },
  delay: { kind: "number", default: 0, help: "internal: the child's commit delay, ms" },
});
const RATE = flags.rate;
const SECONDS = flags.seconds;
const ROUNDS = flags.rounds;
const DELAYS = flags.delays;
const DEVICES = 1_000;
/** Settled entries are removed this many at a time (about a package's worth at 3,000/s). */
const REMOVE_BATCH = 1_500;

if (RATE > 20_000 || SECONDS > 60 || ROUNDS > 5) throw new Error("bounded: at most 20,000 appends/s, 60 s and 5 rounds");

interface ChildResult {
  readonly delayMs: number;
  readonly appended: number;
  readonly cpuUsPerAppend: number;
  readonly mainThreadCores: number;
  readonly otherThreadsCores: number;
  readonly processCores: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
}

/** CPU seconds per thread of this process, by thread id (from /proc: Linux only). */
function threadCpuS(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

async function child(delayMs: number): Promise<ChildResult> {
  const dir = mkdtempSync(join(tmpdir(), "jamgate-log-bench-"));
  const log = new DurableLog(join(dir, "log"), delayMs);
  const signingBytes = new Uint8Array(3_700).fill(7);
  const signature = new Uint8Array(64);
  const latencies: number[] = [];
  const toRemove: LogEntry[] = [];
  const removals: Promise<void>[] = [];
  let appended = 0;
  const threads0 = threadCpuS();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let n = 0;
    const tick = () => {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
      for (; n < due; n++) {
        const deviceId = (n % DEVICES).toString(16).padStart(32, "0");
        const seq = Math.floor(n / DEVICES);
        const at = performance.now();
        void log.append({ deviceId, seq, signingBytes, signature, serviceId: 2, acceptedAtMs: Date.now() }).then((entry) => {
          appended++;
          latencies.push(performance.now() - at);
          toRemove.push(entry);
          if (toRemove.length >= REMOVE_BATCH) removals.push(log.remove(toRemove.splice(0)));
        });
      }
      if (performance.now() - t0 >= SECONDS * 1000) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  while (appended < Math.floor(SECONDS * RATE) - 1) await new Promise((r) => setTimeout(r, 5));
  await Promise.all(removals);
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const threads1 = threadCpuS();
  // The main thread's id is the process id; the others are libuv's pool (lmdb-js commits and syncs there) and V8's helpers (Node 20 names them all "node").
  let mainS = 0;
  let otherS = 0;
  for (const [tid, s] of threads1) {
    if (tid === process.pid) mainS += s - (threads0.get(tid) ?? 0);
    else otherS += s - (threads0.get(tid) ?? 0);
  }
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    delayMs,
    appended,
    cpuUsPerAppend: (cpu.user + cpu.system) / appended,
    mainThreadCores: mainS / wallS,
    otherThreadsCores: otherS / wallS,
    processCores: (cpu.user + cpu.system) / 1e6 / wallS,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
  };
}

if (flags.child) {
  const result = await child(flags.delay);
  process.stdout.write(JSON.stringify(result));
} else {
  const self = fileURLToPath(import.meta.url);
  const results: ChildResult[] = [];
  process.stderr.write(
    `[log-append] ${JSON.stringify(machine())}, code ${gitRevision()}: ${RATE}/s for ${SECONDS} s, delays ${DELAYS.join(", ")} ms, ${ROUNDS} rounds\n`,
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const delay of DELAYS) {
      const out = execFileSync(
        process.execPath,
        ["--import", "tsx", self, "--child", "--delay", String(delay), "--rate", String(RATE), "--seconds", String(SECONDS)],
        { encoding: "utf8" },
      );
      const r = JSON.parse(out) as ChildResult;
      results.push(r);
      process.stderr.write(
        `[log-append] round ${round + 1}, ${delay} ms: ${r.cpuUsPerAppend.toFixed(1)} µs/append, main thread ${r.mainThreadCores.toFixed(3)} cores, other threads ${r.otherThreadsCores.toFixed(3)}\n`,
      );
    }
  }
  const rows = DELAYS.map((delay) => {
    const rs = results.filter((r) => r.delayMs === delay);
    const m = (f: (r: ChildResult) => number, d = 1) => `${fmt(median(rs.map(f)), d)} (${rs.map((r) => fmt(f(r), d)).join(", ")})`;
    return [
      `${delay} ms${delay === 0 ? " (a commit per turn)" : ""}`,
      m((r) => r.cpuUsPerAppend),
      m((r) => r.processCores, 3),
      m((r) => r.mainThreadCores, 3),
      m((r) => r.otherThreadsCores, 3),
      m((r) => r.latencyMs.p50),
      m((r) => r.latencyMs.p99),
    ];
  });
  console.log(`\ndurable log, ${fmt(RATE)} appends/s of 3.7 KB records from ${fmt(DEVICES)} devices, ${SECONDS} s per run, median (runs)\n`);
  console.log(
    table(
      [
        "commit delay",
        "CPU µs per append",
        "process cores",
        "main thread",
        "other threads (lmdb-js commits and syncs, V8 helpers)",
        "append → on disk p50 ms",
        "p99 ms",
      ],
      rows,
    ),
  );
  const summary = DELAYS.map((delayMs) => {
    const rs = results.filter((r) => r.delayMs === delayMs);
    return {
      delayMs,
      cpuUsPerAppend: Number(median(rs.map((r) => r.cpuUsPerAppend)).toFixed(1)),
      latencyP99Ms: Number(median(rs.map((r) => r.latencyMs.p99)).toFixed(1)),
      runs: rs.length,
    };
  });
  console.log(JSON.stringify({ revision: gitRevision(), rate: RATE, seconds: SECONDS, delays: summary }));
}
