/**
 * bench/fleet.ts's one gateway (`--gateways 1`, the default): the gateway and its embedded node in a
 * child process (bench/lib/fleet-server.ts, as `jamgate start` runs them), driven over IPC, its
 * open-file limit raised to the fleet with `prlimit` where this process may (root), else the run
 * stops and says what `ulimit -n` it needs. Besides what every deployment reports (fleet-target.ts),
 * it gives CPU per kind of thread from inside the process, full GCs, and main-thread profiles.
 */
import { rmSync } from "node:fs";
import type { ProfileSummary } from "./cpuprofile.ts";
import type { BlockLine, FleetSample, FleetTarget, RestartFacts } from "./fleet-target.ts";
// Types only: the module is the gateway process's, and runs its IPC server when loaded.
import type { ThreadCpu } from "./fleet-server.ts";
import { Child, raiseOpenFilesLimit } from "./proc.ts";

/** Open files the gateway process holds beside the devices' sockets: ~100 in use before any device connects (LMDB, HTTP, the node's files, IPC). */
export const ONE_GATEWAY_FD_MARGIN = 1_000;

/** The gateway process's own report (fleet-server.ts `stats`); `at` is that process's clock. */
export interface ServerStats {
  at: number;
  memory: { rss: number; peak: number; anon: number; heapUsed: number; external: number };
  cpu: ThreadCpu;
  eventLoopUtilization: number;
  openFiles: number;
  gateway: {
    accepted: number;
    settled: number;
    packages: number;
    packagesFailed: number;
    connections: number;
    pending: number;
    inFlight: number;
    registryCached: number;
    registrationsInFlight: number;
    bestSlot: number;
  };
  warningCount: number;
  warnings: string[];
  errors: Record<string, number>;
}

interface Started {
  port: number;
  httpUrl: string;
  dataDir: string;
  startMs: number;
  nodeOpenMs: number;
  bestSlot: number;
  threadIds: number[];
  timeOrigin: number;
  fdLimit: { soft: number; hard: number };
}

const SERVER = new URL("./fleet-server.ts", import.meta.url);

export interface OneGatewayOptions {
  readonly devices: number;
  readonly slotMs: number;
  readonly batchMs: number;
  readonly operatorToken: string;
  /** This process's own soft limit: the gateway's is never lowered below it. */
  readonly ownFdSoft: number;
}

export class OneGateway implements FleetTarget {
  /** The last stats, for what is read beside a sample (CPU per thread kind, the event loop). */
  lastStats: ServerStats | null = null;

  private constructor(
    private readonly options: OneGatewayOptions,
    public child: Child,
    private started: Started,
    public fdLimit: number,
  ) {}

  get operatorToken(): string {
    return this.options.operatorToken;
  }

  get mqttPorts(): number[] {
    return [this.started.port];
  }

  get httpUrl(): string {
    return this.started.httpUrl;
  }

  get dataDir(): string {
    return this.started.dataDir;
  }

  /** The gateway process on a fresh data dir (or `dataDir`), its fd limit raised to the fleet's connections and ONE_GATEWAY_FD_MARGIN more. */
  private static async spawn(options: OneGatewayOptions, dataDir: string | null): Promise<{ child: Child; started: Started; fdSoft: number }> {
    const child = await Child.start("gateway", SERVER, ["--expose-gc"]);
    const want = options.devices + ONE_GATEWAY_FD_MARGIN;
    const fd = raiseOpenFilesLimit(child.proc.pid!, Math.max(want, options.ownFdSoft));
    if (fd.soft < want) {
      await child.stop();
      throw new Error(
        `the gateway process needs ${want} file descriptors (one per device and ${ONE_GATEWAY_FD_MARGIN} more) and has ${fd.soft} (${fd.error ?? "prlimit"}): run as root with CAP_SYS_RESOURCE, raise \`ulimit -n\` (soft and hard) to ${want} before starting the benchmark, or spread the fleet over several gateways (--gateways K)`,
      );
    }
    const started = await child.call<Started>("start", {
      slotMs: options.slotMs,
      operatorToken: options.operatorToken,
      batchMs: options.batchMs,
      connectionsMax: options.devices + ONE_GATEWAY_FD_MARGIN,
      ...(dataDir === null ? {} : { dataDir }),
    });
    return { child, started, fdSoft: fd.soft };
  }

  static async start(options: OneGatewayOptions): Promise<OneGateway> {
    const { child, started, fdSoft } = await OneGateway.spawn(options, null);
    return new OneGateway(options, child, started, fdSoft);
  }

  /** A time of the gateway process's clock on this one's. */
  private here(at: number): number {
    return at + this.started.timeOrigin - performance.timeOrigin;
  }

  /** The gateway process's own stats, its `at` on this process's clock. */
  async stats(): Promise<ServerStats> {
    const s = await this.child.call<ServerStats>("stats");
    s.at = this.here(s.at);
    this.lastStats = s;
    return s;
  }

  async sample(): Promise<FleetSample> {
    const s = await this.stats();
    const { registryCached: _r, registrationsInFlight: _i, bestSlot: _b, ...counters } = s.gateway;
    return {
      at: s.at,
      total: counters,
      gatewaysRss: s.memory.rss,
      gateways: [{ label: "gateway", pid: this.child.proc.pid!, ...counters, memory: s.memory, openFiles: s.openFiles }],
      node: null,
      redis: null,
    };
  }

  async blocks(fromAt: number, toAt = Number.POSITIVE_INFINITY): Promise<BlockLine[]> {
    const all = await this.child.call<BlockLine[]>("blocks", { fromAt: 0 });
    return all.map((b) => ({ ...b, at: this.here(b.at) })).filter((b) => b.at >= fromAt && b.at <= toAt);
  }

  /** Resident memory after three full collections. */
  gc(): Promise<{ rss: number; anon: number }> {
    return this.child.call("gc");
  }

  profileStart(): Promise<unknown> {
    return this.child.call("profile-start");
  }

  profileStop(top: number): Promise<ProfileSummary> {
    return this.child.call<ProfileSummary>("profile-stop", { top });
  }

  /** Stops the gateway process and starts another on its data dir (the node reopens a state with the whole fleet in it; the registry cache is cold). */
  async restart(): Promise<RestartFacts> {
    const dataDir = this.started.dataDir;
    const stopped = await this.child.call<{ ms: number }>("stop", { keep: true });
    await this.child.stop();
    const t0 = performance.now();
    const next = await OneGateway.spawn(this.options, dataDir);
    this.child = next.child;
    this.started = next.started;
    this.fdLimit = next.fdSoft;
    return { stopMs: stopped.ms, startMs: performance.now() - t0, nodeOpenMs: next.started.nodeOpenMs };
  }

  warnings(): { count: number; first: readonly string[] } {
    return { count: this.lastStats?.warningCount ?? 0, first: this.lastStats?.warnings ?? [] };
  }

  /** Stops the gateway and removes its data dir. */
  async stop(): Promise<void> {
    await this.child.call("stop", { keep: false }).catch(() => undefined);
    await this.child.stop().catch(() => undefined);
    // Whatever the process did before it went.
    rmSync(this.started.dataDir, { recursive: true, force: true });
  }
}
