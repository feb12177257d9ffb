/**
 * What dishonest routers try, and in which order each router sends its updates. A router is
 * honest except at fraud points: before each update past the Start, with probability
 * `fraudRate`, it first sends one fraudulent update, then carries on honestly. Every attempt is
 * one the service (or, for RADIUS, the gateway's listener) must refuse with a known code and
 * without changing anything, so the honest traffic around it is billed exactly as if it had not
 * been tried. Separately, a native router that is not router-attested drops its clients'
 * vouchers from whole sessions at the same rate: that usage is disputed, not billed.
 *
 * Kinds and the code each must get (docs/errors.md):
 * - `inflate`: the update's counters raised past what the client signed, the client's voucher
 *   over the true ones: JG_ERR_WIFI_VOUCHER_SIGNATURE.
 * - `replay`: an earlier update of the session sent again, voucher and all: its `prev` is not the
 *   session's last voucher, JG_ERR_WIFI_VOUCHER_CHAIN.
 * - `reorder`: the next update sent before this one (both genuine): JG_ERR_WIFI_VOUCHER_CHAIN.
 * - `backwards`: an update that chains on the last voucher but with the input counter lowered,
 *   without a voucher (no client signs that): JG_ERR_WIFI_COUNTER.
 * - `strip` (whole session): no vouchers on a router whose owner did not choose router-attested
 *   billing: written `disputed`, not refused.
 * - RADIUS: `radius-duplicate` (the last Interim-Update again, same counters):
 *   JG_ERR_RADIUS_DUPLICATE; `radius-backwards` (an Interim-Update below the last):
 *   JG_ERR_RADIUS_COUNTER; `radius-forged` (the next update under a wrong shared secret):
 *   JG_ERR_RADIUS_AUTHENTICATOR, dropped without an answer.
 *
 * A fraud's kind is dealt from a shuffled deck of the kinds its transport has (reshuffled when
 * used up), skipping kinds the point does not allow, so every kind shows up once a run has as
 * many fraud points as kinds.
 */
import { type Rng, rngFor } from "../energy/random.ts";
import type { Population } from "./scenario.ts";
import type { SessionPlan } from "./traffic.ts";

export type NativeFraudKind = "inflate" | "replay" | "reorder" | "backwards";
export type RadiusFraudKind = "radius-duplicate" | "radius-backwards" | "radius-forged";
export type FraudKind = NativeFraudKind | RadiusFraudKind;
export const NATIVE_FRAUD_KINDS: readonly NativeFraudKind[] = ["inflate", "replay", "reorder", "backwards"];
export const RADIUS_FRAUD_KINDS: readonly RadiusFraudKind[] = ["radius-duplicate", "radius-backwards", "radius-forged"];
export const FRAUD_KINDS: readonly FraudKind[] = [...NATIVE_FRAUD_KINDS, ...RADIUS_FRAUD_KINDS];

/** The code each refused attempt must get. */
export const FRAUD_CODES: Readonly<Record<FraudKind, string>> = {
  inflate: "JG_ERR_WIFI_VOUCHER_SIGNATURE",
  replay: "JG_ERR_WIFI_VOUCHER_CHAIN",
  reorder: "JG_ERR_WIFI_VOUCHER_CHAIN",
  backwards: "JG_ERR_WIFI_COUNTER",
  "radius-duplicate": "JG_ERR_RADIUS_DUPLICATE",
  "radius-backwards": "JG_ERR_RADIUS_COUNTER",
  "radius-forged": "JG_ERR_RADIUS_AUTHENTICATOR",
};

/** Most a fraud raises or lowers a counter: well inside a 2^32 word, so it neither wraps nor reaches zero by accident. */
export const FRAUD_OCTETS_MAX = 50_000_000;

/** One thing a router sends for a session, in order; `update` indexes the session's honest updates. */
export type Step =
  | { readonly kind: "honest"; readonly update: number }
  /** The body of `update` with its counters raised by the extras; the voucher is the client's over the true counters. */
  | { readonly kind: "inflate"; readonly update: number; readonly extraInputOctets: number; readonly extraOutputOctets: number }
  /** The body of update `of`, sent again. */
  | { readonly kind: "replay"; readonly of: number }
  /** The body of update `update`, sent before the update before it. */
  | { readonly kind: "reorder"; readonly update: number }
  /** Chained on update `after`'s voucher, `after`'s counters with the input lowered, no voucher. */
  | { readonly kind: "backwards"; readonly after: number; readonly minusInputOctets: number }
  /** Accounting-Request of update `of` again. */
  | { readonly kind: "radius-duplicate"; readonly of: number }
  /** An Interim-Update with update `after`'s counters, the input lowered. */
  | { readonly kind: "radius-backwards"; readonly after: number; readonly minusInputOctets: number }
  /** Accounting-Request of update `update` under a wrong shared secret. */
  | { readonly kind: "radius-forged"; readonly update: number };

