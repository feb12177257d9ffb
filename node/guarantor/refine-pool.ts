/**
 * The refine worker pool: one worker thread per core (up to the machine's parallelism), from
 * piscina. Native code cannot be metered per instruction, so each task is also watched by a
 * watchdog: a refine that loops without calling the host is stopped by aborting its task, which
 * terminates its worker thread (piscina replaces it) and fails the package.
 *
 * The watchdog's bound is the gas the task's items declare (GP: G_R bounds a package's refine),
 * turned into time at the rate of the slowest machine supported (`REFINE_NS_PER_GAS_MAX`), so a
 * package cannot hold a core longer than its gas allows. It is armed when a refine thread takes
 * the task (the worker says so), so a wait for a thread, or a replaced thread's start-up
 * (0.45–1.1 s here), is not charged to the package. What it charges is the CPU time of that
 * thread (node/thread/cpu-time.ts, Linux), so time the thread spends waiting for a CPU on a busy
 * machine is not charged either: a registration refined while a test suite's workers held both
 * cores was once stopped at its 501 ms bound with 2,588 gas declared. Where a thread's CPU time
 * cannot be read, wall-clock time is charged. The node's cap (`refineTimeoutMs`) is wall-clock
 * time from when the task is handed to the pool, and stops it whichever bound comes first.
 */
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { ChainName } from "../chain/params.ts";
import { REFINE_STARTED, type RefineStarted, type RefineTask, type RefineTaskResult } from "../refine/task.ts";
import { threadCpuNs } from "../thread/cpu-time.ts";

export interface RefinePoolOptions {
  readonly coresCount: number;
  /**
   * The node's cap on one refine task, in ms of wall clock from the moment it is handed to the
   * pool (a wait for a thread included): it stops a task even where its gas allows longer.
   */
  readonly refineTimeoutMs: number;
  /** Service modules every worker imports at start. */
  readonly preloadModuleUrls: readonly string[];
  /** Reads a refine thread's CPU time in ns (default: threadCpuNs); tests replace it to stand for a starved thread. */
  readonly threadCpuNs?: (threadId: number) => bigint | null;
}

/** Tasks waiting for a thread; the node's per-core queues hold the rest, so this need not be large. */
const POOL_QUEUE_MAX = 64;

/**
 * Wall-clock nanoseconds one unit of refine gas may take on the slowest machine supported. The
 * gas schedule (service-api/gas.ts) is set near nanoseconds of host work here; real refines ran
 * at 1.1–1.5 ns per gas of what they were charged, on a warmed refine thread of this 2-core AMD
 * EPYC VM (measured: `node --import tsx bench/refine-gas.ts`, medians of 5: telemetry, 12,000
 * envelopes of 497-byte bodies, 647 M gas in 710 ms = 1.10; 3,384 envelopes of 3,808 bytes, 1.17;
 * energy, 256 meters × 12 envelopes of 60 readings, 195 M gas in 285 ms = 1.46, 1.79 on a cold
 * thread; host calls only, 0.56). With the VM busy with other work, in another run: 1.41, 1.73 and
 * 2.56, at most 2.81 (those runs timed wall clock, so the busy figures include waits for a CPU
 * that the watchdog, charging CPU time, does not count). 10 is ~7× the idle figure and ~3.5× the
 * busy one: a machine 3× slower per core still refines inside the bound.
 */
export const REFINE_NS_PER_GAS_MAX = 10n;

/**
 * The least a task's watchdog allows, however little gas it declares: for the worker's fixed
 * costs that gas does not scale with (a task's round trip took 0.2–0.5 ms here, its result cloned
 * back; a first call into a service's code; a garbage-collection pause; on a machine where a
 * thread's CPU time cannot be read, the thread descheduled). The payload's structured clone and a
 * thread's start-up happen before the watchdog is armed.
 */

/**
 * When a task's bound has passed in wall-clock time but its thread has run for less, the watchdog
 * looks again after the CPU time still allowed, and at least this long: a thread that waits for a
 * CPU costs one timer per 10 ms of waiting, not a busy loop.
 */
const RECHECK_MIN_MS = 10;
export const REFINE_BOUND_FLOOR_MS = 500n;

/**
 * The guarantor's erasure coding of the bundle (GP 14.4.1), done in the refine worker after refine,
 * priced like gas on the schedule's scale (≈ ns here) per bundle byte, so its allowance grows at
 * the same `REFINE_NS_PER_GAS_MAX`. Measured (`bench/refine-gas.ts`, a 13.8 MB bundle): tiny
 * chain 111 ms = 8.1 ns per byte, full chain 387 ms = 28.1 ns per byte (busy: 12.8 and 45.8).
 */
export const ERASURE_CODING_GAS_PER_BUNDLE_BYTE: Readonly<Record<ChainName, bigint>> = { tiny: 9n, full: 30n };

/** Longest delay setTimeout takes (2^31 − 1 ms); a bound past it is clamped. */
const TIMER_MS_MAX = 2 ** 31 - 1;

/**
 * The watchdog's bound on one refine task, in ms: REFINE_BOUND_FLOOR_MS plus REFINE_NS_PER_GAS_MAX
 * ns per unit of the refine gas its items declare (GP: each item's refine gas limit; intake keeps
 * their sum ≤ G_R) and, when the task erasure-codes the bundle, per unit of that coding's price.
 * On the tiny chain a package that declares G_R = 1e9 gets 10.5 s; the counter's 10 M, 0.6 s.
 */
