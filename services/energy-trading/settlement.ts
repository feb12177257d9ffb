/**
 * Settlement of one cleared interval against what the meters measured (imbalance settlement):
 * trades are financially firm and paid at their price; each household's deviation from what it
 * traded is settled with the grid, the counterparty of last resort, at the grid's prices (import
 * price when the grid supplied energy, export price when it took energy). Every movement of money
 * is one ledger entry (buyer pays seller), and the balance changes of the households and the grid
 * sum to exactly zero (TigerBeetle's double entry: every debit has its credit).
 *
 * Called from accumulate: pure, integer-only (money in bigint), households in ascending id order.
 * Measured (`node --import tsx bench/energy-clearing.ts`, a shared 2-core AMD EPYC): clearing and
 * settling 10,000 households (~30,000 ledger entries) takes ~17–25 ms (median over runs; the machine
 * was shared), settlement ~11–16 ms of it.
 */
import { amountMicros, assertGridPrices, compareHouseholdIds, type GridPrices, isHouseholdId, PRICE_MICROS_PER_KWH_MAX, type Trade } from "./market.ts";

/** The grid's party id in ledger entries and balance changes; no household id (32 hex digits) can equal it. */
export const GRID = "grid";

/** Why a ledger entry exists; the index is the reason's byte in storage (storage.ts). */
export const LEDGER_REASONS = ["trade", "grid-import", "grid-export", "shortfall", "surplus"] as const;
export type LedgerReason = (typeof LEDGER_REASONS)[number];

/** The buyer paid the seller amountMicros = amountMicros(energyWh, priceMicrosPerKwh). */
export interface LedgerEntry {
  readonly interval: number;
  readonly buyer: string;
  readonly seller: string;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
  readonly amountMicros: bigint;
  readonly reason: LedgerReason;
}

/** What a household's meter measured in the interval. */
export interface MeteredEnergy {
  readonly importWh: number;
  readonly exportWh: number;
}

export interface IntervalSettlement {
  /** Trades first (in trade order), then per household (ascending id): grid-import, surplus, grid-export, shortfall. No zero-energy entries. */
  readonly entries: readonly LedgerEntry[];
  /**
   * Balance change of every household that traded or was metered and of GRID (0n included), keys
   * in ascending order (GRID sorts after every hex id). Sums to exactly 0n.
   */
  readonly balanceDeltasMicros: ReadonlyMap<string, bigint>;
}

/** A bug in the caller: crash loudly (house style, errors of the third kind). */
function fail(message: string): never {
  throw new Error(`energy settlement: ${message}`);
}

function isEnergy(wh: number): boolean {
  return Number.isSafeInteger(wh) && wh >= 0;
}

/**
 * Settles one interval. For each household h, with bought_h and sold_h its traded energy and
 * import/export what its meter measured (0/0 when it has no reading):
 * - trade: each trade, the buyer pays the seller its amount;
 * - grid-import: max(0, import − bought_h) bought from the grid at the import price;
 * - surplus: max(0, bought_h − import), bought but not consumed, sold to the grid at the export price;
 * - grid-export: max(0, export − sold_h) sold to the grid at the export price;
 * - shortfall: max(0, sold_h − export), sold but not delivered, so the grid delivered it: bought from the grid at the import price.
 * So per household, bought + grid-import − surplus = import and sold + grid-export − shortfall = export.
 */
