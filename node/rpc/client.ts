/**
 * NodeApi over JIP-2 JSON-RPC (polkadot-fellows/JIPs, JIP-2.md) on a WebSocket, so the gateway
 * can drive a remote node as it drives the embedded one. Wire forms are in wire.ts; server.ts
 * describes what the server answers.
 *
 * Error responses become JamgateErrors with the JG code from error.data.code, or the JG_ERR_RPC_*
 * code of a standard JSON-RPC / JIP-2 error code when a server sends none: the class and code the
 * embedded node rejects the same call with (api.ts NodeApi; contract.test.ts). There is no reconnect:
 * after the socket closes every call rejects, and callers connect again.
 */
import { once } from "node:events";
import { type RawData, WebSocket } from "ws";
import { type BlockDescriptor, type ChainParameters, codeOf, type NodeApi, type ServiceValueProof, type Unsubscribe, type WorkPackageStatus } from "../api.ts";
import type { ChunkProof } from "../availability/erasure.ts";
import { bytesEqual, fromHex } from "../codec/jam.ts";
import { hash } from "../crypto/hash.ts";
import { type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import { storageKey } from "../state/components.ts";
import { verifyStatePath } from "../state/proof.ts";
import {
  asArray,
  asBlob,
  asBlobOrNull,
  asHash,
  asU32,
  blockFromWire,
  HASH_BYTES,
  isErrorCode,
  frameBuffer,
  parseCodedMessage,
  statusFromWire,
  toBase64,
  UNCODED_REMOTE_ERROR,
  valueProofFromWire,
} from "./wire.ts";

export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The `anchor` sent with work-package status queries: NodeApi names packages by hash alone, and a
 * jamgate node only checks the anchor's shape (JIP-2 lets other nodes answer wrongly without it).
 */
const UNKNOWN_ANCHOR = toBase64(new Uint8Array(HASH_BYTES));

/** JSON-RPC 2.0 and JIP-2 error codes, for servers that send no JG code in error.data.code. */
const CODE_BY_RPC_CODE: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [-32700, "JG_ERR_RPC_PARSE"],
  [-32600, "JG_ERR_RPC_INVALID_REQUEST"],
  [-32601, "JG_ERR_RPC_METHOD"],
  [-32602, "JG_ERR_RPC_PARAMS"],
  [-32603, "JG_ERR_RPC_INTERNAL"],
  [1, "JG_ERR_RPC_BLOCK_UNKNOWN"],
  [2, "JG_ERR_RPC_REPORT_UNKNOWN"],
]);

/** WebSocket close code 1009: the server refused a frame over its size limit. */
const CLOSE_MESSAGE_TOO_BIG = 1009;

export interface RpcClientOptions {
  /** Limit for connecting and for each call's answer. */
  readonly timeoutMs?: number;
  /** The node's RPC token, sent as `Authorization: Bearer` in the handshake: needed to submit packages, chunks and assurances. */
  readonly token?: string;
  /** PEM CA certificate(s) to trust for a wss:// node with a certificate of its own (default: the system's CAs). */
  readonly ca?: Buffer;
  /** Told of JIP-2 "error" subscription updates and of updates that do not decode. */
  readonly onSubscriptionError?: (method: string, message: string) => void;
}

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: JamgateError) => void;
  readonly timer: NodeJS.Timeout;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A JSON-RPC error object as a JamgateError. */
function remoteError(error: unknown): JamgateError {
  if (!isObject(error)) return new JamgateError(UNCODED_REMOTE_ERROR, "error response without an error object");
  const message = typeof error.message === "string" ? error.message : "";
  const dataCode = isObject(error.data) ? error.data.code : undefined;
  const code = isErrorCode(dataCode) ? dataCode : typeof error.code === "number" ? CODE_BY_RPC_CODE.get(error.code) : undefined;
  if (code === undefined) return new JamgateError(UNCODED_REMOTE_ERROR, `remote error ${String(error.code)}: ${message}`);
  // Our server's messages are "JG_ERR_…: detail"; keep just the detail.
  const parsed = parseCodedMessage(message);
  return new JamgateError(code, parsed.code === code ? parsed.detail : message || undefined);
}

export class RpcClient implements NodeApi {
  private lastId = 0;
  private readonly pending = new Map<number, Pending>();
  /** Subscription callbacks by "method:id" (JIP-2 only asks ids to be unique per subscribe method). */
  private readonly subscriptions = new Map<string, (result: unknown) => void>();
  /** Why calls now fail, once the connection is closing or closed. */
  private closedBecause: JamgateError | null = null;

  private constructor(
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
    private readonly onSubscriptionError: (method: string, message: string) => void,
  ) {
    ws.on("message", (data, isBinary) => this.receive(data, isBinary));
    // Every ws error is followed by "close", where pending calls are rejected.
    ws.on("error", () => {});
    ws.on("close", (code) => {
      this.shutdown(
        code === CLOSE_MESSAGE_TOO_BIG
          ? new JamgateError("JG_ERR_RPC_OVERSIZE", "the server closed the connection: a request exceeded its frame limit")
          : new JamgateError("JG_ERR_RPC_CLOSED", `the RPC connection closed (code ${code})`),
      );
    });
  }

