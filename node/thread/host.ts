/**
 * The embedded node on its own thread. `jamgate start` runs the gateway and the node in one
 * process; on one thread, the node's synchronous work (intake of 13 MB packages, chunk storage
 * with LMDB commits, block import) held up MQTT acceptance for hundreds of ms at a time
 * (BENCHMARKS.md §5.2). NodeThread is a NodeApi: the gateway drives it as it drives a remote
 * node, by messages, and never waits on it.
 *
 * Why not piscina (the refine pool's library): the node is one long-lived stateful thread with
 * subscriptions that push events back, not a pool of stateless tasks.
 */
import { Worker } from "node:worker_threads";
import type { BlockDescriptor, ChainParameters, NodeApi, ServiceValueProof, Unsubscribe, WorkPackageStatus } from "../api.ts";
import type { ChunkProof } from "../availability/erasure.ts";
import { type ErrorCode, errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import type { NodeLogger } from "../node.ts";
import type { Callable, HostMessage, NodeThreadOptions, SubscriptionKind, ThreadMessage, WireError } from "./protocol.ts";

export type { NodeThreadOptions } from "./protocol.ts";

/**
 * Calls waiting for the node thread's answer. Every caller awaits its call, so this counts
 * callers (the gateway keeps a few packages in flight; the HTTP API's reads are bounded by its
 * connections); past it a call fails at once instead of growing the queue without bound.
 */
export const NODE_THREAD_CALLS_PENDING_MAX = 10_000;
/** Open subscriptions (one per package in flight, plus block followers). */
export const NODE_THREAD_SUBSCRIPTIONS_MAX = 100_000;

/** The thread's error as the caller would have seen it in-process: a JamgateError, or an Error with the system code and the thread's stack. */
function toError(error: WireError): Error {
  if (error.code !== null && error.code in errorRegistry) return new JamgateError(error.code as ErrorCode, error.message);
  const out = new Error(error.message) as Error & { code?: string };
  if (error.code !== null) out.code = error.code;
  if (error.stack !== undefined) out.stack = error.stack;
  return out;
}

/**
 * An onExit hook that ends the process: the thread's end logged at fatal, then the error thrown
 * outside any handler, so the process exits non-zero and a supervisor restarts it on its data dir.
 * For a process that is nothing without its node (`jamgate start`, `jamgate node start`).
 */
export function endProcessOnExit(log: { fatal(obj: object, msg: string): void }): (error: Error) => void {
  return (error) => {
    log.fatal({ err: error }, "the node thread ended");
    setImmediate(() => {
      throw error;
    });
  };
}

export interface NodeThreadHooks {
  readonly logger?: NodeLogger;
  /** The thread ended without stop(): every pending call has failed; the caller decides what follows. */
  readonly onExit?: (error: Error) => void;
}

export class NodeThread implements NodeApi {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly subscribers = new Map<number, (value: never) => void>();
  private stopping = false;
  private exited: Error | null = null;
  private best: number;

  private constructor(
    private readonly worker: Worker,
    readonly slotMs: number,
    readonly rpcPort: number | null,
    bestSlot: number,
    /** The OS ids of the node's critical-path threads (its own and the refine threads; Linux): see priority.ts. */
    readonly threadIds: readonly number[],
    private readonly hooks: NodeThreadHooks,
  ) {
    this.best = bestSlot;
  }

  /** Starts the thread and resolves once its node has opened (and authors blocks, unless told not to). */
  static open(options: NodeThreadOptions, hooks: NodeThreadHooks = {}): Promise<NodeThread> {
    const worker = new Worker(new URL("./entry.mjs", import.meta.url), { workerData: options });
    return new Promise<NodeThread>((resolve, reject) => {
      const early = (error: Error) => reject(error);
      const earlyExit = (code: number) => reject(new Error(`the node thread exited with code ${code} before it opened`));
      worker.once("error", early);
      worker.once("exit", earlyExit);
      const onOpen = (message: ThreadMessage) => {
        if (message.type === "log") return log(hooks.logger, message);
        worker.off("message", onOpen);
        worker.off("error", early);
        worker.off("exit", earlyExit);
        if (message.type === "failed") {
          void worker.terminate();
          return reject(toError(message.error));
        }
        if (message.type !== "ready") return reject(new Error(`the node thread sent ${message.type} before ready`));
        const thread = new NodeThread(worker, message.slotMs, message.rpcPort, message.bestSlot, message.threadIds, hooks);
        thread.attach();
        resolve(thread);
      };
      worker.on("message", onOpen);
    });
  }

  private attach(): void {
    this.worker.on("message", (message: ThreadMessage) => this.receive(message));
    this.worker.on("error", (error) => this.end(error));
    this.worker.on("exit", (code) => this.end(new Error(`the node thread exited with code ${code}`)));
    // The best block is followed here so `bestSlot` answers without a round trip.
    void this.subscribeBestBlock((b) => (this.best = Math.max(this.best, b.slot))).catch(() => undefined);
  }

  private receive(message: ThreadMessage): void {
    switch (message.type) {
      case "result": {
        const call = this.pending.get(message.id);
        if (call === undefined) return;
        this.pending.delete(message.id);
        if (message.ok) call.resolve(message.value);
        else call.reject(toError(message.error));
        return;
      }
      case "event":
        this.subscribers.get(message.sub)?.(message.value as never);
        return;
      case "log":
        log(this.hooks.logger, message);
        return;
      default:
        return;
    }
  }

  private end(error: Error): void {
    if (this.exited !== null) return;
    this.exited = error;
    const stopped = new JamgateError("JG_ERR_NODE_STOPPED", error.message);
    for (const call of this.pending.values()) call.reject(stopped);
    this.pending.clear();
    this.subscribers.clear();
    if (!this.stopping) this.hooks.onExit?.(error);
  }

  private send(message: HostMessage | ((id: number) => HostMessage)): Promise<unknown> {
    if (this.exited !== null) return Promise.reject(new JamgateError("JG_ERR_NODE_STOPPED", this.exited.message));
    if (this.pending.size >= NODE_THREAD_CALLS_PENDING_MAX)
      return Promise.reject(new Error(`${NODE_THREAD_CALLS_PENDING_MAX} calls are waiting for the node thread`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(typeof message === "function" ? message(id) : message);
    });
  }

  private call<T>(method: Callable, ...args: unknown[]): Promise<T> {
    return this.send((id) => ({ type: "call", id, method, args })) as Promise<T>;
  }

  private async subscribe<T>(kind: SubscriptionKind, onValue: (value: T) => void, packageHash?: Uint8Array): Promise<Unsubscribe> {
    if (this.subscribers.size >= NODE_THREAD_SUBSCRIPTIONS_MAX) throw new Error(`more than ${NODE_THREAD_SUBSCRIPTIONS_MAX} subscriptions to the node thread`);
    const sub = this.nextId++;
    // Registered before the request: the thread sends the current status before it answers.
    this.subscribers.set(sub, onValue as (value: never) => void);
    try {
      await this.send((id) => ({ type: "subscribe", id, sub, kind, ...(packageHash === undefined ? {} : { packageHash }) }));
    } catch (e) {
      this.subscribers.delete(sub);
      throw e;
    }
    return () => {
      if (!this.subscribers.delete(sub) || this.exited !== null) return;
      this.worker.postMessage({ type: "unsubscribe", sub } satisfies HostMessage);
    };
  }

  /** The best slot seen (followed by subscription; may lag the thread by one message). */
  get bestSlot(): number {
    return this.best;
  }

  async stop(): Promise<void> {
    if (this.stopping || this.exited !== null) return;
    this.stopping = true;
    const exit = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    await this.send((id) => ({ type: "stop", id }));
    await exit;
  }

  // ---- NodeApi ----

  parameters = (): Promise<ChainParameters> => this.call("parameters");
  bestBlock = (): Promise<BlockDescriptor> => this.call("bestBlock");
  finalizedBlock = (): Promise<BlockDescriptor> => this.call("finalizedBlock");
  subscribeBestBlock = (onBlock: (block: BlockDescriptor) => void): Promise<Unsubscribe> => this.subscribe("bestBlock", onBlock);
  block = (headerHash: Uint8Array): Promise<Uint8Array | null> => this.call("block", headerHash);
  stateRoot = (headerHash: Uint8Array): Promise<Uint8Array> => this.call("stateRoot", headerHash);
  listServices = (headerHash: Uint8Array): Promise<number[]> => this.call("listServices", headerHash);
  serviceData = (headerHash: Uint8Array, serviceId: number): Promise<Uint8Array | null> => this.call("serviceData", headerHash, serviceId);
  serviceValue = (headerHash: Uint8Array, serviceId: number, key: Uint8Array): Promise<Uint8Array | null> =>
    this.call("serviceValue", headerHash, serviceId, key);
  serviceValueProof = (serviceId: number, key: Uint8Array): Promise<ServiceValueProof | null> => this.call("serviceValueProof", serviceId, key);
  /** The package is copied to the thread (structured clone): the caller keeps its bytes for retries. */
  submitWorkPackage = (core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Promise<Uint8Array> =>
    this.call("submitWorkPackage", core, workPackage, extrinsics);
  workPackageStatus = (packageHash: Uint8Array): Promise<WorkPackageStatus | null> => this.call("workPackageStatus", packageHash);
  subscribeWorkPackageStatus = (packageHash: Uint8Array, onStatus: (status: WorkPackageStatus) => void): Promise<Unsubscribe> =>
    this.subscribe("workPackageStatus", onStatus, packageHash);
  workReport = (reportHash: Uint8Array): Promise<Uint8Array | null> => this.call("workReport", reportHash);
  fetchWorkPackage = (packageHash: Uint8Array): Promise<Uint8Array> => this.call("fetchWorkPackage", packageHash);
  submitChunk = (erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Promise<void> =>
    this.call("submitChunk", erasureRoot, index, chunk, proof);
  submitAssurance = (assurance: Uint8Array): Promise<void> => this.call("submitAssurance", assurance);

  // ---- node extras (tests, tools, metrics) ----

  /** Authors the next block now (for a thread opened with authorBlocks: false). */
  produceBlock = (): Promise<BlockDescriptor> => this.call("produceBlock");
  /** Coded errors the node counted since start, by code. */
  errorStats = (): Promise<Readonly<Record<string, number>>> => this.call("errorStats");
}

function log(logger: NodeLogger | undefined, message: Extract<ThreadMessage, { type: "log" }>): void {
  logger?.[message.level](message.obj, message.msg);
}
