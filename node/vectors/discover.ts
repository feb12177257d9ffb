/**
 * Discovery of JAM test vectors (layout of davxy/jam-test-vectors, GP v0.7.2).
 *
 * A vector *family* is a top-level directory of the vectors tree (`codec/`,
 * `traces/`, later `erasure/`, `shuffle/`, ...). Each family module exports a
 * {@link VectorFamily} that turns the files it finds (by file pattern, never by
 * a hard-coded list) into {@link VectorCase}s; the runner (`vectors.test.ts`)
 * turns every case into one vitest `it`. Adding a family is therefore one new
 * module plus one entry in the runner's family list.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Environment variable that overrides where the vectors live. */
export const VECTORS_ENV_VAR = "JAM_VECTORS_DIR";

/** Default vectors location, relative to the repository root. */
export const DEFAULT_VECTORS_DIR = "../shared/jam-vectors";

/** Repository root, derived from this file's location (node/vectors/), not from the cwd. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Absolute path of the vectors root: `$JAM_VECTORS_DIR` if set, else
 * {@link DEFAULT_VECTORS_DIR}. Relative paths are resolved against the
 * repository root so the result does not depend on where vitest was started.
 */
export function resolveVectorsDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[VECTORS_ENV_VAR]?.trim();
  const dir = configured !== undefined && configured !== "" ? configured : DEFAULT_VECTORS_DIR;
  return isAbsolute(dir) ? dir : resolve(REPO_ROOT, dir);
}

/** Human-readable origin of the vectors root, for error messages. */
export function describeVectorsDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = (env[VECTORS_ENV_VAR]?.trim() ?? "") !== "";
  return fromEnv
    ? `${root} (from $${VECTORS_ENV_VAR})`
    : `${root} (default ${DEFAULT_VECTORS_DIR} relative to the repo root; override with $${VECTORS_ENV_VAR})`;
}

/** What a single vector case reports back after its assertions passed. */
export interface CaseOutcome {
  readonly kind: "checked";
  /** Extra countable things verified by this case, e.g. `{ roots: 2 }`. Summed in the summary. */
  readonly units?: Readonly<Record<string, number>>;
}

/**
 * Thrown by a case whose file matches its family's pattern but is of a type the runner does not
 * know: the case fails, so a new vector type or family cannot pass unseen.
 */
export class UnknownVectorType extends Error {
  constructor(caseName: string, reason: string) {
    super(`${caseName}: ${reason}; the runner checks no vector of a type it does not know (add it to its family)`);
    this.name = "UnknownVectorType";
  }
}

/** One vector file (or file pair) = one vitest `it`. */
export interface VectorCase {
  /** Test name, e.g. `codec/tiny/work_package`. */
  readonly name: string;
  /** Summary bucket inside the family, e.g. `tiny` or `storage_light`. */
  readonly subfamily: string;
  /** Run all checks; throws (vitest `expect`) on mismatch. */
  run(): CaseOutcome | Promise<CaseOutcome>;
}

/** A family of vectors: one top-level directory of the vectors tree. */
export interface VectorFamily {
  /** Family name; also the directory name under the vectors root. */
  readonly name: string;
  /** Find all cases under `<root>/<name>`. Must return `[]` (not throw) when nothing is there. */
  discover(root: string): VectorCase[];
}

/** Sorted names of the sub-directories of `dir` (`[]` if `dir` does not exist). */
export function listDirs(dir: string): string[] {
  if (!isDir(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** Sorted names of the regular files in `dir` ending with `suffix` (`[]` if `dir` does not exist). */
export function listFiles(dir: string, suffix: string): string[] {
  if (!isDir(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(suffix))
    .map((e) => e.name)
    .sort();
}

/** `name` without `suffix`, e.g. `stem("header_0.bin", ".bin") === "header_0"`. */
export function stem(name: string, suffix: string): string {
  return name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
}

/** Whether `path` exists and is a directory. */
export function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** Error text for a family that found nothing: names the directory and the env var. */
export function noVectorsMessage(family: string, root: string): string {
  const where = join(root, family);
  const rootState = isDir(root) ? "exists" : "DOES NOT EXIST";
  return (
    `No "${family}" test vectors found in ${where}. ` +
    `Vectors root: ${describeVectorsDir(root)} — it ${rootState}. ` +
    `Point $${VECTORS_ENV_VAR} at a jam-test-vectors checkout (GP v0.7.2).`
  );
}

/** Bookkeeping for the end-of-run summary table. */
export class VectorSummary {
  private readonly rows = new Map<string, SummaryRow>();

  /** Register a discovered case (so families/subfamilies with failures still show up). */
  discovered(family: string, subfamily: string): void {
    this.row(family, subfamily).discovered += 1;
  }

  /** Record a case that started running. */
  started(family: string, subfamily: string): void {
    this.row(family, subfamily).ran += 1;
  }

  /** Record a case whose `run()` returned (i.e. all its assertions passed). */
  finished(family: string, subfamily: string, outcome: CaseOutcome): void {
    const row = this.row(family, subfamily);
    row.passed += 1;
    for (const [unit, n] of Object.entries(outcome.units ?? {})) {
      row.units.set(unit, (row.units.get(unit) ?? 0) + n);
    }
  }

  /** Plain-text table, one line per family/subfamily. */
  format(root: string): string {
    const header = ["family", "subfamily", "found", "ran", "passed", "checked"];
    const body = [...this.rows.values()].map((r) => [
      r.family,
      r.subfamily,
      String(r.discovered),
      String(r.ran),
      String(r.passed),
      [...r.units].map(([unit, n]) => `${n} ${unit}`).join(", "),
    ]);
    const table = [header, ...body];
    const widths = header.map((_, i) => Math.max(...table.map((line) => (line[i] ?? "").length)));
    const lines = table.map((line) =>
      line
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    );
    return [`JAM test vectors summary (${root})`, ...lines].join("\n");
  }

  private row(family: string, subfamily: string): SummaryRow {
    const key = `${family}\u0000${subfamily}`;
    let row = this.rows.get(key);
    if (row === undefined) {
      row = { family, subfamily, discovered: 0, ran: 0, passed: 0, units: new Map() };
      this.rows.set(key, row);
    }
    return row;
  }
}

interface SummaryRow {
  readonly family: string;
  readonly subfamily: string;
  discovered: number;
  ran: number;
  passed: number;
  readonly units: Map<string, number>;
}
