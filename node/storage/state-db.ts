/**
 * The state entries in LMDB, written so that a block's changes touch few pages.
 *
 * A block of a large fleet changes thousands of entries whose 31-byte keys are hashes, so written
 * in place each lands on its own B-tree leaf page: 5,000 changes in a state of 1,000,000 entries
 * copied and wrote ~5,000 scattered 4 KB pages per block, 130 ms of which 90 ms CPU (a commit of
 * scattered pages is one write per page), against 15 ms for the same 5,000 puts confined to 1/64 of
 * the keys plus one 775 KB record (measured here, lmdb-js 3.5.6, 2-core VM, machine shared). So:
 *
 * - **journal** ("state-journal", by slot): each block's changes as one record, in the block's
 *   transaction. That is what makes a block durable.
 * - **entries** ("state-v2"): every entry under its key prefixed by two bytes of a hash of it, which
 *   spreads keys evenly over STATE_SLICES slices of the key space whatever the keys' own layout
 *   (a service's storage keys all start with its id). Each block also writes one slice, in turn:
 *   the latest value of every key of that slice changed since the slice was last written. So
 *   entries hold each key's value as of its slice's last write, at most STATE_SLICES blocks ago.
 * - The journal keeps the records of the last STATE_SLICES blocks, which hold every change since
 *   any slice was last written: entries overlaid with those records, oldest first, are the best
 *   block's state. That is how the state is read when the node opens, and the changes in them are
 *   written again with their slices.
 *
 * Everything a block writes (its record, its slice, the slice pointer in meta, dropping the oldest
 * record) commits in the block's one transaction, so a crash leaves the store at a block boundary
 * with the invariant whole. A block changing more than JOURNAL_CHANGES_MAX entries (a bulk load) is
 * written through instead: its changes and every pending one go to entries and the journal is
 * emptied, as at genesis.
 *
 * The number of slices may change between opens: the journal drops one record per block once it
 * holds as many as there are slices, so after fewer slices it keeps more records than needed, and
 * after more it grows to them while every slice is written once.
 *
 * Data dirs made before 2026-12-07 hold their entries in "state" under hex keys, complete; they
 * are moved to "state-v2" when the store opens (in transactions of STATE_MIGRATION_TXN_KEYS, so a
 * crash resumes) and "state" is dropped. An older node cannot read the new layout: it finds no
 * entries, and its check of the state root refuses to start.
 */
import type { Database, RootDatabase } from "lmdb";
import { toHex } from "../codec/jam.ts";

/**
 * Slices of the key space, one written per block, and records the journal keeps. More slices write
 * fewer pages per block but keep more records (at 5,000 changes per block, 775 KB each) to read
 * when the node opens and more changes in memory until their slice is written.
 */
export const STATE_SLICES = 64;
/** Changes above which a block is written through (see above): its record would be one value of ~155 bytes per change. */
export const JOURNAL_CHANGES_MAX = 65_536;
/** State entries moved from a version 1 data dir per transaction. */
const STATE_MIGRATION_TXN_KEYS = 65_536;

const STATE_KEY_BYTES = 31;
/** Bytes of the key's hash before the key in entries' LMDB keys: 65,536 prefixes, 1,024 per slice. */
const PREFIX_BYTES = 2;
const DB_KEY_BYTES = PREFIX_BYTES + STATE_KEY_BYTES;
/** A journal record's value length for a removed entry. */
const REMOVED = 0xffff_ffff;

const ENTRIES_DB = "state-v2";
const ENTRIES_V1_DB = "state";
const JOURNAL_DB = "state-journal";
/** meta key: the slice the next block writes. */
const SWEEP_KEY = "state-sweep";

/** A change waiting for its slice to be written: the entry's LMDB key and its latest value (null: removed). */
interface PendingWrite {
  readonly dbKey: Uint8Array;
  readonly value: Uint8Array | null;
}

/** Runs inside the block's transaction, then tells the state database it committed. */
export interface PreparedStateWrite {
  write(): void;
  committed(): void;
}

export class StateDb {
  private readonly entries: Database<Uint8Array, Uint8Array>;
  private readonly journal: Database<Uint8Array, number>;
  /** Changes since their slice was last written, by slice then key; the latest value of each. */
  private readonly pending: Map<string, PendingWrite>[];
  /** The slice the next block writes. */
  private sweep: number;
  private journalRecords: number;
  /** Entries moved from a version 1 data dir when it was opened (0 for a new or converted one). */
  readonly migratedEntries: number;

