/**
 * The refine worker pool: one worker thread per core (up to the machine's parallelism), from
 * piscina. Each task is watched by a wall-clock watchdog: native code cannot be metered per
 * instruction, so a refine that loops without calling the host is stopped by aborting its task,
 * which terminates its worker thread (piscina replaces it) and fails the package.
 */
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { RefineTask, RefineTaskResult } from "../refine/task.ts";

export interface RefinePoolOptions {
  readonly coresCount: number;
  /** Wall-clock limit of one package's refine, in ms. */
  readonly refineTimeoutMs: number;
  /** Service modules every worker imports at start. */
  readonly preloadModuleUrls: readonly string[];
}

/** Tasks waiting for a thread; the node's per-core queues hold the rest, so this need not be large. */
const POOL_QUEUE_MAX = 64;

export type PoolOutcome = { readonly ok: true; readonly result: RefineTaskResult } | { readonly ok: false; readonly timedOut: boolean; readonly detail: string };

export class RefinePool {
  private readonly pool: Piscina<RefineTask, RefineTaskResult>;
  private warmedThreadIds: readonly number[] = [];

  constructor(private readonly options: RefinePoolOptions) {
    const threads = Math.max(1, Math.min(options.coresCount, availableParallelism()));
    this.pool = new Piscina({
      filename: new URL("../refine/worker-entry.mjs", import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      maxQueue: POOL_QUEUE_MAX,
      workerData: { preloadModuleUrls: options.preloadModuleUrls },
    });
  }

  /**
   * Resolves when every thread has started and loaded the services: one empty task per thread
   * (piscina gives concurrent tasks to distinct idle threads), so the watchdog of the first real
   * package does not count thread start-up.
   */
  async warm(): Promise<void> {
    const results = await Promise.all(Array.from({ length: this.threads }, () => this.pool.run({ packageHash: new Uint8Array(32), coreIndex: 0, items: [], availability: null })));
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
   * Refines one package. Callers keep at most `threads` tasks in flight (see JamNode.pump), so a
   * task starts when it is given and the watchdog measures its run, not a wait in a queue.
   */
  async run(task: RefineTask): Promise<PoolOutcome> {
    const abort = new AbortController();
    const watchdog = setTimeout(() => abort.abort(), this.options.refineTimeoutMs);
    try {
      return { ok: true, result: await this.pool.run(task, { signal: abort.signal }) };
    } catch (e) {
      if (abort.signal.aborted) return { ok: false, timedOut: true, detail: `refine exceeded ${this.options.refineTimeoutMs} ms` };
      return { ok: false, timedOut: false, detail: e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(watchdog);
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
