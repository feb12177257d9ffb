/**
 * The node's persistence: LMDB under `--data-dir` (one environment, named databases). A block,
 * its state changes, report records and the new best-block pointer are written in one
 * transaction, so after a crash (kill -9 included) the store holds a whole block or none of it.
 * State entries are written as state-db.ts lays them out: a journal record per block, and a slice
 * of the key space per block, so a block's thousands of changes touch few pages.
 *
 * One process at a time: the store locks its dir before LMDB opens it and releases it on close
 * (data-dir.ts), so a second node on the same dir is refused (JG_ERR_DATA_DIR_LOCKED) instead of
 * authoring the same slots into it. The dir is 0700 and LMDB's files 0600.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";
import { fromHex, toHex } from "../codec/jam.ts";
import { DataDirLock, makeLmdbFilesPrivate, makePrivateDir } from "./data-dir.ts";
import { StateDb } from "./state-db.ts";

/** Largest LMDB map: LMDB reserves address space, not disk, up front. */
const MAP_SIZE_BYTES = 64 * 1024 ** 3;
/**
 * Named databases at most (lmdb-js's default is 12): the 13 below, plus the chunk and state
 * databases of a version 1 data dir while they are moved, and room for a few more.
 */
const MAX_DBS = 20;

/** The chunk database of data dirs made before 2026-11-29 (msgpack objects), moved to "da-chunks-v2" on open. */
const CHUNKS_V1_DB = "da-chunks";
/** Chunk bytes moved per transaction at most (and one chunk more): LMDB holds a transaction's written pages in memory until it commits. */
const CHUNK_MIGRATION_TXN_BYTES = 64 * 1024 ** 2;
/** Chunks read per transaction at most (the keys are listed first). */
const CHUNK_MIGRATION_TXN_KEYS = 1_024;

export interface StoredBlock {
  readonly slot: number;
  readonly hash: Uint8Array;
  readonly encoded: Uint8Array;
  /** Posterior state root (after this block). */
  readonly stateRoot: Uint8Array;
}

/** What the node remembers about a submitted package, persisted so status survives a restart. */
export interface PackageRecord {
  readonly hash: string;
  readonly core: number;
  readonly status: "submitted" | "refined" | "reported" | "available" | "accumulated" | "failed";
  readonly reportHash?: string;
  readonly reportedIn?: { hash: string; slot: number };
  readonly availableIn?: { hash: string; slot: number };
  readonly accumulatedIn?: { hash: string; slot: number };
  readonly error?: { code: string; detail: string };
}

/** A package whose chunks the validators hold (GP 14.4: by erasure root). */
export interface DaRecord {
  readonly erasureRoot: string;
  readonly packageHash: string;
  readonly bundleBytes: number;
  readonly chunkBytes: number;
  /** Slot the chunks were stored in: retention counts from it. */
  readonly slot: number;
  /** Bytes of this package's chunks the validators hold now. */
  readonly heldBytes: number;
}

export interface StoredChunk {
  readonly chunk: Uint8Array;
  readonly segmentsRoot: Uint8Array;
  readonly path: Uint8Array[];
}

/**
 * A stored chunk: segmentsRoot (32) ‖ path length (1) ‖ each path node as length (1) ‖ bytes ‖ the
 * chunk. Path nodes are 32-octet hashes or 64-octet leaves (erasure.ts ChunkProof).
 */
export function encodeStoredChunk(c: StoredChunk, scratch?: Uint8Array): Uint8Array {
  if (c.segmentsRoot.length !== 32 || c.path.length > 255 || c.path.some((p) => p.length > 255)) throw new RangeError("chunk proof out of shape");
  const bytes = storedChunkBytes(c);
  const out = scratch !== undefined && scratch.length >= bytes ? scratch.subarray(0, bytes) : new Uint8Array(bytes);
  out.set(c.segmentsRoot, 0);
  out[32] = c.path.length;
  let at = 33;
  for (const p of c.path) {
    out[at++] = p.length;
    out.set(p, at);
    at += p.length;
  }
  out.set(c.chunk, at);
  return out;
}

/** Octets of a chunk's stored form (encodeStoredChunk). */
export function storedChunkBytes(c: StoredChunk): number {
  return 33 + c.path.reduce((n, p) => n + 1 + p.length, 0) + c.chunk.length;
}

