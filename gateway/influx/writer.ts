/**
 * Writes accepted device readings to InfluxDB 1.x through the `influx` package (node-influx v5),
 * in batches, from a bounded buffer, retrying with backoff. Telemetry is a side output:
 * InfluxDB being slow or down never blocks or loses settlement. `add()` is synchronous, never
 * awaits the network and never throws; when the buffer is full the oldest points are dropped and
 * counted. One batch is in flight at a time, so points reach InfluxDB in the order added.
 *
 * Retrying a batch is safe: InfluxDB keeps one point per (measurement, tag set, timestamp) and a
 * second write of the same point overwrites it (docs.influxdata.com/influxdb/v1.6/
 * troubleshooting/frequently-asked-questions/, "How does InfluxDB handle duplicate points?").
 */
import { InfluxDB, escape as influxEscape, ResultError, type IPoint, type IPoolOptions } from "influx";
import { type InfluxPoint, pointProblem } from "./point.ts";

export type { InfluxPoint } from "./point.ts";

export const DEFAULT_DATABASE = "jamgate";
/** Points per write request: "The optimal batch size is 5000 lines of line protocol" (InfluxData, "Optimize writes to InfluxDB"). */
export const DEFAULT_BATCH_POINTS_MAX = 5_000;
/** Longest a point waits for a batch to fill: dashboards lag at most ~1 s. */
export const DEFAULT_FLUSH_INTERVAL_MS = 1_000;
/**
 * Points held while InfluxDB is slow or down: 20 s of the gateway's measured ingest of 5,000
 * envelopes/s at one reading each (BENCHMARKS.md §5.1). About 31 MB: measured ~310 B of heap per meter point (2 tags, 2 integer
 * fields) by adding 100,000 readingsToPoints points to a writer and comparing heapUsed after
 * gc (`node --expose-gc --import tsx`, Node 20).
 */
export const DEFAULT_BUFFER_POINTS_MAX = 100_000;
/**
 * First retry after 0.5 s (influxd restarts in well under a second); doubling to 30 s so a dead
 * InfluxDB costs two requests a minute. Retries have no count limit: a batch stays buffered
 * until written or pushed out by newer points, so the buffer bound is the retry bound.
 */
export const DEFAULT_RETRY_BACKOFF_MS = { initial: 500, max: 30_000 } as const;
/** One request's limit: influxd's own coordinator write-timeout is 10 s, after which it answers 500 anyway. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** pino-compatible (`logger.warn(fields, message)`). */
export interface InfluxWriterLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface InfluxWriterOptions {
  /** e.g. `http://127.0.0.1:8086`; user and password in the URL are used for basic auth. */
  readonly url: string;
  readonly database?: string;
  readonly batchPointsMax?: number;
  readonly flushIntervalMs?: number;
  /** Points buffered, including the batch in flight. */
  readonly bufferPointsMax?: number;
  readonly retryBackoffMs?: { readonly initial: number; readonly max: number };
  readonly requestTimeoutMs?: number;
  readonly log?: InfluxWriterLog;
  /** Clock for error timestamps (ms). */
  readonly now?: () => number;
}

/**
 * What went wrong last. `unavailable`: no answer, a timeout, a 5xx or an auth refusal — the
 * batch is kept and retried. `database`: the database could not be created (retried).
 * `rejected`: InfluxDB answered 400/413 for a batch — retrying cannot help, its points are
 * counted in `rejected` (InfluxDB may have kept the valid ones: "partial write").
 */
export type InfluxWriteErrorKind = "unavailable" | "database" | "rejected";

export interface InfluxWriteError {
  readonly kind: InfluxWriteErrorKind;
  readonly message: string;
  readonly atMs: number;
}

export interface InfluxWriterStats {
  /** Points waiting or in flight. */
  readonly buffered: number;
  /** Points InfluxDB accepted. */
  readonly written: number;
  /** Points dropped because the buffer was full (oldest first), or added after stop(). */
  readonly dropped: number;
  /** Points refused by `add` for their shape (see point.ts); never buffered. */
  readonly invalid: number;
  /** Points in batches InfluxDB refused (400, or 413 for a single point). */
  readonly rejected: number;
  /** Write or create-database requests that failed. */
  readonly failedBatches: number;
  readonly lastError: InfluxWriteError | null;
}

