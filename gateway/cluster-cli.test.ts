/**
 * `jamgate start --cluster` refusals as a user meets them: a URL it cannot take is a bad command
 * line (exit status 2, JG_ERR_CLI_ARGUMENT), and a Redis that does not answer fails the start
 * (exit status 1, JG_ERR_CLUSTER_UNREACHABLE) before a node is opened or a port listened on.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { runCli, type RunningCli } from "../scripts/testing/process.ts";

const processes: RunningCli[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});

const start = (dataDir: string, ...args: string[]) => {
  const cli = runCli([
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
    ...args,
  ]);
  processes.push(cli);
  return cli;
};

describe("jamgate start --cluster", { timeout: 90_000 }, () => {
  it("fails the start with JG_ERR_CLUSTER_UNREACHABLE (exit status 1) when Redis does not answer, before opening a node", async () => {
    const dataDir = tempDir();
    // A port nothing listens on (free now, below the ephemeral range).
    const port = await freePort();
    const cli = start(dataDir, "--cluster", `redis://127.0.0.1:${port}/0`);
    const { code } = await cli.exited;
    expect(code).toBe(1);
    expect(cli.output()).toMatch(new RegExp(`JG_ERR_CLUSTER_UNREACHABLE: --cluster redis://127.0.0.1:${port}/0: connect ECONNREFUSED`));
    expect(existsSync(join(dataDir, "node"))).toBe(false);
  });

  it.each([
    [["--cluster", "http://127.0.0.1:6379"], /JG_ERR_CLI_ARGUMENT: --cluster "http:\/\/127.0.0.1:6379": expected redis:\/\/ or rediss:\/\//],
    [["--cluster", "redis://:hunter2@127.0.0.1:6379/0"], /a password does not go in the URL/],
    [["--cluster-password-file", "/dev/null"], /--cluster-password-file goes with --cluster/],
  ])("refuses %j as a bad command line (exit status 2)", async (args, why) => {
    const cli = start(tempDir(), ...args);
    const { code } = await cli.exited;
    expect(code).toBe(2);
    expect(cli.output()).toMatch(why);
    // A password given in the URL is not repeated, by the refusal or by commander.
    expect(cli.output()).not.toContain("hunter2");
  });
});