export function decodeStoredChunk(bytes: Uint8Array): StoredChunk {
  const copy = new Uint8Array(bytes); // lmdb may reuse the buffer it returned
  const path: Uint8Array[] = [];
  let at = 33;
  for (let i = 0; i < copy[32]!; i++) {
    const length = copy[at++]!;
    path.push(copy.subarray(at, at + length));
    at += length;
  }
  return { segmentsRoot: copy.subarray(0, 32), path, chunk: copy.subarray(at) };
}

export interface BlockWrite {
  readonly block: StoredBlock;
  readonly stateChanges: ReadonlyMap<string, Uint8Array | null>;
  readonly packages: readonly PackageRecord[];
  readonly reports: ReadonlyMap<string, Uint8Array>;
}

export class Store {
  private readonly root: RootDatabase;
  private readonly blocks: Database<{ hash: Uint8Array; encoded: Uint8Array; stateRoot: Uint8Array }, number>;
  private readonly blockSlots: Database<number, string>;
  private readonly state: StateDb;
  private readonly meta: Database<unknown, string>;
  private readonly packages: Database<PackageRecord, string>;
  private readonly bundles: Database<Uint8Array, string>;
  private readonly reports: Database<Uint8Array, string>;
  private readonly daRecords: Database<DaRecord, string>;
  private readonly daByPackage: Database<string, string>;
  private readonly daBySlot: Database<string, [number, string]>;
  private readonly chunks: Database<Uint8Array, string>;
  /** The encoding buffer of putChunk: as large as the largest chunk stored, at most W_B ÷ N plus its proof (6.9 MB on the tiny chain). */
  private chunkScratch = new Uint8Array(0);

  private readonly lock: DataDirLock;
  /** The mode the dir had when it was open to group or others and was made private on open; null otherwise (the node logs it). */
  readonly tightenedFrom: number | null;

  constructor(readonly path: string) {
    this.tightenedFrom = makePrivateDir(path).tightenedFrom;
    this.lock = DataDirLock.acquire(path);
    try {
      this.root = open({ path, mapSize: MAP_SIZE_BYTES, compression: false, maxDbs: MAX_DBS });
      makeLmdbFilesPrivate(path);
      this.blocks = this.root.openDB({ name: "blocks", keyEncoding: "uint32" });
      this.blockSlots = this.root.openDB({ name: "block-slots" });
      this.meta = this.root.openDB({ name: "meta" });
      this.state = new StateDb(this.root, this.meta);
      this.packages = this.root.openDB({ name: "packages" });
      this.bundles = this.root.openDB({ name: "bundles", encoding: "binary" });
      this.reports = this.root.openDB({ name: "reports", encoding: "binary" });
      this.daRecords = this.root.openDB({ name: "da-records" });
      this.daByPackage = this.root.openDB({ name: "da-by-package" });
      this.daBySlot = this.root.openDB({ name: "da-by-slot" });
      // Binary (see encodeStoredChunk): msgpack copied each multi-MB chunk once more on the way in.
      this.chunks = this.root.openDB({ name: "da-chunks-v2", encoding: "binary" });
      this.migratedChunks = this.migrateChunksV1();
    } catch (e) {
      this.lock.release();
      throw e;
    }
  }

  /** Chunks moved from a data dir's version 1 chunk database when it was opened (0 for a new or converted one). */
  readonly migratedChunks: number;

