/**
 * What `jamgate` loads before it does anything (scripts/jamgate.mjs, BENCHMARKS.md §12): `jamgate
 * --help` loads no package but commander, from source (tsx) and compiled (dist/, scripts/build-cli.mjs);
 * compiled, it loads no tsx either, and `device keygen` runs without it, while every other command
 * hands over to the source before its action and behaves as from source. A top-level import of an
 * implementation (typeberry, fastify, aedes, lmdb, mqtt, sodium-native, …) in a command file, or
 * in anything it imports, fails the first test. Which modules load is recorded by
 * scripts/testing/record-modules.mjs; no test here measures time (bench/cli.ts does).
 *
 * The compiled tests build and run a copy of the sources of their own, so that an edit in the
 * checkout while they run (which makes its dist/ stale) changes nothing here.
 */
import { execFile } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Command } from "commander";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { builtCopy } from "./testing/built-copy.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));

/**
 * The packages `jamgate --help` may load: commander for the command line, and tsx (with its
 * esbuild) when it runs from source. Any other package there is a command's implementation loaded
 * for every command; import it in the action that needs it (`await import(…)`) instead.
 */
const HELP_PACKAGES = new Set(["commander"]);
const TSX_PACKAGES = new Set(["tsx", "esbuild"]);

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The packages whose modules the process resolved. */
  readonly packages: ReadonlySet<string>;
}

/** Runs `jamgate args` of the checkout at `root` in a new process with the module recorder, `env` added to this process's. */
function jamgate(root: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const modulesFile = join(tempDir(), "modules.txt");
  writeFileSync(modulesFile, "");
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", pathToFileURL(join(REPO, "scripts/testing/record-modules.mjs")).href, join(root, "scripts/jamgate.mjs"), ...args],
      { cwd: root, env: { ...process.env, ...env, JAMGATE_RECORD_MODULES: modulesFile }, timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== "number") return reject(error);
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr, packages: packagesIn(readFileSync(modulesFile, "utf8")) });
      },
    );
  });
}

function packagesIn(urls: string): Set<string> {
  const packages = new Set<string>();
  for (const url of urls.split("\n")) {
    const at = url.lastIndexOf("/node_modules/");
    if (at < 0) continue;
    const [scope, name] = url.slice(at + "/node_modules/".length).split("/") as [string, string];
    packages.add(scope.startsWith("@") ? `${scope}/${name}` : scope);
  }
  return packages;
}

const outside = (packages: ReadonlySet<string>, allowed: ReadonlySet<string>) => [...packages].filter((p) => !allowed.has(p)).sort();

/** Every command's help text by its path ("jamgate device keygen"). */
function helps(root: Command): Map<string, string> {
  const all = new Map<string, string>();
  const walk = (command: Command, path: string) => {
    all.set(path, command.helpInformation());
    for (const sub of command.commands) walk(sub, `${path} ${sub.name()}`);
  };
  walk(root, "jamgate");
  return all;
}

// Each test spawns jamgate a few times; from source, each start takes seconds of a busy 2-core machine.
describe("jamgate from source", { timeout: 90_000 }, () => {
  it("--help loads no package but commander and tsx", async () => {
    const run = await jamgate(REPO, ["--help"], { JAMGATE_FROM_SOURCE: "1" });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: jamgate /);
    expect(outside(run.packages, new Set([...HELP_PACKAGES, ...TSX_PACKAGES]))).toEqual([]);
    expect(run.packages.has("tsx")).toBe(true);
  });
});

