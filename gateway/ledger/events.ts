/**
 * `GET /v1/events`: the ledger's live updates as Server-Sent Events (WHATWG HTML §9.2, "Server-sent
 * events"), fed by `LedgerReader.subscribe`. Each event is `event: block|entry|package|interval`,
 * `data:` its view as JSON; entries carry `id:` (their index id), so a browser's EventSource that
 * reconnects sends `Last-Event-ID` and the stream replays the entries it missed from the index.
 *
 * Entries come one of two ways (`?entries=`). `each` (the default, what `jamgate ledger --follow`
 * reads): an `entry` event per matching entry, resumable. `digest` (the dashboard): no `entry`
 * events; at most once per ENTRY_DIGEST_MS, when entries matched since the last, one
 * `event: entries` (an EntryDigestView: their count, the newest id, the newest
 * ENTRY_DIGEST_LATEST_MAX of them). Digest streams with the same filter share one digest: an entry
 * costs each filter one check, and a digest is encoded once a tick for all its streams. A digest
 * has no `id:` and a digest stream does not resume: what it missed is read by cursor.
 *
 * Bounded: at most SSE_CLIENTS_MAX streams (503 JG_ERR_HTTP_BUSY past it), and per stream at most
 * EVENTS_QUEUE_MAX events waiting while its socket's buffer is full; a client that falls further
 * behind gets `event: overflow` and is closed (it re-fetches from `/v1/entries` by cursor). A
 * comment line every heartbeat keeps idle proxies, and the server's idle-socket bound
 * (node/net/servers.ts serverLimits.idleSocketTimeoutMs, which counts bytes written), from cutting
 * a quiet stream; a client that stops reading moves no bytes, so that bound still closes it.
 */
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import { ID_PATTERN, SERVICE_NAME_PATTERN, schemaRef } from "./schemas.ts";
import { type EntryDigestView, type EntryFilter, type EntryView, type LedgerEvent, type LedgerReader, LIST_LIMIT_MAX } from "./types.ts";

/**
 * Streams served at once: twice the 50 dashboards the issue's benchmark keeps open. Their queues
 * share the events' bytes (EVENTS_QUEUE_MAX), and each holds one of the HTTP API's
 * HTTP_CONNECTIONS_MAX sockets and its kernel buffers.
 */
export const SSE_CLIENTS_MAX = 100;
/**
 * Events waiting for one stream's socket: a block's entries at the target load (10,000 devices,
 * an entry each) with room, as the index hands them over at once. The queue holds references to
 * bytes every stream shares, so streams behind hold at most the last ~16 MB of ~1 KB events
 * together; one further behind is told `overflow` and closed rather than buffered without end.
 */
export const EVENTS_QUEUE_MAX = 16_384;
/**
 * Events handed to a socket in one write (each event's bytes encoded once, for every stream). A
 * write per event cost the server 1,470 ms of CPU to send 10,000 entries to 50 streams; batched,
 * 520–610 ms (measured: `npx tsx bench/sse-fanout.ts`, median of 3, 2 cores shared).
 */
const WRITE_BATCH_EVENTS = 256;
/**
 * A comment line this often keeps a quiet stream alive: under the 30 s idle-socket bound of
 * serverLimits and the 60 s idle timeouts common in proxies (nginx proxy_read_timeout).
 */
export const SSE_HEARTBEAT_MS = 15_000;
/**
 * Entries a resumed stream (Last-Event-ID or `?after=`) replays at most: a reconnect after a short
 * drop. Further back it is told `overflow` and pages `/v1/entries` itself, as for any long gap.
 */
export const EVENTS_RESUME_MAX = 4 * LIST_LIMIT_MAX;
/**
 * How often a digest stream is told of its entries: about as often as a person reads a changing
 * table. Measured with 50 dashboards at the benchmark's ~860 entries/s (`node --import tsx
 * bench/gateway.ts --ceiling-runs 0 --dashboard-clients 50`, 2 cores shared): an `entry` event per
 * entry was 1.94 million events in ~45 s; with digests the streams got 14,000–21,000 events in all,
 * and the gateway's main thread used 0.56–0.60 cores against 0.57–0.60 with no dashboard (4 runs each).
 */
