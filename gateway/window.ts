/**
 * Exactly-once by (device, seq), as the gateway judges it before settling: each device's window of
 * seqs (SEQ_WINDOW_SEQS, devices/protocol/seq-window.ts) kept in memory and in the durable log. The
 * window's arithmetic is the services' own (services/common/window.ts: the one the chain applies
 * and so the authority); this module is the gateway's cache of it, in the log's plain form
 * (`highest` a number, −1 before the first), and adds what only the gateway tells apart: a seq
 * too far ahead (SEQ_JUMP_MAX), and a replay from a seq below the window (too old).
 */
import { SEQ_WINDOW_SEQS } from "../devices/protocol/seq-window.ts";
import { type ReplayWindow, windowAccepts, windowSettle } from "../services/common/window.ts";

/** Largest jump ahead of the highest seq a device may make: more is a broken or hostile counter. */
export const SEQ_JUMP_MAX = 1_000_000;

export interface SeqWindow {
  /** Highest seq accepted, or -1 before the first. */
  readonly highest: number;
  /** Bit i set: seq highest − 1 − i was accepted. */
  readonly below: bigint;
}

export const EMPTY_WINDOW: SeqWindow = { highest: -1, below: 0n };

export type SeqVerdict = "new" | "replay" | "too-old" | "too-far-ahead";

const asReplayWindow = (w: SeqWindow): ReplayWindow => ({ highestSeq: w.highest < 0 ? null : BigInt(w.highest), bitmap: w.below });

export function judgeSeq(w: SeqWindow, seq: number): SeqVerdict {
  if (seq > w.highest) return w.highest >= 0 && seq - w.highest > SEQ_JUMP_MAX ? "too-far-ahead" : "new";
  if (w.highest - seq > SEQ_WINDOW_SEQS) return "too-old";
  return windowAccepts(asReplayWindow(w), BigInt(seq)) ? "new" : "replay";
}

/** The window after accepting `seq` (which judgeSeq called new; anything else leaves it as it is). */
export function acceptSeq(w: SeqWindow, seq: number): SeqWindow {
  const next = windowSettle(asReplayWindow(w), BigInt(seq));
  return next === null ? w : { highest: Number(next.highestSeq), below: next.bitmap };
}

/**
 * The window that holds the seqs of `w` and each of `seqs` (what another source knows was accepted
 * or settled: the seqs other gateways logged, gateway/cluster/windows.ts, or the highest the
 * service settled). A seq older than the resulting window is forgotten, as acceptSeq forgets it;
 * nothing is ever taken out, so a union only turns "new" verdicts into "replay" for seqs some
 * gateway or the chain already has, never the other way.
 */
export function withSeqs(w: SeqWindow, seqs: Iterable<number>): SeqWindow {
  let next = w;
  for (const seq of [...seqs].sort((a, b) => a - b)) if (Number.isSafeInteger(seq) && seq >= 0) next = acceptSeq(next, seq);
  return next;
}
