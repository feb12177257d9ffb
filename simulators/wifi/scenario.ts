/**
 * The population of `jamgate sim wifi`, generated from the command line's numbers and a seed:
 * routers (each with its owner account, price, stake, link capacity, and whether it reports
 * natively over MQTT or as a stock hotspot over RADIUS accounting, RFC 2866), the owners, and the
 * Wi-Fi clients with their prepaid top-ups. Everything is drawn from streams derived from the
 * seed (../energy/random.ts), so a seed replays the same routers, clients, sessions and frauds.
 *
 * Money is in micros (10⁻⁶ currency units), prices in micros per GB (10⁹ bytes), as the
 * wifi-billing service keeps them; integers throughout.
 */
import { rngFor } from "../energy/random.ts";

/** Most routers a run registers: each is an MQTT connection or a RADIUS client of the one gateway, and a bar of the payouts chart. */
export const ROUTERS_MAX = 200;
/** Most clients: each is an account registered and topped up before the run, with its sessions held in memory. */
export const CLIENTS_MAX = 10_000;
/** A week of simulated time: the sessions of every client are generated up front and kept in memory. */
export const HOURS_MAX = 7 * 24;
/** Highest price drawn: 2 currency units per GB. */
export const PRICE_MICROS_PER_GB_HIGH = 2_000_000;
/** Lowest price drawn: 0.2 currency units per GB. */
export const PRICE_MICROS_PER_GB_LOW = 200_000;
/** A router's stake: 10 currency units; five times that for a router-attested one, whose stake stands behind usage no client signed. */
export const STAKE_MICROS = 10_000_000;
export const ATTESTED_STAKE_FACTOR = 5;
/** Link capacities drawn, bits per second: a DSL line, a cable line, a fibre line. */
export const CAPACITIES_BITS_PER_SECOND = [100_000_000, 300_000_000, 1_000_000_000] as const;
/** The start of simulated time: an evening (the diurnal profile's rise to its 21:00 peak), UTC. */
export const START_ISO_DEFAULT = "2026-06-19T18:00:00Z";

export type Transport = "mqtt" | "radius";

export interface RouterSpec {
  readonly index: number;
  /** Its name on the service (UTF-8, ≤ 32 bytes). */
  readonly name: string;
  /** Index into `owners`. */
  readonly owner: number;
  /** "mqtt": the router SDK, one signed `router.usage` envelope per update with the client's voucher; "radius": Accounting-Requests over UDP, signed by the gateway with a key it holds. */
  readonly transport: Transport;
  /** The owner accepts router-attested billing (usage without the client's voucher), its stake behind it. */
  readonly attested: boolean;
  readonly priceMicrosPerGb: number;
  readonly stakeMicros: number;
  readonly capacityBitsPerSecond: number;
}

export interface OwnerSpec {
  readonly index: number;
  /** Exactly the stakes of its routers: they lock all of it, and what it holds at the end is its payouts. */
  readonly topupMicros: number;
}

export interface ClientSpec {
  readonly index: number;
  /** Routers the client uses, by index: one to three, near where it lives. */
  readonly routers: readonly number[];
}

export interface Population {
  readonly seed: number;
  readonly routers: readonly RouterSpec[];
  readonly owners: readonly OwnerSpec[];
  readonly clients: readonly ClientSpec[];
}

export interface PopulationOptions {
  readonly routers: number;
  readonly clients: number;
  readonly seed: number;
}

/**
 * RADIUS routers among `n`: a fifth, at least two when there are three or more (one billed as
 * router-attested, one disputed), one of two, none of one (the native path is the one with vouchers).
 */
export function radiusRouterCount(n: number): number {
  if (n >= 3) return Math.max(2, Math.round(n / 5));
  return n === 2 ? 1 : 0;
}

/** Owners of `n` routers: one per two routers, so some owners are paid by two. */
export function ownerCount(n: number): number {
  return Math.max(1, Math.ceil(n / 2));
}

function checkCount(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${value}`);
}

/**
 * Routers, owners and clients for `options`. The last `radiusRouterCount` routers are RADIUS
 * hotspots, the first half of them (rounded up) router-attested; native routers are not attested,
 * so usage they send without a voucher is disputed.
 */
export function generatePopulation(options: PopulationOptions): Population {
  checkCount("routers", options.routers, ROUTERS_MAX);
  checkCount("clients", options.clients, CLIENTS_MAX);
  const n = options.routers;
  const radius = radiusRouterCount(n);
  const owners = ownerCount(n);
  const routers: RouterSpec[] = [];
  for (let i = 0; i < n; i++) {
    const rng = rngFor(options.seed, "router", i);
    const radiusIndex = i - (n - radius);
    const transport: Transport = radiusIndex >= 0 ? "radius" : "mqtt";
    const attested = transport === "radius" && radiusIndex < Math.ceil(radius / 2);
    // Prices on a 1,000-micro grid, as an operator would set them.
    const priceMicrosPerGb = rng.int(PRICE_MICROS_PER_GB_LOW / 1000, PRICE_MICROS_PER_GB_HIGH / 1000) * 1000;
    routers.push({
      index: i,
      name: `${transport === "radius" ? "hotspot" : "router"}-${i}`,
      owner: i % owners,
      transport,
      attested,
      priceMicrosPerGb,
      stakeMicros: attested ? STAKE_MICROS * ATTESTED_STAKE_FACTOR : STAKE_MICROS,
      capacityBitsPerSecond: rng.pick(CAPACITIES_BITS_PER_SECOND),
    });
  }
  const ownerList: OwnerSpec[] = [];
  for (let o = 0; o < owners; o++) {
    ownerList.push({ index: o, topupMicros: routers.filter((r) => r.owner === o).reduce((sum, r) => sum + r.stakeMicros, 0) });
  }
  const clients: ClientSpec[] = [];
  for (let c = 0; c < options.clients; c++) {
    const rng = rngFor(options.seed, "client", c);
    // A home router and up to two more; every router is someone's home when clients ≥ routers.
    const home = c % n;
    const favourites = new Set([home]);
    const extra = rng.int(0, Math.min(2, n - 1));
    while (favourites.size < 1 + extra) favourites.add(rng.int(0, n - 1));
    clients.push({ index: c, routers: [...favourites] });
  }
  return { seed: options.seed, routers, owners: ownerList, clients };
}