  /**
   * Data dirs made before 2026-11-29 hold their chunks as msgpack objects in "da-chunks". They are
   * moved to "da-chunks-v2" (same keys) in transactions of about {@link CHUNK_MIGRATION_TXN_BYTES},
   * each writing the new form and deleting the old one, so a crash midway resumes where it stopped
   * and no chunk is in neither. The emptied old database is then dropped.
   */
  private migrateChunksV1(): number {
    // Named databases are the keys of the root one (a dozen here): this asks without creating it.
    // (doesExist says false for a database's key.)
    if (![...this.root.getKeys()].includes(CHUNKS_V1_DB)) return 0;
    const old = this.root.openDB<StoredChunk, string>({ name: CHUNKS_V1_DB });
    let moved = 0;
    for (let done = false; !done; ) {
      this.root.transactionSync(() => {
        let bytes = 0;
        const keys = [...old.getKeys({ limit: CHUNK_MIGRATION_TXN_KEYS })];
        done = keys.length === 0;
        for (const key of keys) {
          const c = old.get(key)!;
          const chunk = { chunk: new Uint8Array(c.chunk), segmentsRoot: new Uint8Array(c.segmentsRoot), path: c.path.map((p) => new Uint8Array(p)) };
          this.putStoredChunk(key, chunk);
          old.removeSync(key);
          moved++;
          bytes += chunk.chunk.length;
          if (bytes >= CHUNK_MIGRATION_TXN_BYTES) break;
        }
      });
    }
    old.dropSync();
    return moved;
  }

  genesisHash(): Uint8Array | null {
    const hex = this.meta.get("genesis") as string | undefined;
    return hex === undefined ? null : fromHex(hex);
  }

  bestSlot(): number | null {
    const slot = this.meta.get("best") as number | undefined;
    return slot ?? null;
  }

  /** State entries moved from a version 1 data dir when it was opened (state-db.ts; 0 for a new or converted one). */
  get migratedStateEntries(): number {
    return this.state.migratedEntries;
  }

  /** Writes the genesis block and state, once. */
  writeGenesis(block: StoredBlock, state: Iterable<readonly [string, Uint8Array]>): void {
    this.root.transactionSync(() => {
      this.state.writeAll(state);
      this.putBlock(block);
      this.meta.putSync("genesis", toHex(block.hash));
    });
  }

  writeBlock(write: BlockWrite): void {
    const state = this.state.prepareBlock(write.block.slot, write.stateChanges);
    this.root.transactionSync(() => {
      state.write();
      for (const record of write.packages) this.packages.putSync(record.hash, record);
      for (const [hash, report] of write.reports) this.reports.putSync(hash, report);
      this.putBlock(write.block);
    });
    state.committed();
  }

  private putBlock(block: StoredBlock): void {
    this.blocks.putSync(block.slot, { hash: block.hash, encoded: block.encoded, stateRoot: block.stateRoot });
    this.blockSlots.putSync(toHex(block.hash), block.slot);
    this.meta.putSync("best", block.slot);
  }

  block(slot: number): StoredBlock | null {
    const b = this.blocks.get(slot);
    return b === undefined ? null : { slot, hash: new Uint8Array(b.hash), encoded: new Uint8Array(b.encoded), stateRoot: new Uint8Array(b.stateRoot) };
  }

  slotOf(hash: Uint8Array): number | null {
    return this.blockSlots.get(toHex(hash)) ?? null;
  }

  /** Blocks in slot order from `fromSlot`. */
  *blocksFrom(fromSlot: number): Generator<StoredBlock> {
    for (const { key, value } of this.blocks.getRange({ start: fromSlot })) {
      yield { slot: key, hash: new Uint8Array(value.hash), encoded: new Uint8Array(value.encoded), stateRoot: new Uint8Array(value.stateRoot) };
    }
  }

  /** The best block's state entries (state-db.ts), each value a copy. */
  stateEntries(): Generator<[string, Uint8Array]> {
    return this.state.stateEntries();
  }

  packageRecord(hash: string): PackageRecord | null {
    return this.packages.get(hash) ?? null;
  }

  putPackage(record: PackageRecord): void {
    this.packages.putSync(record.hash, record);
  }

  /** Records a submitted package and its bytes together, before the submitter is told it was accepted. */
  putSubmitted(record: PackageRecord, bytes: Uint8Array): void {
    this.root.transactionSync(() => {
      this.bundles.putSync(record.hash, bytes);
      this.packages.putSync(record.hash, record);
    });
  }

  *packagesWithStatus(statuses: ReadonlySet<PackageRecord["status"]>): Generator<PackageRecord> {
    for (const { value } of this.packages.getRange()) if (statuses.has(value.status)) yield value;
  }

  /** Whether a bundle is held, without reading it (a full one is 13.8 MB). */
  hasBundle(hash: string): boolean {
    return this.bundles.doesExist(hash);
  }

