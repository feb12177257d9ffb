/**
 * The work-package status machine: every status a package takes, in one place. A package moves
 *
 *   submitted → refined → reported → available → accumulated
 *
 * or to failed (with a coded error) from any status before available; `NEXT_STATUSES` is the
 * table of what may follow what, and `transition` refuses anything else by throwing: a transition
 * outside it is a bug in the node (house style, errors of the third kind), never bad input.
 *
 * `PackageStatuses` holds each package's record (LMDB, with the most recent in memory) and the
 * status subscribers: a change is stored before subscribers are told, so what they see survives a
 * restart. The changes a block makes are planned before the block is written (their records go
 * into its transaction, storage/store.ts writeBlock) and told after.
 */
import { JamgateError } from "../devices/protocol/errors.ts";
import type { CodedError, ErrorCode } from "../devices/protocol/errors.ts";
import type { BlockDescriptor, Unsubscribe, WorkPackageStatus } from "./api.ts";
import { fromHex, toHex } from "./codec/jam.ts";
import type { PackageRecord, Store } from "./storage/store.ts";

/** Status records kept in memory for quick answers; older ones are read back from LMDB. */
const STATUS_CACHE_MAX = 65_536;
/** Subscribers to blocks and statuses, across all clients (the RPC server bounds per connection). */
export const SUBSCRIBERS_MAX = 100_000;

export type StatusKind = PackageRecord["status"];

/**
 * What may follow each status ("none": the node has no record of the package yet).
 * - refined → refined: a package refined before a restart is refined again after it (its report
 *   was in memory only), and gets the new report's hash.
 * - submitted / refined → failed: refine failed, or after a restart the package no longer passes intake.
 * - reported → failed: not available within U slots (JG_ERR_REPORT_TIMEOUT).
 * - available → accumulated only: an available report is accumulated, at the latest when gas allows.
 */
export const NEXT_STATUSES: Readonly<Record<StatusKind | "none", readonly StatusKind[]>> = {
  none: ["submitted"],
  submitted: ["refined", "failed"],
  refined: ["refined", "reported", "failed"],
  reported: ["available", "failed"],
  available: ["accumulated"],
  accumulated: [],
  failed: [],
};

/** A block as a record names it. */
export interface BlockRef {
  readonly hash: string;
  readonly slot: number;
}

/** A change of status, with what the new status records. */
export type StatusChange =
  | { readonly kind: "submitted"; readonly core: number }
  | { readonly kind: "refined"; readonly reportHash: string }
  | { readonly kind: "reported"; readonly reportHash: string; readonly block: BlockRef }
  | { readonly kind: "available"; readonly block: BlockRef }
  | { readonly kind: "accumulated"; readonly block: BlockRef }
  | { readonly kind: "failed"; readonly error: CodedError };

/**
 * The package's record after `change`: what it had, the new status and what that status records.
 * Throws on a transition NEXT_STATUSES does not allow.
 */
export function transition(hash: string, current: PackageRecord | null, change: StatusChange): PackageRecord {
  const from = current === null ? "none" : current.status;
  if (!NEXT_STATUSES[from].includes(change.kind)) throw new Error(`package ${hash}: illegal status transition ${from} → ${change.kind}`);
  if (change.kind === "submitted") return { hash, core: change.core, status: "submitted" };
  const c = current!; // only "submitted" may follow "none" (checked above)
  switch (change.kind) {
    case "refined":
      return { ...c, status: "refined", reportHash: change.reportHash };
    case "reported":
      return { ...c, status: "reported", reportHash: change.reportHash, reportedIn: change.block };
    case "available":
      return { ...c, status: "available", availableIn: change.block };
    case "accumulated":
      return { ...c, status: "accumulated", accumulatedIn: change.block };
    case "failed":
      return { ...c, status: "failed", error: { code: change.error.code, detail: change.error.detail } };
  }
}

function descriptor(at: BlockRef): BlockDescriptor {
  return { headerHash: fromHex(at.hash), slot: at.slot };
}

