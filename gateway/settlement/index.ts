/**
 * Settlement, from the durable log to the ledger and back: pending envelopes are packed into work
 * packages per service, marked submitted in the log, submitted through the node's JIP-2
 * interface and followed until accumulated; then the service's outcome is read and each device
 * told: a receipt, or a coded refusal. A failed package's envelopes go back to pending and are
 * packed again: nothing PUBACKed is dropped, and the service's (device, seq) window makes the
 * retry settle each envelope at most once.
 *
 * This facade owns that flow and wires the parts, each a file with one job: batcher.ts (what goes
 * into the next package, device-fair), scheduler.ts (when to pack, aligned to the blocks),
 * cores.ts (which core gets a package), builder.ts (the package's bytes), in-flight.ts (packages
 * on the node and following their status), receipts.ts (what devices are told), told.ts (the log
 * forgets a package once what its devices were told is published); limits.ts holds every limit of
 * settlement.
 */
import { toHex } from "../../devices/protocol/hex.ts";
import { codeOf, type NodeApi, type WorkPackageStatus } from "../../node/api.ts";
import type { ChainParams } from "../../node/chain/params.ts";
import type { Ed25519KeyPair } from "../../node/crypto/ed25519.ts";
import type { IngestService } from "../ingest-service.ts";
import type { LedgerSink } from "../ledger/sink.ts";
import type { DurableLog, LogEntry } from "../log.ts";
import { appendTo, Batcher, packsAnother } from "./batcher.ts";
import { bestAnchor, type PackageAnchor, PackageBuilder, packageItemsMax } from "./builder.ts";
import { CoreChoice } from "./cores.ts";
import { followStatus, type InFlight, InFlightTracker } from "./in-flight.ts";
import { retryDelayMs, settlementLimits } from "./limits.ts";
import { type DeviceNotice, outcomeValue, tellOutcome } from "./receipts.ts";
import { PackScheduler } from "./scheduler.ts";
import { ToldPackages } from "./told.ts";

export { type PackageOverlap, packsAnother, takeBatch } from "./batcher.ts";
export { packageItemsMax, splitAtDevices } from "./builder.ts";
export { settlementLimits } from "./limits.ts";
export type { DeviceNotice } from "./receipts.ts";

export interface SettlementDeps {
  readonly api: NodeApi;
  readonly params: ChainParams;
  readonly log: DurableLog;
  readonly signer: Ed25519KeyPair;
  readonly services: ReadonlyMap<number, IngestService>;
  /** The registered public key of a device (the gateway checked it before accepting). */
  publicKeyOf(deviceId: string): Uint8Array | null;
  /**
   * Hands a receipt or error to the broker. Its promise settles when the notice is published (aedes'
   * publish callback): the log keeps the package until every notice of it is (told.ts).
   */
  notify(notice: DeviceNotice): void | PromiseLike<void>;
  /** "aligned" (the default): pack once per slot, just in time for the next block (scheduler.ts); "deadline": every batchDeadlineMs. */
  readonly packing?: "aligned" | "deadline";
  /**
   * Wait before packing what is pending, so packages fill up (ms): until the gateway knows the
   * block clock and how long refine takes (and always with packing "deadline").
   */
  readonly batchDeadlineMs: number;
  /**
   * The cores this gateway packs for a block at `slot` (null: not known yet; cores.ts), asked at each
   * packing: in a cluster, its share of the node's cores, or none in another gateway's turn on a
   * core it shares (cluster/members.ts); null or absent: every core.
   */
  readonly packingCores?: (slot: number | null) => readonly number[] | null;
  readonly observe?: SettlementObserver;
  /**
   * The ledger index (ledger/index.ts): told of each package as it is submitted and moves on, and
   * of its receipts once settled, before the log forgets them. Optional: settlement works the same without.
   */
  readonly ledger?: Pick<LedgerSink, "packageSubmitted" | "packageStatus" | "packageSettled">;
  readonly logger?: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

/** Hooks for metrics. */
export interface SettlementObserver {
  packageSubmitted(serviceId: number, envelopes: number, bytes: number): void;
  packageSettled(envelopes: number, refused: number): void;
  packageFailed(code: string): void;
  settledLatencyMs(ms: number): void;
}

export class Settlement {
  private readonly batcher: Batcher;
  private readonly scheduler: PackScheduler;
  private readonly builder: PackageBuilder;
  private readonly inFlight = new InFlightTracker();
  private readonly cores: CoreChoice;
  /** A packing is under way: the timer's next one waits for it. */
  private packing = false;
  /** Packages failed in a row: the retry backoff's exponent. */
  private failures = 0;
  private stopped = false;
  /** Packings and settlements under way, which stop() waits for (settlementLimits.stopDrainMs). */
  private readonly working = new Set<Promise<unknown>>();
  /** Settled packages whose notices the broker has not all published: still in the log. */
  private readonly told: ToldPackages;