export const ENTRY_DIGEST_MS = 1_000;
/**
 * Entries a digest carries at most (the newest): the dashboard's ledger page (gateway/dashboard/app.js
 * LEDGER_PAGE_SIZE), so one digest fills it with the newest rows; older ones are read by cursor.
 */
export const ENTRY_DIGEST_LATEST_MAX = 25;
/** How a stream gets entries: one event each (resumable), or a digest per ENTRY_DIGEST_MS. */
export const ENTRY_MODES = ["each", "digest"] as const;
export type EntryMode = (typeof ENTRY_MODES)[number];
/** `entries` calls a resume makes at most (each scans at most ENTRY_SCAN_MAX): bounds its work when a filter matches rarely. */
const RESUME_CALLS_MAX = 8;
/** What an EventSource waits before reconnecting (the `retry:` field), ms. */
const RECONNECT_MS = 3_000;

export interface EventStreamOptions {
  readonly reader: LedgerReader;
  readonly count: (code: ErrorCode) => void;
  /** Overrides (tests): SSE_CLIENTS_MAX, EVENTS_QUEUE_MAX, SSE_HEARTBEAT_MS, ENTRY_DIGEST_MS, ENTRY_DIGEST_LATEST_MAX. */
  readonly clientsMax?: number;
  readonly queueMax?: number;
  readonly heartbeatMs?: number;
  readonly digestMs?: number;
  readonly digestLatestMax?: number;
  /** Told the number of open streams whenever it changes (a gauge for metrics; tests watch it). */
  readonly onClients?: (clients: number) => void;
}

interface Chunk {
  /** The event's stream text, UTF-8 encoded once for every stream. */
  readonly bytes: Buffer;
  /** The entry's id for entry events: resumes and duplicates are judged by it. */
  readonly entryId: number | null;
  /** The newest entry the event tells of (an entry's id, a digest's lastId): what `overflow` names once it was sent. */
  readonly lastEntryId: number | null;
}

interface StreamFilter {
  readonly service?: string;
  readonly account?: string;
  readonly device?: string;
  /** Wi-Fi entries of this router (EntryView.router); entries of no router (top-ups, other services) never match. */
  readonly router?: string;
  readonly interval?: number;
}

const STREAM_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  // nginx buffers proxied responses unless told not to.
  "x-accel-buffering": "no",
  "x-content-type-options": "nosniff",
} as const;

/** One event as its stream text: `event:`, `id:` for entries, and the view as one `data:` line (JSON has no raw newlines). */
export function formatEvent(event: LedgerEvent): Chunk {
  const chunk = (text: string, entryId: number | null): Chunk => ({ bytes: Buffer.from(text, "utf8"), entryId, lastEntryId: entryId });
  switch (event.kind) {
    case "entry":
      return chunk(`event: entry\nid: ${event.entry.id}\ndata: ${JSON.stringify(event.entry)}\n\n`, event.entry.id);
    case "block":
      return chunk(`event: block\ndata: ${JSON.stringify(event.block)}\n\n`, null);
    case "package":
      return chunk(`event: package\ndata: ${JSON.stringify(event.package)}\n\n`, null);
    case "interval":
      return chunk(`event: interval\ndata: ${JSON.stringify(event.interval)}\n\n`, null);
  }
}

/** A digest as its stream text: `event: entries`, no `id:` (a digest stream does not resume). */
export function formatDigest(digest: EntryDigestView): Chunk {
  return { bytes: Buffer.from(`event: entries\ndata: ${JSON.stringify(digest)}\n\n`, "utf8"), entryId: null, lastEntryId: digest.lastId };
}

function matches(filter: StreamFilter, entry: EntryView): boolean {
  if (filter.service !== undefined && entry.service !== filter.service) return false;
  if (filter.device !== undefined && entry.device !== filter.device) return false;
  if (filter.router !== undefined && entry.router !== filter.router) return false;
  if (filter.interval !== undefined && entry.interval !== filter.interval) return false;
  if (filter.account !== undefined && !entry.accounts.includes(filter.account)) return false;
  return true;
}

