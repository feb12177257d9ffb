/**
 * A whole `jamgate sim wifi` run, decided before it starts: the population (scenario.ts), every
 * session's honest updates (traffic.ts), what each router sends and which of it is fraud
 * (fraud.ts), the clients' top-ups, and the independent count of what the chain must end with
 * (expected.ts). Pure: the same options give the same plan.
 */
import { rngFor } from "../energy/random.ts";
import { chargedMicros, type ExpectedCounts, expectedCounts } from "./expected.ts";
import { planSteps, type SessionSteps } from "./fraud.ts";
import { generatePopulation, HOURS_MAX, type Population, START_ISO_DEFAULT } from "./scenario.ts";
import { generateSessions, type SessionPlan } from "./traffic.ts";

const MICROS_PER_UNIT = 1_000_000n;
/** A client's top-up is at least twice what its sessions would cost, plus 1–20 units: no balance runs out, so every billed amount is the count's. */
export const TOPUP_COVER_FACTOR = 2n;

export interface PlanOptions {
  readonly routers: number;
  readonly clients: number;
  /** Simulated hours; whole or fractional (the integration test runs 20 minutes). */
  readonly hours: number;
  readonly seed: number;
  readonly fraudRate: number;
  readonly startIso?: string;
}

export interface WifiPlan {
  readonly options: PlanOptions;
  readonly startIso: string;
  readonly durationSeconds: number;
  readonly population: Population;
  readonly sessions: readonly SessionPlan[];
  readonly steps: readonly SessionSteps[];
  /** By client index. */
  readonly clientTopupsMicros: readonly bigint[];
  readonly expected: ExpectedCounts;
}

export function buildPlan(options: PlanOptions): WifiPlan {
  if (!(options.hours > 0 && options.hours <= HOURS_MAX)) throw new RangeError(`hours must be in (0, ${HOURS_MAX}], got ${options.hours}`);
  const startIso = options.startIso ?? START_ISO_DEFAULT;
  const durationSeconds = Math.round(options.hours * 3600);
  const population = generatePopulation(options);
  const sessions = generateSessions(population, startIso, durationSeconds);
  const steps = planSteps(population, sessions, options.fraudRate);
  const cost = population.clients.map(() => 0n);
  for (const s of sessions) {
    const final = s.updates[s.updates.length - 1]!;
    cost[s.client]! += chargedMicros(BigInt(final.inputOctets) + BigInt(final.outputOctets), BigInt(population.routers[s.router]!.priceMicrosPerGb));
  }
  const clientTopupsMicros = population.clients.map((c) => {
    const rng = rngFor(options.seed, "topup", c.index);
    const cover = (cost[c.index]! * TOPUP_COVER_FACTOR + MICROS_PER_UNIT - 1n) / MICROS_PER_UNIT;
    return (cover + BigInt(rng.int(1, 20))) * MICROS_PER_UNIT;
  });
  return {
    options,
    startIso,
    durationSeconds,
    population,
    sessions,
    steps,
    clientTopupsMicros,
    expected: expectedCounts(population, steps, clientTopupsMicros),
  };
}
