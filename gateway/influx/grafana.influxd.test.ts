/**
 * The Grafana dashboard docs/grafana/jamgate-readings.json against a real influxd (InfluxDB 1.6
 * from Debian, gateway/testing/influxd.ts): device bodies, encoded as devices encode them, go
 * through the gateway's path to InfluxDB (decodeBody → readingsToPoints → InfluxWriter, as
 * Gateway.take does for an accepted envelope), then every InfluxQL query in the dashboard, its
 * panels' and its variables', runs against that influxd with Grafana's macros replaced by fixed
 * values, and must answer exactly the values computed here from the readings written. A query
 * naming a measurement, field or tag the gateway does not write answers nothing, and fails.
 *
 * Grafana's macros and variables, as Grafana's InfluxQL data source expands them:
 * - `$timeFilter` → `time >= <from>ms and time <= <to>ms`, the range written here: three minutes;
 * - `$__interval` → `1m`, one bucket per minute of readings;
 * - `$meter`, `$inverter`, `$router` (multi-value variables inside `/^…$/`) → `(a|b)`, the
 *   selected device ids joined as a regex group; one meter written is left unselected, so a
 *   panel that ignores its variable fails.
 * Anything else starting with `$` is refused: a new macro needs a value here first.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeBody } from "../../devices/envelope.ts";
import { encodeCbor } from "../../devices/cbor.ts";
import { encodeReadings } from "../../devices/readings.ts";
import { meterReadings } from "../../devices/simulate.ts";
import { encodeUsageBody, UsageStatus } from "../../devices/wifi.ts";
import { type Influxd, influxdAvailable, startInfluxd } from "../testing/influxd.ts";
import { READINGS_PER_ENVELOPE_MAX, readingsToPoints } from "./readings.ts";
import { DEFAULT_DATABASE, InfluxWriter } from "./writer.ts";

const DASHBOARD_PATH = new URL("../../docs/grafana/jamgate-readings.json", import.meta.url);
/** One query's limit. */
const QUERY_TIMEOUT_MS = 5_000;
/** 2024-06-10T12:00:00Z: on a minute, so `GROUP BY time(1m)` buckets start at T0. */
const T0 = Date.UTC(2024, 5, 10, 12, 0, 0);
const MINUTE_MS = 60_000;
const MINUTES = 3;
const RANGE = { fromMs: T0, toMs: T0 + MINUTES * MINUTE_MS - 1 };
const GIGAWORD = 2 ** 32;

const id = (n: number) => n.toString(16).padStart(32, "0");
/** Meters: A and B selected in `$meter`, C written but not selected. */
const METERS = [id(0xa1), id(0xa2), id(0xa3)] as const;
const SELECTED_METERS = METERS.slice(0, 2);
const INVERTER = id(0xb1);
const ROUTERS = [id(0xc1), id(0xc2)] as const;
const AGENT = id(0xd1);

type Row = Record<string, number>;
/** What was written, kept to compute each query's answer independently of InfluxDB. */
const written = {
  meters: new Map<string, Row[]>(),
  inverter: [] as Row[],
  usage: [] as { router: string; atMs: number; status: number; inOctets: number; outOctets: number; inGigawords: number; outGigawords: number }[],
  orders: [] as number[],
  resets: [] as number[],
};

let influxd: Influxd;
let writer: InfluxWriter;

/** An accepted envelope's body on its way to InfluxDB, as gateway.ts `take` sends it. */
function accept(deviceId: string, kind: string, body: Uint8Array, envelopeTimeMs: number): void {
  const readings = decodeBody(body, READINGS_PER_ENVELOPE_MAX);
  const { points, skippedReadings } = readingsToPoints(deviceId, kind, Array.isArray(readings) ? readings : [readings], envelopeTimeMs);
  expect(skippedReadings).toBe(0);
  writer.add(points);
}

