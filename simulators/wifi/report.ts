/**
 * The report of a Wi-Fi simulation, written to a directory: `report.md` (the run, totals beside
 * the independent count, per router and per owner tables, fraud attempts by kind, every
 * mismatch), the SVG charts it links (billed and disputed GB over simulated time, payouts per
 * router, refused fraud by kind; drawn by ../energy/charts.ts), and `totals.json` (the summary,
 * as `--json` prints it). Money is shown in currency units (micros / 10⁶), traffic in GB
 * (octets / 10⁹), by exact integer arithmetic (../energy/report.ts formatScaled).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BAR_CHART_BARS_MAX, barChartSvg, lineChartSvg, TIME_CHART_POINTS_MAX } from "../energy/charts.ts";
import { formatScaled } from "../energy/report.ts";
import { FRAUD_KINDS } from "./fraud.ts";
import type { WifiPlan } from "./plan.ts";
import type { Observed, WifiSummary } from "./summary.ts";

export const WIFI_REPORT_FILES = {
  markdown: "report.md",
  billedChart: "billed.svg",
  payoutsChart: "payouts.svg",
  fraudChart: "fraud.svg",
  totalsJson: "totals.json",
} as const;

/** Buckets of the billed-GB chart: at least 5 simulated minutes, at most ~100 of them for the run. */
const BUCKET_MINUTES_MIN = 5;
const BUCKETS_TARGET = 100;

export interface WifiReportData {
  readonly plan: WifiPlan;
  readonly observed: Observed;
  readonly summary: WifiSummary;
  readonly secondsPerSlot: number;
}

const gb = (octets: number | bigint): string => formatScaled(octets, 9, 3);
/** Currency units to the micro: a short run bills fractions of a cent, and the report is for checking to the micro. */
const money = (micros: number | bigint): string => formatScaled(micros, 6, 6);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, header.map((_, i) => (i === 0 ? "---" : "---:")), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** Billed and disputed GB per bucket of simulated time, by the slot each entry was written in. */
export function billedSeries(data: WifiReportData): { timesIso: string[]; billedGb: number[]; disputedGb: number[]; bucketMinutes: number } {
  const minutes = data.plan.durationSeconds / 60;
  const bucketMinutes = Math.max(BUCKET_MINUTES_MIN, Math.ceil(minutes / BUCKETS_TARGET / BUCKET_MINUTES_MIN) * BUCKET_MINUTES_MIN);
  const startMs = Date.parse(data.plan.startIso);
  let buckets = Math.max(1, Math.ceil(minutes / bucketMinutes));
  const billed: number[] = [];
  const disputed: number[] = [];
  for (const { slot, entry } of data.observed.entries) {
    if (entry.reason !== "usage" && entry.reason !== "balance-exhausted" && entry.reason !== "disputed") continue;
    // Usage settled after the run's end (its last updates) goes in the buckets after it.
    const k = Math.max(0, Math.floor(((slot - data.observed.startSlot) * data.secondsPerSlot) / 60 / bucketMinutes));
    buckets = Math.max(buckets, k + 1);
    const into = entry.reason === "disputed" ? disputed : billed;
    into[k] = (into[k] ?? 0) + Number(entry.inputOctets + entry.outputOctets) / 1e9;
  }
  buckets = Math.min(buckets, TIME_CHART_POINTS_MAX);
  const timesIso = Array.from({ length: buckets }, (_, k) => new Date(startMs + k * bucketMinutes * 60_000).toISOString());
  return { timesIso, billedGb: timesIso.map((_, k) => billed[k] ?? 0), disputedGb: timesIso.map((_, k) => disputed[k] ?? 0), bucketMinutes };
}