export class InfluxWriter {
  private readonly influx: InfluxDB;
  /** The URL without credentials, for logs. */
  private readonly origin: string;
  private readonly database: string;
  private readonly batchPointsMax: number;
  private readonly flushIntervalMs: number;
  private readonly bufferPointsMax: number;
  private readonly retryBackoffMs: { readonly initial: number; readonly max: number };
  private readonly log: InfluxWriterLog | undefined;
  private readonly now: () => number;
  private readonly ring: PointRing;
  /** Points taken out of the ring for the request in flight. */
  private inFlight = 0;
  /** Batch size in use: halved on 413 (body too large), doubled back on success. */
  private batchLimit: number;
  private started = false;
  private stopped = false;
  private databaseReady = false;
  /** 0 while healthy; the delay before the pending retry otherwise. */
  private retryDelayMs = 0;
  private healthy = true;
  private dropping = false;
  private timer: NodeJS.Timeout | null = null;
  private kickScheduled = false;
  private pumping: Promise<void> | null = null;
  private written = 0;
  private dropped = 0;
  private invalid = 0;
  private rejected = 0;
  private failedBatches = 0;
  private lastError: InfluxWriteError | null = null;

  constructor(options: InfluxWriterOptions) {
    this.database = options.database ?? DEFAULT_DATABASE;
    this.batchPointsMax = options.batchPointsMax ?? DEFAULT_BATCH_POINTS_MAX;
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.bufferPointsMax = options.bufferPointsMax ?? DEFAULT_BUFFER_POINTS_MAX;
    this.retryBackoffMs = options.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS;
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    for (const [name, value] of Object.entries({
      batchPointsMax: this.batchPointsMax,
      flushIntervalMs: this.flushIntervalMs,
      bufferPointsMax: this.bufferPointsMax,
      retryBackoffInitialMs: this.retryBackoffMs.initial,
      retryBackoffMaxMs: this.retryBackoffMs.max,
      requestTimeoutMs,
    })) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`InfluxWriter: ${name} must be a positive integer, got ${value}`);
    }
    // The buffer must hold more than a batch, so a full buffer always has a waiting point to drop.
    if (this.batchPointsMax >= this.bufferPointsMax)
      throw new Error(`InfluxWriter: batchPointsMax (${this.batchPointsMax}) must be below bufferPointsMax (${this.bufferPointsMax})`);
    if (this.retryBackoffMs.initial > this.retryBackoffMs.max) throw new Error("InfluxWriter: retryBackoffMs.initial exceeds retryBackoffMs.max");
    this.batchLimit = this.batchPointsMax;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.ring = new PointRing(this.bufferPointsMax);

    const url = new URL(options.url);
    this.origin = url.origin;
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`InfluxWriter: url must be http(s), got ${options.url}`);
    const pool: IPoolOptions = {
      // This writer owns retries and backoff. The pool's own (2 retries; a failed host disabled
      // for 0.3–10 s on an un-unref'd timer, answering "No host available" meanwhile) would
      // delay recovery after influxd returns and keep the process alive after stop().
      maxRetries: 0,
      requestTimeout: requestTimeoutMs,
      backoff: NEVER_DISABLE_HOST,
    };
    this.influx = new InfluxDB({
      host: url.hostname,
      port: url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port),
      protocol: url.protocol === "https:" ? "https" : "http",
      ...(url.pathname !== "/" ? { path: url.pathname } : {}),
      ...(url.username !== "" ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : {}),
      database: this.database,
      pool,
    });
  }

  /** Starts writing: creates the database if missing (retrying in the background while InfluxDB is down), then flushes on size and interval. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.kick();
  }

  /**
   * Buffers points for writing. Synchronous and O(points): checks each point's shape (bad ones
   * are counted in `invalid`), drops the oldest waiting point for each one over the bound (the
   * batch in flight is never dropped: if its request fails it goes back in front, still inside
   * the bound, since the bound counts it).
   * Points are kept by reference: do not change them after adding.
   */
  add(points: readonly InfluxPoint[]): void {
    if (!Array.isArray(points)) {
      this.invalid += 1;
      return;
    }
    for (const point of points) {
      if (pointProblem(point) !== null) {
        this.invalid += 1;
        continue;
      }
      if (this.stopped) {
        this.dropped += 1;
        continue;
      }
      if (this.ring.size + this.inFlight >= this.bufferPointsMax) {
        // inFlight < batchPointsMax < bufferPointsMax, so the ring holds at least one point.
        this.ring.dropOldest();
        this.dropped += 1;
        if (!this.dropping) {
          this.dropping = true;
          this.log?.warn({ bufferPointsMax: this.bufferPointsMax }, "influx: buffer full, dropping the oldest points");
        }
      }
      this.ring.push(point);
    }
    if (this.started && this.ring.size >= this.batchLimit && this.retryDelayMs === 0) this.kick();
  }

  /**
   * Writes what is buffered now, ignoring any retry backoff. Resolves when it is written or a
   * request failed (points stay buffered, `stats().lastError` says why); never rejects. For
   * tests and shutdown (`await writer.flush(); await writer.stop()`).
   */
  async flush(): Promise<void> {
    if (this.pumping !== null) await this.pumping;
    await this.pump();
  }

  /** Stops timers and waits for the request in flight (at most requestTimeoutMs). Points still buffered stay counted in `buffered`. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pumping !== null) await this.pumping;
  }

  stats(): InfluxWriterStats {
    return {
      buffered: this.ring.size + this.inFlight,
      written: this.written,
      dropped: this.dropped,
      invalid: this.invalid,
      rejected: this.rejected,
      failedBatches: this.failedBatches,
      lastError: this.lastError,
    };
  }

  /** Pumps on the next turn of the event loop, off the caller's stack. */
  private kick(): void {
    if (this.kickScheduled || this.stopped) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      void this.pump();
    });
  }

  private schedule(delayMs: number): void {
    if (this.stopped || !this.started) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pump();
    }, delayMs);
    // Telemetry never keeps the process alive; shutdown flushes explicitly.
    this.timer.unref();
  }

  private pump(): Promise<void> {
    if (this.pumping === null) {
      this.pumping = this.drain().finally(() => {
        this.pumping = null;
      });
    }
    return this.pumping;
  }

  /** Writes batches until the points buffered at the start are out, or a request fails; then schedules the next run. */
  private async drain(): Promise<void> {
    let failed = false;
    let left = this.ring.size;
    while (!this.stopped) {
      if (!this.databaseReady && !(await this.ensureDatabase())) {
        failed = true;
        break;
      }
      if (this.ring.size === 0 || left <= 0) break;
      const taken = Math.min(this.batchLimit, this.ring.size);
      const outcome = await this.writeBatch(this.ring.shift(taken));
      if (outcome === "retry") {
        failed = true;
        break;
      }
      if (outcome === "done") left -= taken;
    }
    if (failed) {
      this.retryDelayMs = this.retryDelayMs === 0 ? this.retryBackoffMs.initial : Math.min(this.retryBackoffMs.max, this.retryDelayMs * 2);
      this.schedule(this.retryDelayMs);
      return;
    }
    this.retryDelayMs = 0;
    this.schedule(this.ring.size >= this.batchLimit ? 0 : this.flushIntervalMs);
  }

  /** Creates the database (a no-op when it exists: CREATE DATABASE is idempotent in 1.x). False when it should be retried. */
  private async ensureDatabase(): Promise<boolean> {
    try {
      await this.influx.createDatabase(this.database);
      this.databaseReady = true;
      return true;
    } catch (e) {
      this.failedBatches += 1;
      if (isUnavailable(e)) {
        this.noteUnavailable("database", e);
        return false;
      }
      // Refused, e.g. a user without admin rights: the database may exist; writes will tell (404).
      this.setError("database", e);
      this.log?.warn({ database: this.database, error: messageOf(e) }, "influx: CREATE DATABASE refused; writing anyway");
      this.databaseReady = true;
      return true;
    }
  }

  /** "done": the batch is settled (written or rejected); "again": put back to retry now (smaller); "retry": put back, back off. */
  private async writeBatch(batch: InfluxPoint[]): Promise<"done" | "again" | "retry"> {
    this.inFlight = batch.length;
    try {
      await this.influx.writePoints(batch.map(toPackagePoint), { database: this.database, precision: "ms" });
    } catch (e) {
      this.inFlight = 0;
      this.failedBatches += 1;
      const status = statusOf(e);
      if (status === 404) {
        // "database not found": dropped while we ran, or a fresh influxd on the same URL.
        this.databaseReady = false;
        this.ring.unshift(batch);
        this.noteUnavailable("database", e);
        return "retry";
      }
      if (status === 413 && batch.length > 1) {
        this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
        this.ring.unshift(batch);
        this.setError("rejected", e);
        return "again";
      }
      if (status === 400 || status === 413) {
        const droppedByInflux = /dropped=(\d+)/.exec(messageOf(e));
        const lost = droppedByInflux !== null && Number(droppedByInflux[1]) > 0 ? Math.min(batch.length, Number(droppedByInflux[1])) : batch.length;
        this.rejected += lost;
        this.written += batch.length - lost;
        this.setError("rejected", e);
        this.log?.warn({ points: batch.length, rejected: lost, error: messageOf(e) }, "influx: batch refused");
        return "done";
      }
      this.ring.unshift(batch);
      this.noteUnavailable("unavailable", e);
      return "retry";
    }
    this.inFlight = 0;
    this.written += batch.length;
    this.batchLimit = Math.min(this.batchPointsMax, this.batchLimit * 2);
    if (!this.healthy) {
      this.healthy = true;
      this.dropping = false;
      this.log?.info({ buffered: this.ring.size, dropped: this.dropped }, "influx: writes resumed");
    }
    return "done";
  }

  private noteUnavailable(kind: InfluxWriteErrorKind, e: unknown): void {
    this.setError(kind, e);
    if (this.healthy) {
      this.healthy = false;
      this.log?.warn({ url: this.origin, error: messageOf(e) }, "influx: unavailable; buffering and retrying");
    }
  }

  private setError(kind: InfluxWriteErrorKind, e: unknown): void {
    this.lastError = { kind, message: messageOf(e), atMs: this.now() };
  }
}

