/**
 * JIP-2 wire forms (polkadot-fellows/JIPs, JIP-2.md, "Common types"): Blob and Hash as padded
 * base64 (RFC 4648 §4), Block Descriptor, work-package status, JSON-RPC 2.0 request and error
 * shapes, and the strict parameter checks every method runs before it touches the node. A bad
 * parameter throws JamgateError JG_ERR_RPC_PARAMS naming it, which the server answers as -32602.
 * The client reuses the same decoders on results.
 */
import type { RawData } from "ws";
import type { BlockDescriptor, ServiceValueProof, WorkPackageStatus } from "../api.ts";
import { checkU32, HASH_BYTES } from "../api-params.ts";
import { type ErrorCode, errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import { STATE_KEY_BYTES, STATE_PROOF_SIBLINGS_MAX } from "../state/proof.ts";

export { HASH_BYTES };

/**
 * Stand-in code for a remote error, Failed status or result that carries no JG code (e.g. from a
 * JIP-2 node that is not jamgate); errors.ts has no "uncoded remote error" code.
 */
export const UNCODED_REMOTE_ERROR: ErrorCode = "JG_ERR_RPC_REMOTE";

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * The bytes of a canonical padded base64 string, or null. Buffer's decoder skips characters it does
 * not know and accepts missing padding, so the decoded bytes must re-encode to the same text.
 */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) return null;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- parameter checks ----

function paramsError(detail: string): JamgateError {
  return new JamgateError("JG_ERR_RPC_PARAMS", detail);
}

/**
 * The positional params of a call (JIP-2 "Protocol": params are an Array), checked against the
 * method's parameter names; the last `optional` names may be left out. Absent params count as [].
 */
export function positional(params: unknown, names: readonly string[], optional = 0): readonly unknown[] {
  const list = params === undefined ? [] : params;
  if (!Array.isArray(list)) throw paramsError("params must be an Array (JIP-2 passes parameters by position)");
  const min = names.length - optional;
  if (list.length < min || list.length > names.length) {
    const count = min === names.length ? `${min}` : `${min} to ${names.length}`;
    throw paramsError(`expected ${count} params (${names.join(", ") || "none"}), got ${list.length}`);
  }
  return list;
}

export function asBlob(value: unknown, name: string): Uint8Array {
  const bytes = typeof value === "string" ? fromBase64(value) : null;
  if (bytes === null) throw paramsError(`${name} must be a Blob: a padded base64 string`);
  return bytes;
}

export function asHash(value: unknown, name: string): Uint8Array {
  const bytes = typeof value === "string" && value.length === 44 ? fromBase64(value) : null;
  if (bytes === null || bytes.length !== HASH_BYTES) throw paramsError(`${name} must be a Hash: padded base64 of ${HASH_BYTES} bytes`);
  return bytes;
}

/** The same check as the embedded node's (api-params.ts), so both refuse a bad id alike. */
export function asU32(value: unknown, name: string): number {
  return checkU32(value, name);
}

export function asBool(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") throw paramsError(`${name} must be a Boolean`);
  return value;
}

export function asArray(value: unknown, name: string): readonly unknown[] {
  if (!Array.isArray(value)) throw paramsError(`${name} must be an Array`);
  return value;
}

export function asBlobOrNull(value: unknown, name: string): Uint8Array | null {
  return value === null ? null : asBlob(value, name);
}

function asObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw paramsError(`${name} must be an Object`);
  return value as Record<string, unknown>;
}

// ---- JIP-2 common types ----

export interface WireBlock {
  readonly header_hash: string;
  readonly slot: number;
}

export function blockToWire(block: BlockDescriptor): WireBlock {
  return { header_hash: toBase64(block.headerHash), slot: block.slot };
}

export function blockFromWire(value: unknown, name: string): BlockDescriptor {
  const o = asObject(value, name);
  return { headerHash: asHash(o.header_hash, `${name}.header_hash`), slot: asU32(o.slot, `${name}.slot`) };
}

/**
 * `serviceValueProof` result (a jamgate extension), in JIP-2's manner: snake_case members, Hashes
 * and Blobs as base64. Decoding checks the shape only (a 31-byte state key, 32-byte hashes, at most
 * STATE_PROOF_SIBLINGS_MAX siblings); whether the path leads to the root is verifyStatePath's to say.
 */
export function valueProofToWire(proof: ServiceValueProof): Record<string, unknown> {
  return {
    block: blockToWire(proof.block),
    state_root: toBase64(proof.stateRoot),
    state_key: toBase64(proof.stateKey),
    value: toBase64(proof.value),
    siblings: proof.siblings.map(toBase64),
  };
}

export function valueProofFromWire(value: unknown, name: string): ServiceValueProof {
  const o = asObject(value, name);
  const stateKey = asBlob(o.state_key, `${name}.state_key`);
  if (stateKey.length !== STATE_KEY_BYTES) throw paramsError(`${name}.state_key must be ${STATE_KEY_BYTES} bytes`);
  const siblings = asArray(o.siblings, `${name}.siblings`);
  if (siblings.length > STATE_PROOF_SIBLINGS_MAX) throw paramsError(`${name}.siblings must hold at most ${STATE_PROOF_SIBLINGS_MAX} hashes`);
  return {
    block: blockFromWire(o.block, `${name}.block`),
    stateRoot: asHash(o.state_root, `${name}.state_root`),
    stateKey,
    value: asBlob(o.value, `${name}.value`),
    siblings: siblings.map((s, i) => asHash(s, `${name}.siblings[${i}]`)),
  };
}

