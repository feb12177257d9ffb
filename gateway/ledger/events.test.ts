import { get, type IncomingMessage } from "node:http";
import { connect as netConnect } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { ErrorCode } from "../../devices/protocol/errors.ts";
import { buildHttp, heartbeatFor, type HttpDeps } from "../http.ts";
import type { Registrations } from "../registration.ts";
import { blockView, envelopesEntry, FakeLedger, fakeHex, intervalView, packageView, tradeEntry } from "../testing/fake-ledger.ts";
import { ENTRY_DIGEST_LATEST_MAX, ENTRY_DIGEST_MS, EVENTS_RESUME_MAX, type EventHub, type EventStreamOptions, registerEventStream } from "./events.ts";
import { sharedSchemas } from "./schemas.ts";
import type { EntryDigestView, EntryView, Hex } from "./types.ts";

const meter = fakeHex("device meter", 16);
const agent = fakeHex("device agent", 16);
const householdA = fakeHex("device household a", 16);
const cafe = fakeHex("router cafe", 16);
const library = fakeHex("router library", 16);
const wifiClient = fakeHex("wifi client", 16);

/** A wifi-billing entry: usage of a router's session, or a top-up (`router` null: an entry of no router). */
function wifiEntry(id: number, router: Hex | null): EntryView {
  return {
    ...envelopesEntry(id, wifiClient),
    service: "wifi-billing",
    serviceId: 4,
    kind: router === null ? "topup" : "usage",
    device: null,
    seqs: null,
    packageHash: null,
    amountMicros: "500",
    accounts: [wifiClient],
    reason: router === null ? "topup" : "usage",
    session: router === null ? null : fakeHex(`session ${id}`, 16),
    router,
    client: wifiClient,
    octets: "1000000000",
  };
}

interface ParsedEvent {
  readonly event: string;
  readonly id: string | null;
  readonly data: string;
}

/** A client of the event stream on a real socket: what it has read, parsed into events (complete ones) and comments. */
class StreamClient {
  text = "";
  ended = false;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly response: IncomingMessage,
    readonly body: string | null,
  ) {
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      this.text += chunk;
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    response.on("end", end);
    response.on("close", end);
    response.on("error", end);
  }

  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
    return new Promise((resolve, reject) => {
      const request = get({ host: "127.0.0.1", port, path, headers: { accept: "text/event-stream", ...headers } }, (response) => {
        if (response.statusCode === 200) return resolve(new StreamClient(response, null));
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (c: string) => (body += c));
        response.on("end", () => resolve(new StreamClient(response, body)));
      });
      request.on("error", reject);
    });
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  /** Events whose blank line has arrived, in order (comments and the `retry:` preamble left out). */
  get events(): ParsedEvent[] {
    const blocks = this.text.split("\n\n").slice(0, -1);
    const events: ParsedEvent[] = [];
    for (const block of blocks) {
      const lines = block.split("\n").filter((l) => !l.startsWith(":"));
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2) ?? null;
      const event = field("event");
      if (event !== null) events.push({ event, id: field("id"), data: field("data") ?? "" });
    }
    return events;
  }

  get heartbeats(): number {
    return this.text.split("\n").filter((l) => l.startsWith(": heartbeat")).length;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `done` holds; fails past a generous deadline (tests poll, they never sleep a fixed time). */
  async until(done: (client: this) => boolean, what: string, deadlineMs = 20_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (!done(this)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; read ${this.text.length} chars, ended ${this.ended}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.response.destroy();
  }
}

async function eventually(check: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const open: FastifyInstance[] = [];
const clients: StreamClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(open.splice(0).map((app) => app.close()));
});

interface Server {
  readonly app: FastifyInstance;
  readonly port: number;
  readonly ledger: FakeLedger;
  readonly counted: ErrorCode[];
  /** Open streams, as the hub reports them. */
  clients: number;
}

