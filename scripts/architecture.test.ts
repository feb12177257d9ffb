/**
 * The architecture, checked (house style: "Layout shows the architecture", "Determinism"):
 * no import cycles; dependencies point one way (node/ knows no services, MQTT or energy;
 * services/ import only the node's service API and services/common; nothing imports simulators/); refine and
 * accumulate code uses no clocks, randomness, environment, timers or I/O.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import madge from "madge";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const TOP = ["node", "gateway", "services", "devices", "simulators", "scripts", "bench"];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|mjs)$/.test(name) && !name.endsWith(".test.ts")) out.push(relative(root, path));
    }
  };
  try {
    walk(join(root, dir));
  } catch {
    // folder not there yet
  }
  return out;
}

async function graph(): Promise<Record<string, string[]>> {
  const dirs = TOP.map((d) => join(root, d)).filter((d) => {
    try {
      return statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
  const result = await madge(dirs, { baseDir: root, fileExtensions: ["ts", "mjs"], excludeRegExp: [/\.test\.ts$/, /node_modules/] });
  return result.obj();
}

describe("architecture", () => {
  it("has no import cycles", async () => {
    const dirs = TOP.map((d) => join(root, d)).filter((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory());
    const result = await madge(dirs, { baseDir: root, fileExtensions: ["ts", "mjs"], excludeRegExp: [/node_modules/] });
    expect(result.circular()).toEqual([]);
  });

  it("points dependencies one way", async () => {
    const violations: string[] = [];
    for (const [file, deps] of Object.entries(await graph())) {
      for (const dep of deps) {
        if (dep.startsWith("devices/protocol/")) continue; // the bottom layer: everyone may import it
        const bad =
          (file.startsWith("node/") && /^(services|gateway|devices|simulators|scripts|bench)\//.test(dep)) ||
          (file.startsWith("services/") &&
            !dep.startsWith("node/service-api/") &&
            !dep.startsWith("services/common/") &&
            !dep.startsWith(`${file.split("/").slice(0, 2).join("/")}/`)) ||
          (file.startsWith("services/common/") && !dep.startsWith("node/service-api/") && !dep.startsWith("services/common/")) ||
          (!file.startsWith("simulators/") && !file.startsWith("scripts/") && dep.startsWith("simulators/"));
        if (bad) violations.push(`${file} → ${dep}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("keeps clocks, randomness, environment, timers and I/O out of refine and accumulate", () => {
    const deterministic = [
      ...sourceFiles("services"),
      ...sourceFiles("node/accumulate"),
      ...sourceFiles("node/refine"),
      "node/chain/stf.ts",
      ...sourceFiles("node/state"),
    ].filter((f) => !f.endsWith("node/refine/worker.ts") && !f.endsWith("worker-entry.mjs"));
    const forbidden =
      /\bDate\.now\b|\bnew Date\b|\bMath\.random\b|\bperformance\.now\b|\bprocess\.(env|hrtime|argv)\b|\bset(Timeout|Interval|Immediate)\b|\bfetch\(|from "node:(fs|net|http|https|dgram|child_process|os|worker_threads)"|getRandomValues|randomBytes|parseFloat|toFixed/;
    const hits: string[] = [];
    for (const file of deterministic) {
      readFileSync(join(root, file), "utf8")
        .split("\n")
        .forEach((line, index) => {
          if (forbidden.test(line)) hits.push(`${file}:${index + 1}: ${line.trim()}`);
        });
    }
    expect(deterministic.length).toBeGreaterThan(5);
    expect(hits).toEqual([]);
  });
});
