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
}

/** Tasks waiting for a thread; the node's per-core queues hold the rest, so this need not be large. */
const POOL_QUEUE_MAX = 64;

export type PoolOutcome = { readonly ok: true; readonly result: RefineTaskResult } | { readonly ok: false; readonly timedOut: boolean; readonly detail: string };

export class RefinePool {
  private readonly pool: Piscina<RefineTask, RefineTaskResult>;

  constructor(private readonly options: RefinePoolOptions) {
    const threads = Math.max(1, Math.min(options.coresCount, availableParallelism()));
    this.pool = new Piscina({
      filename: new URL("../refine/worker-entry.mjs", import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      maxQueue: POOL_QUEUE_MAX,
    });
  }

  get threads(): number {
    return this.pool.options.maxThreads;
  }

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
