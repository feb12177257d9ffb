/**
 * Packages submitted and not yet settled: which are in flight, which of them still hold their
 * core's queue (not yet reported, counted per core), whether the bounds on both let another go,
 * and following each one's status on the node, subscribing again when the node refuses.
 */
import { toHex } from "../../devices/protocol/hex.ts";
import type { NodeApi, WorkPackageStatus } from "../../node/api.ts";
import type { LogEntry } from "../log.ts";
import { retryDelayMs, settlementLimits } from "./limits.ts";

export interface InFlight {
  readonly hash: Uint8Array;
  readonly serviceId: number;
  readonly entries: LogEntry[];
  /** The node has reported it (or gone further, or failed it): it no longer waits for a core. */
  reported: boolean;
  /** performance.now() when the packing that made it started (null after a restart): pack → refined sets the lead. */
  readonly packedAt: number | null;
  /** The core it was submitted to (null after a restart: the gateway no longer knows). */
  readonly core: number | null;
  /** The node has refined it and it waits for a block to report it (until `reported`). */
  refined?: boolean;
  unsubscribe?: () => void;
}

export class InFlightTracker {
  private readonly flights = new Map<string, InFlight>();
  /** Packages in flight not yet reported. */
  private unreported = 0;
  /** Of those, per core (recovered packages, whose core is unknown, are counted only in `unreported`). */
  private readonly unreportedOnCore: number[] = [];
  /** Of those, per core, the refined ones: waiting for a block to report them. */
  private readonly refinedOnCore: number[] = [];

  get size(): number {
    return this.flights.size;
  }

  /** Whether the in-flight bounds (packagesInFlightMax, packagesUnreportedMax) let `packages` more packages go. */
  roomFor(packages: number): boolean {
    return this.flights.size + packages <= settlementLimits.packagesInFlightMax && this.unreported + packages <= settlementLimits.packagesUnreportedMax;
  }

  /** This gateway's packages holding `core`'s queue. */
  unreportedOn(core: number): number {
    return this.unreportedOnCore[core] ?? 0;
  }

  /** This gateway's packages refined and waiting on `core` for a block: a package sent to `core` now is reported a block after the last of them at the soonest. */
  refinedOn(core: number): number {
    return this.refinedOnCore[core] ?? 0;
  }

  /** The node refined the package: it waits for a block on its core; false if it was reported already, or is not in flight. */
  markRefined(flight: InFlight): boolean {
    if (flight.reported || flight.refined === true || !this.flights.has(toHex(flight.hash))) return false;
    flight.refined = true;
    if (flight.core !== null) this.refinedOnCore[flight.core] = this.refinedOn(flight.core) + 1;
    return true;
  }

  /** A package was submitted (or, after a restart, found on the node): in flight and not yet reported. */
  add(flight: InFlight): void {
    this.flights.set(toHex(flight.hash), flight);
    this.unreported++;
    if (flight.core !== null) this.unreportedOnCore[flight.core] = this.unreportedOn(flight.core) + 1;
  }

  /** The package left its core's queue; false if it had already, or is not in flight. */
  markReported(flight: InFlight): boolean {
    if (flight.reported || !this.flights.has(toHex(flight.hash))) return false;
    flight.reported = true;
    this.unreported--;
    if (flight.core !== null) {
      this.unreportedOnCore[flight.core]!--;
      if (flight.refined === true) this.refinedOnCore[flight.core]!--;
    }
    return true;
  }

  /** The package is no longer in flight (settled, failed or refused); false if it was not. */
  remove(flight: InFlight): boolean {
    this.markReported(flight);
    return this.flights.delete(toHex(flight.hash));
  }

  /** Stops following every package (settlement stops). */
  unsubscribeAll(): void {
    for (const f of this.flights.values()) f.unsubscribe?.();
  }
}

export interface StatusHandlers {
  /** Each status the node sends, in order: the current one first, then each change. */
  status(status: WorkPackageStatus): void;
  /** The package's first final status (accumulated or failed), once, after `status` was told it. */
  final(status: WorkPackageStatus): void;
  /** Whether settlement has stopped: then a refused subscription is not tried again. */
  stopped(): boolean;
  readonly logger?: { warn(o: object, m: string): void };
}

/**
 * Follows a package's status on the node until its first final status. When the node refuses
 * the subscription (over its bound, or a remote node's connection dropped), the package is still
 * the node's, so it subscribes again after retryDelayMs: the node sends the current status first,
 * so nothing that happened meanwhile is missed. Returns a function that stops following it (a
 * refused submit).
 */
export function followStatus(api: Pick<NodeApi, "subscribeWorkPackageStatus">, flight: InFlight, on: StatusHandlers): () => void {
  let done = false;
  const watch = (attempt: number) =>
    api
      .subscribeWorkPackageStatus(flight.hash, (status) => {
        on.status(status);
        if (done || (status.kind !== "accumulated" && status.kind !== "failed")) return;
        done = true;
        on.final(status);
      })
      .then(
        (unsubscribe) => {
          flight.unsubscribe = unsubscribe;
          if (done) unsubscribe();
        },
        (e: unknown) => {
          const delay = retryDelayMs(attempt);
          on.logger?.warn({ err: String(e), package: toHex(flight.hash), retryInMs: delay }, "cannot follow a package's status; trying again");
          if (!done && !on.stopped()) setTimeout(() => void watch(attempt + 1), delay).unref();
        },
      );
  void watch(0);
  return () => {
    done = true;
    flight.unsubscribe?.();
  };
}
