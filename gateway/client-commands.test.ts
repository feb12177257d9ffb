/**
 * The client commands against a real `jamgate start`, each a process as a user runs it, none given
 * a URL: they find the gateway through its data dir's endpoints.json. A device refused for not
 * being registered is told to register; `device publish` prints each receipt; `device receipts`
 * and `jamgate ledger` read the same settlements back from the ledger API, and `ledger --follow`
 * prints one as it settles; `sim energy --data-dir` runs on the running gateway's market.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { JAMGATE_BIN, runCli, type RunningCli } from "../scripts/testing/process.ts";
import { marketOfDataDir } from "./genesis.ts";
import type { EntryView } from "./ledger/types.ts";

const run = promisify(execFile);
/** A command's exit, stdout and stderr, whether it failed or not. */
async function jamgate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [JAMGATE_BIN, ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

/** A market minute per slot of 500 ms would make a 15-minute interval 7.5 s: 5 market minutes make it 1.5 s. */
const SLOT_MS = 500;
const MARKET_MINUTES_PER_SLOT = 5;

let dataDir: string;
let gateway: RunningCli;
let deviceDir: string;
let keyFile: string;
let deviceId: string;
/** What `device publish` printed, seq → its receipt. */
const receipted = new Map<number, { slot: number; package: string; block: string }>();

beforeAll(async () => {
  dataDir = join(tempDir(), "gw");
  gateway = runCli([
    "start",
    "--data-dir",
    dataDir,
    "--mqtt-port",
    "0",
    "--ws-port",
    "0",
    "--http-port",
    "0",
    "--rpc-port",
    "0",
    "--slot-ms",
    String(SLOT_MS),
    "--market-minutes-per-slot",
    String(MARKET_MINUTES_PER_SLOT),
  ]);
  await gateway.waitFor(/"msg":"jamgate started"/, 90_000);
  deviceDir = tempDir();
  keyFile = join(deviceDir, "meter.json");
  deviceId = (JSON.parse((await jamgate("device", "keygen", "--out", keyFile)).stdout) as { deviceId: string }).deviceId;
}, 120_000);

afterAll(async () => {
  if (gateway !== undefined && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill("SIGKILL");
  await gateway?.exited;
});

describe("client commands on a running jamgate", { timeout: 180_000 }, () => {
  it("find it through endpoints.json, written 0600 once it listens", async () => {
    const path = join(dataDir, "endpoints.json");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const endpoints = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    const started = JSON.parse(await gateway.waitFor(/"msg":"jamgate started"/)) as Record<string, unknown>;
    expect(endpoints).toEqual({
      mqtt: started.mqtt,
      mqtts: null,
      ws: started.ws,
      http: started.http,
      rpc: started.rpc,
      radius: started.radius,
      pid: gateway.child.pid,
    });
    expect(await (await fetch(`${String(endpoints.http)}/healthz`)).json()).toEqual({ ok: true });
  });

  it("tell an unregistered device, refused with CONNACK 5, to register first", async () => {
    const refused = await jamgate(
      "device",
      "publish",
      "--key",
      keyFile,
      "--simulate",
      "1",
      "--data-dir",
      join(deviceDir, "queue"),
      "--gateway-data-dir",
      dataDir,
      "--timeout-ms",
      "30000",
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `jamgate: JG_ERR_DEVICE_UNREGISTERED: the gateway refused the connection (CONNACK 5, not authorized): is device ${deviceId} registered? Register it first: \`jamgate device register --key ${keyFile} --kind KIND --wait\``,
    );
  });

  // Before any other registration: the simulation registers its meters, then their agents, each
  // batch one package to the next core in turn, and two packages in one block accumulate in core
  // order, so an agents' package on core 0 beside its meters' on core 1 is refused
  // (JG_ERR_ENERGY_HOUSEHOLD). As the first registrations of the process, the meters go to core 0.
  it("sim energy --data-dir runs on the running gateway's market, and the ledger shows what it settled", async () => {
    const sim = await jamgate(
      "sim",
      "energy",
      "--data-dir",
      dataDir,
      "--households",
      "2",
      "--hours",
      "1",
      "--json",
      "--no-progress",
      "--out",
      join(deviceDir, "report"),
    );
    expect(sim.code, sim.stderr).toBe(0);
    const result = JSON.parse(lines(sim.stdout).at(-1)!) as { intervals: number; ledgerEntries: number };
    expect(result.intervals).toBe(4);
    expect(result.ledgerEntries).toBeGreaterThan(0);
    // The sim read the ledger of its intervals from state; the index serves the same entries. A
    // reading late for the sim's last interval rolls into the next one, which the gateway's market
    // settles after the sim has ended (one more entry, seen on a busy machine): only the sim's own
    // intervals, the first four, are compared.
    const ofSimIntervals = (entries: EntryView[]) => {
      const intervals = [...new Set(entries.map((e) => e.interval!))].sort((x, y) => x - y).slice(0, result.intervals);
      return entries.filter((e) => intervals.includes(e.interval!));
    };
    let energy: EntryView[] = [];
    const deadline = Date.now() + 60_000;
    while (energy.length < result.ledgerEntries && Date.now() < deadline) {
      energy = ofSimIntervals(
        lines((await jamgate("ledger", "--data-dir", dataDir, "--service", "energy", "--json", "--limit", "1000")).stdout)
          .map((l) => JSON.parse(l) as EntryView)
          .filter((e) => e.kind !== "envelopes"),
      );
    }
    expect(energy.length).toBe(result.ledgerEntries);
    expect(energy.every((e) => e.service === "energy-trading" && e.energyWh! >= 0 && /^-?\d+$/.test(e.amountMicros!))).toBe(true);
  });

  it("register and publish without URLs; publish prints each receipt (seq, slot, package, block) as it comes, then the totals", async () => {
    const registered = await jamgate("device", "register", "--key", keyFile, "--kind", "meter", "--data-dir", dataDir, "--wait", "--timeout-ms", "60000");
    expect(registered.stdout).toMatch(/"status":\s*"registered"/);
    const published = await jamgate(
      "device",
      "publish",
      "--key",
      keyFile,
      "--simulate",
      "12",
      "--data-dir",
      join(deviceDir, "queue"),
      "--gateway-data-dir",
      dataDir,
      "--wait-receipts",
      "--timeout-ms",
      "90000",
    );
    expect(published.stderr).toBe(published.stderr.replace(/JG_ERR_DEVICE_UNREGISTERED/, ""));
    expect(published.code).toBe(0);
    const out = lines(published.stdout);
    expect(JSON.parse(out.at(-1)!)).toMatchObject({ deviceId, sent: 12, receipts: 12, unanswered: 0 });
    for (const line of out.slice(0, -1)) {
      const m = /^receipt seq=(\d+) slot=(\d+) package=([0-9a-f]{64}) block=([0-9a-f]{64})$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(receipted.has(Number(m![1])), `seq ${m![1]} printed twice`).toBe(false);
      receipted.set(Number(m![1]), { slot: Number(m![2]), package: m![3]!, block: m![4]! });
    }
    expect([...receipted.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));

    const asJson = await jamgate(
      "device",
      "publish",
      "--key",
      keyFile,
      "--simulate",
      "2",
      "--data-dir",
      join(deviceDir, "queue"),
      "--gateway-data-dir",
      dataDir,
      "--wait-receipts",
      "--json",
      "--timeout-ms",
      "90000",
    );
    const jsonLines = lines(asJson.stdout).map((l) => JSON.parse(l) as { receipt?: { seq: number; slot: number; package: string; block: string } });
    expect(
      jsonLines
        .slice(0, -1)
        .map((l) => l.receipt?.seq)
        .sort(),
    ).toEqual([12, 13]);
    for (const { receipt } of jsonLines.slice(0, -1)) receipted.set(receipt!.seq, { slot: receipt!.slot, package: receipt!.package, block: receipt!.block });
  });

  it("device receipts lists the device's settled seqs from the ledger: the same packages, blocks and slots the receipts named", async () => {
    // The ledger index learns a settlement as the gateway receipts it; poll until it lists all.
    let listed: { code: number; stdout: string; stderr: string } | undefined;
    const deadline = Date.now() + 60_000;
    do {
      listed = await jamgate("device", "receipts", "--key", keyFile, "--data-dir", dataDir, "--json");
      expect(listed.code, listed.stderr).toBe(0);
    } while (JSON.parse(lines(listed.stdout).at(-1)!).settled < 14 && Date.now() < deadline);
    const out = lines(listed.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = out.at(-1)!;
    expect(summary).toMatchObject({ deviceId, kind: "meter", service: "telemetry", settledHighestSeq: 13, settled: 14, seqs: "0-13" });
    for (const settlement of out.slice(0, -1) as { seqs: number[]; package: string; block: string; slot: number }[]) {
      for (const seq of settlement.seqs)
        expect({ seq, ...receipted.get(seq) }).toEqual({ seq, slot: settlement.slot, package: settlement.package, block: settlement.block });
    }
    const text = await jamgate("device", "receipts", "--key", keyFile, "--data-dir", dataDir);
    expect(lines(text.stdout).at(-1)).toBe(
      `device ${deviceId} (meter on telemetry): the service's settled highest seq is 13; the ledger lists 14 settled seqs: 0-13`,
    );
    expect(lines(text.stdout)[0]).toMatch(/^settled seqs=[0-9,-]+ slot=\d+ package=[0-9a-f]{64} block=[0-9a-f]{64}$/);
  });

  it("jamgate ledger prints the device's settlements as JSON lines and as a table", async () => {
    const listed = await jamgate("ledger", "--data-dir", dataDir, "--device", deviceId, "--json");
    expect(listed.code, listed.stderr).toBe(0);
    const entries = lines(listed.stdout).map((l) => JSON.parse(l) as EntryView);
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.kind === "envelopes" && e.device === deviceId && e.service === "telemetry")).toBe(true);
    expect(entries.map((e) => e.id)).toEqual([...entries.map((e) => e.id)].sort((a, b) => a - b));
    expect(entries.flatMap((e) => e.seqs!).sort((a, b) => a - b)).toEqual(Array.from({ length: 14 }, (_, i) => i));
    const table = lines((await jamgate("ledger", "--data-dir", dataDir, "--service", "telemetry", "--limit", "3")).stdout);
    expect(table[0]).toMatch(/^\s+ID {2}TIME \(UTC\)\s+SLOT {2}SERVICE\s+KIND\s+DEVICE/);
    expect(table.length).toBeLessThanOrEqual(4);
    expect(table.at(-1)).toMatch(
      new RegExp(`^\\s*${entries.at(-1)!.id}  .*telemetry\\s+envelopes\\s+${deviceId.slice(0, 12)}…\\s+seqs [0-9,-]+  package [0-9a-f]{12}…$`),
    );
  });

  it("jamgate ledger --follow prints an entry as it settles", async () => {
    const follow = runCli(["ledger", "--data-dir", dataDir, "--device", deviceId, "--json", "--limit", "1", "--follow"]);
    try {
      await follow.waitFor(/^following http:\/\/127\.0\.0\.1:\d+\/v1\/events\?device=/, 60_000);
      const published = await jamgate(
        "device",
        "publish",
        "--key",
        keyFile,
        "--simulate",
        "1",
        "--data-dir",
        join(deviceDir, "queue"),
        "--gateway-data-dir",
        dataDir,
        "--wait-receipts",
        "--timeout-ms",
        "90000",
      );
      expect(published.code, published.stderr).toBe(0);
      const line = await follow.waitFor(/"seqs":\[[0-9,]*14\]/, 60_000);
      expect(JSON.parse(line)).toMatchObject({ kind: "envelopes", device: deviceId, service: "telemetry" });
      expect(follow.child.exitCode).toBeNull();
    } finally {
      follow.child.kill("SIGTERM");
      await follow.exited;
    }
  });

  it("a new data dir's market runs at --market-minutes-per-slot; an existing dir's other speed is refused", async () => {
    const market = JSON.parse(readFileSync(join(dataDir, "market.json"), "utf8")) as { marketMsPerSlot: number };
    expect(market.marketMsPerSlot).toBe(MARKET_MINUTES_PER_SLOT * 60_000);
    const other = tempDir();
    marketOfDataDir(other, SLOT_MS); // a real-time market, as a plain `jamgate start` makes it
    const refused = await jamgate(
      "start",
      "--data-dir",
      other,
      "--mqtt-port",
      "0",
      "--ws-port",
      "0",
      "--http-port",
      "0",
      "--rpc-port",
      "0",
      "--market-minutes-per-slot",
      "5",
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^jamgate: JG_ERR_CLI_ARGUMENT: --market-minutes-per-slot 5: .*market\.json runs 0\.0083\d* market minutes per slot, and a chain keeps the market of its first start/m,
    );
  });

  it("stopped, removes endpoints.json, and the client commands say how to start one", async () => {
    gateway.child.kill("SIGTERM");
    expect(await gateway.exited).toMatchObject({ code: 0 });
    expect(existsSync(join(dataDir, "endpoints.json"))).toBe(false);
    const ledger = await jamgate("ledger", "--data-dir", dataDir);
    expect(ledger.code).toBe(1);
    expect(ledger.stderr).toContain(
      `jamgate: JG_ERR_NO_GATEWAY: no running jamgate in ${dataDir} (no endpoints.json): start one with \`jamgate start --data-dir ${dataDir}\`, or give --http`,
    );
    const publish = await jamgate(
      "device",
      "publish",
      "--key",
      keyFile,
      "--simulate",
      "1",
      "--data-dir",
      join(deviceDir, "queue"),
      "--gateway-data-dir",
      dataDir,
    );
    expect(publish.stderr).toContain("JG_ERR_NO_GATEWAY");
    expect(publish.stderr).toContain("or give --mqtt");
  });
});
