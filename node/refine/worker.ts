/** The refine worker thread's task function (piscina calls the default export). */
import { cachedLoader, refinePackage } from "./refine.ts";
import type { RefineTask, RefineTaskResult } from "./task.ts";

const load = cachedLoader();

export default function refineInWorker(task: RefineTask): Promise<RefineTaskResult> {
  return refinePackage(task, load);
}
