import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeKpis, type HouseholdIntervalTruth, type Kpis } from "./kpis.ts";
import { formatKwh, formatMoney, formatPrice, formatRatio, formatScaled, REPORT_FILES, type ReportData, thisRun, writeReport } from "./report.ts";

function row(interval: number, loadWh: number, pvWh: number, importWh: number, exportWh: number): HouseholdIntervalTruth {
  return { interval, loadWh, pvWh, importWh, exportWh };
}

const GRID = { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 77_777 };

/** The two-household case of kpis.test.ts: a sells 500 Wh to b at 0.20/kWh in interval 0. */
function kpis(): Kpis {
  return computeKpis({
    truth: new Map([
      ["a", [row(0, 400, 1000, 0, 600), row(1, 300, 200, 100, 0)]],
      ["b|pipe", [row(0, 500, 0, 500, 0), row(1, 703, 0, 703, 0)]],
    ]),
    ledger: [
      { interval: 0, buyer: "b|pipe", seller: "a", energyWh: 500, priceMicrosPerKwh: 200_000, amountMicros: 100_000n, reason: "trade" },
      { interval: 0, buyer: "grid", seller: "a", energyWh: 100, priceMicrosPerKwh: 77_777, amountMicros: 7_777n, reason: "grid-export" },
      { interval: 1, buyer: "a", seller: "grid", energyWh: 100, priceMicrosPerKwh: 300_000, amountMicros: 30_000n, reason: "grid-import" },
      { interval: 1, buyer: "b|pipe", seller: "grid", energyWh: 703, priceMicrosPerKwh: 300_000, amountMicros: 210_900n, reason: "grid-import" },
    ],
    grid: GRID,
    clearingPrices: [
      { interval: 0, priceMicrosPerKwh: 200_000, tradedWh: 500 },
      { interval: 1, priceMicrosPerKwh: null, tradedWh: 0 },
    ],
  });
}

function reportData(overrides: Partial<ReportData> = {}): ReportData {
  return {
    scenario: {
      name: "Two houses, one sunny",
      seed: 42,
      start: "2024-06-01T00:00:00Z",
      durationMinutes: 30,
      marketIntervalMinutes: 15,
      market: "pay-as-clear",
      grid: GRID,
      households: 2,
    },
    intervals: [
      {
        interval: 0,
        startIso: "2024-06-01T00:00:00Z",
        clearingPriceMicrosPerKwh: 200_000,
        tradedWh: 500,
        loadWh: 900,
        pvWh: 1000,
        gridImportWh: 0,
        gridExportWh: 100,
      },
      {
        interval: 1,
        startIso: "2024-06-01T00:15:00Z",
        clearingPriceMicrosPerKwh: null,
        tradedWh: 0,
        loadWh: 1003,
        pvWh: 200,
        gridImportWh: 803,
        gridExportWh: 0,
      },
    ],
    kpis: kpis(),
    forecastErrors: [
      { forecaster: "persistence", strategy: "greedy", households: 1, maeWh: 123.4, mapePercent: 17.25 },
      { forecaster: "oracle", strategy: "zero-intelligence", households: 1, maeWh: 0, mapePercent: null },
    ],
    run: { blocks: 12, ledgerEntries: 4, envelopes: 96, wallSeconds: 3.21, settledIntervals: 2 },
    ...overrides,
  };
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "jamgate-report-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("formatScaled", () => {
  it("rounds half away from zero on integers, never printing -0", () => {
    expect(formatMoney(5_000)).toBe("0.01"); // 0.005 → 0.01
    expect(formatMoney(4_999)).toBe("0.00");
    expect(formatMoney(-5_000)).toBe("-0.01");
    expect(formatMoney(-4_999)).toBe("0.00");
    expect(formatMoney(111_111)).toBe("0.11");
    expect(formatMoney(1_234_565_000)).toBe("1234.57");
    expect(formatMoney(2n ** 70n)).toBe("1180591620717411.30"); // 2^70 micros, beyond a double's integer range
    expect(formatKwh(1903)).toBe("1.90");
    expect(formatKwh(5)).toBe("0.01");
    expect(formatPrice(77_777)).toBe("0.0778");
    expect(formatScaled(123, 3, 3)).toBe("0.123");
    expect(formatRatio(0.578)).toBe("57.80 % (0.5780)");
  });

  it("rejects a fraction", () => {
    expect(() => formatMoney(0.5)).toThrow(/integer/);
  });
});

