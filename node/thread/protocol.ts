/**
 * Messages between the gateway's thread and the node thread (node/thread/host.ts ↔ worker.ts).
 * Values travel by structured clone: Uint8Array, bigint and plain objects keep their types, so
 * the NodeApi's own types are the wire types and nothing is encoded by hand.
 */
import type { TlsMaterial } from "../net/servers.ts";
import type { NodeOptions } from "../node.ts";

/** What the node thread opens: NodeOptions without the logger (a function cannot be cloned; log records come back as messages). */
export type NodeThreadOptions = Omit<NodeOptions, "logger"> & {
  /** Author a block every slot (default true); false for tests that call produceBlock(). */
  readonly authorBlocks?: boolean;
  /** Serve JIP-2 over WebSocket from the node thread, so remote clients never wait on the gateway's thread. */
  readonly rpc?: {
    readonly port: number;
    readonly host: string;
    /** The credential of state-changing methods (rpc/server.ts RpcServerOptions.token). */
    readonly token: string | null;
    /** Serve wss:// with this certificate (Buffers survive structured clone). */
    readonly tls?: TlsMaterial | null;
  };
};

/** The NodeApi methods (and node extras) the host may call; anything else is refused in the thread. */
export const CALLABLE = [
  "parameters",
  "bestBlock",
  "finalizedBlock",
  "block",
  "stateRoot",
  "listServices",
  "serviceData",
  "serviceValue",
  "serviceValueProof",
  "submitWorkPackage",
  "workPackageStatus",
  "workReport",
  "fetchWorkPackage",
  "submitChunk",
  "submitAssurance",
  "produceBlock",
  "errorStats",
] as const;
export type Callable = (typeof CALLABLE)[number];

export type SubscriptionKind = "bestBlock" | "workPackageStatus";

export type HostMessage =
  | { readonly type: "call"; readonly id: number; readonly method: Callable; readonly args: readonly unknown[] }
  | { readonly type: "subscribe"; readonly id: number; readonly sub: number; readonly kind: SubscriptionKind; readonly packageHash?: Uint8Array }
  | { readonly type: "unsubscribe"; readonly sub: number }
  | { readonly type: "stop"; readonly id: number };

/** A thrown error as it crosses: JamgateErrors keep their code. */
export interface WireError {
  /** The JG code of a JamgateError, else a Node system error's code (e.g. EADDRINUSE), else null. */
  readonly code: string | null;
  readonly message: string;
  /** Where it was thrown, in the node thread. */
  readonly stack?: string;
}

export type ThreadMessage =
  | { readonly type: "ready"; readonly rpcPort: number | null; readonly slotMs: number; readonly bestSlot: number; readonly threadIds: readonly number[] }
  | { readonly type: "failed"; readonly error: WireError }
  | { readonly type: "result"; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: "result"; readonly id: number; readonly ok: false; readonly error: WireError }
  | { readonly type: "event"; readonly sub: number; readonly value: unknown }
  | { readonly type: "log"; readonly level: "info" | "warn" | "error"; readonly obj: object; readonly msg?: string };
