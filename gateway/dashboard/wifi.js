/**
 * The Wi-Fi panel's figures, from three reads of the API: the routers' totals as the wifi-billing
 * service keeps them (`GET /v1/wifi/routers`: sessions started and open, octets billed, what
 * clients paid and owners earned, octets disputed; gateway/wifi/backend.ts WifiRouterView), the
 * service's own counters (`GET /v1/wifi/stats`: octets disputed and refusals across all routers;
 * WifiStatsView) and a bounded window of the newest wifi-billing ledger entries
 * (`GET /v1/entries?service=wifi-billing`; gateway/ledger/types.ts EntryView with its Wi-Fi
 * fields). Pure functions over those views: sums
 * of octets and micro-units are exact (BigInt; they may pass 2^53), format.js writes them.
 * Plain ES module: the browser loads it as is, and wifi.test.ts checks it under vitest.
 */
import { toBigInt } from "./format.js";

/** Reasons of entries that bill a client (services/wifi-billing LEDGER_REASONS): usage, and the last, partial bill of a balance that ran out. */
export const BILLED_REASONS = ["usage", "balance-exhausted"];
/** Reasons of entries of a session's usage, billed or not: router-attested usage of a router without attested billing is `disputed`. */
export const SESSION_REASONS = [...BILLED_REASONS, "disputed"];
/** Widths of the chart's time buckets, smallest first: spans a reader tells apart at a glance (a second to a day). */
export const BUCKET_WIDTHS_MS = [1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000];

const reasonOf = (entry) => entry.reason ?? entry.kind;
const big = (value) => toBigInt(value) ?? 0n;

/** The smallest of BUCKET_WIDTHS_MS that covers `spanMs` in at most `bucketsMax` buckets (the largest when none does). */
export function bucketWidthMs(spanMs, bucketsMax) {
  for (const width of BUCKET_WIDTHS_MS) if (Math.floor(spanMs / width) + 1 <= bucketsMax) return width;
  return BUCKET_WIDTHS_MS[BUCKET_WIDTHS_MS.length - 1];
}

/**
 * Octets billed and disputed per time bucket (by the block time of their entries), oldest first,
 * empty buckets included so the chart's bars stand where they happened: `times` are the buckets'
 * starts in Unix seconds (uPlot's x), `billed` and `disputed` octets as bigints, `widthMs` the
 * bucket (null without usage). At most `bucketsMax` buckets, unless the entries span more than
 * that many days.
 */
export function octetsOverTime(entries, bucketsMax) {
  const usage = entries.filter((e) => SESSION_REASONS.includes(reasonOf(e)) && Number.isFinite(e.timeMs));
  if (usage.length === 0) return { widthMs: null, times: [], billed: [], disputed: [] };
  let first = Infinity;
  let last = -Infinity;
  for (const e of usage) {
    first = Math.min(first, e.timeMs);
    last = Math.max(last, e.timeMs);
  }
  const widthMs = bucketWidthMs(last - first, bucketsMax);
  const start = Math.floor(first / widthMs) * widthMs;
  const count = Math.floor((last - start) / widthMs) + 1;
  const times = Array.from({ length: count }, (_, i) => (start + i * widthMs) / 1000);
  const billed = times.map(() => 0n);
  const disputed = times.map(() => 0n);
  for (const e of usage) {
    const i = Math.floor((e.timeMs - start) / widthMs);
    if (reasonOf(e) === "disputed") disputed[i] += big(e.octets);
    else billed[i] += big(e.octets);
  }
  return { widthMs, times, billed, disputed };
}

/**
 * Sessions seen in the entries (newest first, as the ledger lists them), newest first, at most
 * `max`: each with its router, client, the octets and amount of its entries summed, the reason of
 * its newest entry, whether any of its usage was router-attested (no client voucher), the newest
 * entry's id and time, and how many entries it has. A session is its router and its id (ids are
 * the router's: services/wifi-billing/README.md, `session/` ⌢ router ⌢ session).
 */
export function recentSessions(entries, max) {
  const sessions = new Map();
  for (const e of entries) {
    if (e.session === null || e.session === undefined || !SESSION_REASONS.includes(reasonOf(e))) continue;
    const key = `${e.router}/${e.session}`;
    let s = sessions.get(key);
    if (s === undefined) {
      if (sessions.size >= max) continue;
      s = {
        key,
        router: e.router,
        session: e.session,
        client: e.client ?? null,
        octets: 0n,
        amountMicros: 0n,
        reason: reasonOf(e),
        attested: false,
        lastId: e.id,
        timeMs: e.timeMs,
        entries: 0,
      };
      sessions.set(key, s);
    }
    s.octets += big(e.octets);
    s.amountMicros += big(e.amountMicros);
    s.attested ||= e.attested === true;
    s.entries += 1;
  }
  return [...sessions.values()];
}

/** Compares two decimal strings of integers, as bigints (larger first). */
const byLarger = (a, b) => {
  const x = big(a);
  const y = big(b);
  return x === y ? 0 : x > y ? -1 : 1;
};

/** The routers with the most octets billed, then the most paid out to their owners, then by id; at most `max`. */
export function topRouters(routers, max) {
  return [...routers]
    .sort(
      (a, b) =>
        byLarger(a.usage.billedOctets, b.usage.billedOctets) ||
        byLarger(a.usage.earnedMicros, b.usage.earnedMicros) ||
        (a.router < b.router ? -1 : a.router > b.router ? 1 : 0),
    )
    .slice(0, max);
}

/**
 * The routers' totals summed: sessions open and closed (started less open: stopped, or ended by a
 * balance running out), octets billed, what clients paid (fees included), what owners were paid,
 * octets disputed; bigints.
 */
export function routerTotals(routers) {
  const totals = { routers: routers.length, started: 0n, open: 0n, closed: 0n, billedOctets: 0n, billedMicros: 0n, earnedMicros: 0n, disputedOctets: 0n };
  for (const r of routers) {
    const u = r.usage;
    totals.started += big(u.sessionsStarted);
    totals.open += big(u.openSessions);
    totals.billedOctets += big(u.billedOctets);
    totals.billedMicros += big(u.billedMicros);
    totals.earnedMicros += big(u.earnedMicros);
    totals.disputedOctets += big(u.disputedOctets);
  }
  totals.closed = totals.started - totals.open;
  return totals;
}

/**
 * The dispute and refusal figures of the service's counters (WifiStatsView), since it started and
 * across all its routers, as bigints: envelopes refused, octets disputed, and every refusal
 * (envelopes, registrations, operator actions) by its code, most first, then by code; codes
 * counted zero are left out.
 */
export function serviceCounts(stats) {
  const codes = Object.entries(stats.refusedByCode ?? {})
    .map(([code, count]) => ({ code, count: big(count) }))
    .filter((c) => c.count > 0n)
    .sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  return { slot: stats.slot, refused: big(stats.envelopesRejected), disputedOctets: big(stats.disputedOctets), codes };
}

/**
 * The window of newest entries after a read of newer ones: `fresh` (newest first, read down to the
 * window's newest or to the read's bound) on top; when the read stopped before reaching the window
 * (`reached` false: more arrived than a read takes), the old window is not contiguous with it and is
 * dropped. At most `max` entries, newest first, each id once.
 */
export function mergeWindow(window, fresh, reached, max) {
  const byId = new Map();
  for (const e of [...fresh, ...(reached ? window : [])]) if (!byId.has(e.id)) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => b.id - a.id).slice(0, max);
}
