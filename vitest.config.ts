import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** What a test file calls when it runs a node, a gateway or a `jamgate` process: it then waits seconds for blocks, sockets and processes. */
const WAITS_ON_A_STACK = /\b(runCli|runCommand|startHarness|startStack|runEnergySim|openTestNode|JamNode\.open|NodeThread\.open)\(/;

/**
 * Files that wait on a stack first, then the rest, each group in vitest's order (failed and
 * slowest first by its cache; on a fresh clone, which has none, largest first). By size alone
 * the small files of long simulations and restarts came last and the run ended waiting on them
 * while the other workers were idle.
 */
class StacksFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const waits = new Set(sorted.filter((file) => WAITS_ON_A_STACK.test(readFileSync(file.moduleId, "utf8"))));
    return [...sorted.filter((file) => waits.has(file)), ...sorted.filter((file) => !waits.has(file))];
  }
}

export default defineConfig({
  test: {
    include: ["{node,gateway,services,devices,simulators,scripts}/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    /**
     * Test files run three at a time. vitest's default is one less than the cores: on 2 cores,
     * one file at a time, and the suite took 4 min 33 s, most of it spent waiting for blocks,
     * child processes and sockets rather than computing. Every file has its own data dirs and
     * free ports: files share nothing but the CPU.
     */
    maxWorkers: 3,
    sequence: { sequencer: StacksFirst },
  },
});