export function refineBoundMs(task: Pick<RefineTask, "items" | "availability">): number {
  const itemsGas = declaredGas(task);
  const codingGas = task.availability === null ? 0n : ERASURE_CODING_GAS_PER_BUNDLE_BYTE[task.availability.chain] * BigInt(task.availability.bundle.length);
  const ms = REFINE_BOUND_FLOOR_MS + ceilDiv((itemsGas + codingGas) * REFINE_NS_PER_GAS_MAX, 1_000_000n);
  return ms > BigInt(TIMER_MS_MAX) ? TIMER_MS_MAX : Number(ms);
}

/** The refine gas a task's items declare, together. */
function declaredGas(task: Pick<RefineTask, "items">): bigint {
  return task.items.reduce((sum, item) => sum + item.gasLimit, 0n);
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

export type PoolOutcome =
  | { readonly ok: true; readonly result: RefineTaskResult }
  | {
      readonly ok: false;
      readonly timedOut: boolean;
      readonly detail: string;
      /** When timedOut: the bound that stopped it, in ms (the task's gas bound, or the node's cap). */
      readonly boundMs?: number;
    };

export class RefinePool {
  private readonly pool: Piscina<RefineTask, RefineTaskResult>;
  private warmedThreadIds: readonly number[] = [];
  private nextRunId = 1;
  /** Tasks handed to the pool, by run id: what arms each one's gas watchdog once its thread takes it. */
  private readonly awaitingStart = new Map<number, (threadId: number | undefined) => void>();
  private readonly cpuNs: (threadId: number) => bigint | null;

  constructor(private readonly options: RefinePoolOptions) {
    this.cpuNs = options.threadCpuNs ?? threadCpuNs;
    const threads = Math.max(1, Math.min(options.coresCount, availableParallelism()));
    this.pool = new Piscina({
      filename: new URL("../refine/worker-entry.mjs", import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      maxQueue: POOL_QUEUE_MAX,
      workerData: { preloadModuleUrls: options.preloadModuleUrls },
    });
    // A worker's own messages (parentPort) come here; piscina's task results travel another port.
    this.pool.on("message", (message: unknown) => {
      const started = message as Partial<RefineStarted> | null;
      const runId = started?.[REFINE_STARTED];
      if (typeof runId === "number") this.awaitingStart.get(runId)?.(typeof started?.threadId === "number" ? started.threadId : undefined);
    });
  }

  /**
   * Resolves when every thread has started and loaded the services: one empty task per thread
   * (piscina gives concurrent tasks to distinct idle threads), so the watchdog of the first real
   * package does not count thread start-up.
   */
  async warm(): Promise<void> {
    const results = await Promise.all(
      Array.from({ length: this.threads }, () => this.pool.run({ packageHash: new Uint8Array(32), coreIndex: 0, items: [], availability: null })),
    );
    this.warmedThreadIds = [...new Set(results.flatMap((r) => (r.threadId === undefined ? [] : [r.threadId])))];
  }

  /** The OS ids of the threads warm() reached (Linux; empty elsewhere): a thread replaced since keeps its creator's priority. */
  get threadIds(): readonly number[] {
    return this.warmedThreadIds;
  }

  get threads(): number {
    return this.pool.options.maxThreads;
  }

  /**
   * Refines one package's items (all of them, or one group of them). Stopped at the earlier of
   * its gas bound (refineBoundMs), in CPU time of the thread that takes it, and the node's cap,
   * in wall-clock time from now. Callers keep at most `threads` tasks in flight (see JamNode.pump), so a task
   * normally starts when it is given.
   */
  async run(task: RefineTask): Promise<PoolOutcome> {
    const runId = this.nextRunId++;
    const gasBoundMs = refineBoundMs(task);
    const capMs = this.options.refineTimeoutMs;
    const abort = new AbortController();
    const stopped: { by?: { readonly boundMs: number; readonly detail: string } } = {};
    const stop = (boundMs: number, detail: string) => {
      stopped.by ??= { boundMs, detail };
      abort.abort();
    };
    const cap = setTimeout(() => stop(capMs, `refine exceeded the node's cap of ${capMs} ms`), capMs);
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const gas = declaredGas(task);
    this.awaitingStart.set(runId, (threadId) => {
      this.awaitingStart.delete(runId);
      const startNs = threadId === undefined ? null : this.cpuNs(threadId);
      // A thread never runs longer than the wall clock, so the first look is at the bound itself.
      const lookAfter = (ms: number) => {
        watchdog = setTimeout(() => {
          const nowNs = startNs === null ? null : this.cpuNs(threadId!);
          const usedMs = nowNs === null || startNs === null ? gasBoundMs : Number((nowNs - startNs) / 1_000_000n);
          if (usedMs >= gasBoundMs) stop(gasBoundMs, `refine exceeded its gas bound of ${gasBoundMs} ms (${gas} gas declared)`);
          else lookAfter(Math.max(gasBoundMs - usedMs, RECHECK_MIN_MS));
        }, ms);
      };
      lookAfter(gasBoundMs);
    });
    try {
      return { ok: true, result: await this.pool.run({ ...task, runId }, { signal: abort.signal }) };
    } catch (e) {
      if (stopped.by !== undefined) return { ok: false, timedOut: true, ...stopped.by };
      return { ok: false, timedOut: false, detail: e instanceof Error ? e.message : String(e) };
    } finally {
      this.awaitingStart.delete(runId);
      clearTimeout(cap);
      clearTimeout(watchdog);
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
