/**
 * Where the cores go: CPU time of every thread of the processes under test, read from outside
 * through Linux's /proc (`/proc/<pid>/task/<tid>/stat`: utime + stime in clock ticks,
 * `getconf CLK_TCK`, 100 here), at the start and the end of a window, summed per process and per
 * kind of thread. A Node process's threads are told apart by bench/lib/thread-probe.mjs, a preload
 * that names them and writes what each is to a dir (BENCH_THREAD_PROBE_DIR): the main thread, the
 * embedded node's thread, refine threads, libuv's pool, the native threads there were at start (V8's
 * platform workers: garbage collection and compilation; its delayed-task scheduler; the
 * inspector's signal thread), and threads made later by the program's own (tsx's loader threads).
 * A process run without the probe (redis-server, the load generator) is counted as a whole.
 *
 * Beside its CPU, each thread's time runnable but waiting for a CPU (the second field of
 * /proc/<pid>/task/<tid>/schedstat, ns on a run queue) tells a thread starved of the cores (by
 * the other processes of a shared machine, or its own process's other threads) from one that is
 * idle or blocked: a main thread whose event loop is busy all the time (utilisation 1.0) while it
 * runs a fraction of a core is either waiting for a CPU (this shows it) or blocked in a
 * synchronous call (this does not).
 *
 * A thread that ends inside the window takes the CPU it used there with it (a refine thread
 * replaced after its watchdog stopped it); the process's total then exceeds the sum of its rows,
 * which `lostCores` reports.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`; 100 on Linux almost everywhere). */
export const CLOCK_TICKS_PER_S = (() => {
  try {
    const t = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(t) && t > 0 ? t : 100;
  } catch {
    return 100;
  }
})();

/** The preload that names a Node process's threads; give it to node as `--import`. */
export const THREAD_PROBE = new URL("./thread-probe.mjs", import.meta.url).pathname;

/** Kinds of thread, in the order the table lists them. */
export const THREAD_KINDS = [
  "main thread",
  "node thread",
  "refine threads",
  "libuv pool",
  "V8 platform & node internals",
  "later threads (tsx loader, profiler)",
  "other JS workers",
  "all threads (not probed)",
] as const;
export type ThreadKind = (typeof THREAD_KINDS)[number];

const KIND_OF_PROBE: Record<string, ThreadKind> = {
  main: "main thread",
  node: "node thread",
  refine: "refine threads",
  "uv-pool": "libuv pool",
  worker: "other JS workers",
};

/** A process to watch: its pid, a label for the table ("gateway 1", "node", "redis-server"), and the probe's dir if it runs the probe. */
export interface Watched {
  readonly label: string;
  readonly pid: number;
  readonly probeDir: string | null;
}

export interface ProcessSample {
  readonly at: number;
  /** CPU seconds by thread id; a process gone has none. */
  readonly threads: Map<number, number>;
  /** Seconds runnable and waiting for a CPU, by thread id (schedstat; absent where it cannot be read). */
  readonly waits: Map<number, number>;
  /** CPU seconds of the whole process (/proc/<pid>/stat: its live threads and those that ended). */
  readonly processS: number;
  /** The probe's event-loop counters of the main thread, ms. */
  readonly elu: { activeMs: number; idleMs: number } | null;
}

