/**
 * Several gateways as one MQTT service (`jamgate start --cluster redis://…`, docs/cluster.md): each
 * gateway's aedes routes through Redis (emitter.ts: mqemitter-redis) and keeps its sessions there
 * (persistence.ts: aedes-persistence-redis), the gateways share the seqs they logged
 * (windows.ts), and the live gateways split the node's cores between them (members.ts). Everything that decides what is settled stays local or on the ledger: each gateway
 * PUBACKs after its own durable write and submits to the node; Redis carries receipts, errors,
 * control messages and sessions between gateways.
 *
 * Three connections to Redis per gateway: one for sessions, windows and members, one that publishes, one
 * that subscribes (a Redis connection that subscribes can do nothing else). Each reconnects on its
 * own for ever (ioredis), and commands given meanwhile wait for it: what waits is bounded by the
 * gateway (its receipts in flight, the sessions it has connected) and by EMITS_HELD_MAX and
 * SHARED_WINDOW_ADDS_PENDING_MAX here. While any of the three is down, `available` is false: the
 * gateway refuses new MQTT sessions (CONNACK 3, JG_ERR_CLUSTER_UNAVAILABLE: a session lives in
 * Redis), and devices already connected keep publishing. At start, Redis must answer within
 * CLUSTER_CONNECT_TIMEOUT_MS, else the start fails (JG_ERR_CLUSTER_UNREACHABLE).
 */
import { Redis, type RedisOptions } from "ioredis";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { type RoutedEmitter, routedEmitter } from "./emitter.ts";
import { ClusterMembers, coresFor, type MembersLimits } from "./members.ts";
import { boundedRedisPersistence } from "./persistence.ts";
import type { ClusterUrl } from "./url.ts";
import { SharedWindows } from "./windows.ts";

export { parseClusterUrl, type ClusterUrl } from "./url.ts";

export const clusterLimits = {
  /** How long a start waits for Redis to answer before it fails: long enough for a Redis that is starting too (a host's boot), short enough that a wrong address is told at once. */
  connectTimeoutMs: 10_000,
  /** Longest wait between reconnect attempts (ioredis retries 100, 200, … ms up to this): a Redis back is found within a second. */
  reconnectDelayMaxMs: 1_000,
  /**
   * After all three connections are up again, how long the gateway waits before it sends what it
   * held for Redis: two reconnect delays, so the other gateways' subscriber connections (each
   * retrying on its own) have subscribed again and hear it.
   */
  resumeGraceMs: 2_000,
  /** TCP keep-alive on the connections (first probe after 10 s idle), so the OS ends a connection to a host gone for good. */
  keepAliveMs: 10_000,
  /**
   * Each connection is PINGed this often, and ended and made again when no PONG comes within
   * healthTimeoutMs: a Redis host cut off without a word (a network partition) is noticed within
   * 15 s, where TCP keep-alive with Linux's default probes takes over 11 minutes, and commands
   * waiting on a dead socket are sent again on the new one (ioredis resends what had no reply).
   */
  healthCheckMs: 5_000,
  /** A PONG later than this (Redis answers in order: this is also the longest a command may wait behind others) ends the connection. */
  healthTimeoutMs: 10_000,
  /** How long a stopping gateway waits to send the seqs it still holds for the shared windows. */
  stopFlushMs: 1_000,
} as const;

/** At most one `cluster Redis error` line this often: a Redis refusing every write (full, with noeviction) fails each receipt's. */
const ERROR_LINE_INTERVAL_MS = 10_000;

interface Logger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}

export interface ClusterOptions {
  readonly url: ClusterUrl;
  /** Redis AUTH password (`--cluster-password-file`), if Redis asks for one. */
  readonly password?: string;
  readonly logger?: Logger;
  /** Overrides of clusterLimits (tests). */
  readonly limits?: Partial<Record<keyof typeof clusterLimits, number>>;
  /**
   * This gateway's id among the cluster's gateways (its gateway key's public key, hex): with it, the
   * live gateways split the node's cores between them (members.ts); without, it packs for every core.
   */
  readonly memberId?: string;
  /** Overrides of members.ts membersLimits (tests). */
  readonly membersLimits?: Partial<MembersLimits>;
}

