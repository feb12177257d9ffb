import { describe, expect, it } from "vitest";
import { chargedMicros, expectedCounts, feeMicros, isBillable } from "./expected.ts";
import { FRAUD_KINDS, type SessionSteps } from "./fraud.ts";
import { buildPlan } from "./plan.ts";
import type { Population, RouterSpec } from "./scenario.ts";
import type { SessionPlan, UsageUpdate } from "./traffic.ts";

const router = (index: number, over: Partial<RouterSpec>): RouterSpec => ({
  index,
  name: `r${index}`,
  owner: 0,
  transport: "mqtt",
  attested: false,
  priceMicrosPerGb: 1_234_567,
  stakeMicros: 10_000_000,
  capacityBitsPerSecond: 1_000_000_000,
  ...over,
});
const updates = (totals: readonly [number, number][]): UsageUpdate[] =>
  totals.map(([inputOctets, outputOctets], i) => ({
    status: i === 0 ? 1 : i === totals.length - 1 ? 2 : 3,
    atSeconds: i * 300,
    seconds: i * 300,
    inputOctets,
    outputOctets,
    cause: i === totals.length - 1 ? 1 : 0,
  }));
const session = (index: number, client: number, routerIndex: number, u: UsageUpdate[]): SessionPlan => ({
  index,
  client,
  router: routerIndex,
  acctSessionId: String(index).padStart(32, "0"),
  updates: u,
});
const honest = (s: SessionPlan, strip = false): SessionSteps => ({ session: s, strip, steps: s.updates.map((_, update) => ({ kind: "honest", update })) });

// Routers: r0 native (owner 0), r1 RADIUS attested (owner 1), r2 RADIUS not attested (owner 1).
const population: Population = {
  seed: 0,
  routers: [
    router(0, {}),
    router(1, { owner: 1, transport: "radius", attested: true, priceMicrosPerGb: 500_000, stakeMicros: 50_000_000 }),
    router(2, { owner: 1, transport: "radius", priceMicrosPerGb: 700_000 }),
  ],
  owners: [
    { index: 0, topupMicros: 10_000_000 },
    { index: 1, topupMicros: 60_000_000 },
  ],
  clients: [
    { index: 0, routers: [0] },
    { index: 1, routers: [1, 2] },
  ],
};
// Totals 0, 4·10⁸, 1,000,000,123 and 2.5·10⁹ octets at 1,234,567 micros/GB:
// charged 0, 493,826 (493,826.8), 1,234,567 (1,234,567.15), 3,086,417 (3,086,417.5);
// amounts 493,826, 740,741, 1,851,850; fees on the cumulative charge (5 %, floored) 24,691
// (24,691.3), 61,728 (61,728.35), 154,320 (154,320.85): per update 24,691, 37,037, 92,592.
const s0 = session(
  0,
  0,
  0,
  updates([
    [0, 0],
    [100_000_000, 300_000_000],
    [200_000_000, 800_000_123],
    [500_000_000, 2_000_000_000],
  ]),
);
// RADIUS attested at 500,000/GB: 3·10⁹ octets, charged 1,500,000 in one amount, fee 75,000.
const s1 = session(
  1,
  1,
  1,
  updates([
    [0, 0],
    [1_000_000_000, 2_000_000_000],
  ]),
);
// RADIUS not attested: 7·10⁸ octets disputed.
const s2 = session(
  2,
  1,
  2,
  updates([
    [0, 0],
    [100_000_000, 600_000_000],
  ]),
);
// Native, vouchers dropped: 9·10⁸ octets disputed.
const s3 = session(
  3,
  0,
  0,
  updates([
    [0, 0],
    [400_000_000, 500_000_000],
  ]),
);

