/** The Wi-Fi panel's figures: sums exact past 2^53, sessions and top routers in order, the chart's buckets, the entries' window. */
import { describe, expect, it } from "vitest";
import {
  bucketWidthMs,
  mergeWindow,
  octetsOverTime,
  recentSessions,
  routerTotals,
  serviceCounts,
  topRouters,
  type WifiEntryFields,
  type WifiRouterFields,
} from "./wifi.js";

const R1 = "a1".repeat(16);
const R2 = "b2".repeat(16);
const R3 = "c3".repeat(16);
const CLIENT = "cc".repeat(16);
const S1 = "51".repeat(16);
const S2 = "52".repeat(16);
const T0 = Date.parse("2026-12-07T15:00:00Z");

/** A Wi-Fi ledger entry (gateway/ledger/types.ts EntryView, the fields the panel reads). */
function entry(id: number, reason: string, fields: Partial<WifiEntryFields> = {}): WifiEntryFields {
  return {
    id,
    kind: reason,
    reason,
    timeMs: T0 + id * 1_000,
    session: S1,
    router: R1,
    client: CLIENT,
    octets: "1000000000",
    amountMicros: "500000",
    attested: false,
    ...fields,
  };
}

function router(id: string, usage: Partial<WifiRouterFields["usage"]>): WifiRouterFields {
  return {
    router: id,
    usage: { sessionsStarted: "0", openSessions: 0, billedOctets: "0", billedMicros: "0", earnedMicros: "0", disputedOctets: "0", ...usage },
  };
}

describe("routerTotals", () => {
  it("sums the routers' totals exactly (u64 octets past 2^53) and counts closed sessions as started less open", () => {
    const totals = routerTotals([
      router(R1, {
        sessionsStarted: "5",
        openSessions: 2,
        billedOctets: "18446744073709551615",
        billedMicros: "9007199254740993",
        earnedMicros: "100",
        disputedOctets: "7",
      }),
      router(R2, { sessionsStarted: "3", openSessions: 1, billedOctets: "1", billedMicros: "1", earnedMicros: "1", disputedOctets: "0" }),
    ]);
    expect(totals).toEqual({
      routers: 2,
      started: 8n,
      open: 3n,
      closed: 5n,
      billedOctets: 18446744073709551616n,
      billedMicros: 9007199254740994n,
      earnedMicros: 101n,
      disputedOctets: 7n,
    });
    expect(routerTotals([])).toMatchObject({ routers: 0, open: 0n, closed: 0n, billedOctets: 0n });
  });
});

describe("topRouters", () => {
  it("orders by octets billed (compared as integers, not text), then by what the owner was paid, then by id, and keeps at most max", () => {
    const routers = [
      router(R3, { billedOctets: "900", earnedMicros: "1" }),
      router(R1, { billedOctets: "1000", earnedMicros: "1" }),
      router(R2, { billedOctets: "1000", earnedMicros: "2" }),
      router("d4".repeat(16), { billedOctets: "0" }),
    ];
    expect(topRouters(routers, 10).map((r) => r.router)).toEqual([R2, R1, R3, "d4".repeat(16)]);
    expect(topRouters(routers, 2).map((r) => r.router)).toEqual([R2, R1]);
    // Equal totals: by id.
    expect(topRouters([router(R2, {}), router(R1, {})], 5).map((r) => r.router)).toEqual([R1, R2]);
  });
});

describe("recentSessions", () => {
  it("groups a session's entries (router and session id), newest first, with octets and amounts summed and its newest entry's reason", () => {
    const entries = [
      entry(9, "balance-exhausted", { octets: "4000000000", amountMicros: "500000" }),
      entry(8, "disputed", { session: S2, router: R2, octets: "7", amountMicros: "0", attested: true }),
      entry(7, "topup", { session: null, router: null, octets: "0", amountMicros: "3000000" }),
      entry(6, "usage", { octets: "3000000000", amountMicros: "1500000" }),
      entry(5, "usage", { octets: "2000000000", amountMicros: "1000000" }),
      // The same session id on another router is another session.
      entry(4, "usage", { router: R3, octets: "1", amountMicros: "0" }),
      entry(3, "stake-lock", { session: null, amountMicros: "1000000" }),
    ];
    const sessions = recentSessions(entries, 10);
    expect(sessions.map((s) => [s.router, s.session, s.reason, s.octets, s.amountMicros, s.attested, s.entries, s.lastId])).toEqual([
      [R1, S1, "balance-exhausted", 9_000_000_000n, 3_000_000n, false, 3, 9],
      [R2, S2, "disputed", 7n, 0n, true, 1, 8],
      [R3, S1, "usage", 1n, 0n, false, 1, 4],
    ]);
    expect(sessions[0]!.timeMs).toBe(T0 + 9_000);
    // At most max sessions; the ones kept still sum all their entries.
    const two = recentSessions(entries, 2);
    expect(two.map((s) => s.lastId)).toEqual([9, 8]);
    expect(two[0]!.octets).toBe(9_000_000_000n);
    expect(recentSessions([], 5)).toEqual([]);
  });
});

