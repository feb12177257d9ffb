/**
 * One `jamgate start` per data dir (issue 15, point 6): a second one on the same dir, even with
 * other ports, is refused with the holder's pid; after the holder is killed with SIGKILL a new
 * one starts at once; the dir and its stores are private; and `jamgate node replay` checks the
 * chain a `jamgate start` data dir holds.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { runCli, runCommand, type RunningCli } from "../scripts/testing/process.ts";
import { LOCK_NAME, PID_NAME } from "../node/storage/data-dir.ts";

const processes: RunningCli[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});

const modeOf = (path: string) => statSync(path).mode & 0o777;

async function start(dataDir: string): Promise<RunningCli> {
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()].map(String);
  const cli = runCli([
    "start",
    "--data-dir",
    dataDir,
    "--mqtt-port",
    ports[0]!,
    "--ws-port",
    ports[1]!,
    "--http-port",
    ports[2]!,
    "--rpc-port",
    ports[3]!,
    "--slot-ms",
    "100",
    "--no-node-first",
  ]);
  processes.push(cli);
  return cli;
}

function blockLines(cli: RunningCli): { slot: number; stateRoot: string }[] {
  return cli
    .output()
    .split("\n")
    .filter((l) => l.includes('"msg":"block"'))
    .map((l) => JSON.parse(l) as { slot: number; stateRoot: string });
}

describe("a jamgate start data dir", () => {
  it("is one process's: a second start is refused naming the holder's pid, a start after SIGKILL runs at once; it is private; node replay checks its chain", async () => {
    const dataDir = join(tempDir(), "jamgate");
    // A data dir made before, open to everyone: tightened, and the log says so.
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);

    const first = await start(dataDir);
    await first.waitFor(/"msg":"jamgate started"/);
    expect(first.output()).toMatch(/"mode":"755".*"msg":"the data dir was open to other users: made it private \(0700\)"/);
    for (const dir of [dataDir, join(dataDir, "node"), join(dataDir, "gateway-log")]) expect([dir, modeOf(dir)]).toEqual([dir, 0o700]);
    for (const file of ["node/data.mdb", "node/lock.mdb", "gateway-log/data.mdb", "gateway-log/lock.mdb", "operator-token", "gateway-key"]) {
      expect([file, modeOf(join(dataDir, file))]).toEqual([file, 0o600]);
    }

    // Same dir, other ports: refused, naming the holder, and the holder runs on.
    const second = await start(dataDir);
    expect((await second.exited).code).toBe(1);
    expect(second.output()).toContain(`JG_ERR_DATA_DIR_LOCKED: data dir ${dataDir} is in use by pid ${first.child.pid}`);
    expect(second.output()).not.toContain("jamgate started");
    // Neither can the chain be replayed under it: the node's own dir is locked by the same process.
    const busy = runCli(["node", "replay", "--data-dir", dataDir]);
    processes.push(busy);
    expect((await busy.exited).code).toBe(1);
    expect(busy.output()).toContain(`JG_ERR_DATA_DIR_LOCKED: data dir ${join(dataDir, "node")} is in use by pid ${first.child.pid}`);
    expect(first.child.exitCode).toBe(null);

    // Killed: its locks stay behind, fresh, and the next start takes them (its pid is gone).
    first.child.kill("SIGKILL");
    await first.exited;
    expect(existsSync(join(dataDir, LOCK_NAME)) && existsSync(join(dataDir, "node", LOCK_NAME))).toBe(true);
    const third = await start(dataDir);
    await third.waitFor(/"msg":"jamgate started"/);
    const slotBefore = blockLines(third).at(-1)?.slot ?? 0;
    for (let i = 0; i < 600 && (blockLines(third).at(-1)?.slot ?? 0) < slotBefore + 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(blockLines(third).at(-1)!.slot).toBeGreaterThanOrEqual(slotBefore + 3);
    third.child.kill("SIGTERM");
    expect((await third.exited).code).toBe(0);
    // Stopped cleanly: no lock and no pid left.
    for (const dir of [dataDir, join(dataDir, "node")]) expect(readdirSync(dir).filter((f) => f === LOCK_NAME || f === PID_NAME)).toEqual([]);

    // The chain start wrote, replayed from genesis with start's genesis: every root, up to the last block's.
    const last = blockLines(third).at(-1)!;
    const replay = runCli(["node", "replay", "--data-dir", dataDir]);
    processes.push(replay);
    const result = JSON.parse(await replay.waitFor(/"blocks":\d+/)) as { dataDir: string; blocks: number; stateRoot: string };
    expect((await replay.exited).code).toBe(0);
    expect(result).toMatchObject({ dataDir, blocks: last.slot, stateRoot: last.stateRoot });
    expect(readdirSync(join(dataDir, "node")).filter((f) => f === LOCK_NAME || f === PID_NAME)).toEqual([]);
  }, 120_000);

  it("is refused from the node's thread when only its node dir is held by another process: the code and the pid reach the exit", async () => {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, "node"));
    // Another process holding node/ (as a `jamgate node start` on it would): it takes the lock and waits.
    const lockModule = new URL("../node/storage/data-dir.ts", import.meta.url).href;
    const holder = runCommand(process.execPath, [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `const { DataDirLock } = await import(${JSON.stringify(lockModule)}); DataDirLock.acquire(${JSON.stringify(join(dataDir, "node"))}); console.log("held"); setInterval(() => {}, 60_000);`,
    ]);
    processes.push(holder);
    await holder.waitFor(/^held$/);
    const gateway = await start(dataDir);
    expect((await gateway.exited).code).toBe(1);
    expect(gateway.output()).toContain(`JG_ERR_DATA_DIR_LOCKED: data dir ${join(dataDir, "node")} is in use by pid ${holder.child.pid}`);
    // What it had taken before the node refused is given back: the data dir's own lock.
    expect(readdirSync(dataDir).filter((f) => f === LOCK_NAME || f === PID_NAME)).toEqual([]);
  }, 60_000);
});