/** One gateway's membership of a cluster: its Redis connections and what aedes and the gateway use them for. */
export class Cluster {
  /** The seqs the cluster's gateways logged, per device. */
  readonly windows: SharedWindows;
  /** The live gateways and this one's place among them (null without a memberId). */
  readonly members: ClusterMembers | null;
  private readonly routed: RoutedEmitter;
  private readonly connections: readonly { readonly name: string; readonly redis: Redis }[];
  private readonly limits: Record<keyof typeof clusterLimits, number>;
  private wasAvailable = true;
  private resumeTimer: NodeJS.Timeout | null = null;
  private readonly healthTimer: NodeJS.Timeout;
  private closed = false;
  /** Errors from Redis since start, for the logs (one line per outage, not per command). */
  private errorsSinceLine = 0;
  private lastErrorLineAtMs = Number.NEGATIVE_INFINITY;
  private errorsLeftOut = 0;

  private constructor(
    readonly url: ClusterUrl,
    connections: { db: Redis; pub: Redis; sub: Redis },
    private readonly logger: Logger | undefined,
    limits: Record<keyof typeof clusterLimits, number>,
    member: { readonly id: string; readonly limits: Partial<MembersLimits> } | null,
  ) {
    this.limits = limits;
    this.connections = [
      { name: "sessions", redis: connections.db },
      { name: "publisher", redis: connections.pub },
      { name: "subscriber", redis: connections.sub },
    ];
    const onError = (error: Error) => this.noteError(error);
    this.routed = routedEmitter({
      pub: connections.pub,
      sub: connections.sub,
      prefix: url.channelPrefix,
      concurrency: 0,
      canSend: () => this.sendable(),
      onError,
    });
    this.windows = new SharedWindows(connections.db, url.channelPrefix, () => this.sendable(), onError);
    this.members =
      member === null
        ? null
        : new ClusterMembers(
            connections.db,
            url.channelPrefix,
            member.id,
            (place) =>
              this.logger?.info(
                { cluster: url.text, gateways: place.count, place: place.index },
                "the cluster's gateways changed: the node's cores are split again",
              ),
            member.limits,
          );
    this.members?.start();
    for (const { name, redis } of this.connections) {
      redis.on("error", onError);
      redis.on("close", () => this.onChange(name));
      redis.on("ready", () => this.onChange(name));
    }
    this.healthTimer = setInterval(() => this.checkHealth(), limits.healthCheckMs);
    this.healthTimer.unref();
  }

  /** PINGs each connection that is up; one without a PONG in time is ended and made again. */
  private checkHealth(): void {
    for (const { name, redis } of this.connections) {
      if (redis.status !== "ready") continue;
      let answered = false;
      const timer = setTimeout(() => {
        if (answered || this.closed || redis.status !== "ready") return;
        this.logger?.warn({ cluster: this.url.text, connection: name }, "the cluster's Redis does not answer: connecting again");
        redis.disconnect(true);
      }, this.limits.healthTimeoutMs);
      timer.unref();
      redis.ping().then(
        () => {
          answered = true;
          clearTimeout(timer);
        },
        () => clearTimeout(timer),
      );
    }
  }

