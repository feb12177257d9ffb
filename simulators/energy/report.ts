/**
 * The report of an energy-market simulation, written to a directory: `report.md` (scenario, KPIs
 * with their meaning, per-household and forecast tables, run facts), the SVG charts it links, and
 * `kpis.json`. KPI definitions follow gsy-e
 * (https://gridsingularity.github.io/gsy-e/self-sufficiency-self-consumption/); see kpis.ts.
 *
 * Stored numbers stay integers in their smallest unit (kpis.json); only the text shows currency
 * units (micros / 10⁶) and kWh (Wh / 10³), rounded half away from zero by exact integer arithmetic.
 * The output depends only on `data`: the same run gives the same report, byte for byte.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BAR_CHART_BARS_MAX, barChartSvg, lineChartSvg } from "./charts.ts";
import type { GridPrices, HouseholdKpis, Kpis } from "./kpis.ts";

/** One market interval as the runner saw it: the community's totals and the clearing result. */
export interface IntervalRow {
  readonly interval: number;
  /** Interval start, ISO 8601 with zone. */
  readonly startIso: string;
  /** null when the interval did not clear (no trade). */
  readonly clearingPriceMicrosPerKwh: number | null;
  readonly tradedWh: number;
  readonly loadWh: number;
  readonly pvWh: number;
  readonly gridImportWh: number;
  readonly gridExportWh: number;
}

export interface ForecastErrorRow {
  readonly forecaster: string;
  readonly strategy: string;
  readonly households: number;
  /** Mean absolute error per interval, Wh. */
  readonly maeWh: number;
  /** Mean absolute percentage error; null when undefined (every actual was 0). */
  readonly mapePercent: number | null;
}

export interface ReportData {
  readonly scenario: {
    readonly name: string;
    readonly seed: number;
    readonly start: string;
    readonly durationMinutes: number;
    readonly marketIntervalMinutes: number;
    readonly market: string;
    readonly grid: GridPrices;
    readonly households: number;
  };
  readonly intervals: readonly IntervalRow[];
  readonly kpis: Kpis;
  readonly forecastErrors: readonly ForecastErrorRow[];
  readonly run: {
    readonly blocks: number;
    readonly ledgerEntries: number;
    readonly envelopes: number;
    readonly wallSeconds: number;
    readonly settledIntervals: number;
  };
  /** Imbalance settled with the grid (ledger entries "shortfall" and "surplus"), if known: the cost of forecast errors. */
  readonly imbalance?: { readonly shortfallWh: number; readonly surplusWh: number };
}

/** File names inside the report directory. */
export const REPORT_FILES = {
  markdown: "report.md",
  pricesChart: "prices.svg",
  energyChart: "energy.svg",
  savingsChart: "savings.svg",
  kpisJson: "kpis.json",
} as const;

/** Digits of the smallest unit: micros per currency unit (10⁶) and Wh per kWh (10³). */
const MICROS_DIGITS = 6;
const WH_DIGITS = 3;
/** Shown decimals: cents for money, 10 Wh for energy, 0.01 % for ratios (they keep 4 decimals), 1/100 cent for prices. */
const MONEY_DECIMALS = 2;
const ENERGY_DECIMALS = 2;
const PRICE_DECIMALS = 4;

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`report: ${message}`);
}

/**
 * `value / 10^scaleDigits` with `decimals` decimals, rounded half away from zero, computed on
 * integers so that no float rounding shows (e.g. 5_000 micros → "0.01").
 */
export function formatScaled(value: number | bigint, scaleDigits: number, decimals: number): string {
  assert(typeof value === "bigint" || Number.isSafeInteger(value), `formatScaled: ${value} is not an integer`);
  assert(decimals <= scaleDigits, "formatScaled: more decimals than the unit has");
  let v = BigInt(value);
  const negative = v < 0n;
  if (negative) v = -v;
  const divisor = 10n ** BigInt(scaleDigits - decimals);
  let q = v / divisor;
  if ((v % divisor) * 2n >= divisor && divisor > 1n) q += 1n;
  const digits = q.toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals);
  return `${negative && q !== 0n ? "-" : ""}${whole}${decimals > 0 ? `.${fraction}` : ""}`;
}