  bundle(hash: string): Uint8Array | null {
    const b = this.bundles.get(hash);
    return b === undefined ? null : new Uint8Array(b);
  }

  removeBundle(hash: string): void {
    this.bundles.removeSync(hash);
  }

  // ---- data availability (validators' chunks) ----

  /** Writes a DA record (new, or with a changed heldBytes; its slot never changes). */
  putDaRecord(record: DaRecord): void {
    this.root.transactionSync(() => {
      this.daRecords.putSync(record.erasureRoot, record);
      this.daByPackage.putSync(record.packageHash, record.erasureRoot);
      this.daBySlot.putSync([record.slot, record.erasureRoot], record.erasureRoot);
    });
  }

  daRecord(erasureRoot: string): DaRecord | null {
    return this.daRecords.get(erasureRoot) ?? null;
  }

  daRecordOfPackage(packageHash: string): DaRecord | null {
    const root = this.daByPackage.get(packageHash);
    return root === undefined ? null : this.daRecord(root);
  }

  /** DA records oldest first, read lazily (pruning stops at the first it keeps). */
  *daRecordsBySlot(): Generator<DaRecord> {
    for (const { value: root } of this.daBySlot.getRange()) {
      const record = this.daRecord(root);
      if (record !== null) yield record;
    }
  }

  /** Runs `fn` in one LMDB write transaction (one commit for many puts). */
  transaction<T>(fn: () => T): T {
    return this.root.transactionSync(fn);
  }

  putChunk(erasureRoot: string, index: number, chunk: StoredChunk): void {
    this.putStoredChunk(`${erasureRoot}:${index}`, chunk);
  }

  private putStoredChunk(key: string, chunk: StoredChunk): void {
    // putSync copies the value into the transaction before it returns, so one buffer serves every
    // chunk: a new one per chunk was 3× each bundle (39 MB per full package on the tiny chain) of
    // short-lived ArrayBuffers, and each such ~64 MB set off a full garbage collection.
    const bytes = storedChunkBytes(chunk);
    if (this.chunkScratch.length < bytes) this.chunkScratch = new Uint8Array(bytes);
    this.chunks.putSync(key, encodeStoredChunk(chunk, this.chunkScratch));
  }

  hasChunk(erasureRoot: string, index: number): boolean {
    return this.chunks.doesExist(`${erasureRoot}:${index}`);
  }

  chunk(erasureRoot: string, index: number): StoredChunk | null {
    const bytes = this.chunks.get(`${erasureRoot}:${index}`);
    return bytes === undefined ? null : decodeStoredChunk(bytes);
  }

  removeChunk(erasureRoot: string, index: number): void {
    this.chunks.removeSync(`${erasureRoot}:${index}`);
  }

  /** Removes a package's record and all its chunks. */
  removeDa(record: DaRecord, validators: number): void {
    this.root.transactionSync(() => {
      for (let i = 0; i < validators; i++) this.chunks.removeSync(`${record.erasureRoot}:${i}`);
      this.daRecords.removeSync(record.erasureRoot);
      this.daByPackage.removeSync(record.packageHash);
      this.daBySlot.removeSync([record.slot, record.erasureRoot]);
    });
  }

  report(hash: string): Uint8Array | null {
    const r = this.reports.get(hash);
    return r === undefined ? null : new Uint8Array(r);
  }

  async close(): Promise<void> {
    await this.root.close();
    this.lock.release();
  }

  /**
   * The genesis hash of the chain stored in `path`, or null when it holds none (no such dir, no
   * LMDB there, or one without a genesis: another LMDB, or a node stopped before it wrote one).
   * Read-only, and creates nothing: `node replay` asks before it opens a store.
   */
  static async genesisAt(path: string): Promise<Uint8Array | null> {
    if (!existsSync(join(path, "data.mdb"))) return null;
    const root = open({ path, readOnly: true, compression: false });
    try {
      // Named databases are the keys of the root one: asked first, as a read-only environment cannot make one.
      if (![...root.getKeys()].includes("meta")) return null;
      const hex = root.openDB<unknown, string>({ name: "meta" }).get("genesis");
      return typeof hex === "string" ? fromHex(hex) : null;
    } finally {
      await root.close();
    }
  }
}
