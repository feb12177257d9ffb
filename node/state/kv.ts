/**
 * The node's state as the Gray Paper's serialized form (GP Appendix D.1): a map from 31-byte
 * state keys to octet values. Everything the node keeps in state lives here, so the state root
 * (GP D.2 binary Patricia Merkle trie, via typeberry) commits to all of it.
 */
import { toHex } from "../codec/jam.ts";
import { branchHashInto, HASH_WORDS, leafHashInto, STATE_KEY_BYTES, STATE_PROOF_SIBLINGS_MAX } from "./proof.ts";

export { STATE_KEY_BYTES };

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

/**
 * The committed state: entries plus the GP D.2 binary Patricia trie over them, kept with each
 * node's hash cached. A change clears the cached hashes on its key's path only, so a block's root
 * costs ~depth hashes per changed entry (depth ≈ log2 of the entries), not the whole state:
 * recomputing it from sorted leaves took 70 ms per block at 10,000 entries, 1.4 s at 50,000 and
 * 5.5 s at 100,000 (the sorted leaf set was rebuilt by insertion, O(n²)), measured here.
 */
export class State implements Kv {
  /** Each entry's leaf in the trie, which holds its value. */
  private readonly leaves = new Map<KeyHex, number>();
  private readonly trie = new Trie();

  /** A state of `entries` (a key given twice holds its last value), its trie built at once (Trie.build). */
  static fromEntries(entries: Iterable<readonly [KeyHex, Uint8Array]>): State {
    const state = new State();
    const keys: KeyHex[] = [];
    const values: Uint8Array[] = [];
    for (const [key, value] of entries) {
      const at = state.leaves.get(key);
      if (at === undefined) {
        state.leaves.set(key, keys.length);
        keys.push(key);
        values.push(value);
      } else values[at] = value;
    }
    const leaves = state.trie.build(keys, values);
    for (let i = 0; i < keys.length; i++) state.leaves.set(keys[i]!, leaves[i]!);
    return state;
  }

  get(key: KeyHex): Uint8Array | null {
    const leaf = this.leaves.get(key);
    return leaf === undefined ? null : this.trie.value(leaf);
  }

  set(key: KeyHex, value: Uint8Array | null): void {
    const leaf = this.leaves.get(key);
    if (value === null) {
      if (leaf === undefined) return;
      this.trie.remove(leaf);
      this.leaves.delete(key);
    } else if (leaf === undefined) {
      this.leaves.set(key, this.trie.insert(key, value));
    } else {
      this.trie.update(leaf, value);
    }
  }

  get size(): number {
    return this.leaves.size;
  }

  *[Symbol.iterator](): IterableIterator<[KeyHex, Uint8Array]> {
    for (const [key, leaf] of this.leaves) yield [key, this.trie.value(leaf)];
  }

  /** GP D.2 M_σ: the Merkle root of the serialized state (a new array: the trie's own hashes change with the next block). */
  root(): Uint8Array {
    return this.trie.rootHash();
  }

  /**
   * The GP D.2 path to `key`'s leaf: its value and, from the root down, the hash of the subtree
   * beside the path at each branch (the zero hash for an empty side), as proof.ts's
   * verifyStatePath folds them back to root(). Null if the key holds no value. Costs the branches
   * on the path, at most 248, plus hashing the siblings whose cached hash a change cleared.
   */
  proof(key: KeyHex): { value: Uint8Array; siblings: Uint8Array[] } | null {
    const leaf = this.leaves.get(key);
    if (leaf === undefined) return null;
    return { value: this.trie.value(leaf), siblings: this.trie.siblings(leaf) };
  }
}

// --- the trie (GP D.2): a branch per bit until keys part; a lone key's leaf sits where it parts ---