/**
 * An integer field value for the `influx` package. Without a schema it writes every field as
 * `String(value)` (schema.js `coerceBadly`), so a number or bigint becomes a float, e.g. `5`
 * (node-influx issues #190, #488); with a schema, INTEGER fields go through `Math.floor`, which
 * throws on bigint and rounds above 2^53. An object whose string form is `123i` is written as
 * the line protocol integer `123i`, exact for all of int64. writer.test.ts checks this against
 * the installed package (`parsePoint`) and against a real influxd (`SHOW FIELD KEYS`).
 */
export class LineInteger {
  constructor(readonly value: bigint) {}
  toString(): string {
    return `${this.value}i`;
  }
}

/**
 * The `influx` package's point for one of ours. The package does not escape measurements
 * (index.js writePoints), so we do; tags sorted by key as InfluxDB prefers ("Optimize writes":
 * "Sort tags by key"); the timestamp as a string, since the package skips a falsy timestamp
 * (`timestamp && …`) and would let the server stamp a point at 0 with its own clock.
 */
export function toPackagePoint(p: InfluxPoint): IPoint {
  const tags: Record<string, string> = {};
  for (const key of Object.keys(p.tags).sort()) {
    const value = p.tags[key];
    if (value !== undefined && value !== "") tags[key] = value;
  }
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(p.fields)) {
    const value = p.fields[key];
    fields[key] = typeof value === "bigint" ? new LineInteger(value) : value;
  }
  return { measurement: influxEscape.measurement(p.measurement), tags, fields, timestamp: String(p.timestampMs) };
}

