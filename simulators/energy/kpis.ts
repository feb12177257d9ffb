/**
 * Key performance indicators of an energy-market simulation, as Grid Singularity's gsy-e defines
 * them: self-sufficiency = self-consumed energy / energy demanded, self-consumption = self-consumed
 * energy / energy produced, at each level of the market hierarchy
 * (https://gridsingularity.github.io/gsy-e/self-sufficiency-self-consumption/, "Key performance
 * indicators"; results pages: https://gridsingularity.github.io/gsy-e/results).
 *
 * The level decides what "self" means:
 * - a household consumes only its own production (PV, battery): self-consumed energy is what its
 *   meter did not import (demand − metered import) or did not export (production − metered export);
 * - the community also consumes what its households trade among themselves: only energy crossing
 *   the community boundary, i.e. ledger entries with the grid as seller (import) or buyer (export),
 *   is not self-consumed.
 *
 * Savings compare two bills for the same metered energy: the bill with the grid as the only
 * counterparty (import at the import price, export at the feed-in price) minus the bill the
 * market's ledger actually charged. Energy is in Wh, money in micros (10⁻⁶ currency units), prices
 * in micros per kWh; all exact integers (bigint while summing money).
 */
import { GRID, type GridPrices, type LedgerEntry, type LedgerReasonName } from "../../services/energy-trading/types.ts";

/** What the household model knows about one interval: its demand, its PV production, and what its meter measured. */
export interface HouseholdIntervalTruth {
  readonly interval: number;
  readonly loadWh: number;
  readonly pvWh: number;
  readonly importWh: number;
  readonly exportWh: number;
}

/** Why a ledger entry exists: a peer trade, a grid settlement, or a correction of a delivery that missed its trade. */
export type LedgerReason = LedgerReasonName;

/** The party name that stands for the grid in ledger entries: the service's. */
export const GRID_PARTY = GRID;

/**
 * One settled transfer: `buyer` paid `amountMicros` to `seller` for `energyWh`; either side may be
 * "grid". The service's ledger entry, with the simulation's household names as parties.
 */
export type LedgerEntryView = LedgerEntry;

export type { GridPrices };

export interface HouseholdKpis {
  /** (demand − metered import) / demand, in [0, 1], 4 decimals; 0 when demand is 0. */
  readonly selfSufficiency: number;
  /** (production − metered export) / production, in [0, 1], 4 decimals; 0 when production is 0. */
  readonly selfConsumption: number;
  /** costGridOnlyMicros − costMarketMicros: positive when the market was cheaper. */
  readonly savingsMicros: number;
  /** Σ loadWh. */
  readonly demandWh: number;
  /** Σ pvWh. */
  readonly productionWh: number;
  /** Σ metered importWh (all energy that entered the house, from the grid or from peers). */
  readonly meteredImportWh: number;
  /** Σ metered exportWh (all energy that left the house, to the grid or to peers). */
  readonly meteredExportWh: number;
  /** Σ energy of ledger entries with this household as buyer and the grid as seller. */
  readonly gridImportWh: number;
  /** Σ energy of ledger entries with this household as seller and the grid as buyer. */
  readonly gridExportWh: number;
  /** Σ energy of "trade" entries with this household as buyer. */
  readonly boughtWh: number;
  /** Σ energy of "trade" entries with this household as seller. */
  readonly soldWh: number;
  /** Σ over intervals of floor(importWh × importPrice / 1000) − floor(exportWh × exportPrice / 1000). */
  readonly costGridOnlyMicros: number;
  /** Σ amountMicros as buyer − Σ amountMicros as seller, over every ledger entry. */
  readonly costMarketMicros: number;
}

export interface CommunityKpis {
  /** (demand − gridImport) / demand over all households, clamped to [0, 1], 4 decimals; 0 when demand is 0. */
  readonly selfSufficiency: number;
  /** (production − gridExport) / production over all households, clamped to [0, 1], 4 decimals; 0 when production is 0. */
  readonly selfConsumption: number;
  /** Σ household savings. */
  readonly savingsMicros: number;
  /** Σ energy of ledger entries whose seller is the grid. */
  readonly gridImportWh: number;
  /** Σ energy of ledger entries whose buyer is the grid. */
  readonly gridExportWh: number;
  /** Σ energy of "trade" entries. */
  readonly tradedWh: number;
  /** Volume-weighted mean clearing price over intervals that traded (floor); null when none did. */
  readonly meanClearingPriceMicrosPerKwh: number | null;
  readonly demandWh: number;
  readonly productionWh: number;
}

export interface Kpis {
  readonly community: CommunityKpis;
  /** Keyed by household id, in ascending id order. */
  readonly households: Readonly<Record<string, HouseholdKpis>>;
}

export interface ClearingPriceView {
  readonly interval: number;
  readonly priceMicrosPerKwh: number | null;
  readonly tradedWh: number;
}

