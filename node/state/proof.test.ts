/**
 * State-trie inclusion proofs (GP D.2): State.proof's path for every key folds back to
 * State.root() (itself checked against typeberry's InMemoryTrie in kv.test.ts and against the JAM
 * trace vectors), and any change to the value, the key, a sibling or the root breaks it.
 */
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { BranchNode, InMemoryTrie } from "@typeberry/lib/trie";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../codec/jam.ts";
import { blake2b } from "../crypto/hash.ts";
import { keyHex, State } from "./kv.ts";
import {
  branchHash,
  chooseHashInto,
  type GenerichashBinding,
  keyBit,
  leafHash,
  loadSodiumBinding,
  STATE_KEY_BYTES,
  STATE_PROOF_SIBLINGS_MAX,
  verifyStatePath,
} from "./proof.ts";

const KEY_BITS = STATE_KEY_BYTES * 8;
const key31 = fc.uint8Array({ minLength: STATE_KEY_BYTES, maxLength: STATE_KEY_BYTES });
/**
 * Values embedded in their leaf (up to 32 bytes) and hashed into it (33 to 80), half each. Sizes
 * are explicit: fast-check's default size would keep arrays to about 10 elements.
 */
const value = fc.oneof(fc.uint8Array({ maxLength: 32, size: "max" }), fc.uint8Array({ minLength: 33, maxLength: 80, size: "max" }));

/** The first `shared` bits of `base`, then `tail`'s bits: keys that share long prefixes part deep in the trie. */
function withPrefix(base: Uint8Array, tail: Uint8Array, shared: number): Uint8Array {
  const key = Uint8Array.from(tail);
  for (let bit = 0; bit < shared; bit++) {
    const mask = 0x80 >>> (bit & 7);
    key[bit >>> 3] = (key[bit >>> 3]! & ~mask) | (base[bit >>> 3]! & mask);
  }
  return key;
}

/** Keys around one base key, sharing 0 to all 248 of its bits (all 248: the base key itself). */
const keys = fc
  .tuple(key31, fc.array(fc.tuple(fc.integer({ min: 0, max: KEY_BITS }), key31), { minLength: 1, maxLength: 40, size: "max" }))
  .map(([base, tails]) => tails.map(([shared, tail]) => withPrefix(base, tail, shared)));

const entries = keys.chain((ks) => fc.tuple(...ks.map((k) => fc.tuple(fc.constant(k), value))));

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >>> 3]! ^= 0x80 >>> (bit & 7);
  return out;
}

function proofOf(state: State, key: Uint8Array) {
  return state.proof(keyHex(key));
}

describe("the node encodings", () => {
  const hasher = { hashConcat: (n: Uint8Array, rest: Uint8Array[] = []) => blake2b.hashBlobs([n, ...rest]).asOpaque() };
  it("hash leaves as typeberry's InMemoryTrie.constructLeaf does, for values embedded (0–32 bytes) and hashed", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 31, maxLength: 31 }), fc.uint8Array({ maxLength: 100 }), (key, value) => {
        const leaf = InMemoryTrie.constructLeaf(hasher, Bytes.fromBlob(key, STATE_KEY_BYTES).asOpaque(), BytesBlob.blobFrom(value));
        expect(toHex(leafHash(key, value).raw)).toBe(toHex(blake2b.hashBytes(leaf.node.raw).raw));
      }),
      { numRuns: 500 },
    );
  });

  it("hash branches as typeberry's BranchNode.fromSubNodes does", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (l, r) => {
        const [left, right] = [Bytes.fromBlob(l, 32), Bytes.fromBlob(r, 32)];
        const branch = BranchNode.fromSubNodes(left.asOpaque(), right.asOpaque());
        expect(toHex(branchHash(left, right).raw)).toBe(toHex(blake2b.hashBytes(branch.node.raw).raw));
      }),
      { numRuns: 500 },
    );
  });
});

describe("the hash the trie writes with", () => {
  /** blake2b-256 of `input` through `hashInto`, written at byte 8 of a larger buffer (as into the trie's hash array). */
  function through(hashInto: ReturnType<typeof chooseHashInto>, input: Uint8Array): string {
    const out = new ArrayBuffer(48);
    hashInto(out, 8, input);
    return toHex(new Uint8Array(out, 8, 32));
  }
  const broken: Record<string, () => GenerichashBinding> = {
    missing: () => {
      throw new Error("no binding");
    },
    "a status other than 0": () => () => -1,
    "another digest": () => (out, offset) => {
      new Uint8Array(out, offset, 32).fill(7);
      return 0;
    },
  };

  it("is blake2b-256 through sodium-native's native function, or its exported one when that function is missing or differs", () => {
    for (const load of [loadSodiumBinding, ...Object.values(broken)]) {
      const hashInto = chooseHashInto(load);
      for (const input of [new Uint8Array(0), Uint8Array.from({ length: 64 }, (_, i) => 255 - i), Buffer.from("x".repeat(200)).subarray(3)])
        expect(through(hashInto, input)).toBe(toHex(blake2b.hashBytes(input).raw));
    }
  });
});