/** Node 0 is the empty subtree: never allocated, its hash the zero hash. */
const EMPTY = 0;
/** flags: the node's cached hash is its hash (cleared when anything below changes). */
const CLEAN = 1;
/** flags: a leaf (an entry), else a branch. */
const LEAF = 2;
/** Nodes room is made for at first, and the factor it grows by when full. */
const INITIAL_NODES = 64;
const GROWTH = 1.5;

/**
 * The trie's nodes as numbers indexing typed arrays, not as objects: at 1,000,000 entries
 * (~2.4 million nodes) objects with a 32-byte hash each held ~1.2 GB of V8 heap, and each block's
 * new hash objects cost more in garbage collection than in hashing (block roots of 143 ms;
 * bench/state-root.ts). A node has a flags byte, two children (branches), a 31-byte key and a
 * value (leaves), and its cached hash, 8 words of one array that proof.ts's *Into functions read
 * children from and write to. Freed nodes are reused.
 */
class Trie {
  private capacity = 0;
  private flags = new Uint8Array(0);
  private zero = new Int32Array(0);
  private one = new Int32Array(0);
  private hashes = new Uint32Array(0);
  private keys = new Uint8Array(0);
  /** The same bytes as `keys`, as a Buffer to write hex keys into (its methods); `keys` is what the hot paths read. */
  private keysBuffer = Buffer.alloc(0);
  private values: (Uint8Array | undefined)[] = [undefined];
  /** Nodes below this were allocated (node 0 is EMPTY). */
  private allocated = 1;
  private readonly free: number[] = [];
  private root = EMPTY;
  /** The branches on a path, for remove(): a leaf sits under at most one per key bit. */
  private readonly path = new Int32Array(STATE_PROOF_SIBLINGS_MAX);

  constructor() {
    this.grow(INITIAL_NODES);
    this.flags[EMPTY] = CLEAN;
  }

  value(leaf: number): Uint8Array {
    return this.values[leaf]!;
  }

  /** A new leaf for `key` (not in the trie) holding `value`; returns it. */
  insert(key: KeyHex, value: Uint8Array): number {
    const leaf = this.allocate();
    this.keysBuffer.write(key, leaf * STATE_KEY_BYTES, STATE_KEY_BYTES, "hex");
    this.flags[leaf] = LEAF;
    this.values[leaf] = value;
    let parent = EMPTY;
    let side = 0;
    let at = this.root;
    let depth = 0;
    while (at !== EMPTY && (this.flags[at]! & LEAF) === 0) {
      this.flags[at]! &= ~CLEAN;
      parent = at;
      side = this.bit(leaf, depth++);
      at = side === 0 ? this.zero[at]! : this.one[at]!;
    }
    // An empty side takes the leaf; another key's leaf gets branches down to where the two keys part.
    const sub = at === EMPTY ? leaf : this.split(at, leaf, depth);
    if (parent === EMPTY) this.root = sub;
    else if (side === 0) this.zero[parent] = sub;
    else this.one[parent] = sub;
    return leaf;
  }

  /** The branches over leaves `a` and `b`, whose keys agree on every bit before `depth`: one per bit they share from there, then the one where they part. */
  private split(a: number, b: number, depth: number): number {
    let parting = depth;
    while (this.bit(a, parting) === this.bit(b, parting)) parting++;
    let sub = this.allocate();
    this.flags[sub] = 0;
    if (this.bit(b, parting) === 0) [this.zero[sub], this.one[sub]] = [b, a];
    else [this.zero[sub], this.one[sub]] = [a, b];
    for (let d = parting - 1; d >= depth; d--) {
      const up = this.allocate();
      this.flags[up] = 0;
      if (this.bit(b, d) === 0) [this.zero[up], this.one[up]] = [sub, EMPTY];
      else [this.zero[up], this.one[up]] = [EMPTY, sub];
      sub = up;
    }
    return sub;
  }

