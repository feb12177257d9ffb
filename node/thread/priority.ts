/**
 * Thread priorities of a process that runs the embedded node beside other work (`jamgate start`:
 * the gateway's MQTT loop, acceptance and packing on the main thread).
 *
 * A receipt's latency is set by whether each work package is refined before the next block: the
 * node thread (intake, chunks, blocks) and the refine threads are the critical path. The rest —
 * the main thread, V8's helper threads (garbage collection, compilation: shared by all isolates)
 * and libuv's pool (the log's writes) — is throughput work that can wait a few milliseconds
 * without a receipt coming later, as long as it keeps up. On Linux a nice value is per thread, and
 * any process may raise its own threads' nice values (lower their priority) without privileges,
 * so the node's threads are left as they are and every other thread is set `NICE_STEP` above
 * them. Threads made later inherit their creator's value: the main thread's (lowered) for the
 * gateway's, the node thread's for a replaced refine thread.
 *
 * Measured at 4,000 envelopes/s on a 2-core machine (BENCHMARKS.md §5.2), six alternating pairs:
 * receipt p99 median 4.46 → 3.98 slots, better in five; the same CPU in all. At 5,000/s, with the
 * machine saturated, no gain. Elsewhere than Linux this does nothing.
 */
import { readdirSync, readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/**
 * How much lower the other threads run than the node's: +5 nice is a third of the CPU weight
 * (Linux CFS: each step is ~1.25×), enough that a refine burst is not shared evenly with the MQTT
 * loop, and little enough that the loop still gets its share under a sustained overload.
 */
export const NICE_STEP = 5;

/** The calling thread's OS id (Linux), or null where there is none to read. */
export function currentThreadId(): number | null {
  try {
    const id = Number(readlinkSync("/proc/thread-self").split("/").pop());
    return Number.isSafeInteger(id) && id > 0 ? id : null;
  } catch {
    return null;
  }
}

export interface Lowered {
  /** Threads now at `nice` (or already lower). */
  readonly lowered: number;
  /** The nice value they were set to, or null where per-thread priorities are not available. */
  readonly nice: number | null;
  /** The nice value the kept (node's) threads run at, or null as `nice`. */
  readonly nodeNice: number | null;
}

/**
 * Sets every thread of this process but `keep` to `NICE_STEP` above the first kept thread's nice
 * value (at most 19). Threads that end meanwhile are skipped.
 */
export function lowerOtherThreads(keep: readonly number[], step = NICE_STEP): Lowered {
  let tids: number[];
  try {
    tids = readdirSync("/proc/self/task").map(Number);
  } catch {
    return { lowered: 0, nice: null, nodeNice: null };
  }
  const kept = new Set(keep);
  const first = keep.find((tid) => tids.includes(tid));
  if (first === undefined) return { lowered: 0, nice: null, nodeNice: null };
  const nodeNice = getPriority(first);
  const nice = Math.min(19, nodeNice + step);
  let lowered = 0;
  for (const tid of tids) {
    if (kept.has(tid)) continue;
    try {
      if (getPriority(tid) < nice) setPriority(tid, nice);
      lowered++;
    } catch {
      // The thread ended between the listing and here.
    }
  }
  return { lowered, nice, nodeNice };
}