/** Never takes the host out of the pool: retrying is the writer's job (see the pool options above). */
const NEVER_DISABLE_HOST: NonNullable<IPoolOptions["backoff"]> = {
  getDelay: () => 0,
  next: () => NEVER_DISABLE_HOST,
  reset: () => NEVER_DISABLE_HOST,
};

/** HTTP status of a node-influx RequestError (3xx/4xx answers); undefined for anything else. */
function statusOf(e: unknown): number | undefined {
  const status = (e as { res?: { statusCode?: unknown } } | null)?.res?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** No answer, a timeout, a 5xx (node-influx: ServiceNotAvailableError), or 401/403/429: worth retrying as is. */
function isUnavailable(e: unknown): boolean {
  const status = statusOf(e);
  return status === undefined ? !(e instanceof ResultError) : status === 401 || status === 403 || status === 429;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message || e.name || String(e) : String(e);
}

/** Fixed-capacity FIFO of points (a ring), so a full buffer costs no allocation per point. */
class PointRing {
  private readonly slots: (InfluxPoint | undefined)[];
  private head = 0;
  size = 0;

  constructor(readonly capacity: number) {
    this.slots = new Array<InfluxPoint | undefined>(capacity).fill(undefined);
  }

  push(p: InfluxPoint): void {
    if (this.size === this.capacity) throw new Error("PointRing: push into a full ring");
    this.slots[(this.head + this.size) % this.capacity] = p;
    this.size += 1;
  }

  dropOldest(): void {
    if (this.size === 0) throw new Error("PointRing: drop from an empty ring");
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size -= 1;
  }

  /** Takes the n oldest. */
  shift(n: number): InfluxPoint[] {
    const out: InfluxPoint[] = [];
    for (let i = 0; i < n && this.size > 0; i++) {
      out.push(this.slots[this.head] as InfluxPoint);
      this.dropOldest();
    }
    return out;
  }

  /** Puts a taken batch back in front, oldest first. */
  unshift(batch: readonly InfluxPoint[]): void {
    if (this.size + batch.length > this.capacity) throw new Error("PointRing: unshift past capacity");
    for (let i = batch.length - 1; i >= 0; i--) {
      this.head = (this.head - 1 + this.capacity) % this.capacity;
      this.slots[this.head] = batch[i];
      this.size += 1;
    }
  }
}