async function serve(ledger: FakeLedger, overrides: Partial<HttpDeps> = {}): Promise<Server> {
  const counted: ErrorCode[] = [];
  const server = { ledger, counted, clients: 0 } as { -readonly [K in keyof Server]: Server[K] };
  const app = buildHttp({
    operatorToken: "T",
    registrations: { view: async () => null } as unknown as Registrations,
    metrics: {} as never,
    count: (code) => counted.push(code),
    ledger,
    ...overrides,
    events: { onClients: (n) => (server.clients = n), ...overrides.events },
  });
  open.push(app);
  await app.listen({ port: 0, host: "127.0.0.1" });
  server.app = app;
  server.port = (app.server.address() as { port: number }).port;
  return server;
}

interface HubServer extends Server {
  readonly hub: EventHub;
}

/** `/v1/events` alone on a fastify of its own, so a test reaches the hub (its groups and timers) and sets its digest period. */
async function serveHub(ledger: FakeLedger, options: Partial<EventStreamOptions> = {}): Promise<HubServer> {
  const counted: ErrorCode[] = [];
  const server = { ledger, counted, clients: 0 } as { -readonly [K in keyof HubServer]: HubServer[K] };
  const app = Fastify();
  for (const schema of sharedSchemas) app.addSchema(schema);
  server.hub = registerEventStream(app, { reader: ledger, count: (code) => counted.push(code), onClients: (n) => (server.clients = n), ...options });
  open.push(app);
  await app.listen({ port: 0, host: "127.0.0.1" });
  server.app = app;
  server.port = (app.server.address() as { port: number }).port;
  return server;
}

/** The digests a stream has read, parsed. */
const digestsOf = (client: StreamClient): EntryDigestView[] =>
  client.events.filter((e) => e.event === "entries").map((e) => JSON.parse(e.data) as EntryDigestView);
/** What a digest of `matched` (ascending, all since the last digest) holds: their count, the newest id, the newest `max` newest first. */
const digestOf = (matched: readonly EntryView[], max = ENTRY_DIGEST_LATEST_MAX): EntryDigestView => ({
  count: matched.length,
  lastId: matched.at(-1)!.id,
  latest: matched.slice(-max).reverse(),
});

async function connect(server: Server, path: string, headers: Record<string, string> = {}): Promise<StreamClient> {
  const before = server.clients;
  const client = await StreamClient.open(server.port, path, headers);
  clients.push(client);
  if (client.status === 200) await eventually(() => server.clients > before, "the hub to count the stream");
  return client;
}

