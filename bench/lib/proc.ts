/** Process facts for the benchmarks: CPU time of the main thread and of the whole process, fd limits, child processes with IPC. */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const CLOCK_TICKS_PER_S = 100;

/** The commit under test, with "+dirty" when gateway/, node/, services/ or devices/ have uncommitted changes (others edit them while benchmarks run). */
export function gitRevision(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "gateway", "node", "services", "devices"], { encoding: "utf8" }).trim() !== "";
    return `${head}${dirty ? "+dirty" : ""}`;
  } catch {
    return "unknown";
  }
}

/** CPU seconds (user + system) of this process's main thread (Linux /proc; the main thread's tid is the pid). */
export function mainThreadCpuS(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S; // utime, stime (fields 14, 15)
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user + system) of the whole process, all threads. */
export function processCpuS(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Busy and total CPU seconds of the whole machine since boot (Linux /proc/stat), all processes. */
export function machineCpuS(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / CLOCK_TICKS_PER_S, total: (busy + idle + iowait) / CLOCK_TICKS_PER_S };
}

/** "Max open files" soft and hard limit of this process. */
export function openFilesLimit(): { soft: number; hard: number } {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))!;
    const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/);
    return { soft: Number(soft), hard: Number(hard) };
  } catch {
    return { soft: Number.NaN, hard: Number.NaN };
  }
}

/** A TypeScript child process run with tsx, with structured-clone IPC and request/response by id. */
export class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly exited: Promise<number | null>;
  /** Resolves once the child's `serve` listens. */
  readonly ready: Promise<void>;
  /** What the child reported before it crashed, if it did. */
  crashed: { stack: string; at: number; localAt: number } | null = null;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    let ready!: () => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    proc.on("message", (m: { id?: number; ok?: boolean; value?: unknown; error?: string; ready?: boolean }) => {
      if (m.ready === true) ready();
      const c = m as { crashed?: string; at?: number };
      if (c.crashed !== undefined) this.crashed = { stack: c.crashed, at: c.at ?? 0, localAt: performance.now() };
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    proc.on("error", () => {}); // a send to a dead child: its call rejects
    this.exited = new Promise((resolve) =>
      proc.on("exit", (code) => {
        for (const w of this.waiting.values()) w.reject(new Error(`${name} exited (${code}) before answering`));
        this.waiting.clear();
        resolve(code);
      }),
    );
  }

  static async start(name: string, moduleUrl: URL, nodeArgs: readonly string[] = []): Promise<Child> {
    const proc = fork(moduleUrl.pathname, [], {
      execArgv: [...nodeArgs, "--import", "tsx"],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const child = new Child(name, proc);
    await Promise.race([child.ready, child.exited.then((code) => Promise.reject(new Error(`${name} exited (${code}) at start`)))]);
    return child;
  }

  call<T>(cmd: string, args: object = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (!this.proc.connected) return reject(new Error(`${this.name} is gone`));
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, cmd, ...args }, (e) => {
        if (e === null || e === undefined) return;
        this.waiting.delete(id);
        reject(e);
      });
    });
  }

  /** Asks the child to exit and waits for it. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await this.call("exit").catch(() => {});
    await this.exited;
  }
}

/** The child side: answers `{id, cmd, ...}` requests with `handlers[cmd]`. `exit` exits the process. */
export function serve(handlers: Record<string, (args: Record<string, unknown>) => unknown>): void {
  process.on("message", (m: { id: number; cmd: string } & Record<string, unknown>) => {
    if (m.cmd === "exit") {
      process.send!({ id: m.id, ok: true, value: null }, () => process.exit(0));
      return;
    }
    const handler = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command ${m.cmd}`);
        return handler(m);
      })
      .then(
        (value) => process.send!({ id: m.id, ok: true, value }),
        (e: unknown) => process.send!({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
      );
  });
  process.on("disconnect", () => process.exit(0));
  process.send!({ ready: true });
}

/** CPU seconds (user + system) of each live thread of this process, by its OS id (Linux /proc/self/task); empty elsewhere. */
export function threadCpuS(): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** Peak and current resident set of this process (Linux /proc/self/status VmHWM, VmRSS, RssAnon), bytes; NaN elsewhere. */
export function residentBytes(): { rss: number; peak: number; anon: number } {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kib("VmRSS"), peak: kib("VmHWM"), anon: kib("RssAnon") };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN, anon: Number.NaN };
  }
}

/**
 * Raises the open-files limit of process `pid` to `files` (soft and hard) with util-linux
 * `prlimit`, which needs the right to (root, or CAP_SYS_RESOURCE). A process cannot raise its own
 * hard limit unprivileged, and Node has no setrlimit; the kernel takes the new limit at once, for
 * sockets accepted from then on. Returns the limit in force after, and why it is not `files`.
 */
export function raiseOpenFilesLimit(pid: number, files: number): { soft: number; hard: number; error: string | null } {
  let error: string | null = null;
  try {
    execFileSync("prlimit", [`--pid=${pid}`, `--nofile=${files}:${files}`], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    error = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim() || "prlimit failed";
  }
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))!;
    const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/);
    return { soft: Number(soft), hard: Number(hard), error };
  } catch {
    return { soft: Number.NaN, hard: Number.NaN, error: error ?? "cannot read the limit" };
  }
}