/** Micros as currency units with 2 decimals. */
export const formatMoney = (micros: number | bigint): string => formatScaled(micros, MICROS_DIGITS, MONEY_DECIMALS);
/** Wh as kWh with 2 decimals. */
export const formatKwh = (wh: number | bigint): string => formatScaled(wh, WH_DIGITS, ENERGY_DECIMALS);
/** Micros per kWh as currency units per kWh with 4 decimals. */
export const formatPrice = (microsPerKwh: number): string => formatScaled(microsPerKwh, MICROS_DIGITS, PRICE_DECIMALS);
/** A ratio in [0, 1] with 4 decimals as "57.80 % (0.5780)". */
export const formatRatio = (ratio: number): string => `${(ratio * 100).toFixed(2)} % (${ratio.toFixed(4)})`;

/** Text safe inside a markdown table cell: no pipe, newline or HTML tag can break the table. */
function cell(text: string): string {
  return text
    .replace(/\\/g, "\\\\")
    .replace(/\|/g, "\\|")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/[\r\n]+/g, " ");
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = header.map((_, i) => (i === 0 ? "---" : "---:"));
  return [header, align, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

const microsToUnits = (micros: number): number => micros / 10 ** MICROS_DIGITS;
const whToKwh = (wh: number): number => wh / 10 ** WH_DIGITS;

interface Chart {
  readonly file: string;
  readonly alt: string;
  readonly svg: string;
}

async function pricesChart(data: ReportData): Promise<Chart> {
  const rows = data.intervals;
  const { grid } = data.scenario;
  const svg = await lineChartSvg({
    title: "Clearing price and traded energy per interval",
    timesIso: rows.map((r) => r.startIso),
    yTitle: "Price (currency units/kWh)",
    series: [
      { name: "Clearing price", values: rows.map((r) => (r.clearingPriceMicrosPerKwh === null ? null : microsToUnits(r.clearingPriceMicrosPerKwh))) },
      { name: "Grid import price", values: rows.map(() => microsToUnits(grid.importPriceMicrosPerKwh)) },
      { name: "Grid feed-in price", values: rows.map(() => microsToUnits(grid.exportPriceMicrosPerKwh)) },
    ],
    bars: {
      series: [{ name: "Traded energy", values: rows.map((r) => whToKwh(r.tradedWh)) }],
      yTitle: "Traded energy (kWh)",
      intervalMinutes: data.scenario.marketIntervalMinutes,
    },
  });
  return { file: REPORT_FILES.pricesChart, alt: "Clearing price and traded energy per interval", svg };
}

async function energyChart(data: ReportData): Promise<Chart> {
  const rows = data.intervals;
  const svg = await lineChartSvg({
    title: "Community load, PV and grid exchange per interval",
    timesIso: rows.map((r) => r.startIso),
    yTitle: "Energy per interval (kWh)",
    series: [
      { name: "Load", values: rows.map((r) => whToKwh(r.loadWh)) },
      { name: "PV", values: rows.map((r) => whToKwh(r.pvWh)) },
      { name: "Grid import", values: rows.map((r) => whToKwh(r.gridImportWh)) },
      { name: "Grid export", values: rows.map((r) => whToKwh(r.gridExportWh)) },
    ],
  });
  return { file: REPORT_FILES.energyChart, alt: "Community load, PV, grid import and grid export per interval", svg };
}

/** Households by savings, highest first (ties by id); past BAR_CHART_BARS_MAX, the highest and lowest halves. */
async function savingsChart(households: readonly (readonly [string, HouseholdKpis])[]): Promise<Chart> {
  const sorted = [...households].sort(([a, x], [b, y]) => y.savingsMicros - x.savingsMicros || (a < b ? -1 : a > b ? 1 : 0));
  const half = Math.floor(BAR_CHART_BARS_MAX / 2);
  const shown = sorted.length <= BAR_CHART_BARS_MAX ? sorted : [...sorted.slice(0, half), ...sorted.slice(-half)];
  const title =
    shown.length === sorted.length
      ? "Savings per household versus grid only"
      : `Savings per household versus grid only (${half} highest and ${half} lowest of ${sorted.length})`;
  const svg = await barChartSvg({
    title,
    categories: shown.map(([id]) => id),
    series: [{ name: "Savings", values: shown.map(([, k]) => microsToUnits(k.savingsMicros)) }],
    categoryTitle: "Household",
    valueTitle: "Savings (currency units)",
  });
  return { file: REPORT_FILES.savingsChart, alt: "Savings per household, sorted", svg };
}

function kpiSection(data: ReportData): string {
  const c = data.kpis.community;
  const { grid } = data.scenario;
  const mean = c.meanClearingPriceMicrosPerKwh;
  const rows: string[][] = [
    ["Self-sufficiency", formatRatio(c.selfSufficiency)],
    ["Self-consumption", formatRatio(c.selfConsumption)],
    ["Savings versus grid only", `${formatMoney(c.savingsMicros)} (${c.savingsMicros} micros)`],
    ["Demand", `${formatKwh(c.demandWh)} kWh`],
    ["Production (PV)", `${formatKwh(c.productionWh)} kWh`],
    ["Grid import", `${formatKwh(c.gridImportWh)} kWh`],
    ["Grid export", `${formatKwh(c.gridExportWh)} kWh`],
    ["Traded between households", `${formatKwh(c.tradedWh)} kWh`],
    ["Mean clearing price", mean === null ? "no trades" : `${formatPrice(mean)} /kWh (${mean} micros/kWh)`],
  ];
  return [
    "## Community KPIs",
    "",
    table(["KPI", "Value"], rows),
    "",
    "How to read them (definitions after gsy-e, https://gridsingularity.github.io/gsy-e/self-sufficiency-self-consumption/):",
    "",
    "- **Self-sufficiency** is the share of the community's demand met by energy produced inside the community, by the household itself or bought from a neighbour: (demand − grid import) / demand. 100 % means the grid never had to deliver. With PV and no storage it is bounded by how much demand falls in daylight: at night every household imports, so even a community that produces more than it uses over a day stays well below 100 %.",
    "- **Self-consumption** is the share of the community's production used inside it rather than exported: (production − grid export) / production. It drops at midday, when PV exceeds everyone's demand and the surplus goes to the grid; trading raises it by sending a household's surplus to a neighbour instead.",
    "- **Per household** the same two ratios count only the household's own production: (demand − metered import) / demand and (production − metered export) / production. Energy bought from a neighbour arrives through the meter like grid energy, so a household without PV scores 0 % on both however much it buys locally; the community ratios are where local trade shows.",
    `- **Savings** compare two bills for the same metered energy: with the grid as the only counterparty (import at ${formatPrice(grid.importPriceMicrosPerKwh)} /kWh, feed-in at ${formatPrice(grid.exportPriceMicrosPerKwh)} /kWh, each interval rounded down to the micro) minus what the market's ledger actually charged. A trade at a price between the feed-in and import price saves the buyer (import price − trade price) and earns the seller (trade price − feed-in price) per kWh, so a kWh traded locally that one household would otherwise have exported and another imported saves the community the whole spread between the two grid prices, shared out by the clearing price. A household can show negative savings when it traded outside that band, or when a delivery fell short and the gap was settled with the grid.`,
    "- **Grid import / export** are the energy of ledger entries with the grid as seller / buyer, including the settlement of shortfalls and surpluses; **traded** energy is the energy of peer trades.",
    "- **Mean clearing price** is the volume-weighted mean of the interval clearing prices over the intervals that traded (rounded down to the micro). It should lie between the feed-in and the import price; the closer it sits to one of them, the more of the savings go to the other side (buyers near feed-in, sellers near import).",
  ].join("\n");
}

/** What this run's numbers say, in words: the explanation the KPIs need to be read as plausible or not. */
export function thisRun(data: ReportData): string {
  const c = data.kpis.community;
  const { importPriceMicrosPerKwh: importPrice, exportPriceMicrosPerKwh: exportPrice } = data.scenario.grid;
  const households = Object.values(data.kpis.households);
  const sellers = households.filter((h) => h.soldWh > 0);
  const buyers = households.filter((h) => h.boughtWh > 0 && h.soldWh === 0);
  const losing = sellers.filter((h) => h.savingsMicros < 0).length;
  const lines: string[] = ["## This run", ""];
  const ratio = c.demandWh === 0 ? null : c.productionWh / c.demandWh;
  if (ratio !== null) {
    lines.push(
      `- PV produced ${formatKwh(c.productionWh)} kWh against ${formatKwh(c.demandWh)} kWh of demand (${ratio.toFixed(2)}×). ${ratio > 1 ? "Production exceeds demand over the run, but" : "Demand exceeds production, and"} self-sufficiency is ${formatRatio(c.selfSufficiency)}: nights and mornings are covered by the grid (and batteries), so it stays below 100 % however much PV there is; ${formatKwh(c.gridExportWh)} kWh still went to the grid, hence a self-consumption of ${formatRatio(c.selfConsumption)}.`,
    );
  }
  if (c.meanClearingPriceMicrosPerKwh !== null && importPrice > exportPrice) {
    const position = (c.meanClearingPriceMicrosPerKwh - exportPrice) / (importPrice - exportPrice);
    lines.push(
      `- ${formatKwh(c.tradedWh)} kWh were traded between households at a mean of ${formatPrice(c.meanClearingPriceMicrosPerKwh)} /kWh, ${(100 * position).toFixed(0)} % of the way from the feed-in to the import price. ${position < 0.5 ? "Offers outnumber bids when PV is plentiful, so the price sits near feed-in and buyers keep most of the spread" : "Bids outnumber offers, so the price sits near the import price and sellers keep most of the spread"}: the community saved ${formatMoney(c.savingsMicros)} in all.`,
    );
  }
  if (sellers.length > 0) {
    const imbalance = data.imbalance;
    lines.push(
      `- ${buyers.length} households only bought and ${sellers.length} sold; ${losing} of the sellers end with negative savings. A seller earns only (price − feed-in) per kWh it delivers, but pays the import price for every kWh it sold and did not deliver (a forecast that was too high), so near-feed-in prices and forecast errors can make selling a loss${imbalance === undefined ? "" : `: ${formatKwh(imbalance.shortfallWh)} kWh of shortfalls and ${formatKwh(imbalance.surplusWh)} kWh of unused purchases were settled with the grid in this run`}. Better forecasts (see the forecast errors below) shrink that loss.`,
    );
  }
  return lines.join("\n");
}

function householdSection(households: readonly (readonly [string, HouseholdKpis])[]): string {
  if (households.length === 0) return "## Households\n\nNo households.";
  const rows = households.map(([id, k]) => [
    cell(id),
    formatKwh(k.demandWh),
    formatKwh(k.productionWh),
    formatKwh(k.boughtWh),
    formatKwh(k.soldWh),
    formatRatio(k.selfSufficiency),
    formatRatio(k.selfConsumption),
    formatMoney(k.savingsMicros),
  ]);
  return [
    "## Households",
    "",
    table(
      [
        "Household",
        "Demand (kWh)",
        "Production (kWh)",
        "Bought from peers (kWh)",
        "Sold to peers (kWh)",
        "Self-sufficiency",
        "Self-consumption",
        "Savings (currency units)",
      ],
      rows,
    ),
  ].join("\n");
}

function forecastSection(rows: readonly ForecastErrorRow[]): string {
  if (rows.length === 0) return "## Forecast errors\n\nNo forecasts were recorded.";
  return [
    "## Forecast errors",
    "",
    "By agent type (forecaster and trading strategy). MAE is the mean absolute error of a forecast interval in Wh; MAPE is undefined when every actual value was 0.",
    "",
    table(
      ["Forecaster", "Strategy", "Households", "MAE (Wh per interval)", "MAPE"],
      rows.map((r) => [
        cell(r.forecaster),
        cell(r.strategy),
        String(r.households),
        String(Math.round(r.maeWh)),
        r.mapePercent === null ? "n/a" : `${r.mapePercent.toFixed(1)} %`,
      ]),
    ),
  ].join("\n");
}

function scenarioSection(data: ReportData): string {
  const s = data.scenario;
  return [
    "## Scenario",
    "",
    table(
      ["Parameter", "Value"],
      [
        ["Name", cell(s.name)],
        ["Seed", String(s.seed)],
        ["Start", cell(s.start)],
        ["Duration", `${s.durationMinutes} min`],
        ["Market interval", `${s.marketIntervalMinutes} min`],
        ["Market", cell(s.market)],
        ["Grid import price", `${formatPrice(s.grid.importPriceMicrosPerKwh)} /kWh (${s.grid.importPriceMicrosPerKwh} micros/kWh)`],
        ["Grid feed-in price", `${formatPrice(s.grid.exportPriceMicrosPerKwh)} /kWh (${s.grid.exportPriceMicrosPerKwh} micros/kWh)`],
        ["Households", String(s.households)],
      ],
    ),
  ].join("\n");
}

function runSection(data: ReportData): string {
  const r = data.run;
  return [
    "## Run",
    "",
    table(
      ["Fact", "Value"],
      [
        ["Blocks", String(r.blocks)],
        ["Ledger entries", String(r.ledgerEntries)],
        ["Envelopes", String(r.envelopes)],
        ["Settled intervals", `${r.settledIntervals} of ${data.intervals.length}`],
        ["Wall time", `${r.wallSeconds.toFixed(1)} s`],
      ],
    ),
  ].join("\n");
}

/**
 * Writes the report into `dir` (created if missing) and returns the paths written, report.md
 * first. Charts over intervals are left out when there are no intervals, the savings chart when
 * there are no households; report.md says so instead of linking a missing file.
 */
export async function writeReport(dir: string, data: ReportData): Promise<{ readonly files: readonly string[] }> {
  const households = Object.entries(data.kpis.households).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hasIntervals = data.intervals.length > 0;
  const prices = hasIntervals ? await pricesChart(data) : null;
  const energy = hasIntervals ? await energyChart(data) : null;
  const savings = households.length > 0 ? await savingsChart(households) : null;
  const image = (chart: Chart | null, missing: string) => (chart === null ? missing : `![${chart.alt}](${chart.file})`);

  const markdown = [
    `# Energy market report: ${cell(data.scenario.name)}`,
    "",
    "Money is shown in currency units (micros / 1,000,000) and energy in kWh; kpis.json keeps the integers (micros, Wh).",
    "",
    scenarioSection(data),
    "",
    kpiSection(data),
    "",
    thisRun(data),
    "",
    "## Per interval",
    "",
    image(prices, "No intervals were simulated."),
    "",
    image(energy, ""),
    "",
    householdSection(households),
    "",
    image(savings, ""),
    "",
    forecastSection(data.forecastErrors),
    "",
    runSection(data),
    "",
  ]
    .join("\n")
    .replace(/\n{3,}/g, "\n\n");

  await mkdir(dir, { recursive: true });
  const outputs: [string, string][] = [[REPORT_FILES.markdown, markdown]];
  for (const chart of [prices, energy, savings]) if (chart !== null) outputs.push([chart.file, chart.svg]);
  outputs.push([REPORT_FILES.kpisJson, `${JSON.stringify(data.kpis, null, 2)}\n`]);
  const files: string[] = [];
  for (const [name, text] of outputs) {
    const path = join(dir, name);
    await writeFile(path, text, "utf8");
    files.push(path);
  }
  return { files };
}
