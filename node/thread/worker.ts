/**
 * The node thread: opens a JamNode (and, when asked, its JIP-2 server) and answers the host's
 * calls (host.ts). Everything the node does synchronously — intake, storing chunks with LMDB
 * commits, authoring and importing blocks — blocks this thread, not the gateway's MQTT loop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { JamNode, type NodeLogger } from "../node.ts";
import { startRpcServer } from "../rpc/server.ts";
import { CALLABLE, type HostMessage, type NodeThreadOptions, type ThreadMessage, type WireError } from "./protocol.ts";

const port = parentPort;
if (port === null) throw new Error("node/thread/worker.ts runs in a worker thread");
const post = (message: ThreadMessage, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

function wireError(e: unknown): WireError {
  if (e instanceof JamgateError) return { code: e.code, message: e.detail };
  if (!(e instanceof Error)) return { code: null, message: String(e) };
  const code = (e as { code?: unknown }).code;
  return { code: typeof code === "string" ? code : null, message: e.message, ...(e.stack === undefined ? {} : { stack: e.stack }) };
}

/** Log records go to the host's logger: one sink for the process, in the order they were made. */
const logger: NodeLogger = {
  info: (obj, msg) => postLog("info", obj, msg),
  warn: (obj, msg) => postLog("warn", obj, msg),
  error: (obj, msg) => postLog("error", obj, msg),
};

/** A log record that cannot be cloned is sent as text: logging must never throw into the node's work. */
function postLog(level: "info" | "warn" | "error", obj: object, msg?: string): void {
  try {
    post({ type: "log", level, obj: cloneable(obj), msg });
  } catch {
    let text: string;
    try {
      text = JSON.stringify(obj, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : typeof value === "function" ? "[function]" : value));
    } catch {
      text = String(obj);
    }
    post({ type: "log", level, obj: { record: text }, msg });
  }
}

/** An `err` field is sent as its code, message and stack (an Error's own class does not survive cloning). */
function cloneable(obj: object): object {
  const { err } = obj as { err?: unknown };
  return err === undefined ? obj : { ...obj, err: wireError(err) };
}

const options = workerData as NodeThreadOptions;
let node: JamNode;
let rpc: Awaited<ReturnType<typeof startRpcServer>> | null = null;
try {
  node = await JamNode.open({ ...options, logger });
  if (options.rpc !== undefined) {
    rpc = await startRpcServer(node, {
      port: options.rpc.port,
      host: options.rpc.host,
      token: options.rpc.token,
      tls: options.rpc.tls ?? null,
      log: { warn: logger.warn, error: logger.error },
    });
  }
  node.start({ authorBlocks: options.authorBlocks ?? true });
} catch (e) {
  post({ type: "failed", error: wireError(e) });
  port.close();
  throw e instanceof Error ? e : new Error(String(e));
}

const callable = new Set<string>(CALLABLE);
const subscriptions = new Map<number, Promise<() => void>>();

port.on("message", (message: HostMessage) => {
  switch (message.type) {
    case "call": {
      const { id, method, args } = message;
      if (!callable.has(method)) {
        post({ type: "result", id, ok: false, error: { code: null, message: `no method ${String(method)}` } });
        return;
      }
      void (async () => (node[method] as (...a: unknown[]) => unknown).apply(node, [...args]))().then(
        (value) => post({ type: "result", id, ok: true, value }),
        (e: unknown) => post({ type: "result", id, ok: false, error: wireError(e) }),
      );
      return;
    }
    case "subscribe": {
      const { id, sub } = message;
      const onValue = (value: unknown) => post({ type: "event", sub, value });
      const subscribed = message.kind === "bestBlock" ? node.subscribeBestBlock(onValue) : node.subscribeWorkPackageStatus(message.packageHash!, onValue);
      subscriptions.set(sub, subscribed);
      subscribed.then(
        () => post({ type: "result", id, ok: true, value: null }),
        (e: unknown) => {
          subscriptions.delete(sub);
          post({ type: "result", id, ok: false, error: wireError(e) });
        },
      );
      return;
    }
    case "unsubscribe": {
      const subscribed = subscriptions.get(message.sub);
      subscriptions.delete(message.sub);
      void subscribed?.then(
        (unsubscribe) => unsubscribe(),
        () => undefined,
      );
      return;
    }
    case "stop": {
      void (async () => {
        await rpc?.close();
        await node.stop();
        post({ type: "result", id: message.id, ok: true, value: null });
        port.close();
      })().catch((e: unknown) => post({ type: "result", id: message.id, ok: false, error: wireError(e) }));
      return;
    }
  }
});

post({ type: "ready", rpcPort: rpc?.port ?? null, slotMs: node.slotMs, bestSlot: node.bestSlot, threadIds: node.threadIds });
