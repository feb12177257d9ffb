/**
 * Refusal lines that cannot flood the log. A gateway with thousands of devices can refuse
 * thousands of envelopes a second (a device with a broken clock, a fleet with an expired
 * token); each refusal is counted (by code in /metrics: `jamgate_envelopes_rejected_total`,
 * `jamgate_mqtt_connects_refused_total`, `jamgate_mqtt_subscriptions_refused_total`,
 * `jamgate_mqtt_messages_not_held_total`, `jamgate_http_refused_total`) and answered to its device, and the log says it once
 * per device and code a minute: the first refusal is written, those after it within
 * REFUSAL_LINE_INTERVAL_MS are counted, and the next line written for that device and code
 * carries how many were left out (`suppressed`).
 */

/** One line per (subject, code) a minute: a misbehaving device shows up at once, and at most 60 lines an hour after. */
export const REFUSAL_LINE_INTERVAL_MS = 60_000;
/**
 * (subject, code) pairs remembered: the connection cap (gateway.ts gatewayLimits.connectionsMax),
 * a pair per device connected. Past it the pair written longest ago is forgotten (its next
 * refusal is written at once, and its count of left-out lines is lost: the counters keep them).
 */
export const REFUSAL_LINE_KEYS_MAX = 20_000;

export interface LineLimits {
  readonly intervalMs: number;
  readonly keysMax: number;
}

export const lineLimits: LineLimits = { intervalMs: REFUSAL_LINE_INTERVAL_MS, keysMax: REFUSAL_LINE_KEYS_MAX };

interface KeyState {
  /** When the last line for this key was written. */
  writtenAtMs: number;
  /** Refusals left out since. */
  suppressed: number;
}

/** Which refusals get a line: at most one per (subject, code) per interval. */
export class LineLimiter {
  /** In the order their last line was written (a key written again moves to the end), so the first is the one to forget. */
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly limits: LineLimits = lineLimits) {}

  /**
   * Whether to write a line for this refusal of `subject` (a device id, or a remote address when
   * no device is known) with `code` at `nowMs`: null to leave it out (counted), or the number of
   * refusals left out since the last line for the pair, to put on this one.
   */
  take(subject: string, code: string, nowMs: number): number | null {
    const key = `${subject}\u0000${code}`;
    const state = this.keys.get(key);
    if (state !== undefined && nowMs - state.writtenAtMs < this.limits.intervalMs) {
      state.suppressed++;
      return null;
    }
    const suppressed = state?.suppressed ?? 0;
    this.keys.delete(key);
    if (this.keys.size >= this.limits.keysMax) {
      const oldest = this.keys.keys().next();
      if (oldest.done !== true) this.keys.delete(oldest.value);
    }
    this.keys.set(key, { writtenAtMs: nowMs, suppressed: 0 });
    return suppressed;
  }

  /** Pairs remembered (bounded by `keysMax`). */
  get size(): number {
    return this.keys.size;
  }
}
