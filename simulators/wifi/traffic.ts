/**
 * The honest traffic of `jamgate sim wifi`: each client's Wi-Fi sessions over the run, in the shape
 * of RADIUS accounting (RFC 2866 §5.1 Acct-Status-Type): a Start, an Interim-Update every
 * `INTERIM_INTERVAL_SECONDS` (hostapd's and CoovaChilli's usual Acct-Interim-Interval), a Stop
 * with its terminate cause (§5.10), counters cumulative over the session (octets from and to the
 * client, Acct-Input/Output-Octets; session time, Acct-Session-Time).
 *
 * Sessions arrive by a non-homogeneous Poisson process, drawn by thinning (Lewis & Shedler 1979,
 * "Simulation of nonhomogeneous Poisson processes by thinning"), at a rate following
 * `HOURLY_PROFILE`; a client has one session at a time. The profile is an assumed shape of
 * residential broadband use over a day (trough at 04:00–05:00, peak at 21:00), not measured data.
 */
import { rngFor } from "../energy/random.ts";
import type { Population } from "./scenario.ts";

/** RFC 2866 §5.1 Acct-Status-Type. */
export const STATUS_START = 1;
export const STATUS_STOP = 2;
export const STATUS_INTERIM = 3;
export type AcctStatus = typeof STATUS_START | typeof STATUS_STOP | typeof STATUS_INTERIM;
/** RFC 2866 §5.10 Acct-Terminate-Cause: the client left, it idled out, the session hit its limit (here: the run's end). */
export const CAUSE_USER_REQUEST = 1;
export const CAUSE_IDLE_TIMEOUT = 4;
export const CAUSE_SESSION_TIMEOUT = 5;

/** Seconds between Interim-Updates: 300 s, the value hostapd (radius_acct_interim_interval) and CoovaChilli deployments commonly use. */
export const INTERIM_INTERVAL_SECONDS = 300;
/** Relative session arrival rate per hour of the day (UTC), peak 1. */
export const HOURLY_PROFILE: readonly number[] = [
  0.35, 0.2, 0.12, 0.08, 0.06, 0.07, 0.12, 0.22, 0.32, 0.4, 0.45, 0.5, 0.55, 0.55, 0.55, 0.58, 0.63, 0.7, 0.8, 0.9, 0.97, 1.0, 0.9, 0.6,
];
/** Sessions a client starts per hour at the profile's peak. */
export const SESSIONS_PER_HOUR_PEAK = 1.5;
/** Mean session length (exponential), clipped to [SESSION_SECONDS_MIN, SESSION_SECONDS_MAX]. */
export const SESSION_SECONDS_MEAN = 20 * 60;
export const SESSION_SECONDS_MIN = 2 * 60;
export const SESSION_SECONDS_MAX = 60 * 60;
/** Least gap between a client's sessions. */
export const SESSION_GAP_SECONDS_MIN = 60;
/** Median throughput of an ordinary session (log-normal, σ 1): browsing and video at a few Mbit/s. */
export const RATE_BITS_PER_SECOND_MEDIAN = 2_000_000;
/** A share of sessions are downloads at tens of Mbit/s: they pass 2^32 octets, so RADIUS counters wrap into Acct-Gigawords (RFC 2869 §5.1). */
export const HEAVY_SESSION_SHARE = 0.05;
export const HEAVY_RATE_BITS_PER_SECOND_MEDIAN = 60_000_000;
/** Lowest session throughput: a phone idling on the network. */
export const RATE_BITS_PER_SECOND_MIN = 64_000;
/** Least octets in each direction per update after the Start: every update moves the counters, so each has something to bill. */
export const UPDATE_OCTETS_MIN = 1_000;
/** Updates generated in all: each is an envelope or an Accounting-Request, kept in memory with its session. */
export const UPDATES_MAX = 2_000_000;

export interface UsageUpdate {
  readonly status: AcctStatus;
  /** When the router sends it: simulated seconds from the run's start. */
  readonly atSeconds: number;
  /** Acct-Session-Time: seconds since the session's Start. */
  readonly seconds: number;
  /** Cumulative octets from the client (Acct-Input-Octets with its Gigawords), < 2^53. */
  readonly inputOctets: number;
  /** Cumulative octets to the client (Acct-Output-Octets with its Gigawords), < 2^53. */
  readonly outputOctets: number;
  /** Acct-Terminate-Cause on the Stop, 0 before. */
  readonly cause: number;
}

export interface SessionPlan {
  /** Index among all sessions, ordered by start time, then client. */
  readonly index: number;
  readonly client: number;
  readonly router: number;
  /** Native: the session id, 16 bytes as hex; RADIUS: the Acct-Session-Id, 16 hex digits as hostapd makes them. */
  readonly acctSessionId: string;
  readonly updates: readonly UsageUpdate[];
}

