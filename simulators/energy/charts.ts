/**
 * SVG charts for the energy-market report, rendered headless: a Vega-Lite spec is compiled to
 * Vega (https://vega.github.io/vega-lite/usage/compile.html) and drawn by a Vega View with
 * renderer "none", whose `toSVG()` needs no browser and no canvas
 * (https://vega.github.io/vega/usage/#view-api, "Image Export").
 *
 * Two chart kinds cover the report: a time chart (one line per series over interval start times,
 * optionally with bars on a second y axis) and a categorical bar chart. Numbers here are for
 * display only (kWh, currency units); the report's stored numbers stay integer.
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** Series per chart: Vega's default categorical scheme (tableau10) has 10 distinguishable colors. */
export const CHART_SERIES_MAX = 10;
/** Points per series of a time chart: one leap year of 15-minute intervals (366 × 96). */
export const TIME_CHART_POINTS_MAX = 35_136;
/** Bars of a categorical chart: past ~200 labels collide even on a horizontal chart; tables carry every value. */
export const BAR_CHART_BARS_MAX = 200;
/** Default plot width in px: fits a report page (GitHub renders markdown images up to ~880 px wide). */
export const CHART_WIDTH_PX_DEFAULT = 720;
/** Default plot height in px of a time chart: keeps a 2:5 aspect, readable for a day of intervals. */
export const CHART_HEIGHT_PX_DEFAULT = 280;
/** Height in px per bar of a horizontal bar chart: one 10 px label plus spacing. */
export const BAR_STEP_PX = 14;

/** One named series of values, aligned index by index with the chart's x values; null is a gap. */
export interface ChartSeries {
  readonly name: string;
  readonly values: readonly (number | null)[];
}

export interface LineChartOptions {
  readonly title: string;
  /** Interval start times, ISO 8601 with zone (e.g. "2024-06-01T00:15:00Z"); shown in UTC. */
  readonly timesIso: readonly string[];
  /** Drawn as lines with points, against the left y axis. */
  readonly series: readonly ChartSeries[];
  /** Left y axis title, with its unit, e.g. "Price (currency units/kWh)". */
  readonly yTitle: string;
  /** x axis title; default "Interval start (UTC)". */
  readonly xTitle?: string;
  /**
   * Optional bars on an independent right y axis, one bar spanning each interval
   * [start, start + intervalMinutes) (e.g. traded energy under a price line).
   */
  readonly bars?: { readonly series: readonly ChartSeries[]; readonly yTitle: string; readonly intervalMinutes: number };
  readonly widthPx?: number;
  readonly heightPx?: number;
}

export interface BarChartOptions {
  readonly title: string;
  /** Bar labels, drawn in the order given (sort before calling). */
  readonly categories: readonly string[];
  /** One or more series aligned with `categories`; several series are drawn side by side. */
  readonly series: readonly ChartSeries[];
  /** Title of the category axis. */
  readonly categoryTitle: string;
  /** Title of the value axis, with its unit. */
  readonly valueTitle: string;
  /** "horizontal" (default) puts categories on the y axis, which keeps long or many labels readable. */
  readonly orientation?: "horizontal" | "vertical";
  readonly widthPx?: number;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`charts: ${message}`);
}

function checkSeries(series: readonly ChartSeries[], length: number, what: string): void {
  assert(series.length >= 1, `${what}: at least one series`);
  assert(series.length <= CHART_SERIES_MAX, `${what}: ${series.length} series > CHART_SERIES_MAX ${CHART_SERIES_MAX}`);
  const names = new Set<string>();
  for (const s of series) {
    assert(!names.has(s.name), `${what}: duplicate series name ${JSON.stringify(s.name)}`);
    names.add(s.name);
    assert(s.values.length === length, `${what}: series ${JSON.stringify(s.name)} has ${s.values.length} values, expected ${length}`);
    for (const v of s.values) assert(v === null || Number.isFinite(v), `${what}: series ${JSON.stringify(s.name)} has a non-finite value`);
  }
}

function parseTimesMs(timesIso: readonly string[]): number[] {
  return timesIso.map((iso) => {
    const ms = Date.parse(iso);
    assert(Number.isFinite(ms), `not an ISO time: ${JSON.stringify(iso)}`);
    return ms;
  });
}

/**
 * Compiles a Vega-Lite spec and renders it to an SVG string without a browser. A compiler warning
 * means the spec does not say what we meant (a dropped property, a conflicting sort): it throws.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const warnings: string[] = [];
  const logger = vega.logger(vega.Warn);
  logger.warn = (...args: readonly unknown[]) => {
    warnings.push(args.map(String).join(" "));
    return logger;
  };
  const compiled = compile(spec, { logger }).spec;
  assert(warnings.length === 0, `vega-lite warnings: ${warnings.join("; ")}`);
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Shared look: white background, UTC everywhere, legend at the bottom so wide plots keep their width. */
const BASE_CONFIG = {
  background: "white",
  legend: { orient: "bottom", labelLimit: 300 },
  axis: { labelLimit: 200 },
} as const;

/**
 * A time chart: each series a line (with points, so isolated values stay visible) over interval
 * start times on a UTC axis; optional bars on a second y axis. Returns the SVG document.
 */
