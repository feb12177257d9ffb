#!/usr/bin/env node
/**
 * The `jamgate` command. jamgate is TypeScript run from source with tsx (esbuild-based): a fresh
 * clone runs as it is, and an edited file runs at once. Starting tsx has a price, though: Node 20
 * runs its loader on a thread of its own, and every module then goes through it. Measured on the
 * 2-core dev machine, idle (bench/cli.ts, medians of 20 runs, BENCHMARKS.md §12): `node -e ''`
 * exits in 68 ms, node with tsx registered and nothing loaded in 222 ms; `jamgate --help` took
 * 536 ms before the command files imported their implementations in their actions, 368 ms after,
 * and 125 ms compiled. tsx alone spends most of the 300 ms target, so the CLI also runs compiled:
 *
 * - compiled: dist/, one esbuild bundle of scripts/cli.ts (scripts/build-cli.mjs, which npm runs
 *   as `prepare`, so `npm ci` makes it), used while it is fresh: every source file in it unchanged
 *   since the build (dist/build.json: a stat of each of ~200 files, 1–4 ms). It answers `--help`,
 *   `--version` and a bad command line, and runs the commands in COMPILED_COMMANDS. Before any
 *   other command's action runs, it hands over to the source: nothing of that command has run yet
 *   but the parsing of its flags, which the source then parses again.
 * - source: tsx registered and scripts/cli.ts imported; the whole program, every command. Taken
 *   when dist/ is missing or stale, or with JAMGATE_FROM_SOURCE=1.
 *
 * Why not run every command compiled: modules that find files beside their own (import.meta.url:
 * the dashboard's static files, the node's worker entry files, the genesis services' module URLs)
 * would look in dist/. And one process never mixes the two: a module loaded from both would be
 * two modules (two JamgateError classes, so `instanceof` would fail), which is why a command runs
 * wholly compiled or wholly from source. The commands in COMPILED_COMMANDS use no such files.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Commands whose action runs compiled (the target: `device keygen` under 300 ms); they read and write only the files their flags name. */
const COMPILED_COMMANDS = new Set(["device keygen", "device token", "device envelope"]);

const REPO = fileURLToPath(new URL("../", import.meta.url));

/** The URL of the compiled CLI in `dir` if it is there and every source it was built from is unchanged since; null otherwise. */
function freshBuild(dir) {
  let build;
  try {
    build = JSON.parse(readFileSync(join(dir, "build.json"), "utf8"));
  } catch {
    return null;
  }
  for (const [path, built] of Object.entries(build.inputs)) {
    const now = statSync(join(REPO, path), { throwIfNoEntry: false });
    if (now === undefined || now.size !== built.size || now.mtimeMs !== built.mtimeMs || now.mtimeMs > build.startedAtMs) return null;
  }
  return pathToFileURL(join(dir, build.entry)).href;
}

/** Thrown by the compiled program before an action that runs from source. */
class Handover extends Error {}

/** "device keygen" for `jamgate device keygen`. */
function commandPath(command) {
  const names = [];
  for (let c = command; c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

const compiled = process.env.JAMGATE_FROM_SOURCE === "1" ? null : freshBuild(join(REPO, "dist"));
let handedOver = compiled === null;
if (compiled !== null) {
  const { main, program } = await import(compiled);
  const cli = program();
  cli.hook("preAction", (_root, action) => {
    if (!COMPILED_COMMANDS.has(commandPath(action))) throw new Handover();
  });
  try {
    await main(process.argv, cli);
  } catch (e) {
    if (!(e instanceof Handover)) throw e;
    handedOver = true;
  }
}
if (handedOver) {
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("./cli.ts");
  await main(process.argv);
}
