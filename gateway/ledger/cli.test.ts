/**
 * `jamgate ledger`: its table's units and exact amounts, its filters on streamed entries, and
 * `--follow` across dropped streams against a stand-in API (a real `jamgate start` is driven in
 * gateway/client-commands.test.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { formatMicros, formatRow, formatSeqs, matches, parseTimeFlag, registerLedgerCommand } from "./cli.ts";
import { type EntryView, NO_ENERGY_FIELDS } from "./types.ts";

const A = "a1".repeat(16);
const B = "b2".repeat(16);

function entry(id: number, fields: Partial<EntryView> = {}): EntryView {
  return {
    id,
    service: "telemetry",
    serviceId: 2,
    kind: "envelopes",
    slot: 10 + id,
    blockHash: "cc".repeat(32),
    timeMs: Date.UTC(2026, 0, 2, 3, 4, 5) + id * 1000,
    device: A,
    seqs: [0, 1, 2, 5],
    packageHash: "dd".repeat(32),
    ...NO_ENERGY_FIELDS,
    accounts: [],
    ...fields,
  };
}

const trade = (id: number, fields: Partial<EntryView> = {}) =>
  entry(id, {
    service: "energy-trading",
    serviceId: 3,
    kind: "trade",
    device: null,
    seqs: null,
    packageHash: null,
    interval: 7,
    index: 0,
    buyer: A,
    seller: B,
    energyWh: 1500,
    priceMicrosPerKwh: 250_000,
    amountMicros: "375000",
    accounts: [A, B],
    ...fields,
  });

describe("ledger output", () => {
  it("prints money exactly: micro-units as given, or moved to a decimal of the currency without a float", () => {
    expect(formatMicros("1234567", undefined)).toBe("1234567 µ");
    expect(formatMicros("1234567", "EUR")).toBe("1.234567 EUR");
    expect(formatMicros("-5", "EUR")).toBe("-0.000005 EUR");
    expect(formatMicros("0", "EUR")).toBe("0.000000 EUR");
    expect(formatMicros("250000", "EUR", "/kWh")).toBe("0.250000 EUR/kWh");
    // Past 2^53: a float would round the last digits.
    expect(formatMicros("123456789012345678901", "EUR")).toBe("123456789012345.678901 EUR");
  });

  it("writes seqs as ranges", () => {
    expect(formatSeqs([])).toBe("");
    expect(formatSeqs([0, 1, 2, 5, 7, 8])).toBe("0-2,5,7-8");
  });

  it("shows an envelopes entry's device and seqs, and a trade's parties, energy, price and amount with units", () => {
    const envelopes = formatRow(entry(3), {});
    expect(envelopes).toMatch(/^\s+3 {2}2026-01-02T03:04:08Z\s+13 {2}telemetry\s+envelopes\s+a1a1a1a1a1a1…\s+seqs 0-2,5 {2}package dddddddddddd…$/);
    expect(formatRow(trade(4), {})).toMatch(/energy-trading\s+trade\s+b2b2b2b2b2b2… → a1a1a1a1a1a1…\s+1500 Wh @ 250000 µ\/kWh = 375000 µ \(interval 7\)$/);
    const wide = formatRow(trade(4, { seller: "grid", kind: "grid-import" }), { currency: "EUR", wide: true });
    expect(wide).toContain(`grid → ${A}`);
    expect(wide).toMatch(/1500 Wh @ 0\.250000 EUR\/kWh = 0\.375000 EUR \(interval 7\)$/);
    // Columns line up with the header whatever the row.
    const header = formatRow(null, {});
    expect(envelopes.indexOf("telemetry")).toBe(header.indexOf("SERVICE"));
    expect(formatRow(trade(123456), {}).indexOf("trade")).toBe(header.indexOf("KIND"));
  });

  it("reads --since as ISO-8601, Unix ms or an age", () => {
    const now = Date.UTC(2026, 0, 2, 12);
    expect(parseTimeFlag("2026-01-02T10:00:00Z", now)).toBe(Date.UTC(2026, 0, 2, 10));
    expect(parseTimeFlag("1700000000000", now)).toBe(1_700_000_000_000);
    expect(parseTimeFlag("15m", now)).toBe(now - 15 * 60_000);
    expect(parseTimeFlag("2h", now)).toBe(now - 2 * 3_600_000);
    for (const bad of ["yesterday", "15x", "", "2026-13-45"]) expect(() => parseTimeFlag(bad, now), bad).toThrow(/JG_ERR_CLI_ARGUMENT/);
  });

  it("filters streamed entries as the API filters pages", () => {
    expect(matches(trade(1), { service: "energy-trading", account: B })).toBe(true);
    expect(matches(trade(1), { service: "telemetry" })).toBe(false);
    expect(matches(trade(1), { account: "ee".repeat(16) })).toBe(false);
    expect(matches(entry(1), { device: A })).toBe(true);
    expect(matches(entry(1), { device: B })).toBe(false);
    expect(matches(entry(1), { sinceMs: entry(1).timeMs + 1 })).toBe(false);
    expect(matches(entry(1), { untilMs: entry(1).timeMs })).toBe(true);
  });
});

describe("jamgate ledger --follow", () => {
  let stdout: string[];
  let stderr: string[];
  const closers: (() => Promise<void>)[] = [];
  beforeEach(() => {
    stdout = [];
    stderr = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void stdout.push(line));
    vi.spyOn(process.stderr, "write").mockImplementation((text) => (stderr.push(String(text)), true));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of closers.splice(0)) await close();
  });

  /** A stand-in for the gateway's ledger API: `/v1/entries` pages from `ledger`, `/v1/events` as `onStream` says. */
  async function api(
    ledger: EntryView[],
    onStream: (n: number, request: IncomingMessage, response: ServerResponse) => void,
    currency?: string,
  ): Promise<string> {
    let streams = 0;
    const server = createServer((request, response) => {
      const url = new URL(request.url!, "http://x");
      if (url.pathname === "/v1/events") return onStream(++streams, request, response);
      if (url.pathname === "/v1/dashboard/config" && currency !== undefined)
        return void response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ currency, coresCount: 2 }));
      if (url.pathname !== "/v1/entries") return void response.writeHead(404).end();
      const before = url.searchParams.get("before");
      const service = url.searchParams.get("service");
      const limit = Number(url.searchParams.get("limit"));
      const older = ledger.filter((e) => before === null || e.id < Number(before)).sort((a, b) => b.id - a.id);
      // As the index does: a bounded scan (here 2 entries) per page, `next` where it stopped.
      const scanned = older.slice(0, 2);
      const items = scanned.filter((e) => service === null || e.service === service).slice(0, limit);
      const next = older.length > scanned.length ? scanned.at(-1)!.id : null;
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ items, next }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const sse = (response: ServerResponse, e: EntryView) => response.write(`event: entry\nid: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`);

  it("prints each matching entry once, in order, across a dropped stream, an overflow and a busy answer, catching up what it missed", async () => {
    const ledger = [entry(0), trade(1), trade(2, { kind: "grid-import", seller: "grid", accounts: [A] })];
    const lastEventIds: (string | undefined)[] = [];
    const streamUrls: string[] = [];
    const url = await api(ledger, (n, request, response) => {
      lastEventIds.push(request.headers["last-event-id"] as string | undefined);
      streamUrls.push(request.url!);
      if (n === 1) {
        response.writeHead(200, { "content-type": "text/event-stream" });
        response.write(": connected\n\nevent: block\ndata: {}\n\n");
        ledger.push(trade(3), entry(4));
        sse(response, ledger[3]!);
        sse(response, ledger[4]!);
        response.end(); // dropped
      } else if (n === 2) {
        // Two entries settled while the client was away.
        ledger.push(trade(5), entry(6));
        response.writeHead(200, { "content-type": "text/event-stream" });
        sse(response, ledger[3]!); // an entry printed already (a server replaying from an older id): not again
        ledger.push(trade(7));
        sse(response, ledger[7]!);
        setTimeout(() => response.end("event: overflow\ndata: {}\n\n"), 50);
      } else if (n === 3) {
        response.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "JG_ERR_HTTP_BUSY", message: "busy" } }));
      } else {
        response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "JG_ERR_NOT_FOUND", message: "no route" } }));
      }
    });
    const program = new Command("jamgate").exitOverride();
    registerLedgerCommand(program);
    await expect(
      program.parseAsync(["ledger", "--http", url, "--service", "energy", "--json", "--limit", "5", "--follow"], { from: "user" }),
    ).rejects.toMatchObject({ code: "JG_ERR_NOT_FOUND" });

    expect(stdout.map((line) => (JSON.parse(line) as EntryView).id)).toEqual([1, 2, 3, 5, 7]);
    expect(JSON.parse(stdout[1]!)).toEqual(ledger[2]);
    // Each reconnection names the newest entry seen, matching the filter or not.
    expect(lastEventIds).toEqual(["2", "4", "7", "7"]);
    // The stream is asked for the service's entries only (the gateway filters it too).
    expect(new Set(streamUrls)).toEqual(new Set(["/v1/events?service=energy-trading"]));
    expect(stderr.join("")).toMatch(/overflow/);
    expect(stderr.join("")).toMatch(/answered 503/);
  }, 30_000);

  it("--router --follow asks the stream for the router's entries (the gateway filters them) and prints those", async () => {
    const router = "e5".repeat(16);
    const usage = (id: number) =>
      entry(id, {
        service: "wifi-billing",
        serviceId: 4,
        kind: "usage",
        device: null,
        seqs: null,
        packageHash: null,
        accounts: [B],
        router,
        reason: "usage",
        octets: "1000",
      });
    const ledger = [entry(0)];
    const streamUrls: string[] = [];
    const url = await api(ledger, (n, request, response) => {
      streamUrls.push(request.url!);
      if (n > 1)
        return void response
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { code: "JG_ERR_NOT_FOUND", message: "no route" } }));
      response.writeHead(200, { "content-type": "text/event-stream" });
      ledger.push(usage(1), usage(2));
      sse(response, ledger[1]!);
      sse(response, ledger[2]!);
      setTimeout(() => response.end(), 50);
    });
    const program = new Command("jamgate").exitOverride();
    registerLedgerCommand(program);
    await expect(
      program.parseAsync(["ledger", "--http", url, "--router", router.toUpperCase(), "--json", "--limit", "0", "--follow"], { from: "user" }),
    ).rejects.toMatchObject({ code: "JG_ERR_NOT_FOUND" });
    expect(new Set(streamUrls)).toEqual(new Set([`/v1/events?router=${router}`]));
    expect(stdout.map((line) => (JSON.parse(line) as EntryView).id)).toEqual([1, 2]);
  }, 30_000);

  it("lists the newest --limit entries oldest first, paging through the API's bounded scans, as a table", async () => {
    const ledger = Array.from({ length: 9 }, (_, i) => (i % 3 === 0 ? entry(i) : trade(i)));
    const url = await api(ledger, (_n, _request, response) => response.writeHead(404).end());
    const program = new Command("jamgate").exitOverride();
    registerLedgerCommand(program);
    await program.parseAsync(["ledger", "--http", url, "--service", "energy-trading", "--limit", "4", "--currency", "EUR"], { from: "user" });
    expect(stdout[0]).toMatch(/^\s+ID {2}TIME \(UTC\)\s+SLOT {2}SERVICE/);
    expect(stdout.slice(1).map((line) => Number(line.trim().split(/\s+/)[0]))).toEqual([4, 5, 7, 8]);
    expect(stdout[1]).toContain("= 0.375000 EUR");
  });

  it("shows money in the gateway's currency unless told --currency or --micros; micro-units from a gateway that names none", async () => {
    const ledger = [trade(1)];
    const withLabel = await api(ledger, (_n, _request, response) => response.writeHead(404).end(), "credits");
    const withoutLabel = await api(ledger, (_n, _request, response) => response.writeHead(404).end());
    const amountOf = async (...args: string[]) => {
      stdout.length = 0;
      const program = new Command("jamgate").exitOverride();
      registerLedgerCommand(program);
      await program.parseAsync(["ledger", ...args], { from: "user" });
      return /= (.*) \(interval/.exec(stdout.at(-1)!)?.[1];
    };
    expect(await amountOf("--http", withLabel)).toBe("0.375000 credits");
    expect(await amountOf("--http", withLabel, "--currency", "EUR")).toBe("0.375000 EUR");
    expect(await amountOf("--http", withLabel, "--micros")).toBe("375000 µ");
    expect(await amountOf("--http", withoutLabel)).toBe("375000 µ");
  });
});