/** A record as the NodeApi reports it. */
export function toStatus(r: PackageRecord): WorkPackageStatus {
  const reportHash = r.reportHash === undefined ? new Uint8Array(32) : fromHex(r.reportHash);
  switch (r.status) {
    case "submitted":
      return { kind: "submitted", core: r.core };
    case "refined":
      return { kind: "refined", core: r.core, reportHash };
    case "reported":
      return { kind: "reported", core: r.core, reportHash, reportedIn: descriptor(r.reportedIn!) };
    case "available":
      return { kind: "available", core: r.core, reportHash, reportedIn: descriptor(r.reportedIn!), availableIn: descriptor(r.availableIn!) };
    case "accumulated":
      return {
        kind: "accumulated",
        core: r.core,
        reportHash,
        reportedIn: descriptor(r.reportedIn!),
        availableIn: descriptor(r.availableIn ?? r.accumulatedIn!),
        accumulatedIn: descriptor(r.accumulatedIn!),
      };
    case "failed":
      return { kind: "failed", code: (r.error?.code ?? "JG_ERR_NODE_STOPPED") as ErrorCode, detail: r.error?.detail ?? "" };
  }
}

/**
 * The status changes of one block: each package's record after it (stored with the block) and
 * every record on the way, in order (a report can become available and be accumulated in one
 * block: subscribers see both).
 */
export class BlockStatusChanges {
  readonly records = new Map<string, PackageRecord>();
  readonly steps: PackageRecord[] = [];

  constructor(private readonly statuses: PackageStatuses) {}

  /** Moves a package on; a package the node has no record of is left out (a block of this node's only carries its own). */
  move(packageHash: Uint8Array, change: StatusChange): void {
    const hash = toHex(packageHash);
    const current = this.records.get(hash) ?? this.statuses.record(hash);
    if (current === null) return;
    const next = transition(hash, current, change);
    this.records.set(hash, next);
    this.steps.push(next);
  }
}

export class PackageStatuses {
  private readonly cache = new Map<string, PackageRecord>();
  private readonly subscribers = new Map<string, Set<(s: WorkPackageStatus) => void>>();

  constructor(private readonly store: Store) {}

  /** The package's record (hash in hex), or null if the node has none. */
  record(hash: string): PackageRecord | null {
    return this.cache.get(hash) ?? this.store.packageRecord(hash);
  }

  status(hash: string): WorkPackageStatus | null {
    const record = this.record(hash);
    return record === null ? null : toStatus(record);
  }

  /**
   * A package accepted at intake. `write` stores its record (with the package's bytes, in one
   * transaction) before anyone is told; if it throws, nothing changes.
   */
  submitted(hash: string, core: number, write: (record: PackageRecord) => void): void {
    const record = transition(hash, this.record(hash), { kind: "submitted", core });
    write(record);
    this.publish(record);
  }

  /** A change outside blocks (refined, failed): stored, then told. */
  change(hash: string, change: StatusChange): void {
    const record = transition(hash, this.record(hash), change);
    this.store.putPackage(record);
    this.publish(record);
  }

  /** Starts a block's changes; `blockWritten` tells them once the block and their records are stored. */
  forBlock(): BlockStatusChanges {
    return new BlockStatusChanges(this);
  }

  blockWritten(changes: BlockStatusChanges): void {
    for (const record of changes.steps) this.publish(record);
  }

  /** Calls `onStatus` with each status the package takes from now on, and with its status now if it has one. */
  subscribe(hash: string, onStatus: (status: WorkPackageStatus) => void): Unsubscribe {
    let set = this.subscribers.get(hash);
    if (set === undefined) {
      if (this.subscribers.size >= SUBSCRIBERS_MAX)
        throw new JamgateError("JG_ERR_RPC_LIMIT", `the node follows at most ${SUBSCRIBERS_MAX} packages' statuses`);
      set = new Set();
      this.subscribers.set(hash, set);
    }
    const subscriber = (s: WorkPackageStatus) => onStatus(s);
    set.add(subscriber);
    const current = this.record(hash);
    if (current !== null) onStatus(toStatus(current));
    return () => {
      set.delete(subscriber);
      if (set.size === 0) this.subscribers.delete(hash);
    };
  }

  private publish(record: PackageRecord): void {
    this.cache.delete(record.hash);
    this.cache.set(record.hash, record);
    if (this.cache.size > STATUS_CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    const status = toStatus(record);
    for (const subscriber of this.subscribers.get(record.hash) ?? []) subscriber(status);
  }
}
