/**
 * What settlement and registration tell the ledger index (index.ts): packages as they are
 * submitted and move on, receipts as packages settle, devices as their registrations are
 * accumulated. Optional everywhere: Settlement and Registrations work the same without one
 * (their unit tests), and nothing here is on the receipt path but `packageSettled`, which the
 * settlement awaits after the receipts are handed to the devices and before the durable log
 * forgets the package (so a crash between the two settles it again, and the index's idempotent
 * write keeps one copy).
 */
import type { BlockDescriptor, WorkPackageStatus } from "../../node/api.ts";
import type { PackageKind } from "./types.ts";
import type { DeviceKind } from "../../devices/protocol/device-kinds.ts";

export interface PackageSubmitted {
  readonly hash: Uint8Array;
  readonly serviceId: number;
  readonly kind: PackageKind;
  /** Envelopes, registrations or actions it carries. */
  readonly items: number;
  /** Octets of the encoded work package. */
  readonly bytes: number;
  /** The core it went to; null when not known (a package followed again after a restart). */
  readonly core: number | null;
  readonly submittedAtMs: number;
}

/** One receipt: a device's seqs settled in one package (ascending, at most RECEIPT_SEQS_MAX, as the device's receipt message). */
export interface SettledReceipt {
  readonly deviceId: string;
  readonly seqs: readonly number[];
}

export interface PackageSettled {
  readonly hash: Uint8Array;
  readonly serviceId: number;
  readonly kind: PackageKind;
  /** The block that accumulated it. */
  readonly block: BlockDescriptor;
  /** Envelopes packages: one per receipt message; registrations packages: none. */
  readonly receipts: readonly SettledReceipt[];
  /** Envelopes (or registrations, or actions) settled (applied) and refused. */
  readonly settled: number;
  readonly refused: number;
  readonly settledAtMs: number;
}

export interface DeviceRegistered {
  readonly deviceId: string;
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKind;
  readonly serviceId: number;
  /** An energy agent's household as it registered; absent otherwise (the index makes a meter of the energy market its own household). */
  readonly household?: string;
  /** The slot of the block that accumulated the registration. */
  readonly registeredSlot: number | null;
}

export interface LedgerSink {
  /** A package went to the node; for one followed again after a restart, recorded only if the index does not hold it yet. Not awaited. */
  packageSubmitted(p: PackageSubmitted): void;
  /** Every status the node reports for a package (repeats included; the index keeps the furthest). Not awaited. */
  packageStatus(hash: Uint8Array, status: WorkPackageStatus, atMs: number): void;
  /** The package settled: its receipts become entries. Resolves once written (idempotent: a second call for the same package writes nothing). */
  packageSettled(p: PackageSettled): Promise<void>;
  /** A device's registration was accumulated and its record read back from the service's state. Not awaited. */
  deviceRegistered(d: DeviceRegistered): void;
}