  /**
   * Connects to the cluster's Redis, or fails with JG_ERR_CLUSTER_UNREACHABLE when it does not
   * answer (or refuses the password, or the database) within clusterLimits.connectTimeoutMs.
   */
  static async connect(options: ClusterOptions): Promise<Cluster> {
    const limits = { ...clusterLimits, ...options.limits };
    const { url } = options;
    const redisOptions: RedisOptions = {
      host: url.host,
      port: url.port,
      db: url.db,
      ...(url.username === null ? {} : { username: url.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(url.tls ? { tls: { servername: url.host } } : {}),
      lazyConnect: true,
      // Commands wait for a reconnect however long it takes: ioredis's default (20 retries, then an
      // error) would fail aedes' session writes mid-way, and aedes has no way back from that.
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(times * 100, limits.reconnectDelayMaxMs),
      connectTimeout: limits.connectTimeoutMs,
      keepAlive: limits.keepAliveMs,
      enableAutoPipelining: true,
    };
    const db = new Redis({ ...redisOptions, connectionName: "jamgate-sessions" });
    const pub = new Redis({ ...redisOptions, connectionName: "jamgate-publisher" });
    const sub = new Redis({ ...redisOptions, connectionName: "jamgate-subscriber" });
    const all = [db, pub, sub];
    const errors: string[] = [];
    for (const r of all) r.on("error", (e: Error) => errors.push(e.message));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.all(all.map((r) => r.connect())),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${limits.connectTimeoutMs} ms`)), limits.connectTimeoutMs);
        }),
      ]);
    } catch (e) {
      for (const r of all) r.disconnect();
      const why = [...new Set([...errors, (e as Error).message])].slice(0, 3).join("; ");
      throw new JamgateError("JG_ERR_CLUSTER_UNREACHABLE", `--cluster ${url.text}: ${why}`);
    } finally {
      clearTimeout(timer);
    }
    for (const r of all) r.removeAllListeners("error");
    const member = options.memberId === undefined ? null : { id: options.memberId, limits: options.membersLimits ?? {} };
    return new Cluster(url, { db, pub, sub }, options.logger, limits, member);
  }

  /** aedes' `mq`: routing between the gateways. */
  get mq(): object {
    return this.routed.mq;
  }

  /** aedes' `persistence`: sessions in Redis, each holding at most `max` messages (brokerLimits.sessionQueueMax). */
  persistence(max: number, onFull: (clientId: string) => void): object {
    return boundedRedisPersistence({ db: this.connections[0]!.redis, max, onFull, onError: (e) => this.noteError(e) });
  }

  /** The cores of `coresCount` this gateway packs for a block at `slot` (members.ts coresFor); null: every core; empty: another gateway's turn. */
  packingCores(coresCount: number, slot: number | null): number[] | null {
    return coresFor(this.members?.place ?? null, coresCount, slot);
  }

  /** All three connections are up: new sessions may open. */
  get available(): boolean {
    return !this.closed && this.connections.every((c) => c.redis.status === "ready");
  }

  /** Messages waiting for Redis (held while it was away, or during the grace after). */
  get held(): number {
    return this.routed.held();
  }

  /** Up, and the grace after a reconnect is over: what waits may be sent. */
  private sendable(): boolean {
    return this.available && this.resumeTimer === null && this.wasAvailable;
  }

  private onChange(name: string): void {
    if (this.closed) return;
    const now = this.available;
    if (this.wasAvailable && !now) {
      this.wasAvailable = false;
      if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
      this.resumeTimer = null;
      this.logger?.warn(
        { cluster: this.url.text, connection: name },
        "lost the cluster's Redis: new MQTT sessions are refused until it is back (JG_ERR_CLUSTER_UNAVAILABLE); connected devices keep publishing, receipts wait",
      );
    } else if (!this.wasAvailable && now && this.resumeTimer === null) {
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = null;
        if (!this.available) return;
        this.wasAvailable = true;
        const errors = this.errorsSinceLine;
        this.errorsSinceLine = 0;
        this.logger?.info({ cluster: this.url.text, held: this.routed.held(), errors }, "the cluster's Redis is back: sending what waited");
        this.routed.release();
        this.windows.schedule();
      }, this.limits.resumeGraceMs);
      this.resumeTimer.unref();
    }
  }

  private noteError(error: Error): void {
    // Connection errors come once per reconnect attempt while Redis is away: counted, told when it is back.
    this.errorsSinceLine++;
    if (!(this.wasAvailable && this.available)) return;
    // While up (a full Redis refusing writes, say): a line at most every ERROR_LINE_INTERVAL_MS, with how many were left out.
    const now = Date.now();
    if (now - this.lastErrorLineAtMs < ERROR_LINE_INTERVAL_MS) {
      this.errorsLeftOut++;
      return;
    }
    this.lastErrorLineAtMs = now;
    const suppressed = this.errorsLeftOut;
    this.errorsLeftOut = 0;
    this.logger?.warn({ cluster: this.url.text, err: error.message, ...(suppressed > 0 ? { suppressed } : {}) }, "cluster Redis error");
  }

  /** Ends the connections (after the broker closed): what waits for Redis is sent first, for at most clusterLimits.stopFlushMs. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([this.windows.flush(this.limits.stopFlushMs), this.members?.stop()]);
    this.closed = true;
    clearInterval(this.healthTimer);
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    for (const { redis } of this.connections) redis.disconnect();
  }
}
