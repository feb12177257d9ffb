import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { U64_MAX } from "./bytes.ts";
import { EMPTY_WINDOW, type ReplayWindow, windowAccepts, windowSettle } from "./window.ts";

function settleAll(seqs: readonly bigint[], start: ReplayWindow = EMPTY_WINDOW): ReplayWindow {
  let w = start;
  for (const s of seqs) {
    const next = windowSettle(w, s);
    if (next === null) throw new Error(`seq ${s} refused`);
    w = next;
  }
  return w;
}

describe("replay window", () => {
  it("takes any first seq, then refuses it again", () => {
    const w = settleAll([7n]);
    expect(w).toEqual({ highestSeq: 7n, bitmap: 0n });
    expect(windowSettle(w, 7n)).toBeNull();
    expect(windowAccepts(w, 8n)).toBe(true);
  });

  it("accepts highest − 64 and highest − 63 once each, and refuses highest − 65", () => {
    const w = settleAll([100n]);
    const a = windowSettle(w, 36n); // 100 − 64: the oldest seq in the window, bit 63
    expect(a).toEqual({ highestSeq: 100n, bitmap: 1n << 63n });
    const b = windowSettle(a!, 37n); // 100 − 63, bit 62
    expect(b).toEqual({ highestSeq: 100n, bitmap: (1n << 63n) | (1n << 62n) });
    expect(windowSettle(b!, 36n)).toBeNull();
    expect(windowSettle(b!, 37n)).toBeNull();
    expect(windowSettle(w, 35n)).toBeNull(); // older than the window: refused, never counted
    expect(windowSettle(w, 0n)).toBeNull();
  });

  it("slides: a seq leaves the window when the highest passes it by 65", () => {
    let w = settleAll([0n, 1n]);
    expect(w.bitmap).toBe(1n); // 0 settled
    w = settleAll([65n], w); // 1 is highest − 64: still tracked (bit 63), 0 fell out
    expect(w.bitmap).toBe(1n << 63n);
    expect(windowAccepts(w, 1n)).toBe(false);
    expect(windowAccepts(w, 0n)).toBe(false);
    expect(windowAccepts(w, 2n)).toBe(true); // never settled, still inside
    w = settleAll([66n], w);
    expect(windowAccepts(w, 2n)).toBe(true); // 66 − 64
    expect(windowAccepts(w, 1n)).toBe(false); // 66 − 65: out
  });

  it("handles huge jumps, up to the largest u64", () => {
    let w = settleAll([5n, 6n, 1_000_000_000_000n]);
    expect(w).toEqual({ highestSeq: 1_000_000_000_000n, bitmap: 0n }); // jump > 64: all old bits fall out
    expect(windowAccepts(w, 6n)).toBe(false);
    expect(windowAccepts(w, 999_999_999_999n)).toBe(true);
    w = settleAll([U64_MAX], w);
    expect(w).toEqual({ highestSeq: U64_MAX, bitmap: 0n });
    expect(windowSettle(w, U64_MAX)).toBeNull();
    expect(windowAccepts(w, U64_MAX - 64n)).toBe(true);
    expect(windowAccepts(w, U64_MAX - 65n)).toBe(false);
    expect(() => windowAccepts(w, U64_MAX + 1n)).toThrow();
  });

  it("a jump of exactly 64 keeps the old highest as bit 63", () => {
    const w = settleAll([10n, 74n]);
    expect(w.bitmap).toBe(1n << 63n);
    expect(windowAccepts(w, 10n)).toBe(false);
  });

  it("agrees with a set-based model on any sequence of seqs", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 200n }), fc.bigInt({ min: 0n, max: 1n << 20n })), { maxLength: 300 }), (seqs) => {
        let w = EMPTY_WINDOW;
        const settled = new Set<bigint>();
        let highest: bigint | null = null;
        for (const s of seqs) {
          const modelAccepts = !settled.has(s) && (highest === null || s > highest || s >= highest - 64n);
          const next = windowSettle(w, s);
          expect(next !== null).toBe(modelAccepts);
          if (next !== null) {
            w = next;
            settled.add(s);
            if (highest === null || s > highest) highest = s;
          }
          expect(w.bitmap >> 64n).toBe(0n);
        }
      }),
    );
  });
});