  /** `leaf` holds `value` now: its hash and those of the branches above it are cleared. */
  update(leaf: number, value: Uint8Array): void {
    this.values[leaf] = value;
    const depth = this.walkTo(leaf);
    for (let i = 0; i < depth; i++) this.flags[this.path[i]!]! &= ~CLEAN;
    this.flags[leaf]! &= ~CLEAN;
  }

  /** Takes `leaf` out; a branch left with one leaf and nothing else becomes that leaf, up the path. */
  remove(leaf: number): void {
    const depth = this.walkTo(leaf);
    let sub = EMPTY;
    for (let d = depth - 1; d >= 0; d--) {
      const branch = this.path[d]!;
      if (this.bit(leaf, d) === 0) this.zero[branch] = sub;
      else this.one[branch] = sub;
      this.flags[branch]! &= ~CLEAN;
      const [zero, one] = [this.zero[branch]!, this.one[branch]!];
      if (zero === EMPTY && (one === EMPTY || this.isLeaf(one))) sub = one;
      else if (one === EMPTY && this.isLeaf(zero)) sub = zero;
      else sub = branch;
      if (sub !== branch) this.release(branch);
    }
    this.root = sub;
    this.release(leaf);
  }

  /** The root's hash, hashing the nodes whose cached hash was cleared; a new array. */
  rootHash(): Uint8Array {
    this.hash(this.root);
    return this.hashCopy(this.root);
  }

  /** The hashes beside `leaf`'s path, root first (see State.proof); new arrays. */
  siblings(leaf: number): Uint8Array[] {
    const depth = this.walkTo(leaf);
    const siblings: Uint8Array[] = [];
    for (let d = 0; d < depth; d++) {
      const branch = this.path[d]!;
      const beside = this.bit(leaf, d) === 0 ? this.one[branch]! : this.zero[branch]!;
      this.hash(beside);
      siblings.push(this.hashCopy(beside));
    }
    return siblings;
  }

  /** Fills this.path with the branches from the root to `leaf`; returns how many. Throws if the trie does not lead there. */
  private walkTo(leaf: number): number {
    let at = this.root;
    let depth = 0;
    while (at !== leaf) {
      if (at === EMPTY || this.isLeaf(at)) throw new Error(`state trie has no path to leaf ${leaf}: trie corrupt`);
      this.path[depth] = at;
      at = this.bit(leaf, depth++) === 0 ? this.zero[at]! : this.one[at]!;
    }
    return depth;
  }

  /** Makes `node`'s cached hash its hash (GP D.2: a leaf's or a branch's encoding, hashed; zero for EMPTY). */
  private hash(node: number): void {
    const flags = this.flags[node]!;
    if ((flags & CLEAN) !== 0) return;
    if ((flags & LEAF) !== 0) {
      leafHashInto(this.keys, node * STATE_KEY_BYTES, this.values[node]!, this.hashes, node * HASH_WORDS);
    } else {
      const [zero, one] = [this.zero[node]!, this.one[node]!];
      this.hash(zero);
      this.hash(one);
      branchHashInto(this.hashes, zero * HASH_WORDS, one * HASH_WORDS, node * HASH_WORDS);
    }
    this.flags[node] = flags | CLEAN;
  }

  private hashCopy(node: number): Uint8Array {
    return new Uint8Array(this.hashes.buffer.slice(node * HASH_WORDS * 4, (node + 1) * HASH_WORDS * 4));
  }

  /** Bit `depth` of `leaf`'s key, most significant bit of byte 0 first: 0 goes left. */
  private bit(leaf: number, depth: number): number {
    return (this.keys[leaf * STATE_KEY_BYTES + (depth >>> 3)]! >>> (7 - (depth & 7))) & 1;
  }

  private isLeaf(node: number): boolean {
    return (this.flags[node]! & LEAF) !== 0;
  }

