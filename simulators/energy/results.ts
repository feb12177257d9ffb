/**
 * A run's results from what it read back: the ledger with device ids turned into household ids,
 * the community's totals per interval, the KPIs (kpis.ts, against the household models' truth),
 * and the data of its report (report.ts).
 */
import type { StoredLedgerEntry } from "../../services/energy-trading/types.ts";
import type { SimClock } from "./clock.ts";
import type { Household } from "./devices.ts";
import { computeKpis, type ClearingPriceView, type HouseholdIntervalTruth, type Kpis, type LedgerEntryView } from "./kpis.ts";
import type { ForecastErrorRow, IntervalRow, ReportData } from "./report.ts";
import type { Scenario } from "./scenario.ts";
import { partyHex, type SettledInterval } from "./service-state.ts";

export interface RunResults {
  /** Every ledger entry, by the scenario's interval, parties named by household id (or "grid"). */
  readonly ledger: readonly LedgerEntryView[];
  readonly rows: readonly IntervalRow[];
  readonly kpis: Kpis;
}

/** The results of the scenario's intervals, `settled[k]` being interval k as read from the chain. */
export function assembleResults(scenario: Scenario, clock: SimClock, households: readonly Household[], settled: readonly SettledInterval[]): RunResults {
  const byMeter = new Map(households.map((h) => [h.meterKey.deviceId as string, h]));
  const idOf = (party: StoredLedgerEntry["buyer"]) => (party === "grid" ? "grid" : (byMeter.get(partyHex(party))?.id ?? partyHex(party)));
  const ledger: LedgerEntryView[] = [];
  const rows: IntervalRow[] = [];
  const clearingPrices: ClearingPriceView[] = [];
  for (let k = 0; k < clock.intervals; k++) {
    const { summary, entries } = settled[k]!;
    for (const e of entries)
      ledger.push({
        interval: k,
        buyer: idOf(e.buyer),
        seller: idOf(e.seller),
        energyWh: e.energyWh,
        priceMicrosPerKwh: e.priceMicrosPerKwh,
        amountMicros: e.amountMicros,
        reason: e.reason,
      });
    const tradedWh = Number(summary?.tradedWh ?? 0n);
    clearingPrices.push({ interval: k, priceMicrosPerKwh: summary?.clearingPriceMicrosPerKwh ?? null, tradedWh });
    rows.push({
      interval: k,
      startIso: new Date(clock.startMs + k * clock.intervalMs).toISOString(),
      clearingPriceMicrosPerKwh: summary?.clearingPriceMicrosPerKwh ?? null,
      tradedWh,
      ...communityEnergy(households, k),
      ...gridEnergy(entries),
    });
  }
  const kpis = computeKpis({ truth: truthOf(households, clock.intervals), ledger, grid: scenario.grid, clearingPrices });
  return { ledger, rows, kpis };
}

/** The community's load and PV in interval `k`, from the household models. */
function communityEnergy(households: readonly Household[], k: number): { loadWh: number; pvWh: number } {
  let loadWh = 0;
  let pvWh = 0;
  for (const h of households) {
    const e = h.model.intervalEnergy(k);
    loadWh += e?.loadWh ?? 0;
    pvWh += e?.pvWh ?? 0;
  }
  return { loadWh, pvWh };
}

/** Energy bought from (import) and sold to (export) the grid in an interval's ledger entries. */
function gridEnergy(entries: readonly StoredLedgerEntry[]): { gridImportWh: number; gridExportWh: number } {
  let gridImportWh = 0;
  let gridExportWh = 0;
  for (const e of entries) {
    if (e.seller === "grid") gridImportWh += e.energyWh;
    if (e.buyer === "grid") gridExportWh += e.energyWh;
  }
  return { gridImportWh, gridExportWh };
}

/** Each household's intervals as its model saw them: the KPIs' truth. */
function truthOf(households: readonly Household[], intervals: number): Map<string, HouseholdIntervalTruth[]> {
  const truth = new Map<string, HouseholdIntervalTruth[]>();
  for (const h of households) {
    const list: HouseholdIntervalTruth[] = [];
    for (let k = 0; k < intervals; k++) {
      const e = h.model.intervalEnergy(k);
      if (e !== undefined) list.push({ interval: k, loadWh: e.loadWh, pvWh: e.pvWh, importWh: e.importWh, exportWh: e.exportWh });
    }
    truth.set(h.id, list);
  }
  return truth;
}

/** The report's data: the scenario, the results, the agents' forecast errors, and the run's facts. */
export function reportDataOf(
  scenario: Scenario,
  households: readonly Household[],
  results: RunResults,
  run: { readonly blocks: number; readonly envelopes: number; readonly wallSeconds: number },
): ReportData {
  const { ledger } = results;
  return {
    scenario: {
      name: scenario.name,
      seed: scenario.seed,
      start: scenario.start,
      durationMinutes: scenario.durationMinutes,
      marketIntervalMinutes: scenario.marketIntervalMinutes,
      market: scenario.market,
      grid: scenario.grid,
      households: households.length,
    },
    intervals: results.rows,
    kpis: results.kpis,
    forecastErrors: forecastErrors(households),
    run: { blocks: run.blocks, ledgerEntries: ledger.length, envelopes: run.envelopes, wallSeconds: run.wallSeconds, settledIntervals: results.rows.length },
    imbalance: {
      shortfallWh: ledger.filter((e) => e.reason === "shortfall").reduce((sum, e) => sum + e.energyWh, 0),
      surplusWh: ledger.filter((e) => e.reason === "surplus").reduce((sum, e) => sum + e.energyWh, 0),
    },
  };
}

/** The agents' forecast errors, one row per forecaster and strategy: mean MAE, and mean MAPE over the agents that have one. */
function forecastErrors(households: readonly Household[]): ForecastErrorRow[] {
  const groups = new Map<string, { forecaster: string; strategy: string; households: number; mae: number; mape: number; mapeCount: number }>();
  for (const h of households) {
    const key = `${h.agent.forecaster.name}/${h.agent.strategy.name}`;
    const g = groups.get(key) ?? { forecaster: h.agent.forecaster.name, strategy: h.agent.strategy.name, households: 0, mae: 0, mape: 0, mapeCount: 0 };
    g.households++;
    g.mae += h.agent.errors.mae();
    const mape = h.agent.errors.mape();
    if (mape !== null) {
      g.mape += mape;
      g.mapeCount++;
    }
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({
    forecaster: g.forecaster,
    strategy: g.strategy,
    households: g.households,
    maeWh: g.mae / g.households,
    mapePercent: g.mapeCount === 0 ? null : g.mape / g.mapeCount,
  }));
}
