/**
 * Start-up time of the `jamgate` command: each case spawned `--runs` times as a new process, wall
 * time from spawn to exit and the CPU time the process took (user + system, its threads and any
 * child it waited for), next to the floors it cannot go below (node itself, node with tsx
 * registered). `jamgate --help` and `jamgate device keygen`, compiled (dist/, what `npm ci` builds:
 * scripts/jamgate.mjs) and from source (JAMGATE_FROM_SOURCE=1, what runs once a source file is
 * edited), in a copy of this checkout's sources made and built at the start
 * (scripts/testing/built-copy.ts), so that edits in the checkout meanwhile change nothing.
 *
 *   node --import tsx bench/cli.ts [--runs 20] [--baseline DIR]
 *
 * The cases run round-robin (one run of each, then the next round), so a burst of load from
 * other processes falls on all of them alike. `--baseline DIR` adds the two commands of another
 * checkout as it runs there (e.g. an earlier commit: `git archive <commit> | tar -x -C DIR`, and
 * node_modules linked) to the same rounds: before and after measured in one run. One more run of
 * each jamgate case, untimed, counts the modules it resolves (scripts/testing/record-modules.mjs)
 * and names the packages among them.
 *
 * CPU time is read from this process's children's totals in /proc/self/stat (cutime + cstime,
 * 10 ms ticks). On a busy machine it is the steadier figure: wall time also holds the time the
 * process waited for a core, and this 2-core machine is shared.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { builtCopy } from "../scripts/testing/built-copy.ts";
import { parseFlags } from "./lib/args.ts";
import { gitRevision, machineCpuS } from "./lib/proc.ts";
import { fmt, machine, max, median, min, percentile, table } from "./lib/stats.ts";

const flags = parseFlags(
  "bench/cli.ts",
  "Start-up time of the jamgate command (--help, device keygen), compiled and from source, against node's and tsx's own.",
  {
    runs: { kind: "number", default: 20, help: "runs of each case" },
    baseline: { kind: "string", default: null, valueName: "DIR", help: "another checkout whose two commands run in the same rounds (before/after)" },
  },
);

const CLOCK_TICKS_PER_S = 100;
const REPO = fileURLToPath(new URL("../", import.meta.url));
const RECORDER = join(REPO, "scripts/testing/record-modules.mjs");
const work = mkdtempSync(join(tmpdir(), "jamgate-bench-cli-"));
const keyFile = join(work, "key.json");

interface Case {
  readonly name: string;
  readonly cwd: string;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  /** A jamgate command: its modules are counted. */
  readonly jamgate: boolean;
}

function jamgateCases(root: string, label: string, env: Record<string, string> = {}): Case[] {
  const bin = join(root, "scripts/jamgate.mjs");
  return [
    { name: `jamgate --help${label}`, cwd: root, args: [bin, "--help"], env, jamgate: true },
    { name: `jamgate device keygen${label}`, cwd: root, args: [bin, "device", "keygen", "--out", keyFile, "--force"], env, jamgate: true },
  ];
}

process.stderr.write("[cli] copying the sources and building dist/ in the copy\n");
const copy = builtCopy(mkdtempSync(join(work, "checkout-")));
const cases: Case[] = [
  { name: "node -e ''", cwd: REPO, args: ["-e", ""], env: {}, jamgate: false },
  {
    name: "node + tsx register()",
    cwd: REPO,
    args: ["--input-type=module", "-e", 'import { register } from "tsx/esm/api"; register();'],
    env: {},
    jamgate: false,
  },
  ...jamgateCases(copy, ", compiled"),
  ...jamgateCases(copy, ", from source", { JAMGATE_FROM_SOURCE: "1" }),
  ...(flags.baseline === null ? [] : jamgateCases(resolve(flags.baseline), ", baseline")),
];

/** CPU seconds of the children this process has waited for so far (cutime + cstime). */
function childrenCpuS(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_S; // cutime, cstime (fields 16, 17)
}

