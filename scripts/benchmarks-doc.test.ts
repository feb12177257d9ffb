/**
 * BENCHMARKS.md stays a reference (per area the current figure, its command, runs, spread and
 * target, and the what-ifs behind a design choice), not a history of runs: history is in git.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** What a reader takes in at once; a new figure replaces the one it supersedes. */
const BENCHMARKS_BYTES_MAX = 25_000;

describe("BENCHMARKS.md", () => {
  const text = readFileSync(new URL("../BENCHMARKS.md", import.meta.url), "utf8");

  it(`stays under ${BENCHMARKS_BYTES_MAX} bytes`, () => {
    expect(Buffer.byteLength(text)).toBeLessThan(BENCHMARKS_BYTES_MAX);
  });

  it("has every section the code and docs cite (BENCHMARKS.md §N)", () => {
    const headings = new Set([...text.matchAll(/^#{2,3} (\d+(?:\.\d+)?)[. ]/gm)].map((m) => m[1]));
    expect(headings.size).toBeGreaterThan(10);
    const root = new URL("..", import.meta.url).pathname;
    const files: string[] = ["README.md"];
    const walk = (dir: string): void => {
      for (const name of readdirSync(join(root, dir))) {
        const path = join(dir, name);
        if (statSync(join(root, path)).isDirectory()) walk(path);
        else if (/\.(ts|mjs|js|md)$/.test(name)) files.push(path);
      }
    };
    for (const dir of ["gateway", "node", "services", "devices", "simulators", "scripts", "bench", "docs"]) walk(dir);
    const missing: string[] = [];
    for (const file of files) {
      for (const m of readFileSync(join(root, file), "utf8").matchAll(/BENCHMARKS\.md\)?,? §(\d+(?:\.\d+)?)/g)) {
        if (!headings.has(m[1]!)) missing.push(`${file}: §${m[1]}`);
      }
    }
    expect(files.length).toBeGreaterThan(100);
    expect(missing).toEqual([]);
  });
});