export async function writeWifiReport(dir: string, data: WifiReportData): Promise<{ files: string[] }> {
  await mkdir(dir, { recursive: true });
  const s = data.summary;
  const series = billedSeries(data);
  const billedSvg = await lineChartSvg({
    title: `Billed and disputed traffic per ${series.bucketMinutes} simulated minutes`,
    timesIso: series.timesIso,
    yTitle: "GB",
    xTitle: "Simulated time (UTC), by the block that billed it",
    series: [
      { name: "Billed", values: series.billedGb },
      { name: "Disputed", values: series.disputedGb },
    ],
  });
  const routers = s.routers.slice(0, BAR_CHART_BARS_MAX);
  const payoutsSvg = await barChartSvg({
    title: "Payouts per router (owner's share after the protocol fee)",
    categories: routers.map((r) => `${r.name} (${r.transport}${r.attested ? ", attested" : ""})`),
    series: [
      { name: "On the ledger", values: routers.map((r) => r.payoutsMicros / 1e6) },
      { name: "Independent count", values: routers.map((r) => r.expected.payoutsMicros / 1e6) },
    ],
    categoryTitle: "Router",
    valueTitle: "Currency units",
  });
  const fraudSvg = await barChartSvg({
    title: "Fraud attempts by kind, and those refused with the expected code",
    categories: [...FRAUD_KINDS],
    series: [
      { name: "Attempts", values: FRAUD_KINDS.map((k) => s.frauds[k].attempts) },
      { name: "Refused as expected", values: FRAUD_KINDS.map((k) => refusedAsExpected(s, k)) },
    ],
    categoryTitle: "Kind",
    valueTitle: "Updates",
  });
  const p = data.plan;
  const md = [
    `# Wi-Fi billing simulation`,
    "",
    `${p.population.routers.length} routers (${p.population.routers.filter((r) => r.transport === "radius").length} RADIUS, ${p.population.routers.filter((r) => r.attested).length} router-attested), ${p.population.clients.length} clients, ${p.population.owners.length} owners; ${p.durationSeconds / 3600} simulated hours from ${p.startIso}; seed ${p.options.seed}, fraud rate ${p.options.fraudRate}.`,
    `${s.sessions} sessions, ${s.updates} honest updates, ${s.blocks} blocks, ${s.ledgerEntries} ledger entries, ${s.wallSeconds} s.`,
    "",
    s.mismatches.length === 0
      ? "**Every total equals the independent count.**"
      : `**${s.mismatches.length} differences from the independent count:**\n\n${s.mismatches.map((m) => `- ${m}`).join("\n")}`,
    "",
    "## Totals",
    "",
    table(
      ["", "On the chain", "Independent count"],
      [
        ["Billed GB", gb(s.billedOctets), gb(s.expected.billedOctets)],
        ["Billed to clients", money(s.billedMicros), money(s.expected.billedMicros)],
        ["Paid to owners", money(s.payoutsMicros), money(s.expected.payoutsMicros)],
        ["Protocol fees", money(s.feesMicros), money(s.expected.feesMicros)],
        ["Disputed sessions", String(s.disputed.sessions), String(s.expected.disputed.sessions)],
        ["Disputed GB", gb(s.disputed.octets), gb(s.expected.disputed.octets)],
      ],
    ),
    "",
    `Value ${s.conservation.conserved ? "conserved" : "NOT conserved"}: balances ${money(s.conservation.balancesMicros)} + locked ${money(s.conservation.lockedMicros)} + fees ${money(s.conservation.feesMicros)} against top-ups ${money(s.conservation.topupsMicros)}.`,
    "",
    `![billed](${WIFI_REPORT_FILES.billedChart})`,
    "",
    "## Routers",
    "",
    table(
      ["Router", "Transport", "Billed GB", "Paid to owner", "Expected", "Disputed GB"],
      s.routers.map((r) => [
        `${r.name} \`${r.router}\``,
        `${r.transport}${r.attested ? ", attested" : ""}`,
        gb(r.billedOctets),
        money(r.payoutsMicros),
        money(r.expected.payoutsMicros),
        gb(r.disputedOctets),
      ]),
    ),
    "",
    `![payouts](${WIFI_REPORT_FILES.payoutsChart})`,
    "",
    "## Owners",
    "",
    table(
      ["Owner", "Payouts", "Balance", "Locked (stakes)", "Expected balance"],
      s.owners.map((o) => [`\`${o.account}\``, money(o.payoutsMicros), money(o.balanceMicros), money(o.lockedMicros), money(o.expected.balanceMicros)]),
    ),
    "",
    "## Fraud",
    "",
    table(
      ["Kind", "Attempts", "Expected code", "Verdicts"],
      FRAUD_KINDS.map((k) => [
        k,
        String(s.frauds[k].attempts),
        s.frauds[k].expectedCode,
        Object.entries(s.frauds[k].verdicts)
          .map(([v, n]) => `${v} × ${n}`)
          .join(", ") || "–",
      ]),
    ),
    "",
    `Refusals by code: ${
      Object.entries(s.refused)
        .map(([c, n]) => `${c} × ${n}`)
        .join(", ") || "none"
    }. Honest updates refused: ${
      Object.entries(s.honestRefused)
        .map(([c, n]) => `${c} × ${n}`)
        .join(", ") || "none"
    }. RADIUS refusals are the listener's counts (jamgate_radius_refused_total); a forged request gets no answer, so its verdict is "sent".`,
    "",
    `![fraud](${WIFI_REPORT_FILES.fraudChart})`,
    "",
  ].join("\n");
  const files: [string, string][] = [
    [WIFI_REPORT_FILES.markdown, md],
    [WIFI_REPORT_FILES.billedChart, billedSvg],
    [WIFI_REPORT_FILES.payoutsChart, payoutsSvg],
    [WIFI_REPORT_FILES.fraudChart, fraudSvg],
    [WIFI_REPORT_FILES.totalsJson, `${JSON.stringify(s, null, 2)}\n`],
  ];
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return { files: files.map(([name]) => join(dir, name)) };
}

/** Attempts of `kind` that got its code: from the device's verdicts (native) or the listener's count (RADIUS, shared by kind's code). */
function refusedAsExpected(s: WifiSummary, kind: (typeof FRAUD_KINDS)[number]): number {
  const f = s.frauds[kind];
  if (!kind.startsWith("radius-")) return f.verdicts[f.expectedCode] ?? 0;
  return Math.min(f.attempts, s.refused[f.expectedCode] ?? 0);
}
