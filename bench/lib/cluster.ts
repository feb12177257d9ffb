/**
 * The gateway as an operator runs it, for bench/gateway.ts's comparison runs (`--gateways 2`,
 * `--pairs`, `--rates`): real `jamgate` processes from source (scripts/jamgate.mjs), each started
 * with bench/lib/thread-probe.mjs so its threads can be told apart from outside (bench/lib/threads.ts).
 *
 * - one gateway: `jamgate start` with its embedded node, on a fresh data dir;
 * - one gateway with a remote node (`remoteNode`): `jamgate node start` and one `jamgate start
 *   --node ws://…`, no Redis: what the node's being another process costs, without the cluster's part;
 * - a cluster (docs/cluster.md): a real redis-server (gateway/testing/redis.ts: a free loopback
 *   port, its own temp dir, append-only file fsynced every second), `jamgate node start` on its own
 *   data dir, and N × `jamgate start --node ws://… --node-token-file … --cluster redis://…`, each
 *   on its own data dir with its own gateway key, all authorized by the node's genesis.
 *
 * Each deployment is a fresh chain, so devices are registered again for each (through the node's
 * JIP-2 RPC, signed by HARNESS_GATEWAY_KEY, which the genesis authorizes: it is the one gateway's
 * key, and a key authorized beside the cluster's gateways'). A gateway looks a device up on the
 * ledger at its CONNECT, before the load starts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TELEMETRY_SERVICE } from "../../gateway/genesis.ts";
import { telemetryService } from "../../gateway/services/telemetry.ts";
import { type RedisServer, startRedis } from "../../gateway/testing/redis.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { toHex } from "../../node/codec/jam.ts";
import { RpcClient } from "../../node/rpc/client.ts";
import { freePort } from "../../node/testing/ports.ts";
import { JAMGATE_BIN } from "../../scripts/testing/process.ts";
import { benchDevice, HARNESS_GATEWAY_KEY, registerInBulk } from "./devices.ts";
import { redisServerPid, THREAD_PROBE, type Watched } from "./threads.ts";

/** A `jamgate` start from source on a busy 2-core machine took over 20 s (gateway/crash.test.ts): generous. */
const START_TIMEOUT_MS = 120_000;
/** How long a process gets to stop on SIGTERM before SIGKILL: the gateway's stop drains for at most ~27 s (docs/jamgate.service: TimeoutStopSec 60). */
const STOP_TIMEOUT_MS = 60_000;
/** Output kept per process: its tail explains a failed start or a crash; a process under load must not fill memory with it. */
const OUTPUT_KEEP_CHARS = 64 * 1024;

/** A `jamgate` process, its output's tail kept. */
class JamgateProcess {
  private tail = "";
  private waiters: { pattern: RegExp; resolve(line: string): void }[] = [];
  private partial = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitedEarly: string | null = null;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      this.tail = (this.tail + text).slice(-OUTPUT_KEEP_CHARS);
      const lines = (this.partial + text).split("\n");
      this.partial = lines.pop()!.slice(-OUTPUT_KEEP_CHARS);
      for (const line of lines)
        for (const w of [...this.waiters])
          if (w.pattern.test(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    this.exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
    void this.exited.then(({ code, signal }) => {
      this.exitedEarly ??= `${label} exited (${code ?? signal})`;
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  output(): string {
    return this.tail;
  }

  /** Resolves with the first line from now on that matches; rejects if the process exits first or the time runs out. */
  waitFor(pattern: RegExp, timeoutMs = START_TIMEOUT_MS): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.label}: no line matching ${pattern} within ${timeoutMs} ms; its output's end:\n${this.tail.slice(-4000)}`)),
        timeoutMs,
      );
      this.waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.label} exited (${code ?? signal}) before a line matching ${pattern}; its output's end:\n${this.tail.slice(-4000)}`));
      });
    });
  }

  async stop(): Promise<void> {
    this.exitedEarly ??= "stopped";
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

/** `node [--import probe] scripts/jamgate.mjs …args`, without the caller's JAMGATE_ settings, the probe writing to `probeDir`. */
function jamgate(label: string, args: readonly string[], probeDir: string, nodeArgs: readonly string[]): JamgateProcess {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("JAMGATE_")));
  const child = spawn(process.execPath, [...nodeArgs, "--import", THREAD_PROBE, JAMGATE_BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...env, BENCH_THREAD_PROBE_DIR: probeDir },
  });
  return new JamgateProcess(label, child);
}

/** A gateway key file as `jamgate start` makes it (a 32-byte seed in hex, 0600), written before the first start so a genesis can authorize it. */
function writeGatewayKey(dataDir: string, seed: Uint8Array): void {
  writeFileSync(join(dataDir, "gateway-key"), `${Buffer.from(seed).toString("hex")}\n`, { mode: 0o600 });
}

export interface DeploymentOptions {
  /** 1: `jamgate start` with its embedded node; 2 or more: a cluster of that many gateways, one node, one Redis. */
  readonly gateways: number;
  /** With one gateway: `jamgate node start` and one `jamgate start --node …` (no Redis) instead of the embedded node, to tell the remote node's cost from the cluster's. */
  readonly remoteNode?: boolean;
  readonly slotMs: number;
  readonly batchMs: number;
  /** Extra node flags for every jamgate process (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
}

export interface Deployment {
  readonly gateways: number;
  /** Each gateway's MQTT port. */
  readonly mqttPorts: readonly number[];
  /** Every process to watch: gateways, node, redis-server. */
  readonly watched: readonly Watched[];
  /** The gateways' (jamgate start) processes' pids. */
  readonly gatewayPids: readonly number[];
  /** Registers bench devices [from, to) through the node; resolves once accumulated. */
  register(from: number, to: number): Promise<{ packages: number; ms: number }>;
  /** What ended before it was stopped, or null. */
  failure(): string | null;
  /** The tail of a process's output (for a failure). */
  output(label: string): string;
  /** Stops everything (gateways first, then the node and Redis) and removes every data dir. */
  stop(): Promise<void>;
}