export async function lineChartSvg(options: LineChartOptions): Promise<string> {
  const n = options.timesIso.length;
  assert(n >= 1, "lineChartSvg: at least one time");
  assert(n <= TIME_CHART_POINTS_MAX, `lineChartSvg: ${n} times > TIME_CHART_POINTS_MAX ${TIME_CHART_POINTS_MAX}`);
  checkSeries(options.series, n, "lineChartSvg");
  const timesMs = parseTimesMs(options.timesIso);
  const xTitle = options.xTitle ?? "Interval start (UTC)";

  const lineRows: { t: number; series: string; value: number | null }[] = [];
  for (const s of options.series) for (let i = 0; i < n; i++) lineRows.push({ t: timesMs[i]!, series: s.name, value: s.values[i]! });

  const xEncoding = { field: "t", type: "temporal", title: xTitle, scale: { type: "utc" }, axis: { format: "%b %d %H:%M", labelAngle: -30 } } as const;
  const lineLayer = {
    data: { values: lineRows },
    // aria: false drops a per-point description (most of the SVG's bytes) that Vega formats in local time.
    mark: { type: "line", point: { size: 16 }, strokeWidth: 1.5, aria: false },
    encoding: {
      x: xEncoding,
      y: { field: "value", type: "quantitative", title: options.yTitle },
      // A sort here would conflict with the bar layer's unioned color domain; names sort alphabetically.
      color: { field: "series", type: "nominal", title: null },
    },
  } as const;

  const layers: unknown[] = [];
  if (options.bars !== undefined) {
    const bars = options.bars;
    checkSeries(bars.series, n, "lineChartSvg bars");
    assert(Number.isInteger(bars.intervalMinutes) && bars.intervalMinutes > 0, "lineChartSvg: intervalMinutes is a positive integer");
    for (const s of bars.series)
      assert(!options.series.some((l) => l.name === s.name), `lineChartSvg: name ${JSON.stringify(s.name)} used by a line and a bar`);
    const intervalMs = bars.intervalMinutes * 60_000;
    const barRows: { t: number; t2: number; series: string; value: number | null }[] = [];
    for (const s of bars.series)
      for (let i = 0; i < n; i++) barRows.push({ t: timesMs[i]!, t2: timesMs[i]! + intervalMs, series: s.name, value: s.values[i]! });
    layers.push({
      data: { values: barRows },
      // Overlapping translucent bars (not stacked): one bar series is the intended use.
      mark: { type: "bar", opacity: 0.45, aria: false },
      encoding: {
        x: xEncoding,
        x2: { field: "t2" },
        // With x2 alone Vega-Lite draws a 5 px Gantt bar centred on y; y2 = 0 makes it a column from zero.
        y: { field: "value", type: "quantitative", title: bars.yTitle, axis: { orient: "right" } },
        y2: { datum: 0 },
        color: { field: "series", type: "nominal", title: null },
      },
    });
  }
  layers.push(lineLayer);

  const spec = {
    title: options.title,
    width: options.widthPx ?? CHART_WIDTH_PX_DEFAULT,
    height: options.heightPx ?? CHART_HEIGHT_PX_DEFAULT,
    config: BASE_CONFIG,
    layer: layers,
    ...(options.bars !== undefined ? { resolve: { scale: { y: "independent" } } } : {}),
  } as unknown as TopLevelSpec;
  return renderSvg(spec);
}

/**
 * A categorical bar chart in the order given; several series are grouped side by side.
 * Returns the SVG document.
 */
export async function barChartSvg(options: BarChartOptions): Promise<string> {
  const n = options.categories.length;
  assert(n >= 1, "barChartSvg: at least one category");
  assert(n <= BAR_CHART_BARS_MAX, `barChartSvg: ${n} categories > BAR_CHART_BARS_MAX ${BAR_CHART_BARS_MAX}`);
  assert(new Set(options.categories).size === n, "barChartSvg: categories are unique");
  checkSeries(options.series, n, "barChartSvg");

  const rows: { category: string; series: string; value: number | null }[] = [];
  for (const s of options.series) for (let i = 0; i < n; i++) rows.push({ category: options.categories[i]!, series: s.name, value: s.values[i]! });

  const horizontal = (options.orientation ?? "horizontal") === "horizontal";
  const order = [...options.categories];
  const category = { field: "category", type: "nominal", title: options.categoryTitle, sort: order } as const;
  const value = { field: "value", type: "quantitative", title: options.valueTitle } as const;
  const grouped = options.series.length > 1;
  const offset = grouped ? { [horizontal ? "yOffset" : "xOffset"]: { field: "series", type: "nominal", sort: options.series.map((s) => s.name) } } : {};

  const spec = {
    title: options.title,
    width: options.widthPx ?? CHART_WIDTH_PX_DEFAULT,
    ...(horizontal ? { height: { step: BAR_STEP_PX * (grouped ? options.series.length : 1) } } : { height: CHART_HEIGHT_PX_DEFAULT }),
    config: BASE_CONFIG,
    data: { values: rows },
    mark: { type: "bar", aria: false },
    encoding: {
      ...(horizontal ? { y: category, x: value } : { x: category, y: value }),
      color: { field: "series", type: "nominal", title: null, sort: options.series.map((s) => s.name) },
      ...offset,
    },
  } as unknown as TopLevelSpec;
  return renderSvg(spec);
}
