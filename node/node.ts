/**
 * The embedded JAM node: one process, V in-process validators, C cores. It takes work packages
 * (intake), refines them on a worker pool (one thread per core), has guarantors sign the
 * reports, authors one block per slot (guarantees, assurances, accumulation), persists it in
 * LMDB, and answers the NodeApi (JIP-2 subset) in-process; rpc/server.ts puts that on a socket.
 *
 * Off-chain work (queues, refine, signatures) happens here; everything that changes state goes
 * through chain/stf.ts, so replaying the stored blocks from genesis gives the same state roots.
 */
import { Block, WorkReport } from "@typeberry/lib/block";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChainParameters, BlockDescriptor, NodeApi, ServiceValueProof, Unsubscribe, WorkPackageStatus } from "./api.ts";
import { Availability, DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "./availability/availability.ts";
import type { ChunkProof } from "./availability/erasure.ts";
import { encodeBlock, genesisBlock, headerHash, makeExtrinsic, sealBlock } from "./chain/block.ts";
import { type GenesisService, genesisState } from "./chain/genesis.ts";
import { replayChain, type ReplayReport } from "./chain/replay.ts";
import { type LoadedServices, loadServices } from "./chain/services.ts";
import { type ChainName, chainParams, type ChainParams } from "./chain/params.ts";
import { applyBlock, coresFreedBy } from "./chain/stf.ts";
import { devValidatorKeys } from "./chain/validators.ts";
import { bytesEqual, decode, encode, fromHex, toHex } from "./codec/jam.ts";
import type { Ed25519KeyPair } from "./crypto/ed25519.ts";
import { type CodedError, codedError, type ErrorCode, JamgateError } from "../devices/protocol/errors.ts";
import { guarantee, reportHash } from "./guarantor/guarantee.ts";
import { RefinePool } from "./guarantor/refine-pool.ts";
import { buildReport } from "./guarantor/report.ts";
import { type AcceptedPackage, checkWorkPackage } from "./intake/intake.ts";
import { serviceIds, serviceInfoKey, StateComponents, storageKey } from "./state/components.ts";
import { type Kv, PastState, State, type UndoLog } from "./state/kv.ts";
import { type PackageRecord, Store } from "./storage/store.ts";
import { currentThreadId } from "./thread/priority.ts";

export interface NodeLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: NodeLogger = { info() {}, warn() {}, error() {} };

export interface NodeOptions {
  readonly dataDir: string;
  readonly chain?: ChainName;
  /** Slot period P in ms (GP: 6000). */
  readonly slotMs?: number;
  readonly services: readonly GenesisService[];
  /**
   * The node's cap on one refine task, in ms of wall clock from when it is handed to the refine
   * pool (default REFINE_CAP_MS_DEFAULT). Below it, each task is stopped at the bound its items'
   * declared gas allows (guarantor/refine-pool.ts, refineBoundMs), timed from when a thread takes it.
   */
  readonly refineTimeoutMs?: number;
  /** Slots a package's chunks are kept (DA retention horizon). */
  readonly daRetentionSlots?: number;
  /** Bound on stored chunk bytes; the oldest packages are pruned past it. */
  readonly daMaxBytes?: number;
  /** Validators that store no chunks (offline or withholding), for tests and simulations. */
  readonly withholdingValidators?: readonly number[];
  readonly logger?: NodeLogger;
}

/**
 * Default cap on one refine task, whatever its gas: about the gas bound of a package declaring
 * all of G_R on the tiny chain (10.5 s), so there the gas bound is what stops a refine; on the
 * full chain (G_R = 5e9, 50.5 s) the cap keeps a core from being held for many slots.
 */
export const REFINE_CAP_MS_DEFAULT = 10_000;
/** Packages waiting for refine per core: about a minute of work at one package per core per slot. */
export const PACKAGES_QUEUED_PER_CORE_MAX = 16;
/**
 * Bytes of packages waiting for refine, across cores: with full W_B packages this is ~19 of
 * them (the per-core count alone would allow 341 × 16 on the full chain).
 */
export const QUEUED_BYTES_MAX = 256 * 1024 * 1024;
/** Refined reports waiting for their core to be free: refine runs ahead by this much, no more. */
const REPORTS_READY_PER_CORE_MAX = 2;
/** Subscribers to blocks and statuses, across all clients (the RPC server bounds per connection). */
const SUBSCRIBERS_MAX = 100_000;
/**
 * Blocks whose state can still be read (JIP-2 queries take a header hash): a client that asks
 * for the best block and then reads its state must not lose a race with the next block. GP's
 * recent history H is 8 blocks; 32 covers more than 3 s of 100 ms slots.
 */
const RECENT_STATES_MAX = 32;
/** Status records kept in memory for quick answers; older ones are read back from LMDB. */
const STATUS_CACHE_MAX = 65_536;

interface ReadyReport {
  readonly pkg: AcceptedPackage;
  readonly report: WorkReport;
}

export class JamNode implements NodeApi {
  readonly params: ChainParams;
  readonly slotMs: number;
  private readonly store: Store;
  private readonly state: State;
  private readonly validators: Ed25519KeyPair[];
  private readonly pool: RefinePool;
  /** Packages refining whose intake failed meanwhile: their outcome is dropped (see withdraw). */
  private readonly withdrawn = new Set<AcceptedPackage>();
  /** The OS id of the thread that opened the node (see threadIds). */
  private readonly openedOn = currentThreadId();
  /** The validators' data-availability layer (chunks, assurances, recovery). */
  readonly availability: Availability;
  private readonly services: LoadedServices;
  private readonly genesisServices: readonly GenesisService[];
  private best: { slot: number; hash: Uint8Array; stateRoot: Uint8Array };
  private readonly queues: AcceptedPackage[][];
  private readonly ready: ReadyReport[][];
  private readonly refining: boolean[];
  private refinesInFlight = 0;
  private queuedBytes = 0;
  private readonly statuses = new Map<string, PackageRecord>();
  private readonly blockSubscribers = new Set<(b: BlockDescriptor) => void>();
  private readonly statusSubscribers = new Map<string, Set<(s: WorkPackageStatus) => void>>();
  /** Bad input counted by code: rejected at intake, or failed after acceptance. */
  private readonly errorCounts = new Map<ErrorCode, number>();
  /** Undo logs of the most recent blocks, newest first (at most RECENT_STATES_MAX). */
  private readonly undoLogs: UndoLog[] = [];
  private running = false;
  /** Cuts the authoring loop's wait for the next slot short on stop (a 6 s slot made Ctrl-C wait up to 6 s). */
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private authoring: Promise<unknown> = Promise.resolve();
  private readonly log: NodeLogger;

  private constructor(options: NodeOptions, params: ChainParams, store: Store, state: State, services: LoadedServices) {
    this.params = params;
    this.slotMs = options.slotMs ?? 6000;
    this.store = store;
    this.state = state;
    this.log = options.logger ?? silentLogger;
    this.validators = devValidatorKeys(params.validatorsCount);
    this.services = services;
    this.genesisServices = options.services;
    this.pool = new RefinePool({
      coresCount: params.coresCount,
      refineTimeoutMs: options.refineTimeoutMs ?? REFINE_CAP_MS_DEFAULT,
      preloadModuleUrls: options.services.map((s) => s.moduleUrl),
    });
    this.availability = new Availability(params, store, this.validators, {
      retentionSlots: options.daRetentionSlots ?? DEFAULT_RETENTION_SLOTS,
      maxBytes: options.daMaxBytes ?? DEFAULT_DA_MAX_BYTES,
      withholding: options.withholdingValidators ?? [],
      log: (obj, msg) => this.log.info(obj, msg),
      count: (code) => this.count(code),
    });
    this.queues = Array.from({ length: params.coresCount }, () => []);
    this.ready = Array.from({ length: params.coresCount }, () => []);
    this.refining = new Array<boolean>(params.coresCount).fill(false);
    const bestSlot = store.bestSlot();
    const stored = bestSlot === null ? null : store.block(bestSlot);
    if (stored === null) throw new Error("store has no best block after genesis");
    this.best = { slot: stored.slot, hash: stored.hash, stateRoot: stored.stateRoot };
  }

  /** Opens (or creates at genesis) the node's data directory and resumes from its best block. */
  static async open(options: NodeOptions): Promise<JamNode> {
    const params = chainParams(options.chain ?? "tiny");
    const services = await loadServices(options.services);
    const validators = devValidatorKeys(params.validatorsCount);
    const genesis = genesisState(
      params,
      validators.map((v) => v.publicKey),
      options.services,
    );
    const genesisRoot = genesis.root();
    const genesisHeader = genesisBlock(params, genesisRoot);
    const genesisHash = headerHash(params, genesisHeader.header);

    // The store makes the dir (0700) and locks it for this process: a second one is refused (JG_ERR_DATA_DIR_LOCKED).
    const store = new Store(options.dataDir);
    const storedGenesis = store.genesisHash();
    let state: State;
    if (storedGenesis === null) {
      store.writeGenesis({ slot: 0, hash: genesisHash, encoded: encodeBlock(params, genesisHeader), stateRoot: genesisRoot }, genesis);
      state = genesis;
    } else {
      if (!bytesEqual(storedGenesis, genesisHash)) {
        await store.close();
        throw new JamgateError(
          "JG_ERR_GENESIS",
          `data dir ${options.dataDir} holds a chain with genesis ${toHex(storedGenesis)}, not ${toHex(genesisHash)} (other chain, validators or services)`,
        );
      }
      state = State.fromEntries(store.stateEntries());
    }
    const node = new JamNode(options, params, store, state, services);
    if (store.migratedChunks > 0) node.log.info({ chunks: store.migratedChunks }, "moved the data dir's chunks to the binary chunk database");
    if (store.tightenedFrom !== null)
      node.log.info({ dataDir: options.dataDir, mode: store.tightenedFrom.toString(8) }, "the data dir was open to other users: made it private (0700)");
    await node.pool.warm();
    const root = state.root();
    if (!bytesEqual(root, node.best.stateRoot))
      throw new Error(`stored state root ${toHex(root)} is not the best block's ${toHex(node.best.stateRoot)}: store corrupt`);
    node.requeueUnreported();
    return node;
  }

  /** After a restart: packages accepted but not yet reported go back to their core's queue. */
  private requeueUnreported(): void {
    const view = this.intakeView();
    for (const record of this.store.packagesWithStatus(new Set(["submitted", "refined"]))) {
      const bytes = this.store.bundle(record.hash);
      const checked = bytes === null ? null : checkWorkPackage(this.params, view, record.core, bytes);
      if (checked === null || !checked.ok) {
        const why = checked === null ? "its bytes are missing" : `${checked.error.code}: ${checked.error.detail}`;
        const error = { code: "JG_ERR_NODE_STOPPED" as const, detail: `accepted before a restart and no longer valid (${why})` };
        this.count(error.code);
        this.setStatus({ hash: record.hash, core: record.core, status: "failed", error }, true);
        continue;
      }
      this.enqueue(checked.value);
    }
  }

  get bestSlot(): number {
    return this.best.slot;
  }

  /**
   * The OS ids (Linux) of the threads on the node's critical path: the one that opened it (and
   * runs intake, chunk storage and blocks) and the refine threads. Empty where there are none.
   */
  get threadIds(): readonly number[] {
    return this.openedOn === null ? [] : [this.openedOn, ...this.pool.threadIds];
  }

  /**
   * Starts refining submitted packages and, unless `authorBlocks` is false (benchmarks and tests
   * that call produceBlock() themselves), authoring a block every slotMs.
   */
  start(options: { readonly authorBlocks?: boolean } = {}): void {
    if (this.running) return;
    this.running = true;
    this.pumpAll();
    if (options.authorBlocks === false) return;
    this.loop = (async () => {
      let next = Date.now() + this.slotMs;
      while (this.running) {
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait, undefined, { signal: this.stopping.signal }).catch(() => undefined);
        if (!this.running) break;
        await this.produceBlock();
        next = Math.max(next + this.slotMs, Date.now());
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    await this.loop;
    await this.authoring;
    await this.pool.close();
    await this.store.close();
  }

  // ---- intake and refine (off-chain) ----

  private intakeView() {
    return {
      state: new StateComponents(this.state, this.params),
      bestSlot: this.best.slot,
      block: (hash: Uint8Array) => {
        const slot = this.store.slotOf(hash);
        const stored = slot === null ? null : this.store.block(slot);
        return stored === null ? null : { slot: stored.slot, stateRoot: stored.stateRoot };
      },
    };
  }

  async submitWorkPackage(core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Promise<Uint8Array> {
    if (extrinsics.length > 0) throw this.rejected("JG_ERR_PACKAGE_UNSUPPORTED", "extrinsics are not supported by the embedded node");
    const checked = checkWorkPackage(this.params, this.intakeView(), core, workPackage);
    if (!checked.ok) throw this.rejected(checked.error.code, checked.error.detail);
    const pkg = checked.value;
    const hex = toHex(pkg.hash);
    if (this.statuses.has(hex) || this.store.packageRecord(hex) !== null) throw this.rejected("JG_ERR_PACKAGE_DUPLICATE", `package ${hex}`);
    if (this.queues[core]!.length >= PACKAGES_QUEUED_PER_CORE_MAX)
      throw this.rejected("JG_ERR_QUEUE_FULL", `core ${core} has ${PACKAGES_QUEUED_PER_CORE_MAX} packages waiting`);
    if (this.queuedBytes + pkg.bytes.length > QUEUED_BYTES_MAX)
      throw this.rejected("JG_ERR_QUEUE_FULL", `${this.queuedBytes} bytes of packages are waiting for refine`);
    const noCode = this.serviceWithoutCode(pkg);
    if (noCode !== null) throw this.rejected("JG_ERR_SERVICE_UNKNOWN", `no code loaded for service ${noCode}`);
    const record: PackageRecord = { hash: hex, core, status: "submitted" };
    // Refine starts before the package is stored: a refine thread, if one is free, has the task
    // before this thread writes the bundle (a full one at 4,000 envelopes/s: median 12 ms, p90
    // 59, max 138), and nothing the refine yields is used before this returns.
    this.enqueue(pkg);
    this.pump(core);
    try {
      this.store.putSubmitted(record, pkg.bytes);
    } catch (e) {
      this.withdraw(pkg);
      throw e;
    }
    this.setStatus(record, false);
    return pkg.hash;
  }

  /** The first service a package's items name whose code this node has not loaded, or null. */
  private serviceWithoutCode(pkg: AcceptedPackage): number | null {
    const item = pkg.workPackage.items.find((i) => this.services.moduleUrl(i.codeHash.raw) === null);
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
    const free = this.pool.threads - this.refinesInFlight;
    if (free <= 0) return; // a thread frees up: pumpAll() retries
    const pkg = this.queues[core]!.shift();
    if (pkg === undefined) return;
    const tasks = Math.max(1, Math.min(pkg.workPackage.items.length, free));
    this.queuedBytes -= pkg.bytes.length;
    this.refining[core] = true;
    this.refinesInFlight += tasks;
    void this.refine(pkg, tasks)
      .catch((e: unknown) => {
        this.log.error({ err: e, package: toHex(pkg.hash) }, "refine failed unexpectedly");
        this.fail(pkg, codedError("JG_ERR_REFINE_PANIC", e instanceof Error ? e.message : String(e)));
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
    for (let i = 1; i <= this.params.coresCount; i++) this.pump((lastCore + i) % this.params.coresCount);
  }

  /**
   * Refines a package's items in `tasks` parallel groups of consecutive items, so a package of
   * several items takes the time of its largest group rather than of all its items. A package's
   * items are independent (GP 14.3: Ψ_R per item), and each keeps its own gas.
   */
  private async refine(pkg: AcceptedPackage, tasks: number): Promise<void> {
    // Intake checked this too; a package recovered at open was not taken in again, and its code may not be loaded now.
    const noCode = this.serviceWithoutCode(pkg);
    if (noCode !== null) return this.fail(pkg, codedError("JG_ERR_SERVICE_UNKNOWN", `no code loaded for service ${noCode}`));
    const items = pkg.workPackage.items.map((item) => ({
      serviceId: item.service,
      moduleUrl: this.services.moduleUrl(item.codeHash.raw)!, // every item's code is loaded (above)
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
        this.pool.run({
          packageHash: pkg.hash,
          coreIndex: pkg.core,
          itemOffset: g.from,
          items: items.slice(g.from, g.to),
          availability: i === coder ? { chain: this.params.name, bundle: pkg.bytes } : null,
        }),
      ),
    );
    if (this.withdrawn.has(pkg)) return; // its intake failed (see submitWorkPackage): the submitter was told so
    for (const outcome of outcomes)
      if (!outcome.ok) return this.fail(pkg, codedError(outcome.timedOut ? "JG_ERR_REFINE_TIMEOUT" : "JG_ERR_REFINE_PANIC", outcome.detail));
    const results = outcomes.flatMap((o) => (o.ok ? o.result.items : []));
    const failed = results.find((item) => !item.ok);
    if (failed !== undefined && !failed.ok) return this.fail(pkg, codedError(failed.code, failed.detail));
    const coded = outcomes[coder]!;
    const encoded = coded.ok ? coded.result.availability : undefined;
    if (encoded === undefined) throw new Error("refine succeeded but the worker did not erasure-code the bundle");
    const bundle = { packageHash: pkg.hash, bundleBytes: pkg.bytes.length, erasureRoot: encoded.erasureRoot };
    const report = buildReport(this.params, pkg.workPackage, bundle, pkg.core, results);
    if (!report.ok) return this.fail(pkg, report.error);
    // The guarantor hands each validator its chunk before the report goes on chain (GP 14.4).
    this.availability.distribute(pkg.hash, encoded, this.best.slot);
    this.ready[pkg.core]!.push({ pkg, report: report.value });
    this.setStatus({ hash: toHex(pkg.hash), core: pkg.core, status: "refined", reportHash: toHex(reportHash(this.params, report.value)) }, true);
  }

  private count(code: ErrorCode): void {
    this.errorCounts.set(code, (this.errorCounts.get(code) ?? 0) + 1);
  }

  private rejected(code: ErrorCode, detail: string): JamgateError {
    this.count(code);
    return new JamgateError(code, detail);
  }

  /** Counts of coded errors since start, by code (for logs and metrics). */
  errorStats(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.errorCounts);
  }

  private fail(pkg: AcceptedPackage, error: CodedError): void {
    this.count(error.code);
    this.log.warn({ package: toHex(pkg.hash), core: pkg.core, code: error.code, detail: error.detail }, "work package failed");
    this.setStatus({ hash: toHex(pkg.hash), core: pkg.core, status: "failed", error: { code: error.code, detail: error.detail } }, true);
  }

  // ---- block authoring ----

  /** Authors, imports and persists the next block. Serialized: one block at a time. */
  produceBlock(): Promise<BlockDescriptor> {
    const next = this.authoring.then(() => this.authorBlock());
    this.authoring = next.catch(() => undefined);
    return next;
  }

  private authorBlock(): BlockDescriptor {
    const params = this.params;
    const slot = this.best.slot + 1;
    const parentHash = this.best.hash;
    const state = new StateComponents(this.state, params);

    // Assurances: each validator assures the engaged cores whose chunk it holds.
    const assurances = this.availability.assurances(state.pending(), parentHash);
    const assured = new Map<number, number>();
    for (const a of assurances)
      for (let core = 0; core < params.coresCount; core++) if (a.bitfield.isSet(core)) assured.set(core, (assured.get(core) ?? 0) + 1);
    const free = coresFreedBy(params, this.state, assured, slot);

    const guarantees = [];
    for (let core = 0; core < params.coresCount; core++) {
      const ready = this.ready[core]!;
      if (!free[core] || ready.length === 0) continue;
      const next = ready.shift()!;
      guarantees.push(guarantee(params, this.validators, next.report, slot));
      this.pump(core);
    }

    const block = sealBlock(
      params,
      { parentHash, priorStateRoot: this.best.stateRoot, slot, authorIndex: slot % params.validatorsCount },
      makeExtrinsic(guarantees, assurances),
      this.validators[slot % params.validatorsCount]!,
    );
    const started = performance.now();
    const result = applyBlock(this.state, params, this.services.resolve, block, parentHash, this.best.stateRoot);
    if (!result.ok) throw new Error(`the node authored a block it cannot import: ${result.error}`);
    const outcome = result.value;
    const stateRoot = this.state.root();
    const hash = headerHash(params, block.header);
    const descriptor = { headerHash: hash, slot };
    const at = { hash: toHex(hash), slot };

    // Each package's record after this block, and every status it passed through on the way
    // (a report can become available and be accumulated in one block: subscribers see both).
    const records = new Map<string, PackageRecord>();
    const transitions: PackageRecord[] = [];
    const update = (packageHash: Uint8Array, change: (r: PackageRecord) => PackageRecord) => {
      const hex = toHex(packageHash);
      const current = records.get(hex) ?? this.record(hex);
      if (current === null) return;
      const next = change(current);
      records.set(hex, next);
      transitions.push(next);
    };
    const reports = new Map<string, Uint8Array>();
    for (const r of outcome.reported) {
      const rHash = reportHash(params, r);
      reports.set(toHex(rHash), encode(WorkReport.Codec, r, params.spec));
      update(r.workPackageSpec.hash.raw, (c) => ({ ...c, status: "reported", reportHash: toHex(rHash), reportedIn: at }));
    }
    for (const r of outcome.available) update(r.workPackageSpec.hash.raw, (c) => ({ ...c, status: "available", availableIn: at }));
    for (const p of outcome.accumulation.accumulatedPackages) update(p, (c) => ({ ...c, status: "accumulated", accumulatedIn: at }));
    for (const r of outcome.timedOut) {
      this.count("JG_ERR_REPORT_TIMEOUT");
      update(r.workPackageSpec.hash.raw, (c) => ({
        ...c,
        status: "failed",
        error: { code: "JG_ERR_REPORT_TIMEOUT", detail: `not available within U = ${params.availabilityTimeoutSlots} slots` },
      }));
    }

    this.store.writeBlock({
      block: { slot, hash, encoded: encodeBlock(params, block), stateRoot },
      stateChanges: outcome.changes,
      packages: [...records.values()],
      reports,
    });
    this.best = { slot, hash, stateRoot };
    // Reported bundles live on as chunks: the whole bundle was kept only to refine again after a restart.
    for (const r of outcome.reported) this.store.removeBundle(toHex(r.workPackageSpec.hash.raw));
    this.availability.prune(slot);
    this.undoLogs.unshift({ slot, previous: outcome.previous });
    if (this.undoLogs.length > RECENT_STATES_MAX) this.undoLogs.pop();
    for (const record of transitions) this.setStatus(record, false);

    const failed = outcome.accumulation.calls.filter((c) => c.failure !== null);
    this.log.info(
      {
        slot,
        hash: toHex(hash),
        reports: {
          guaranteed: outcome.reported.length,
          available: outcome.available.length,
          accumulated: outcome.accumulation.accumulatedPackages.length,
          timedOut: outcome.timedOut.length,
        },
        gasUsed: outcome.accumulation.gasUsed.toString(),
        stateRoot: toHex(stateRoot),
        importMs: Math.round(performance.now() - started),
        ...(failed.length > 0 ? { failedAccumulations: failed.map((f) => ({ service: f.serviceId, failure: f.failure })) } : {}),
      },
      "block",
    );
    for (const line of outcome.accumulation.logs) this.log.info({ slot, service: line.serviceId }, line.message);
    for (const subscriber of this.blockSubscribers) subscriber(descriptor);
    return descriptor;
  }

  // ---- status ----

  private record(hex: string): PackageRecord | null {
    return this.statuses.get(hex) ?? this.store.packageRecord(hex);
  }

  private setStatus(record: PackageRecord, persist: boolean): void {
    if (persist) this.store.putPackage(record);
    this.statuses.delete(record.hash);
    this.statuses.set(record.hash, record);
    if (this.statuses.size > STATUS_CACHE_MAX) this.statuses.delete(this.statuses.keys().next().value!);
    const status = toStatus(record);
    for (const subscriber of this.statusSubscribers.get(record.hash) ?? []) subscriber(status);
  }

  // ---- NodeApi ----

  async parameters(): Promise<ChainParameters> {
    const p = this.params;
    return {
      core_count: p.coresCount,
      val_count: p.validatorsCount,
      epoch_period: p.epochLength,
      rotation_period: p.rotationPeriod,
      max_work_items: p.maxWorkItems,
      max_input: p.maxBundleBytes,
      max_report_elective_data: p.maxReportResultsBytes,
      max_refine_gas: Number(p.refineGasPerPackage),
      max_accumulate_gas: Number(p.accumulateGasPerReport),
      block_gas_limit: Number(p.accumulateGasPerBlock),
      availability_timeout: p.availabilityTimeoutSlots,
      max_lookup_anchor_age: p.maxAnchorAgeSlots,
      // JIP-2's P is a Number of seconds; a devnet's short slot makes it fractional.
      slot_period_sec: this.slotMs / 1000,
    };
  }

  async bestBlock(): Promise<BlockDescriptor> {
    return { headerHash: this.best.hash, slot: this.best.slot };
  }

  async finalizedBlock(): Promise<BlockDescriptor> {
    return this.bestBlock();
  }

  async subscribeBestBlock(onBlock: (block: BlockDescriptor) => void): Promise<Unsubscribe> {
    if (this.blockSubscribers.size >= SUBSCRIBERS_MAX) throw new Error(`more than ${SUBSCRIBERS_MAX} block subscribers`);
    const subscriber = (b: BlockDescriptor) => onBlock(b);
    this.blockSubscribers.add(subscriber);
    return () => this.blockSubscribers.delete(subscriber);
  }

  /**
   * The state as of `headerHash`: the best block's, or a recent one's through the undo logs.
   * Older states are not kept (their blocks and state roots are).
   */
  private stateAt(headerHash: Uint8Array): { kv: Kv & { keys(): Iterable<string> }; components: StateComponents } {
    const slot = this.store.slotOf(headerHash);
    if (slot === null) throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `no block ${toHex(headerHash)}`);
    const later = this.undoLogs.filter((log) => log.slot > slot);
    const earliest = (this.undoLogs.at(-1)?.slot ?? this.best.slot + 1) - 1;
    if (slot < earliest) {
      throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `the node keeps the state of the last ${RECENT_STATES_MAX} blocks; slot ${slot} is older`);
    }
    const kv = new PastState(this.state, later);
    return { kv, components: new StateComponents(kv, this.params) };
  }

  async block(headerHash: Uint8Array): Promise<Uint8Array | null> {
    const slot = this.store.slotOf(headerHash);
    return slot === null ? null : (this.store.block(slot)?.encoded ?? null);
  }

  async stateRoot(headerHash: Uint8Array): Promise<Uint8Array> {
    const slot = this.store.slotOf(headerHash);
    const stored = slot === null ? null : this.store.block(slot);
    if (stored === null) throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `no block ${toHex(headerHash)}`);
    return stored.stateRoot;
  }

  async listServices(headerHash: Uint8Array): Promise<number[]> {
    return serviceIds(this.stateAt(headerHash).kv.keys());
  }

  async serviceData(headerHash: Uint8Array, serviceId: number): Promise<Uint8Array | null> {
    return this.stateAt(headerHash).kv.get(serviceInfoKey(serviceId));
  }

  async serviceValue(headerHash: Uint8Array, serviceId: number, key: Uint8Array): Promise<Uint8Array | null> {
    return this.stateAt(headerHash).components.storageGet(serviceId, key);
  }

  /**
   * Proved against the node's current state, which is the best block's posterior state: a block
   * is applied to it and made best without yielding in between.
   */
  async serviceValueProof(serviceId: number, key: Uint8Array): Promise<ServiceValueProof | null> {
    const stateKey = storageKey(serviceId, key);
    const path = this.state.proof(stateKey);
    if (path === null) return null;
    const stateRoot = this.state.root();
    if (!bytesEqual(stateRoot, this.best.stateRoot)) throw new Error(`state root ${toHex(stateRoot)} is not the best block's ${toHex(this.best.stateRoot)}`);
    return { block: { headerHash: this.best.hash, slot: this.best.slot }, stateRoot, stateKey: fromHex(stateKey), value: path.value, siblings: path.siblings };
  }

  async workPackageStatus(packageHash: Uint8Array): Promise<WorkPackageStatus | null> {
    const record = this.record(toHex(packageHash));
    return record === null ? null : toStatus(record);
  }

  async subscribeWorkPackageStatus(packageHash: Uint8Array, onStatus: (status: WorkPackageStatus) => void): Promise<Unsubscribe> {
    const hex = toHex(packageHash);
    let set = this.statusSubscribers.get(hex);
    if (set === undefined) {
      if (this.statusSubscribers.size >= SUBSCRIBERS_MAX) throw new Error(`more than ${SUBSCRIBERS_MAX} status subscriptions`);
      set = new Set();
      this.statusSubscribers.set(hex, set);
    }
    const subscriber = (s: WorkPackageStatus) => onStatus(s);
    set.add(subscriber);
    const current = this.record(hex);
    if (current !== null) onStatus(toStatus(current));
    return () => {
      set.delete(subscriber);
      if (set.size === 0) this.statusSubscribers.delete(hex);
    };
  }

  async fetchWorkPackage(packageHash: Uint8Array): Promise<Uint8Array> {
    const bundle = this.availability.fetch(packageHash);
    if (!bundle.ok) throw this.rejected(bundle.error.code, bundle.error.detail);
    return bundle.value;
  }

  async submitChunk(erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Promise<void> {
    const stored = this.availability.receiveChunk(erasureRoot, index, chunk, proof);
    if (!stored.ok) throw new JamgateError(stored.error.code, stored.error.detail);
  }

  async submitAssurance(assurance: Uint8Array): Promise<void> {
    const state = new StateComponents(this.state, this.params);
    const accepted = this.availability.receiveAssurance(assurance, this.best.hash, state.pending(), state.validatorKeys());
    if (!accepted.ok) throw new JamgateError(accepted.error.code, accepted.error.detail);
  }

  async workReport(hash: Uint8Array): Promise<Uint8Array | null> {
    return this.store.report(toHex(hash));
  }

  /** Re-imports every stored block from genesis and checks each state root (see chain/replay.ts). */
  replay(onBlock?: (slot: number, stateRoot: Uint8Array) => void): ReplayReport {
    return replayChain(this.params, this.store, this.genesisServices, this.services.resolve, onBlock);
  }

  /** The decoded block at `slot`, for tools and tests. */
  blockAt(slot: number): Block | null {
    const stored = this.store.block(slot);
    return stored === null ? null : decode(Block.Codec, stored.encoded, this.params.spec);
  }
}

function descriptor(at: { hash: string; slot: number }): BlockDescriptor {
  return { headerHash: fromHex(at.hash), slot: at.slot };
}

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
