import { get, type IncomingMessage } from "node:http";
import { connect as netConnect } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { ErrorCode } from "../../node/errors.ts";
import { buildHttp, heartbeatFor, type HttpDeps } from "../http.ts";
import type { Registrations } from "../registration.ts";
import { blockView, envelopesEntry, FakeLedger, fakeHex, intervalView, packageView, tradeEntry } from "../testing/fake-ledger.ts";
import { EVENTS_RESUME_MAX } from "./events.ts";

const meter = fakeHex("device meter", 16);
const agent = fakeHex("device agent", 16);
const householdA = fakeHex("device household a", 16);

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
