/** `jamgate sim energy` as a user runs it: the real binary, its stdout, stderr, exit status and report. */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { freePort } from "../../node/testing/ports.ts";
import { JAMGATE_BIN, runCli } from "../../scripts/testing/process.ts";

const run = promisify(execFile);

async function jamgate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [JAMGATE_BIN, ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

// The three at once: each is its own processes on free ports, and mostly waits for blocks.
describe.concurrent("jamgate sim energy (CLI)", { timeout: 150_000 }, () => {
  it("refuses a scenario with errors, naming each with its JSON path, and runs nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jamgate-scenario-"));
    const file = join(dir, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        name: "bad",
        seed: 1,
        start: "not a date",
        durationMinutes: 20,
        marketIntervalMinutes: 15,
        market: "barter",
        grid: { importPriceMicrosPerKwh: 1, exportPriceMicrosPerKwh: 2 },
        households: [{ id: "h1", load: { annualKwh: -5, profile: "h0" } }],
      }),
    );
    const result = await jamgate(["sim", "energy", "--scenario", file, "--out", join(dir, "report")]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/JG_ERR_SCENARIO_INVALID/);
    expect(result.stderr).toMatch(/\/market/);
    expect(result.stderr).toMatch(/\/households\/0\/load/);
    expect(result.stdout).toBe("");
    expect(existsSync(join(dir, "report"))).toBe(false);
    writeFileSync(file, "{ not json");
    expect((await jamgate(["sim", "energy", "--scenario", file])).stderr).toMatch(/JG_ERR_SCENARIO_INVALID/);
    // Generated scenarios are held to the same bounds: 10,000 households × 96 intervals is past HOUSEHOLD_INTERVALS_MAX.
    const big = await jamgate(["sim", "energy", "--households", "10000", "--hours", "24"]);
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/JG_ERR_CLI_ARGUMENT[\s\S]*HOUSEHOLD_INTERVALS_MAX/);
  });

  it("runs a generated scenario end to end: exactly one JSON object on stdout, progress on stderr, a report with charts", async () => {
    const out = mkdtempSync(join(tmpdir(), "jamgate-sim-report-"));
    // 3 market minutes a slot: an order goes 2 intervals (10 slots, 5 s at 500 ms) before its
    // interval is cleared, readings have as long to be settled in theirs. At 5 minutes a slot it
    // was 6 slots, and at 250 ms slots 2.5 s, which machines busy with the rest of the suite
    // overran (a late order is refused: JG_ERR_ENERGY_INTERVAL_CLOSED).
    const result = await jamgate([
      "sim",
      "energy",
      "--households",
      "4",
      "--hours",
      "1",
      "--seed",
      "5",
      "--slot-ms",
      "500",
      "--minutes-per-slot",
      "3",
      "--market",
      "pay-as-bid",
      "--out",
      out,
      "--json",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!);
    expect(Object.keys(summary.kpis.community)).toEqual(
      expect.arrayContaining([
        "selfSufficiency",
        "selfConsumption",
        "savingsMicros",
        "gridImportWh",
        "gridExportWh",
        "tradedWh",
        "meanClearingPriceMicrosPerKwh",
      ]),
    );
    expect(Object.keys(summary.kpis.households)).toHaveLength(4);
    expect(summary.blocks).toBeGreaterThan(24);
    expect(summary.ledgerEntries).toBeGreaterThan(0);
    expect(summary.intervals).toBe(4);
    expect(summary.errors).toEqual({});
    expect(result.stderr).toMatch(/trading|done/);
    const report = readFileSync(join(out, "report.md"), "utf8");
    for (const svg of report.match(/\(([^)]+\.svg)\)/g) ?? []) expect(existsSync(join(out, svg.slice(1, -1)))).toBe(true);
    expect(report).toMatch(/\.svg\)/);
    expect(JSON.parse(readFileSync(join(out, "kpis.json"), "utf8"))).toEqual(summary.kpis);
  });

  it("runs against a running `jamgate start` (--mqtt, --node, --gateway, --token), on that chain's market clock", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "jamgate-sim-remote-"));
    // A market of 15-minute intervals at 3 market minutes per slot and 500 ms slots (see above), written before the first start.
    writeFileSync(
      join(dataDir, "market.json"),
      JSON.stringify({
        startMs: String(Date.parse("2026-06-21T06:00:00Z")),
        intervalMs: 900_000,
        startSlot: 0,
        marketMsPerSlot: 180_000,
        mode: "one-sided",
        importPriceMicrosPerKwh: 300_000,
        exportPriceMicrosPerKwh: 80_000,
        settlementDelayMs: 1_800_000,
      }),
    );
    const ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort(), rpc: await freePort() };
    const gateway = runCli([
      "start",
      "--data-dir",
      dataDir,
      "--mqtt-port",
      String(ports.mqtt),
      "--ws-port",
      String(ports.ws),
      "--http-port",
      String(ports.http),
      "--rpc-port",
      String(ports.rpc),
      "--slot-ms",
      "500",
    ]);
    try {
      // Generous: on a busy 2-core machine a start (tsx, the node's thread, warm refine threads) took over 20 s.
      await gateway.waitFor(/"msg":"jamgate started"/, 90_000);
      const token = readFileSync(join(dataDir, "operator-token"), "utf8").trim();
      const out = mkdtempSync(join(tmpdir(), "jamgate-sim-remote-report-"));
      const result = await jamgate([
        "sim",
        "energy",
        "--households",
        "3",
        "--hours",
        "1",
        "--seed",
        "9",
        "--out",
        out,
        "--json",
        "--mqtt",
        `mqtt://127.0.0.1:${ports.mqtt}`,
        "--node",
        `ws://127.0.0.1:${ports.rpc}`,
        "--gateway",
        `http://127.0.0.1:${ports.http}`,
        "--token",
        token,
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/remote market: one-sided, 15-minute intervals/);
      const summary = JSON.parse(result.stdout);
      expect(summary.intervals).toBe(4);
      expect(summary.errors).toEqual({});
      expect(summary.ledgerEntries).toBeGreaterThan(0);
      expect(Object.keys(summary.kpis.households)).toHaveLength(3);
    } finally {
      gateway.child.kill("SIGTERM");
      await gateway.exited;
    }
  });
});
