/**
 * An in-memory NodeApi for RPC tests: a chain of made-up blocks over one unchanging state (a real
 * State, so its root and value proofs are real), one service with data and a value, package
 * statuses set by the test, and knobs to make calls throw or wait.
 */
import type { ChunkProof } from "../availability/erasure.ts";
import type { BlockDescriptor, ChainParameters, NodeApi, ServiceValueProof, Unsubscribe, WorkPackageStatus } from "../api.ts";
import { fromHex } from "../codec/jam.ts";
import { hash } from "../crypto/hash.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { serviceInfoKey, storageKey } from "../state/components.ts";
import { State } from "../state/kv.ts";

const key = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

export class FakeNode implements NodeApi {
  readonly params: ChainParameters = { core_count: 2, epoch_period: 12, max_input: 13_791_360, slot_period_ms: 6000 };
  readonly serviceId = 7;
  readonly serviceInfo = new Uint8Array([1, 2, 3, 4]);
  readonly storageKey = new TextEncoder().encode("counter");
  readonly storageValue = new Uint8Array([42]);
  /** Every block's posterior state: the service's info and its one storage value. */
  readonly state = State.fromEntries([
    [serviceInfoKey(this.serviceId), this.serviceInfo],
    [storageKey(this.serviceId, this.storageKey), this.storageValue],
  ]);
  readonly reportHash = hash(new TextEncoder().encode("report"));
  readonly report = new Uint8Array([9, 8, 7]);
  readonly submitted: { core: number; workPackage: Uint8Array; extrinsics: readonly Uint8Array[] }[] = [];
  /** When set, the next NodeApi call throws it. */
  failNext: Error | null = null;

  private readonly blocks: BlockDescriptor[] = [];
  private readonly bestListeners = new Set<(block: BlockDescriptor) => void>();
  private readonly statuses = new Map<string, WorkPackageStatus>();
  private readonly statusListeners = new Map<string, Set<(status: WorkPackageStatus) => void>>();
  private held: Promise<void> | null = null;
  private inBestBlock = 0;
  /** Most bestBlock calls seen running at once. */
  maxConcurrentBestBlock = 0;

  constructor() {
    this.advance();
  }

  get best(): BlockDescriptor {
    const best = this.blocks.at(-1);
    if (best === undefined) throw new Error("no blocks");
    return best;
  }

  /** Imports a new best block and tells its subscribers. */
  advance(): BlockDescriptor {
    const slot = this.blocks.length;
    const block = { headerHash: hash(new Uint8Array([slot & 0xff, slot >> 8])), slot };
    this.blocks.push(block);
    for (const listener of this.bestListeners) listener(block);
    return block;
  }

  setStatus(packageHash: Uint8Array, status: WorkPackageStatus): void {
    this.statuses.set(key(packageHash), status);
    for (const listener of this.statusListeners.get(key(packageHash)) ?? []) listener(status);
  }

  /** Subscriptions the RPC layer has not given back. */
  get activeSubscriptions(): number {
    let n = this.bestListeners.size;
    for (const set of this.statusListeners.values()) n += set.size;
    return n;
  }