describe("jamgate compiled", { timeout: 90_000 }, () => {
  let copy: string;
  beforeAll(() => {
    copy = builtCopy(tempDir("jamgate-cli-copy-"));
  }, 120_000);
  const fromSource = { JAMGATE_FROM_SOURCE: "1" };

  it("answers --help without tsx, loading no package but commander, with the help the source gives", async () => {
    const [compiled, source] = await Promise.all([jamgate(copy, ["--help"]), jamgate(copy, ["--help"], fromSource)]);
    expect(compiled.code).toBe(0);
    expect(outside(compiled.packages, HELP_PACKAGES)).toEqual([]);
    expect(compiled.stdout).toBe(source.stdout);
  });

  it("gives every command's help as the source does, option for option", async () => {
    const compiled = (await import(pathToFileURL(join(copy, "dist/cli.mjs")).href)) as { program(): Command };
    const source = (await import(pathToFileURL(join(copy, "scripts/cli.ts")).href)) as { program(): Command };
    const expected = helps(source.program());
    expect(expected.size).toBeGreaterThan(20);
    expect(expected.get("jamgate device keygen")).toMatch(/--out <file>/);
    expect(helps(compiled.program())).toEqual(expected);
  });

  it("runs device keygen without tsx", async () => {
    const keyFile = join(tempDir(), "key.json");
    const run = await jamgate(copy, ["device", "keygen", "--out", keyFile]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).keyFile).toBe(keyFile);
    expect(JSON.parse(readFileSync(keyFile, "utf8")).secretKey).toMatch(/^[0-9a-f]{64}$/);
    expect([...run.packages].filter((p) => TSX_PACKAGES.has(p))).toEqual([]);
  });

  it("runs device envelope and device token without tsx: the envelope is the source's, byte for byte", async () => {
    const dir = tempDir();
    const [keyFile, readings] = [join(dir, "key.json"), join(dir, "readings.jsonl")];
    writeFileSync(readings, `${JSON.stringify({ t: 1_700_000_000_000, importWh: 1204, exportWh: 88, powerW: 412 })}\n`);
    expect((await jamgate(copy, ["device", "keygen", "--out", keyFile])).code).toBe(0);
    const envelope = (out: string) => [
      "device",
      "envelope",
      "--key",
      keyFile,
      "--seq",
      "7",
      "--readings",
      readings,
      "--out",
      out,
      "--time-ms",
      "1700000000000",
    ];
    const [compiled, source] = await Promise.all([
      jamgate(copy, envelope(join(dir, "compiled.cbor"))),
      jamgate(copy, envelope(join(dir, "source.cbor")), fromSource),
    ]);
    expect([compiled.code, source.code]).toEqual([0, 0]);
    expect(compiled.stdout).toBe(source.stdout);
    expect(Buffer.compare(readFileSync(join(dir, "compiled.cbor")), readFileSync(join(dir, "source.cbor")))).toBe(0);
    expect(compiled.packages.has("tsx")).toBe(false);
    const token = await jamgate(copy, ["device", "token", "--key", keyFile]);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^v1\.\d+\.[A-Za-z0-9_-]+\n$/);
    expect(token.packages.has("tsx")).toBe(false);
  });

  it("exits 2 on a bad command line before anything runs, as from source", async () => {
    const args = ["device", "keygen", "--no-such-flag"];
    const [compiled, source] = await Promise.all([jamgate(copy, args), jamgate(copy, args, fromSource)]);
    expect(compiled.code).toBe(2);
    expect(compiled.stderr).toMatch(/unknown option '--no-such-flag'/);
    expect(compiled.stderr).toBe(source.stderr);
    expect(compiled.packages.has("tsx")).toBe(false);
  });

  it("hands any other command over to the source before its action: the same output and exit code", async () => {
    const args = ["node", "replay", "--data-dir", join(tempDir(), "no-such-dir")];
    const [handedOver, source] = await Promise.all([jamgate(copy, args), jamgate(copy, args, fromSource)]);
    expect(source.code).toBe(1);
    expect(source.stderr).toMatch(/JG_ERR_NO_CHAIN/);
    expect(handedOver.code).toBe(source.code);
    expect(handedOver.stderr).toBe(source.stderr);
    expect(handedOver.packages.has("tsx")).toBe(true);
  });

  // Last: it edits the copy.
  it("is not used once a source file in it has changed since the build", async () => {
    expect((await jamgate(copy, ["--help"])).packages.has("tsx")).toBe(false);
    appendFileSync(join(copy, "devices/protocol/hex.ts"), "\n");
    const run = await jamgate(copy, ["--help"]);
    expect(run.code).toBe(0);
    expect(run.packages.has("tsx")).toBe(true);
  });
});
