/**
 * Inclusion proofs in the state trie (GP D.2, the binary Patricia Merkle trie over 31-byte state
 * keys): a value is in the state whose root is `root` when its leaf, hashed up through the
 * sibling subtree hashes along its key's bits, gives that root. Pure: a verifier needs nothing but
 * this module and a root it trusts (the ledger's proofs carry the headers that commit to it).
 *
 * The leaf and branch encodings are typeberry's (InMemoryTrie.constructLeaf, BranchNode.fromSubNodes),
 * written here into one reused 64-byte buffer and hashed with libsodium: a root of 5,000 changes in
 * a state of 1,000,000 entries hashes ~55,000 nodes, and typeberry's objects around each encoding
 * cost more than the hash (BENCHMARKS.md §2.1); proof.test.ts checks both encodings against
 * typeberry's for random keys and values. They are the ones state/kv.ts hashes the node's own trie
 * with, so a proof cannot drift from the roots the node puts in its headers.
 */
import { Bytes } from "@typeberry/lib/bytes";
import { bytesEqual } from "../codec/jam.ts";
import { createRequire } from "node:module";
import sodium from "sodium-native";

/** GP D.1: state keys are 31 bytes (the 32nd byte of a typeberry StateKey is ignored). */
export const STATE_KEY_BYTES = 31;
const HASH_BYTES = 32;
/**
 * Most siblings a path can have: two distinct 31-byte keys part at bit 247 at the latest, so a
 * leaf sits under at most 248 branches (one per key bit).
 */
export const STATE_PROOF_SIBLINGS_MAX = STATE_KEY_BYTES * 8;

/**
 * libsodium's crypto_generichash is blake2b with the output's length as its digest length, so into
 * 32 bytes it is the Gray Paper's H (blake2b-256). It hashes a 64-byte node in ~0.34 µs against
 * ~0.55 µs through typeberry's hashBytes, which also returns a new object per hash (measured here).
 * node/crypto/sodium-native.d.ts declares only what ed25519.ts uses, hence the cast.
 */
const generichash = (sodium as unknown as { crypto_generichash(output: Uint8Array, input: Uint8Array): void }).crypto_generichash;

/** sodium-native's native function under crypto_generichash: (output's buffer, offset, length, input's …, key's …) → status. */
export type GenerichashBinding = (
  out: ArrayBufferLike,
  outOffset: number,
  outLength: number,
  input: ArrayBufferLike,
  inputOffset: number,
  inputLength: number,
  key: ArrayBufferLike,
  keyOffset: number,
  keyLength: number,
) => number;

/** H(input) written to `out` at byte `outOffset`. */
export type HashInto = (out: ArrayBufferLike, outOffset: number, input: Uint8Array) => void;

const NO_KEY = new ArrayBuffer(0);

/**
 * The hash the trie uses: sodium-native's native function itself, which writes the digest straight
 * into the trie's hash array, where the exported crypto_generichash checks its arguments in JS and
 * needs an output array of its own to copy from: a block's root at 1,000,000 entries with 5,000
 * changed took 28 ms of CPU against 36 (measured here, alternating runs). That function is not
 * sodium-native's documented API, so it is taken only if it loads and gives the exported
 * function's digest for a test input; otherwise the exported function is used.
 */
export function chooseHashInto(loadNative: () => GenerichashBinding): HashInto {
  const viaExported: HashInto = (out, outOffset, input) => {
    generichash(digest, input);
    new Uint8Array(out, outOffset, HASH_BYTES).set(digest);
  };
  let native: GenerichashBinding;
  try {
    native = loadNative();
    const probe = Uint8Array.from({ length: 64 }, (_, i) => i);
    const [expected, got] = [new Uint8Array(HASH_BYTES), new Uint8Array(HASH_BYTES)];
    generichash(expected, probe);
    if (native(got.buffer, 0, HASH_BYTES, probe.buffer, 0, probe.length, NO_KEY, 0, 0) !== 0 || !bytesEqual(expected, got)) return viaExported;
  } catch {
    return viaExported;
  }
  return (out, outOffset, input) => {
    if (native(out, outOffset, HASH_BYTES, input.buffer, input.byteOffset, input.byteLength, NO_KEY, 0, 0) !== 0) throw new Error("blake2b failed");
  };
}

export const loadSodiumBinding = (): GenerichashBinding =>
  (createRequire(import.meta.url)("sodium-native/binding.js") as { crypto_generichash: GenerichashBinding }).crypto_generichash;

const hashInto = chooseHashInto(loadSodiumBinding);

/** A node's encoding, built and hashed at once (never kept): 64 bytes, as typeberry's TrieNode. */
const nodeScratch = new Uint8Array(2 * HASH_BYTES);
const nodeWords = new Uint32Array(nodeScratch.buffer);
/** The exported function's output, before it is copied out. */
const digest = new Uint8Array(HASH_BYTES);
/** A hash in 32-bit words: hashes are copied a word at a time. */
export const HASH_WORDS = HASH_BYTES / 4;
/** First byte of a leaf embedding its value (its low 6 bits the value's length), and of one holding H(v). */
const EMBEDDED_LEAF = 0b1000_0000;
const HASHED_LEAF = 0b1100_0000;
/** A branch's first bit is 0: it drops the left hash's first bit. */
const BRANCH_FIRST_BYTE_MASK = 0b0111_1111;

