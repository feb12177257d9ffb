/**
 * The node's state as the Gray Paper's serialized form (GP Appendix D.1): a map from 31-byte
 * state keys to octet values. Everything the node keeps in state lives here, so the state root
 * (GP D.2 binary Patricia Merkle trie, via typeberry) commits to all of it.
 */
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { SortedSet } from "@typeberry/lib/collections";
import { InMemoryTrie, type LeafNode, leafComparator, type TrieHasher } from "@typeberry/lib/trie";
import { blake2b } from "../crypto/hash.ts";
import { toHex } from "../codec/jam.ts";

/** GP D.1: state keys are 31 bytes (the 32nd byte of a typeberry StateKey is ignored). */
export const STATE_KEY_BYTES = 31;

/** Hex of the 31 key bytes: the map key. */
export type KeyHex = string;

export function keyHex(key: Uint8Array): KeyHex {
  return toHex(key.subarray(0, STATE_KEY_BYTES));
}

/** Read and write access to state entries; implemented by the state itself and by overlays. */
export interface Kv {
  get(key: KeyHex): Uint8Array | null;
  set(key: KeyHex, value: Uint8Array | null): void;
}

const trieHasher: TrieHasher = {
  hashConcat: (n, rest = []) => blake2b.hashBlobs([n, ...rest]).asOpaque(),
};

/** The committed state: entries plus a cache of trie leaves, so a root costs one pass of inner-node hashing. */
export class State implements Kv {
  private readonly entries = new Map<KeyHex, Uint8Array>();
  private readonly leaves = new Map<KeyHex, LeafNode>();

  static fromEntries(entries: Iterable<readonly [KeyHex, Uint8Array]>): State {
    const state = new State();
    for (const [key, value] of entries) state.set(key, value);
    return state;
  }

  get(key: KeyHex): Uint8Array | null {
    return this.entries.get(key) ?? null;
  }

  set(key: KeyHex, value: Uint8Array | null): void {
    this.leaves.delete(key);
    if (value === null) this.entries.delete(key);
    else this.entries.set(key, value);
  }

  get size(): number {
    return this.entries.size;
  }

  *[Symbol.iterator](): IterableIterator<[KeyHex, Uint8Array]> {
    yield* this.entries;
  }

  /** GP D.2 M_σ: the Merkle root of the serialized state. */
  root(): Uint8Array {
    const sorted = SortedSet.fromArray<LeafNode>(leafComparator);
    for (const [key, value] of this.entries) {
      let leaf = this.leaves.get(key);
      if (leaf === undefined) {
        leaf = InMemoryTrie.constructLeaf(trieHasher, Bytes.parseBytesNoPrefix(key, STATE_KEY_BYTES).asOpaque(), BytesBlob.blobFrom(value));
        this.leaves.set(key, leaf);
      }
      sorted.insert(leaf);
    }
    return InMemoryTrie.computeStateRoot(trieHasher, sorted).raw;
  }
}

/**
 * Changes on top of a parent, applied with `commit()` or dropped by forgetting the overlay.
 * Block import runs on one (a bad block changes nothing); each service's accumulation runs on a
 * nested one (a failed accumulation changes nothing).
 */
export class Overlay implements Kv {
  readonly changes = new Map<KeyHex, Uint8Array | null>();
  constructor(private readonly parent: Kv) {}

  get(key: KeyHex): Uint8Array | null {
    const change = this.changes.get(key);
    return change === undefined ? this.parent.get(key) : change;
  }

  set(key: KeyHex, value: Uint8Array | null): void {
    this.changes.set(key, value);
  }

  commit(): void {
    for (const [key, value] of this.changes) this.parent.set(key, value);
    this.changes.clear();
  }
}

/** One block's undo log: the values its changed entries had before it. */
export interface UndoLog {
  readonly slot: number;
  readonly previous: ReadonlyMap<KeyHex, Uint8Array | null>;
}

/**
 * The state as of an earlier block, read through the undo logs of the blocks after it (newest
 * first): a key takes the value it had before the oldest later block that changed it. Read-only.
 */
export class PastState implements Kv {
  constructor(
    private readonly current: State,
    /** Undo logs of the blocks after the wanted one, newest first. */
    private readonly later: readonly UndoLog[],
  ) {}

  get(key: KeyHex): Uint8Array | null {
    let value = this.current.get(key);
    for (const log of this.later) if (log.previous.has(key)) value = log.previous.get(key) ?? null;
    return value;
  }

  set(): void {
    throw new Error("a past state is read-only");
  }

  *keys(): Generator<KeyHex> {
    const touched = new Set<KeyHex>();
    for (const log of this.later) for (const key of log.previous.keys()) touched.add(key);
    for (const [key] of this.current) if (!touched.has(key)) yield key;
    for (const key of touched) if (this.get(key) !== null) yield key;
  }
}
