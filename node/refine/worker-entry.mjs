// Entry of a refine worker thread. Worker threads do not inherit the TypeScript loader the main
// thread may have been started with (vitest, or none), so the worker registers tsx itself and
// then loads the TypeScript worker module.
import { register } from "tsx/esm/api";

register();
const { default: refineInWorker } = await import("./worker.ts");
export default refineInWorker;
