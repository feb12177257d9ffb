/**
 * The child process of bench/node-start.ts and bench/market-week.ts: opens the node on an existing
 * data dir in a fresh process, as `jamgate node start` does after a restart, and reports how long
 * JamNode.open took (until it has checked the state against the best block's root), the process's
 * memory after a full garbage collection with the node open (refine threads included), and then,
 * with the node stopped, the parts of that open timed one by one in the same process: LMDB opened
 * (Store), every state entry read and put in the trie (State.fromEntries), the first root (every
 * node hashed).
 *
 * Driven over IPC (lib/proc.ts Child): `open` with the dataDir and the genesis services (structured
 * clone carries their bigints and keys); one open per process, so each is a cold start of V8 with
 * the data dir in the OS page cache.
 */
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { GenesisService } from "../../node/chain/genesis.ts";
import type { ChainName } from "../../node/chain/params.ts";
import { JamNode } from "../../node/node.ts";
import { State } from "../../node/state/kv.ts";
import { Store } from "../../node/storage/store.ts";
import { serve } from "./proc.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

export interface OpenMeasured {
  /** JamNode.open: LMDB, genesis, the state read and rooted, checked against the best block, refine threads warmed. */
  readonly openMs: number;
  /** The same on the main thread's CPU clock (the refine threads' start-up is not in it). */
  readonly openCpuMs: number;
  readonly bestSlot: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly arrayBuffersBytes: number;
  /** The parts, timed again after stop(): */
  readonly storeOpenMs: number;
  readonly readAndBuildMs: number;
  readonly firstRootMs: number;
  readonly readAndBuildCpuMs: number;
  readonly firstRootCpuMs: number;
  readonly stateEntries: number;
}

/** CPU time of the calling thread in ms (Linux /proc/thread-self/schedstat); NaN where there is none. */
function threadCpuMs(): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** JamNode.open timed on both clocks, the memory with the node open, then the node stopped. */
async function openOnce(dataDir: string, services: GenesisService[], chain: ChainName) {
  gc();
  const started = performance.now();
  const cpu = threadCpuMs();
  const node = await JamNode.open({ dataDir, chain, services });
  const openMs = performance.now() - started;
  const openCpuMs = threadCpuMs() - cpu;
  const bestSlot = node.bestSlot;
  gc();
  const memory = process.memoryUsage();
  await node.stop();
  return { openMs, openCpuMs, bestSlot, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, arrayBuffersBytes: memory.arrayBuffers };
}

serve({
  async open(args): Promise<OpenMeasured> {
    const dataDir = args.dataDir as string;
    const services = args.services as GenesisService[];
    const chain = (args.chain as ChainName | undefined) ?? "tiny";
    const opened = await openOnce(dataDir, services, chain);
    // The node is stopped and dropped: the parts below are timed without its state in the heap.
    gc();

    let started = performance.now();
    let cpu: number;
    const store = new Store(dataDir);
    const storeOpenMs = performance.now() - started;
    try {
      started = performance.now();
      cpu = threadCpuMs();
      const state = State.fromEntries(store.stateEntries());
      const readAndBuildMs = performance.now() - started;
      const readAndBuildCpuMs = threadCpuMs() - cpu;
      started = performance.now();
      cpu = threadCpuMs();
      state.root();
      const firstRootMs = performance.now() - started;
      const firstRootCpuMs = threadCpuMs() - cpu;
      return {
        ...opened,
        storeOpenMs,
        readAndBuildMs,
        firstRootMs,
        readAndBuildCpuMs,
        firstRootCpuMs,
        stateEntries: state.size,
      };
    } finally {
      await store.close();
    }
  },
});
