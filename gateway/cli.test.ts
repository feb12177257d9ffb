/**
 * The first "done when": `jamgate start`, then `jamgate device keygen`, `register` and
 * `publish --simulate`, all as a user runs them, and the receipts come back.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { RpcClient } from "../node/rpc/client.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { JAMGATE_BIN, runCli, runCommand, type RunningCli } from "../scripts/testing/process.ts";

const run = promisify(execFile);
const jamgate = (...args: string[]) => run(process.execPath, [JAMGATE_BIN, ...args], { timeout: 60_000 });

const processes: RunningCli[] = [];

/** Pids of processes whose command line names `dataDir` (a jamgate left running by a test). */
function jamgateProcessesOn(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(dataDir)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
    await p.exited;
  }
});

describe("jamgate start + jamgate device", () => {
  it("registers a device and publishes simulated readings that come back as receipts; /metrics counts them", async () => {
    const dataDir = tempDir();
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
      "300",
    ]);
    processes.push(gateway);
    await gateway.waitFor(/"msg":"jamgate started"/);
    if (process.platform === "linux") {
      // The node's threads run ahead of the gateway's (node/thread/priority.ts): the main thread is lowered, they are not.
      const line = JSON.parse(await gateway.waitFor(/"msg":"gateway and node threads: /)) as { threads: number; nice: number; nodeThreads: number };
      const niceOf = (tid: string) => Number(readFileSync(`/proc/${gateway.child.pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ")[16]);
      const nices = readdirSync(`/proc/${gateway.child.pid}/task`).map(niceOf);
      expect(niceOf(String(gateway.child.pid))).toBe(line.nice);
      expect(line.nodeThreads).toBeGreaterThanOrEqual(2);
      expect(nices.filter((n) => n < line.nice).length).toBeGreaterThanOrEqual(line.nodeThreads);
    }

    const deviceDir = tempDir();
    const key = join(deviceDir, "key.json");
    await jamgate("device", "keygen", "--out", key);
    const registered = await jamgate(
      "device",
      "register",
      "--key",
      key,
      "--kind",
      "meter",
      "--gateway",
      `http://127.0.0.1:${ports.http}`,
      "--data-dir",
      dataDir,
      "--wait",
      "--timeout-ms",
      "30000",
    );
    expect(registered.stdout).toMatch(/"status":\s*"registered"/);
    const published = await jamgate(
      "device",
      "publish",
      "--key",
      key,
      "--mqtt",
      `mqtt://127.0.0.1:${ports.mqtt}`,
      "--simulate",
      "12",
      "--data-dir",
      join(deviceDir, "queue"),
      "--wait-receipts",
      "--timeout-ms",
      "45000",
    );
    const summary = JSON.parse(published.stdout.trim().split("\n").at(-1)!) as { sent: number; receipts: number; errors: unknown; unanswered: number };
    expect(summary).toMatchObject({ sent: 12, receipts: 12, unanswered: 0 });
    expect(published.stderr).not.toMatch(/MaxListenersExceeded/);

    const metrics = await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text();
    expect(metrics).toMatch(/jamgate_envelopes_accepted_total\{kind="meter.reading"\} 12/);
    expect(metrics).toMatch(/jamgate_envelopes_settled_total 12/);
    expect(metrics).toMatch(/jamgate_settlement_seconds_count 12/);
  }, 120_000);

  it("stops cleanly when `npm start` is told to stop (SIGTERM to npm, as a process manager sends it)", async () => {
    const dataDir = tempDir();
    const ports = ["--mqtt-port", "--ws-port", "--http-port", "--rpc-port"].flatMap((flag) => [flag, "0"]);
    const npm = runCommand("npm", ["start", "--", "--data-dir", dataDir, ...ports, "--slot-ms", "300"], { cwd: fileURLToPath(new URL("..", import.meta.url)) });
    processes.push(npm);
    try {
      await npm.waitFor(/"msg":"jamgate started"/, 30_000);
      npm.child.kill("SIGTERM");
      // npm passes the signal to its script's process; through a shell that did not exec, jamgate never got it.
      await npm.waitFor(/"msg":"stopped"/, 20_000);
      expect(await npm.exited).toMatchObject({ code: 0 });
      expect(jamgateProcessesOn(dataDir)).toEqual([]);
    } finally {
      for (const pid of jamgateProcessesOn(dataDir)) process.kill(pid, "SIGKILL");
    }
  }, 60_000);

  it("says which port is taken (JG_ERR_PORT_IN_USE, exit 1) instead of dying with a stack", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      for (const flag of ["--mqtt-port", "--rpc-port"]) {
        const ports: Record<string, string> = { "--mqtt-port": "0", "--ws-port": "0", "--http-port": "0", "--rpc-port": "0", [flag]: String(port) };
        const failed = await jamgate("start", "--data-dir", tempDir(), ...Object.entries(ports).flat()).then(
          () => null,
          (e: { code: number; stderr: string }) => e,
        );
        expect(failed?.code).toBe(1);
        expect(failed?.stderr).toMatch(new RegExp(`^jamgate: JG_ERR_PORT_IN_USE: ${flag}: .*EADDRINUSE`, "m"));
        expect(failed?.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      taken.close();
    }
  }, 60_000);

  it("listens for the RPC on --rpc-host, loopback by default whatever --host says, and takes writes with the operator token only", async () => {
    const dataDir = tempDir();
    const ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort(), rpc: await freePort() };
    // 127.0.0.2 is loopback too (127.0.0.0/8), but another address than the RPC's default.
    const gateway = runCli([
      "start",
      "--data-dir",
      dataDir,
      "--host",
      "127.0.0.2",
      "--mqtt-port",
      String(ports.mqtt),
      "--ws-port",
      String(ports.ws),
      "--http-port",
      String(ports.http),
      "--rpc-port",
      String(ports.rpc),
      "--slot-ms",
      "1000",
    ]);
    processes.push(gateway);
    const started = JSON.parse(await gateway.waitFor(/"msg":"jamgate started"/, 90_000)) as { mqtt: string; rpc: string };
    expect(started.mqtt).toBe(`mqtt://127.0.0.2:${ports.mqtt}`);
    expect(started.rpc).toBe(`ws://127.0.0.1:${ports.rpc}`);
    await expect(RpcClient.connect(`ws://127.0.0.2:${ports.rpc}`, { timeoutMs: 5_000 })).rejects.toMatchObject({
      code: "JG_ERR_RPC_CLOSED",
      message: expect.stringContaining("ECONNREFUSED"),
    });
    const reader = await RpcClient.connect(`ws://127.0.0.1:${ports.rpc}`);
    const best = await reader.bestBlock();
    expect(best.slot).toBeGreaterThanOrEqual(0);
    await expect(reader.submitWorkPackage(0, new Uint8Array([1, 2, 3]), [])).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    await reader.close();
    await expect(RpcClient.connect(`ws://127.0.0.1:${ports.rpc}`, { token: "not-the-operator-token" })).rejects.toMatchObject({
      code: "JG_ERR_RPC_UNAUTHORIZED",
    });
    // With the operator token the call reaches the node, which judges the package itself.
    const writer = await RpcClient.connect(`ws://127.0.0.1:${ports.rpc}`, { token: readFileSync(join(dataDir, "operator-token"), "utf8").trim() });
    await expect(writer.submitWorkPackage(0, new Uint8Array([1, 2, 3]), [])).rejects.toMatchObject({ code: "JG_ERR_PACKAGE_MALFORMED" });
    await writer.close();
  }, 120_000);
});
