/** Test helpers for running the `jamgate` CLI (./jamgate.mjs, scripts/cli.ts) as a real process. */
import { type ChildProcess, spawn } from "node:child_process";

export const JAMGATE_BIN = new URL("../jamgate.mjs", import.meta.url).pathname;

export interface RunningCli {
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): string;
  /** Resolves when a line of output matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once the process has exited and its output is all read. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment less any JAMGATE_ variable: a developer's configuration must not change what a test's process does. */
export function envWithoutJamgateConfig(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("JAMGATE_")));
}

export function runCli(args: string[]): RunningCli {
  return runCommand(process.execPath, [JAMGATE_BIN, ...args]);
}

/** Any command as a real process (`npm start`, …), its output captured as runCli's. */
export function runCommand(command: string, args: string[], options: { readonly cwd?: string } = {}): RunningCli {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], cwd: options.cwd, env: envWithoutJamgateConfig() });
  let output = "";
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of [...waiters]) {
      const line = output.split("\n").find((l) => w.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  // "close", not "exit": it comes once stdout and stderr are drained too, so output() then holds everything the process wrote.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => output,
    exited,
    waitFor(pattern, timeoutMs = 90_000) {
      const line = output.split("\n").find((l) => pattern.test(l));
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms; output:\n${output}`)), timeoutMs);
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`process exited (${code ?? signal}) before output matching ${pattern}; output:\n${output}`));
        });
      });
    },
  };
}