  static async connect(url: string, options: RpcClientOptions = {}): Promise<RpcClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const ws = new WebSocket(url, {
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
      ...(options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    try {
      await once(ws, "open");
    } catch (e) {
      // ws reports a refused handshake as "Unexpected server response: <status>".
      if (/response: 401\b/.test(errorMessage(e)))
        throw new JamgateError(
          "JG_ERR_RPC_UNAUTHORIZED",
          `${url} refused the connection: ${options.token === undefined ? "it needs the node's RPC token" : "wrong RPC token"}`,
        );
      throw new JamgateError("JG_ERR_RPC_CLOSED", `cannot connect to ${url}: ${errorMessage(e)}`);
    }
    return new RpcClient(ws, timeoutMs, options.onSubscriptionError ?? (() => {}));
  }

  /** Closes the socket; pending calls reject and subscriptions go quiet. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.shutdown(new JamgateError("JG_ERR_RPC_CLOSED", "the RPC client was closed"));
    const closed = once(this.ws, "close");
    this.ws.close(1000);
    await closed;
  }

  parameters(): Promise<ChainParameters> {
    return this.call("parameters", [], (result) => {
      const v1 = isObject(result) ? result.V1 : undefined;
      if (!isObject(v1) || !Object.values(v1).every((v) => typeof v === "number")) throw new Error('expected {"V1": {…Numbers}}');
      return v1 as ChainParameters;
    });
  }

  bestBlock(): Promise<BlockDescriptor> {
    return this.call("bestBlock", [], (result) => blockFromWire(result, "result"));
  }

  finalizedBlock(): Promise<BlockDescriptor> {
    return this.call("finalizedBlock", [], (result) => blockFromWire(result, "result"));
  }

  subscribeBestBlock(onBlock: (block: BlockDescriptor) => void): Promise<Unsubscribe> {
    return this.subscribe("subscribeBestBlock", [], (result) => onBlock(blockFromWire(result, "result")));
  }

  block(headerHash: Uint8Array): Promise<Uint8Array | null> {
    return this.call("block", [toBase64(headerHash)], (result) => asBlobOrNull(result, "result"));
  }

  stateRoot(headerHash: Uint8Array): Promise<Uint8Array> {
    return this.call("stateRoot", [toBase64(headerHash)], (result) => asHash(result, "result"));
  }

  listServices(headerHash: Uint8Array): Promise<number[]> {
    return this.call("listServices", [toBase64(headerHash)], (result) => asArray(result, "result").map((id, i) => asU32(id, `result[${i}]`)));
  }

  serviceData(headerHash: Uint8Array, serviceId: number): Promise<Uint8Array | null> {
    return this.call("serviceData", [toBase64(headerHash), serviceId], (result) => asBlobOrNull(result, "result"));
  }

  serviceValue(headerHash: Uint8Array, serviceId: number, key: Uint8Array): Promise<Uint8Array | null> {
    return this.call("serviceValue", [toBase64(headerHash), serviceId, toBase64(key)], (result) => asBlobOrNull(result, "result"));
  }

  /**
   * Checked as it arrives: a proof for another key, or one whose path does not lead to its root, is
   * the server's fault (JG_ERR_RPC_REMOTE), never handed on. Whether the root is the block's is the
   * caller's to check (stateRoot, or the next header's prior state root).
   */
  serviceValueProof(serviceId: number, key: Uint8Array): Promise<ServiceValueProof | null> {
    return this.call("serviceValueProof", [serviceId, toBase64(key)], (result) => {
      if (result === null) return null;
      const proof = valueProofFromWire(result, "result");
      if (!bytesEqual(proof.stateKey, fromHex(storageKey(serviceId, key))))
        throw new Error("result.state_key is not the state key of the service's storage key");
      if (!verifyStatePath(proof.stateKey, proof.value, proof.siblings, proof.stateRoot)) throw new Error("result's path does not lead to its state_root");
      return proof;
    });
  }

  /** JIP-2 answers Null; the package hash is H(package) (GP 14.2), computed here. */
  async submitWorkPackage(core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Promise<Uint8Array> {
    await this.call("submitWorkPackage", [core, toBase64(workPackage), extrinsics.map(toBase64)], (result) => {
      if (result !== null) throw new Error("expected Null");
    });
    return hash(workPackage);
  }

  /** Asks about the best block's posterior state, as NodeApi means "the status now". */
  async workPackageStatus(packageHash: Uint8Array): Promise<WorkPackageStatus | null> {
    const best = await this.bestBlock();
    return this.call("workPackageStatus", [toBase64(best.headerHash), toBase64(packageHash), UNKNOWN_ANCHOR], (result) =>
      result === null ? null : statusFromWire(result, "result"),
    );
  }

  /** Follows the best chain (JIP-2 `finalized` = false); the embedded node finalizes on import. */
  subscribeWorkPackageStatus(packageHash: Uint8Array, onStatus: (status: WorkPackageStatus) => void): Promise<Unsubscribe> {
    return this.subscribe("subscribeWorkPackageStatus", [toBase64(packageHash), UNKNOWN_ANCHOR, false], (result) => {
      // JIP-2 Chain Subscription Update: {header_hash, slot, value}.
      onStatus(statusFromWire(isObject(result) ? result.value : undefined, "result.value"));
    });
  }

  fetchWorkPackage(packageHash: Uint8Array): Promise<Uint8Array> {
    return this.call("fetchWorkPackage", [toBase64(packageHash)], (result) => asBlob(result, "result"));
  }

  async submitChunk(erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Promise<void> {
    await this.call("submitChunk", [toBase64(erasureRoot), index, toBase64(chunk), toBase64(proof.segmentsRoot), proof.path.map(toBase64)], () => undefined);
  }

  async submitAssurance(assurance: Uint8Array): Promise<void> {
    await this.call("submitAssurance", [toBase64(assurance)], () => undefined);
  }

  /** JIP-2 answers error 2 for an unknown report; NodeApi answers null. */
  async workReport(reportHash: Uint8Array): Promise<Uint8Array | null> {
    try {
      return await this.call("workReport", [toBase64(reportHash)], (result) => asBlob(result, "result"));
    } catch (e) {
      if (codeOf(e) === "JG_ERR_RPC_REPORT_UNKNOWN") return null;
      throw e;
    }
  }

  /**
   * JIP-2 "Subscriptions": the subscribe call answers an id, and updates arrive as Notifications
   * named after the subscribe method. The Unsubscribe silences the callback at once and tells the
   * server with unsubscribeX.
   */
  private subscribe(method: string, params: unknown[], onResult: (result: unknown) => void): Promise<Unsubscribe> {
    return this.call(method, params, (result) => {
      const id = asU32(result, "result");
      const key = `${method}:${id}`;
      this.subscriptions.set(key, (update) => {
        try {
          onResult(update);
        } catch (e) {
          this.onSubscriptionError(method, `update not delivered: ${errorMessage(e)}`);
        }
      });
      return () => {
        if (!this.subscriptions.delete(key)) return;
        // Nothing to do if this fails: the callback is gone, and a closed socket ended the subscription server-side.
        this.call(`un${method}`, [id], () => undefined).catch(() => {});
      };
    });
  }

  /**
   * Sends a request and resolves with its result as `decode` reads it. A result that does not
   * decode is the server's fault. Decoding runs as the answer arrives, before the next frame is
   * read, so a subscription's callback is in place before its first update.
   */
  private call<T>(method: string, params: unknown[], decode: (result: unknown) => T): Promise<T> {
    if (this.closedBecause !== null) return Promise.reject(this.closedBecause);
    const id = ++this.lastId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new JamgateError("JG_ERR_RPC_TIMEOUT", `no answer to ${method} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const decoded = (result: unknown) => {
        try {
          resolve(decode(result));
        } catch (e) {
          // The wire decoders throw JG_ERR_RPC_PARAMS, which names the field; here the server is at fault.
          reject(new JamgateError(UNCODED_REMOTE_ERROR, `malformed ${method} result: ${parseCodedMessage(errorMessage(e)).detail}`));
        }
      };
      this.pending.set(id, { resolve: decoded, reject, timer });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }), (e) => {
        if (e) this.settle(id, (p) => p.reject(new JamgateError("JG_ERR_RPC_CLOSED", `cannot send ${method}: ${e.message}`)));
      });
    });
  }

  private settle(id: number, outcome: (pending: Pending) => void): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    outcome(pending);
  }

  /** Routes a frame to its pending call or subscription; frames that fit neither are ignored. */
  private receive(data: RawData, isBinary: boolean): void {
    if (isBinary) return;
    let message: unknown;
    try {
      message = JSON.parse(frameBuffer(data).toString());
    } catch {
      return;
    }
    if (!isObject(message)) return;
    if (typeof message.id === "number") {
      const { error, result } = message;
      this.settle(message.id, (p) => ("error" in message ? p.reject(remoteError(error)) : p.resolve(result)));
      return;
    }
    if (message.id !== undefined || typeof message.method !== "string" || !isObject(message.params)) return;
    const { subscription, result, error } = message.params;
    const onResult = this.subscriptions.get(`${message.method}:${String(subscription)}`);
    if (onResult === undefined) return;
    if ("error" in message.params) this.onSubscriptionError(message.method, typeof error === "string" ? error : "subscription error");
    else onResult(result);
  }

  private shutdown(reason: JamgateError): void {
    this.closedBecause ??= reason;
    for (const id of [...this.pending.keys()]) this.settle(id, (p) => p.reject(reason));
    this.subscriptions.clear();
  }
}
