import { BytesBlob } from "@typeberry/lib/bytes";
import { Blake2b } from "@typeberry/lib/hash";
import { StateEntries } from "@typeberry/lib/state-merkleization";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Bytes } from "@typeberry/lib/bytes";
import { toHex } from "../codec/jam.ts";
import { Overlay, PastState, State } from "./kv.ts";

const blake2b = await Blake2b.createHasher();
const entry = fc.tuple(fc.uint8Array({ minLength: 31, maxLength: 31 }), fc.uint8Array({ maxLength: 80 }));

describe("State", () => {
  it("has typeberry's state root (GP D.2) for any entries, after any updates", () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 40 }), fc.array(entry, { maxLength: 10 }), (initial, updates) => {
        const state = State.fromEntries(initial.map(([k, v]) => [toHex(k), v] as const));
        state.root(); // fill the leaf cache, so updates below must invalidate it
        for (const [k, v] of updates) state.set(toHex(k), v.length % 3 === 0 ? null : v);
        const reference = StateEntries.fromEntriesUnsafe([...state].map(([k, v]) => [Bytes.parseBytesNoPrefix(k, 31).asOpaque(), BytesBlob.blobFrom(v)]));
        expect(toHex(state.root())).toBe(toHex(reference.getRootHash(blake2b).raw));
      }),
      { numRuns: 60 },
    );
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
    const state = State.fromEntries([[a, Uint8Array.of(3)], [b, Uint8Array.of(9)]]);
    // block 1 set a=2 (was 1) and added b; block 2 set a=3.
    const undo2 = { slot: 2, previous: new Map([[a, Uint8Array.of(2)]]) };
    const undo1 = { slot: 1, previous: new Map<string, Uint8Array | null>([[a, Uint8Array.of(1)], [b, null]]) };
    expect(new PastState(state, []).get(a)).toEqual(Uint8Array.of(3));
    expect(new PastState(state, [undo2]).get(a)).toEqual(Uint8Array.of(2));
    const atGenesis = new PastState(state, [undo2, undo1]);
    expect(atGenesis.get(a)).toEqual(Uint8Array.of(1));
    expect(atGenesis.get(b)).toBeNull();
    expect([...atGenesis.keys()]).toEqual([a]);
    expect(() => atGenesis.set()).toThrow(/read-only/);
  });
});