  /** bestBlock calls wait until the returned function is called. */
  hold(): () => void {
    let release = () => {};
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = null;
      release();
    };
  }

  private check(): void {
    const failure = this.failNext;
    this.failNext = null;
    if (failure !== null) throw failure;
  }

  private known(headerHash: Uint8Array): BlockDescriptor {
    const block = this.blocks.find((b) => key(b.headerHash) === key(headerHash));
    if (block === undefined) throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `no block ${key(headerHash)}`);
    return block;
  }

  async parameters(): Promise<ChainParameters> {
    this.check();
    return this.params;
  }

  async bestBlock(): Promise<BlockDescriptor> {
    this.check();
    this.inBestBlock++;
    this.maxConcurrentBestBlock = Math.max(this.maxConcurrentBestBlock, this.inBestBlock);
    try {
      await this.held;
      return this.best;
    } finally {
      this.inBestBlock--;
    }
  }

  async finalizedBlock(): Promise<BlockDescriptor> {
    this.check();
    return this.best;
  }

  async subscribeBestBlock(onBlock: (block: BlockDescriptor) => void): Promise<Unsubscribe> {
    this.check();
    const listener = (block: BlockDescriptor) => onBlock(block);
    this.bestListeners.add(listener);
    return () => this.bestListeners.delete(listener);
  }

  /** The made-up "encoded block" of a descriptor (not a GP block: the fake has none), distinct per block. */
  encodedBlock(block: BlockDescriptor): Uint8Array {
    return new Uint8Array([...new TextEncoder().encode("fake block "), ...block.headerHash]);
  }

  async block(headerHash: Uint8Array): Promise<Uint8Array | null> {
    this.check();
    const block = this.blocks.find((b) => key(b.headerHash) === key(headerHash));
    return block === undefined ? null : this.encodedBlock(block);
  }

  async stateRoot(headerHash: Uint8Array): Promise<Uint8Array> {
    this.check();
    this.known(headerHash);
    return this.state.root();
  }

  async listServices(headerHash: Uint8Array): Promise<number[]> {
    this.check();
    this.known(headerHash);
    return [0, this.serviceId];
  }

  async serviceData(headerHash: Uint8Array, serviceId: number): Promise<Uint8Array | null> {
    this.check();
    this.known(headerHash);
    return this.state.get(serviceInfoKey(serviceId));
  }

  async serviceValue(headerHash: Uint8Array, serviceId: number, key: Uint8Array): Promise<Uint8Array | null> {
    this.check();
    this.known(headerHash);
    return this.state.get(storageKey(serviceId, key));
  }

  async serviceValueProof(serviceId: number, key: Uint8Array): Promise<ServiceValueProof | null> {
    this.check();
    const stateKey = storageKey(serviceId, key);
    const path = this.state.proof(stateKey);
    return path === null ? null : { block: this.best, stateRoot: this.state.root(), stateKey: fromHex(stateKey), ...path };
  }

  async submitWorkPackage(core: number, workPackage: Uint8Array, extrinsics: readonly Uint8Array[]): Promise<Uint8Array> {
    this.check();
    if (core >= (this.params.core_count ?? 0)) throw new JamgateError("JG_ERR_PACKAGE_CORE", `core ${core} of ${this.params.core_count}`);
    this.submitted.push({ core, workPackage, extrinsics });
    const packageHash = hash(workPackage);
    this.setStatus(packageHash, { kind: "submitted", core });
    return packageHash;
  }

  async workPackageStatus(packageHash: Uint8Array): Promise<WorkPackageStatus | null> {
    this.check();
    return this.statuses.get(key(packageHash)) ?? null;
  }

  /** Tells the current status at once, if there is one, then every change. */
  async subscribeWorkPackageStatus(packageHash: Uint8Array, onStatus: (status: WorkPackageStatus) => void): Promise<Unsubscribe> {
    this.check();
    const listener = (status: WorkPackageStatus) => onStatus(status);
    const listeners = this.statusListeners.get(key(packageHash)) ?? new Set();
    this.statusListeners.set(key(packageHash), listeners.add(listener));
    const current = this.statuses.get(key(packageHash));
    if (current !== undefined) onStatus(current);
    return () => listeners.delete(listener);
  }

  async workReport(reportHash: Uint8Array): Promise<Uint8Array | null> {
    this.check();
    return key(reportHash) === key(this.reportHash) ? this.report : null;
  }

  /** Bundles by package hash, for fetchWorkPackage. */
  readonly bundles = new Map<string, Uint8Array>();
  /** What submitChunk and submitAssurance were given. */
  readonly received: { chunk?: { erasureRoot: Uint8Array; index: number; chunk: Uint8Array; proof: ChunkProof }; assurance?: Uint8Array } = {};

  async fetchWorkPackage(packageHash: Uint8Array): Promise<Uint8Array> {
    this.check();
    const bundle = this.bundles.get(key(packageHash));
    if (bundle === undefined) throw new JamgateError("JG_ERR_DA_UNAVAILABLE", "no such package");
    return bundle;
  }

  async submitChunk(erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Promise<void> {
    this.check();
    this.received.chunk = { erasureRoot, index, chunk, proof };
  }

  async submitAssurance(assurance: Uint8Array): Promise<void> {
    this.check();
    this.received.assurance = assurance;
  }
}
