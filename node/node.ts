/**
 * The embedded JAM node: one process, V in-process validators, C cores. It takes work packages
 * (intake), refines them on a worker pool (one thread per core), has guarantors sign the
 * reports, authors one block per slot (guarantees, assurances, accumulation), persists it in
 * LMDB, and answers the NodeApi (JIP-2 subset) in-process; rpc/server.ts puts that on a socket.
 *
 * JamNode opens the data dir, starts and stops the node, and answers the NodeApi; the work is in
 * its units: intake/refine-queue.ts (intake to refined reports), chain/author.ts (one block per
 * slot), status.ts (every work-package status transition), chain/head.ts (the best block and
 * recent states). Off-chain work (queues, refine, signatures) happens there; everything that
 * changes state goes through chain/stf.ts, so replaying the stored blocks from genesis gives the
 * same state roots.
 */
import { Block } from "@typeberry/lib/block";
import { type ErrorCode, JamgateError } from "../devices/protocol/errors.ts";
import type { BlockDescriptor, ChainParameters, NodeApi, ServiceValueProof, Unsubscribe, WorkPackageStatus } from "./api.ts";
import { checkHash, checkU32 } from "./api-params.ts";
import { Availability, DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "./availability/availability.ts";
import type { ChunkProof } from "./availability/erasure.ts";
import { BlockAuthor } from "./chain/author.ts";
import { encodeBlock, genesisBlock, headerHash } from "./chain/block.ts";
import { type GenesisService, genesisState } from "./chain/genesis.ts";
import { ChainHead } from "./chain/head.ts";
import { type ChainName, type ChainParams, chainParams } from "./chain/params.ts";
import { type ReplayReport, replayChain } from "./chain/replay.ts";
import { type LoadedServices, loadServices } from "./chain/services.ts";
import { devValidatorKeys } from "./chain/validators.ts";
import { bytesEqual, decode, fromHex, toHex } from "./codec/jam.ts";
import { RefinePool } from "./guarantor/refine-pool.ts";
import { RefineQueue } from "./intake/refine-queue.ts";
import { type NodeLogger, silentLogger } from "./log.ts";
import { serviceIds, serviceInfoKey, StateComponents, storageKey } from "./state/components.ts";
import { State } from "./state/kv.ts";
import { PackageStatuses } from "./status.ts";
import { Store } from "./storage/store.ts";
import { currentThreadId } from "./thread/priority.ts";

export { groupItems, PACKAGES_QUEUED_PER_CORE_MAX, QUEUED_BYTES_MAX } from "./intake/refine-queue.ts";
export type { NodeLogger } from "./log.ts";
export { toStatus } from "./status.ts";

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

export class JamNode implements NodeApi {
  readonly params: ChainParams;
  readonly slotMs: number;
  /** The validators' data-availability layer (chunks, assurances, recovery). */
  readonly availability: Availability;
  private readonly store: Store;
  private readonly services: LoadedServices;
  private readonly genesisServices: readonly GenesisService[];
  private readonly pool: RefinePool;
  private readonly head: ChainHead;
  private readonly statuses: PackageStatuses;
  private readonly refineQueue: RefineQueue;
  private readonly author: BlockAuthor;
  /** The OS id of the thread that opened the node (see threadIds). */
  private readonly openedOn = currentThreadId();
  /** Bad input counted by code: rejected at intake, or failed after acceptance. */
  private readonly errorCounts = new Map<ErrorCode, number>();
  private readonly log: NodeLogger;
  private running = false;

  private constructor(options: NodeOptions, params: ChainParams, store: Store, state: State, services: LoadedServices) {
    this.params = params;
    this.slotMs = options.slotMs ?? 6000;
    this.store = store;
    this.services = services;
    this.genesisServices = options.services;
    const log = options.logger ?? silentLogger;
    this.log = log;
    const count = (code: ErrorCode) => this.count(code);
    const validators = devValidatorKeys(params.validatorsCount);
    this.pool = new RefinePool({
      coresCount: params.coresCount,
      refineTimeoutMs: options.refineTimeoutMs ?? REFINE_CAP_MS_DEFAULT,
      preloadModuleUrls: options.services.map((s) => s.moduleUrl),
    });
    this.availability = new Availability(params, store, validators, {
      retentionSlots: options.daRetentionSlots ?? DEFAULT_RETENTION_SLOTS,
      maxBytes: options.daMaxBytes ?? DEFAULT_DA_MAX_BYTES,
      withholding: options.withholdingValidators ?? [],
      log: (obj, msg) => log.info(obj, msg),
      count,
    });
    this.head = new ChainHead(params, store, state);
    this.statuses = new PackageStatuses(store);
    const units = { params, store, services, head: this.head, statuses: this.statuses, availability: this.availability, count, log };
    this.refineQueue = new RefineQueue({ ...units, pool: this.pool });
    this.author = new BlockAuthor({ ...units, validators, refineQueue: this.refineQueue });
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
    node.head.checkStateRoot();
    node.refineQueue.requeueUnreported();
    return node;
  }

  get bestSlot(): number {
    return this.head.best.slot;
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
    this.refineQueue.start();
    if (options.authorBlocks !== false) this.author.run(this.slotMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.refineQueue.stop();
    await this.author.stop();
    await this.pool.close();
    await this.store.close();
  }

  /** Authors, imports and persists the next block. Serialized: one block at a time. */
  produceBlock(): Promise<BlockDescriptor> {
    return this.author.produce();
  }

  /** Counts of coded errors since start, by code (for logs and metrics). */
  errorStats(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.errorCounts);
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

  private count(code: ErrorCode): void {
    this.errorCounts.set(code, (this.errorCounts.get(code) ?? 0) + 1);
  }

  /**
   * Refuses, counted, what the JIP-2 wire could not carry (api-params.ts): a hash that is not 32
   * bytes, a number that is not a u32. Named as the JIP-2 params are, so the refusal reads like
   * the RPC server's.
   */
  private checkParams(hashes: Readonly<Record<string, Uint8Array>>, u32s: Readonly<Record<string, number>> = {}): void {
    try {
      for (const [name, bytes] of Object.entries(hashes)) checkHash(bytes, name);
      for (const [name, value] of Object.entries(u32s)) checkU32(value, name);
    } catch (e) {
      if (e instanceof JamgateError) this.count(e.code);
      throw e;
    }
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
    const best = this.head.best;
    return { headerHash: best.hash, slot: best.slot };
  }

  async finalizedBlock(): Promise<BlockDescriptor> {
    return this.bestBlock();
  }

  async subscribeBestBlock(onBlock: (block: BlockDescriptor) => void): Promise<Unsubscribe> {
    return this.author.subscribe(onBlock);
  }

  async block(headerHash: Uint8Array): Promise<Uint8Array | null> {
    this.checkParams({ header_hash: headerHash });
    const slot = this.store.slotOf(headerHash);
    return slot === null ? null : (this.store.block(slot)?.encoded ?? null);
  }

  async stateRoot(headerHash: Uint8Array): Promise<Uint8Array> {
    this.checkParams({ header_hash: headerHash });
    const slot = this.store.slotOf(headerHash);
    const stored = slot === null ? null : this.store.block(slot);
    if (stored === null) throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `no block ${toHex(headerHash)}`);
    return stored.stateRoot;
  }

  async listServices(headerHash: Uint8Array): Promise<number[]> {
    this.checkParams({ header_hash: headerHash });
    return serviceIds(this.head.stateAt(headerHash).kv.keys());
  }

  async serviceData(headerHash: Uint8Array, serviceId: number): Promise<Uint8Array | null> {
    this.checkParams({ header_hash: headerHash }, { id: serviceId });
    return this.head.stateAt(headerHash).kv.get(serviceInfoKey(serviceId));
  }

  async serviceValue(headerHash: Uint8Array, serviceId: number, key: Uint8Array): Promise<Uint8Array | null> {
    this.checkParams({ header_hash: headerHash }, { id: serviceId });
    return this.head.stateAt(headerHash).components.storageGet(serviceId, key);
  }

  /**
   * Proved against the node's current state, which is the best block's posterior state: a block
   * is applied to it and made best without yielding in between.
   */
  async serviceValueProof(serviceId: number, key: Uint8Array): Promise<ServiceValueProof | null> {
    this.checkParams({}, { id: serviceId });
    const { state, best } = this.head;
    const stateKey = storageKey(serviceId, key);
    const path = state.proof(stateKey);
    if (path === null) return null;
    const stateRoot = state.root();
    if (!bytesEqual(stateRoot, best.stateRoot)) throw new Error(`state root ${toHex(stateRoot)} is not the best block's ${toHex(best.stateRoot)}`);
    return { block: { headerHash: best.hash, slot: best.slot }, stateRoot, stateKey: fromHex(stateKey), value: path.value, siblings: path.siblings };
  }

  async submitWorkPackage(core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Promise<Uint8Array> {
    this.checkParams({}, { core });
    return this.refineQueue.submit(core, workPackage, extrinsics);
  }

  async workPackageStatus(packageHash: Uint8Array): Promise<WorkPackageStatus | null> {
    this.checkParams({ hash: packageHash });
    return this.statuses.status(toHex(packageHash));
  }

  async subscribeWorkPackageStatus(packageHash: Uint8Array, onStatus: (status: WorkPackageStatus) => void): Promise<Unsubscribe> {
    this.checkParams({ hash: packageHash });
    return this.statuses.subscribe(toHex(packageHash), onStatus);
  }

  async workReport(hash: Uint8Array): Promise<Uint8Array | null> {
    this.checkParams({ hash });
    return this.store.report(toHex(hash));
  }

  async fetchWorkPackage(packageHash: Uint8Array): Promise<Uint8Array> {
    this.checkParams({ wp_hash: packageHash });
    const bundle = this.availability.fetch(packageHash);
    if (!bundle.ok) {
      this.count(bundle.error.code);
      throw new JamgateError(bundle.error.code, bundle.error.detail);
    }
    return bundle.value;
  }

  async submitChunk(erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Promise<void> {
    this.checkParams({ erasure_root: erasureRoot, segments_root: proof.segmentsRoot }, { index });
    const stored = this.availability.receiveChunk(erasureRoot, index, chunk, proof);
    if (!stored.ok) throw new JamgateError(stored.error.code, stored.error.detail);
  }

  async submitAssurance(assurance: Uint8Array): Promise<void> {
    const state = new StateComponents(this.head.state, this.params);
    const accepted = this.availability.receiveAssurance(assurance, this.head.best.hash, state.pending(), state.validatorKeys());
    if (!accepted.ok) throw new JamgateError(accepted.error.code, accepted.error.detail);
  }
}
