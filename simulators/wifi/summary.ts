/**
 * What a run ended with, beside what the independent count (expected.ts) says it must: totals,
 * per client, per router and per owner, refusals by code, fraud attempts by kind with what each
 * got, disputed usage, and whether value was conserved. Every difference is listed in
 * `mismatches`; a run is right when that list is empty.
 *
 * Observed billing comes from the service's ledger (entries of every slot of the run) and its
 * account records (through `GET /v1/wifi/accounts/:id`); a router's own totals
 * (`GET /v1/wifi/routers/:id`) are checked against the ledger's too. Numbers in the JSON are
 * integers: octets and micros stay below 2^53 in any run the CLI allows (checked).
 */
import type { LedgerEntry } from "../../services/wifi-billing/types.ts";
import { FRAUD_CODES, FRAUD_KINDS, type FraudKind, NATIVE_FRAUD_KINDS } from "./fraud.ts";
import type { WifiPlan } from "./plan.ts";

export interface Observed {
  /** Ledger entries of the run's slots, in slot order. */
  readonly entries: readonly { readonly slot: number; readonly entry: LedgerEntry }[];
  /** Account records by index. */
  readonly clients: readonly { readonly balanceMicros: bigint; readonly lockedMicros: bigint }[];
  readonly owners: readonly { readonly balanceMicros: bigint; readonly lockedMicros: bigint }[];
  /** Each router's usage totals as the gateway shows them (decimal strings). */
  readonly routers: readonly Readonly<Record<string, string>>[];
  readonly feesMicros: bigint;
  /** Refusals devices were told (down/errors), by code. */
  readonly refusedNative: Readonly<Record<string, number>>;
  /** RADIUS requests the listener refused, by code (its metrics). */
  readonly refusedRadius: Readonly<Record<string, number>>;
  /** Per fraud kind, what each attempt got: a code, "settled" (taken!), "answered" (RADIUS) or "sent" (no answer to wait for). */
  readonly fraudVerdicts: Readonly<Record<FraudKind, Readonly<Record<string, number>>>>;
  /** Honest updates refused, by code: none, in a right run. */
  readonly honestRefused: Readonly<Record<string, number>>;
  readonly ids: { readonly clients: readonly string[]; readonly owners: readonly string[]; readonly routers: readonly string[] };
  readonly blocks: number;
  readonly startSlot: number;
  readonly wallSeconds: number;
}

interface Billing {
  billedOctets: number;
  billedMicros: number;
  payoutsMicros: number;
  feesMicros: number;
  disputedOctets: number;
}

export interface WifiSummary {
  readonly billedOctets: number;
  readonly billedMicros: number;
  readonly payoutsMicros: number;
  readonly feesMicros: number;
  readonly refused: Readonly<Record<string, number>>;
  readonly disputed: { readonly sessions: number; readonly octets: number };
  readonly expected: {
    readonly billedOctets: number;
    readonly billedMicros: number;
    readonly payoutsMicros: number;
    readonly feesMicros: number;
    readonly refused: Readonly<Record<string, number>>;
    readonly disputed: { readonly sessions: number; readonly octets: number };
  };
  readonly frauds: Readonly<
    Record<FraudKind, { readonly attempts: number; readonly expectedCode: string; readonly verdicts: Readonly<Record<string, number>> }>
  >;
  readonly honestRefused: Readonly<Record<string, number>>;
  readonly clients: readonly (Billing & { account: string; balanceMicros: number; expected: Billing & { balanceMicros: number } })[];
  readonly routers: readonly (Billing & { router: string; name: string; transport: string; attested: boolean; expected: Billing })[];
  readonly owners: readonly {
    account: string;
    payoutsMicros: number;
    balanceMicros: number;
    lockedMicros: number;
    expected: { payoutsMicros: number; balanceMicros: number; lockedMicros: number };
  }[];
  readonly conservation: {
    readonly topupsMicros: number;
    readonly balancesMicros: number;
    readonly lockedMicros: number;
    readonly feesMicros: number;
    readonly conserved: boolean;
  };
  readonly mismatches: readonly string[];
  readonly sessions: number;
  readonly updates: number;
  readonly blocks: number;
  readonly ledgerEntries: number;
  readonly wallSeconds: number;
}