/** One key per filter: digest streams with equal filters share a group. */
function filterKey(filter: StreamFilter): string {
  return JSON.stringify([filter.service ?? null, filter.account ?? null, filter.device ?? null, filter.router ?? null, filter.interval ?? null]);
}

/**
 * The digest of the digest streams with one filter: a count of the matching entries since the last
 * digest, and the newest of them in a ring of `latestMax`. An entry costs one filter check and, when
 * it matches, a counter and a ring slot; `take` builds and encodes the digest once for every stream.
 */
class DigestGroup {
  readonly streams = new Set<Stream>();
  private count = 0;
  /** The newest entry counted (in any digest): an older or equal one is a duplicate. */
  private lastId = -1;
  private readonly ring: (EntryView | undefined)[];
  /** The ring's slot for the next entry. */
  private next = 0;

  constructor(
    readonly filter: StreamFilter,
    private readonly latestMax: number,
  ) {
    this.ring = new Array<EntryView | undefined>(latestMax);
  }

  add(entry: EntryView): void {
    if (entry.id <= this.lastId || !matches(this.filter, entry)) return;
    this.count++;
    this.lastId = entry.id;
    this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.latestMax;
  }

  /** The digest of the entries since the last one (encoded once, for every stream of the group), or null when none matched. */
  take(): Chunk | null {
    if (this.count === 0) return null;
    const latest: EntryView[] = [];
    for (let i = 1; i <= Math.min(this.count, this.latestMax); i++) latest.push(this.ring[(this.next - i + this.latestMax) % this.latestMax]!);
    const chunk = formatDigest({ count: this.count, lastId: this.lastId, latest });
    this.count = 0;
    this.ring.fill(undefined);
    this.next = 0;
    return chunk;
  }
}

/**
 * One open stream. Events it accepts are queued (references to bytes shared by every stream) and
 * handed to the socket once per event-loop turn, WRITE_BATCH_EVENTS to a write, while the socket
 * takes them; past queueMax waiting it is told `overflow` and closed.
 */
class Stream {
  private queue: Chunk[] = [];
  private queueHead = 0;
  private blocked = false;
  private flushScheduled = false;
  /** While a resume reads the index: live events wait here (bounded by the same queueMax). */
  private held: Chunk[] | null = null;
  /** The newest entry accepted for this stream (written or queued): an older or equal one is a duplicate. */
  private seenEntryId = -1;
  /** The newest entry handed to the socket: what `overflow` tells the client to re-fetch after. */
  private sentEntryId: number | null = null;
  closed = false;

  constructor(
    readonly res: ServerResponse,
    readonly filter: StreamFilter,
    /** The group whose digests it gets (`?entries=digest`); null: it gets an `entry` event per entry. */
    readonly digest: DigestGroup | null,
    private readonly queueMax: number,
    private readonly onClose: (stream: Stream) => void,
  ) {
    res.on("close", () => this.finish());
    res.on("drain", () => {
      this.blocked = false;
      this.flush();
    });
  }

  /** Offers an event to this stream (filters apply to entries). */
  offer(chunk: Chunk, entry: EntryView | null): void {
    if (entry !== null && !matches(this.filter, entry)) return;
    this.send(chunk);
  }

