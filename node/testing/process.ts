/** Test helpers for running the `jamgate` CLI as a real process. */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

export const JAMGATE_BIN = new URL("../../scripts/jamgate.mjs", import.meta.url).pathname;

/** The first port the OS hands out for port 0 and outgoing connections (Linux's ip_local_port_range; 32768 elsewhere). */
function ephemeralPortsStart(): number {
  try {
    const first = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 12_000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

const PORTS_FROM = 10_000;
/** Slices of the ports below the ephemeral range, one per vitest worker (VITEST_POOL_ID 1…). */
const PORT_SLICES = 8;
let nextPortOffset = -1;

/**
 * A port free now, for a process that binds it later (`jamgate start --mqtt-port P`). Taken below
 * the OS's ephemeral range, where no port-0 listener and no outgoing connection of another test
 * can be given it in between, and from a slice of that space of this vitest worker's own, so test
 * files running at once never pick the same one. (A port-0 pick, closed and handed to a child,
 * was once taken by another file's broker before the child bound it: EADDRINUSE.)
 */
export async function freePort(): Promise<number> {
  const poolId = Math.max(1, Number(process.env.VITEST_POOL_ID ?? 1));
  const sliceSize = Math.floor((ephemeralPortsStart() - PORTS_FROM) / PORT_SLICES);
  const sliceStart = PORTS_FROM + ((poolId - 1) % PORT_SLICES) * sliceSize;
  if (nextPortOffset < 0) nextPortOffset = (process.pid * 7) % sliceSize;
  for (let tries = 0; tries < sliceSize; tries++) {
    const port = sliceStart + (nextPortOffset++ % sliceSize);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${sliceStart}…${sliceStart + sliceSize - 1}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

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
