/**
 * Settled packages whose notices (receipts, errors) are not all published yet. The durable log
 * forgets a package only once the broker has published every notice of it (receipts.ts: aedes'
 * publish callback, so the notice is written to its device or held for its session, and in a
 * cluster has reached Redis): a gateway killed before then finds the package still in its log at
 * its next start, and tells its outcome again (index.ts recover: the node has it accumulated).
 * What a device is told is thus on disk, in the log, until the broker holds it; nothing is told
 * from memory alone.
 *
 * A publish waits only while something downstream waits: the cluster's Redis away (receipts are
 * held for it), a session write that is slow. At most settlementLimits.untoldPackagesMax packages
 * wait; past it the oldest is forgotten without waiting (its notices stay queued in memory, lost
 * only if the gateway is killed before they are published; the ledger has the settlement). A notice
 * the broker could not publish leaves its package in the log, to be told again at the next start.
 */
import { LineLimiter } from "../log-lines.ts";
import type { LogEntry } from "../log.ts";
import { settlementLimits } from "./limits.ts";
import type { NoticesPublished } from "./receipts.ts";

/** What the log's `remove` reads of an entry: its record's bytes are not kept while the package waits. */
const NO_BYTES = new Uint8Array(0);

interface Waiting {
  readonly entries: readonly LogEntry[];
}

export interface ToldDeps {
  /** Removes a told package's entries from the durable log (DurableLog.remove). */
  forget(entries: readonly LogEntry[]): Promise<void>;
  readonly logger?: { warn(o: object, m: string): void };
  /** settlementLimits.untoldPackagesMax, or a test's. */
  readonly packagesMax?: number;
  readonly now?: () => number;
}

export class ToldPackages {
  /** By package hash (hex), oldest first. */
  private readonly waiting = new Map<string, Waiting>();
  /** Each added package until it is forgotten (its log write done) or left in the log: what stop() waits for. */
  private readonly unfinished = new Set<Promise<void>>();
  private readonly lines = new LineLimiter();
  private closed = false;

  constructor(private readonly deps: ToldDeps) {}

  /** Packages waiting for their notices to be published. */
  get size(): number {
    return this.waiting.size;
  }

  /**
   * The package `hash` (hex) of `entries` is settled and its notices handed to the broker: its
   * entries leave the log once `published` says every notice was published.
   */
  add(hash: string, entries: readonly LogEntry[], published: NoticesPublished): void {
    if (this.closed) return;
    const max = this.deps.packagesMax ?? settlementLimits.untoldPackagesMax;
    while (this.waiting.size >= max) {
      const [oldest, waiting] = this.waiting.entries().next().value!;
      this.waiting.delete(oldest);
      this.line(
        "forgotten",
        { package: oldest, packagesMax: max },
        "receipts not yet published, past the packages that may wait: the log forgets the oldest package anyway",
      );
      const forgotten = this.forget(oldest, waiting.entries);
      this.unfinished.add(forgotten);
      void forgotten.then(() => this.unfinished.delete(forgotten));
    }
    // Only what the log's remove reads: the envelopes' bytes are not held while their receipts wait.
    const kept = entries.map((e) => ({ ...e, signingBytes: NO_BYTES, signature: NO_BYTES }));
    // The callback looks the package up, rather than holding its entries: one forgotten past the bound is freed at once.
    const done = published.then((failure) => {
      const waiting = this.waiting.get(hash);
      if (waiting === undefined) return;
      this.waiting.delete(hash);
      if (failure === null) return this.forget(hash, waiting.entries);
      this.line(
        "unpublished",
        { package: hash, err: failure.message },
        "a receipt or error could not be published: the package stays in the log and is told again at the next start",
      );
    });
    this.waiting.set(hash, { entries: kept });
    this.unfinished.add(done);
    void done.then(() => this.unfinished.delete(done));
  }

  /** What stop() waits for: each package added, until it is forgotten or left in the log. */
  pending(): Promise<void>[] {
    return [...this.unfinished];
  }

  /**
   * The log may close now: nothing more is removed from it, and what still waits stays in it, to be
   * told again at the next start.
   */
  close(): void {
    this.closed = true;
    this.waiting.clear();
  }

  /** Opened again (settlement started again on the same log). */
  open(): void {
    this.closed = false;
  }

  private async forget(hash: string, entries: readonly LogEntry[]): Promise<void> {
    if (this.closed) return;
    try {
      await this.deps.forget(entries);
    } catch (e) {
      // Left in the log: the next start tells the package again.
      this.deps.logger?.warn({ package: hash, err: String(e) }, "forgetting a told package failed; it is told again at the next start");
    }
  }

  /** A warn line at most once a minute per kind (log-lines.ts), with how many were left out. */
  private line(kind: string, fields: object, msg: string): void {
    const suppressed = this.lines.take("settlement", kind, (this.deps.now ?? Date.now)());
    if (suppressed !== null) this.deps.logger?.warn({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }
}