  send(chunk: Chunk): void {
    if (this.closed) return;
    if (this.held !== null) {
      if (this.held.length >= this.queueMax) return this.overflow();
      this.held.push(chunk);
      return;
    }
    if (chunk.entryId !== null) {
      if (chunk.entryId <= this.seenEntryId) return;
      this.seenEntryId = chunk.entryId;
    }
    if (this.queue.length - this.queueHead >= this.queueMax) return this.overflow();
    this.queue.push(chunk);
    if (!this.flushScheduled && !this.blocked) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Hands queued events to the socket, WRITE_BATCH_EVENTS to a write (their shared bytes copied into one buffer), until it is full (then `drain` resumes). */
  private flush(): void {
    while (!this.closed && !this.blocked && this.queueHead < this.queue.length) {
      const end = Math.min(this.queue.length, this.queueHead + WRITE_BATCH_EVENTS);
      const batch = this.queue.slice(this.queueHead, end);
      for (const chunk of batch) if (chunk.lastEntryId !== null) this.sentEntryId = chunk.lastEntryId;
      this.queueHead = end;
      if (!this.res.write(batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((c) => c.bytes)))) this.blocked = true;
    }
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    }
  }

  /** A comment line, only when nothing waits and the socket keeps up (a stalled one should go quiet and be closed by the idle bound). */
  heartbeat(): void {
    if (this.closed || this.blocked || this.held !== null || this.queueHead < this.queue.length) return;
    this.res.write(": heartbeat\n\n");
  }

  hold(): void {
    this.held = [];
  }

  /** Ends a resume: the replayed entries (ascending) go first, then what came live meanwhile, less what the replay covered. */
  release(replayed: readonly Chunk[]): void {
    const held = this.held ?? [];
    this.held = null;
    for (const chunk of replayed) this.send(chunk);
    for (const chunk of held) this.send(chunk);
  }

  /** Tells the client it fell behind and where to re-fetch from, then closes the stream. */
  overflow(): void {
    if (this.closed) return;
    this.res.end(`event: overflow\ndata: ${JSON.stringify({ lastEntryId: this.sentEntryId })}\n\n`);
    this.finish();
  }

  end(): void {
    if (this.closed) return;
    this.res.end();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.held = null;
    this.onClose(this);
  }
}

/**
 * The hub: one subscription to the reader while any stream is open, each event serialized once and
 * offered to every stream; an entry is serialized for the `each` streams only when there are any,
 * and counted into each digest group (one per filter), whose digests go out on one timer.
 */
export class EventHub {
  private readonly streams = new Set<Stream>();
  /** Streams that get an `entry` event per entry. */
  private readonly eachStreams = new Set<Stream>();
  /** Digest groups by filter (filterKey), while they have streams. */
  private readonly groups = new Map<string, DigestGroup>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Sends the groups' digests every digestMs while any digest stream is open. */
  private digestTimer: NodeJS.Timeout | null = null;
  readonly clientsMax: number;
  readonly queueMax: number;
  readonly heartbeatMs: number;
  readonly digestMs: number;
  readonly digestLatestMax: number;

  constructor(private readonly options: EventStreamOptions) {
    this.clientsMax = options.clientsMax ?? SSE_CLIENTS_MAX;
    this.queueMax = options.queueMax ?? EVENTS_QUEUE_MAX;
    this.heartbeatMs = options.heartbeatMs ?? SSE_HEARTBEAT_MS;
    this.digestMs = options.digestMs ?? ENTRY_DIGEST_MS;
    this.digestLatestMax = options.digestLatestMax ?? ENTRY_DIGEST_LATEST_MAX;
  }

  get clients(): number {
    return this.streams.size;
  }

  /** Digest groups open (one per distinct filter of the digest streams). */
  get digestGroups(): number {
    return this.groups.size;
  }

  /** The hub's timers while they run (tests: both are unref'd, and gone once their streams are). */
  get timers(): { readonly heartbeat: NodeJS.Timeout | null; readonly digest: NodeJS.Timeout | null } {
    return { heartbeat: this.timer, digest: this.digestTimer };
  }

  private onEvent = (event: LedgerEvent): void => {
    if (this.streams.size === 0) return;
    if (event.kind === "entry") {
      for (const group of this.groups.values()) group.add(event.entry);
      if (this.eachStreams.size === 0) return;
      const chunk = formatEvent(event);
      for (const stream of [...this.eachStreams]) stream.offer(chunk, event.entry);
      return;
    }
    const chunk = formatEvent(event);
    for (const stream of [...this.streams]) stream.send(chunk);
  };

  /** Each group's digest, if entries matched it since the last, to its streams. */
  private sendDigests = (): void => {
    for (const group of this.groups.values()) {
      const chunk = group.take();
      if (chunk === null) continue;
      for (const stream of [...group.streams]) stream.send(chunk);
    }
  };

