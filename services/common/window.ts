/**
 * Exactly-once by a sliding window, per device: the highest settled seq and a 64-bit bitmap of
 * which of the 64 seqs below it were settled (the anti-replay window of IPsec, RFC 4303 §3.4.3,
 * and DTLS, RFC 6347 §4.1.2.6). Bit i stands for seq highest − 1 − i. A seq is accepted when it
 * is above the highest, or one of the 64 below it and not yet settled; anything else, including
 * everything older than the window, is a replay: never counted twice, at the price of refusing
 * envelopes that arrive more than 64 seqs late.
 *
 * Pure and total over u64 seqs (bigint), so accumulate stays deterministic. The gateway judges
 * seqs with these functions too (gateway/window.ts, its cache of each device's window).
 */
import { SEQ_WINDOW_SEQS } from "../../devices/protocol/seq-window.ts";
import { U64_MAX } from "./bytes.ts";

/** Seqs tracked below the highest (SEQ_WINDOW_SEQS, the protocol's), as a bigint for the u64 arithmetic here. */
const SPAN = BigInt(SEQ_WINDOW_SEQS);
const WINDOW_MASK = (1n << SPAN) - 1n;

export interface ReplayWindow {
  /** The highest settled seq; null before the first. */
  readonly highestSeq: bigint | null;
  /** Bit i set: seq highestSeq − 1 − i was settled. Always 0 when highestSeq is null. */
  readonly bitmap: bigint;
}

export const EMPTY_WINDOW: ReplayWindow = { highestSeq: null, bitmap: 0n };

/** True when settling `seq` now would be its first time. */
export function windowAccepts(window: ReplayWindow, seq: bigint): boolean {
  checkSeq(seq);
  const highest = window.highestSeq;
  if (highest === null || seq > highest) return true;
  const distance = highest - seq;
  if (distance === 0n || distance > SPAN) return false;
  return ((window.bitmap >> (distance - 1n)) & 1n) === 0n;
}

/** The window after settling `seq`, or null when it is a replay (the window unchanged). */
export function windowSettle(window: ReplayWindow, seq: bigint): ReplayWindow | null {
  if (!windowAccepts(window, seq)) return null;
  const highest = window.highestSeq;
  if (highest === null) return { highestSeq: seq, bitmap: 0n };
  if (seq > highest) {
    const shift = seq - highest;
    // The old highest moves to bit shift − 1; it and older bits fall out past bit 63.
    const bitmap = shift > SPAN ? 0n : ((window.bitmap << shift) | (1n << (shift - 1n))) & WINDOW_MASK;
    return { highestSeq: seq, bitmap };
  }
  return { highestSeq: highest, bitmap: window.bitmap | (1n << (highest - seq - 1n)) };
}

function checkSeq(seq: bigint): void {
  if (seq < 0n || seq > U64_MAX) throw new Error(`seq ${seq} is not a u64`);
}
