import { BytesBlob } from "@typeberry/lib/bytes";
import { Blake2b } from "@typeberry/lib/hash";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Bytes } from "@typeberry/lib/bytes";
import { toHex } from "../codec/jam.ts";
import { BranchNode, InMemoryTrie, type TrieHasher } from "@typeberry/lib/trie";
import { Overlay, PastState, State } from "./kv.ts";

const blake2b = await Blake2b.createHasher();
const hasher: TrieHasher = { hashConcat: (n, rest = []) => blake2b.hashBlobs([n, ...rest]).asOpaque() };
const entry = fc.tuple(fc.uint8Array({ minLength: 31, maxLength: 31 }), fc.uint8Array({ maxLength: 80 }));

/**
 * The reference root: typeberry's InMemoryTrie, built by inserting every entry. (Not typeberry's
 * StateEntries.getRootHash / InMemoryTrie.computeStateRoot: for two keys that part at the first
 * bit it returns the branch of the first leaf and an empty side, dropping the second; see the test
 * below. The JAM trace vectors in node/vectors check both against official roots.)
 */
function referenceRoot(entries: Iterable<[string, Uint8Array]>): string {
  const trie = InMemoryTrie.empty(hasher);
  for (const [k, v] of entries) trie.set(Bytes.parseBytesNoPrefix(k, 31).asOpaque() as never, BytesBlob.blobFrom(v));
  return toHex(trie.getRootHash().raw);
}