  /**
   * Builds the trie of distinct `keys` (hex) holding `values` into this empty trie; returns each
   * key's leaf. Keys are split by their bits from the first, as inserting them one by one would
   * place them, but each node is made once, in depth-first order (a node's zero side right after
   * it, then its one side), so a subtree's nodes sit together in the arrays and a block's paths
   * wait less on memory. At 1,000,000 entries inserting one by one and then renumbering took
   * ~7 s of CPU, against ~2 s for this (measured here, the node's start-up: bench/node-start.ts).
   */
  build(keys: readonly KeyHex[], values: readonly Uint8Array[]): Int32Array {
    if (this.root !== EMPTY) throw new Error("Trie.build needs an empty trie");
    const n = keys.length;
    // Each key's bytes, by its index, and the indexes, to be split into ranges by bit.
    const keyBytes = Buffer.alloc(n * STATE_KEY_BYTES);
    for (let i = 0; i < n; i++) {
      if (keyBytes.write(keys[i]!, i * STATE_KEY_BYTES, STATE_KEY_BYTES, "hex") !== STATE_KEY_BYTES || keys[i]!.length !== 2 * STATE_KEY_BYTES)
        throw new Error(`state key ${keys[i]} is not ${STATE_KEY_BYTES} bytes of hex`);
    }
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const leaves = new Int32Array(n);
    // Room for the ~2.4 nodes a random key makes, and an eighth more before the next growth copies everything.
    const nodes = Math.ceil(n * 2.7) + 1;
    if (nodes > this.capacity) this.grow(nodes);
    const bitOf = (i: number, depth: number) => (keyBytes[i * STATE_KEY_BYTES + (depth >>> 3)]! >>> (7 - (depth & 7))) & 1;
    /** The subtree of the keys order[from..to), which agree on every bit before `depth`. */
    const subtree = (from: number, to: number, depth: number): number => {
      const node = this.allocate();
      if (to - from === 1) {
        const i = order[from]!;
        this.flags[node] = LEAF;
        for (let b = 0; b < STATE_KEY_BYTES; b++) this.keys[node * STATE_KEY_BYTES + b] = keyBytes[i * STATE_KEY_BYTES + b]!;
        this.values[node] = values[i];
        leaves[i] = node;
        return node;
      }
      // Zeros to the front, ones to the back.
      let zeros = from;
      for (let at = from; at < to; at++) {
        const i = order[at]!;
        if (bitOf(i, depth) === 0) {
          order[at] = order[zeros]!;
          order[zeros++] = i;
        }
      }
      // Each side made before it is linked: making it may grow (replace) the arrays.
      const zero = zeros === from ? EMPTY : subtree(from, zeros, depth + 1);
      const one = zeros === to ? EMPTY : subtree(zeros, to, depth + 1);
      this.flags[node] = 0;
      this.zero[node] = zero;
      this.one[node] = one;
      return node;
    };
    if (n > 0) this.root = subtree(0, n, 0);
    return leaves;
  }

  private allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.allocated === this.capacity) this.grow(Math.ceil(this.capacity * GROWTH));
    this.values.push(undefined);
    return this.allocated++;
  }

  private release(node: number): void {
    this.flags[node] = 0;
    this.zero[node] = EMPTY;
    this.one[node] = EMPTY;
    this.values[node] = undefined;
    this.free.push(node);
  }

  private grow(capacity: number): void {
    const flags = new Uint8Array(capacity);
    flags.set(this.flags);
    const zero = new Int32Array(capacity);
    zero.set(this.zero);
    const one = new Int32Array(capacity);
    one.set(this.one);
    const hashes = new Uint32Array(capacity * HASH_WORDS);
    hashes.set(this.hashes);
    const keys = new Uint8Array(capacity * STATE_KEY_BYTES);
    keys.set(this.keys);
    [this.flags, this.zero, this.one, this.hashes, this.keys, this.capacity] = [flags, zero, one, hashes, keys, capacity];
    this.keysBuffer = Buffer.from(keys.buffer, keys.byteOffset, keys.length);
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