export function settleInterval(input: {
  readonly interval: number;
  readonly trades: readonly Trade[];
  readonly metered: ReadonlyMap<string, MeteredEnergy>;
  readonly grid: GridPrices;
}): IntervalSettlement {
  const { interval, trades, metered, grid } = input;
  if (!(Number.isSafeInteger(interval) && interval >= 0)) fail(`interval ${interval} is not a non-negative integer`);
  assertGridPrices(grid);

  // Per household: traded energy and its balance change. Messages are built only on failure:
  // these loops run once per trade and household (tens of thousands in a full market).
  const accounts = new Map<string, Account>();
  const account = (h: string): Account => {
    let a = accounts.get(h);
    if (a === undefined) {
      if (typeof h !== "string" || !isHouseholdId(h)) fail(`party ${String(h)} is not a household id (32 lowercase hex digits)`);
      a = { boughtWh: 0, soldWh: 0, deltaMicros: 0n };
      accounts.set(h, a);
    }
    return a;
  };
  const entries: LedgerEntry[] = [];
  for (const t of trades) {
    if (t.buyer === t.seller) fail(`trade of ${t.buyer} with itself`);
    if (!(Number.isSafeInteger(t.energyWh) && t.energyWh > 0)) fail(`trade energy ${t.energyWh} Wh is not a positive integer`);
    if (!(Number.isSafeInteger(t.priceMicrosPerKwh) && t.priceMicrosPerKwh >= 0 && t.priceMicrosPerKwh <= PRICE_MICROS_PER_KWH_MAX))
      fail(`trade price ${t.priceMicrosPerKwh}`);
    if (t.amountMicros !== amountMicros(t.energyWh, t.priceMicrosPerKwh))
      fail(`trade amount ${t.amountMicros} is not ${t.energyWh} Wh at ${t.priceMicrosPerKwh}`);
    const buyer = account(t.buyer);
    const seller = account(t.seller);
    buyer.boughtWh += t.energyWh;
    buyer.deltaMicros -= t.amountMicros;
    seller.soldWh += t.energyWh;
    seller.deltaMicros += t.amountMicros;
    entries.push({
      interval,
      buyer: t.buyer,
      seller: t.seller,
      energyWh: t.energyWh,
      priceMicrosPerKwh: t.priceMicrosPerKwh,
      amountMicros: t.amountMicros,
      reason: "trade",
    });
  }
  for (const [h, m] of metered) {
    if (!(isEnergy(m.importWh) && isEnergy(m.exportWh))) fail(`household ${h} metered import ${m.importWh} Wh, export ${m.exportWh} Wh`);
    account(h);
  }

  const households = [...accounts.keys()].sort(compareHouseholdIds);
  let gridDeltaMicros = 0n;
  const toGrid = (reason: LedgerReason, household: string, a: Account, energyWh: number, priceMicrosPerKwh: number) => {
    const amount = amountMicros(energyWh, priceMicrosPerKwh);
    entries.push({ interval, buyer: household, seller: GRID, energyWh, priceMicrosPerKwh, amountMicros: amount, reason });
    a.deltaMicros -= amount;
    gridDeltaMicros += amount;
  };
  const fromGrid = (reason: LedgerReason, household: string, a: Account, energyWh: number, priceMicrosPerKwh: number) => {
    const amount = amountMicros(energyWh, priceMicrosPerKwh);
    entries.push({ interval, buyer: GRID, seller: household, energyWh, priceMicrosPerKwh, amountMicros: amount, reason });
    a.deltaMicros += amount;
    gridDeltaMicros -= amount;
  };
  const imp = grid.importPriceMicrosPerKwh;
  const exp = grid.exportPriceMicrosPerKwh;
  for (const h of households) {
    const a = accounts.get(h)!;
    const m = metered.get(h);
    const importWh = m?.importWh ?? 0;
    const exportWh = m?.exportWh ?? 0;
    if (importWh > a.boughtWh) toGrid("grid-import", h, a, importWh - a.boughtWh, imp);
    if (a.boughtWh > importWh) fromGrid("surplus", h, a, a.boughtWh - importWh, exp);
    if (exportWh > a.soldWh) fromGrid("grid-export", h, a, exportWh - a.soldWh, exp);
    if (a.soldWh > exportWh) toGrid("shortfall", h, a, a.soldWh - exportWh, imp);
  }

  const deltas = new Map<string, bigint>();
  for (const h of households) deltas.set(h, accounts.get(h)!.deltaMicros);
  deltas.set(GRID, gridDeltaMicros); // last: "grid" sorts after any hex id, so the keys are in ascending order
  return { entries, balanceDeltasMicros: deltas };
}

interface Account {
  boughtWh: number;
  soldWh: number;
  deltaMicros: bigint;
}