/**
 * JIP-2 `workPackageStatus` result. Reported, Ready ("available" here) and Failed are JIP-2's;
 * Submitted, Refined and Accumulated are jamgate's extensions for the stages JIP-2 leaves out.
 * Failed carries "JG_ERR_…: detail" as its String.
 */
export function statusToWire(status: WorkPackageStatus): Record<string, unknown> {
  switch (status.kind) {
    case "submitted":
      return { Submitted: { core: status.core } };
    case "refined":
      return { Refined: { core: status.core, report_hash: toBase64(status.reportHash) } };
    case "reported":
      return { Reported: reportedToWire(status) };
    case "available":
      return { Ready: { ...reportedToWire(status), ready_in: blockToWire(status.availableIn) } };
    case "accumulated":
      return {
        Accumulated: { ...reportedToWire(status), ready_in: blockToWire(status.availableIn), accumulated_in: blockToWire(status.accumulatedIn) },
      };
    case "failed":
      return { Failed: `${status.code}: ${status.detail}` };
  }
}

function reportedToWire(s: { core: number; reportHash: Uint8Array; reportedIn: BlockDescriptor }) {
  return { reported_in: blockToWire(s.reportedIn), core: s.core, report_hash: toBase64(s.reportHash) };
}

export function statusFromWire(value: unknown, name: string): WorkPackageStatus {
  const o = asObject(value, name);
  const variants = Object.keys(o);
  const variant = variants[0];
  if (variants.length !== 1 || variant === undefined) throw paramsError(`${name} must have exactly one status member`);
  const path = `${name}.${variant}`;
  if (variant === "Failed") {
    if (typeof o.Failed !== "string") throw paramsError(`${path} must be a String`);
    return { kind: "failed", ...parseCodedMessage(o.Failed) };
  }
  const body = asObject(o[variant], path);
  const core = asU32(body.core, `${path}.core`);
  if (variant === "Submitted") return { kind: "submitted", core };
  const reportHash = asHash(body.report_hash, `${path}.report_hash`);
  if (variant === "Refined") return { kind: "refined", core, reportHash };
  const reportedIn = blockFromWire(body.reported_in, `${path}.reported_in`);
  if (variant === "Reported") return { kind: "reported", core, reportHash, reportedIn };
  const availableIn = blockFromWire(body.ready_in, `${path}.ready_in`);
  if (variant === "Ready") return { kind: "available", core, reportHash, reportedIn, availableIn };
  if (variant === "Accumulated") {
    return { kind: "accumulated", core, reportHash, reportedIn, availableIn, accumulatedIn: blockFromWire(body.accumulated_in, `${path}.accumulated_in`) };
  }
  throw paramsError(`${name} has unknown status ${JSON.stringify(variant.slice(0, 64))}`);
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(errorRegistry, value);
}

/** Splits "JG_ERR_…: detail" (a JamgateError message, a Failed status) into code and detail. */
export function parseCodedMessage(message: string): { code: ErrorCode; detail: string } {
  const colon = message.indexOf(": ");
  const code = colon < 0 ? undefined : message.slice(0, colon);
  return isErrorCode(code) ? { code, detail: message.slice(colon + 2) } : { code: UNCODED_REMOTE_ERROR, detail: message };
}

// ---- JSON-RPC 2.0 ----

/** A frame's bytes as one Buffer (ws hands over a Buffer, or pieces with other binaryType settings). */
export function frameBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

export type JsonRpcId = string | number | null;

export interface RpcRequest {
  /** Absent for a Notification (JSON-RPC 2.0 §4.1), which gets no response. */
  readonly id?: JsonRpcId;
  readonly method: string;
  readonly params?: unknown;
}

export interface RpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: { readonly code: ErrorCode } & Record<string, unknown>;
}

function isId(value: unknown): value is JsonRpcId {
  return value === null || typeof value === "string" || (typeof value === "number" && Number.isFinite(value));
}

/** The id to answer an unusable message with: its own if it has a valid one, else null (§5). */
export function idOf(message: unknown): JsonRpcId {
  return typeof message === "object" && message !== null && "id" in message && isId(message.id) ? message.id : null;
}

/** A JSON-RPC 2.0 Request object (§4); anything else throws JG_ERR_RPC_INVALID_REQUEST. */
export function parseRequest(message: unknown): RpcRequest {
  const invalid = (detail: string) => new JamgateError("JG_ERR_RPC_INVALID_REQUEST", detail);
  if (typeof message !== "object" || message === null || Array.isArray(message)) throw invalid("request must be a JSON object");
  const m = message as Record<string, unknown>;
  if (m.jsonrpc !== "2.0") throw invalid('jsonrpc must be "2.0"');
  if (typeof m.method !== "string") throw invalid("method must be a String");
  if ("id" in m && !isId(m.id)) throw invalid("id must be a String, a Number or null");
  if (m.params !== undefined && (typeof m.params !== "object" || m.params === null)) throw invalid("params must be an Array or an Object");
  return "id" in m ? { id: m.id as JsonRpcId, method: m.method, params: m.params } : { method: m.method, params: m.params };
}

/** Error object for a coded error (JIP-2 "Error codes": the JG code travels in data.code). */
export function codedRpcError(e: JamgateError, data: Record<string, unknown> = {}): RpcErrorObject {
  return { code: errorRegistry[e.code].rpcCode, message: e.message, data: { ...data, code: e.code } };
}
