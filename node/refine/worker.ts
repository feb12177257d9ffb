/**
 * The refine worker thread's task function (piscina calls the default export). Service modules
 * named in workerData are imported before the thread takes its first task, so module loading
 * is not charged to a package's watchdog time.
 */
import { workerData } from "node:worker_threads";
import { cachedLoader, refinePackage } from "./refine.ts";
import type { RefineTask, RefineTaskResult } from "./task.ts";

const load = cachedLoader();
const preload = (workerData as { preloadModuleUrls?: string[] } | undefined)?.preloadModuleUrls ?? [];
await Promise.all(preload.map((url) => load(url)));

export default function refineInWorker(task: RefineTask): Promise<RefineTaskResult> {
  return refinePackage(task, load);
}
