// Entry of the node thread. Worker threads do not inherit the TypeScript loader the main thread
// may have been started with (vitest, or none), so the thread registers tsx itself and then
// loads the TypeScript module.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