function runOnce(c: Case, extraEnv: Record<string, string> = {}, extraNodeArgs: readonly string[] = []): { wallMs: number; cpuMs: number } {
  const cpuBefore = childrenCpuS();
  const t = performance.now();
  const r = spawnSync(process.execPath, [...extraNodeArgs, ...c.args], {
    cwd: c.cwd,
    env: { ...process.env, ...c.env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const wallMs = performance.now() - t;
  if (r.status !== 0) throw new Error(`${c.name}: exit ${r.status} ${r.signal ?? ""}\n${r.stderr.toString()}`);
  return { wallMs, cpuMs: (childrenCpuS() - cpuBefore) * 1000 };
}

/** Modules the case resolves, and the packages among them (scripts/testing/record-modules.mjs). */
function modulesOf(c: Case): { count: number; packages: string[] } {
  const out = join(work, "modules.txt");
  rmSync(out, { force: true });
  runOnce(c, { JAMGATE_RECORD_MODULES: out }, ["--import", RECORDER]);
  const urls = new Set(
    readFileSync(out, "utf8")
      .split("\n")
      .filter((u) => u !== "" && !u.startsWith("node:")),
  );
  const packages = new Set<string>();
  for (const url of urls) {
    const at = url.lastIndexOf("/node_modules/");
    if (at < 0) continue;
    const parts = url.slice(at + "/node_modules/".length).split("/");
    packages.add(parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!);
  }
  return { count: urls.size, packages: [...packages].sort() };
}

process.stderr.write(`[cli] ${JSON.stringify({ ...machine(), revision: gitRevision(), runs: flags.runs })}\n`);
// One untimed run of each first: tsx's transform cache and the OS's file cache are warm for all.
for (const c of cases) runOnce(c);

const wall = new Map<string, number[]>(cases.map((c) => [c.name, []]));
const cpu = new Map<string, number[]>(cases.map((c) => [c.name, []]));
const machineBefore = machineCpuS();
const cpuOfCasesBefore = childrenCpuS();
const startedMs = performance.now();
for (let round = 0; round < flags.runs; round++) {
  for (const c of cases) {
    const r = runOnce(c);
    wall.get(c.name)!.push(r.wallMs);
    cpu.get(c.name)!.push(r.cpuMs);
  }
  process.stderr.write(`[cli] round ${round + 1}/${flags.runs}\n`);
}
const elapsedS = (performance.now() - startedMs) / 1000;
const machineAfter = machineCpuS();
// Cores kept busy by every other process while the cases ran (the cases' own CPU taken out).
const othersBusyCores = (machineAfter.busy - machineBefore.busy - (childrenCpuS() - cpuOfCasesBefore)) / elapsedS;
const load = loadavg()[0]!;

const modules = new Map(cases.filter((c) => c.jamgate).map((c) => [c.name, modulesOf(c)]));
rmSync(work, { recursive: true, force: true });

const rows = cases.map((c) => {
  const w = wall.get(c.name)!;
  const m = modules.get(c.name);
  return [
    c.name,
    fmt(median(w)),
    fmt(percentile(w, 90)),
    fmt(min(w)),
    fmt(max(w)),
    fmt(median(cpu.get(c.name)!)),
    m === undefined ? "" : fmt(m.count),
    m === undefined ? "" : m.packages.join(" "),
  ];
});
console.log(
  `\njamgate start-up, ${flags.runs} runs of each case round-robin, ${fmt(elapsedS, 1)} s; other processes kept ${fmt(othersBusyCores, 1)} of ${machine().cpus} cores busy, load average ${fmt(load, 1)}\n`,
);
console.log(table(["case", "wall median ms", "p90", "min", "max", "CPU median ms", "modules", "packages loaded"], rows));
console.log(
  JSON.stringify({
    bench: "cli",
    machine: machine(),
    revision: gitRevision(),
    runs: flags.runs,
    othersBusyCores: Number(othersBusyCores.toFixed(2)),
    loadAverage1m: Number(load.toFixed(2)),
    cases: cases.map((c) => ({
      name: c.name,
      wallMedianMs: Math.round(median(wall.get(c.name)!)),
      wallP90Ms: Math.round(percentile(wall.get(c.name)!, 90)),
      wallMinMs: Math.round(min(wall.get(c.name)!)),
      wallMaxMs: Math.round(max(wall.get(c.name)!)),
      cpuMedianMs: Math.round(median(cpu.get(c.name)!)),
      ...(modules.has(c.name) ? { modules: modules.get(c.name)!.count, packages: modules.get(c.name)!.packages } : {}),
    })),
  }),
);