  constructor(
    private readonly root: RootDatabase,
    private readonly meta: Database<unknown, string>,
    /** STATE_SLICES; another number in tests (it may change between opens, see above). */
    private readonly slices = STATE_SLICES,
  ) {
    this.pending = Array.from({ length: slices }, () => new Map());
    this.entries = root.openDB({ name: ENTRIES_DB, encoding: "binary", keyEncoding: "binary" });
    this.journal = root.openDB({ name: JOURNAL_DB, encoding: "binary", keyEncoding: "uint32" });
    this.migratedEntries = this.migrateV1();
    this.sweep = ((meta.get(SWEEP_KEY) as number | undefined) ?? 0) % slices;
    this.journalRecords = 0;
    for (const { value } of this.journal.getRange()) {
      this.journalRecords++;
      for (const w of decodeRecord(value)) this.pending[this.sliceOf(w.dbKey)]!.set(stateKeyHex(w.dbKey), w);
    }
  }

  /** The best block's state: entries overlaid with the journal. Values are arrays of their own. */
  *stateEntries(): Generator<[string, Uint8Array]> {
    for (const { key, value } of this.entries.getRange()) {
      const hex = stateKeyHex(key);
      // lmdb-js returns a binary value in a Buffer of its own (a copy): viewed as a plain Uint8Array, not copied again.
      if (!this.pending[this.sliceOf(key)]!.has(hex)) yield [hex, new Uint8Array(value.buffer, value.byteOffset, value.length)];
    }
    for (const slice of this.pending) for (const [hex, w] of slice) if (w.value !== null) yield [hex, w.value];
  }

  /** Writes `state` to entries; call inside the genesis's transaction (a new store has no journal). */
  writeAll(state: Iterable<readonly [string, Uint8Array]>): void {
    for (const [key, value] of state) this.entries.putSync(dbKeyOf(key), value);
  }

  /** A block's state writes: its journal record and the next slice, or everything through (see above). */
  prepareBlock(slot: number, changes: ReadonlyMap<string, Uint8Array | null>): PreparedStateWrite {
    // The block's LMDB keys share one buffer: an array per key cost more than the writes (5,000 a block).
    const dbKeys = Buffer.allocUnsafe(changes.size * DB_KEY_BYTES);
    const writes: { key: string; w: PendingWrite }[] = [];
    for (const [key, value] of changes) {
      const at = writes.length * DB_KEY_BYTES;
      writes.push({ key, w: { dbKey: writeDbKey(key, dbKeys, at), value } });
    }
    if (writes.length > JOURNAL_CHANGES_MAX) return this.prepareThrough(writes);
    const slice = this.sweep;
    const flush = new Map(this.pending[slice]);
    for (const { key, w } of writes) if (this.sliceOf(w.dbKey) === slice) flush.set(key, w);
    const record = encodeRecord(writes.map(({ w }) => w));
    const dropOldest = this.journalRecords >= this.slices;
    return {
      write: () => {
        this.journal.putSync(slot, record);
        for (const w of flush.values()) this.put(w);
        if (dropOldest) {
          const [oldest] = this.journal.getKeys({ limit: 1 });
          if (oldest !== undefined && oldest !== slot) this.journal.removeSync(oldest);
        }
        this.meta.putSync(SWEEP_KEY, (slice + 1) % this.slices);
      },
      committed: () => {
        this.pending[slice] = new Map();
        for (const { key, w } of writes) if (this.sliceOf(w.dbKey) !== slice) this.pending[this.sliceOf(w.dbKey)]!.set(key, w);
        this.sweep = (slice + 1) % this.slices;
        if (!dropOldest) this.journalRecords++;
      },
    };
  }

  private prepareThrough(writes: readonly { key: string; w: PendingWrite }[]): PreparedStateWrite {
    return {
      write: () => {
        for (const slice of this.pending) for (const w of slice.values()) this.put(w);
        for (const { w } of writes) this.put(w);
        for (const slot of [...this.journal.getKeys()]) this.journal.removeSync(slot);
      },
      committed: () => {
        for (let slice = 0; slice < this.slices; slice++) this.pending[slice] = new Map();
        this.journalRecords = 0;
      },
    };
  }

  /** The slice of an entry: its prefix's place among the 65,536. */
  private sliceOf(dbKey: Uint8Array): number {
    return (((dbKey[0]! << 8) | dbKey[1]!) * this.slices) >>> 16;
  }

