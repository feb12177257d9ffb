/**
 * The service API: what a JAM service is to the embedded node (GP 9 "Service Accounts",
 * Appendix B "Virtual Machine Invocations"). A service is a module whose default export has
 * `refine` (stateless, on a core, in a worker thread) and `accumulate` (stateful, sequential,
 * in the block author). Services are native TypeScript, not PVM blobs; the shapes follow the
 * PVM entry points (refine: payload in, blob out; accumulate: operands in, host calls out) so
 * that a PVM backend (typeberry's interpreter) can run a service behind the same interface.
 *
 * Both must be deterministic: no clocks, randomness, I/O, environment or floats in state.
 * Everything they may learn comes through their arguments.
 */
import type { GasMeter } from "./gas.ts";

/** What refine may ask of the host (GP B.5 Ψ_R, the subset a native service needs). */
export interface RefineContext {
  readonly serviceId: number;
  readonly coreIndex: number;
  /** H(work package), the package this item belongs to. */
  readonly packageHash: Uint8Array;
  /** Index of this item in its package. */
  readonly itemIndex: number;
  readonly gas: GasMeter;
  /** blake2b-256, charged per byte. */
  hash(data: Uint8Array): Uint8Array;
  /** Ed25519 verification, charged per signature and per message byte. */
  verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

/** A refined work item, as accumulate sees it (GP 12.3 operand tuple, trimmed). */
export interface AccumulateResultItem {
  readonly kind: "result";
  readonly packageHash: Uint8Array;
  readonly payloadHash: Uint8Array;
  /** The refine output (the work result's ok blob). */
  readonly output: Uint8Array;
  readonly gasLimit: bigint;
  readonly coreIndex: number;
}

/** A transfer made to this service by an earlier accumulation round (GP 12.2 deferred transfers). */
export interface AccumulateTransferItem {
  readonly kind: "transfer";
  readonly source: number;
  readonly amount: bigint;
  readonly memo: Uint8Array;
  readonly gasLimit: bigint;
}

export type AccumulateItem = AccumulateResultItem | AccumulateTransferItem;

/** Public facts about a service account (GP 9.3, the `info` host call). */
export interface ServiceInfo {
  readonly id: number;
  readonly codeHash: Uint8Array;
  readonly balance: bigint;
  readonly storageItems: number;
  readonly storageBytes: bigint;
}

export type TransferOutcome = "ok" | "unknown-destination" | "insufficient-balance" | "low-gas";

/** Host calls available to accumulate (GP B.7, shaped like read, write, info, transfer, log). */
export interface AccumulateHost {
  readonly serviceId: number;
  /** The slot of the block being built: the only clock a service has. */
  readonly slot: number;
  readonly gas: GasMeter;
  /** This service's storage value under key, or null. */
  read(key: Uint8Array): Uint8Array | null;
  /** Sets (or with null removes) a storage value of this service. */
  write(key: Uint8Array, value: Uint8Array | null): void;
  /** Facts about a service (this one when id is omitted), or null if there is none. */
  info(serviceId?: number): ServiceInfo | null;
  /**
   * Moves `amount` from this service's balance to `destination`. The amount leaves now and is
   * credited in the next accumulation round, where the destination sees it as a transfer item.
   */
  transfer(destination: number, amount: bigint, gasLimit: bigint, memo: Uint8Array): TransferOutcome;
  /** A line for the node's log (GP JIP-1 `log` host call); does not affect state. */
  log(message: string): void;
  /** blake2b-256, charged per byte. */
  hash(data: Uint8Array): Uint8Array;
}

export interface ServiceModule {
  /** Human-readable name; the service's code hash is H("jamgate-native:" ⌢ name). */
  readonly name: string;
  refine(payload: Uint8Array, context: RefineContext): Uint8Array;
  accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void;
}
