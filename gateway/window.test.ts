import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SEQ_WINDOW_SEQS } from "../devices/protocol/seq-window.ts";
import { acceptSeq, EMPTY_WINDOW, judgeSeq, withSeqs } from "./window.ts";

/** The same rule with a plain set, to check the bit tricks against. */
function reference(seqs: number[]) {
  const seen = new Set<number>();
  let highest = -1;
  const verdicts: string[] = [];
  for (const seq of seqs) {
    let v: string;
    if (seq > highest) v = "new";
    else if (highest - seq > SEQ_WINDOW_SEQS)
      v = "too-old"; // the window forgets what is older
    else if (seen.has(seq)) v = "replay";
    else v = "new";
    verdicts.push(v);
    if (v === "new") {
      seen.add(seq);
      highest = Math.max(highest, seq);
    }
  }
  return verdicts;
}

describe("seq window", () => {
  it("agrees with a set-based reference on any sequence of seqs", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 200 }), (seqs) => {
        let w = EMPTY_WINDOW;
        const verdicts: string[] = [];
        for (const seq of seqs) {
          const v = judgeSeq(w, seq);
          verdicts.push(v);
          if (v === "new") w = acceptSeq(w, seq);
        }
        expect(verdicts).toEqual(reference(seqs));
      }),
      { numRuns: 300 },
    );
  });

  it("handles the window's edges and big jumps", () => {
    let w = acceptSeq(EMPTY_WINDOW, 100);
    expect(judgeSeq(w, 100 - 64)).toBe("new");
    expect(judgeSeq(w, 100 - 65)).toBe("too-old");
    w = acceptSeq(w, 36);
    expect(judgeSeq(w, 36)).toBe("replay");
    w = acceptSeq(w, 100 + 64); // 100 is now exactly 64 below
    expect(judgeSeq(w, 100)).toBe("replay");
    w = acceptSeq(w, 100 + 64 + 65); // everything before falls out of the window
    expect(judgeSeq(w, 100 + 64)).toBe("too-old");
    expect(judgeSeq(w, 100 + 64 + 64)).toBe("new");
    expect(judgeSeq(w, w.highest + 2_000_000)).toBe("too-far-ahead");
  });
});

describe("a window with what others know (withSeqs)", () => {
  it("judges a seq a replay when either side had it, and new only when neither did", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 60 }),
        (mine, theirs) => {
          const build = (seqs: number[]) => seqs.reduce((w, seq) => (judgeSeq(w, seq) === "new" ? acceptSeq(w, seq) : w), EMPTY_WINDOW);
          const union = withSeqs(build(mine), theirs);
          const all = build([...mine, ...theirs].sort((x, y) => x - y));
          for (let seq = 0; seq <= 200; seq++) expect(judgeSeq(union, seq), `seq ${seq}`).toBe(judgeSeq(all, seq));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never takes a seq out, and ignores what is no seq", () => {
    const w = acceptSeq(acceptSeq(EMPTY_WINDOW, 10), 12);
    expect(withSeqs(w, [])).toEqual(w);
    expect(withSeqs(w, [-1, 1.5, Number.NaN])).toEqual(w);
    expect(judgeSeq(withSeqs(w, [3]), 10)).toBe("replay");
    expect(judgeSeq(withSeqs(w, [3]), 3)).toBe("replay");
    expect(judgeSeq(withSeqs(w, [3]), 11)).toBe("new");
  });
});