/** The seed of cluster gateway i's key (gateway/cluster-kill.test.ts does the same): distinct keys, each authorized. */
const clusterKeySeed = (i: number) => new Uint8Array(32).fill(60 + i);

/** Starts one gateway with its embedded node, or a cluster, and resolves once every process has said it started. */
export async function startDeployment(options: DeploymentOptions): Promise<Deployment> {
  const root = mkdtempSync(join(tmpdir(), "jamgate-bench-deploy-"));
  const probeDir = join(root, "probe");
  mkdirSync(probeDir);
  const nodeArgs = options.nodeArgs ?? [];
  const processes: JamgateProcess[] = [];
  let redis: RedisServer | null = null;
  let rpc: RpcClient | null = null;
  const common = ["--ws-port", "0", "--http-port", "0", "--radius-port", "0", "--batch-ms", String(options.batchMs)];
  const stop = async () => {
    rpc?.close();
    const gatewaysFirst = [...processes].reverse();
    for (const p of gatewaysFirst) await p.stop();
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const mqttPorts: number[] = [];
    let rpcUrl: string;
    let token: string;
    let gatewayPids: number[];
    if (options.gateways === 1 && options.remoteNode !== true) {
      const dir = join(root, "gateway");
      mkdirSync(dir, { mode: 0o700 });
      writeGatewayKey(dir, new Uint8Array(32).fill(42)); // HARNESS_GATEWAY_KEY's seed: the genesis authorizes it
      const mqtt = await freePort();
      const rpcPort = await freePort();
      const p = jamgate(
        "gateway",
        ["start", "--data-dir", dir, "--mqtt-port", String(mqtt), "--rpc-port", String(rpcPort), "--slot-ms", String(options.slotMs), ...common],
        probeDir,
        nodeArgs,
      );
      processes.push(p);
      await p.waitFor(/"msg":"jamgate started"/);
      mqttPorts.push(mqtt);
      rpcUrl = `ws://127.0.0.1:${rpcPort}`;
      token = readFileSync(join(dir, "operator-token"), "utf8").trim();
      gatewayPids = [p.pid];
    } else {
      // A cluster shares one Redis; one gateway with a remote node (remoteNode) needs none.
      if (options.gateways > 1) redis = await startRedis();
      const nodeDir = join(root, "node");
      const dirs = Array.from({ length: options.gateways }, (_, i) => join(root, `gateway-${i + 1}`));
      for (const [i, dir] of dirs.entries()) {
        mkdirSync(dir, { mode: 0o700 });
        writeGatewayKey(dir, clusterKeySeed(i));
      }
      const rpcPort = await freePort();
      const node = jamgate(
        "node",
        [
          "node",
          "start",
          "--data-dir",
          nodeDir,
          "--rpc-port",
          String(rpcPort),
          "--slot-ms",
          String(options.slotMs),
          ...dirs.flatMap((d) => ["--authorize", d]),
          "--authorize",
          toHex(HARNESS_GATEWAY_KEY.publicKey),
        ],
        probeDir,
        nodeArgs,
      );
      processes.push(node);
      await node.waitFor(/"msg":"node started"/);
      rpcUrl = `ws://127.0.0.1:${rpcPort}`;
      token = readFileSync(join(nodeDir, "rpc-token"), "utf8").trim();
      const gateways = [];
      for (const [i, dir] of dirs.entries()) {
        const mqtt = await freePort();
        mqttPorts.push(mqtt);
        const g = jamgate(
          `gateway ${i + 1}`,
          [
            "start",
            "--data-dir",
            dir,
            "--node",
            rpcUrl,
            "--node-token-file",
            join(nodeDir, "rpc-token"),
            ...(redis === null ? [] : ["--cluster", redis.url]),
            "--mqtt-port",
            String(mqtt),
            ...common,
          ],
          probeDir,
          nodeArgs,
        );
        processes.push(g);
        gateways.push(g);
      }
      await Promise.all(gateways.map((g) => g.waitFor(/"msg":"jamgate started"/)));
      gatewayPids = gateways.map((g) => g.pid);
    }
    rpc = await RpcClient.connect(rpcUrl, { token });
    const watched: Watched[] = processes.map((p) => ({ label: p.label, pid: p.pid, probeDir }));
    if (redis !== null) {
      const pid = redisServerPid(redis.port);
      if (pid !== null) watched.push({ label: "redis-server", pid, probeDir: null });
    }
    const api = rpc;
    return {
      gateways: options.gateways,
      mqttPorts,
      watched,
      gatewayPids,
      register: (from, to) =>
        registerInBulk(
          api,
          tinyParams,
          HARNESS_GATEWAY_KEY,
          telemetryService(TELEMETRY_SERVICE.id),
          Array.from({ length: to - from }, (_, i) => benchDevice(from + i).key.publicKey),
        ),
      failure: () => processes.map((p) => (p.exitedEarly !== null && p.exitedEarly !== "stopped" ? p.exitedEarly : null)).find((x) => x !== null) ?? null,
      output: (label) => processes.find((p) => p.label === label)?.output() ?? "",
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