  /** Opens a stream on `reply` (hijacked), replaying entries after `after` first when given (`each` only: a digest stream does not resume). */
  async open(request: FastifyRequest, reply: FastifyReply, filter: StreamFilter, after: number | null, mode: EntryMode = "each"): Promise<void> {
    if (this.streams.size >= this.clientsMax) throw new JamgateError("JG_ERR_HTTP_BUSY", `the event stream serves ${this.clientsMax} clients at once`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, STREAM_HEADERS);
    res.write(`retry: ${RECONNECT_MS}\n\n`);
    // A stream has no request body and may run for hours; Node's per-socket idle bound is kept (the heartbeat resets it).
    request.raw.socket.setNoDelay(true);
    let group: DigestGroup | null = null;
    if (mode === "digest") {
      const key = filterKey(filter);
      group = this.groups.get(key) ?? new DigestGroup(filter, this.digestLatestMax);
      this.groups.set(key, group);
    }
    const stream = new Stream(res, filter, group, this.queueMax, (s) => this.remove(s));
    this.streams.add(stream);
    if (group === null) this.eachStreams.add(stream);
    else group.streams.add(stream);
    this.options.onClients?.(this.streams.size);
    if (this.unsubscribe === null) this.unsubscribe = this.options.reader.subscribe(this.onEvent);
    if (this.timer === null) {
      this.timer = setInterval(() => {
        for (const s of this.streams) s.heartbeat();
      }, this.heartbeatMs);
      this.timer.unref();
    }
    if (group !== null && this.digestTimer === null) {
      this.digestTimer = setInterval(this.sendDigests, this.digestMs);
      this.digestTimer.unref();
    }
    if (after !== null && group === null) await this.resume(stream, after);
  }

  /** Replays the filter's entries newer than `after` from the index (bounded), live events held meanwhile. */
  private async resume(stream: Stream, after: number): Promise<void> {
    stream.hold();
    const found: EntryView[] = [];
    let before: number | undefined;
    let complete = false;
    try {
      const entryFilter: EntryFilter = { ...stream.filter };
      for (let calls = 0; calls < RESUME_CALLS_MAX && found.length <= EVENTS_RESUME_MAX; calls++) {
        const page = await this.options.reader.entries(entryFilter, { ...(before === undefined ? {} : { before }), limit: LIST_LIMIT_MAX });
        for (const entry of page.items) {
          if (entry.id <= after) {
            complete = true;
            break;
          }
          found.push(entry);
        }
        if (complete || page.next === null || page.next <= after + 1) {
          complete = true;
          break;
        }
        before = page.next;
      }
    } catch {
      // The index could not be read: the client reconnects (retry:) and resumes again.
      return stream.end();
    }
    if (!complete || found.length > EVENTS_RESUME_MAX) return stream.overflow();
    found.sort((a, b) => a.id - b.id);
    stream.release(found.map((entry) => formatEvent({ kind: "entry", entry })));
  }

