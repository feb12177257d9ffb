/**
 * Records every module a Node process resolves through the ES module loader, one URL a line, in
 * the file named by JAMGATE_RECORD_MODULES. Load it first: `node --import <this file> …`. Plain
 * JavaScript, so it needs no tsx and sees what a command loads whether or not tsx is registered.
 *
 * What it sees: every `import` and `import()` (ours, and the first import of each package from
 * our code); not the `require` calls inside a CommonJS package, which Node 20 does not pass to
 * loader hooks. That is enough to tell whether a package is loaded at all: our code reaches every
 * package through an import. Used by scripts/cli-startup.test.ts and bench/cli.ts.
 */
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

// This file is also the hooks module: Node runs it again on the loader's own thread, where it only exports hooks.
if (isMainThread && process.env.JAMGATE_RECORD_MODULES) register(import.meta.url, { data: { out: process.env.JAMGATE_RECORD_MODULES } });

let out = "";

/** Called once on the hooks thread with register's `data`. */
export function initialize(data) {
  out = data.out;
}

/** Passes every resolution on unchanged and records its result. */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (out !== "") appendFileSync(out, `${resolved.url}\n`);
  return resolved;
}