describe("State", () => {
  it("has typeberry's state root (GP D.2) for any entries, after any updates", () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 40 }), fc.array(entry, { maxLength: 10 }), (initial, updates) => {
        const state = State.fromEntries(initial.map(([k, v]) => [toHex(k), v] as const));
        state.root(); // fill the leaf cache, so updates below must invalidate it
        for (const [k, v] of updates) state.set(toHex(k), v.length % 3 === 0 ? null : v);
        expect(toHex(state.root())).toBe(referenceRoot(state));
      }),
      { numRuns: 200 },
    );
  });

  it("hashes two keys that part at the first bit as a branch of both leaves (GP D.2)", () => {
    const a = `01${"00".repeat(30)}`;
    const b = `81${"00".repeat(30)}`;
    const leaf = (k: string, v: Uint8Array) =>
      hasher.hashConcat(InMemoryTrie.constructLeaf(hasher, Bytes.parseBytesNoPrefix(k, 31).asOpaque(), BytesBlob.blobFrom(v)).node.raw);
    const expected = hasher.hashConcat(BranchNode.fromSubNodes(leaf(a, Uint8Array.of(1)), leaf(b, Uint8Array.of(2))).node.raw);
    const state = State.fromEntries([
      [a, Uint8Array.of(1)],
      [b, Uint8Array.of(2)],
    ]);
    expect(toHex(state.root())).toBe(toHex(expected.raw));
    // Removing one leaves the other's leaf as the root; removing both, the zero hash.
    state.set(b, null);
    expect(toHex(state.root())).toBe(toHex(leaf(a, Uint8Array.of(1)).raw));
    state.set(a, null);
    expect(toHex(state.root())).toBe("00".repeat(32));
  });

  it("changes nothing through an overlay until it is committed", () => {
    const state = State.fromEntries([["aa".repeat(31), Uint8Array.of(1)]]);
    const root = state.root();
    const overlay = new Overlay(state);
    overlay.set("aa".repeat(31), null);
    overlay.set("bb".repeat(31), Uint8Array.of(2));
    expect(overlay.get("aa".repeat(31))).toBeNull();
    expect(state.root()).toEqual(root);
    overlay.commit();
    expect(state.get("aa".repeat(31))).toBeNull();
    expect(state.get("bb".repeat(31))).toEqual(Uint8Array.of(2));
    expect(state.root()).not.toEqual(root);
  });

  it("reads a past state through undo logs, newest first", () => {
    const a = "aa".repeat(31);
    const b = "bb".repeat(31);
    const state = State.fromEntries([
      [a, Uint8Array.of(3)],
      [b, Uint8Array.of(9)],
    ]);
    // block 1 set a=2 (was 1) and added b; block 2 set a=3.
    const undo2 = { slot: 2, previous: new Map([[a, Uint8Array.of(2)]]) };
    const undo1 = {
      slot: 1,
      previous: new Map<string, Uint8Array | null>([
        [a, Uint8Array.of(1)],
        [b, null],
      ]),
    };
    expect(new PastState(state, []).get(a)).toEqual(Uint8Array.of(3));
    expect(new PastState(state, [undo2]).get(a)).toEqual(Uint8Array.of(2));
    const atGenesis = new PastState(state, [undo2, undo1]);
    expect(atGenesis.get(a)).toEqual(Uint8Array.of(1));
    expect(atGenesis.get(b)).toBeNull();
    expect([...atGenesis.keys()]).toEqual([a]);
    expect(() => atGenesis.set()).toThrow(/read-only/);
  });

  it("keeps typeberry's root through thousands of inserts, updates and removes, its freed nodes reused (the trie grows from 64 nodes)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        // A small key space (1,000 keys over 3,000 steps), so keys are removed and come back.
        // xorshift32: every bit varies (a power-of-two LCG's low bits cycle, and removed only absent keys).
        let x = seed;
        const next = () => {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          return x >>> 0;
        };
        const keys = Array.from({ length: 1_000 }, (_, i) => toHex(Uint8Array.from({ length: 31 }, (_, b) => (b < 2 ? (i >> (8 * b)) & 0xff : next() & 0xff))));
        const state = new State();
        const model = new Map<string, Uint8Array>();
        let removed = 0;
        for (let step = 0; step < 3_000; step++) {
          const key = keys[next() % keys.length]!;
          const value = next() % 4 === 0 ? null : Uint8Array.from({ length: next() % 70 }, () => next() & 0xff);
          if (value === null && model.has(key)) removed++;
          state.set(key, value);
          if (value === null) model.delete(key);
          else model.set(key, value);
          if (step % 500 === 0) state.root(); // hashes cached, then cleared by the steps after
        }
        expect(removed).toBeGreaterThan(100);
        expect(state.size).toBe(model.size);
        const root = toHex(state.root());
        expect(root).toBe(referenceRoot(model));
        // The same entries inserted afresh, in another order, give the same root.
        expect(toHex(State.fromEntries([...model].reverse()).root())).toBe(root);
        for (const [key, value] of model) expect(Buffer.compare(state.get(key)!, value)).toBe(0);
        // Only values changed (a block of device records): no branch is added or removed, yet every hash above them must go.
        for (const key of [...model.keys()].slice(0, 50)) {
          const value = Uint8Array.of(next() & 0xff, 1);
          state.set(key, value);
          model.set(key, value);
        }
        expect(toHex(state.root())).toBe(referenceRoot(model));
      }),
      { numRuns: 5 },
    );
  });

  it("builds from entries with a key given twice holding its last value, and an empty state's root is the zero hash", () => {
    const [a, b] = ["aa".repeat(31), "bb".repeat(31)];
    const state = State.fromEntries([
      [a, Uint8Array.of(1)],
      [b, Uint8Array.of(2)],
      [a, Uint8Array.of(3)],
    ]);
    expect(state.size).toBe(2);
    expect(state.get(a)).toEqual(Uint8Array.of(3));
    expect(toHex(state.root())).toBe(
      referenceRoot([
        [a, Uint8Array.of(3)],
        [b, Uint8Array.of(2)],
      ]),
    );
    expect(toHex(State.fromEntries([]).root())).toBe("00".repeat(32));
  });

  it("returns a root the next change does not alter", () => {
    const state = State.fromEntries([["aa".repeat(31), Uint8Array.of(1)]]);
    const root = state.root();
    const copy = Uint8Array.from(root);
    state.set("aa".repeat(31), Uint8Array.of(2));
    expect(toHex(state.root())).not.toBe(toHex(copy));
    expect(toHex(root)).toBe(toHex(copy));
  });
});