  private remove(stream: Stream): void {
    this.streams.delete(stream);
    this.eachStreams.delete(stream);
    const group = stream.digest;
    if (group !== null) {
      group.streams.delete(stream);
      if (group.streams.size === 0) this.groups.delete(filterKey(group.filter));
      if (this.groups.size === 0 && this.digestTimer !== null) {
        clearInterval(this.digestTimer);
        this.digestTimer = null;
      }
    }
    this.options.onClients?.(this.streams.size);
    if (this.streams.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Ends every stream (the server is closing: open streams would hold its close). */
  close(): void {
    for (const stream of [...this.streams]) stream.end();
  }
}

const idInput = { type: "string", pattern: ID_PATTERN.replace("[0-9a-f]", "[0-9a-fA-F]") };
const entryIdText = { type: "string", pattern: "^[0-9]{1,15}$" };

/** Registers `GET /v1/events` on `app` (inside the ledger routes' scope: their validator and error handler apply). */
export function registerEventStream(app: FastifyInstance, options: EventStreamOptions): EventHub {
  const hub = new EventHub(options);
  app.addHook("preClose", (done) => {
    hub.close();
    done();
  });
  app.get<{
    Querystring: { service?: string; account?: string; device?: string; router?: string; interval?: number; entries?: EntryMode; after?: string };
    Headers: { "last-event-id"?: string };
  }>(
    "/v1/events",
    {
      // A HEAD would open a stream with no body to send.
      exposeHeadRoute: false,
      schema: {
        tags: ["events"],
        summary: "Live updates as Server-Sent Events: event block, entry (or entries, a digest), package or interval; data its view as JSON",
        description:
          `Entries may be filtered by service, account, device, router (Wi-Fi entries of that router) and interval. With \`entries=each\` (the default) each matching entry is an \`event: entry\` ` +
          `carrying \`id:\` (its index id), and a stream resumes after \`Last-Event-ID\` (or \`?after=\`): the entries it missed are replayed first (at most ${EVENTS_RESUME_MAX}). ` +
          `With \`entries=digest\` there are no \`entry\` events: at most once per ${ENTRY_DIGEST_MS} ms, and only when entries matching the filter arrived since the last one, ` +
          `one \`event: entries\` with data {count: the matching entries since the last digest, lastId: the newest one's id, latest: the newest ${ENTRY_DIGEST_LATEST_MAX} at most, newest first}; ` +
          `it has no \`id:\` and a digest stream does not resume (\`Last-Event-ID\` is ignored, \`after\` refused): what it missed is read from /v1/entries. ` +
          `A client that falls ${EVENTS_QUEUE_MAX} events behind gets \`event: overflow\` (data: {lastEntryId}: the newest entry it was sent, by an entry or a digest) ` +
          `and is closed: it re-fetches from /v1/entries. At most ${SSE_CLIENTS_MAX} streams at once (503 JG_ERR_HTTP_BUSY).`,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            service: { type: "string", pattern: SERVICE_NAME_PATTERN },
            account: idInput,
            device: idInput,
            router: { ...idInput, description: "Wi-Fi entries of this router (as /v1/entries?router=)." },
            interval: { type: "integer", minimum: 0, maximum: 0xffff_ffff, description: "Energy entries of this market interval." },
            entries: {
              type: "string",
              enum: [...ENTRY_MODES],
              default: "each",
              description: `each: an \`entry\` event per matching entry (resumable). digest: an \`entries\` event at most every ${ENTRY_DIGEST_MS} ms instead (not resumable).`,
            },
            after: { ...entryIdText, description: "Replay entries with a larger id first (as Last-Event-ID); `entries=each` only." },
          },
        },
        headers: { type: "object", properties: { "last-event-id": entryIdText } },
        response: {
          200: { description: "text/event-stream", content: { "text/event-stream": { schema: { type: "string" } } } },
          400: schemaRef("Error"),
          503: { ...schemaRef("Error"), description: "JG_ERR_HTTP_BUSY" },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filter: StreamFilter = {
        ...(q.service === undefined ? {} : { service: q.service }),
        ...(q.account === undefined ? {} : { account: q.account.toLowerCase() }),
        ...(q.device === undefined ? {} : { device: q.device.toLowerCase() }),
        ...(q.router === undefined ? {} : { router: q.router.toLowerCase() }),
        ...(q.interval === undefined ? {} : { interval: q.interval }),
      };
      const mode = q.entries ?? "each";
      if (mode === "digest") {
        // A digest stream has no entry ids to resume from: what it missed is read by cursor.
        if (q.after !== undefined)
          throw new JamgateError("JG_ERR_HTTP_QUERY", "after: a digest stream (entries=digest) does not resume; read /v1/entries by cursor");
        await hub.open(request, reply, filter, null, "digest");
        return;
      }
      // The header is newer than the URL's `after`: an EventSource keeps its URL and sends the last id it saw.
      const afterText = request.headers["last-event-id"] ?? q.after;
      await hub.open(request, reply, filter, afterText === undefined ? null : Number(afterText));
    },
  );
  return hub;
}
