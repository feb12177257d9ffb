/**
 * Exactly-once by (device, seq): a sliding window over each device's sequence numbers, the same
 * rule the telemetry service applies on chain. A seq is new if it is above the highest seen, or
 * within the 64 below it and not yet seen. Kept as plain data so it persists as it is.
 */

/** Seqs below the highest that are still told apart: 64, one bit each. */
export const SEQ_WINDOW = 64n;
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

export function judgeSeq(w: SeqWindow, seq: number): SeqVerdict {
  if (seq > w.highest) return w.highest >= 0 && seq - w.highest > SEQ_JUMP_MAX ? "too-far-ahead" : "new";
  if (seq === w.highest) return "replay";
  const distance = BigInt(w.highest - seq); // 1 … ∞
  if (distance > SEQ_WINDOW) return "too-old";
  return (w.below >> (distance - 1n)) & 1n ? "replay" : "new";
}

const WINDOW_MASK = (1n << SEQ_WINDOW) - 1n;

/** The window after accepting `seq` (which judgeSeq called new). */
export function acceptSeq(w: SeqWindow, seq: number): SeqWindow {
  if (seq <= w.highest) return { highest: w.highest, below: w.below | (1n << BigInt(w.highest - seq - 1)) };
  if (w.highest < 0) return { highest: seq, below: 0n };
  // The old highest becomes bit shift − 1; older bits move up by shift and fall off past 64.
  const shift = BigInt(seq - w.highest);
  return { highest: seq, below: shift > SEQ_WINDOW ? 0n : ((w.below << shift) | (1n << (shift - 1n))) & WINDOW_MASK };
}
