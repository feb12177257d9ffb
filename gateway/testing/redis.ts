/**
 * A real Redis (`redis-server`, Debian package `redis-server`) for the cluster tests: a free
 * loopback port, its own temp dir as working dir, and its persistence there and nowhere else: the
 * append-only file as a production Redis for a cluster keeps it (docs/cluster.md: `appendonly yes`),
 * no RDB snapshots. scripts/test.sh installs the package when it is missing (DEBIAN_NEEDS); tests
 * install nothing themselves.
 *
 * The package's own service (systemd's redis-server.service on 6379) is not used or touched.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort } from "../../node/testing/ports.ts";

/** How long redis-server may take to answer PING: it is ready in milliseconds here (measured: the first poll); 10 s covers a loaded CI box. */
export const REDIS_START_TIMEOUT_MS = 10_000;
/** Time between PING polls while waiting for it to come up. */
const PING_INTERVAL_MS = 25;
/** One PING's limit, so a hung socket cannot eat the whole start timeout. */
const PING_TIMEOUT_MS = 500;
/** Time redis-server gets to exit on SIGTERM before SIGKILL: it exits at once without RDB snapshots to write. */
const STOP_GRACE_MS = 5_000;
/** Output kept for error messages: the tail explains a failed start. */
const OUTPUT_KEEP_CHARS = 16 * 1024;

const HOW_TO_INSTALL = "run `npm test` (scripts/test.sh installs the Debian package `redis-server` when redis-server is missing)";

/** The redis-server executable on PATH (or Debian's /usr/bin), or null. */
export function redisServerPath(): string | null {
  for (const dir of [...(process.env.PATH ?? "").split(delimiter), "/usr/bin"]) {
    if (dir === "") continue;
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  return null;
}

export interface RedisServer {
  /** `redis://127.0.0.1:PORT/0` */
  readonly url: string;
  readonly port: number;
  /** Its working dir: the append-only files. */
  readonly dir: string;
  /** Whether it runs now. */
  readonly running: boolean;
  /** SIGKILL: as a crash or a host lost (writes since the last fsync, at most a second, may be lost). Keeps the dir and port for `restart()`. */
  kill(): Promise<void>;
  /** Starts it again on the same port and dir (after `kill()`); it loads its append-only file. */
  restart(): Promise<void>;
  /** SIGSTOP: it keeps its sockets open and answers nothing, as a host cut off by the network looks. */
  freeze(): void;
  /** SIGCONT after `freeze()`. */
  thaw(): void;
  /** Stops it and removes its dir. */
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port in a fresh temp dir; resolves once it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const binary = redisServerPath();
  if (binary === null) throw new Error(`redis-server is not installed; ${HOW_TO_INSTALL}`);
  const dir = await mkdtemp(join(tmpdir(), "jamgate-redis-"));
  try {
    const port = await freePort();
    let child: ChildProcess | null = await launch(binary, dir, port);
    const end = async (signal: NodeJS.Signals) => {
      const c = child;
      child = null;
      if (c !== null) await terminate(c, signal);
    };
    return {
      url: `redis://127.0.0.1:${port}/0`,
      port,
      dir,
      get running() {
        return child !== null;
      },
      kill: () => end("SIGKILL"),
      async restart() {
        if (child !== null) throw new Error("redis-server is running; kill() it before restart()");
        child = await launch(binary, dir, port);
      },
      freeze: () => void child?.kill("SIGSTOP"),
      thaw: () => void child?.kill("SIGCONT"),
      async stop() {
        child?.kill("SIGCONT");
        await end("SIGTERM");
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * redis-server with every setting on its command line (no config file): loopback only, its dir for
 * every file it writes, the append-only file fsynced every second, no RDB snapshots, its log on
 * stdout (kept for errors), and no `daemonize`, so the child is redis itself.
 */
function redisArgs(dir: string, port: number): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--protected-mode",
    "yes",
    "--dir",
    dir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
    "--daemonize",
    "no",
    "--logfile",
    "",
    "--loglevel",
    "warning",
  ];
}

async function launch(binary: string, dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(binary, redisArgs(dir, port), { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEEP_CHARS);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let exited: string | null = null;
  child.once("close", (code, signal) => {
    exited = `exited (${code ?? signal})`;
  });
  child.once("error", (e) => {
    exited = `failed to spawn: ${e.message}`;
  });
  const deadline = Date.now() + REDIS_START_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) throw new Error(`redis-server ${exited} before answering PING on ${port}; its output:\n${output}`);
    if (await ping(port)) return child;
    if (Date.now() > deadline) {
      await terminate(child, "SIGKILL");
      throw new Error(`redis-server did not answer PING on ${port} within ${REDIS_START_TIMEOUT_MS} ms; its output:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
  }
}

/** Whether Redis on `port` answers PING with +PONG (RESP inline command). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PING_TIMEOUT_MS, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      answer += chunk.toString();
      // -LOADING while it reads its append-only file: not ready yet.
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await closed;
  clearTimeout(timer);
}