describe("writeReport", () => {
  it("creates the directory and writes exactly the files it lists", async () => {
    const dir = join(root, "nested", "run-1");
    const { files } = await writeReport(dir, reportData());
    expect(files.map((f) => basename(f))).toEqual(["report.md", "prices.svg", "energy.svg", "savings.svg", "kpis.json"]);
    expect((await readdir(dir)).sort()).toEqual(files.map((f) => basename(f)).sort());
    for (const f of files) expect((await readFile(f, "utf8")).length).toBeGreaterThan(0);
  });

  it("links every SVG it wrote, and only files it wrote", async () => {
    const dir = join(root, "links");
    const { files } = await writeReport(dir, reportData());
    const md = await readFile(join(dir, REPORT_FILES.markdown), "utf8");
    const svgs = files.filter((f) => f.endsWith(".svg")).map((f) => basename(f));
    expect(svgs.length).toBe(3);
    for (const svg of svgs) expect(md).toContain(`](${svg})`);
    const linked = [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
    expect(linked.sort()).toEqual([...svgs].sort());
    for (const f of svgs) {
      const svg = await readFile(join(dir, f), "utf8");
      expect(svg).toMatch(/^<svg\b[\s\S]*<\/svg>$/);
    }
  });

  it("puts the community KPIs, per-household rows, forecast errors and run facts in report.md", async () => {
    const dir = join(root, "content");
    await writeReport(dir, reportData());
    const md = await readFile(join(dir, REPORT_FILES.markdown), "utf8");
    expect(md).toMatch(/^# Energy market report: Two houses, one sunny\n/);
    // Community: numbers hand-computed in kpis.test.ts.
    expect(md).toContain("| Self-sufficiency | 57.80 % (0.5780) |"); // (1903 − 803) / 1903
    expect(md).toContain("| Self-consumption | 91.67 % (0.9167) |"); // (1200 − 100) / 1200
    expect(md).toContain("| Savings versus grid only | 0.11 (111111 micros) |");
    expect(md).toContain("| Demand | 1.90 kWh |");
    expect(md).toContain("| Production (PV) | 1.20 kWh |");
    expect(md).toContain("| Grid import | 0.80 kWh |");
    expect(md).toContain("| Grid export | 0.10 kWh |");
    expect(md).toContain("| Traded between households | 0.50 kWh |");
    expect(md).toContain("| Mean clearing price | 0.2000 /kWh (200000 micros/kWh) |");
    // Households: id, demand, production, bought, sold, ratios, savings (a: 61_111 micros, b: 50_000).
    expect(md).toContain("| a | 0.70 | 1.20 | 0.00 | 0.50 | 85.71 % (0.8571) | 50.00 % (0.5000) | 0.06 |");
    expect(md).toContain("| b\\|pipe | 1.20 | 0.00 | 0.50 | 0.00 | 0.00 % (0.0000) | 0.00 % (0.0000) | 0.05 |"); // pipe escaped
    // Forecast errors and run facts.
    expect(md).toContain("| persistence | greedy | 1 | 123 | 17.3 % |");
    expect(md).toContain("| oracle | zero-intelligence | 1 | 0 | n/a |");
    expect(md).toContain("| Blocks | 12 |");
    expect(md).toContain("| Ledger entries | 4 |");
    expect(md).toContain("| Envelopes | 96 |");
    expect(md).toContain("| Settled intervals | 2 of 2 |");
    expect(md).toContain("| Wall time | 3.2 s |");
    // Scenario.
    expect(md).toContain("| Seed | 42 |");
    expect(md).toContain("| Grid feed-in price | 0.0778 /kWh (77777 micros/kWh) |");
    // Every KPI is explained.
    for (const term of [
      "**Self-sufficiency**",
      "**Self-consumption**",
      "**Per household**",
      "**Savings**",
      "**Grid import / export**",
      "**Mean clearing price**",
    ]) {
      expect(md).toContain(term);
    }
  });

  it("writes kpis.json with the integer KPIs unchanged", async () => {
    const dir = join(root, "json");
    const data = reportData();
    await writeReport(dir, data);
    const json: unknown = JSON.parse(await readFile(join(dir, REPORT_FILES.kpisJson), "utf8"));
    expect(json).toEqual(data.kpis);
    expect((json as Kpis).community.savingsMicros).toBe(111_111);
  });

  it("charts carry their titles and series; savings bars are sorted highest first", async () => {
    const dir = join(root, "charts");
    await writeReport(dir, reportData());
    const prices = await readFile(join(dir, REPORT_FILES.pricesChart), "utf8");
    for (const name of ["Clearing price and traded energy per interval", "Clearing price", "Grid import price", "Grid feed-in price", "Traded energy"]) {
      expect(prices).toContain(`>${name}</text>`);
    }
    const energy = await readFile(join(dir, REPORT_FILES.energyChart), "utf8");
    for (const name of ["Load", "PV", "Grid import", "Grid export", "Energy per interval (kWh)"]) expect(energy).toContain(`>${name}</text>`);
    const savings = await readFile(join(dir, REPORT_FILES.savingsChart), "utf8");
    expect(savings).toContain(">Savings per household versus grid only</text>");
    // a saved 0.061111, b|pipe 0.05: a comes first.
    expect(savings.indexOf(">a</text>")).toBeGreaterThan(0);
    expect(savings.indexOf(">a</text>")).toBeLessThan(savings.indexOf(">b|pipe</text>"));
  });

  it("without intervals or households it writes no charts and links none", async () => {
    const dir = join(root, "empty");
    const empty: Kpis = {
      community: { ...kpis().community },
      households: {},
    };
    const { files } = await writeReport(dir, reportData({ intervals: [], kpis: empty, forecastErrors: [] }));
    expect(files.map((f) => basename(f))).toEqual(["report.md", "kpis.json"]);
    const md = await readFile(join(dir, REPORT_FILES.markdown), "utf8");
    expect(md).not.toMatch(/!\[/);
    expect(md).toContain("No intervals were simulated.");
    expect(md).toContain("No households.");
    expect(md).toContain("No forecasts were recorded.");
  });

  it("shows the highest and lowest savings when households exceed the chart's bar bound", async () => {
    const households: Record<string, Kpis["households"][string]> = {};
    const base = kpis().households.a!;
    for (let i = 0; i < 205; i++) households[`h${String(i).padStart(3, "0")}`] = { ...base, savingsMicros: i * 1000 };
    const dir = join(root, "many");
    await writeReport(dir, reportData({ kpis: { community: kpis().community, households } }));
    const savings = await readFile(join(dir, REPORT_FILES.savingsChart), "utf8");
    expect(savings).toContain("(100 highest and 100 lowest of 205)");
    expect(savings).toContain(">h204</text>"); // highest
    expect(savings).toContain(">h000</text>"); // lowest
    expect(savings).not.toContain(">h102</text>"); // the middle is left out of the chart
    const md = await readFile(join(dir, REPORT_FILES.markdown), "utf8");
    expect(md).toContain("| h102 |"); // but not out of the table
  });
});

describe("this run, in words", () => {
  it("states the run's own numbers: production against demand, where the price sat in the band, who bought and sold, the imbalance", () => {
    const text = thisRun(reportData({ imbalance: { shortfallWh: 250, surplusWh: 0 } }));
    // Production 1,200 Wh against demand 1,903 Wh = 0.63×.
    expect(text).toMatch(/PV produced 1\.20 kWh against 1\.90 kWh of demand \(0\.63×\)/);
    // Price 200,000 in the band 77,777 … 300,000: (200,000 − 77,777) / 222,223 = 55 %.
    expect(text).toMatch(/0\.50 kWh were traded between households at a mean of 0\.2000 \/kWh, 55 % of the way/);
    expect(text).toMatch(/Bids outnumber offers/);
    expect(text).toMatch(/1 households only bought and 1 sold; 0 of the sellers end with negative savings/);
    expect(text).toMatch(/0\.25 kWh of shortfalls and 0\.00 kWh of unused purchases/);
  });
});
