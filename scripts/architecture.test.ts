/**
 * The architecture, checked (house style: "Layout shows the architecture", "Determinism"):
 * no import cycles; dependencies point one way; refine and accumulate code uses no clocks,
 * randomness, environment, timers or I/O.
 *
 * The graph is madge's (imports, exports, dynamic imports) plus what madge does not see: modules
 * named by `new URL("./x.ts", import.meta.url)` (worker entry files, piscina filenames, the service
 * modules a genesis names for the node to load, the CLI a test runs), and the packages and `node:`
 * modules a file imports. Test support (`testing/` folders, `testing.ts` files) is in it and obeys
 * the rules of the folder it supports; test files (`*.test.ts`) are in it as leaves: nothing may
 * import one.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import madge from "madge";
import { beforeAll, describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const TOP = ["node", "gateway", "services", "devices", "simulators", "scripts", "bench"];
/** madge parses every source file of the tree; on a busy 2-core machine that took 31 s once. */
const GRAPH_TIMEOUT_MS = 300_000;

/** File → what it depends on: repository paths (`node/api.ts`), or the specifier of a package or `node:` module. */
type Graph = Record<string, readonly string[]>;

/** `new URL("<relative path>", import.meta.url)`: a module or file named by URL. */
const URL_REFERENCE = /new URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;
/** The specifier of `import … from "x"`, `export … from "x"`, `import "x"` and `import("x")`. */
const IMPORT_SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;
/** A module by its extension (a URL may also name a data file, which is no dependency). */
const MODULE_FILE = /\.(ts|mts|mjs|js)$/;

function sourceFiles(dir: string, withTests = false): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name === "node_modules") continue;
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|mjs)$/.test(name) && (withTests || !name.endsWith(".test.ts"))) out.push(relative(root, path));
    }
  };
  if (existsSync(join(root, dir))) walk(join(root, dir));
  return out;
}

/**
 * The edges madge leaves out of `source` (the text of repository file `file`): modules named by
 * `new URL(…, import.meta.url)`, as repository paths, and bare specifiers (packages, `node:` modules).
 */
function extraEdges(file: string, source: string): string[] {
  const out = new Set<string>();
  for (const m of source.matchAll(URL_REFERENCE)) {
    if (MODULE_FILE.test(m[1]!)) out.add(relative(root, resolve(root, dirname(file), m[1]!)));
  }
  for (const m of source.matchAll(IMPORT_SPECIFIER)) {
    if (!m[1]!.startsWith(".")) out.add(m[1]!);
  }
  return [...out];
}

const isRepoPath = (dep: string): boolean => TOP.some((top) => dep.startsWith(`${top}/`)) || dep.startsWith("docs/");
const isTest = (file: string): boolean => file.endsWith(".test.ts");
/** Test support: what tests import and run (`testing/` folders, `testing.ts` files); it obeys the rules of the code it supports. */
const isTestSupport = (file: string): boolean => /(^|\/)testing(\/|\.ts$)/.test(file);

/**
 * The rules, as `file → dep` lines that break them. Everyone may import devices/protocol/ (the
 * protocol facts and the error registry devices and every stage agree on).
 * - devices/protocol/ imports nothing outside itself: no other file, no package, no `node:`
 *   module (it runs in browsers; its tests may use test packages and Node).
 * - The rest of devices/ imports only devices/ (it runs in firmware-like and browser settings).
 * - node/ imports only node/ and devices/protocol/: it knows no services, MQTT or energy.
 * - services/<name>/ imports only the node's service API, services/common/ and its own folder;
 *   services/common/ only the service API and itself.
 * - Nothing imports simulators/ but simulators/ and scripts/ (the CLI).
 * - Nothing imports a test file.
 * Test files are leaves and may import what they test from anywhere; test support obeys its folder.
 */
function violations(graph: Graph): string[] {
  const found: string[] = [];
  for (const [file, deps] of Object.entries(graph)) {
    const checked = !isTest(file) || file.startsWith("devices/protocol/");
    for (const dep of deps) {
      const repo = isRepoPath(dep);
      let bad = false;
      if (repo && isTest(dep)) bad = true;
      else if (repo && !file.startsWith("simulators/") && !file.startsWith("scripts/") && dep.startsWith("simulators/")) bad = true;
      else if (!checked || (repo && dep.startsWith("devices/protocol/") && !file.startsWith("devices/protocol/"))) bad = false;
      else if (file.startsWith("devices/protocol/")) bad = repo ? !dep.startsWith("devices/protocol/") : !isTest(file);
      else if (file.startsWith("devices/")) bad = repo && !dep.startsWith("devices/");
      else if (file.startsWith("node/")) bad = repo && !dep.startsWith("node/");
      else if (file.startsWith("services/common/")) bad = repo && !dep.startsWith("node/service-api/") && !dep.startsWith("services/common/");
      else if (file.startsWith("services/")) {
        const own = `${file.split("/").slice(0, 2).join("/")}/`;
        bad = repo && !dep.startsWith("node/service-api/") && !dep.startsWith("services/common/") && !dep.startsWith(own);
      }
      if (bad) found.push(`${file} → ${dep}`);
    }
  }
  return found.sort();
}

let repo: { madge: Graph; graph: Graph; cycles: string[][] };