/** L(k, v), GP D.2, into nodeScratch: the leaf embeds a value of up to 32 bytes, else holds H(v). The key is `keys[keyAt..keyAt + 31]`. */
function encodeLeaf(keys: Uint8Array, keyAt: number, value: Uint8Array): void {
  nodeWords.fill(0);
  for (let i = 0; i < STATE_KEY_BYTES; i++) nodeScratch[1 + i] = keys[keyAt + i]!;
  if (value.length <= HASH_BYTES) {
    nodeScratch[0] = EMBEDDED_LEAF | value.length;
    nodeScratch.set(value, 1 + STATE_KEY_BYTES);
  } else {
    nodeScratch[0] = HASHED_LEAF;
    hashInto(nodeScratch.buffer, 1 + STATE_KEY_BYTES, value);
  }
}

/** H(nodeScratch) into `out` from word `outWord` (8 words). */
function hashNodeInto(out: Uint32Array, outWord: number): void {
  hashInto(out.buffer, out.byteOffset + outWord * 4, nodeScratch);
}

/**
 * H(L(k, v)) written into `out` from word `outWord`, for the 31-byte key at `keys[keyAt]`: the
 * form state/kv.ts keeps its trie's hashes in (one array, no object per hash).
 */
export function leafHashInto(keys: Uint8Array, keyAt: number, value: Uint8Array, out: Uint32Array, outWord: number): void {
  encodeLeaf(keys, keyAt, value);
  hashNodeInto(out, outWord);
}

/** H(B(l, r)) written into `hashes` at word `outWord`, where l and r are the hashes at words `leftWord` and `rightWord` of the same array. */
export function branchHashInto(hashes: Uint32Array, leftWord: number, rightWord: number, outWord: number): void {
  for (let i = 0; i < HASH_WORDS; i++) {
    nodeWords[i] = hashes[leftWord + i]!;
    nodeWords[HASH_WORDS + i] = hashes[rightWord + i]!;
  }
  nodeScratch[0]! &= BRANCH_FIRST_BYTE_MASK;
  hashNodeInto(hashes, outWord);
}

/** One node's hash, for the functions below that return it as a new object. */
const single = new Uint32Array(3 * HASH_WORDS);

function singleHash(): Bytes<32> {
  return Bytes.fromBlob(new Uint8Array(single.buffer.slice(0, HASH_BYTES)), HASH_BYTES);
}

/** H(L(k, v)), GP D.2: the leaf embeds a value of up to 32 bytes, else holds H(v). `stateKey` is 31 bytes. */
export function leafHash(stateKey: Uint8Array, value: Uint8Array): Bytes<32> {
  leafHashInto(stateKey, 0, value, single, 0);
  return singleHash();
}

/** H(B(l, r)), GP D.2: the branch holds the last 255 bits of l (its first bit marks a branch) and all of r. */
export function branchHash(left: Bytes<32>, right: Bytes<32>): Bytes<32> {
  new Uint8Array(single.buffer).set(left.raw, HASH_BYTES);
  new Uint8Array(single.buffer).set(right.raw, 2 * HASH_BYTES);
  branchHashInto(single, HASH_WORDS, 2 * HASH_WORDS, 0);
  return singleHash();
}

/** Bit `depth` of a key, most significant bit of byte 0 first: 0 goes left in the trie, 1 right. */
export function keyBit(key: Uint8Array, depth: number): 0 | 1 {
  return ((key[depth >>> 3]! >>> (7 - (depth & 7))) & 1) as 0 | 1;
}

/**
 * Whether `value` under `stateKey` (31 bytes) is in the state whose GP D.2 root is `root`:
 * `siblings[i]` is the hash of the subtree beside the path at depth i (the key's bit i chose the
 * other side; the zero hash for an empty side), from the root down to the leaf. Anything not of
 * that shape (a key of another length, a sibling or root not 32 bytes, more than
 * STATE_PROOF_SIBLINGS_MAX siblings) is false.
 *
 * The branch encoding drops the first bit of its left hash, so that one bit of a sibling on the
 * left is not committed to: flipping it proves the same value under the same key.
 */
export function verifyStatePath(stateKey: Uint8Array, value: Uint8Array, siblings: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!(stateKey instanceof Uint8Array) || stateKey.length !== STATE_KEY_BYTES) return false;
  if (!(value instanceof Uint8Array) || !(root instanceof Uint8Array) || root.length !== HASH_BYTES) return false;
  if (!Array.isArray(siblings) || siblings.length > STATE_PROOF_SIBLINGS_MAX) return false;
  if (!siblings.every((s) => s instanceof Uint8Array && s.length === HASH_BYTES)) return false;
  let node = leafHash(stateKey, value);
  for (let depth = siblings.length - 1; depth >= 0; depth--) {
    const sibling = Bytes.fromBlob(siblings[depth]!, HASH_BYTES);
    node = keyBit(stateKey, depth) === 0 ? branchHash(node, sibling) : branchHash(sibling, node);
  }
  return bytesEqual(node.raw, root);
}
