/** What the main thread sends a refine worker and what comes back: plain data, cloneable. */
import type { EncodedBundle } from "../availability/bundle.ts";
import type { ChainName } from "../chain/params.ts";

export interface RefineItemTask {
  readonly serviceId: number;
  /** Module URL of the service's code (resolved from its code hash by the node). */
  readonly moduleUrl: string;
  readonly payload: Uint8Array;
  readonly gasLimit: bigint;
}

export interface RefineTask {
  /** The pool's id of this run, which the worker reports when it takes the task (RefineStarted); none for warm-up tasks. */
  readonly runId?: number;
  readonly packageHash: Uint8Array;
  readonly coreIndex: number;
  /** The package's index of the first of `items`: a package's items may be refined in several tasks at once. */
  readonly itemOffset?: number;
  readonly items: readonly RefineItemTask[];
  /** The bundle to erasure-code once refine succeeds (the guarantor's next step), or null. */
  readonly availability: { readonly chain: ChainName; readonly bundle: Uint8Array } | null;
}

export type RefineItemOutcome =
  | { readonly ok: true; readonly output: Uint8Array; readonly payloadHash: Uint8Array; readonly gasUsed: bigint }
  | { readonly ok: false; readonly code: "JG_ERR_REFINE_OUT_OF_GAS" | "JG_ERR_REFINE_PANIC"; readonly detail: string; readonly gasUsed: bigint };

export interface RefineTaskResult {
  readonly items: readonly RefineItemOutcome[];
  /** The OS id of the thread that ran the task (Linux), for thread priorities (node/thread/priority.ts). */
  readonly threadId?: number;
  /** The erasure-coded bundle, when asked for and refine succeeded. */
  readonly availability?: EncodedBundle;
}

/** The key of the message a refine worker posts (on its parentPort) when it takes a task. */
export const REFINE_STARTED = "refineStarted";

/**
 * Posted by the worker as it takes the task with this run id, before any of the task's work: the
 * pool arms the task's gas watchdog then, so a wait for a thread is not charged to the package,
 * and charges it the CPU time of the thread named (Linux), so a wait for a CPU is not either.
 */
export interface RefineStarted {
  readonly [REFINE_STARTED]: number;
  /** The OS id of the thread that took the task, where there is one. */
  readonly threadId?: number;
}
