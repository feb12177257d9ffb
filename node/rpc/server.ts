/**
 * JIP-2 node RPC server (polkadot-fellows/JIPs, JIP-2.md): JSON-RPC 2.0 over WebSocket, serving a
 * NodeApi. Wire forms are in wire.ts.
 *
 * Every text frame gets one response, except a valid Notification (JSON-RPC 2.0 §4.1), which gets
 * none; a frame the server cannot use gets an error whose data.code is the JG_ERR_RPC_* code, and
 * the connection stays open. Binary frames are refused with -32600 (JIP-2 requests are JSON text).
 * Batches (JSON-RPC 2.0 §6) are refused with -32600 too: JIP-2 clients send one request per frame,
 * and that keeps the per-connection bounds below simple. Frames over maxPayloadBytes are refused by
 * ws closing the connection with 1009 (no request id can be read from a frame that is not read).
 */
import type { IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import type { NodeApi, Unsubscribe } from "../api.ts";
import { type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import { createBoundedServer, isLoopback, listen, type ServerLimits, serverLimits, type TlsMaterial, tokensMatch } from "../net/servers.ts";
import {
  asArray,
  asBlob,
  asBool,
  asHash,
  asU32,
  blockToWire,
  codedRpcError,
  frameBuffer,
  idOf,
  type JsonRpcId,
  parseRequest,
  positional,
  type RpcErrorObject,
  type RpcRequest,
  statusToWire,
  toBase64,
  valueProofToWire,
} from "./wire.ts";

/** JIP-2 "Protocol": WebSocket on port 19800. */
export const DEFAULT_RPC_PORT = 19800;
/** W_B = 13,791,360 bytes (a package with its extrinsics) is 18,388,480 base64 characters; 20 MiB adds room for the JSON. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 20 * 1024 * 1024;
/** Each connection holds a socket, buffers and subscriptions; a node's local clients need far fewer. Sockets past it are closed on accept. */
export const MAX_CONNECTIONS = 256;
/**
 * WebSockets without the RPC token (read-only, from loopback only) held at once: half of
 * MAX_CONNECTIONS, so idle read-only sockets can never take the room of a client that has the
 * token (the gateway): 256 idle WebSockets used to lock every other client out.
 */
export const MAX_READ_ONLY_CONNECTIONS = 128;
/** Sockets from one non-loopback address at once, upgraded or not: one remote host cannot take every connection. */
export const MAX_CONNECTIONS_PER_REMOTE_ADDRESS = 16;
/**
 * Largest frame a connection without the token may send: read requests are a few hundred bytes.
 * ws refuses a frame whose header declares more before reading its payload, so a half-sent frame
 * holds at most this much (ten half-sent 19 MiB frames used to hold 186 MiB).
 */
export const READ_ONLY_MAX_PAYLOAD_BYTES = 64 * 1024;
/** A WebSocket that holds no subscription and has sent no frame for 60 s is closed (within 5 s past it): it costs a socket and does nothing. */
export const IDLE_CONNECTION_MS = 60_000;
/** Each subscription holds a NodeApi callback; one client must not register them without bound. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 1024;
/** Requests in flight per connection; past it the server stops reading that socket, so TCP pushes back. */
export const MAX_IN_FLIGHT_PER_CONNECTION = 64;
/** Bytes of requests in flight per connection, the same way: 64 full-size packages would hold over 1 GiB. */
export const MAX_IN_FLIGHT_BYTES_PER_CONNECTION = 64 * 1024 * 1024;
/** Unsent bytes per connection; a client that reads slower than it asks is cut off rather than buffered for. */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** Longest method name quoted back in an error or a log line. */
const QUOTE_LIMIT = 64;

/** The subset of a pino logger the server uses. */
export interface RpcLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const silent: RpcLogger = { warn() {}, error() {} };

export interface RpcServerOptions {
  readonly port?: number;
  readonly host?: string;
  /** Frame limit of connections that presented the token (W_B packages); read-only ones have READ_ONLY_MAX_PAYLOAD_BYTES. */
  readonly maxPayloadBytes?: number;
  readonly log?: RpcLogger;
  /**
   * The credential of state-changing methods (submitWorkPackage, submitChunk, submitAssurance): a
   * client presents it as `Authorization: Bearer <token>` in its WebSocket handshake. Without it a
   * client may only read, and only from loopback; a wrong one is refused at the handshake (401).
   * Compared in constant time, never logged. Null or absent: nobody may change state.
   */
  readonly token?: string | null;
  /** Serve wss:// with this certificate; null or absent: ws://. */
  readonly tls?: TlsMaterial | null;
  /** Overrides of serverLimits and of this server's own bounds (tests use small ones). */
  readonly limits?: Partial<ServerLimits> & { readonly idleConnectionMs?: number; readonly readOnlyConnectionsMax?: number };
}

/** Counters for a metrics endpoint. */
export interface RpcServerStats {
  /** Error responses and refused frames, by JG code. */
  readonly errors: Partial<Record<ErrorCode, number>>;
  /** Failures that are not JamgateErrors, all logged: NodeApi throws (answered -32603), values that do not serialize. */
  internalErrors: number;
  rejectedConnections: number;
  slowConsumersDropped: number;
  /** Handshakes refused for a wrong token, or for none from a non-loopback address. */
  unauthorizedHandshakes: number;
  /** Connections closed for idling (no subscription, no frame for IDLE_CONNECTION_MS). */
  idleClosed: number;
}

export interface RpcServer {
  /** The bound port (the OS's choice when asked for port 0). */
  readonly port: number;
  readonly stats: RpcServerStats;
  close(): Promise<void>;
}

/** A JIP-2 subscription update: a "result", or an "error" String. */
type Update = { readonly result: unknown } | { readonly error: string };
/** Takes the update lazily, so a value that fails to convert is logged instead of thrown into the NodeApi. */
type Emit = (update: () => Update) => void;

interface CallSpec {
  readonly kind: "call";
  /** Changes node state: needs the token. */
  readonly writes: boolean;
  /** JIP-2 parameter names in order; the last `optional` may be left out. */
  readonly params: readonly string[];
  readonly optional: number;
  run(params: readonly unknown[]): Promise<unknown>;
}

interface SubscribeSpec {
  readonly kind: "subscribe";
  readonly params: readonly string[];
  readonly optional: number;
  start(params: readonly unknown[], emit: Emit): Promise<Unsubscribe>;
}

interface UnsubscribeSpec {
  readonly kind: "unsubscribe";
  readonly params: readonly string[];
  readonly optional: number;
  /** The subscribe method whose subscriptions this stops. */
  readonly of: string;
}

type MethodSpec = CallSpec | SubscribeSpec | UnsubscribeSpec;

const call = (params: readonly string[], run: CallSpec["run"], optional = 0): CallSpec => ({ kind: "call", writes: false, params, optional, run });
/** A call that changes node state: only for connections that presented the token. */
const write = (params: readonly string[], run: CallSpec["run"]): CallSpec => ({ kind: "call", writes: true, params, optional: 0, run });
const subscription = (params: readonly string[], start: SubscribeSpec["start"], optional = 0): SubscribeSpec => ({
  kind: "subscribe",
  params,
  optional,
  start,
});

/** The JIP-2 methods the node serves, by name. */
function methodTable(api: NodeApi): ReadonlyMap<string, MethodSpec> {
  const blockUpdates = async ([finalized]: readonly unknown[], emit: Emit) => {
    // JIP-2 chain subscriptions take a `finalized` flag; the embedded node finalizes on import, so both chains are one.
    if (finalized !== undefined) asBool(finalized, "finalized");
    return api.subscribeBestBlock((block) => emit(() => ({ result: blockToWire(block) })));
  };
  const table = new Map<string, MethodSpec>([
    ["parameters", call([], async () => ({ V1: await api.parameters() }))],
    ["bestBlock", call([], async () => blockToWire(await api.bestBlock()))],
    ["finalizedBlock", call([], async () => blockToWire(await api.finalizedBlock()))],
    ["subscribeBestBlock", subscription(["finalized"], blockUpdates, 1)],
    ["subscribeFinalizedBlock", subscription(["finalized"], blockUpdates, 1)],
    // Not in JIP-2: the GP-encoded block, Null when unknown (proofs need the headers above a state root).
    ["block", call(["header_hash"], async ([h]) => nullableBlob(await api.block(asHash(h, "header_hash"))))],
    ["stateRoot", call(["header_hash"], async ([h]) => toBase64(await api.stateRoot(asHash(h, "header_hash"))))],
    ["listServices", call(["header_hash"], async ([h]) => api.listServices(asHash(h, "header_hash")))],
    ["serviceData", call(["header_hash", "id"], async ([h, id]) => nullableBlob(await api.serviceData(asHash(h, "header_hash"), asU32(id, "id"))))],
    [
      "serviceValue",
      call(["header_hash", "id", "key"], async ([h, id, key]) =>
        nullableBlob(await api.serviceValue(asHash(h, "header_hash"), asU32(id, "id"), asBlob(key, "key"))),
      ),
    ],
    [
      // Not in JIP-2: the value with its GP D.2 inclusion proof under the best block's state root.
      "serviceValueProof",
      call(["id", "key"], async ([id, key]) => {
        const proof = await api.serviceValueProof(asU32(id, "id"), asBlob(key, "key"));
        return proof === null ? null : valueProofToWire(proof);
      }),
    ],
    [
      "submitWorkPackage",
      write(["core", "package", "extrinsics"], async ([core, pkg, xs]) => {
        const extrinsics = asArray(xs, "extrinsics").map((x, i) => asBlob(x, `extrinsics[${i}]`));
        await api.submitWorkPackage(asU32(core, "core"), asBlob(pkg, "package"), extrinsics);
        return null; // JIP-2 result is Null; clients compute the package hash, H(package), themselves.
      }),
    ],
    [
      "workPackageStatus",
      // The embedded node tracks packages by hash alone: header_hash and anchor are checked, then unused.
      call(["header_hash", "hash", "anchor"], async ([h, p, a]) => {
        asHash(h, "header_hash");
        const packageHash = asHash(p, "hash");
        asHash(a, "anchor");
        const status = await api.workPackageStatus(packageHash);
        return status === null ? null : statusToWire(status);
      }),
    ],
    [
      "subscribeWorkPackageStatus",
      subscription(["hash", "anchor", "finalized"], async ([p, a, f], emit) => {
        const packageHash = asHash(p, "hash");
        asHash(a, "anchor");
        asBool(f, "finalized");
        // Each update is a JIP-2 Chain Subscription Update naming the best block when the status
        // changed; reading it is async, so updates are chained to leave in the order they came.
        let previous = Promise.resolve();
        return api.subscribeWorkPackageStatus(packageHash, (status) => {
          previous = previous
            .then(() => api.bestBlock())
            .then(
              (best) => emit(() => ({ result: { ...blockToWire(best), value: statusToWire(status) } })),
              (e: unknown) => emit(() => ({ error: `cannot report a status update: ${errorMessage(e)}` })),
            );
        });
      }),
    ],
    [
      "workReport",
      call(["hash"], async ([r]) => {
        const report = await api.workReport(asHash(r, "hash"));
        if (report === null) throw new JamgateError("JG_ERR_RPC_REPORT_UNKNOWN"); // JIP-2: a Blob, or error 2
        return toBase64(report);
      }),
    ],
    // Not in JIP-2: data availability (node/availability).
    ["fetchWorkPackage", call(["wp_hash"], async ([h]) => toBase64(await api.fetchWorkPackage(asHash(h, "wp_hash"))))],
    [
      "submitChunk",
      write(["erasure_root", "index", "chunk", "segments_root", "path"], async ([root, index, chunk, segmentsRoot, path]) => {
        const proof = { segmentsRoot: asHash(segmentsRoot, "segments_root"), path: asArray(path, "path").map((p, i) => asBlob(p, `path[${i}]`)) };
        await api.submitChunk(asHash(root, "erasure_root"), asU32(index, "index"), asBlob(chunk, "chunk"), proof);
        return null;
      }),
    ],
    [
      "submitAssurance",
      write(["assurance"], async ([a]) => {
        await api.submitAssurance(asBlob(a, "assurance"));
        return null;
      }),
    ],
  ]);
  // JIP-2 "Subscriptions": each subscribeX has an unsubscribeX taking the subscription id.
  for (const [name, spec] of [...table]) {
    if (spec.kind === "subscribe") table.set(`un${name}`, { kind: "unsubscribe", params: ["id"], optional: 0, of: name });
  }
  return table;
}

function nullableBlob(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : toBase64(bytes);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text);
}

/** The request a method error came from. */
interface Origin {
  readonly method: string;
  readonly spec: MethodSpec;
  readonly params: unknown;
}

/**
 * JIP-2 "Error codes": error 1 carries the block's header hash and error 2 the report's hash, the
 * first parameter of the methods that raise them (sent back as given, it passed asHash already).
 */
function subjectOf(code: ErrorCode, { method, spec, params }: Origin): Record<string, unknown> {
  const first: unknown = Array.isArray(params) ? params[0] : undefined;
  if (code === "JG_ERR_RPC_BLOCK_UNKNOWN" && spec.params[0] === "header_hash") return { header_hash: first };
  if (code === "JG_ERR_RPC_REPORT_UNKNOWN" && method === "workReport") return { report_hash: first };
  return {};
}

/** What connections share: the method table, counters, logger and subscription ids. */
class ServerContext {
  private lastSubscriptionId = 0;

  constructor(
    readonly methods: ReadonlyMap<string, MethodSpec>,
    readonly stats: RpcServerStats,
    readonly log: RpcLogger,
  ) {}

  nextSubscriptionId(): number {
    return ++this.lastSubscriptionId;
  }

  count(code: ErrorCode): void {
    this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
  }

  internal(e: unknown, fields: object, message: string): void {
    this.stats.internalErrors++;
    this.log.error({ ...fields, err: e }, message);
  }
}

/**
 * One subscription on one connection. Updates wait in `queued` until the subscribe response has
 * been sent, so a client never sees a notification for an id it has not been given.
 */
class Subscription {
  private queued: string[] | null = [];
  private unsubscribe: Unsubscribe | null = null;
  private stopped = false;

  constructor(
    readonly id: number,
    readonly method: string,
    private readonly send: (text: string) => void,
    private readonly context: ServerContext,
  ) {}

  /** JIP-2 "Subscriptions": a Notification named after the subscribe method. */
  readonly emit: Emit = (update) => {
    if (this.stopped) return;
    let text: string;
    try {
      text = JSON.stringify({ jsonrpc: "2.0", method: this.method, params: { subscription: this.id, ...update() } });
    } catch (e) {
      this.context.internal(e, { method: this.method }, "rpc subscription update does not serialize");
      return;
    }
    if (this.queued === null) this.send(text);
    else this.queued.push(text);
  };

  /** The NodeApi accepted the subscription; a subscription stopped meanwhile is dropped at once. */
  started(unsubscribe: Unsubscribe): void {
    if (this.stopped) this.callUnsubscribe(unsubscribe);
    else this.unsubscribe = unsubscribe;
  }

  /** The subscribe response is out: send what came before it, and from now on send directly. */
  activate(): void {
    const queued = this.queued ?? [];
    this.queued = null;
    for (const text of queued) this.send(text);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queued = null;
    if (this.unsubscribe !== null) this.callUnsubscribe(this.unsubscribe);
  }

  private callUnsubscribe(unsubscribe: Unsubscribe): void {
    try {
      unsubscribe();
    } catch (e) {
      this.context.internal(e, { method: this.method }, "rpc unsubscribe threw");
    }
  }
}

interface Frame {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** One client socket: its requests in flight, the frames waiting behind them, its subscriptions. */
class Connection {
  private readonly subscriptions = new Map<number, Subscription>();
  private readonly waiting: Frame[] = [];
  private inFlight = 0;
  private inFlightBytes = 0;
  /** When the client last sent a frame (performance.now()). */
  private lastFrameAt = performance.now();
  /** Answered the last ping (or none was sent yet). */
  private alive = true;

  constructor(
    private readonly ws: WebSocket,
    private readonly context: ServerContext,
    /** Presented the token at the handshake: may call methods that change state. */
    private readonly mayWrite: boolean,
  ) {
    ws.on("message", (data, isBinary) => {
      this.lastFrameAt = performance.now();
      this.receive({ data: frameBuffer(data), isBinary });
    });
    ws.on("pong", () => {
      this.alive = true;
    });
    // ws closes the socket after any protocol error (oversize frame: 1009, bad UTF-8: 1007); count it.
    ws.on("error", (e: Error & { code?: string }) => {
      const code: ErrorCode = e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? "JG_ERR_RPC_OVERSIZE" : "JG_ERR_RPC_INVALID_REQUEST";
      context.count(code);
      context.log.warn({ code, err: e }, "rpc connection closed on a protocol error");
    });
  }

  /** Stops every subscription; called when the socket closes. */
  dispose(): void {
    for (const sub of this.subscriptions.values()) sub.stop();
    this.subscriptions.clear();
    this.waiting.length = 0;
  }

  terminate(): void {
    this.ws.terminate();
  }

  /**
   * The periodic check: one with no subscription, nothing in flight and no frame for `idleMs` is
   * closed; at a ping round (`ping`), a peer that did not answer the last ping is gone
   * (terminated) and the rest are pinged. Returns "idle" when it closed the connection for idling.
   */
  check(now: number, idleMs: number, ping: boolean): "dead" | "idle" | "ok" {
    if (this.subscriptions.size === 0 && this.inFlight === 0 && this.waiting.length === 0 && now - this.lastFrameAt >= idleMs) {
      this.ws.close(1000, "idle");
      return "idle";
    }
    if (!ping) return "ok";
    if (!this.alive) {
      this.ws.terminate();
      return "dead";
    }
    this.alive = false;
    this.ws.ping();
    return "ok";
  }

  private receive(frame: Frame): void {
    this.waiting.push(frame);
    this.admit();
  }

  /**
   * Starts waiting frames in order while the connection is within its in-flight bounds. While some
   * wait, the socket is paused; ws still delivers frames it has already read, bounded by that read.
   */
  private admit(): void {
    while (this.inFlight < MAX_IN_FLIGHT_PER_CONNECTION && this.inFlightBytes < MAX_IN_FLIGHT_BYTES_PER_CONNECTION) {
      const frame = this.waiting.shift();
      if (frame === undefined) break;
      this.inFlight++;
      this.inFlightBytes += frame.data.length;
      this.handle(frame)
        .catch((e: unknown) => this.context.internal(e, {}, "rpc frame handling failed"))
        .finally(() => {
          this.inFlight--;
          this.inFlightBytes -= frame.data.length;
          this.admit();
        });
    }
    if (this.waiting.length > 0) this.ws.pause();
    else if (this.ws.isPaused) this.ws.resume();
  }

  private async handle({ data, isBinary }: Frame): Promise<void> {
    if (isBinary) {
      this.fail(null, new JamgateError("JG_ERR_RPC_INVALID_REQUEST", "binary frame: JIP-2 requests are JSON text frames"));
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(data.toString("utf8"));
    } catch {
      this.fail(null, new JamgateError("JG_ERR_RPC_PARSE"));
      return;
    }
    if (Array.isArray(message)) {
      this.fail(null, new JamgateError("JG_ERR_RPC_INVALID_REQUEST", "batch requests are not supported; send one request per frame"));
      return;
    }
    let request: RpcRequest;
    try {
      request = parseRequest(message);
    } catch (e) {
      this.fail(idOf(message), e);
      return;
    }
    const spec = this.context.methods.get(request.method);
    if (spec === undefined) {
      this.fail(request.id, new JamgateError("JG_ERR_RPC_METHOD", `unknown method ${quote(request.method)}`));
      return;
    }
    if (spec.kind === "call" && spec.writes && !this.mayWrite) {
      this.fail(request.id, new JamgateError("JG_ERR_RPC_UNAUTHORIZED", `${request.method} changes node state: connect with the node's RPC token`));
      return;
    }
    let subscribed: Subscription | null = null;
    let response: string | undefined;
    try {
      const params = positional(request.params, spec.params, spec.optional);
      let result: unknown;
      switch (spec.kind) {
        case "call":
          result = await spec.run(params);
          break;
        case "subscribe":
          subscribed = await this.subscribe(request.method, spec, params);
          result = subscribed.id;
          break;
        case "unsubscribe":
          result = this.unsubscribe(spec.of, asU32(params[0], "id"));
          break;
      }
      if (request.id !== undefined) response = JSON.stringify({ jsonrpc: "2.0", id: request.id, result });
    } catch (e) {
      this.fail(request.id, e, { method: request.method, spec, params: request.params });
      return;
    }
    if (response !== undefined) this.send(response);
    subscribed?.activate();
  }

  private async subscribe(method: string, spec: SubscribeSpec, params: readonly unknown[]): Promise<Subscription> {
    if (this.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
      // No JG code for "connection limit reached"; QUEUE_FULL is the retry-later one (JIP-2 error 0).
      throw new JamgateError("JG_ERR_RPC_LIMIT", `a connection may hold at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions`);
    }
    const sub = new Subscription(this.context.nextSubscriptionId(), method, (text) => this.send(text), this.context);
    // Registered before the NodeApi answers, so the limit counts it and a close meanwhile stops it.
    this.subscriptions.set(sub.id, sub);
    try {
      sub.started(await spec.start(params, sub.emit));
    } catch (e) {
      this.subscriptions.delete(sub.id);
      throw e;
    }
    return sub;
  }

  /** JIP-2 leaves the unsubscribe result open; this answers whether a subscription was stopped. */
  private unsubscribe(method: string, id: number): boolean {
    const sub = this.subscriptions.get(id);
    if (sub === undefined || sub.method !== method) return false;
    sub.stop();
    this.subscriptions.delete(id);
    return true;
  }

  /**
   * Answers with an error (none for a Notification, JSON-RPC 2.0 §4.1). A JamgateError keeps its
   * registry rpcCode and JG code; anything else is -32603, and logged.
   */
  private fail(id: JsonRpcId | undefined, e: unknown, origin?: Origin): void {
    let error: RpcErrorObject;
    if (e instanceof JamgateError) {
      this.context.count(e.code);
      error = codedRpcError(e, origin === undefined ? {} : subjectOf(e.code, origin));
    } else {
      this.context.internal(e, { method: origin?.method }, "rpc method failed");
      error = { code: -32603, message: "internal error" };
    }
    if (id !== undefined) this.send(JSON.stringify({ jsonrpc: "2.0", id, error }));
  }

  private send(text: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.context.stats.slowConsumersDropped++;
      this.context.log.warn({ bufferedAmount: this.ws.bufferedAmount }, "rpc client reads too slowly; connection dropped");
      this.ws.terminate();
      return;
    }
    this.ws.send(text);
  }
}

/**
 * Sockets held per remote address, at most `max` for each address off loopback (a loopback address
 * is this machine: its clients share one address and are bounded by the server's other limits).
 * At most MAX_CONNECTIONS addresses are held, one per socket.
 */
export class AddressBudget {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts a socket from `address`; false, counting nothing, when that address holds `max`. */
  take(address: string): boolean {
    if (isLoopback(address)) return true;
    const n = (this.held.get(address) ?? 0) + 1;
    if (n > this.max) return false;
    this.held.set(address, n);
    return true;
  }

  /** A socket `take` counted has closed. */
  release(address: string): void {
    if (isLoopback(address)) return;
    const left = (this.held.get(address) ?? 1) - 1;
    if (left <= 0) this.held.delete(address);
    else this.held.set(address, left);
  }

  /** Sockets held for `address`. */
  heldBy(address: string): number {
    return this.held.get(address) ?? 0;
  }
}

/**
 * Who a handshake is: "write" with the right token (from anywhere), "read" with none from loopback,
 * else "unauthorized" — a wrong token, a token when the server takes none, or no token from
 * another address. The token is compared digest to digest, in constant time.
 */
export function handshakeVerdict(given: string | null, expected: string | null, remoteAddress: string | undefined): "write" | "read" | "unauthorized" {
  if (given !== null) return expected !== null && tokensMatch(given, expected) ? "write" : "unauthorized";
  return isLoopback(remoteAddress) ? "read" : "unauthorized";
}

/** The token of an `Authorization: Bearer …` header; "" for another or an empty one (never right); null without the header. */
function bearerOf(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  return header.startsWith("Bearer ") ? header.slice(7) : "";
}

/** Refuses an upgrade with an HTTP status, as ws does for its own refusals. */
function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

/**
 * Serves `api` over JIP-2 JSON-RPC on ws://host:port (wss:// with `tls`) until close(). Connections
 * that present `token` may call every method; others may only read, and only from loopback.
 */
export async function startRpcServer(api: NodeApi, options: RpcServerOptions = {}): Promise<RpcServer> {
  const { port = DEFAULT_RPC_PORT, host = "127.0.0.1", maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES, log = silent } = options;
  const idleMs = options.limits?.idleConnectionMs ?? IDLE_CONNECTION_MS;
  const readOnlyMax = options.limits?.readOnlyConnectionsMax ?? MAX_READ_ONLY_CONNECTIONS;
  const pingIntervalMs = options.limits?.webSocketPingIntervalMs ?? serverLimits.webSocketPingIntervalMs;
  const stats: RpcServerStats = { errors: {}, internalErrors: 0, rejectedConnections: 0, slowConsumersDropped: 0, unauthorizedHandshakes: 0, idleClosed: 0 };
  const context = new ServerContext(methodTable(api), stats, log);
  const connections = new Set<Connection>();
  let readOnly = 0;
  // Compressed frames cost CPU per message and can inflate far beyond their size on the wire.
  const writers = new WebSocketServer({ noServer: true, maxPayload: maxPayloadBytes, perMessageDeflate: false });
  const readers = new WebSocketServer({ noServer: true, maxPayload: Math.min(maxPayloadBytes, READ_ONLY_MAX_PAYLOAD_BYTES), perMessageDeflate: false });
  const server = createBoundedServer({
    tls: options.tls ?? null,
    connectionsMax: MAX_CONNECTIONS,
    limits: options.limits,
    listener: (_request, response) => {
      response.writeHead(426, { "content-type": "text/plain" }).end("JIP-2 JSON-RPC: connect with a WebSocket\n");
    },
  });
  const perAddress = new AddressBudget(MAX_CONNECTIONS_PER_REMOTE_ADDRESS);
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "unknown";
    if (!perAddress.take(address)) {
      stats.rejectedConnections++;
      socket.destroy();
      return;
    }
    socket.once("close", () => perAddress.release(address));
  });
  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    const given = bearerOf(request);
    const verdict = handshakeVerdict(given, options.token ?? null, request.socket.remoteAddress);
    if (verdict === "unauthorized") {
      stats.unauthorizedHandshakes++;
      context.count("JG_ERR_RPC_UNAUTHORIZED");
      log.warn(
        { remoteAddress: request.socket.remoteAddress },
        given === null ? "rpc handshake refused: no token from a non-loopback address" : "rpc handshake refused: wrong token",
      );
      return refuseUpgrade(socket, 401, "Unauthorized");
    }
    const mayWrite = verdict === "write";
    if (!mayWrite && readOnly >= readOnlyMax) {
      stats.rejectedConnections++;
      log.warn({ readOnly }, "rpc connection refused: too many read-only connections");
      return refuseUpgrade(socket, 503, "Service Unavailable");
    }
    const wss = mayWrite ? writers : readers;
    if (!mayWrite) readOnly++;
    let counted = !mayWrite;
    const release = () => {
      if (counted) readOnly--;
      counted = false;
    };
    socket.once("close", release);
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new Connection(ws, context, mayWrite);
      connections.add(connection);
      ws.once("close", () => {
        connections.delete(connection);
        connection.dispose();
        release();
      });
    });
  });
  // Idle connections are looked for every twelfth of the idle limit (so one is closed within 1/12
  // past it), peers pinged every ping interval.
  const sweepMs = Math.max(10, Math.min(pingIntervalMs, idleMs / 12));
  let lastPing = performance.now();
  const sweep = setInterval(() => {
    const now = performance.now();
    const ping = now - lastPing >= pingIntervalMs;
    if (ping) lastPing = now;
    for (const connection of connections) if (connection.check(now, idleMs, ping) === "idle") stats.idleClosed++;
  }, sweepMs);
  sweep.unref();
  await listen(server, port, host);
  server.on("error", (e) => log.error({ err: e }, "rpc server error"));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    close: async () => {
      clearInterval(sweep);
      for (const connection of connections) {
        connection.terminate();
        connection.dispose();
      }
      writers.close();
      readers.close();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}
