/**
 * A real InfluxDB 1.x (`influxd`, Debian package `influxdb`) for tests: own temp dir, own config,
 * free loopback ports, every listener but HTTP turned off or moved to loopback. scripts/test.sh
 * installs the package when it is missing (DEBIAN_NEEDS); tests install nothing themselves.
 *
 * Config keys are those `influxd config` prints for InfluxDB 1.6 (Debian's version).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort } from "../../node/testing/ports.ts";

/** How long influxd may take to answer /ping: it is ready in well under a second here (measured: first poll), 10 s covers a loaded CI box. */
export const INFLUXD_START_TIMEOUT_MS = 10_000;
/** Time between /ping polls while waiting for it to come up. */
const PING_INTERVAL_MS = 25;
/** One /ping request's limit, so a hung socket cannot eat the whole start timeout. */
const PING_REQUEST_TIMEOUT_MS = 500;
/** Time influxd gets to exit on SIGTERM before SIGKILL: it closes its shards in milliseconds when idle; 5 s covers a WAL flush. */
export const INFLUXD_STOP_GRACE_MS = 5_000;
/** Output of influxd kept for error messages: the tail is what explains a failed start. */
const OUTPUT_KEEP_CHARS = 16 * 1024;

const HOW_TO_INSTALL = "run `npm test` (scripts/test.sh installs the Debian package `influxdb` when influxd is missing)";

/** Whether an `influxd` executable is on PATH. */
export function influxdAvailable(): boolean {
  return influxdPath() !== null;
}

function influxdPath(): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "influxd");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry
    }
  }
  return null;
}

export interface Influxd {
  /** e.g. `http://127.0.0.1:40123` */
  readonly url: string;
  readonly port: number;
  /** Temp dir holding config, meta, data and wal. */
  readonly dir: string;
  /** Stops the process (SIGTERM, SIGKILL after a grace period) and keeps dir and port: `restart()` brings it back with its data. */
  kill(): Promise<void>;
  /** Starts influxd again on the same data dir and port (after `kill()`). */
  restart(): Promise<void>;
  /** Stops the process and removes the temp dir. */
  stop(): Promise<void>;
}

/** Starts influxd on free loopback ports in a fresh temp dir; resolves once /ping answers 204. */
export async function startInfluxd(): Promise<Influxd> {
  const binary = influxdPath();
  if (binary === null) throw new Error(`influxd is not installed (not on PATH); ${HOW_TO_INSTALL}`);
  const dir = await mkdtemp(join(tmpdir(), "jamgate-influxd-"));
  try {
    const port = await freePort();
    const rpcPort = await freePort();
    const configPath = join(dir, "influxd.conf");
    await writeFile(configPath, influxdConfig(dir, port, rpcPort));
    const url = `http://127.0.0.1:${port}`;
    let running: Running | null = await launch(binary, configPath, url);
    const kill = async () => {
      const r = running;
      running = null;
      if (r !== null) await terminate(r.child);
    };
    return {
      url,
      port,
      dir,
      kill,
      async restart() {
        if (running !== null) throw new Error("influxd is running; kill() it before restart()");
        running = await launch(binary, configPath, url);
      },
      async stop() {
        await kill();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The config: HTTP on 127.0.0.1:port; the RPC service (backup/restore, default :8088, cannot be
 * turned off in 1.x) moved to 127.0.0.1:rpcPort; usage reporting, self-monitoring, continuous
 * queries, subscriptions and the graphite/collectd/opentsdb/udp inputs off ([admin] is gone
 * since 1.3 and ignored, kept off for older builds).
 */
export function influxdConfig(dir: string, port: number, rpcPort: number): string {
  const q = (path: string) => JSON.stringify(path);
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = ${q(join(dir, "meta"))}
  logging-enabled = false

[data]
  dir = ${q(join(dir, "data"))}
  wal-dir = ${q(join(dir, "wal"))}
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[admin]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false
`;
}

interface Running {
  readonly child: ChildProcess;
}

async function launch(binary: string, configPath: string, url: string): Promise<Running> {
  // INFLUXDB_* variables override the config file in 1.x: leave none from the caller's environment.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("INFLUXDB_")));
  const child = spawn(binary, ["-config", configPath], { stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEEP_CHARS);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let exited: string | null = null;
  // "close", not "exit": it comes after the output pipes are drained, so the message has all of it.
  child.once("close", (code, signal) => {
    exited = `exited (${code ?? signal})`;
  });
  child.once("error", (e) => {
    exited = `failed to spawn: ${e.message}`;
  });
  const deadline = Date.now() + INFLUXD_START_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) throw new Error(`influxd ${exited} before answering ${url}/ping; its output:\n${output}`);
    if ((await ping(url)) === 204) return { child };
    if (Date.now() > deadline) {
      await terminate(child);
      throw new Error(`influxd did not answer ${url}/ping with 204 within ${INFLUXD_START_TIMEOUT_MS} ms; its output:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS));
  }
}

/** GET /ping's status, or 0 when there is no answer. */
function ping(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${url}/ping`, { timeout: PING_REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), INFLUXD_STOP_GRACE_MS);
  });
  const late = await Promise.race([exited.then(() => false), graceOver]);
  clearTimeout(timer);
  if (late) {
    child.kill("SIGKILL");
    await exited;
  }
}