function statCpuS(path: string): number | null {
  try {
    const stat = readFileSync(path, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S; // utime, stime (fields 14, 15 of proc(5))
  } catch {
    return null;
  }
}

/** Seconds thread `tid` of `pid` has waited on a run queue (schedstat's second field, ns), or null. */
function runQueueWaitS(pid: number, tid: string): number | null {
  try {
    const wait = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ", 2)[1];
    return wait !== undefined && /^\d+$/.test(wait) ? Number(wait) / 1e9 : null;
  } catch {
    return null;
  }
}

/** Every live thread's CPU and run-queue seconds, the process's CPU, and the main thread's event-loop counters, now. */
export function sampleProcess(w: Watched): ProcessSample {
  const threads = new Map<number, number>();
  const waits = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${w.pid}/task`);
  } catch {
    // gone
  }
  for (const tid of tids) {
    const s = statCpuS(`/proc/${w.pid}/task/${tid}/stat`);
    if (s !== null) threads.set(Number(tid), s);
    const q = runQueueWaitS(w.pid, tid);
    if (q !== null) waits.set(Number(tid), q);
  }
  let elu: ProcessSample["elu"] = null;
  if (w.probeDir !== null) {
    try {
      elu = JSON.parse(readFileSync(join(w.probeDir, `${w.pid}-elu.json`), "utf8")) as { activeMs: number; idleMs: number };
    } catch {
      // not written yet
    }
  }
  return { at: performance.now(), threads, waits, processS: statCpuS(`/proc/${w.pid}/stat`) ?? Number.NaN, elu };
}

/** What the probe says thread `tid` of `w` is. */
function kindOf(w: Watched, tid: number, nativeAtStart: ReadonlySet<number>): ThreadKind {
  if (w.probeDir === null) return "all threads (not probed)";
  if (tid === w.pid) return "main thread";
  try {
    const k = readFileSync(join(w.probeDir, `${w.pid}-${tid}.kind`), "utf8").trim();
    return KIND_OF_PROBE[k] ?? "other JS workers";
  } catch {
    // not a thread the probe ran in
  }
  return nativeAtStart.has(tid) ? "V8 platform & node internals" : "later threads (tsx loader, profiler)";
}

export interface KindCores {
  readonly kind: ThreadKind;
  readonly threads: number;
  readonly cores: number;
  /** Time runnable and waiting for a CPU, summed over the kind's threads, per second of the window (NaN where schedstat is missing). */
  readonly waitingCores: number;
}

export interface ProcessCores {
  readonly label: string;
  readonly pid: number;
  /** The whole process's CPU over the window, in cores. */
  readonly cores: number;
  readonly kinds: readonly KindCores[];
  /** CPU of threads that ended inside the window (the process's total less its rows), in cores. */
  readonly lostCores: number;
  /** The main thread's event-loop utilisation over the window (probe), or null. */
  readonly elu: number | null;
}

/** Cores each kind of thread of `w` used between samples `a` and `b`. */
export function coresByKind(w: Watched, a: ProcessSample, b: ProcessSample): ProcessCores {
  const spanS = (b.at - a.at) / 1000;
  let nativeAtStart = new Set<number>();
  if (w.probeDir !== null) {
    try {
      nativeAtStart = new Set(JSON.parse(readFileSync(join(w.probeDir, `${w.pid}-native.json`), "utf8")) as number[]);
    } catch {
      // the probe did not get that far
    }
  }
  const byKind = new Map<ThreadKind, { threads: number; s: number; waitS: number }>();
  let sum = 0;
  for (const [tid, s1] of b.threads) {
    const s = s1 - (a.threads.get(tid) ?? 0); // a thread made inside the window started at 0
    const q1 = b.waits.get(tid);
    const waitS = q1 === undefined ? Number.NaN : q1 - (a.waits.get(tid) ?? 0);
    const kind = kindOf(w, tid, nativeAtStart);
    const k = byKind.get(kind) ?? { threads: 0, s: 0, waitS: 0 };
    k.threads++;
    k.s += s;
    k.waitS += waitS;
    byKind.set(kind, k);
    sum += s;
  }
  const total = b.processS - a.processS;
  const elu =
    a.elu === null || b.elu === null
      ? null
      : (b.elu.activeMs - a.elu.activeMs) / Math.max(1e-9, b.elu.activeMs - a.elu.activeMs + (b.elu.idleMs - a.elu.idleMs));
  return {
    label: w.label,
    pid: w.pid,
    cores: total / spanS,
    kinds: THREAD_KINDS.filter((k) => byKind.has(k)).map((k) => {
      const x = byKind.get(k)!;
      return { kind: k, threads: x.threads, cores: x.s / spanS, waitingCores: x.waitS / spanS };
    }),
    lostCores: Math.max(0, total - sum) / spanS,
    elu,
  };
}

/** Samples of several processes taken together. */
export function sampleAll(ws: readonly Watched[]): ProcessSample[] {
  return ws.map(sampleProcess);
}

/** The pid of the redis-server listening on `port` (its process title or command line names the port), or null. */
export function redisServerPid(port: number): number | null {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "latin1").trim() !== "redis-server") continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "latin1").replaceAll("\0", " ");
      if (cmdline.includes(`:${port}`) || cmdline.includes(`--port ${port} `)) return Number(entry);
    } catch {
      // ended meanwhile
    }
  }
  return null;
}