describe("GET /v1/events", () => {
  it("streams blocks, packages, intervals and the filter's entries, entries with their id", async () => {
    const ledger = new FakeLedger();
    const server = await serve(ledger);
    const all = await connect(server, "/v1/events");
    const mine = await connect(server, `/v1/events?device=${meter.toUpperCase()}`);
    const trades = await connect(server, `/v1/events?account=${householdA}&service=energy-trading`);
    expect(all.response.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(all.response.headers["cache-control"]).toContain("no-cache");
    ledger.addBlock(blockView(1));
    ledger.addEntry(envelopesEntry(0, meter));
    ledger.addEntry(envelopesEntry(1, agent));
    ledger.addEntry(tradeEntry(2, householdA, fakeHex("device household b", 16)));
    ledger.addPackage(packageView(3));
    ledger.addInterval(intervalView(7));
    await all.until((c) => c.events.length === 6, "six events");
    expect(all.events.map((e) => [e.event, e.id])).toEqual([
      ["block", null],
      ["entry", "0"],
      ["entry", "1"],
      ["entry", "2"],
      ["package", null],
      ["interval", null],
    ]);
    expect(JSON.parse(all.events[0]!.data)).toEqual(blockView(1));
    expect(JSON.parse(all.events[1]!.data)).toEqual(envelopesEntry(0, meter));
    await mine.until((c) => c.events.length === 4, "four events");
    expect(mine.events.map((e) => [e.event, e.id])).toEqual([
      ["block", null],
      ["entry", "0"],
      ["package", null],
      ["interval", null],
    ]);
    await trades.until((c) => c.events.length === 4, "four events");
    expect(trades.events.filter((e) => e.event === "entry").map((e) => e.id)).toEqual(["2"]);
  });

  it("router filter: a stream gets that router's Wi-Fi entries only (an id in any case), not another router's, a top-up or other services' entries; a bad id is refused", async () => {
    const ledger = new FakeLedger();
    const server = await serve(ledger);
    const cafes = await connect(server, `/v1/events?router=${cafe.toUpperCase()}`);
    const cafeUsage = await connect(server, `/v1/events?router=${cafe}&service=wifi-billing&account=${wifiClient}`);
    const all = await connect(server, "/v1/events");
    const sent = [
      wifiEntry(0, cafe),
      wifiEntry(1, library),
      wifiEntry(2, null),
      envelopesEntry(3, meter),
      tradeEntry(4, householdA, agent),
      wifiEntry(5, cafe),
    ];
    for (const entry of sent) ledger.addEntry(entry);
    ledger.addBlock(blockView(1));
    await all.until((c) => c.events.length === 7, "every entry and the block");
    for (const client of [cafes, cafeUsage]) {
      await client.until((c) => c.events.some((e) => e.event === "block"), "the block");
      expect(client.events.map((e) => [e.event, e.id])).toEqual([
        ["entry", "0"],
        ["entry", "5"],
        ["block", null],
      ]);
      expect(JSON.parse(client.events[1]!.data)).toEqual(sent[5]);
    }
    for (const url of [`/v1/events?router=${cafe.slice(2)}`, "/v1/events?router=not-a-router", `/v1/events?router=${cafe}&entries=digest&after=1`]) {
      const refused = await server.app.inject({ method: "GET", url });
      expect(refused.statusCode, url).toBe(400);
      expect(refused.json().error.code, url).toBe("JG_ERR_HTTP_QUERY");
    }
  });

  it("resumes after Last-Event-ID (or ?after=): the missed entries first, then live ones, each once", async () => {
    const ledger = new FakeLedger();
    for (let id = 0; id < 20; id++) ledger.addEntry(envelopesEntry(id, id % 2 ? meter : agent));
    // An entry is appended while the resume reads the index: it comes live and in the page both.
    const entries = ledger.entries.bind(ledger);
    let arrivals = 0;
    ledger.entries = async (filter, page) => {
      if (arrivals++ === 0) ledger.addEntry(envelopesEntry(ledger.entryList.length, meter));
      return entries(filter, page);
    };
    const server = await serve(ledger);
    const resumed = await connect(server, "/v1/events", { "last-event-id": "14" });
    await resumed.until((c) => c.events.length === 6, "the replay");
    ledger.addEntry(envelopesEntry(21, meter));
    await resumed.until((c) => c.events.length === 7, "a live entry");
    expect(resumed.events.map((e) => e.id)).toEqual(["15", "16", "17", "18", "19", "20", "21"]);
    // ?after= with a filter; the header wins over the URL's `after` (an EventSource keeps its URL).
    const filtered = await connect(server, `/v1/events?device=${meter}&after=3`, { "last-event-id": "9" });
    await filtered.until((c) => c.events.length === 7, "the filtered replay");
    expect(filtered.events.map((e) => e.id)).toEqual(["11", "13", "15", "17", "19", "20", "21"]);
  });

  it("a resume further back than EVENTS_RESUME_MAX entries is told `overflow` and closed", async () => {
    const ledger = new FakeLedger();
    for (let id = 0; id < EVENTS_RESUME_MAX + 10; id++) ledger.addEntry(envelopesEntry(id, meter));
    const server = await serve(ledger);
    const client = await StreamClient.open(server.port, "/v1/events?after=2");
    clients.push(client);
    await client.until((c) => c.ended, "the stream to end");
    expect(client.events.map((e) => e.event)).toEqual(["overflow"]);
    expect(JSON.parse(client.events[0]!.data)).toEqual({ lastEntryId: null });
    const recent = await connect(server, `/v1/events?after=${EVENTS_RESUME_MAX}`);
    await recent.until((c) => c.events.length === 9, "a short replay");
    expect(recent.ended).toBe(false);
  });

  it("a client that stops reading gets `overflow` past its queue and is closed; a reading client gets every event", async () => {
    const ledger = new FakeLedger();
    const queueMax = 8;
    const server = await serve(ledger, { events: { queueMax } });
    const reader = await connect(server, "/v1/events");
    const stalled = await connect(server, "/v1/events");
    stalled.response.pause();
    // Entries of ~20 KB (many accounts), so the socket's buffers fill after a few hundred.
    const accounts = Array.from({ length: 600 }, (_, i) => fakeHex(`account ${i}`, 16));
    let sent = 0;
    for (let batch = 0; server.clients === 2; batch++) {
      if (batch > 20_000) throw new Error("the stalled client was never closed");
      for (let i = 0; i < queueMax / 2; i++) ledger.addEntry(envelopesEntry(sent++, meter, { accounts }));
      await reader.until((c) => c.events.length === sent, "the reading client to keep up");
    }
    expect(server.clients).toBe(1);
    expect(reader.ended).toBe(false);
    stalled.response.resume();
    await stalled.until((c) => c.ended, "the stalled stream's end");
    const got = stalled.events;
    const last = got.at(-1)!;
    expect(last.event).toBe("overflow");
    const entryIds = got.slice(0, -1).map((e) => Number(e.id));
    // What it got is the stream's head, without a gap, and the overflow names the last of it.
    expect(entryIds).toEqual(Array.from({ length: entryIds.length }, (_, i) => i));
    expect(JSON.parse(last.data)).toEqual({ lastEntryId: entryIds.at(-1) });
    expect(entryIds.length).toBeLessThan(sent - queueMax);
    ledger.addEntry(envelopesEntry(sent++, meter));
    await reader.until((c) => c.events.length === sent, "the reading client's next event");
  });

  it("past clientsMax streams: 503 JG_ERR_HTTP_BUSY, counted; a closed stream frees its place", async () => {
    const ledger = new FakeLedger();
    const server = await serve(ledger, { events: { clientsMax: 2 } });
    const first = await connect(server, "/v1/events");
    await connect(server, "/v1/events");
    const refused = await connect(server, "/v1/events");
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body!).error.code).toBe("JG_ERR_HTTP_BUSY");
    expect(server.counted).toEqual(["JG_ERR_HTTP_BUSY"]);
    first.close();
    await eventually(() => server.clients === 1, "the closed stream to leave");
    const again = await connect(server, "/v1/events");
    expect(again.status).toBe(200);
    expect(ledger.subscribers).toBe(1);
    // A HEAD opens no stream (it would hold a place with nothing to send).
    expect((await server.app.inject({ method: "HEAD", url: "/v1/events" })).statusCode).toBe(404);
    expect(server.clients).toBe(2);
  });

  it("a quiet stream outlives the server's idle-socket bound: heartbeats keep it, and events still arrive", async () => {
    const ledger = new FakeLedger();
    const idleSocketTimeoutMs = 1_000;
    const limits = { idleSocketTimeoutMs, requestTimeoutMs: 1_000, headersTimeoutMs: 1_000, keepAliveTimeoutMs: 500 };
    expect(heartbeatFor(idleSocketTimeoutMs)).toBe(333);
    const server = await serve(ledger, { limits });
    const client = await connect(server, "/v1/events");
    // Six heartbeats: two seconds, twice the idle bound, without an event.
    await client.until((c) => c.heartbeats >= 6 || c.ended, "six heartbeats");
    expect(client.ended).toBe(false);
    ledger.addBlock(blockView(1));
    await client.until((c) => c.events.length === 1, "an event after the quiet");
    expect(client.ended).toBe(false);
    // The bound still applies to an ordinary idle socket of the same server.
    const idle = await new Promise<boolean>((resolve) => {
      const socket = netConnect(server.port, "127.0.0.1");
      socket.on("close", () => resolve(true));
      socket.on("error", () => resolve(true));
    });
    expect(idle).toBe(true);
  });

  it("closing the server ends open streams (they do not hold it open)", async () => {
    const ledger = new FakeLedger();
    const server = await serve(ledger);
    const client = await connect(server, "/v1/events");
    await server.app.close();
    open.splice(open.indexOf(server.app), 1);
    await client.until((c) => c.ended, "the stream's end");
    expect(ledger.subscribers).toBe(0);
  });
});

