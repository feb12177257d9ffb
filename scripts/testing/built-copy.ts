/**
 * A copy of this checkout's sources, node_modules linked, with the compiled CLI built in it
 * (scripts/build-cli.mjs, as `npm ci` builds it): a tree nobody edits, so its dist/ stays fresh
 * while it is used, whatever is edited in the checkout meanwhile. For scripts/cli-startup.test.ts
 * and bench/cli.ts.
 */
import { execFileSync } from "node:child_process";
import { cpSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** What the CLI and its build read: the source folders (tests left out) and the package and TypeScript settings. */
const SOURCES = ["package.json", "tsconfig.json", "devices", "gateway", "node", "services", "simulators", "scripts"];

/** Copies the sources into `root` (an empty directory), builds dist/ there, and returns `root`. */
export function builtCopy(root: string): string {
  for (const entry of SOURCES) cpSync(join(REPO, entry), join(root, entry), { recursive: true, filter: (path) => !path.endsWith(".test.ts") });
  symlinkSync(join(REPO, "node_modules"), join(root, "node_modules"));
  execFileSync(process.execPath, [join(root, "scripts/build-cli.mjs")], { cwd: root, stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
  return root;
}