  constructor(private readonly deps: SettlementDeps) {
    this.batcher = new Batcher(deps.services);
    this.told = new ToldPackages({ forget: (entries) => deps.log.remove(entries), logger: deps.logger });
    this.cores = new CoreChoice(
      deps.params.coresCount,
      (core) => this.inFlight.unreportedOn(core),
      (core) => this.inFlight.refinedOn(core),
      deps.packingCores,
    );
    this.builder = new PackageBuilder(deps);
    this.scheduler = new PackScheduler({
      api: deps.api,
      packing: deps.packing,
      batchDeadlineMs: deps.batchDeadlineMs,
      // A full package goes at once, unless the core this gateway shares is another's this slot.
      fullPending: () => this.batcher.anyFullPending() && this.cores.mayPack(this.scheduler.targetSlot()),
      pack: (aligned) => this.track(this.pack(aligned)),
      logger: deps.logger,
    });
  }

  /** Envelopes waiting to be packed, across services. */
  get pendingCount(): number {
    return this.batcher.pendingCount;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Queues a freshly logged entry. */
  add(entry: LogEntry): void {
    this.batcher.add(entry);
    this.scheduler.schedule();
  }

  /** After a restart: pending entries are queued again; submitted ones are followed (or re-queued if their package is gone). */
  async recover(): Promise<void> {
    const submitted = new Map<string, LogEntry[]>();
    const pending: LogEntry[] = [];
    for (const entry of this.deps.log.all()) {
      if (entry.state === "submitted" && entry.packageHash !== undefined) appendTo(submitted, entry.packageHash, entry);
      else pending.push(entry);
    }
    // Packages the node has go first (their devices become busy), then everything else, in
    // acceptance order, so no device's later envelopes overtake its earlier ones.
    for (const [hex, entries] of submitted) {
      const hash = Buffer.from(hex, "hex");
      const status = await this.deps.api.workPackageStatus(hash);
      if (status === null) {
        // Marked submitted but never reached the node (crash between the two): pack it again.
        pending.push(...(await this.deps.log.markPending(entries, false)));
        continue;
      }
      // Known to the index already unless it was submitted before the index existed.
      this.deps.ledger?.packageSubmitted({
        hash,
        serviceId: entries[0]!.serviceId,
        kind: "envelopes",
        items: entries.length,
        bytes: 0,
        core: null,
        submittedAtMs: Date.now(),
      });
      this.follow({ hash, serviceId: entries[0]!.serviceId, entries, reported: false, packedAt: null, core: null });
    }
    for (const entry of pending.sort((a, b) => a.order - b.order)) this.add(entry);
  }

  start(): void {
    this.stopped = false;
    this.told.open();
    this.scheduler.start();
  }

  /** Settled packages still in the log because the broker has not published all their notices. */
  get untoldCount(): number {
    return this.told.size;
  }

  /**
   * Stops packing and following packages, then waits (at most settlementLimits.stopDrainMs) for the
   * packings and settlements under way and for the notices of settled packages to be published (the
   * broker is still up), so the log and the ledger close after their writes. What is still untold
   * then stays in the log and is told again at the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.scheduler.stop();
    this.inFlight.unsubscribeAll();
    // A settlement under way may hand the told packages another: wait for both, settlements first.
    const deadline = Date.now() + settlementLimits.stopDrainMs;
    for (const waits of [() => [...this.working], () => [...this.working, ...this.told.pending()]]) {
      const pending = waits();
      if (pending.length === 0) continue;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(pending), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
    }
    this.told.close();
  }

  /** Runs `work` as work under way: stop() waits for it. */
  private track(work: Promise<unknown>): void {
    this.working.add(work);
    const done = (): void => {
      this.working.delete(work);
    };
    work.then(done, done);
  }

  /**
   * Packs what is pending as far as the in-flight bounds allow: when aligned to a block, into one
   * package per free core (split evenly); otherwise into as few packages as the bounds allow.
   */
  private async pack(aligned = false): Promise<void> {
    if (this.packing || this.stopped) return;
    this.packing = true;
    try {
      // The block this packing is for: a gateway sharing a core with others packs only in its turn.
      const slot = this.scheduler.targetSlot();
      if (!this.cores.mayPack(slot)) return;
      // Aligned: one package per free core (cores.ts), split evenly; the service with most
      // pending gets the spare cores. Otherwise one package a service (more only when full), to
      // the least busy core.
      const services = this.batcher.servicesByPending();
      const cores = aligned ? this.cores.toPack(slot) : null;
      // Every core it may pack for holds a refined package waiting for a block: pack at the next one.
      if (cores !== null && cores.length === 0) return;
      // Packages this packing makes (one per core when aligned): they share the refine threads (packageItemsMax).
      const packages = cores?.length ?? 1;
      // When this packing started, for every package it makes: a later package of the packing is
      // built after the ones before it, and that wait is part of its lead as much as its refine.
      const packedAt = performance.now();
      let anchor: PackageAnchor | undefined;
      for (const [rank, serviceId] of services.entries()) {
        const n = cores?.length ?? services.length;
        const parts = rank === 0 ? Math.max(Math.min(1, n), n - (services.length - 1)) : rank < n ? 1 : 0;
        const share = Math.ceil(this.batcher.pendingOf(serviceId) / Math.max(1, parts));
        const service = this.deps.services.get(serviceId);
        for (let made = 0; this.batcher.pendingOf(serviceId) > 0 && this.inFlight.roomFor(1); made++) {
          if (!packsAnother({ aligned, made, parts, pending: this.batcher.pendingOf(serviceId), fullPending: this.batcher.fullPending(serviceId) })) break;
          const batch = this.batcher.take(serviceId, made < parts ? share : settlementLimits.packageEnvelopesMax);
          if (batch.length === 0) break; // everything pending waits for its device's package in flight
          try {
            // One anchor per packing: each bestBlock and stateRoot call waits for the node thread,
            // and asking again for every package delayed a packing's later packages.
            anchor ??= await bestAnchor(this.deps.api);
            // A package past the cores' share (this one, or one the rest will make after it, bounds
            // allowing) is one more to share the refine threads with.
            const anotherAfter =
              made + 1 >= parts &&
              this.inFlight.roomFor(2) &&
              packsAnother({ aligned, made: made + 1, parts, pending: this.batcher.pendingOf(serviceId), fullPending: this.batcher.fullPending(serviceId) });
            const itemsMax = packageItemsMax(service?.itemsPerPackageMax ?? 1, packages + (made >= parts || anotherAfter ? 1 : 0));
            // mayPack(slot) above: leastBusy has a core.
            await this.submit(serviceId, batch, packedAt, cores?.shift() ?? this.cores.leastBusy(slot)!, anchor, itemsMax);
          } catch (e) {
            // Not the node refusing (submit handles that): e.g. the node unreachable for bestBlock.
            this.deps.logger?.warn({ err: String(e), envelopes: batch.length }, "packing failed; envelopes go back to pending");
            this.batcher.putBack(serviceId, batch);
            break;
          }
        }
      }
    } finally {
      this.packing = false;
      if (this.pendingCount > 0 && this.inFlight.roomFor(1)) this.scheduler.schedule();
    }
  }

  /** Builds a package of `batch`, marks its entries submitted, submits it to `core` and follows it; a refused package's entries go back to pending. */
  private async submit(serviceId: number, batch: LogEntry[], packedAt: number, core: number, anchor: PackageAnchor, itemsMax: number): Promise<void> {
    const pkg = this.builder.build(serviceId, batch, anchor, itemsMax);
    const entries = await this.deps.log.markSubmitted(batch, toHex(pkg.hash));
    const flight: InFlight = { hash: pkg.hash, serviceId, entries, reported: false, packedAt, core };
    const bytes = pkg.bytes.length;
    // Before the status subscription below, so the index has the package when its first status comes.
    this.deps.ledger?.packageSubmitted({ hash: pkg.hash, serviceId, kind: "envelopes", items: entries.length, bytes, core, submittedAtMs: Date.now() });
    // Not awaited: the next package of this packing is built while the node takes this one in.
    // Awaiting intake (up to ~0.4 s on a busy node thread) started a packing's second package
    // that much later, and it missed the block the first one made (measured at 3,000/s). The
    // node gets its calls in order, so the status subscription below reaches it after the package.
    const call = this.deps.api.submitWorkPackage(core, pkg.bytes, []);
    const abandon = this.follow(flight);
    void call.then(
      () => this.deps.observe?.packageSubmitted(serviceId, entries.length, bytes),
      (e: unknown) => {
        abandon();
        this.land(flight);
        const code = codeOf(e) ?? "JG_ERR_NODE_STOPPED";
        const detail = e instanceof Error ? e.message : String(e);
        this.deps.logger?.warn({ code, detail, envelopes: batch.length }, "work package refused; envelopes go back to pending");
        this.deps.ledger?.packageStatus(pkg.hash, { kind: "failed", code, detail }, Date.now());
        this.deps.observe?.packageFailed(code);
        return this.retry(entries).catch((error: unknown) => {
          // The log could not mark them pending: they go back in memory as they were taken (a
          // restart finds them submitted to a package the node does not know, and packs them again).
          this.deps.logger?.warn({ err: String(error), envelopes: batch.length }, "putting refused envelopes back failed; they go back to pending in memory");
          this.batcher.putBack(serviceId, batch);
          this.scheduler.schedule();
        });
      },
    );
  }

  /** Follows a package's status until it settles or fails; returns a function that stops following it (a refused submit). */
  private follow(flight: InFlight): () => void {
    this.inFlight.add(flight);
    this.batcher.hold(flight.entries);
    return followStatus(this.deps.api, flight, {
      status: (status) => {
        this.deps.ledger?.packageStatus(flight.hash, status, Date.now());
        if (status.kind === "refined") {
          this.inFlight.markRefined(flight);
          if (flight.packedAt !== null) this.scheduler.sampleRefine(performance.now() - flight.packedAt);
        }
        if (status.kind !== "submitted" && status.kind !== "refined") this.markReported(flight);
      },
      final: (status) => this.settleOrRetry(flight, status, 0),
      stopped: () => this.stopped,
      logger: this.deps.logger,
    });
  }

  /** Settles; if reading the outcome fails (the node is busy or restarting), tries again later: the entries stay in flight. */
  private settleOrRetry(flight: InFlight, status: WorkPackageStatus, attempt: number): void {
    this.track(
      this.settle(flight, status).catch((e: unknown) => {
        const delay = retryDelayMs(attempt);
        this.deps.logger?.warn({ err: String(e), package: toHex(flight.hash), retryInMs: delay }, "settling a package failed; trying again");
        if (!this.stopped) setTimeout(() => this.settleOrRetry(flight, status, attempt + 1), delay).unref();
      }),
    );
  }

  /** A package's final status: a failed one's entries go back to pending; an accumulated one's devices are told its outcome and the log forgets it. */
  private async settle(flight: InFlight, status: WorkPackageStatus): Promise<void> {
    const hex = toHex(flight.hash);
    flight.unsubscribe?.();
    if (status.kind === "failed") {
      this.land(flight);
      this.deps.logger?.warn(
        { package: hex, code: status.code, detail: status.detail, envelopes: flight.entries.length },
        "work package failed; envelopes go back to pending",
      );
      this.deps.observe?.packageFailed(status.code);
      await this.retry(flight.entries);
      return;
    }
    if (status.kind !== "accumulated") return;
    this.failures = 0;
    const service = this.deps.services.get(flight.serviceId)!;
    const value = await outcomeValue(this.deps.api, service, flight);
    this.land(flight);
    const verdicts = value === null ? null : service.decodeOutcome(value);
    if (verdicts === null) {
      // Accumulated, but the service left no outcome: its accumulate failed and applied nothing.
      this.deps.logger?.warn({ package: hex }, "package accumulated without an outcome (the service's accumulate failed); envelopes go back to pending");
      this.deps.ledger?.packageStatus(
        flight.hash,
        { kind: "failed", code: "JG_ERR_SETTLEMENT_FAILED", detail: "accumulated without an outcome: the service's accumulate failed and applied nothing" },
        Date.now(),
      );
      this.deps.observe?.packageFailed("JG_ERR_SETTLEMENT_FAILED");
      await this.retry(flight.entries);
      return;
    }
    // The index's entries before the log forgets the package, and the log forgets it only once the
    // broker has published every receipt and error of it (told.ts): a crash before then settles it
    // again on recovery and tells it again, and the index's write of a package is idempotent.
    const { published } = await tellOutcome(this.deps, flight, verdicts, status.accumulatedIn, Date.now());
    this.told.add(hex, flight.entries, published);
    if (this.pendingCount > 0) this.scheduler.schedule();
  }

  /** The package left its core's queue: another may be packed. */
  private markReported(flight: InFlight): void {
    if (this.inFlight.markReported(flight) && this.pendingCount > 0) this.scheduler.schedule();
  }

  /** A package is no longer in flight: its devices are free for the next one. */
  private land(flight: InFlight): void {
    this.markReported(flight);
    if (!this.inFlight.remove(flight)) return;
    this.batcher.release(flight.entries);
  }

  /** A failed package's entries go back to pending; the next packing waits the backoff (retryDelayMs, by failures in a row). */
  private async retry(entries: readonly LogEntry[]): Promise<void> {
    const back = await this.deps.log.markPending(entries, true);
    this.failures++;
    const delay = retryDelayMs(this.failures - 1);
    const byService = new Map<number, LogEntry[]>();
    for (const e of back) appendTo(byService, e.serviceId, e);
    for (const [serviceId, group] of byService) this.batcher.putBack(serviceId, group);
    this.batcher.forgetIdle();
    this.scheduler.reschedule(delay);
  }
}
