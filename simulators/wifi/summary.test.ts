import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LedgerEntry } from "../../services/wifi-billing/types.ts";
import { chargedMicros, feeMicros, isBillable } from "./expected.ts";
import { FRAUD_CODES, FRAUD_KINDS, type FraudKind, NATIVE_FRAUD_KINDS } from "./fraud.ts";
import { buildPlan, type WifiPlan } from "./plan.ts";
import { WIFI_REPORT_FILES, writeWifiReport } from "./report.ts";
import { compareWithExpected, type Observed } from "./summary.ts";

const id = (role: string, i: number) => (role.charCodeAt(0).toString(16) + i.toString(16).padStart(4, "0")).padEnd(32, "0");
const raw = (hex: string) => Uint8Array.from(Buffer.from(hex, "hex"));

/** What a chain that did exactly the plan would show: one ledger entry per update past the Start, balances, router totals, verdicts. */
function faithful(plan: WifiPlan): Observed {
  const ids = {
    clients: plan.population.clients.map((c) => id("c", c.index)),
    owners: plan.population.owners.map((o) => id("o", o.index)),
    routers: plan.population.routers.map((r) => id("r", r.index)),
  };
  const entries: { slot: number; entry: LedgerEntry }[] = [];
  for (const s of plan.steps) {
    const router = plan.population.routers[s.session.router]!;
    const price = BigInt(router.priceMicrosPerGb);
    const updates = s.session.updates;
    for (let i = 1; i < updates.length; i++) {
      const [u, p] = [updates[i]!, updates[i - 1]!];
      const [now, before] = [chargedMicros(BigInt(u.inputOctets + u.outputOctets), price), chargedMicros(BigInt(p.inputOctets + p.outputOctets), price)];
      const amount = now - before;
      const billable = isBillable(plan.population, s);
      entries.push({
        slot: 10 + Math.floor(u.atSeconds / 60),
        entry: {
          reason: billable ? "usage" : "disputed",
          session: raw(
            s.session.acctSessionId
              .padEnd(32, "0")
              .slice(0, 32)
              .toLowerCase()
              .replace(/[^0-9a-f]/g, "0"),
          ),
          router: raw(ids.routers[router.index]!) as LedgerEntry["router"],
          client: raw(ids.clients[s.session.client]!) as LedgerEntry["client"],
          inputOctets: BigInt(u.inputOctets - p.inputOctets),
          outputOctets: BigInt(u.outputOctets - p.outputOctets),
          priceMicrosPerGb: price,
          amountMicros: billable ? amount : 0n,
          feeMicros: billable ? feeMicros(now) - feeMicros(before) : 0n,
          attested: router.transport === "radius" || s.strip,
        },
      });
    }
  }
  const e = plan.expected;
  const verdicts = Object.fromEntries(FRAUD_KINDS.map((k) => [k, {}])) as Record<FraudKind, Record<string, number>>;
  const refusedNative: Record<string, number> = {};
  const refusedRadius: Record<string, number> = {};
  for (const k of FRAUD_KINDS) {
    if (e.frauds[k] === 0) continue;
    const native = (NATIVE_FRAUD_KINDS as readonly string[]).includes(k);
    verdicts[k] = { [native ? FRAUD_CODES[k] : k === "radius-forged" ? "sent" : "answered"]: e.frauds[k] };
    const into = native ? refusedNative : refusedRadius;
    into[FRAUD_CODES[k]] = (into[FRAUD_CODES[k]] ?? 0) + e.frauds[k];
  }
  return {
    entries,
    clients: e.clientBalancesMicros.map((balanceMicros) => ({ balanceMicros, lockedMicros: 0n })),
    owners: e.ownerBalancesMicros.map((balanceMicros, o) => ({ balanceMicros, lockedMicros: e.ownerLockedMicros[o]! })),
    routers: e.routers.map((r) => ({
      billedOctets: String(r.billedOctets),
      billedMicros: String(r.billedMicros),
      earnedMicros: String(r.payoutsMicros),
      disputedOctets: String(r.disputedOctets),
    })),
    feesMicros: e.total.feesMicros,
    refusedNative,
    refusedRadius,
    fraudVerdicts: verdicts,
    honestRefused: {},
    ids,
    blocks: 200,
    startSlot: 10,
    wallSeconds: 12.3,
  };
}

describe("compareWithExpected", () => {
  const plan = buildPlan({ routers: 4, clients: 20, hours: 0.5, seed: 9, fraudRate: 0.5 });

  it("finds no difference when the chain did exactly the plan, and reports its totals", () => {
    const s = compareWithExpected(plan, faithful(plan));
    expect(s.mismatches).toEqual([]);
    expect(s.billedOctets).toBe(Number(plan.expected.total.billedOctets));
    expect(s.billedMicros).toBe(s.payoutsMicros + s.feesMicros);
    expect(s.disputed).toEqual(s.expected.disputed);
    expect(s.disputed.sessions).toBeGreaterThan(0);
    expect(s.conservation.conserved).toBe(true);
    expect(s.refused).toEqual(plan.expected.refused);
  });

  it("names each difference: a micro billed too much, a fraud taken, an honest update refused, a fee missing", () => {
    const o = faithful(plan);
    const i = o.entries.findIndex((x) => x.entry.reason === "usage");
    const entries = o.entries.map((x, k) => (k === i ? { ...x, entry: { ...x.entry, amountMicros: x.entry.amountMicros + 1n } } : x));
    const wrong = compareWithExpected(plan, {
      ...o,
      entries,
      fraudVerdicts: { ...o.fraudVerdicts, inflate: { settled: 1 } },
      honestRefused: { JG_ERR_WIFI_VOUCHER_CHAIN: 1 },
      feesMicros: o.feesMicros - 1n,
    });
    const text = wrong.mismatches.join("\n");
    expect(text).toMatch(/^client \d+/m);
    expect(text).toMatch(/^router .* on the ledger/m);
    expect(text).toMatch(/^owner \d+/m);
    expect(text).toMatch(/^inflate attempts' verdicts/m);
    expect(text).toMatch(/^honest updates refused/m);
    expect(text).toMatch(/^fees collected/m);
    expect(text).toMatch(/^value not conserved/m);
  });
});

describe("writeWifiReport", () => {
  it("writes report.md linking three SVG charts, and totals.json with the summary", async () => {
    const plan = buildPlan({ routers: 4, clients: 20, hours: 0.5, seed: 9, fraudRate: 0.5 });
    const observed = faithful(plan);
    const summary = compareWithExpected(plan, observed);
    const dir = mkdtempSync(join(tmpdir(), "jamgate-wifi-report-"));
    const { files } = await writeWifiReport(dir, { plan, observed, summary, secondsPerSlot: 60 });
    expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(Object.values(WIFI_REPORT_FILES).sort());
    const md = readFileSync(join(dir, WIFI_REPORT_FILES.markdown), "utf8");
    for (const svg of [WIFI_REPORT_FILES.billedChart, WIFI_REPORT_FILES.payoutsChart, WIFI_REPORT_FILES.fraudChart]) {
      expect(md).toContain(`(${svg})`);
      expect(readFileSync(join(dir, svg), "utf8")).toMatch(/^<svg/);
    }
    expect(md).toContain("Every total equals the independent count");
    expect(JSON.parse(readFileSync(join(dir, WIFI_REPORT_FILES.totalsJson), "utf8"))).toEqual(JSON.parse(JSON.stringify(summary)));
  }, 60_000);
});
