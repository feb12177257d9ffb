/**
 * A preload (`node --import bench/lib/thread-probe.mjs …`) that makes a Node process's threads
 * tell what they are, so a benchmark reading /proc/<pid>/task/<tid> from outside can say where the
 * cores go (bench/lib/threads.ts). Node 20 names none of its threads: every `comm` is "node".
 * Writing /proc/self/task/<tid>/comm names a thread of one's own process (Linux ≥ 2.6.33), so:
 *
 * - in a worker thread (the preload runs in each, as workers inherit --import): the thread names
 *   itself after its entry file: `jg-node` (the embedded node's thread, node/thread/entry.mjs),
 *   `jg-refine` (a refine thread: piscina's worker, node/guarantor/refine-pool.ts), else `jg-worker`;
 * - in the main thread: libuv's pool threads are found by giving the pool work (pbkdf2) and
 *   seeing which threads run it (/proc/self/task/<tid>/schedstat, ns on a CPU), and named
 *   `jg-uv-pool`. What stays unnamed besides the main thread is native: V8's platform workers
 *   (garbage collection, compilation), its delayed-task scheduler, the inspector's signal thread.
 *
 * A thread takes its creator's name when it is made, so a thread a named one makes (tsx's loader
 * thread, which the node and refine threads each start, and which no preload runs in) carries its
 * creator's name too. With BENCH_THREAD_PROBE_DIR set, each thread the probe runs in therefore also
 * writes what it is to <dir>/<pid>-<tid>.kind ("main", "node", "refine", "worker", and "uv-pool" for
 * the pool's threads), and the main thread lists the native threads there were when it ran
 * (<dir>/<pid>-native.json: V8's and node's own), so a thread in neither was made later by one of
 * the program's threads: a loader thread. The main thread also writes its event-loop utilisation
 * so far (performance.eventLoopUtilization(): ms active and idle since the loop started) to
 * <dir>/<pid>-elu.json every ELU_WRITE_MS, so the benchmark can take it over any window of a
 * process it did not write (`jamgate start`).
 *
 * It changes nothing else; the pool burst costs ~40 ms of CPU once, before the program's own
 * module is loaded. Plain JavaScript: it loads before tsx.
 */
import { pbkdf2 } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { isMainThread } from "node:worker_threads";

/** How often the ELU file is rewritten: a quarter of a second of error at each end of a 30 s window. */
const ELU_WRITE_MS = 250;
/** pbkdf2 jobs per pool thread in the burst: several each, so every thread of the pool takes at least one. */
const BURST_JOBS_PER_THREAD = 4;
/** Iterations of each job: ~2–3 ms of SHA-256 here, far above the scheduling noise of an idle thread. */
const BURST_ITERATIONS = 8_000;
/** On-CPU time during the burst that marks a thread as the pool's: half a job. */
const BURST_NS_MIN = 1_000_000;

const ownTid = () => Number(readlinkSync("/proc/thread-self").split("/").pop());

/** Names thread `tid` of this process (at most 15 bytes); a failure leaves it "node". */
function nameThread(tid, name) {
  try {
    writeFileSync(`/proc/self/task/${tid}/comm`, name);
  } catch {
    // not Linux, or the thread ended
  }
}

function comm(tid) {
  try {
    return readFileSync(`/proc/self/task/${tid}/comm`, "latin1").trim();
  } catch {
    return "";
  }
}

function onCpuNs(tid) {
  try {
    return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "latin1").split(" ", 1)[0]);
  } catch {
    return 0;
  }
}

function tids() {
  try {
    return readdirSync("/proc/self/task").map(Number);
  } catch {
    return [];
  }
}

const dir = process.env.BENCH_THREAD_PROBE_DIR ?? "";

/** Writes `text` to <dir>/<name> if the benchmark gave a dir (atomically: written aside, then renamed). */
function tell(name, text) {
  if (dir === "") return;
  const file = join(dir, name);
  try {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  } catch {
    // the dir was removed: the benchmark is over
  }
}

if (!isMainThread) {
  const entry = (process.argv[1] ?? "").replaceAll("\\", "/");
  const kind = entry.endsWith("node/thread/entry.mjs") ? "node" : entry.includes("/piscina/") ? "refine" : "worker";
  const tid = ownTid();
  nameThread(tid, `jg-${kind}`);
  tell(`${process.pid}-${tid}.kind`, kind);
} else {
  const main = process.pid;
  tell(`${main}-${main}.kind`, "main");
  const poolSize = Math.max(1, Math.min(1024, Number(process.env.UV_THREADPOOL_SIZE ?? 4) || 4));
  const before = new Map(tids().map((t) => [t, onCpuNs(t)]));
  await Promise.all(
    Array.from({ length: poolSize * BURST_JOBS_PER_THREAD }, () => new Promise((resolve) => pbkdf2("probe", "salt", BURST_ITERATIONS, 32, "sha256", resolve))),
  );
  const native = [];
  for (const tid of tids()) {
    if (tid === main || comm(tid).startsWith("jg-")) continue;
    if (onCpuNs(tid) - (before.get(tid) ?? 0) >= BURST_NS_MIN) {
      nameThread(tid, "jg-uv-pool");
      tell(`${main}-${tid}.kind`, "uv-pool");
    } else native.push(tid);
  }
  tell(`${main}-native.json`, JSON.stringify(native));
  if (dir !== "") {
    const write = () => {
      const elu = performance.eventLoopUtilization();
      tell(`${main}-elu.json`, JSON.stringify({ atMs: Date.now(), activeMs: elu.active, idleMs: elu.idle }));
    };
    write();
    setInterval(write, ELU_WRITE_MS).unref();
  }
}