export interface SessionSteps {
  readonly session: SessionPlan;
  /** No vouchers in this session (a native router that is not router-attested): disputed. */
  readonly strip: boolean;
  readonly steps: readonly Step[];
}

/** Deals kinds from a shuffled deck, reshuffled when empty; skips (and keeps) kinds a point does not allow. */
class Deck<K extends string> {
  private cards: K[] = [];
  constructor(
    private readonly kinds: readonly K[],
    private readonly rng: Rng,
  ) {}

  deal(allowed: (kind: K) => boolean): K | null {
    if (!this.kinds.some(allowed)) return null;
    for (;;) {
      if (this.cards.length === 0) {
        this.cards = [...this.kinds];
        // Fisher–Yates.
        for (let i = this.cards.length - 1; i > 0; i--) {
          const j = this.rng.int(0, i);
          [this.cards[i], this.cards[j]] = [this.cards[j]!, this.cards[i]!];
        }
      }
      const at = this.cards.findIndex(allowed);
      if (at >= 0) return this.cards.splice(at, 1)[0]!;
      // None allowed in what is left of this deck: deal from a fresh one.
      this.cards = [];
    }
  }
}

/** The steps of every session (in session order) at `fraudRate` (0 … 1). */
export function planSteps(population: Population, sessions: readonly SessionPlan[], fraudRate: number): SessionSteps[] {
  if (!(fraudRate >= 0 && fraudRate <= 1)) throw new RangeError(`fraudRate must be in [0, 1], got ${fraudRate}`);
  const rng = rngFor(population.seed, "fraud");
  const native = new Deck(NATIVE_FRAUD_KINDS, rng);
  const radius = new Deck(RADIUS_FRAUD_KINDS, rng);
  const out: SessionSteps[] = [];
  for (const session of sessions) {
    const router = population.routers[session.router]!;
    const last = session.updates.length - 1;
    const strip = router.transport === "mqtt" && !router.attested && rng.chance(fraudRate);
    const steps: Step[] = [];
    for (let i = 0; i <= last; i++) {
      // Fraud points: before every update past the Start. Kinds that need an earlier Interim-Update
      // (with counters above zero to lower, or to replay) wait for the second.
      if (i >= 1 && !strip && rng.chance(fraudRate)) {
        const before = session.updates[i - 1]!;
        const minus = Math.min(before.inputOctets, rng.int(1, FRAUD_OCTETS_MAX));
        if (router.transport === "mqtt") {
          // reorder needs a next update that is an Interim-Update (a Stop sent early is a different error).
          const kind = native.deal((k) => (k === "reorder" ? i + 1 < last : k === "inflate" || i >= 2));
          if (kind === "inflate")
            steps.push({ kind, update: i, extraInputOctets: rng.int(0, FRAUD_OCTETS_MAX), extraOutputOctets: rng.int(1, FRAUD_OCTETS_MAX) });
          else if (kind === "replay") steps.push({ kind, of: rng.int(1, i - 1) });
          else if (kind === "reorder") steps.push({ kind, update: i + 1 });
          else if (kind === "backwards") steps.push({ kind, after: i - 1, minusInputOctets: minus });
        } else {
          // A duplicate of the Start is a duplicate too (the same Acct-Session-Id and Acct-Status-Type).
          const kind = radius.deal((k) => k !== "radius-backwards" || i >= 2);
          if (kind === "radius-duplicate") steps.push({ kind, of: i - 1 });
          else if (kind === "radius-backwards") steps.push({ kind, after: i - 1, minusInputOctets: minus });
          else if (kind === "radius-forged") steps.push({ kind, update: i });
        }
      }
      steps.push({ kind: "honest", update: i });
    }
    out.push({ session, strip, steps });
  }
  return out;
}

/** Attempts per kind in a plan. */
export function fraudCounts(plan: readonly SessionSteps[]): Record<FraudKind, number> {
  const counts = Object.fromEntries(FRAUD_KINDS.map((k) => [k, 0])) as Record<FraudKind, number>;
  for (const s of plan) for (const step of s.steps) if (step.kind !== "honest") counts[step.kind]++;
  return counts;
}
