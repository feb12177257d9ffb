/**
 * Thread priorities (priority.ts), in a child process: lowering "every thread but these" changes
 * the whole process, which must not be the test runner's.
 */
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tinyParams } from "../chain/params.ts";
import type { JamNode } from "../node.ts";
import { openTestNode } from "../testing/fixtures.ts";
import { currentThreadId } from "./priority.ts";

const run = promisify(execFile);
const linux = process.platform === "linux";

/** A worker that reports its OS thread id and stays alive. */
const REPORTER = `import { parentPort } from "node:worker_threads"; import { readlinkSync } from "node:fs"; parentPort.postMessage(Number(readlinkSync("/proc/thread-self").split("/").pop())); setInterval(() => {}, 1000);`;

const SCRIPT = `
import { Worker } from "node:worker_threads";
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { getPriority } from "node:os";
import { currentThreadId, lowerOtherThreads } from ${JSON.stringify(new URL("./priority.ts", import.meta.url).href)};
const start = () => new Promise((resolve) => new Worker(new URL("data:text/javascript," + encodeURIComponent(${JSON.stringify(REPORTER)}))).once("message", resolve));
const kept = await start();
const base = getPriority(kept);
const result = lowerOtherThreads([kept]);
const later = await start();
const nices = Object.fromEntries(readdirSync("/proc/self/task").map((t) => [t, getPriority(Number(t))]));
console.log(JSON.stringify({ pid: process.pid, main: currentThreadId(), kept, later, base, result, nices }));
process.exit(0);
`;

describe.runIf(linux)("thread priorities (Linux)", () => {
  it("lowers every thread but the kept ones by NICE_STEP; threads made later by a lowered one inherit it", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", SCRIPT], { timeout: 30_000 });
    const r = JSON.parse(stdout) as {
      pid: number;
      main: number;
      kept: number;
      later: number;
      base: number;
      result: { lowered: number; nice: number };
      nices: Record<string, number>;
    };
    const lowered = Math.min(19, r.base + 5);
    expect(r.main).toBe(r.pid);
    expect(r.result.nice).toBe(lowered);
    expect(r.nices[r.kept]).toBe(r.base);
    expect(r.nices[r.main]).toBe(lowered); // the MQTT loop's thread
    expect(r.nices[r.later]).toBe(lowered);
    const others = Object.entries(r.nices).filter(([tid]) => Number(tid) !== r.kept);
    expect(others.length).toBeGreaterThan(3); // V8's and libuv's threads too, not only the main one
    for (const [, nice] of others) expect(nice).toBe(lowered);
  }, 60_000);

  it("the node names its critical threads: the one it runs on and each refine thread", async () => {
    const node: JamNode = await openTestNode();
    try {
      const ids = node.threadIds;
      expect(ids[0]).toBe(currentThreadId());
      expect(ids.length).toBe(1 + Math.min(tinyParams.coresCount, availableParallelism())); // each refine thread (one per core) named once
      expect(new Set(ids).size).toBe(ids.length);
      const live = new Set(readdirSync("/proc/self/task").map(Number));
      for (const id of ids) expect(live.has(id)).toBe(true);
    } finally {
      await node.stop();
    }
  });
});
