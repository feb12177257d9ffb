/**
 * `jamgate start --connections-max N`: the MQTT connection cap an operator sets (gatewayLimits.connectionsMax
 * by default), refusing the N+1th connection with CONNACK 3 as the built-in cap does (limits.test.ts),
 * and the warning at start when the process's open-file limit cannot hold N connections and the rest
 * of the process (fd-limit.ts).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { program } from "../scripts/cli.ts";
import { JAMGATE_BIN, runCli, runCommand, type RunningCli } from "../scripts/testing/process.ts";
import { FD_MARGIN, fdLimitWarning, openFilesSoftLimit } from "./fd-limit.ts";
import { gatewayLimits } from "./gateway.ts";

const processes: RunningCli[] = [];
const clients: mqtt.MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
    await p.exited;
  }
});

/** `jamgate start` on a fresh data dir and free ports, everything but MQTT and HTTP off. */
const startArgs = (dataDir: string, ...more: string[]) => [
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
  "--radius-port",
  "0",
  "--slot-ms",
  "1000",
  ...more,
];

const FD_WARNING = /"msg":"the open-file limit/;

describe("the open-file limit against the connection cap", () => {
  it("warns when the cap and the margin exceed the limit, naming the limit and how to raise it", () => {
    expect(fdLimitWarning(10_000, 10_000 + FD_MARGIN)).toBeNull();
    const w = fdLimitWarning(10_000, 10_000 + FD_MARGIN - 1);
    expect(w?.fields).toEqual({ openFilesLimit: 10_000 + FD_MARGIN - 1, connectionsMax: 10_000, fdNeeded: 10_000 + FD_MARGIN });
    expect(w?.message).toContain(`(${10_000 + FD_MARGIN - 1})`);
    expect(w?.message).toContain("LimitNOFILE=");
    expect(w?.message).toContain("ulimit -n");
    expect(w?.message).toContain("--connections-max");
    // A limit that cannot be read warns of nothing.
    expect(fdLimitWarning(10_000, null)).toBeNull();
  });

  it("reads the soft limit from /proc/self/limits' text", () => {
    const text = (soft: string, hard: string) =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax processes             95538                95538                processes\nMax open files            ${soft}                ${hard}                files\n`;
    expect(openFilesSoftLimit(text("1024", "524288"))).toBe(1024);
    expect(openFilesSoftLimit(text("unlimited", "unlimited"))).toBeNull();
    expect(openFilesSoftLimit("")).toBeNull();
  });

  it("--connections-max defaults to gatewayLimits.connectionsMax", () => {
    const start = program().commands.find((c) => c.name() === "start")!;
    expect(start.options.find((o) => o.long === "--connections-max")?.defaultValue).toBe(gatewayLimits.connectionsMax);
  });
});

describe("jamgate start --connections-max", () => {
  it("refuses the connection past N with CONNACK 3 (JG_ERR_MQTT_CONNECTIONS), counted in /metrics", async () => {
    const dataDir = tempDir();
    const gateway = runCli(startArgs(dataDir, "--connections-max", "2"));
    processes.push(gateway);
    const started = JSON.parse(await gateway.waitFor(/"msg":"jamgate started"/)) as { mqtt: string; http: string };
    const token = readFileSync(join(dataDir, "operator-token"), "utf8").trim();
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      outcomes.push(
        await mqtt
          .connectAsync(started.mqtt, {
            clientId: `operator-${i}`,
            username: "operator",
            password: token,
            protocolVersion: 4,
            reconnectPeriod: 0,
            connectTimeout: 20_000,
          })
          .then(
            (c) => (clients.push(c), "ok"),
            (e: { code?: number }) => `refused ${e.code}`,
          ),
      );
    }
    expect(outcomes).toEqual(["ok", "ok", "refused 3"]);
    const metrics = await (await fetch(`${started.http}/metrics`)).text();
    expect(metrics).toMatch(/^jamgate_mqtt_connects_refused_total\{code="JG_ERR_MQTT_CONNECTIONS"\} 1$/m);
    // This host's limit holds 2 connections and the margin: no warning.
    expect(gateway.output()).not.toMatch(FD_WARNING);
  });

  it("warns at start when the open-file limit cannot hold N, with the limit, and starts anyway", async () => {
    const dataDir = tempDir();
    // The child's limit lowered to 3,000 (lowering needs no privilege): 5,000 connections cannot fit.
    const gateway = runCommand("prlimit", ["--nofile=3000:3000", "--", process.execPath, JAMGATE_BIN, ...startArgs(dataDir, "--connections-max", "5000")]);
    processes.push(gateway);
    const warning = JSON.parse(await gateway.waitFor(FD_WARNING)) as Record<string, unknown>;
    expect(warning).toMatchObject({ level: 40, openFilesLimit: 3000, connectionsMax: 5000, fdNeeded: 5000 + FD_MARGIN });
    await gateway.waitFor(/"msg":"jamgate started"/);
  });
});