describe("expectedCounts", () => {
  it("bills each update's share of the cumulative charge, floored, and pays the owner less its share of a floored 5 % of the cumulative charge", () => {
    expect(chargedMicros(1_000_000_123n, 1_234_567n)).toBe(1_234_567n);
    expect(feeMicros(3_086_417n)).toBe(154_320n);
    const e = expectedCounts(population, [honest(s0)], [5_000_000n, 0n]);
    expect(e.clients[0]).toEqual({
      billedOctets: 2_500_000_000n,
      billedMicros: 3_086_417n,
      payoutsMicros: 3_086_417n - 154_320n,
      feesMicros: 24_691n + 37_037n + 92_592n,
      disputedOctets: 0n,
      disputedSessions: 0,
    });
    expect(e.owners[0]!.payoutsMicros).toBe(469_135n + 703_704n + 1_759_258n);
    expect(e.clientBalancesMicros).toEqual([5_000_000n - 3_086_417n, 0n]);
    // Owner 1 locks all of its 60,000,000 top-up: r1's 50,000,000 stake and r2's 10,000,000.
    expect(e.ownerBalancesMicros).toEqual([2_932_097n, 0n]);
    expect(e.ownerLockedMicros).toEqual([10_000_000n, 60_000_000n]);
  });

  it("takes the fee on the session's cumulative charge, not on each amount: two amounts of 30 micros pay 3 in fees, not 1 + 1", () => {
    const cheap: Population = { ...population, routers: [router(0, { priceMicrosPerGb: 1_000_000 })] };
    // 1,000,000 micros/GB is a micro per 1,000 octets: charged 30, then 60.
    const s = session(
      0,
      0,
      0,
      updates([
        [0, 0],
        [10_000, 20_000],
        [20_000, 40_000],
      ]),
    );
    const e = expectedCounts(cheap, [honest(s)], [1_000_000n, 0n]);
    expect(e.total).toMatchObject({ billedMicros: 60n, feesMicros: 3n, payoutsMicros: 57n });
  });

  it("bills RADIUS usage of an attested router, and counts the usage of a non-attested RADIUS router and a stripped native session as disputed, billing neither", () => {
    const e = expectedCounts(population, [honest(s0), honest(s1), honest(s2), honest(s3, true)], [5_000_000n, 2_000_000n]);
    expect(e.routers[1]).toMatchObject({
      billedOctets: 3_000_000_000n,
      billedMicros: 1_500_000n,
      feesMicros: 75_000n,
      payoutsMicros: 1_425_000n,
      disputedOctets: 0n,
    });
    expect(e.routers[2]).toMatchObject({ billedOctets: 0n, billedMicros: 0n, disputedOctets: 700_000_000n, disputedSessions: 1 });
    expect(e.routers[0]).toMatchObject({ billedOctets: 2_500_000_000n, billedMicros: 3_086_417n, disputedOctets: 900_000_000n, disputedSessions: 1 });
    expect(e.owners[1]).toMatchObject({ payoutsMicros: 1_425_000n, disputedOctets: 700_000_000n });
    expect(e.clients[1]).toMatchObject({ billedMicros: 1_500_000n, disputedOctets: 700_000_000n });
    expect(e.total).toMatchObject({
      billedOctets: 5_500_000_000n,
      billedMicros: 4_586_417n,
      feesMicros: 154_320n + 75_000n,
      disputedOctets: 1_600_000_000n,
      disputedSessions: 2,
    });
    expect(e.clientBalancesMicros).toEqual([5_000_000n - 3_086_417n, 2_000_000n - 1_500_000n]);
    expect(e.ownerBalancesMicros).toEqual([2_932_097n, 1_425_000n]);
  });

  it("counts fraud attempts by kind and the codes they must get, and bills nothing of them", () => {
    const withFraud: SessionSteps = {
      session: s0,
      strip: false,
      steps: [
        { kind: "honest", update: 0 },
        { kind: "honest", update: 1 },
        { kind: "inflate", update: 2, extraInputOctets: 5, extraOutputOctets: 10_000_000 },
        { kind: "replay", of: 1 },
        { kind: "honest", update: 2 },
        { kind: "backwards", after: 2, minusInputOctets: 1 },
        { kind: "honest", update: 3 },
      ],
    };
    const e = expectedCounts(population, [withFraud], [5_000_000n, 0n]);
    expect(e.frauds).toMatchObject({ inflate: 1, replay: 1, backwards: 1, reorder: 0 });
    expect(e.refused).toEqual({ JG_ERR_WIFI_VOUCHER_SIGNATURE: 1, JG_ERR_WIFI_VOUCHER_CHAIN: 1, JG_ERR_WIFI_COUNTER: 1 });
    expect(e.total).toEqual(expectedCounts(population, [honest(s0)], [5_000_000n, 0n]).total);
  });
});

describe("buildPlan", () => {
  it("conserves value: top-ups equal the balances, the locked stakes and the fees at the end", () => {
    const plan = buildPlan({ routers: 8, clients: 60, hours: 3, seed: 21, fraudRate: 0.1 });
    const e = plan.expected;
    const sum = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n);
    expect(sum(e.clientBalancesMicros) + sum(e.ownerBalancesMicros) + sum(e.ownerLockedMicros) + e.total.feesMicros).toBe(e.topupsMicros);
    expect(e.total.billedMicros).toBe(e.total.payoutsMicros + e.total.feesMicros);
    expect(e.total.billedMicros).toBeGreaterThan(0n);
    expect(e.total.disputedSessions).toBeGreaterThan(0);
  });

  it("tops every client up to at least twice what its sessions could cost, so no balance runs out", () => {
    const plan = buildPlan({ routers: 8, clients: 60, hours: 3, seed: 21, fraudRate: 0.1 });
    plan.expected.clients.forEach((c, i) => {
      expect(plan.clientTopupsMicros[i]! % 1_000_000n).toBe(0n);
      expect(plan.clientTopupsMicros[i]!).toBeGreaterThanOrEqual(2n * c.billedMicros + 1_000_000n);
      expect(plan.expected.clientBalancesMicros[i]!).toBeGreaterThan(0n);
    });
  });

  it("with the integration test's numbers (4 routers, 20 clients, 30 minutes, fraud rate 0.5, seed 9) tries every kind of fraud and has billed and disputed sessions of both transports", () => {
    const plan = buildPlan({ routers: 4, clients: 20, hours: 0.5, seed: 9, fraudRate: 0.5 });
    expect(plan.durationSeconds).toBe(1800);
    for (const kind of FRAUD_KINDS) expect(plan.expected.frauds[kind], kind).toBeGreaterThan(0);
    const kinds = new Set(
      plan.steps.map((s) => `${plan.population.routers[s.session.router]!.transport} ${isBillable(plan.population, s) ? "billed" : "disputed"}`),
    );
    expect([...kinds].sort()).toEqual(["mqtt billed", "mqtt disputed", "radius billed", "radius disputed"]);
  });
});
