/**
 * The seqs the cluster's gateways logged, per device, in Redis: what lets a gateway a device moves
 * to tell a resend of an envelope another gateway already has from a new one, before its PUBACK.
 *
 * Exactly-once by (device, seq) is the ledger's: every service settles a seq once (its window,
 * services/common/window.ts) and refuses a second settlement with JG_ERR_ENVELOPE_REPLAY, whichever
 * gateway submitted it. A gateway's own window (gateway/window.ts) is a cache of it, and in a
 * cluster a gateway's cache knows only what it logged itself. So, after each durable write, a
 * gateway adds the seq here (`<prefix>window:<device>`, a sorted set of the device's SEQ_WINDOW_SEQS
 * + 1 highest seqs); when a device connects, the gateway reads the set and adds it to its window
 * (window.ts withSeqs). A resend of what another gateway logged is then answered
 * JG_ERR_ENVELOPE_REPLAY before its PUBACK, as a single gateway answers it, and never enters a
 * package; that matters beyond a late answer, since an energy meter's or a router's envelopes in
 * one package settle together or not at all, and one replay among them refuses them all.
 *
 * Written after the log (never in a publish's path): a gateway killed between its write and this
 * one, or a Redis that lost its data, leaves a seq out, and then the ledger's window still refuses
 * its second settlement (the device is told JG_ERR_ENVELOPE_REPLAY after it). Adds are sent in
 * batches, one Lua call each, at most one call in flight; while Redis is unreachable they wait, up
 * to SHARED_WINDOW_ADDS_PENDING_MAX.
 */
import type { Redis } from "ioredis";
import { SEQ_WINDOW_SEQS } from "../../devices/protocol/seq-window.ts";
import { type SeqWindow, withSeqs } from "../window.ts";

/** Seqs added and not yet sent: 10 s of envelopes at the gateway's target rate (5,000/s). Past it the oldest are dropped (the ledger's window still holds). */
export const SHARED_WINDOW_ADDS_PENDING_MAX = 50_000;
/** Seqs one Lua call adds: ~1 ms of Redis's time, so other clients are not held up. */
export const SHARED_WINDOW_ADDS_PER_CALL_MAX = 1_000;
/** A device's set expires this long after its last add: a week. A device away longer has its window on the ledger, where a resend is still refused once; Redis does not keep every device ever seen. */
export const SHARED_WINDOW_TTL_S = 7 * 24 * 3600;
/** How long a connect waits for the set before it goes on without it (the ledger still decides). */
export const SHARED_WINDOW_READ_TIMEOUT_MS = 2_000;

/**
 * KEYS: a device's set per seq; ARGV[1]: how many seqs a set keeps; ARGV[2]: its TTL in seconds;
 * ARGV[2 + i]: the seq for KEYS[i]. Keeps the highest seqs of each set (ZREMRANGEBYRANK drops the
 * lowest) after each add, so a set never holds more than SEQ_WINDOW_SEQS + 2 members and stays in
 * Redis's compact encoding, a listpack up to 128 entries: 872 bytes at 65 seqs of 7 digits, where
 * a set once grown past 128 is a skiplist for good, 9,240 bytes (measured with MEMORY USAGE).
 */
const ADD_SCRIPT = `
local keep = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local touched = {}
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[i + 2], ARGV[i + 2])
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(keep + 1))
  touched[KEYS[i]] = true
end
for key in pairs(touched) do
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
`;

/** The seqs a window holds: its highest, and each of the SEQ_WINDOW_SEQS below it whose bit is set (bit i: seq highest − 1 − i). */
export function seqsOfWindow(w: SeqWindow): number[] {
  if (w.highest < 0) return [];
  const seqs = [w.highest];
  for (let i = 0; i < SEQ_WINDOW_SEQS && w.highest - 1 - i >= 0; i++) if ((w.below >> BigInt(i)) & 1n) seqs.push(w.highest - 1 - i);
  return seqs;
}