/** The profile's rate at `hourOfDay` (fractional), linear between whole hours. */
export function profileAt(hourOfDay: number): number {
  const h = ((hourOfDay % 24) + 24) % 24;
  const i = Math.floor(h);
  const next = HOURLY_PROFILE[(i + 1) % 24]!;
  return HOURLY_PROFILE[i]! + (next - HOURLY_PROFILE[i]!) * (h - i);
}

function hexOfWords(words: readonly number[]): string {
  return words.map((w) => (w >>> 0).toString(16).padStart(8, "0")).join("");
}

/**
 * Every client's sessions over `durationSeconds` from `startIso`, sorted by start time (then
 * client). A session that would run past the end stops at the end, with cause Session-Timeout.
 */
export function generateSessions(population: Population, startIso: string, durationSeconds: number): SessionPlan[] {
  const startMs = Date.parse(startIso);
  if (!Number.isFinite(startMs)) throw new RangeError(`not an ISO time: ${startIso}`);
  if (!Number.isSafeInteger(durationSeconds) || durationSeconds < SESSION_SECONDS_MIN) throw new RangeError(`a run lasts at least ${SESSION_SECONDS_MIN} s`);
  const startHour = (startMs % 86_400_000) / 3_600_000;
  const peakPerSecond = SESSIONS_PER_HOUR_PEAK / 3600;
  const drafts: Omit<SessionPlan, "index">[] = [];
  let updates = 0;
  for (const client of population.clients) {
    const rng = rngFor(population.seed, "sessions", client.index);
    let t = 0;
    for (;;) {
      // Thinning: candidates at the peak rate, each kept with probability rate(t) / peak.
      t += -Math.log(1 - rng.next()) / peakPerSecond;
      if (t >= durationSeconds - SESSION_SECONDS_MIN) break;
      if (!rng.chance(profileAt(startHour + t / 3600))) continue;
      const start = Math.floor(t);
      const router = population.routers[rng.pick(client.routers)]!;
      let length = Math.round(-Math.log(1 - rng.next()) * SESSION_SECONDS_MEAN);
      length = Math.min(SESSION_SECONDS_MAX, Math.max(SESSION_SECONDS_MIN, length));
      let cause = rng.chance(0.3) ? CAUSE_IDLE_TIMEOUT : CAUSE_USER_REQUEST;
      if (start + length > durationSeconds) {
        length = durationSeconds - start;
        cause = CAUSE_SESSION_TIMEOUT;
      }
      const heavy = rng.chance(HEAVY_SESSION_SHARE);
      const median = heavy ? HEAVY_RATE_BITS_PER_SECOND_MEDIAN : RATE_BITS_PER_SECOND_MEDIAN;
      const rate = Math.min(router.capacityBitsPerSecond / 4, Math.max(RATE_BITS_PER_SECOND_MIN, median * Math.exp((heavy ? 0.3 : 1) * rng.normal())));
      const downShare = rng.uniform(0.75, 0.95);
      const acctSessionId =
        router.transport === "radius"
          ? hexOfWords([rng.int(0, 2 ** 32 - 1), rng.int(0, 2 ** 32 - 1)]).toUpperCase()
          : hexOfWords([0, 1, 2, 3].map(() => rng.int(0, 2 ** 32 - 1)));
      const list: UsageUpdate[] = [{ status: STATUS_START, atSeconds: start, seconds: 0, inputOctets: 0, outputOctets: 0, cause: 0 }];
      let input = 0;
      let output = 0;
      let seconds = 0;
      while (seconds < length) {
        const next = Math.min(length, seconds + INTERIM_INTERVAL_SECONDS);
        const dt = next - seconds;
        // Each update within half the link over its interval: the service's capacity check (octets × 8 ≤ capacity × seconds) holds with room.
        const capOctets = Math.floor((router.capacityBitsPerSecond * dt) / 16);
        const octets = Math.min(capOctets, Math.round(((rate * dt) / 8) * Math.exp(0.3 * rng.normal())));
        const down = Math.max(UPDATE_OCTETS_MIN, Math.round(octets * downShare));
        const up = Math.max(UPDATE_OCTETS_MIN, octets - down);
        input += up;
        output += down;
        seconds = next;
        const stop = seconds === length;
        list.push({
          status: stop ? STATUS_STOP : STATUS_INTERIM,
          atSeconds: start + seconds,
          seconds,
          inputOctets: input,
          outputOctets: output,
          cause: stop ? cause : 0,
        });
      }
      updates += list.length;
      if (updates > UPDATES_MAX) throw new RangeError(`more than UPDATES_MAX ${UPDATES_MAX} usage updates: fewer clients or hours`);
      drafts.push({ client: client.index, router: router.index, acctSessionId, updates: list });
      t = start + length + SESSION_GAP_SECONDS_MIN;
    }
  }
  drafts.sort((a, b) => a.updates[0]!.atSeconds - b.updates[0]!.atSeconds || a.client - b.client);
  return drafts.map((d, index) => ({ index, ...d }));
}