beforeAll(async () => {
  if (!influxdAvailable())
    throw new Error("influxd is not installed: run `npm test`, which installs the Debian package influxdb (scripts/test.sh DEBIAN_NEEDS)");
  influxd = await startInfluxd();
  writer = new InfluxWriter({ url: influxd.url, flushIntervalMs: 50, retryBackoffMs: { initial: 50, max: 200 } });
  writer.start();

  // Meters: one-second readings from the SDK's simulator, an envelope a minute in the column form.
  METERS.forEach((meter, i) => {
    const source = meterReadings(i + 1, T0);
    const rows: Row[] = [];
    for (let minute = 0; minute < MINUTES; minute++) {
      const envelope: Row[] = [];
      for (let s = 0; s < 60; s++) {
        const r = source.next().value as { timeMs: number; importWh: number; exportWh: number; powerW: number; voltageV: number };
        envelope.push({ t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh, powerW: r.powerW, voltageV: r.voltageV });
      }
      accept(meter, "meter.reading", encodeReadings(envelope), envelope.at(-1)!.t!);
      rows.push(...envelope);
    }
    written.meters.set(meter, rows);
  });
  // Meter B's counters replaced at 2:30.
  const resetAt = T0 + 150_000;
  accept(METERS[1], "meter.reset", encodeReadings([{ t: resetAt, importWh: 0, exportWh: 0 }]), resetAt);
  written.resets.push(resetAt);

  // An inverter: two minutes of one-second output and yield.
  const inverterRows = Array.from({ length: 120 }, (_, s) => ({ t: T0 + s * 1000, powerW: 2_000 + ((s * 37) % 500), energyWh: 5_000_000 + s }));
  accept(INVERTER, "inverter.reading", encodeReadings(inverterRows.slice(0, 60)), T0 + 59_000);
  accept(INVERTER, "inverter.reading", encodeReadings(inverterRows.slice(60)), T0 + 119_000);
  written.inverter.push(...inverterRows);

  // Routers: sessions' Start, Interim-Update and Stop, each a router.usage envelope at its time.
  const session = (n: number) => new Uint8Array(16).fill(n);
  const update = (
    router: string,
    atMs: number,
    s: number,
    status: UsageStatus,
    inOctets: number,
    inGigawords: number,
    outOctets: number,
    outGigawords: number,
    seconds: number,
  ) => {
    const body = encodeUsageBody({
      session: session(s),
      client: id(0xe0 + s),
      status,
      inOctets,
      outOctets,
      inGigawords,
      outGigawords,
      seconds,
      cause: status === UsageStatus.stop ? 1 : 0,
      prev: new Uint8Array(32).fill(s),
    });
    accept(router, "router.usage", body, atMs);
    written.usage.push({ router, atMs, status, inOctets, outOctets, inGigawords, outGigawords });
  };
  update(ROUTERS[0], T0 + 5_000, 1, UsageStatus.start, 0, 0, 0, 0, 0);
  update(ROUTERS[0], T0 + 10_000, 2, UsageStatus.start, 0, 0, 0, 0, 0);
  update(ROUTERS[0], T0 + 65_000, 1, UsageStatus.interim, 1_000_000, 0, 50_000_000, 0, 60);
  update(ROUTERS[0], T0 + 70_000, 2, UsageStatus.stop, 500, 0, 700, 0, 60);
  update(ROUTERS[0], T0 + 125_000, 1, UsageStatus.stop, 3_000_000, 0, 123, 2, 120);
  update(ROUTERS[1], T0 + 20_000, 3, UsageStatus.start, 0, 0, 0, 0, 0);
  update(ROUTERS[1], T0 + 130_000, 3, UsageStatus.stop, 10, 0, 20, 1, 110);

  // An energy agent's orders: the body's interval number is the point's one field.
  for (const [atMs, interval] of [
    [T0 + 30_000, 7],
    [T0 + 90_000, 8],
  ] as const) {
    accept(AGENT, "agent.order", encodeCbor({ interval, orders: [{ side: "bid", energyWh: 100, priceMicrosPerKwh: 250_000 }] }), atMs);
    written.orders.push(atMs);
  }

  await writer.flush();
  expect(writer.stats()).toMatchObject({ buffered: 0, invalid: 0, rejected: 0, dropped: 0 });
}, 30_000);

afterAll(async () => {
  await writer?.stop();
  await influxd?.stop();
});

// ---------------------------------------------------------------------------------------------
// The dashboard's queries.

