/**
 * `GET /v1/events`: the ledger's live updates as Server-Sent Events (WHATWG HTML §9.2, "Server-sent
 * events"), fed by `LedgerReader.subscribe`. Each event is `event: block|entry|package|interval`,
 * `data:` its view as JSON; entries carry `id:` (their index id), so a browser's EventSource that
 * reconnects sends `Last-Event-ID` and the stream replays the entries it missed from the index.
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
import { type ErrorCode, JamgateError } from "../../node/errors.ts";
import { ID_PATTERN, SERVICE_NAME_PATTERN, schemaRef } from "./schemas.ts";
import { type EntryFilter, type EntryView, type LedgerEvent, type LedgerReader, LIST_LIMIT_MAX } from "./types.ts";

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
/** `entries` calls a resume makes at most (each scans at most ENTRY_SCAN_MAX): bounds its work when a filter matches rarely. */
const RESUME_CALLS_MAX = 8;
/** What an EventSource waits before reconnecting (the `retry:` field), ms. */
const RECONNECT_MS = 3_000;

export interface EventStreamOptions {
  readonly reader: LedgerReader;
  readonly count: (code: ErrorCode) => void;
  /** Overrides (tests): SSE_CLIENTS_MAX, EVENTS_QUEUE_MAX, SSE_HEARTBEAT_MS. */
  readonly clientsMax?: number;
  readonly queueMax?: number;
  readonly heartbeatMs?: number;
  /** Told the number of open streams whenever it changes (a gauge for metrics; tests watch it). */
  readonly onClients?: (clients: number) => void;
}

interface Chunk {
  /** The event's stream text, UTF-8 encoded once for every stream. */
  readonly bytes: Buffer;
  /** The entry's id for entry events: resumes and duplicates are judged by it. */
  readonly entryId: number | null;
}

interface StreamFilter {
  readonly service?: string;
  readonly account?: string;
  readonly device?: string;
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
  const chunk = (text: string, entryId: number | null): Chunk => ({ bytes: Buffer.from(text, "utf8"), entryId });
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

function matches(filter: StreamFilter, entry: EntryView): boolean {
  if (filter.service !== undefined && entry.service !== filter.service) return false;
  if (filter.device !== undefined && entry.device !== filter.device) return false;
  if (filter.account !== undefined && !entry.accounts.includes(filter.account)) return false;
  return true;
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
      for (const chunk of batch) if (chunk.entryId !== null) this.sentEntryId = chunk.entryId;
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

/** The hub: one subscription to the reader while any stream is open, each event serialized once and offered to every stream. */
export class EventHub {
  private readonly streams = new Set<Stream>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  readonly clientsMax: number;
  readonly queueMax: number;
  readonly heartbeatMs: number;

  constructor(private readonly options: EventStreamOptions) {
    this.clientsMax = options.clientsMax ?? SSE_CLIENTS_MAX;
    this.queueMax = options.queueMax ?? EVENTS_QUEUE_MAX;
    this.heartbeatMs = options.heartbeatMs ?? SSE_HEARTBEAT_MS;
  }

  get clients(): number {
    return this.streams.size;
  }

  private onEvent = (event: LedgerEvent): void => {
    if (this.streams.size === 0) return;
    const chunk = formatEvent(event);
    const entry = event.kind === "entry" ? event.entry : null;
    for (const stream of [...this.streams]) stream.offer(chunk, entry);
  };

  /** Opens a stream on `reply` (hijacked), replaying entries after `after` first when given. */
  async open(request: FastifyRequest, reply: FastifyReply, filter: StreamFilter, after: number | null): Promise<void> {
    if (this.streams.size >= this.clientsMax) throw new JamgateError("JG_ERR_HTTP_BUSY", `the event stream serves ${this.clientsMax} clients at once`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, STREAM_HEADERS);
    res.write(`retry: ${RECONNECT_MS}\n\n`);
    // A stream has no request body and may run for hours; Node's per-socket idle bound is kept (the heartbeat resets it).
    request.raw.socket.setNoDelay(true);
    const stream = new Stream(res, filter, this.queueMax, (s) => this.remove(s));
    this.streams.add(stream);
    this.options.onClients?.(this.streams.size);
    if (this.unsubscribe === null) this.unsubscribe = this.options.reader.subscribe(this.onEvent);
    if (this.timer === null) {
      this.timer = setInterval(() => {
        for (const s of this.streams) s.heartbeat();
      }, this.heartbeatMs);
      this.timer.unref();
    }
    if (after !== null) await this.resume(stream, after);
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
  app.get<{ Querystring: { service?: string; account?: string; device?: string; after?: string }; Headers: { "last-event-id"?: string } }>(
    "/v1/events",
    {
      // A HEAD would open a stream with no body to send.
      exposeHeadRoute: false,
      schema: {
        tags: ["events"],
        summary: "Live updates as Server-Sent Events: event block, entry, package or interval; data its view as JSON",
        description:
          `Entries carry \`id:\` (their index id) and may be filtered by service, account and device. A stream resumes after \`Last-Event-ID\` (or \`?after=\`): ` +
          `the entries it missed are replayed first (at most ${EVENTS_RESUME_MAX}). A client that falls ${EVENTS_QUEUE_MAX} events behind gets \`event: overflow\` ` +
          `(data: {lastEntryId}) and is closed: it re-fetches from /v1/entries. At most ${SSE_CLIENTS_MAX} streams at once (503 JG_ERR_HTTP_BUSY).`,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            service: { type: "string", pattern: SERVICE_NAME_PATTERN },
            account: idInput,
            device: idInput,
            after: { ...entryIdText, description: "Replay entries with a larger id first (as Last-Event-ID)." },
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
      };
      // The header is newer than the URL's `after`: an EventSource keeps its URL and sends the last id it saw.
      const afterText = request.headers["last-event-id"] ?? q.after;
      await hub.open(request, reply, filter, afterText === undefined ? null : Number(afterText));
    },
  );
  return hub;
}
