/**
 * Work packages from intake to refined reports (off-chain): intake's checks and the node's
 * bounds, a queue per core, refine on the worker pool (guarantor/refine-pool.ts), the report
 * (guarantor/report.ts) and its chunks handed to the validators (GP 14.4), and the reports
 * waiting for their core to be free, which block authoring takes (chain/author.ts).
 * Each package's status moves through status.ts.
 */
import type { WorkReport } from "@typeberry/lib/block";
import { type CodedError, codedError, type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import type { Availability } from "../availability/availability.ts";
import type { ChainHead } from "../chain/head.ts";
import type { ChainParams } from "../chain/params.ts";
import type { LoadedServices } from "../chain/services.ts";
import { toHex } from "../codec/jam.ts";
import { reportHash } from "../guarantor/guarantee.ts";
import type { RefinePool } from "../guarantor/refine-pool.ts";
import { buildReport } from "../guarantor/report.ts";
import type { NodeLogger } from "../log.ts";
import type { PackageStatuses } from "../status.ts";
import type { Store } from "../storage/store.ts";
import { type AcceptedPackage, checkWorkPackage } from "./intake.ts";

/** Packages waiting for refine per core: about a minute of work at one package per core per slot. */
export const PACKAGES_QUEUED_PER_CORE_MAX = 16;
/**
 * Bytes of packages waiting for refine, across cores: with full W_B packages this is ~19 of
 * them (the per-core count alone would allow 341 × 16 on the full chain).
 */
export const QUEUED_BYTES_MAX = 256 * 1024 * 1024;
/** Refined reports waiting for their core to be free: refine runs ahead by this much, no more. */
const REPORTS_READY_PER_CORE_MAX = 2;

/** A refined package's report, waiting for its core to be free. */
export interface ReadyReport {
  readonly pkg: AcceptedPackage;
  readonly report: WorkReport;
}

export interface RefineQueueDeps {
  readonly params: ChainParams;
  readonly store: Store;
  readonly services: LoadedServices;
  readonly pool: RefinePool;
  readonly availability: Availability;
  readonly head: ChainHead;
  readonly statuses: PackageStatuses;
  /** Counts a coded error (bad input refused, or a package failed after acceptance). */
  readonly count: (code: ErrorCode) => void;
  readonly log: NodeLogger;
}

export class RefineQueue {
  private readonly queues: AcceptedPackage[][];
  private readonly ready: ReadyReport[][];
  private readonly refining: boolean[];
  private refinesInFlight = 0;
  private queuedBytes = 0;
  /** Packages refining whose intake failed meanwhile: their outcome is dropped (see withdraw). */
  private readonly withdrawn = new Set<AcceptedPackage>();
  private running = false;

  constructor(private readonly deps: RefineQueueDeps) {
    const cores = deps.params.coresCount;
    this.queues = Array.from({ length: cores }, () => []);
    this.ready = Array.from({ length: cores }, () => []);
    this.refining = new Array<boolean>(cores).fill(false);
  }

  /** Starts refining: until now packages only queue. */
  start(): void {
    this.running = true;
    this.pumpAll();
  }

  /** No refine starts after this; those running finish (the pool's close waits for them). */
  stop(): void {
    this.running = false;
  }

  /**
   * Takes a GP-encoded package in for `core`: intake's checks, then the node's bounds; a refusal
   * is a counted JamgateError and changes nothing. Resolves with the package's hash once its
   * record and bytes are stored.
   */
  submit(core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Uint8Array {
    const { params, store, statuses } = this.deps;
    if (extrinsics.length > 0) throw this.refused("JG_ERR_PACKAGE_UNSUPPORTED", "extrinsics are not supported by the embedded node");
    const checked = checkWorkPackage(params, this.deps.head.intakeView(), core, workPackage);
    if (!checked.ok) throw this.refused(checked.error.code, checked.error.detail);
    const pkg = checked.value;
    const hex = toHex(pkg.hash);
    if (statuses.record(hex) !== null) throw this.refused("JG_ERR_PACKAGE_DUPLICATE", `package ${hex}`);
    if (this.queues[core]!.length >= PACKAGES_QUEUED_PER_CORE_MAX)
      throw this.refused("JG_ERR_QUEUE_FULL", `core ${core} has ${PACKAGES_QUEUED_PER_CORE_MAX} packages waiting`);
    if (this.queuedBytes + pkg.bytes.length > QUEUED_BYTES_MAX)
      throw this.refused("JG_ERR_QUEUE_FULL", `${this.queuedBytes} bytes of packages are waiting for refine`);
    const noCode = this.serviceWithoutCode(pkg);
    if (noCode !== null) throw this.refused("JG_ERR_SERVICE_UNKNOWN", `no code loaded for service ${noCode}`);
    // Refine starts before the package is stored: a refine thread, if one is free, has the task
    // before this thread writes the bundle (a full one at 4,000 envelopes/s: median 12 ms, p90
    // 59, max 138), and nothing the refine yields is used before this returns.
    this.enqueue(pkg);
    this.pump(core);
    try {
      statuses.submitted(hex, core, (record) => store.putSubmitted(record, pkg.bytes));
    } catch (e) {
      this.withdraw(pkg);
      throw e;
    }
    return pkg.hash;
  }

  /** After a restart: packages accepted but not yet reported go back to their core's queue, or fail if intake no longer takes them. */
  requeueUnreported(): void {
    const { params, store, statuses } = this.deps;
    const view = this.deps.head.intakeView();
    for (const record of store.packagesWithStatus(new Set(["submitted", "refined"]))) {
      const bytes = store.bundle(record.hash);
      const checked = bytes === null ? null : checkWorkPackage(params, view, record.core, bytes);
      if (checked === null || !checked.ok) {
        const why = checked === null ? "its bytes are missing" : `${checked.error.code}: ${checked.error.detail}`;
        const error = codedError("JG_ERR_NODE_STOPPED", `accepted before a restart and no longer valid (${why})`);
        this.deps.count(error.code);
        statuses.change(record.hash, { kind: "failed", error });
        continue;
      }
      this.enqueue(checked.value);
    }
  }

  /** The next refined report of `core`, for a block whose guarantees may fill the core; refine of that core goes on. */
  takeReady(core: number): ReadyReport | undefined {
    const next = this.ready[core]!.shift();
    if (next !== undefined) this.pump(core);
    return next;
  }

  private refused(code: ErrorCode, detail: string): JamgateError {
    this.deps.count(code);
    return new JamgateError(code, detail);
  }

  /** The first service a package's items name whose code this node has not loaded, or null. */
  private serviceWithoutCode(pkg: AcceptedPackage): number | null {
    const item = pkg.workPackage.items.find((i) => this.deps.services.moduleUrl(i.codeHash.raw) === null);
    return item === undefined ? null : item.service;
  }

  /** A package whose intake failed after it was queued: out of the queue, or its refine's outcome is dropped. */
  private withdraw(pkg: AcceptedPackage): void {
    const queue = this.queues[pkg.core]!;
    const at = queue.indexOf(pkg);
    if (at < 0) {
      this.withdrawn.add(pkg);
      return;
    }
    queue.splice(at, 1);
    this.queuedBytes -= pkg.bytes.length;
  }

  private enqueue(pkg: AcceptedPackage): void {
    this.queues[pkg.core]!.push(pkg);
    this.queuedBytes += pkg.bytes.length;
  }

  /**
   * Refines the next queued package of `core` if the core is idle and has room for a report and a
   * refine thread is free: its items in as many parallel tasks as threads are free (up to one per
   * item), so each task starts at once; its gas watchdog is armed when a thread takes it in any case.
   */
  private pump(core: number): void {
    if (!this.running || this.refining[core] || this.ready[core]!.length >= REPORTS_READY_PER_CORE_MAX) return;
    const free = this.deps.pool.threads - this.refinesInFlight;
    if (free <= 0) return; // a thread frees up: pumpAll() retries
    const pkg = this.queues[core]!.shift();
    if (pkg === undefined) return;
    const tasks = Math.max(1, Math.min(pkg.workPackage.items.length, free));
    this.queuedBytes -= pkg.bytes.length;
    this.refining[core] = true;
    this.refinesInFlight += tasks;
    void this.refine(pkg, tasks)
      .catch((e: unknown) => {
        this.deps.log.error({ err: e, package: toHex(pkg.hash) }, "refine failed unexpectedly");
        if (!this.withdrawn.has(pkg)) this.fail(pkg, codedError("JG_ERR_REFINE_PANIC", e instanceof Error ? e.message : String(e)));
      })
      .finally(() => {
        this.withdrawn.delete(pkg);
        this.refining[core] = false;
        this.refinesInFlight -= tasks;
        this.pumpAll(core);
      });
  }

  /** Gives a free thread to the cores in turn, starting after `lastCore` for fairness. */
  private pumpAll(lastCore = -1): void {
    const cores = this.deps.params.coresCount;
    for (let i = 1; i <= cores; i++) this.pump((lastCore + i) % cores);
  }

  /**
   * Refines a package's items in `tasks` parallel groups of consecutive items, so a package of
   * several items takes the time of its largest group rather than of all its items. A package's
   * items are independent (GP 14.3: Ψ_R per item), and each keeps its own gas.
   */
  private async refine(pkg: AcceptedPackage, tasks: number): Promise<void> {
    const { params, services, pool, availability, statuses } = this.deps;
    // Intake checked this too; a package recovered at open was not taken in again, and its code may not be loaded now.
    const noCode = this.serviceWithoutCode(pkg);
    if (noCode !== null) return this.fail(pkg, codedError("JG_ERR_SERVICE_UNKNOWN", `no code loaded for service ${noCode}`));
    const items = pkg.workPackage.items.map((item) => ({
      serviceId: item.service,
      moduleUrl: services.moduleUrl(item.codeHash.raw)!, // every item's code is loaded (above)
      payload: item.payload.raw,
      gasLimit: item.refineGasLimit,
    }));
    // The items in `tasks` groups of consecutive items, about equal in payload bytes; the group
    // with the fewest bytes also erasure-codes the bundle once its items are refined.
    const groups = groupItems(
      items.map((i) => i.payload.length),
      tasks,
    );
    const coder = groups.reduce((best, g, i) => (g.bytes < groups[best]!.bytes ? i : best), 0);
    const outcomes = await Promise.all(
      groups.map((g, i) =>
        pool.run({
          packageHash: pkg.hash,
          coreIndex: pkg.core,
          itemOffset: g.from,
          items: items.slice(g.from, g.to),
          availability: i === coder ? { chain: params.name, bundle: pkg.bytes } : null,
        }),
      ),
    );
    if (this.withdrawn.has(pkg)) return; // its intake failed (see submit): the submitter was told so
    for (const outcome of outcomes)
      if (!outcome.ok) return this.fail(pkg, codedError(outcome.timedOut ? "JG_ERR_REFINE_TIMEOUT" : "JG_ERR_REFINE_PANIC", outcome.detail));
    const results = outcomes.flatMap((o) => (o.ok ? o.result.items : []));
    const failed = results.find((item) => !item.ok);
    if (failed !== undefined && !failed.ok) return this.fail(pkg, codedError(failed.code, failed.detail));
    const coded = outcomes[coder]!;
    const encoded = coded.ok ? coded.result.availability : undefined;
    if (encoded === undefined) throw new Error("refine succeeded but the worker did not erasure-code the bundle");
    const bundle = { packageHash: pkg.hash, bundleBytes: pkg.bytes.length, erasureRoot: encoded.erasureRoot };
    const report = buildReport(params, pkg.workPackage, bundle, pkg.core, results);
    if (!report.ok) return this.fail(pkg, report.error);
    // The guarantor hands each validator its chunk before the report goes on chain (GP 14.4).
    availability.distribute(pkg.hash, encoded, this.deps.head.best.slot);
    this.ready[pkg.core]!.push({ pkg, report: report.value });
    statuses.change(toHex(pkg.hash), { kind: "refined", reportHash: toHex(reportHash(params, report.value)) });
  }

  private fail(pkg: AcceptedPackage, error: CodedError): void {
    this.deps.count(error.code);
    this.deps.log.warn({ package: toHex(pkg.hash), core: pkg.core, code: error.code, detail: error.detail }, "work package failed");
    this.deps.statuses.change(toHex(pkg.hash), { kind: "failed", error });
  }
}

/**
 * Splits items (by payload bytes) into at most `parts` groups of consecutive items, each group as
 * close to an equal share of the bytes as whole items allow; never an empty group.
 */
export function groupItems(bytes: readonly number[], parts: number): { from: number; to: number; bytes: number }[] {
  const total = bytes.reduce((a, b) => a + b, 0);
  const groups: { from: number; to: number; bytes: number }[] = [];
  let from = 0;
  let sum = 0; // bytes of items 0 … i
  let groupBytes = 0; // bytes of items from … i
  for (let i = 0; i < bytes.length; i++) {
    sum += bytes[i]!;
    groupBytes += bytes[i]!;
    const left = bytes.length - 1 - i; // items after this one
    const groupsLeft = parts - groups.length - 1; // groups after this one
    // Close the group once it holds its share, or when each later group needs one of the items left.
    if (groupsLeft > 0 && (sum >= (total * (groups.length + 1)) / parts || left === groupsLeft)) {
      groups.push({ from, to: i + 1, bytes: groupBytes });
      from = i + 1;
      groupBytes = 0;
    }
  }
  groups.push({ from, to: bytes.length, bytes: groupBytes });
  const nonEmpty = groups.filter((g) => g.to > g.from);
  return nonEmpty.length > 0 ? nonEmpty : [{ from: 0, to: 0, bytes: 0 }];
}
