/** A simulation's working directory: its own temp dir is removed after the run, a named one kept, and the log lands in sim.log. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openRunDir } from "./run-dir.ts";

/** The log is written asynchronously: wait for a line, with a deadline far beyond any machine's. */
async function logHas(path: string, text: string): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (existsSync(path) && readFileSync(path, "utf8").includes(text)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("openRunDir", () => {
  it("makes a temp dir of its own, logs to its sim.log, and removes it on close", async () => {
    const dir = await openRunDir(undefined, "jamgate-run-dir-test-");
    made.push(dir.path);
    expect(dir.path.startsWith(join(tmpdir(), "jamgate-run-dir-test-"))).toBe(true);
    expect(dir.logPath).toBe(join(dir.path, "sim.log"));
    dir.logger.info("own dir line");
    expect(await logHas(dir.logPath, "own dir line")).toBe(true);
    dir.close();
    expect(existsSync(dir.path)).toBe(false);
  });

  it("makes a named dir that is missing, and keeps it and its log on close", async () => {
    const parent = mkdtempSync(join(tmpdir(), "jamgate-run-dir-test-"));
    made.push(parent);
    const dir = await openRunDir(join(parent, "a", "b"), "unused-");
    expect(dir.path).toBe(join(parent, "a", "b"));
    dir.logger.info({ interval: 3 }, "named dir line");
    dir.close();
    expect(existsSync(dir.path)).toBe(true);
    expect(await logHas(dir.logPath, "named dir line")).toBe(true);
    expect(JSON.parse(readFileSync(dir.logPath, "utf8").trim().split("\n").at(-1)!)).toMatchObject({ interval: 3, msg: "named dir line" });
  });
});
