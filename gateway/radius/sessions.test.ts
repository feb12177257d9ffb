import { describe, expect, it } from "vitest";
import { ACCT_STATUS, type AccountingUsage } from "./packet.ts";
import { judgeUsage, NO_PREVIOUS, nextState, type SessionState, usageSessionId } from "./sessions.ts";
import { TEST_CLIENT_ID, TEST_ROUTER_ID } from "./testing.ts";

const GIGAWORD = 2 ** 32;

function usage(u: Partial<AccountingUsage> = {}): AccountingUsage {
  return {
    status: ACCT_STATUS.interimUpdate,
    acctSessionId: "s-1",
    clientId: TEST_CLIENT_ID,
    inOctets: 0,
    inGigawords: 0,
    outOctets: 0,
    outGigawords: 0,
    seconds: 0,
    cause: 0,
    ...u,
  };
}

/** The state after taking each of `updates` in turn. */
function after(...updates: AccountingUsage[]): SessionState {
  let state: SessionState | null = null;
  for (const [i, u] of updates.entries()) {
    expect(judgeUsage(state, u)).toEqual({ take: true });
    state = nextState(state, u, new Uint8Array(32).fill(i + 1), 1000 + i);
  }
  return state!;
}

const codeOf = (state: SessionState | null, u: AccountingUsage) => {
  const v = judgeUsage(state, u);
  return v.take ? "take" : `${v.refusal.code}${v.answer ? " answered" : " dropped"}`;
};

describe("judgeUsage", () => {
  it("takes a session's first update whatever its status, and Start, Interim-Updates and Stop in order", () => {
    expect(codeOf(null, usage({ status: ACCT_STATUS.stop, seconds: 9 }))).toBe("take");
    const s = after(
      usage({ status: ACCT_STATUS.start }),
      usage({ inOctets: 10, seconds: 60 }),
      usage({ inOctets: 20, outOctets: 5, seconds: 120 }),
      usage({ status: ACCT_STATUS.stop, inOctets: 20, outOctets: 5, seconds: 121, cause: 1 }),
    );
    expect(s).toMatchObject({ started: true, stopped: true, inputOctets: 20n, outputOctets: 5n, seconds: 121, updatedAtMs: 1003 });
    expect(s.lastHash).toEqual(new Uint8Array(32).fill(4));
  });

  it("answers and does not take a Start or a Stop again, an update after the Stop, or an Interim-Update with the last counters", () => {
    const started = after(usage({ status: ACCT_STATUS.start }));
    expect(codeOf(started, usage({ status: ACCT_STATUS.start }))).toBe("JG_ERR_RADIUS_DUPLICATE answered");
    const interim = after(usage({ status: ACCT_STATUS.start }), usage({ inOctets: 10, seconds: 60 }));
    expect(codeOf(interim, usage({ inOctets: 10, seconds: 60 }))).toBe("JG_ERR_RADIUS_DUPLICATE answered");
    expect(codeOf(interim, usage({ inOctets: 10, seconds: 61 }))).toBe("take");
    // A Stop with the last Interim-Update's counters is taken: its status is new.
    expect(codeOf(interim, usage({ status: ACCT_STATUS.stop, inOctets: 10, seconds: 60 }))).toBe("take");
    const stopped = after(usage({ status: ACCT_STATUS.stop, inOctets: 10, seconds: 60 }));
    expect(codeOf(stopped, usage({ status: ACCT_STATUS.stop, inOctets: 10, seconds: 60 }))).toBe("JG_ERR_RADIUS_DUPLICATE answered");
    expect(codeOf(stopped, usage({ inOctets: 11, seconds: 61 }))).toBe("JG_ERR_RADIUS_DUPLICATE answered");
  });

  it("answers and does not take counters below the last taken: octets in, out, or seconds", () => {
    const s = after(usage({ inOctets: 100, outOctets: 50, seconds: 60 }));
    expect(codeOf(s, usage({ inOctets: 99, outOctets: 60, seconds: 70 }))).toBe("JG_ERR_RADIUS_COUNTER answered");
    expect(codeOf(s, usage({ inOctets: 110, outOctets: 49, seconds: 70 }))).toBe("JG_ERR_RADIUS_COUNTER answered");
    expect(codeOf(s, usage({ inOctets: 110, outOctets: 60, seconds: 59 }))).toBe("JG_ERR_RADIUS_COUNTER answered");
    expect(codeOf(s, usage({ status: ACCT_STATUS.stop, inOctets: 0, seconds: 70 }))).toBe("JG_ERR_RADIUS_COUNTER answered");
  });

  it("combines gigawords: a 32-bit counter that wrapped with its gigawords goes forward, without them backwards", () => {
    const s = after(usage({ inOctets: GIGAWORD - 10, outOctets: GIGAWORD - 1, seconds: 60 }));
    expect(codeOf(s, usage({ inOctets: 5, inGigawords: 1, outOctets: GIGAWORD - 1, seconds: 70 }))).toBe("take");
    expect(codeOf(s, usage({ inOctets: 5, inGigawords: 0, outOctets: GIGAWORD - 1, seconds: 70 }))).toBe("JG_ERR_RADIUS_COUNTER answered");
    expect(codeOf(s, usage({ inOctets: GIGAWORD - 10, outOctets: 0, outGigawords: 1, seconds: 70 }))).toBe("take");
    const wrapped = after(usage({ inOctets: GIGAWORD - 10 }), usage({ inOctets: 5, inGigawords: 1, seconds: 1 }));
    expect(wrapped.inputOctets).toBe(2n ** 32n + 5n);
  });

  it("drops, unanswered, another User-Name in the session", () => {
    const s = after(usage());
    expect(codeOf(s, usage({ clientId: "0".repeat(32), seconds: 9 }))).toBe("JG_ERR_RADIUS_PACKET dropped");
  });
});

describe("usageSessionId", () => {
  it("is 16 bytes of blake2b over the router id and Acct-Session-Id: the same for the same pair, another for another router or session", () => {
    const a = usageSessionId(TEST_ROUTER_ID, "8023-ab");
    expect(a.length).toBe(16);
    expect(Buffer.from(usageSessionId(TEST_ROUTER_ID, "8023-ab")).equals(a)).toBe(true);
    expect(Buffer.from(usageSessionId(TEST_ROUTER_ID, "8023-ac")).equals(a)).toBe(false);
    expect(Buffer.from(usageSessionId("1".repeat(32), "8023-ab")).equals(a)).toBe(false);
    expect(NO_PREVIOUS).toEqual(new Uint8Array(32));
  });
});
