/**
 * `jamgate node replay` refuses, with a code and a non-zero exit, a dir that holds no chain, and
 * makes nothing there: before, it created the dir, wrote a genesis into it and printed
 * {"blocks":0} with exit 0. (A chain of `node start` replays in cli.test.ts, one of `jamgate
 * start` in gateway/datadir.test.ts.)
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { open } from "lmdb";
import { describe, expect, it } from "vitest";
import { defaultMarket } from "../gateway/genesis.ts";
import { tempDir } from "./testing/fixtures.ts";
import { JAMGATE_BIN, runCommand } from "../scripts/testing/process.ts";

/** Every path under `dir`, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).sort();
}

async function replay(args: string[], cwd?: string): Promise<{ code: number | null; output: string }> {
  const cli = runCommand(process.execPath, [JAMGATE_BIN, "node", "replay", ...args], cwd === undefined ? {} : { cwd });
  const { code } = await cli.exited;
  return { code, output: cli.output() };
}

describe("jamgate node replay of a dir without a chain", () => {
  it("refuses a missing dir, an empty one, a stray LMDB and a half-made start data dir with JG_ERR_NO_CHAIN, creating nothing", async () => {
    const base = tempDir();
    const missing = join(base, "missing");
    const empty = join(base, "empty");
    mkdirSync(empty);
    // An LMDB that is not a node's (the gateway's log is one).
    const stray = join(base, "stray");
    const env = open({ path: stray, compression: false });
    env.openDB({ name: "records" }).putSync("k", 1);
    await env.close();
    // A `jamgate start` data dir (gateway key, market, node/) whose node never wrote its genesis.
    const startDir = join(base, "start");
    mkdirSync(join(startDir, "node"), { recursive: true });
    writeFileSync(join(startDir, "gateway-key"), `${"ab".repeat(32)}\n`, { mode: 0o600 });
    const market = defaultMarket(Date.UTC(2026, 0, 1), 6_000);
    writeFileSync(join(startDir, "market.json"), JSON.stringify({ ...market, startMs: market.startMs.toString() }));
    const before = tree(base);

    for (const dir of [missing, empty, stray, startDir]) {
      const { code, output } = await replay(["--data-dir", dir]);
      expect([dir, code]).toEqual([dir, 1]);
      expect(output).toContain(`JG_ERR_NO_CHAIN: ${dir} ${dir === missing ? "does not exist" : "holds no chain"}`);
      expect(output).not.toContain('"blocks"');
    }
    expect(tree(base)).toEqual(before);
    expect(existsSync(missing)).toBe(false);
  }, 60_000);

  it("without --data-dir, where neither jamgate start's nor node start's dir exists, refuses and makes neither", async () => {
    const cwd = tempDir();
    const { code, output } = await replay([], cwd);
    expect(code).toBe(1);
    expect(output).toContain("JG_ERR_NO_CHAIN: .jamgate-node does not exist (without --data-dir: the first of .jamgate and .jamgate-node that exists)");
    expect(readdirSync(cwd)).toEqual([]);
  }, 60_000);
});