  private put(w: PendingWrite): void {
    if (w.value === null) this.entries.removeSync(w.dbKey);
    else this.entries.putSync(w.dbKey, w.value);
  }

  /** Moves a version 1 data dir's "state" (hex keys, complete: it had no journal) to entries, then drops it. */
  private migrateV1(): number {
    // Named databases are the keys of the root one: this asks without creating it.
    if (![...this.root.getKeys()].includes(ENTRIES_V1_DB)) return 0;
    const old = this.root.openDB<Uint8Array, string>({ name: ENTRIES_V1_DB, encoding: "binary" });
    let moved = 0;
    for (let done = false; !done; ) {
      this.root.transactionSync(() => {
        const batch = [...old.getRange({ limit: STATE_MIGRATION_TXN_KEYS })].map(({ key, value }) => [key, new Uint8Array(value)] as const);
        done = batch.length === 0;
        for (const [key, value] of batch) {
          this.entries.putSync(dbKeyOf(key), value);
          old.removeSync(key);
        }
        moved += batch.length;
      });
    }
    old.dropSync();
    return moved;
  }
}

/** An entry's LMDB key in a new array. */
function dbKeyOf(key: string): Uint8Array {
  return writeDbKey(key, Buffer.allocUnsafe(DB_KEY_BYTES), 0);
}

/**
 * An entry's LMDB key written into `out` at `at`, returned as a view: the top two bytes of a
 * 32-bit FNV-1a hash of the key (big-endian), then the 31 key bytes. FNV-1a spreads keys evenly
 * over the slices, hashes or not, at a fraction of blake2b's cost; a service grinding its own
 * storage keys could crowd one slice, which makes that slice's writes larger, nothing more.
 */
function writeDbKey(key: string, out: Buffer, at: number): Buffer {
  if (out.write(key, at + PREFIX_BYTES, STATE_KEY_BYTES, "hex") !== STATE_KEY_BYTES || key.length !== 2 * STATE_KEY_BYTES)
    throw new Error(`state key ${key} is not ${STATE_KEY_BYTES} bytes of hex`);
  let h = FNV_OFFSET_BASIS;
  for (let i = at + PREFIX_BYTES; i < at + DB_KEY_BYTES; i++) h = Math.imul(h ^ out[i]!, FNV_PRIME);
  out[at] = h >>> 24;
  out[at + 1] = (h >>> 16) & 0xff;
  return out.subarray(at, at + DB_KEY_BYTES);
}

/** FNV-1a, 32-bit (IETF draft-eastlake-fnv). */
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function stateKeyHex(dbKey: Uint8Array): string {
  return toHex(dbKey.subarray(PREFIX_BYTES, DB_KEY_BYTES));
}

/** A journal record: u32 count, then per change its LMDB key (33 bytes), u32 value length (REMOVED for a removal) and the value. Little-endian. */
function encodeRecord(writes: readonly PendingWrite[]): Uint8Array {
  let bytes = 4;
  for (const w of writes) bytes += DB_KEY_BYTES + 4 + (w.value?.length ?? 0);
  const out = Buffer.allocUnsafe(bytes);
  out.writeUInt32LE(writes.length, 0);
  let at = 4;
  for (const w of writes) {
    out.set(w.dbKey, at);
    at += DB_KEY_BYTES;
    out.writeUInt32LE(w.value === null ? REMOVED : w.value.length, at);
    at += 4;
    if (w.value !== null) {
      out.set(w.value, at);
      at += w.value.length;
    }
  }
  return out;
}

/** Bytes `from`..`to` in an array of their own (a Buffer's slice would share LMDB's buffer, which it reuses). */
function copy(bytes: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(bytes.subarray(from, to));
}

/** The changes of a record, copied out of LMDB's buffer. */
function decodeRecord(bytes: Uint8Array): PendingWrite[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const writes: PendingWrite[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const dbKey = copy(bytes, at, at + DB_KEY_BYTES);
    at += DB_KEY_BYTES;
    const length = view.getUint32(at, true);
    at += 4;
    if (length === REMOVED) writes.push({ dbKey, value: null });
    else {
      writes.push({ dbKey, value: copy(bytes, at, at + length) });
      at += length;
    }
  }
  if (at !== bytes.length) throw new Error(`state journal record of ${bytes.length} bytes holds ${at}: store corrupt`);
  return writes;
}