interface Target {
  readonly refId: string;
  readonly query: string;
  readonly rawQuery?: boolean;
  readonly datasource?: { readonly type: string; readonly uid: string };
}
interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: Target[];
  readonly panels?: Panel[];
  readonly datasource?: { readonly type: string; readonly uid: string };
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query: string | { readonly query: string };
  readonly datasource?: { readonly type: string; readonly uid: string };
}
interface Dashboard {
  readonly __inputs: { name: string; type: string; pluginId: string }[];
  readonly panels: Panel[];
  readonly templating: { readonly list: Variable[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, "utf8")) as Dashboard;

/** Every query of the dashboard, named `<panel title> / <refId>` or `variable <name>`; rows' nested panels included. */
function dashboardQueries(d: Dashboard): { name: string; query: string; datasource: unknown; rawQuery: boolean | undefined }[] {
  const out: { name: string; query: string; datasource: unknown; rawQuery: boolean | undefined }[] = [];
  const visit = (panels: readonly Panel[]) => {
    for (const panel of panels) {
      for (const t of panel.targets ?? []) out.push({ name: `${panel.title} / ${t.refId}`, query: t.query, datasource: t.datasource, rawQuery: t.rawQuery });
      visit(panel.panels ?? []);
    }
  };
  visit(d.panels);
  for (const v of d.templating.list)
    if (v.type === "query")
      out.push({ name: `variable ${v.name}`, query: typeof v.query === "string" ? v.query : v.query.query, datasource: v.datasource, rawQuery: true });
  return out;
}

const regexGroup = (ids: readonly string[]) => `(${ids.join("|")})`;
const MACROS: Record<string, string> = {
  timeFilter: `time >= ${RANGE.fromMs}ms and time <= ${RANGE.toMs}ms`,
  __interval: "1m",
  meter: regexGroup(SELECTED_METERS),
  inverter: regexGroup([INVERTER]),
  router: regexGroup(ROUTERS),
};

/** The query as Grafana would send it for the range and selections above. */
function expand(query: string): string {
  return query.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, a: string | undefined, b: string | undefined) => {
    const value = MACROS[(a ?? b)!];
    if (value === undefined) throw new Error(`no test value for ${whole} in ${query}`);
    return value;
  });
}

interface Series {
  readonly name: string;
  readonly tags?: Record<string, string>;
  readonly columns: string[];
  readonly values: unknown[][];
}

