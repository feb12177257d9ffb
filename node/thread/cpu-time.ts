/**
 * The CPU time a thread of this process has run, from Linux's per-thread scheduler statistics
 * (`/proc/self/task/<tid>/schedstat`, first field: nanoseconds on a CPU). The refine watchdog
 * charges a task this time rather than wall-clock time, so a refine thread that waits for a CPU
 * on a busy machine (other processes, a test suite's workers) is not stopped for the wait.
 * Elsewhere than Linux, or where the file is missing, there is none to read.
 */
import { readFileSync } from "node:fs";

/** Nanoseconds the thread with OS id `tid` (of this process) has run on a CPU, or null where that cannot be read. */
export function threadCpuNs(tid: number): bigint | null {
  try {
    const first = readFileSync(`/proc/self/task/${tid}/schedstat`, "latin1").split(" ", 1)[0];
    return first !== undefined && /^\d+$/.test(first) ? BigInt(first) : null;
  } catch {
    return null;
  }
}
