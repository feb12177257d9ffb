/**
 * The refine worker thread's task function (piscina calls the default export): a guarantor's
 * work on one package, refine and then erasure coding. Service modules
 * named in workerData are imported before the thread takes its first task, so module loading
 * is not charged to a package's watchdog time.
 */
import { parentPort, workerData } from "node:worker_threads";
import { move, transferableSymbol, valueSymbol } from "piscina";
import { encodeBundle } from "../availability/bundle.ts";
import { currentThreadId } from "../thread/priority.ts";
import { cachedLoader, refinePackage } from "./refine.ts";
import { REFINE_STARTED, type RefineStarted, type RefineTask, type RefineTaskResult } from "./task.ts";

const load = cachedLoader();
const threadId = currentThreadId() ?? undefined;
const preload = (workerData as { preloadModuleUrls?: string[] } | undefined)?.preloadModuleUrls ?? [];
await Promise.all(preload.map((url) => load(url)));

/**
 * Says it has taken the task (the pool then arms the task's gas watchdog), refines, then (when
 * every item succeeded) erasure-codes the bundle for availability. The chunks
 * (views into one buffer, 3× the bundle on the tiny chain: 41 MB for a full one) are moved to the
 * node thread, not copied: a copy was made twice per package (into the message and out of it).
 */
export default async function refineInWorker(task: RefineTask): Promise<RefineTaskResult> {
  // The message is queued for the node thread at once, so it gets there even if refine then spins.
  if (task.runId !== undefined) parentPort?.postMessage({ [REFINE_STARTED]: task.runId, threadId } satisfies RefineStarted);
  const result = { ...(await refinePackage(task, load)), threadId };
  if (task.availability === null || !result.items.every((i) => i.ok) || result.items.length !== task.items.length) return result;
  const availability = encodeBundle(task.availability.chain, task.availability.bundle);
  const chunksBuffer = availability.chunks[0]?.buffer;
  if (chunksBuffer === undefined || availability.chunks.some((c) => c.buffer !== chunksBuffer)) return { ...result, availability };
  // piscina transfers what a movable result lists under transferableSymbol, and hands over its valueSymbol.
  return move({ [transferableSymbol]: [chunksBuffer], [valueSymbol]: { ...result, availability } }) as unknown as RefineTaskResult;
}
