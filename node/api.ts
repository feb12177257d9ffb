/**
 * The node's client interface: a JIP-2 subset (polkadot-fellows/JIPs, JIP-2.md) with binary values
 * as Uint8Array. The WebSocket server (rpc/server.ts) exposes it as JSON-RPC 2.0 with base64
 * blobs; the WebSocket client (rpc/client.ts) and the in-process node both implement it, so the
 * gateway works the same against an embedded or a remote node.
 */
import { type ErrorCode, JamgateError } from "../devices/protocol/errors.ts";
import type { ChunkProof } from "./availability/erasure.ts";

export interface BlockDescriptor {
  readonly headerHash: Uint8Array;
  readonly slot: number;
}

/** JIP-2 `parameters` "V1" members (snake_case as on the wire). */
export type ChainParameters = Readonly<Record<string, number>>;

/**
 * Where a work package is. JIP-2 has Reportable / Reported / Ready / Failed; the node adds the
 * stages before a report exists and after accumulation, so a submitter can follow it to the end:
 * submitted → refined → reported → available → accumulated, or failed with a coded error.
 */
export type WorkPackageStatus =
  | { readonly kind: "submitted"; readonly core: number }
  | { readonly kind: "refined"; readonly core: number; readonly reportHash: Uint8Array }
  | { readonly kind: "reported"; readonly core: number; readonly reportHash: Uint8Array; readonly reportedIn: BlockDescriptor }
  | {
      readonly kind: "available";
      readonly core: number;
      readonly reportHash: Uint8Array;
      readonly reportedIn: BlockDescriptor;
      readonly availableIn: BlockDescriptor;
    }
  | {
      readonly kind: "accumulated";
      readonly core: number;
      readonly reportHash: Uint8Array;
      readonly reportedIn: BlockDescriptor;
      readonly availableIn: BlockDescriptor;
      readonly accumulatedIn: BlockDescriptor;
    }
  | { readonly kind: "failed"; readonly code: ErrorCode; readonly detail: string };

export type Unsubscribe = () => void;

/**
 * A service storage value with its GP D.2 inclusion proof: `value` under `stateKey` folds up
 * through `siblings` to `stateRoot` (state/proof.ts verifyStatePath), the posterior state root of
 * `block`, which the next header commits to as its prior state root (GP 5.1 H_r).
 */
export interface ServiceValueProof {
  /** The best block when the proof was made: `stateRoot` is its posterior state root. */
  readonly block: BlockDescriptor;
  /** 32 bytes. */
  readonly stateRoot: Uint8Array;
  /** 31 bytes: C(s, k) of GP D.1, the state key of the service's storage key (state/components.ts storageKey). */
  readonly stateKey: Uint8Array;
  readonly value: Uint8Array;
  /** 32 bytes each, from the root down to the leaf's depth: the hash of the subtree beside the path (zero for an empty one). */
  readonly siblings: readonly Uint8Array[];
}

/**
 * Every implementation (the embedded node, rpc/client.ts's RpcClient, thread/host.ts's NodeThread)
 * rejects a refused call — bad input, an unknown block, a bound reached — with a JamgateError
 * whose `code` is a registry code, the same class and code for the same call: the RPC client
 * rebuilds it from the JSON-RPC error's `data.code`, the node thread from the code it posts.
 * Arguments the JIP-2 wire could not carry (a hash that is not 32 bytes, an id, core or index that is
 * not a u32) are JG_ERR_RPC_PARAMS everywhere. A call that fails for another reason (a bug, a
 * failing disk) rejects with another Error in-process, and with JG_ERR_RPC_INTERNAL over the RPC,
 * whose server logs it. Read a rejection's code with `codeOf`, never by casting.
 */
export interface NodeApi {
  parameters(): Promise<ChainParameters>;
  bestBlock(): Promise<BlockDescriptor>;
  /** The embedded node has one author and no forks: a block is final when it is imported. */
  finalizedBlock(): Promise<BlockDescriptor>;
  subscribeBestBlock(onBlock: (block: BlockDescriptor) => void): Promise<Unsubscribe>;
  /**
   * The GP-encoded block (GP Appendix C, header then extrinsic: Block.Codec with the chain's spec, as the node stores it),
   * or null if the node has none with that header hash. Not in JIP-2, which serves state, not blocks;
   * a verifier needs the headers to link a state root to a block it trusts.
   */
  block(headerHash: Uint8Array): Promise<Uint8Array | null>;
  /** Posterior state root of the block; throws a JamgateError JG_ERR_RPC_BLOCK_UNKNOWN if unknown. */
  stateRoot(headerHash: Uint8Array): Promise<Uint8Array>;
  listServices(headerHash: Uint8Array): Promise<number[]>;
  /** GP-encoded service account info (C(255, s) value), or null. */
  serviceData(headerHash: Uint8Array, serviceId: number): Promise<Uint8Array | null>;
  serviceValue(headerHash: Uint8Array, serviceId: number, key: Uint8Array): Promise<Uint8Array | null>;
  /**
   * A service storage value with its inclusion proof under the best block's posterior state root;
   * null when the key holds no value. Not in JIP-2: it lets a client show a value to someone who
   * trusts only a block hash.
   */
  serviceValueProof(serviceId: number, key: Uint8Array): Promise<ServiceValueProof | null>;
  /** Submits a GP-encoded work package to a core; resolves with its hash once accepted for refine. */
  submitWorkPackage(core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Promise<Uint8Array>;
  workPackageStatus(packageHash: Uint8Array): Promise<WorkPackageStatus | null>;
  subscribeWorkPackageStatus(packageHash: Uint8Array, onStatus: (status: WorkPackageStatus) => void): Promise<Unsubscribe>;
  /** GP-encoded work report, or null. */
  workReport(reportHash: Uint8Array): Promise<Uint8Array | null>;
  /**
   * The work-package bundle, recovered from the validators' erasure-coded chunks (any third of
   * them) and checked against its erasure root and hash. Not in JIP-2 (which fetches exported
   * segments only); named after its `fetchWorkPackageSegments`. Throws JG_ERR_DA_UNAVAILABLE.
   */
  fetchWorkPackage(packageHash: Uint8Array): Promise<Uint8Array>;
  /** A validator's chunk of a reported package, with its proof against the erasure root (not in JIP-2). */
  submitChunk(erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Promise<void>;
  /** A GP-encoded availability assurance for the next block (not in JIP-2). */
  submitAssurance(assurance: Uint8Array): Promise<void>;
}

/** A coded error (a JamgateError): what a NodeApi call rejects with when it refuses the call. */
export function isCoded(e: unknown): e is JamgateError {
  return e instanceof JamgateError;
}

/** The registry code of a coded error, or null for anything else (an uncoded Error, a thrown value). */
export function codeOf(e: unknown): ErrorCode | null {
  return isCoded(e) ? e.code : null;
}
