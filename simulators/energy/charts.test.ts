import { afterEach, describe, expect, it } from "vitest";
import { BAR_CHART_BARS_MAX, CHART_SERIES_MAX, barChartSvg, lineChartSvg } from "./charts.ts";

const SVG_DOCUMENT = /^<svg\b[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>[\s\S]*<\/svg>$/;

/** The text content of every <text> element, in document order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

function quarterHours(n: number): string[] {
  return Array.from({ length: n }, (_, i) => new Date(Date.UTC(2024, 5, 1, 0, 15 * i)).toISOString());
}

/** Every opened <g> is closed: a cheap well-formedness check without an XML parser. */
function balancedGroups(svg: string): boolean {
  return (svg.match(/<g\b/g) ?? []).length === (svg.match(/<\/g>/g) ?? []).length;
}

describe("lineChartSvg", () => {
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it("renders an SVG document with the title, axis titles and every series name", async () => {
    const times = quarterHours(8);
    const svg = await lineChartSvg({
      title: "Prices & volumes <test>",
      timesIso: times,
      yTitle: "Price (currency units/kWh)",
      series: [
        { name: "Clearing price", values: [0.2, null, 0.21, 0.22, null, 0.2, 0.19, 0.2] },
        { name: "Grid import price", values: times.map(() => 0.3) },
      ],
      bars: { series: [{ name: "Traded energy", values: [1, 0, 2, 3, 0, 1, 1, 2] }], yTitle: "Traded energy (kWh)", intervalMinutes: 15 },
    });
    expect(svg).toMatch(SVG_DOCUMENT);
    expect(balancedGroups(svg)).toBe(true);
    const t = texts(svg);
    expect(t).toContain("Prices &amp; volumes &lt;test&gt;"); // escaped, not raw markup
    expect(t).toContain("Clearing price");
    expect(t).toContain("Grid import price");
    expect(t).toContain("Traded energy");
    expect(t).toContain("Price (currency units/kWh)");
    expect(t).toContain("Traded energy (kWh)");
    expect(t).toContain("Interval start (UTC)");
  });

  it("draws one column per interval spanning the interval, from zero", async () => {
    const svg = await lineChartSvg({
      title: "t",
      timesIso: quarterHours(4),
      yTitle: "y",
      series: [{ name: "line", values: [1, 2, 3, 4] }],
      bars: { series: [{ name: "bars", values: [1, 2, 3, 4] }], yTitle: "z", intervalMinutes: 15 },
      widthPx: 400,
      heightPx: 200,
    });
    // 4 intervals over a 60-minute axis of 400 px: each bar 100 px wide, not Vega-Lite's 5 px Gantt bar.
    const barGroup = /<g class="mark-rect role-mark[^"]*"[^>]*>([\s\S]*?)<\/g>/.exec(svg)?.[1] ?? "";
    const bars = [...barGroup.matchAll(/d="M[-\d.]+,[-\d.]+h([-\d.]+)v([-\d.]+)h[-\d.]+Z"/g)].map((m) => ({
      width: Number(m[1]),
      height: Math.abs(Number(m[2])),
    }));
    expect(bars.map((b) => b.width)).toEqual([100, 100, 100, 100]);
    // Heights proportional to 1, 2, 3, 4 on a zero-based axis.
    expect(bars.map((b) => b.height / bars[3]!.height)).toEqual([0.25, 0.5, 0.75, 1]);
  });

  it("labels the time axis in UTC whatever the process time zone", async () => {
    process.env.TZ = "America/New_York";
    const svg = await lineChartSvg({ title: "t", timesIso: quarterHours(5), yTitle: "y", series: [{ name: "s", values: [1, 2, 3, 4, 5] }] });
    expect(texts(svg)).toContain("Jun 01 00:00");
  });

  it("rejects series that do not match the times, duplicate names, too many series and bad times", async () => {
    const timesIso = quarterHours(2);
    await expect(lineChartSvg({ title: "t", timesIso, yTitle: "y", series: [{ name: "s", values: [1] }] })).rejects.toThrow(/1 values, expected 2/);
    await expect(
      lineChartSvg({
        title: "t",
        timesIso,
        yTitle: "y",
        series: [
          { name: "s", values: [1, 2] },
          { name: "s", values: [1, 2] },
        ],
      }),
    ).rejects.toThrow(/duplicate/);
    const many = Array.from({ length: CHART_SERIES_MAX + 1 }, (_, i) => ({ name: `s${i}`, values: [1, 2] }));
    await expect(lineChartSvg({ title: "t", timesIso, yTitle: "y", series: many })).rejects.toThrow(/CHART_SERIES_MAX/);
    await expect(lineChartSvg({ title: "t", timesIso: ["yesterday"], yTitle: "y", series: [{ name: "s", values: [1] }] })).rejects.toThrow(/ISO/);
    await expect(lineChartSvg({ title: "t", timesIso, yTitle: "y", series: [{ name: "s", values: [1, Number.NaN] }] })).rejects.toThrow(/non-finite/);
  });
});

describe("barChartSvg", () => {
  it("renders the title, axis titles and categories in the order given", async () => {
    const svg = await barChartSvg({
      title: "Savings per household",
      categories: ["h-b", "h-c", "h-a"],
      series: [{ name: "Savings", values: [3, -1, 0.5] }],
      categoryTitle: "Household",
      valueTitle: "Savings (currency units)",
    });
    expect(svg).toMatch(SVG_DOCUMENT);
    expect(balancedGroups(svg)).toBe(true);
    const t = texts(svg);
    expect(t).toContain("Savings per household");
    expect(t).toContain("Savings (currency units)");
    expect(t).toContain("Household");
    expect(t).toContain("Savings"); // legend: the series name
    const order = ["h-b", "h-c", "h-a"].map((c) => t.indexOf(c));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order); // not re-sorted alphabetically
  });

  it("groups several series side by side, vertically too", async () => {
    const svg = await barChartSvg({
      title: "Energy",
      categories: ["a", "b"],
      series: [
        { name: "Bought", values: [1, 2] },
        { name: "Sold", values: [2, 0] },
      ],
      categoryTitle: "Household",
      valueTitle: "Energy (kWh)",
      orientation: "vertical",
    });
    const t = texts(svg);
    expect(t).toContain("Bought");
    expect(t).toContain("Sold");
    expect(t).toContain("Energy (kWh)");
  });

  it("rejects more categories than BAR_CHART_BARS_MAX and duplicate categories", async () => {
    const categories = Array.from({ length: BAR_CHART_BARS_MAX + 1 }, (_, i) => `h${i}`);
    await expect(
      barChartSvg({ title: "t", categories, series: [{ name: "s", values: categories.map(() => 1) }], categoryTitle: "c", valueTitle: "v" }),
    ).rejects.toThrow(/BAR_CHART_BARS_MAX/);
    await expect(
      barChartSvg({ title: "t", categories: ["a", "a"], series: [{ name: "s", values: [1, 2] }], categoryTitle: "c", valueTitle: "v" }),
    ).rejects.toThrow(/unique/);
  });
});