describe("octetsOverTime (the billed chart)", () => {
  it("picks the smallest bucket that spans the time in at most the buckets asked", () => {
    expect(bucketWidthMs(0, 60)).toBe(1_000);
    expect(bucketWidthMs(59_000, 60)).toBe(1_000);
    expect(bucketWidthMs(60_000, 60)).toBe(5_000);
    expect(bucketWidthMs(3_600_000, 60)).toBe(60_000 * 5);
    expect(bucketWidthMs(1e12, 60)).toBe(86_400_000);
  });

  it("sums billed (usage and balance-exhausted) and disputed octets per bucket, oldest first, empty buckets in between, other entries left out", () => {
    const series = octetsOverTime(
      [
        entry(1, "usage", { timeMs: T0 + 100, octets: "1000000000" }),
        entry(2, "usage", { timeMs: T0 + 900, octets: "18446744073709551615" }),
        entry(3, "topup", { timeMs: T0 + 1_500, octets: "0", amountMicros: "5" }),
        entry(4, "disputed", { timeMs: T0 + 2_000, octets: "7" }),
        entry(5, "balance-exhausted", { timeMs: T0 + 3_999, octets: "3" }),
      ],
      60,
    );
    expect(series.widthMs).toBe(1_000);
    expect(series.times).toEqual([T0 / 1000, T0 / 1000 + 1, T0 / 1000 + 2, T0 / 1000 + 3]);
    expect(series.billed).toEqual([18446744073709551615n + 1_000_000_000n, 0n, 0n, 3n]);
    expect(series.disputed).toEqual([0n, 0n, 7n, 0n]);
  });

  it("keeps to the buckets asked over a long span, and is empty without usage", () => {
    const series = octetsOverTime([entry(1, "usage", { timeMs: T0 }), entry(2, "usage", { timeMs: T0 + 7_200_000 })], 60);
    expect(series.widthMs).toBe(300_000);
    expect(series.times.length).toBeLessThanOrEqual(60);
    expect(series.billed.reduce((a, b) => a + b, 0n)).toBe(2_000_000_000n);
    expect(octetsOverTime([entry(1, "topup")], 60)).toEqual({ widthMs: null, times: [], billed: [], disputed: [] });
  });
});

describe("serviceCounts (the service's counters: disputes and refusals across all routers)", () => {
  it("reads envelopes refused and octets disputed exactly past 2^53, and every refusal by code, most first, then by code, zeros left out", () => {
    const counts = serviceCounts({
      slot: 40,
      envelopesRejected: "9007199254740993",
      disputedOctets: "18446744073709551615",
      refusedByCode: { JG_ERR_WIFI_SESSION: "2", JG_ERR_WIFI_VOUCHER_SIGNATURE: "9007199254740993", JG_ERR_WIFI_COUNTER: "2", JG_ERR_WIFI_BODY: "0" },
    });
    expect(counts).toEqual({
      slot: 40,
      refused: 9_007_199_254_740_993n,
      disputedOctets: 18_446_744_073_709_551_615n,
      codes: [
        { code: "JG_ERR_WIFI_VOUCHER_SIGNATURE", count: 9_007_199_254_740_993n },
        { code: "JG_ERR_WIFI_COUNTER", count: 2n },
        { code: "JG_ERR_WIFI_SESSION", count: 2n },
      ],
    });
    expect(serviceCounts({ slot: 0, envelopesRejected: "0", disputedOctets: "0", refusedByCode: {} })).toEqual({
      slot: 0,
      refused: 0n,
      disputedOctets: 0n,
      codes: [],
    });
  });
});

describe("mergeWindow (the newest entries kept)", () => {
  const ids = (list: readonly { id: number }[]) => list.map((e) => e.id);
  it("puts newer entries on top of the window, each id once, at most max", () => {
    const window = [{ id: 5 }, { id: 4 }, { id: 3 }];
    expect(ids(mergeWindow(window, [{ id: 7 }, { id: 6 }, { id: 5 }], true, 10))).toEqual([7, 6, 5, 4, 3]);
    expect(ids(mergeWindow(window, [{ id: 7 }, { id: 6 }], true, 4))).toEqual([7, 6, 5, 4]);
  });
  it("drops the old window when the read did not reach it: the two would not be contiguous", () => {
    expect(ids(mergeWindow([{ id: 5 }, { id: 4 }], [{ id: 90 }, { id: 89 }], false, 10))).toEqual([90, 89]);
  });
});