/** A bigint as a JSON number; past 2^53 is a bug of the CLI's bounds. */
function num(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${value} is past 2^53`);
  return Number(value);
}

const zero = (): Billing => ({ billedOctets: 0, billedMicros: 0, payoutsMicros: 0, feesMicros: 0, disputedOctets: 0 });
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

export function compareWithExpected(plan: WifiPlan, observed: Observed): WifiSummary {
  const e = plan.expected;
  const mismatches: string[] = [];
  const check = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };

  // The ledger, by client and router.
  const clientIndex = new Map(observed.ids.clients.map((id, i) => [id, i]));
  const routerIndex = new Map(observed.ids.routers.map((id, i) => [id, i]));
  const clients = observed.ids.clients.map(zero);
  const routers = observed.ids.routers.map(zero);
  const total = zero();
  const disputedSessions = new Set<string>();
  for (const { entry } of observed.entries) {
    if (entry.reason !== "usage" && entry.reason !== "balance-exhausted" && entry.reason !== "disputed") continue;
    const c = clients[clientIndex.get(hex(entry.client)) ?? -1];
    const r = routers[routerIndex.get(hex(entry.router)) ?? -1];
    if (c === undefined || r === undefined) continue; // another tenant's usage on a running jamgate
    const octets = num(entry.inputOctets + entry.outputOctets);
    for (const t of [c, r, total]) {
      if (entry.reason === "disputed") t.disputedOctets += octets;
      else {
        t.billedOctets += octets;
        t.billedMicros += num(entry.amountMicros);
        t.feesMicros += num(entry.feeMicros);
        t.payoutsMicros += num(entry.amountMicros - entry.feeMicros);
      }
    }
    if (entry.reason === "disputed") disputedSessions.add(`${hex(entry.router)}/${hex(entry.session)}`);
  }
  const billingOf = (t: { billedOctets: bigint; billedMicros: bigint; payoutsMicros: bigint; feesMicros: bigint; disputedOctets: bigint }): Billing => ({
    billedOctets: num(t.billedOctets),
    billedMicros: num(t.billedMicros),
    payoutsMicros: num(t.payoutsMicros),
    feesMicros: num(t.feesMicros),
    disputedOctets: num(t.disputedOctets),
  });

  const clientRows = observed.ids.clients.map((account, i) => {
    const expected = { ...billingOf(e.clients[i]!), balanceMicros: num(e.clientBalancesMicros[i]!) };
    const row = { account, ...clients[i]!, balanceMicros: num(observed.clients[i]!.balanceMicros), expected };
    check(
      `client ${i} (${account})`,
      { ...clients[i]!, balanceMicros: row.balanceMicros, lockedMicros: num(observed.clients[i]!.lockedMicros) },
      { ...expected, lockedMicros: 0 },
    );
    return row;
  });
  const routerRows = observed.ids.routers.map((router, i) => {
    const spec = plan.population.routers[i]!;
    const expected = billingOf(e.routers[i]!);
    check(`router ${spec.name} (${router}) on the ledger`, routers[i]!, expected);
    // The router's own totals, as the service keeps them, agree with its ledger entries.
    const view = observed.routers[i]!;
    check(
      `router ${spec.name} (${router}) totals`,
      {
        billedOctets: Number(view.billedOctets),
        billedMicros: Number(view.billedMicros),
        earnedMicros: Number(view.earnedMicros),
        disputedOctets: Number(view.disputedOctets),
      },
      {
        billedOctets: expected.billedOctets,
        billedMicros: expected.billedMicros,
        earnedMicros: expected.payoutsMicros,
        disputedOctets: expected.disputedOctets,
      },
    );
    return { router, name: spec.name, transport: spec.transport, attested: spec.attested, ...routers[i]!, expected };
  });
  const ownerRows = observed.ids.owners.map((account, o) => {
    const payouts = plan.population.routers.filter((r) => r.owner === o).reduce((sum, r) => sum + routers[r.index]!.payoutsMicros, 0);
    const expected = {
      payoutsMicros: num(e.owners[o]!.payoutsMicros),
      balanceMicros: num(e.ownerBalancesMicros[o]!),
      lockedMicros: num(e.ownerLockedMicros[o]!),
    };
    const row = {
      account,
      payoutsMicros: payouts,
      balanceMicros: num(observed.owners[o]!.balanceMicros),
      lockedMicros: num(observed.owners[o]!.lockedMicros),
      expected,
    };
    check(`owner ${o} (${account})`, { payoutsMicros: row.payoutsMicros, balanceMicros: row.balanceMicros, lockedMicros: row.lockedMicros }, expected);
    return row;
  });

  // Refusals: what devices were told, and what the RADIUS listener counted.
  const refused: Record<string, number> = { ...observed.refusedNative };
  for (const [code, n] of Object.entries(observed.refusedRadius)) refused[code] = (refused[code] ?? 0) + n;
  const frauds = Object.fromEntries(
    FRAUD_KINDS.map((kind) => [kind, { attempts: e.frauds[kind], expectedCode: FRAUD_CODES[kind], verdicts: observed.fraudVerdicts[kind] }]),
  ) as WifiSummary["frauds"];
  for (const kind of NATIVE_FRAUD_KINDS)
    check(`${kind} attempts' verdicts`, observed.fraudVerdicts[kind], e.frauds[kind] === 0 ? {} : { [FRAUD_CODES[kind]]: e.frauds[kind] });
  check("refusals by code", Object.fromEntries(Object.entries(refused).sort()), Object.fromEntries(Object.entries(e.refused).sort()));
  check("honest updates refused", observed.honestRefused, {});

  const disputed = { sessions: disputedSessions.size, octets: total.disputedOctets };
  const expectedDisputed = { sessions: e.total.disputedSessions, octets: num(e.total.disputedOctets) };
  check("disputed", disputed, expectedDisputed);
  check("fees collected", num(observed.feesMicros), num(e.total.feesMicros));

  const sum = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n);
  const balances = sum(observed.clients.map((c) => c.balanceMicros)) + sum(observed.owners.map((o) => o.balanceMicros));
  const locked = sum(observed.clients.map((c) => c.lockedMicros)) + sum(observed.owners.map((o) => o.lockedMicros));
  const conserved = balances + locked + observed.feesMicros === e.topupsMicros;
  if (!conserved) mismatches.push(`value not conserved: balances ${balances} + locked ${locked} + fees ${observed.feesMicros} ≠ top-ups ${e.topupsMicros}`);

  return {
    billedOctets: total.billedOctets,
    billedMicros: total.billedMicros,
    payoutsMicros: total.payoutsMicros,
    feesMicros: total.feesMicros,
    refused,
    disputed,
    expected: { ...billingOf(e.total), refused: e.refused, disputed: expectedDisputed },
    frauds,
    honestRefused: observed.honestRefused,
    clients: clientRows,
    routers: routerRows,
    owners: ownerRows,
    conservation: {
      topupsMicros: num(e.topupsMicros),
      balancesMicros: num(balances),
      lockedMicros: num(locked),
      feesMicros: num(observed.feesMicros),
      conserved,
    },
    mismatches,
    sessions: plan.sessions.length,
    updates: plan.sessions.reduce((n, s) => n + s.updates.length, 0),
    blocks: observed.blocks,
    ledgerEntries: observed.entries.length,
    wallSeconds: Math.round(observed.wallSeconds * 10) / 10,
  };
}
