/**
 * `jamgate sim wifi` as a user runs it: the real binary on its own embedded stack, its stdout,
 * stderr, exit status and report. Its results are checked against the independent count made
 * here, in this process, from the same flags (plan.ts, expected.ts: no code of the service).
 *
 * 4 routers (2 native, 2 RADIUS of which one router-attested), 20 clients, 30 simulated minutes,
 * seed 9, fraud rate 0.5: the plan tries every kind of fraud and has billed and disputed sessions
 * on both transports (expected.test.ts checks that of the plan). Each session's next step waits
 * for the last one's verdict, so the outcome does not depend on the machine's speed; a busy
 * machine only makes the run longer.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { JAMGATE_BIN } from "../../scripts/testing/process.ts";
import { FRAUD_CODES, FRAUD_KINDS, NATIVE_FRAUD_KINDS } from "./fraud.ts";
import { buildPlan } from "./plan.ts";
import type { WifiSummary } from "./summary.ts";

const run = promisify(execFile);

describe("jamgate sim wifi (CLI)", { timeout: 170_000 }, () => {
  it("refuses flags out of range with JG_ERR_CLI_ARGUMENT, prints nothing on stdout and starts nothing", async () => {
    for (const flags of [
      ["--fraud-rate", "1.5"],
      ["--hours", "0"],
      ["--routers", "201"],
      ["--clients", "-3"],
      ["--hours", "168", "--seconds-per-slot", "10"],
    ]) {
      const failed = await run(process.execPath, [JAMGATE_BIN, "sim", "wifi", ...flags], { timeout: 60_000 }).then(
        () => null,
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(failed, flags.join(" ")).not.toBeNull();
      expect(failed!.code).toBe(2);
      expect(failed!.stdout).toBe("");
      expect(failed!.stderr).toMatch(/JG_ERR_CLI_ARGUMENT/);
    }
  });

  it("refuses every fraudulent update with its code, bills honest traffic exactly as the independent count, disputes what no client signed on a non-attested router, and conserves value", async () => {
    const out = mkdtempSync(join(tmpdir(), "jamgate-sim-wifi-report-"));
    const args = [
      "sim",
      "wifi",
      "--routers",
      "4",
      "--clients",
      "20",
      "--hours",
      "0.5",
      "--seed",
      "9",
      "--fraud-rate",
      "0.5",
      "--slot-ms",
      "250",
      "--out",
      out,
      "--json",
    ];
    let stdout: string;
    let stderr: string;
    try {
      ({ stdout, stderr } = await run(process.execPath, [JAMGATE_BIN, ...args], { timeout: 160_000, maxBuffer: 16 * 1024 * 1024 }));
    } catch (e) {
      const failed = e as { code: number; stdout: string; stderr: string };
      throw new Error(`exit ${failed.code}:\n${failed.stderr}\n${failed.stdout.slice(0, 4000)}`);
    }
    const lines = stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as WifiSummary;
    expect(stderr).toMatch(/done/);

    const plan = buildPlan({ routers: 4, clients: 20, hours: 0.5, seed: 9, fraudRate: 0.5 });
    const e = plan.expected;
    const n = (x: bigint) => Number(x);

    // Every fraud kind was tried, and every attempt refused with its code.
    for (const kind of FRAUD_KINDS) expect(e.frauds[kind], kind).toBeGreaterThan(0);
    for (const kind of NATIVE_FRAUD_KINDS) expect(s.frauds[kind].verdicts, kind).toEqual({ [FRAUD_CODES[kind]]: e.frauds[kind] });
    expect(s.frauds["radius-duplicate"].verdicts).toEqual({ answered: e.frauds["radius-duplicate"] });
    expect(s.frauds["radius-backwards"].verdicts).toEqual({ answered: e.frauds["radius-backwards"] });
    expect(s.refused).toEqual(e.refused);
    expect(s.honestRefused).toEqual({});

    // Honest traffic billed exactly: in total, per client, per router and per owner.
    expect({ billedOctets: s.billedOctets, billedMicros: s.billedMicros, payoutsMicros: s.payoutsMicros, feesMicros: s.feesMicros }).toEqual({
      billedOctets: n(e.total.billedOctets),
      billedMicros: n(e.total.billedMicros),
      payoutsMicros: n(e.total.payoutsMicros),
      feesMicros: n(e.total.feesMicros),
    });
    expect(s.billedOctets).toBeGreaterThan(0);
    s.clients.forEach((c, i) => {
      expect(
        { billedOctets: c.billedOctets, billedMicros: c.billedMicros, balanceMicros: c.balanceMicros, disputedOctets: c.disputedOctets },
        `client ${i}`,
      ).toEqual({
        billedOctets: n(e.clients[i]!.billedOctets),
        billedMicros: n(e.clients[i]!.billedMicros),
        balanceMicros: n(e.clientBalancesMicros[i]!),
        disputedOctets: n(e.clients[i]!.disputedOctets),
      });
    });
    s.routers.forEach((r, i) => {
      expect({ billedOctets: r.billedOctets, payoutsMicros: r.payoutsMicros, disputedOctets: r.disputedOctets }, `router ${i}`).toEqual({
        billedOctets: n(e.routers[i]!.billedOctets),
        payoutsMicros: n(e.routers[i]!.payoutsMicros),
        disputedOctets: n(e.routers[i]!.disputedOctets),
      });
    });
    s.owners.forEach((o, i) => {
      expect({ payoutsMicros: o.payoutsMicros, balanceMicros: o.balanceMicros, lockedMicros: o.lockedMicros }, `owner ${i}`).toEqual({
        payoutsMicros: n(e.owners[i]!.payoutsMicros),
        balanceMicros: n(e.ownerBalancesMicros[i]!),
        lockedMicros: n(e.ownerLockedMicros[i]!),
      });
    });

    // Disputed: the non-attested RADIUS router's sessions and the native sessions stripped of vouchers.
    expect(s.disputed).toEqual({ sessions: e.total.disputedSessions, octets: n(e.total.disputedOctets) });
    expect(s.disputed.sessions).toBeGreaterThan(0);

    // Value conserved: balances + locked stakes + fees = top-ups.
    expect(s.conservation.balancesMicros + s.conservation.lockedMicros + s.conservation.feesMicros).toBe(n(e.topupsMicros));
    expect(s.mismatches).toEqual([]);

    // The report: report.md with its charts, and totals.json as printed.
    const report = readFileSync(join(out, "report.md"), "utf8");
    const charts = report.match(/\(([^)]+\.svg)\)/g) ?? [];
    expect(charts).toHaveLength(3);
    for (const svg of charts) expect(existsSync(join(out, svg.slice(1, -1)))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "totals.json"), "utf8"))).toEqual(s);
  });
});
