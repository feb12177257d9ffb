#!/usr/bin/env node
/**
 * Compiles the `jamgate` command line into dist/, the fast start of scripts/jamgate.mjs (its header
 * says why and what runs from it). npm runs this as `prepare`, so `npm ci` and `npm install` make
 * it; `npm run build:cli` makes it again. dist/ is not committed.
 *
 * One esbuild bundle of scripts/cli.ts (ESM, Node 20), split at each `import()` so that a command's
 * own modules are a chunk loaded when it runs; packages stay imports of node_modules. esbuild is
 * the one tsx runs on, found through tsx, so it is no dependency of its own.
 *
 * dist/build.json records when the build started and the size and modification time of every
 * source file in the bundle: scripts/jamgate.mjs uses dist/ only while they are all unchanged and
 * none is newer than the build (a file edited during the build counts as changed).
 *
 *   node scripts/build-cli.mjs [--out DIR]    (default: dist/ beside scripts/)
 */
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const { values } = parseArgs({ options: { out: { type: "string" } }, strict: true });
const out = resolve(values.out ?? join(REPO, "dist"));

const esbuild = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"))("esbuild");

const startedAtMs = Date.now();
// Built beside its final place, then swapped in whole: a jamgate starting meanwhile finds the old
// build or none (and runs from source), never half of one.
const building = `${out}.building-${process.pid}`;
rmSync(building, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: REPO,
  entryPoints: { cli: "scripts/cli.ts" },
  outdir: building,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});

const inputs = {};
for (const path of [...Object.keys(result.metafile.inputs), relative(REPO, fileURLToPath(import.meta.url))].sort()) {
  const stat = statSync(join(REPO, path));
  inputs[path] = { size: stat.size, mtimeMs: stat.mtimeMs };
}
writeFileSync(join(building, "build.json"), `${JSON.stringify({ startedAtMs, entry: "cli.mjs", inputs }, null, 1)}\n`);

const old = `${out}.old-${process.pid}`;
if (existsSync(out)) renameSync(out, old);
renameSync(building, out);
rmSync(old, { recursive: true, force: true });
const chunks = Object.keys(result.metafile.outputs).filter((o) => o.endsWith(".mjs")).length - 1;
process.stderr.write(`build-cli: ${out}: cli.mjs and ${chunks} chunks from ${Object.keys(inputs).length - 1} sources in ${Date.now() - startedAtMs} ms\n`);