beforeAll(async () => {
  const dirs = TOP.map((d) => join(root, d)).filter((d) => existsSync(d));
  const result = await madge(dirs, { baseDir: root, fileExtensions: ["ts", "mjs"], excludeRegExp: [/node_modules/] });
  const graph: Record<string, string[]> = {};
  const madgeGraph: Graph = result.obj();
  for (const [file, deps] of Object.entries(madgeGraph)) graph[file] = [...deps];
  for (const file of TOP.flatMap((d) => sourceFiles(d, true))) {
    graph[file] = [...new Set([...(graph[file] ?? []), ...extraEdges(file, readFileSync(join(root, file), "utf8"))])];
  }
  repo = { madge: madgeGraph, graph, cycles: result.circular() };
}, GRAPH_TIMEOUT_MS);

describe("architecture", () => {
  it("has no import cycles", () => {
    expect(Object.keys(repo.graph).length).toBeGreaterThan(300);
    expect(repo.cycles).toEqual([]);
  });

  it("points dependencies one way", () => {
    expect(violations(repo.graph)).toEqual([]);
  });

  it("sees modules named by new URL(…, import.meta.url), test support and test files", () => {
    // Worker entry files (node/thread, the refine pool's piscina filename): edges madge's graph lacks.
    const byUrl = Object.entries(repo.graph).flatMap(([file, deps]) =>
      deps.filter((d) => d.endsWith(".mjs") && !(repo.madge[file] ?? []).includes(d)).map((d) => `${file} → ${d}`),
    );
    expect(byUrl.filter((edge) => /^node\/\S+ → node\/\S+entry\.mjs$/.test(edge)).length).toBeGreaterThanOrEqual(2);
    expect(Object.keys(repo.graph).filter(isTestSupport).length).toBeGreaterThan(5);
    expect(Object.keys(repo.graph).filter(isTest).length).toBeGreaterThan(100);
  });

  it("keeps clocks, randomness, environment, timers and I/O out of refine and accumulate", () => {
    const deterministic = [
      ...sourceFiles("services"),
      ...sourceFiles("devices/protocol"),
      ...sourceFiles("node/accumulate"),
      ...sourceFiles("node/refine"),
      "node/chain/stf.ts",
      ...sourceFiles("node/state"),
      ...sourceFiles("node/testing/counter"),
    ].filter((f) => !f.endsWith("node/refine/worker.ts") && !f.endsWith("worker-entry.mjs") && (!isTestSupport(f) || f.startsWith("node/testing/counter/")));
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

describe("the rules", () => {
  it("find an edge of new URL(…, import.meta.url) that madge misses", () => {
    const source =
      'export const COUNTER_MODULE_URL = new URL("../../services/counter/service.ts", import.meta.url).href;\nconst docs = new URL("../../docs/errors.md", import.meta.url);';
    const edges = extraEdges("node/testing/fixtures.ts", source);
    expect(edges).toEqual(["services/counter/service.ts"]);
    expect(violations({ "node/testing/fixtures.ts": edges })).toEqual(["node/testing/fixtures.ts → services/counter/service.ts"]);
  });

  it("hold test support to its folder's direction, and let test files be leaves", () => {
    const graph: Graph = {
      "node/testing/process.ts": ["scripts/jamgate.mjs", "node:child_process"],
      "node/testing/fixtures.ts": ["node/node.ts", "devices/protocol/errors.ts"],
      "node/cli.test.ts": ["gateway/genesis.ts", "node/testing/process.ts"],
      "gateway/stack.ts": ["node/cli.test.ts"],
      "services/telemetry/testing.ts": ["gateway/log.ts"],
    };
    expect(violations(graph)).toEqual([
      "gateway/stack.ts → node/cli.test.ts",
      "node/testing/process.ts → scripts/jamgate.mjs",
      "services/telemetry/testing.ts → gateway/log.ts",
    ]);
  });

  it("keep devices/protocol free of everything outside it, and let every folder import it", () => {
    const graph: Graph = {
      "devices/protocol/hex.ts": ["node:buffer", "devices/envelope.ts", "devices/protocol/errors.ts"],
      "devices/protocol/errors.ts": ["@noble/hashes/blake2.js"],
      "devices/protocol/hex.test.ts": ["fast-check", "node:fs", "gateway/window.ts"],
      "node/node.ts": ["devices/protocol/errors.ts", "devices/envelope.ts", "services/common/bytes.ts"],
      "services/common/window.ts": ["devices/protocol/seq-window.ts"],
      "services/telemetry/refine.ts": ["devices/protocol/errors.ts", "gateway/window.ts"],
      "devices/cli.ts": ["devices/protocol/cli-args.ts", "node/cli.ts", "commander"],
      "gateway/http.ts": ["devices/protocol/device-kinds.ts", "simulators/energy/runner.ts"],
    };
    expect(violations(graph)).toEqual([
      "devices/cli.ts → node/cli.ts",
      "devices/protocol/errors.ts → @noble/hashes/blake2.js",
      "devices/protocol/hex.test.ts → gateway/window.ts",
      "devices/protocol/hex.ts → devices/envelope.ts",
      "devices/protocol/hex.ts → node:buffer",
      "gateway/http.ts → simulators/energy/runner.ts",
      "node/node.ts → devices/envelope.ts",
      "node/node.ts → services/common/bytes.ts",
      "services/telemetry/refine.ts → gateway/window.ts",
    ]);
  });
});