export interface KpiInput {
  /** Per household id, its intervals as the household model saw them. */
  readonly truth: ReadonlyMap<string, readonly HouseholdIntervalTruth[]>;
  readonly ledger: readonly LedgerEntryView[];
  readonly grid: GridPrices;
  readonly clearingPrices: readonly ClearingPriceView[];
}

/** Decimals kept in ratios: 0.01 % resolution, finer than any meter's accuracy class (IEC 62053-21 class 1 is 1 %). */
export const RATIO_DECIMALS = 4;
const RATIO_SCALE = 10 ** RATIO_DECIMALS;
/** Wh per kWh: prices are per kWh, energy in Wh. */
const WH_PER_KWH = 1000n;

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`kpis: ${message}`);
}

function assertCount(value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} must be a non-negative safe integer, got ${value}`);
}

function assertPrice(value: number, what: string): void {
  // A feed-in price may be negative (negative-price hours); it must still be an integer.
  assert(Number.isSafeInteger(value), `${what} must be a safe integer, got ${value}`);
}

function toSafeNumber(value: bigint, what: string): number {
  assert(value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER), `${what} ${value} exceeds the safe integer range`);
  return Number(value);
}

/** floor(a / b) for b > 0 (bigint division truncates toward zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** Cost in micros of `energyWh` at `priceMicrosPerKwh`, rounded down as the settlement does. */
export function costMicros(energyWh: number, priceMicrosPerKwh: number): bigint {
  return floorDiv(BigInt(energyWh) * BigInt(priceMicrosPerKwh), WH_PER_KWH);
}

/**
 * numerator / denominator clamped to [0, 1] and rounded to RATIO_DECIMALS; 0 when the denominator
 * is 0 (nothing demanded or produced: no share to speak of).
 */
function ratio(numerator: number, denominator: number): number {
  if (denominator === 0) return 0;
  const r = numerator / denominator;
  return Math.round(Math.min(1, Math.max(0, r)) * RATIO_SCALE) / RATIO_SCALE;
}

interface Tally {
  demandWh: number;
  productionWh: number;
  meteredImportWh: number;
  meteredExportWh: number;
  gridImportWh: number;
  gridExportWh: number;
  boughtWh: number;
  soldWh: number;
  costGridOnlyMicros: bigint;
  costMarketMicros: bigint;
}

function addWh(a: number, b: number, what: string): number {
  const sum = a + b;
  assert(Number.isSafeInteger(sum), `${what} sum exceeds the safe integer range`);
  return sum;
}

/**
 * Computes household and community KPIs from the household models' truth, the settled ledger and
 * the grid tariff. Every ledger party other than "grid" must be a household in `truth` (a ledger
 * naming someone the simulation did not model is a bug upstream).
 *
 * Household ratios clamp too: a household whose meter imported more than it demanded (a battery
 * charging from the grid) would otherwise go below 0. The community ratios can leave [0, 1] when
 * ledger energy and modeled energy disagree, e.g. by meter rounding (the ledger settles rounded
 * metered Wh, the truth is the model's Wh); the clamp keeps such noise from reading as more than
 * 100 % or less than 0 %.
 */
export function computeKpis(input: KpiInput): Kpis {
  const { truth, ledger, grid, clearingPrices } = input;
  assertPrice(grid.importPriceMicrosPerKwh, "grid.importPriceMicrosPerKwh");
  assertPrice(grid.exportPriceMicrosPerKwh, "grid.exportPriceMicrosPerKwh");
  assert(!truth.has(GRID_PARTY), `"${GRID_PARTY}" is reserved for the grid and cannot be a household id`);

  const tallies = new Map<string, Tally>();
  for (const [id, rows] of truth) {
    const t: Tally = {
      demandWh: 0,
      productionWh: 0,
      meteredImportWh: 0,
      meteredExportWh: 0,
      gridImportWh: 0,
      gridExportWh: 0,
      boughtWh: 0,
      soldWh: 0,
      costGridOnlyMicros: 0n,
      costMarketMicros: 0n,
    };
    for (const row of rows) {
      assertCount(row.loadWh, `${id} loadWh`);
      assertCount(row.pvWh, `${id} pvWh`);
      assertCount(row.importWh, `${id} importWh`);
      assertCount(row.exportWh, `${id} exportWh`);
      t.demandWh = addWh(t.demandWh, row.loadWh, `${id} demandWh`);
      t.productionWh = addWh(t.productionWh, row.pvWh, `${id} productionWh`);
      t.meteredImportWh = addWh(t.meteredImportWh, row.importWh, `${id} meteredImportWh`);
      t.meteredExportWh = addWh(t.meteredExportWh, row.exportWh, `${id} meteredExportWh`);
      t.costGridOnlyMicros += costMicros(row.importWh, grid.importPriceMicrosPerKwh) - costMicros(row.exportWh, grid.exportPriceMicrosPerKwh);
    }
    tallies.set(id, t);
  }

  const household = (id: string, role: string): Tally => {
    const t = tallies.get(id);
    assert(t !== undefined, `ledger ${role} ${JSON.stringify(id)} is neither "${GRID_PARTY}" nor a household in truth`);
    return t;
  };

  let gridImportWh = 0;
  let gridExportWh = 0;
  let tradedWh = 0;
  for (const entry of ledger) {
    assertCount(entry.energyWh, "ledger energyWh");
    assert(entry.buyer !== entry.seller, `ledger entry with ${JSON.stringify(entry.buyer)} on both sides`);
    const buyerIsGrid = entry.buyer === GRID_PARTY;
    const sellerIsGrid = entry.seller === GRID_PARTY;
    if (sellerIsGrid) gridImportWh = addWh(gridImportWh, entry.energyWh, "community gridImportWh");
    if (buyerIsGrid) gridExportWh = addWh(gridExportWh, entry.energyWh, "community gridExportWh");
    if (entry.reason === "trade") tradedWh = addWh(tradedWh, entry.energyWh, "community tradedWh");
    if (!buyerIsGrid) {
      const b = household(entry.buyer, "buyer");
      b.costMarketMicros += entry.amountMicros;
      if (sellerIsGrid) b.gridImportWh = addWh(b.gridImportWh, entry.energyWh, `${entry.buyer} gridImportWh`);
      if (entry.reason === "trade") b.boughtWh = addWh(b.boughtWh, entry.energyWh, `${entry.buyer} boughtWh`);
    }
    if (!sellerIsGrid) {
      const s = household(entry.seller, "seller");
      s.costMarketMicros -= entry.amountMicros;
      if (buyerIsGrid) s.gridExportWh = addWh(s.gridExportWh, entry.energyWh, `${entry.seller} gridExportWh`);
      if (entry.reason === "trade") s.soldWh = addWh(s.soldWh, entry.energyWh, `${entry.seller} soldWh`);
    }
  }

  const households: Record<string, HouseholdKpis> = {};
  let demandWh = 0;
  let productionWh = 0;
  let savingsMicros = 0n;
  for (const id of [...tallies.keys()].sort()) {
    const t = tallies.get(id)!;
    const savings = t.costGridOnlyMicros - t.costMarketMicros;
    savingsMicros += savings;
    demandWh = addWh(demandWh, t.demandWh, "community demandWh");
    productionWh = addWh(productionWh, t.productionWh, "community productionWh");
    // defineProperty: an id such as "__proto__" must become a key, not the prototype.
    Object.defineProperty(households, id, {
      enumerable: true,
      value: {
        selfSufficiency: ratio(t.demandWh - t.meteredImportWh, t.demandWh),
        selfConsumption: ratio(t.productionWh - t.meteredExportWh, t.productionWh),
        savingsMicros: toSafeNumber(savings, `${id} savingsMicros`),
        demandWh: t.demandWh,
        productionWh: t.productionWh,
        meteredImportWh: t.meteredImportWh,
        meteredExportWh: t.meteredExportWh,
        gridImportWh: t.gridImportWh,
        gridExportWh: t.gridExportWh,
        boughtWh: t.boughtWh,
        soldWh: t.soldWh,
        costGridOnlyMicros: toSafeNumber(t.costGridOnlyMicros, `${id} costGridOnlyMicros`),
        costMarketMicros: toSafeNumber(t.costMarketMicros, `${id} costMarketMicros`),
      } satisfies HouseholdKpis,
    });
  }

  return {
    community: {
      selfSufficiency: ratio(demandWh - gridImportWh, demandWh),
      selfConsumption: ratio(productionWh - gridExportWh, productionWh),
      savingsMicros: toSafeNumber(savingsMicros, "community savingsMicros"),
      gridImportWh,
      gridExportWh,
      tradedWh,
      meanClearingPriceMicrosPerKwh: meanClearingPrice(clearingPrices),
      demandWh,
      productionWh,
    },
    households,
  };
}

/** Σ(price × traded) / Σ traded over intervals with a price and traded energy, rounded down; null if none. */
function meanClearingPrice(clearingPrices: readonly ClearingPriceView[]): number | null {
  let weighted = 0n;
  let volumeWh = 0n;
  for (const c of clearingPrices) {
    assertCount(c.tradedWh, `clearing price interval ${c.interval} tradedWh`);
    if (c.priceMicrosPerKwh === null || c.tradedWh === 0) continue;
    assertPrice(c.priceMicrosPerKwh, `clearing price interval ${c.interval}`);
    weighted += BigInt(c.priceMicrosPerKwh) * BigInt(c.tradedWh);
    volumeWh += BigInt(c.tradedWh);
  }
  return volumeWh === 0n ? null : toSafeNumber(floorDiv(weighted, volumeWh), "meanClearingPriceMicrosPerKwh");
}