describe("verifyStatePath", () => {
  it("accepts every key's proof against the root, for random states with long shared prefixes", () => {
    fc.assert(
      fc.property(entries, (list) => {
        const state = State.fromEntries(list.map(([k, v]) => [keyHex(k), v] as const));
        const root = state.root();
        for (const [k] of list) {
          const proof = proofOf(state, k);
          if (proof === null) throw new Error(`no proof for a key in the state: ${toHex(k)}`);
          expect(Buffer.compare(proof.value, state.get(keyHex(k))!)).toBe(0);
          expect(proof.siblings.length).toBeLessThanOrEqual(STATE_PROOF_SIBLINGS_MAX);
          expect(verifyStatePath(k, proof.value, proof.siblings, root)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("reaches the deepest leaf: two keys that part only at the last bit have 248 siblings", () => {
    const a = new Uint8Array(STATE_KEY_BYTES).fill(0x5a);
    const b = flipBit(a, KEY_BITS - 1);
    const state = State.fromEntries([
      [keyHex(a), Uint8Array.of(1)],
      [keyHex(b), new Uint8Array(40).fill(2)],
    ]);
    for (const [k, v] of [
      [a, Uint8Array.of(1)],
      [b, new Uint8Array(40).fill(2)],
    ] as const) {
      const proof = proofOf(state, k)!;
      expect(proof.siblings).toHaveLength(STATE_PROOF_SIBLINGS_MAX);
      // Every branch but the last has an empty side: the zero hash.
      expect(proof.siblings.slice(0, -1).every((s) => s.every((byte) => byte === 0))).toBe(true);
      expect(verifyStatePath(k, v, proof.siblings, state.root())).toBe(true);
    }
  });

  it("fails when any bit of the value, the key, a sibling or the root is flipped", () => {
    fc.assert(
      fc.property(entries, fc.nat(), fc.nat(), fc.nat(), (list, pick, bitPick, siblingPick) => {
        const state = State.fromEntries(list.map(([k, v]) => [keyHex(k), v] as const));
        const root = state.root();
        const [k] = list[pick % list.length]!;
        const { value: v, siblings } = proofOf(state, k)!;
        const bit = (n: number) => bitPick % n;

        if (v.length > 0) expect(verifyStatePath(k, flipBit(v, bit(v.length * 8)), siblings, root)).toBe(false);
        expect(verifyStatePath(k, Uint8Array.from([...v, 0]), siblings, root)).toBe(false);
        if (v.length > 0) expect(verifyStatePath(k, v.subarray(0, -1), siblings, root)).toBe(false);
        expect(verifyStatePath(flipBit(k, bit(KEY_BITS)), v, siblings, root)).toBe(false);
        expect(verifyStatePath(k, v, siblings, flipBit(root, bit(256)))).toBe(false);
        if (siblings.length > 0) {
          const depth = siblingPick % siblings.length;
          const flipped = bit(256);
          const tampered = siblings.map((s, i) => (i === depth ? flipBit(s, flipped) : s));
          // GP D.2's branch keeps only the last 255 bits of its left hash: the first bit of a
          // sibling on the left (the key went right) is not committed to.
          const uncommitted = keyBit(k, depth) === 1 && flipped === 0;
          expect(verifyStatePath(k, v, tampered, root)).toBe(uncommitted);
          // A sibling more or fewer moves the leaf to another depth.
          expect(verifyStatePath(k, v, siblings.slice(1), root)).toBe(false);
        }
        expect(verifyStatePath(k, v, [...siblings, new Uint8Array(32)], root)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("checks every bit of one proof's siblings, value and key", () => {
    const list: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < 12; i++) list.push([new Uint8Array(STATE_KEY_BYTES).fill(i * 21), new Uint8Array(i * 4).fill(i)]);
    const state = State.fromEntries(list.map(([k, v]) => [keyHex(k), v] as const));
    const root = state.root();
    const [k, v] = list[5]!;
    const { siblings } = proofOf(state, k)!;
    expect(siblings.length).toBeGreaterThan(2);
    let uncommitted = 0;
    siblings.forEach((sibling, depth) => {
      for (let bit = 0; bit < 256; bit++) {
        const ok = verifyStatePath(
          k,
          v,
          siblings.map((s, i) => (i === depth ? flipBit(sibling, bit) : s)),
          root,
        );
        if (ok) uncommitted++;
        expect(ok).toBe(bit === 0 && keyBit(k, depth) === 1);
      }
    });
    expect(uncommitted).toBe(siblings.filter((_, depth) => keyBit(k, depth) === 1).length);
    for (let bit = 0; bit < v.length * 8; bit++) expect(verifyStatePath(k, flipBit(v, bit), siblings, root)).toBe(false);
    for (let bit = 0; bit < KEY_BITS; bit++) expect(verifyStatePath(flipBit(k, bit), v, siblings, root)).toBe(false);
  });

  it("refuses what is not a proof's shape: keys of another length, hashes not of 32 bytes, more than 248 siblings", () => {
    const k = new Uint8Array(STATE_KEY_BYTES).fill(7);
    const v = Uint8Array.of(1, 2, 3);
    const state = State.fromEntries([
      [keyHex(k), v],
      ["ff".repeat(STATE_KEY_BYTES), Uint8Array.of(9)],
    ]);
    const { siblings } = proofOf(state, k)!;
    const root = state.root();
    expect(verifyStatePath(k, v, siblings, root)).toBe(true);
    expect(verifyStatePath(Uint8Array.from([...k, 0]), v, siblings, root)).toBe(false);
    expect(verifyStatePath(k.subarray(1), v, siblings, root)).toBe(false);
    expect(verifyStatePath(k, v, siblings, Uint8Array.from([...root, 0]))).toBe(false);
    expect(verifyStatePath(k, v, [siblings[0]!.subarray(1)], root)).toBe(false);

    // 249 siblings that fold to `deep` the way 248 do (bit 248 of a 31-byte key reads as 0): refused by the bound alone.
    const tooMany = Array.from({ length: STATE_PROOF_SIBLINGS_MAX + 1 }, (_, i) => new Uint8Array(32).fill(i & 0xff));
    let node = leafHash(k, v);
    for (let depth = tooMany.length - 1; depth >= 0; depth--) {
      const sibling = Bytes.fromBlob(tooMany[depth]!, 32);
      node = keyBit(k, depth) === 0 ? branchHash(node, sibling) : branchHash(sibling, node);
    }
    expect(verifyStatePath(k, v, tooMany, node.raw)).toBe(false);
    // The same fold one level shorter is a proof of that shape, and verifies.
    let shorter = leafHash(k, v);
    for (let depth = STATE_PROOF_SIBLINGS_MAX - 1; depth >= 0; depth--) {
      const sibling = Bytes.fromBlob(tooMany[depth]!, 32);
      shorter = keyBit(k, depth) === 0 ? branchHash(shorter, sibling) : branchHash(sibling, shorter);
    }
    expect(verifyStatePath(k, v, tooMany.slice(0, STATE_PROOF_SIBLINGS_MAX), shorter.raw)).toBe(true);
  });
});

describe("State.proof", () => {
  it("is null for a key with no value: never set, removed, or in an empty state", () => {
    expect(new State().proof("00".repeat(STATE_KEY_BYTES))).toBeNull();
    fc.assert(
      fc.property(entries, key31, (list, absent) => {
        const state = State.fromEntries(list.map(([k, v]) => [keyHex(k), v] as const));
        if (state.get(keyHex(absent)) === null) expect(proofOf(state, absent)).toBeNull();
        const [removed] = list[0]!;
        state.set(keyHex(removed), null);
        expect(proofOf(state, removed)).toBeNull();
      }),
      { numRuns: 100 },
    );
  });

  it("after further sets and removes, proves every key against the new root, and old proofs of changed values no longer verify", () => {
    fc.assert(
      fc.property(entries, fc.array(fc.tuple(fc.nat(), value, fc.boolean()), { maxLength: 20, size: "max" }), key31, (list, updates, fresh) => {
        const state = State.fromEntries(list.map(([k, v]) => [keyHex(k), v] as const));
        const before = new Map(list.map(([k]) => [keyHex(k), { key: k, proof: proofOf(state, k)! }]));
        // Updates hit existing keys (set a new value or remove) and add one key of their own.
        for (const [pick, v, remove] of updates) {
          const [k] = list[pick % list.length]!;
          state.set(keyHex(k), remove ? null : v);
        }
        state.set(keyHex(fresh), Uint8Array.of(1, 2, 3));
        const root = state.root();
        for (const [hex, v] of state) {
          const key = Buffer.from(hex, "hex");
          const proof = proofOf(state, key)!;
          expect(Buffer.compare(proof.value, v)).toBe(0);
          expect(verifyStatePath(key, proof.value, proof.siblings, root)).toBe(true);
        }
        for (const [hex, { key, proof }] of before) {
          const now = state.get(hex);
          if (now === null || Buffer.compare(now, proof.value) !== 0) expect(verifyStatePath(key, proof.value, proof.siblings, root)).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });
});
