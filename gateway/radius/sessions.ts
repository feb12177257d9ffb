/**
 * RADIUS accounting sessions as the gateway follows them, so that each Accounting-Request is
 * taken at most once and in order: what a session's last taken update said (counters, whether it
 * started and stopped, the hash its next update chains from), and the rule that decides whether a
 * new request is taken, answered without being taken (a retransmission, RFC 2866 §2; counters
 * going backwards), or dropped. Pure: the table that keeps them is state.ts.
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { fromHex } from "../../devices/envelope.ts";
import { ACCT_STATUS, type AccountingUsage, octets64, type RadiusRefusal } from "./packet.ts";

/** Session ids are 16 bytes (services/wifi-billing/README.md, the usage body's `session`). */
export const SESSION_ID_BYTES = 16;
/** Voucher hashes are blake2b-256 (services/wifi-billing/README.md, `prev`). */
export const CHAIN_HASH_BYTES = 32;
/** What the first update of a session chains from: 32 zero bytes (services/wifi-billing/README.md, `prev`). */
export const NO_PREVIOUS = new Uint8Array(CHAIN_HASH_BYTES);

/** A session after its last taken update. */
export interface SessionState {
  /** The client's account id (User-Name), fixed at the session's first update. */
  readonly clientId: string;
  /** A Start was taken. */
  readonly started: boolean;
  /** A Stop was taken: nothing more is. */
  readonly stopped: boolean;
  /** Cumulative octets (after gigaword wrap) and seconds of the last taken update. */
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
  /** Voucher hash of the last taken update: the next one's `prev`. */
  readonly lastHash: Uint8Array;
  /** When the last update was taken (ms, the gateway's clock): the table evicts the longest idle first. */
  readonly updatedAtMs: number;
}

export type SessionVerdict = { readonly take: true } | { readonly take: false; readonly answer: boolean; readonly refusal: RadiusRefusal };

/**
 * The usage session id of a RADIUS session: the first 16 bytes of blake2b-256(router id (16
 * bytes) ⌢ Acct-Session-Id (UTF-8)) (services/wifi-billing/README.md, the usage body's `session`). Acct-Session-Id is unique per
 * NAS only (RFC 2866 §5.5), so the router id goes in.
 */
export function usageSessionId(routerId: string, acctSessionId: string): Uint8Array {
  const session = new TextEncoder().encode(acctSessionId);
  const input = new Uint8Array(SESSION_ID_BYTES + session.length);
  input.set(fromHex(routerId), 0);
  input.set(session, SESSION_ID_BYTES);
  return blake2b(input, { dkLen: 32 }).subarray(0, SESSION_ID_BYTES);
}

/**
 * Whether `usage` is taken given its session's state (null: not seen). Not taken but answered,
 * so the NAS stops retransmitting (RFC 2866 §2): a Start or Stop already taken, an update after
 * the session's Stop, and an Interim-Update with the last taken counters
 * (JG_ERR_RADIUS_DUPLICATE); counters below the last taken (JG_ERR_RADIUS_COUNTER: a late
 * retransmission, or a counter that wrapped without its gigawords). Dropped: another User-Name
 * than the session's (JG_ERR_RADIUS_PACKET).
 */
export function judgeUsage(state: SessionState | null, usage: AccountingUsage): SessionVerdict {
  if (state === null) return { take: true };
  const answered = (code: RadiusRefusal["code"], detail: string): SessionVerdict => ({ take: false, answer: true, refusal: { code, detail } });
  if (usage.clientId !== state.clientId)
    return {
      take: false,
      answer: false,
      refusal: { code: "JG_ERR_RADIUS_PACKET", detail: `User-Name ${usage.clientId} in a session of client ${state.clientId}` },
    };
  if (state.stopped)
    return answered("JG_ERR_RADIUS_DUPLICATE", usage.status === ACCT_STATUS.stop ? "Stop already taken" : "the session's Stop was already taken");
  if (usage.status === ACCT_STATUS.start && state.started) return answered("JG_ERR_RADIUS_DUPLICATE", "Start already taken");
  const input = octets64(usage.inOctets, usage.inGigawords);
  const output = octets64(usage.outOctets, usage.outGigawords);
  if (input < state.inputOctets || output < state.outputOctets || usage.seconds < state.seconds) {
    return answered(
      "JG_ERR_RADIUS_COUNTER",
      `in ${input}, out ${output}, ${usage.seconds} s below the last taken: in ${state.inputOctets}, out ${state.outputOctets}, ${state.seconds} s`,
    );
  }
  if (usage.status === ACCT_STATUS.interimUpdate && input === state.inputOctets && output === state.outputOctets && usage.seconds === state.seconds) {
    return answered("JG_ERR_RADIUS_DUPLICATE", "Interim-Update with the last taken counters");
  }
  return { take: true };
}

/** The session's state once `usage` is taken, its voucher hash `hash`. */
export function nextState(state: SessionState | null, usage: AccountingUsage, hash: Uint8Array, nowMs: number): SessionState {
  return {
    clientId: usage.clientId,
    started: (state?.started ?? false) || usage.status === ACCT_STATUS.start,
    stopped: usage.status === ACCT_STATUS.stop,
    inputOctets: octets64(usage.inOctets, usage.inGigawords),
    outputOctets: octets64(usage.outOctets, usage.outGigawords),
    seconds: usage.seconds,
    lastHash: hash,
    updatedAtMs: nowMs,
  };
}