/** Runs an InfluxQL query as Grafana does (GET /query, epoch=ms); its series in a fixed order. */
async function query(q: string): Promise<Series[]> {
  const res = await fetch(`${influxd.url}/query?db=${DEFAULT_DATABASE}&epoch=ms&q=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const body = JSON.parse(text) as { results: { series?: Series[]; error?: string }[] };
  expect(body.results[0]?.error, `${q}: ${text}`).toBeUndefined();
  return sortSeries(body.results[0]?.series ?? []);
}

function sortSeries(series: readonly Series[]): Series[] {
  const key = (s: Series) => `${s.name} ${JSON.stringify(s.tags ?? {})}`;
  return [...series]
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    .map((s) => ({ ...s, values: s.values.map((row) => row.map((v) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(12)) : v))) }));
}

// ---------------------------------------------------------------------------------------------
// What each query must answer, from what was written.

const minuteOf = (t: number) => Math.floor((t - T0) / MINUTE_MS);
const bucketStart = (m: number) => T0 + m * MINUTE_MS;

/** Rows of one meter grouped by minute bucket. */
function byMinute<T extends { t?: number; atMs?: number }>(rows: readonly T[], timeOf: (r: T) => number): T[][] {
  const out: T[][] = Array.from({ length: MINUTES }, () => []);
  for (const r of rows) out[minuteOf(timeOf(r))]!.push(r);
  return out;
}

function counterRise(field: "importWh" | "exportWh"): Series[] {
  return SELECTED_METERS.map((meter) => {
    const maxima = byMinute(written.meters.get(meter)!, (r) => r.t!).map((rows) => Math.max(...rows.map((r) => r[field]!)));
    const values = maxima
      .slice(1)
      .map((max, i) => [bucketStart(i + 1), max - maxima[i]!])
      .filter(([, rise]) => rise! >= 0);
    return { name: "meter.reading", tags: { device: meter }, columns: ["time", "non_negative_difference"], values };
  });
}

function meanPerMinute(measurement: string, devices: readonly string[], rowsOf: (device: string) => readonly Row[], field: string): Series[] {
  return devices.map((device) => ({
    name: measurement,
    tags: { device },
    columns: ["time", "mean"],
    values: byMinute(rowsOf(device), (r) => r.t!).map((rows, m) => [
      bucketStart(m),
      rows.length === 0 ? null : rows.reduce((sum, r) => sum + r[field]!, 0) / rows.length,
    ]),
  }));
}

function countPerMinute(name: string, times: readonly number[], tags?: Record<string, string>): Series {
  const counts = new Array<number>(MINUTES).fill(0);
  for (const t of times) counts[minuteOf(t)]! += 1;
  return {
    name,
    ...(tags === undefined ? {} : { tags }),
    columns: ["time", "count"],
    values: counts.flatMap((n, m) => (n === 0 ? [] : [[bucketStart(m), n]])),
  };
}

const EXPECTED: Record<string, () => Series[]> = {
  "Energy imported per household / A": () => counterRise("importWh"),
  "Energy exported per household / A": () => counterRise("exportWh"),
  "Net power per household / A": () => meanPerMinute("meter.reading", SELECTED_METERS, (m) => written.meters.get(m)!, "powerW"),
  "Voltage per household / A": () => meanPerMinute("meter.reading", SELECTED_METERS, (m) => written.meters.get(m)!, "voltageV"),
  "Meter counters, latest in range / A": () =>
    SELECTED_METERS.map((meter) => {
      const last = written.meters.get(meter)!.at(-1)!;
      return { name: "meter.reading", tags: { device: meter }, columns: ["time", "importWh", "exportWh"], values: [[last.t, last.importWh, last.exportWh]] };
    }),
  "Inverter output / A": () => meanPerMinute("inverter.reading", [INVERTER], () => written.inverter, "powerW"),
  "Wi-Fi octets of sessions that ended, per router / A": () =>
    ROUTERS.map((router) => {
      const stops = byMinute(
        written.usage.filter((u) => u.router === router && u.status === UsageStatus.stop),
        (u) => u.atMs,
      );
      const values = stops.flatMap((us, m) =>
        us.length === 0
          ? []
          : [
              [
                bucketStart(m),
                us.reduce((s, u) => s + u.inGigawords * GIGAWORD + u.inOctets, 0),
                us.reduce((s, u) => s + u.outGigawords * GIGAWORD + u.outOctets, 0),
              ],
            ],
      );
      return { name: "router.usage", tags: { device: router }, columns: ["time", "in", "out"], values };
    }),
  "Wi-Fi session updates per router / A": () =>
    ROUTERS.map((router) =>
      countPerMinute(
        "router.usage",
        written.usage.filter((u) => u.router === router).map((u) => u.atMs),
        { device: router },
      ),
    ),
  "Points written per kind / A": () => [
    countPerMinute(
      "meter.reading",
      [...written.meters.values()].flat().map((r) => r.t!),
    ),
    countPerMinute("meter.reset", written.resets),
  ],
  "Points written per kind / B": () => [
    countPerMinute(
      "inverter.reading",
      written.inverter.map((r) => r.t!),
    ),
  ],
  "Points written per kind / C": () => [
    countPerMinute(
      "router.usage",
      written.usage.map((u) => u.atMs),
    ),
  ],
  "Points written per kind / D": () => [countPerMinute("agent.order", written.orders)],
  "variable meter": () => [{ name: "meter.reading", columns: ["key", "value"], values: [...METERS].sort().map((m) => ["device", m]) }],
  "variable inverter": () => [{ name: "inverter.reading", columns: ["key", "value"], values: [["device", INVERTER]] }],
  "variable router": () => [{ name: "router.usage", columns: ["key", "value"], values: [...ROUTERS].sort().map((r) => ["device", r]) }],
};

describe("docs/grafana/jamgate-readings.json against a real influxd", () => {
  const queries = dashboardQueries(dashboard);

  it("imports with its InfluxDB data source as an input, every query raw InfluxQL on it, and each has an expected answer here", () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: "DS_INFLUXDB", type: "datasource", pluginId: "influxdb" })]);
    for (const q of queries) {
      expect(q.datasource, q.name).toEqual({ type: "influxdb", uid: `\${DS_INFLUXDB}` });
      // Without rawQuery Grafana builds the query from its editor's fields and ignores `query`.
      expect(q.rawQuery, q.name).toBe(true);
    }
    expect(queries.map((q) => q.name).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(queries.map((q) => [q.name, q.query] as const))("%s answers the readings written", async (name, q) => {
    const expected = EXPECTED[name];
    if (expected === undefined) throw new Error(`no expected answer for ${name}`);
    const answer = await query(expand(q));
    expect(answer.length, `${name}: ${JSON.stringify(answer).slice(0, 400)}`).toBeGreaterThan(0);
    expect(answer).toEqual(sortSeries(expected()));
  });
});
