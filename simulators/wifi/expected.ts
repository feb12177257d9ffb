/**
 * The independent count: what the chain must end with, worked out from the generated plan alone,
 * by the billing rules of the Wi-Fi contract (notes: "wifi-contract.md" §2, accumulate), with no
 * code of the wifi-billing service. The run's results are checked against it.
 *
 * - Billable sessions: native sessions with the client's vouchers, and RADIUS sessions of a
 *   router-attested router. Disputed: RADIUS sessions of a router that is not attested, and
 *   native sessions whose router dropped the vouchers (fraud.ts `strip`). Fraudulent updates
 *   change nothing.
 * - Billing is on cumulative octets (input + output) at the session's price:
 *   `charged(total) = floor(total × priceMicrosPerGb / 10⁹)`; each update bills
 *   `charged(its total) − charged(the previous update's total)`.
 * - The protocol fee is cumulative too: a session's fees are `floor(billed × PROTOCOL_FEE_PPM /
 *   10⁶)` of what it has billed so far, so each update's fee is the difference, and the totals do
 *   not depend on how updates are grouped into packages; the owner is paid the rest. (Flooring
 *   each amount's fee instead gives up to a micro less per update: a run measured 1–2 micros
 *   less for 4 of 12 sessions.)
 * - Balances: a client ends with its top-up less what it was billed; an owner with its top-up,
 *   less the stakes it locked, plus its payouts. Top-ups cover every client's traffic (plan.ts),
 *   so no balance runs out.
 *
 * Arithmetic is on bigint: octets × price passes 2^53.
 */
import { FRAUD_CODES, FRAUD_KINDS, type FraudKind, fraudCounts, type SessionSteps } from "./fraud.ts";
import type { Population } from "./scenario.ts";

/** The protocol's share of each billed amount, parts per million: 5 % (the service's PROTOCOL_FEE_PPM, restated). */
export const PROTOCOL_FEE_PPM = 50_000n;
const GB_OCTETS = 1_000_000_000n;
const PPM = 1_000_000n;

/** Micros owed for `totalOctets` at `priceMicrosPerGb`, floored. */
export function chargedMicros(totalOctets: bigint, priceMicrosPerGb: bigint): bigint {
  return (totalOctets * priceMicrosPerGb) / GB_OCTETS;
}

/** The protocol's fee on a session's billed total so far, floored. */
export function feeMicros(billedMicros: bigint): bigint {
  return (billedMicros * PROTOCOL_FEE_PPM) / PPM;
}

export interface PartyTotals {
  /** Octets (input + output) billed. */
  billedOctets: bigint;
  /** Micros billed to clients (a client) or from them (a router). */
  billedMicros: bigint;
  /** What owners were paid: billed less fees. */
  payoutsMicros: bigint;
  feesMicros: bigint;
  /** Octets written as disputed, and in how many sessions. */
  disputedOctets: bigint;
  disputedSessions: number;
}

export interface ExpectedCounts {
  /** By client index. */
  readonly clients: readonly PartyTotals[];
  /** By router index. */
  readonly routers: readonly PartyTotals[];
  /** By owner index: its routers' totals added. */
  readonly owners: readonly PartyTotals[];
  readonly total: PartyTotals;
  /** Final balances, by index. */
  readonly clientBalancesMicros: readonly bigint[];
  readonly ownerBalancesMicros: readonly bigint[];
  /** Stakes locked, by owner index. */
  readonly ownerLockedMicros: readonly bigint[];
  /** Attempts by kind, and what they must be refused with, by code. */
  readonly frauds: Readonly<Record<FraudKind, number>>;
  readonly refused: Readonly<Record<string, number>>;
  /** Everything put in: Σ top-ups, which Σ balances + Σ locked + fees must equal. */
  readonly topupsMicros: bigint;
}

function zero(): PartyTotals {
  return { billedOctets: 0n, billedMicros: 0n, payoutsMicros: 0n, feesMicros: 0n, disputedOctets: 0n, disputedSessions: 0 };
}

function add(into: PartyTotals, from: PartyTotals): void {
  into.billedOctets += from.billedOctets;
  into.billedMicros += from.billedMicros;
  into.payoutsMicros += from.payoutsMicros;
  into.feesMicros += from.feesMicros;
  into.disputedOctets += from.disputedOctets;
  into.disputedSessions += from.disputedSessions;
}

/** Whether a session's usage is billed (true) or disputed (false). */
export function isBillable(population: Population, s: SessionSteps): boolean {
  const router = population.routers[s.session.router]!;
  return router.transport === "mqtt" ? !s.strip : router.attested;
}

/** What one session adds to its client and its router. */
export function sessionTotals(population: Population, s: SessionSteps): PartyTotals {
  const t = zero();
  const price = BigInt(population.routers[s.session.router]!.priceMicrosPerGb);
  const updates = s.session.updates;
  const final = updates[updates.length - 1]!;
  const finalOctets = BigInt(final.inputOctets) + BigInt(final.outputOctets);
  if (!isBillable(population, s)) {
    t.disputedOctets = finalOctets;
    t.disputedSessions = 1;
    return t;
  }
  let charged = 0n;
  for (const u of updates) {
    const now = chargedMicros(BigInt(u.inputOctets) + BigInt(u.outputOctets), price);
    const amount = now - charged;
    const fee = feeMicros(now) - feeMicros(charged);
    t.billedMicros += amount;
    t.feesMicros += fee;
    t.payoutsMicros += amount - fee;
    charged = now;
  }
  t.billedOctets = finalOctets;
  return t;
}

export function expectedCounts(population: Population, plan: readonly SessionSteps[], clientTopupsMicros: readonly bigint[]): ExpectedCounts {
  if (clientTopupsMicros.length !== population.clients.length) throw new Error("one top-up per client");
  const clients = population.clients.map(zero);
  const routers = population.routers.map(zero);
  const owners = population.owners.map(zero);
  const total = zero();
  for (const s of plan) {
    const t = sessionTotals(population, s);
    add(clients[s.session.client]!, t);
    add(routers[s.session.router]!, t);
    add(owners[population.routers[s.session.router]!.owner]!, t);
    add(total, t);
  }
  const ownerLockedMicros = population.owners.map((o) =>
    population.routers.filter((r) => r.owner === o.index).reduce((sum, r) => sum + BigInt(r.stakeMicros), 0n),
  );
  const ownerBalancesMicros = population.owners.map((o, i) => BigInt(o.topupMicros) - ownerLockedMicros[i]! + owners[i]!.payoutsMicros);
  const clientBalancesMicros = clients.map((c, i) => clientTopupsMicros[i]! - c.billedMicros);
  const frauds = fraudCounts(plan);
  const refused: Record<string, number> = {};
  for (const kind of FRAUD_KINDS) if (frauds[kind] > 0) refused[FRAUD_CODES[kind]] = (refused[FRAUD_CODES[kind]] ?? 0) + frauds[kind];
  const topupsMicros = clientTopupsMicros.reduce((a, b) => a + b, 0n) + population.owners.reduce((a, o) => a + BigInt(o.topupMicros), 0n);
  return { clients, routers, owners, total, clientBalancesMicros, ownerBalancesMicros, ownerLockedMicros, frauds, refused, topupsMicros };
}