describe("GET /v1/events?entries=digest", () => {
  it("a burst of 1,000 entries is one `entries` event per filter: the count, the newest id and the newest ENTRY_DIGEST_LATEST_MAX, newest first; no `entry` events", async () => {
    const ledger = new FakeLedger();
    const server = await serveHub(ledger, { digestMs: 100 });
    const all = await connect(server, "/v1/events?entries=digest");
    const mine = await connect(server, `/v1/events?entries=digest&device=${meter.toUpperCase()}`);
    const trades = await connect(server, `/v1/events?entries=digest&account=${householdA}&service=energy-trading`);
    const each = await connect(server, "/v1/events");
    // Equal filters share one digest group: the unfiltered and the three filtered.
    const again = await connect(server, "/v1/events?entries=digest");
    expect(server.hub.digestGroups).toBe(3);
    const burst: EntryView[] = [];
    for (let id = 0; id < 1_000; id++) {
      const entry = id % 10 === 3 ? tradeEntry(id, householdA, fakeHex("device household b", 16)) : envelopesEntry(id, id % 4 === 0 ? meter : agent);
      burst.push(ledger.addEntry(entry));
    }
    await all.until((c) => digestsOf(c).length === 1, "the burst's digest");
    expect(digestsOf(all)).toEqual([digestOf(burst)]);
    expect(digestsOf(all)[0]!.latest.map((e) => e.id)).toEqual(Array.from({ length: ENTRY_DIGEST_LATEST_MAX }, (_, i) => 999 - i));
    await mine.until((c) => digestsOf(c).length === 1, "the device's digest");
    expect(digestsOf(mine)).toEqual([digestOf(burst.filter((e) => e.device === meter))]);
    await trades.until((c) => digestsOf(c).length === 1, "the account's digest");
    expect(digestsOf(trades)).toEqual([digestOf(burst.filter((e) => e.accounts.includes(householdA)))]);
    await again.until((c) => digestsOf(c).length === 1, "the second unfiltered stream's digest");
    expect(again.text).toBe(all.text);
    for (const client of [all, mine, trades, again]) {
      expect(client.events.map((e) => e.event)).toEqual(["entries"]);
      // No `id:`: a digest stream has nothing to resume from.
      expect(client.events[0]!.id).toBeNull();
    }
    // The `each` stream beside them is as before: every entry, in order, with its id.
    await each.until((c) => c.events.length === 1_000, "every entry");
    expect(each.events.every((e) => e.event === "entry")).toBe(true);
    expect(each.events.map((e) => Number(e.id))).toEqual(burst.map((e) => e.id));

    // One entry more: the next digest counts it alone (nothing of the burst again, no empty digest between).
    const next = ledger.addEntry(envelopesEntry(1_000, meter));
    await all.until((c) => digestsOf(c).length === 2, "the next digest");
    expect(digestsOf(all)[1]).toEqual(digestOf([next]));
    await mine.until((c) => digestsOf(c).length === 2, "the device's next digest");
    expect(digestsOf(mine)[1]).toEqual(digestOf([next]));
    // A block sent after that tick reaches the account's stream after anything the tick sent it: no digest, none matched.
    ledger.addBlock(blockView(1));
    await trades.until((c) => c.events.length === 2, "the block");
    expect(trades.events.map((e) => e.event)).toEqual(["entries", "block"]);
    await all.until((c) => c.events.length === 3, "the block");
    expect(all.events.map((e) => e.event)).toEqual(["entries", "entries", "block"]);
  });

  it("router filter: a router's digest counts and carries its Wi-Fi entries only; routers' filters are groups of their own", async () => {
    const ledger = new FakeLedger();
    const server = await serveHub(ledger, { digestMs: 100 });
    const cafes = await connect(server, `/v1/events?entries=digest&router=${cafe}`);
    const cafesAgain = await connect(server, `/v1/events?entries=digest&router=${cafe.toUpperCase()}`);
    const libraries = await connect(server, `/v1/events?entries=digest&router=${library}&service=wifi-billing`);
    const wifi = await connect(server, "/v1/events?entries=digest&service=wifi-billing");
    // The cafe's two streams (the id lowercased) share a group; the library's and the service's are others.
    expect(server.hub.digestGroups).toBe(3);
    const burst: EntryView[] = [];
    for (let id = 0; id < 300; id++)
      burst.push(ledger.addEntry(id % 3 === 0 ? wifiEntry(id, cafe) : id % 3 === 1 ? wifiEntry(id, id % 2 ? library : null) : envelopesEntry(id, meter)));
    await cafes.until((c) => digestsOf(c).length === 1, "the cafe's digest");
    expect(digestsOf(cafes)).toEqual([digestOf(burst.filter((e) => e.router === cafe))]);
    expect(digestsOf(cafes)[0]!.count).toBe(100);
    await cafesAgain.until((c) => digestsOf(c).length === 1, "the second cafe stream's digest");
    expect(cafesAgain.text).toBe(cafes.text);
    await libraries.until((c) => digestsOf(c).length === 1, "the library's digest");
    expect(digestsOf(libraries)).toEqual([digestOf(burst.filter((e) => e.router === library))]);
    expect(digestsOf(libraries)[0]!.latest.every((e) => e.router === library)).toBe(true);
    await wifi.until((c) => digestsOf(c).length === 1, "the service's digest");
    expect(digestsOf(wifi)[0]!.count).toBe(200);
  });

  it("entries arriving over many ticks: at most one digest a tick, counting every entry once, newest first", async () => {
    const ledger = new FakeLedger();
    const digestMs = 50;
    const server = await serveHub(ledger, { digestMs, digestLatestMax: 4 });
    const client = await connect(server, "/v1/events?entries=digest");
    const startedMs = Date.now();
    for (let id = 0; id < 60; id++) {
      ledger.addEntry(envelopesEntry(id, meter));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await client.until((c) => digestsOf(c).reduce((n, d) => n + d.count, 0) === 60, "every entry counted");
    const elapsedMs = Date.now() - startedMs;
    const digests = digestsOf(client);
    expect(digests.length).toBeGreaterThan(1);
    // The timer never fires more often than its period.
    expect(digests.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / digestMs) + 1);
    let last = -1;
    for (const digest of digests) {
      const ids = Array.from({ length: digest.count }, (_, i) => last + 1 + i);
      expect(digest).toEqual(
        digestOf(
          ids.map((id) => ledger.entryList[id]!),
          4,
        ),
      );
      last = digest.lastId;
    }
  });

  it("interval filter; Last-Event-ID is ignored and `after` refused (400 JG_ERR_HTTP_QUERY); an unknown mode is refused; through the ledger routes at the default period", async () => {
    const ledger = new FakeLedger();
    for (let id = 0; id < 10; id++) ledger.addEntry(envelopesEntry(id, meter));
    const server = await serve(ledger);
    for (const url of ["/v1/events?entries=digest&after=3", "/v1/events?entries=sometimes", "/v1/events?entries=digest&interval=-1"]) {
      const refused = await server.app.inject({ method: "GET", url });
      expect(refused.statusCode, url).toBe(400);
      expect(refused.json().error.code, url).toBe("JG_ERR_HTTP_QUERY");
    }
    expect(server.counted).toEqual(["JG_ERR_HTTP_QUERY", "JG_ERR_HTTP_QUERY", "JG_ERR_HTTP_QUERY"]);
    // The hub's digest timer starts with the first digest stream, so no digest can come before a period has passed since.
    const startedMs = Date.now();
    const resumed = await connect(server, "/v1/events?entries=digest", { "last-event-id": "4" });
    const interval = await connect(server, "/v1/events?entries=digest&interval=8");
    const trades = [tradeEntry(10, householdA, agent), tradeEntry(11, householdA, agent, { interval: 8 }), tradeEntry(12, householdA, agent, { interval: 8 })];
    for (const entry of trades) ledger.addEntry(entry);
    await interval.until((c) => digestsOf(c).length === 1, "the interval's digest");
    expect(digestsOf(interval)).toEqual([digestOf(trades.slice(1))]);
    await resumed.until((c) => c.events.length === 1, "the digest");
    // Nothing replayed: the first event is the digest of what came live.
    expect(resumed.events.map((e) => e.event)).toEqual(["entries"]);
    expect(digestsOf(resumed)).toEqual([digestOf(trades)]);
    // At the default period (a millisecond's leeway between the timers' clock and Date.now).
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(ENTRY_DIGEST_MS - 1);
  });

  it("the digest timer runs (unref'd) while a digest stream is open and is cleared with the last; groups go with their streams", async () => {
    const ledger = new FakeLedger();
    const server = await serveHub(ledger, { digestMs: 50 });
    expect(server.hub.timers).toEqual({ heartbeat: null, digest: null });
    const each = await connect(server, "/v1/events");
    expect(server.hub.timers.digest).toBeNull();
    const all = await connect(server, "/v1/events?entries=digest");
    const mine = await connect(server, `/v1/events?entries=digest&device=${meter}`);
    const digest = server.hub.timers.digest;
    expect(digest).not.toBeNull();
    // It never keeps the process alive on its own.
    expect(digest!.hasRef()).toBe(false);
    expect(server.hub.timers.heartbeat!.hasRef()).toBe(false);
    expect(server.hub.digestGroups).toBe(2);
    all.close();
    await eventually(() => server.clients === 2, "the stream to leave");
    expect(server.hub.digestGroups).toBe(1);
    expect(server.hub.timers.digest).toBe(digest);
    mine.close();
    await eventually(() => server.clients === 1, "the last digest stream to leave");
    expect(server.hub.digestGroups).toBe(0);
    expect(server.hub.timers.digest).toBeNull();
    // The `each` stream goes on as before.
    ledger.addEntry(envelopesEntry(0, meter));
    await each.until((c) => c.events.length === 1, "the entry");
    expect(each.events[0]!.event).toBe("entry");
    each.close();
    await eventually(() => server.clients === 0, "every stream to leave");
    expect(server.hub.timers).toEqual({ heartbeat: null, digest: null });
    expect(ledger.subscribers).toBe(0);
    // Closing the server ends digest streams and clears the timer too.
    const last = await connect(server, "/v1/events?entries=digest");
    expect(server.hub.timers.digest).not.toBeNull();
    await server.app.close();
    open.splice(open.indexOf(server.app), 1);
    await last.until((c) => c.ended, "the stream's end");
    expect(server.hub.timers).toEqual({ heartbeat: null, digest: null });
    expect(server.hub.digestGroups).toBe(0);
  });
});