/**
 * A device's window as a gateway of the cluster learns it when the device connects: its own (what
 * it logged), with the seqs the cluster's gateways logged (`shared`, from Redis) and the windows its
 * service settled (`settled`: read from the ledger, each the highest and the bitmap below it,
 * ingest-service.ts settledWindow). Each settled seq counts, not only the highest: a resend of any
 * seq the ledger settled below its highest is then JG_ERR_ENVELOPE_REPLAY before its PUBACK, as one
 * gateway answers its own. A union (gateway/window.ts withSeqs): nothing is taken out.
 */
export function learnedWindow(own: SeqWindow, shared: readonly number[], settled: readonly SeqWindow[]): SeqWindow {
  return withSeqs(own, [...shared, ...settled.flatMap(seqsOfWindow)]);
}

export class SharedWindows {
  private readonly pending: { readonly deviceId: string; readonly seq: number }[] = [];
  private sending = false;
  private scheduled = false;
  private droppedCount = 0;

  constructor(
    private readonly db: Redis,
    private readonly prefix: string,
    private readonly canSend: () => boolean,
    private readonly onError: (error: Error) => void,
  ) {
    db.defineCommand("jamgateWindowAdd", { lua: ADD_SCRIPT });
  }

  private key(deviceId: string): string {
    return `${this.prefix}window:${deviceId}`;
  }

  /** Seqs dropped because too many waited for Redis. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Seqs waiting to be sent. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Notes that `deviceId`'s `seq` is in this gateway's durable log; sent in the next batch. */
  add(deviceId: string, seq: number): void {
    if (this.pending.length >= SHARED_WINDOW_ADDS_PENDING_MAX) {
      this.pending.shift();
      this.droppedCount++;
    }
    this.pending.push({ deviceId, seq });
    this.schedule();
  }

  /** Sends what waits, if Redis is reachable and no call is in flight (the cluster calls it again once Redis is back). */
  schedule(): void {
    if (this.scheduled || this.sending || this.pending.length === 0 || !this.canSend()) return;
    this.scheduled = true;
    // After the turn's other appends, so one call carries them all.
    setImmediate(() => {
      this.scheduled = false;
      void this.send();
    });
  }

  private async send(): Promise<void> {
    if (this.sending || this.pending.length === 0 || !this.canSend()) return;
    this.sending = true;
    const batch = this.pending.splice(0, SHARED_WINDOW_ADDS_PER_CALL_MAX);
    try {
      const call = (this.db as unknown as Record<string, (...args: (string | number)[]) => Promise<number>>).jamgateWindowAdd!;
      await call.call(this.db, batch.length, ...batch.map((a) => this.key(a.deviceId)), SEQ_WINDOW_SEQS + 1, SHARED_WINDOW_TTL_S, ...batch.map((a) => a.seq));
    } catch (error) {
      // Lost, not retried: the ledger's window still refuses a second settlement.
      this.droppedCount += batch.length;
      this.onError(error as Error);
    } finally {
      this.sending = false;
    }
    this.schedule();
  }

  /** Sends what waits now, for at most `timeoutMs` (a gateway that stops). */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.pending.length > 0 || this.sending) && this.canSend() && Date.now() < deadline) {
      this.schedule();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * The seqs other gateways (and this one) logged for `deviceId`, as far as Redis knows; empty when
   * it knows none, or cannot say within SHARED_WINDOW_READ_TIMEOUT_MS (the ledger then decides).
   */
  async seqsOf(deviceId: string): Promise<number[]> {
    if (!this.canSend()) return [];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string[]>((resolve) => {
      timer = setTimeout(() => resolve([]), SHARED_WINDOW_READ_TIMEOUT_MS);
    });
    try {
      const members = await Promise.race([this.db.zrange(this.key(deviceId), 0, -1), timeout]);
      return members.map(Number).filter((n) => Number.isSafeInteger(n) && n >= 0);
    } catch (error) {
      this.onError(error as Error);
      return [];
    } finally {
      clearTimeout(timer);
    }
  }
}
