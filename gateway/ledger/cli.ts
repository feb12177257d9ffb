/**
 * `jamgate ledger`: the settlement ledger from the gateway's HTTP API (`GET /v1/entries`), as a
 * table or JSON lines, and with `--follow` the entries that settle from then on, streamed from
 * `GET /v1/events` (Server-Sent Events). Finds a local gateway through its data dir's
 * endpoints.json (gateway/endpoints.ts) unless `--http` names one.
 *
 * Amounts stay exact: the API gives money as decimal strings of micro-units, printed as a decimal
 * of the currency ("1.234567 EUR": the gateway's label, or `--currency`) or as they are with
 * `--micros` ("1234567 µ"), never through a float.
 */
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Command, InvalidArgumentError } from "commander";
import { seqRanges } from "../../devices/protocol/seq-ranges.ts";
import { integerIn } from "../../devices/protocol/cli-args.ts";
import { readFlagFile } from "../../node/cli.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { errorCodeOf, type GatewayTarget, openRequest, readBody } from "../client-http.ts";
import type { readOperatorToken } from "../secrets.ts";
import { SseParser } from "./sse.ts";
import type { EntryView, Page } from "./types.ts";

export const DEFAULT_GATEWAY_DATA_DIR = ".jamgate";
/** `--service` short names: what a user types for the services' names on the chain. */
export const SERVICE_ALIASES: Readonly<Record<string, string>> = { energy: "energy-trading", wifi: "wifi-billing" };
/** Entries one listing prints at most: they are held to print oldest first. */
export const LEDGER_LIST_MAX = 10_000;
/** A page as the API serves it at most (types.ts LIST_LIMIT_MAX). */
const PAGE_LIMIT_MAX = 500;
/**
 * Requests one listing or catch-up makes at most. Each scans at most ENTRY_SCAN_MAX (20,000)
 * entries, so a filter that matches little still ends: past 20 million entries scanned it stops
 * and says so (narrow it with --since).
 */
export const LEDGER_PAGES_MAX = 1_000;
/** Largest answer read from the API: a full page is ~500 entries of under 1 KB. */
const ANSWER_BYTES_MAX = 8 * 1024 * 1024;
/** One request to the API. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Consecutive failed (re)connections of `--follow` before it gives up: with the delays below, about 3 minutes. */
export const FOLLOW_RECONNECTS_MAX = 10;
/** First reconnect delay of `--follow`, doubled per failure up to FOLLOW_RECONNECT_DELAY_MAX_MS (as the device SDK's). */
export const FOLLOW_RECONNECT_DELAY_MS = 500;
export const FOLLOW_RECONNECT_DELAY_MAX_MS = 30_000;
/** A stream open this long, even without events, worked: its drop restarts the reconnect delays. */
const FOLLOW_STABLE_MS = 10_000;
/** Events waiting while the entries missed before a (re)connection are fetched; past it the stream is dropped and caught up again. */
const FOLLOW_QUEUE_MAX = 10_000;

interface LedgerOptions {
  service?: string;
  account?: string;
  device?: string;
  router?: string;
  since?: number;
  until?: number;
  limit: number;
  follow?: boolean;
  json?: boolean;
  currency?: string;
  micros?: boolean;
  wide?: boolean;
  dataDir: string;
  http?: string;
  ca?: string;
  token?: string;
}

/** Where the API is and what to send it. */
type Target = GatewayTarget;

/** The filter of one listing, as query parameters and as a test on a streamed entry. */
export interface LedgerFilter {
  readonly service?: string;
  readonly account?: string;
  readonly device?: string;
  /** Wi-Fi entries of this router (`/v1/entries?router=` and `/v1/events?router=` both apply it). */
  readonly router?: string;
  readonly sinceMs?: number;
  readonly untilMs?: number;
}

const hexId = (flag: string) => (value: string) => {
  const v = value.trim().toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(v)) throw new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: ${flag} takes a device or account id (32 hex digits), got "${value}"`);
  return v;
};

/** `--since`/`--until`: ISO-8601, Unix ms, or an age (`90s`, `15m`, `2h`, `7d`) before now. */
export function parseTimeFlag(value: string, nowMs: number = Date.now()): number {
  const v = value.trim();
  const age = /^(\d{1,9})(s|m|h|d)$/.exec(v);
  if (age !== null) return nowMs - Number(age[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as "s" | "m" | "h" | "d"];
  if (/^\d{1,15}$/.test(v)) return Number(v);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0)
    throw new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: expected an ISO-8601 time, Unix ms or an age such as 15m, got "${value}"`);
  return ms;
}

export function registerLedgerCommand(program: Command): void {
  program
    .command("ledger")
    .description("the settlement ledger: entries of every service from the gateway's HTTP API, oldest of the newest --limit first; --follow streams new ones")
    .option("--service <name>", "only this service: energy (energy-trading), wifi (wifi-billing), telemetry, or a service's name")
    .option("--account <id>", "only entries that move money for this account (an energy household: its meter's device id)", hexId("--account"))
    .option("--device <id>", "only this device's settled envelopes", hexId("--device"))
    .option("--router <id>", "only Wi-Fi entries of this router (usage, exhausted balances, disputes, its stake)", hexId("--router"))
    .option("--since <time>", "only entries of blocks seen from this time: ISO-8601, Unix ms, or an age (15m, 2h, 7d)", (v) => parseTimeFlag(v))
    .option("--until <time>", "only entries of blocks seen up to this time (as --since)", (v) => parseTimeFlag(v))
    .option("--limit <n>", `the newest n entries (at most ${LEDGER_LIST_MAX})`, integerIn(0, LEDGER_LIST_MAX), 50)
    .option("--follow", "then print each new entry as it settles (Server-Sent Events from /v1/events), until interrupted")
    .option("--json", "one JSON object per entry (the API's EntryView) instead of a table")
    .option(
      "--currency <label>",
      "show money as a decimal of this unit (1,000,000 micro-units each), e.g. EUR (default: the gateway's, from /v1/dashboard/config)",
    )
    .option("--micros", "show money in micro-units (µ), as the ledger counts it")
    .option("--wide", "full device and account ids in the table (default: their first 12 hex digits)")
    .option("--data-dir <dir>", "the running jamgate's data dir: its endpoints.json names the HTTP API", DEFAULT_GATEWAY_DATA_DIR)
    .option("--http <url>", "the gateway's HTTP API instead, e.g. http://127.0.0.1:8080")
    .option("--ca <file>", "PEM CA certificate to trust for an https:// gateway (default: the system's)")
    .option("--token <token>", "operator token to send (default: with the data dir's endpoints, its operator-token if readable)")
    .action(async (options: LedgerOptions) => runLedger(options));
}

async function runLedger(options: LedgerOptions): Promise<void> {
  if (options.currency !== undefined && !/^\S{1,16}$/.test(options.currency))
    throw new JamgateError("JG_ERR_CLI_ARGUMENT", `--currency takes a label of 1 to 16 characters without spaces, got "${options.currency}"`);
  const service = options.service === undefined ? undefined : (SERVICE_ALIASES[options.service] ?? options.service);
  if (service !== undefined && !/^[a-z][a-z0-9-]{0,31}$/.test(service))
    throw new JamgateError("JG_ERR_CLI_ARGUMENT", `--service: not a service name: "${options.service}"`);
  if (options.since !== undefined && options.until !== undefined && options.since > options.until)
    throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--since is after --until");
  const filter: LedgerFilter = {
    ...(service === undefined ? {} : { service }),
    ...(options.account === undefined ? {} : { account: options.account }),
    ...(options.device === undefined ? {} : { device: options.device }),
    ...(options.router === undefined ? {} : { router: options.router }),
    ...(options.since === undefined ? {} : { sinceMs: options.since }),
    ...(options.until === undefined ? {} : { untilMs: options.until }),
  };
  if (options.micros && options.currency !== undefined) throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--micros or --currency, not both");
  const targetOf = await targetResolver(options);
  let target = targetOf();
  const currency = options.json || options.micros ? undefined : (options.currency ?? (await gatewayCurrency(target)));
  const out = printer({ ...options, currency });

  const listed = await listEntries(target, filter, options.limit);
  if (listed.note !== null) process.stderr.write(`${listed.note}\n`);
  // Oldest first: the newest is last, where --follow continues.
  const ascending = [...listed.items].reverse();
  if (!options.json) out.header();
  for (const entry of ascending) out.entry(entry);
  if (!options.follow) {
    if (ascending.length === 0 && !options.json) process.stderr.write("no entries\n");
    return;
  }
  // Where the stream takes over: the newest entry of the whole ledger, whatever the filter, so a
  // catch-up after a reconnection scans only what is newer.
  const newest = await getJson<Page<EntryView>>(target, "/v1/entries?limit=1");
  let seenId = Math.max(ascending.at(-1)?.id ?? -1, newest.items[0]?.id ?? -1);
  await followEntries({
    path: eventsPath(filter),
    target: () => (target = targetOf()),
    seen: () => seenId,
    onEntry(entry) {
      if (entry.id <= seenId) return;
      seenId = entry.id;
      if (matches(entry, filter)) out.entry(entry);
    },
    catchUp: async (t) => {
      const missed = await entriesAfter(t, filter, seenId);
      if (missed.note !== null) process.stderr.write(`${missed.note}\n`);
      return missed.items;
    },
    onConnected: () => process.stderr.write(`following ${target.base}${eventsPath(filter)}: new entries as they settle (Ctrl-C to stop)\n`),
  });
}

/**
 * The API's base URL and headers, from the flags or the data dir's endpoints.json; read again on
 * each call, so `--follow` finds a gateway restarted on other ports.
 */
async function targetResolver(options: LedgerOptions): Promise<() => Target> {
  const ca = options.ca === undefined ? undefined : readFlagFile("--ca", options.ca);
  if (options.http !== undefined) {
    const base = checkedBase(options.http, "--http");
    const headers: Record<string, string> = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    return () => ({ base, ca, headers });
  }
  // Loaded here, not at the top: every `jamgate` command loads this module for its flags (secrets.ts loads sodium-native).
  const [{ readEndpoints }, { readOperatorToken }] = await Promise.all([import("../endpoints.ts"), import("../secrets.ts")]);
  return () => {
    const endpoints = readEndpoints(options.dataDir, "--http");
    const token = options.token ?? operatorTokenIn(readOperatorToken(options.dataDir));
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    return { base: checkedBase(endpoints.http, `${join(options.dataDir, "endpoints.json")} http`), ca, headers };
  };
}

function checkedBase(url: string, what: string): string {
  const base = url.replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+$/.test(base)) throw new JamgateError("JG_ERR_CLI_ARGUMENT", `${what} must be http(s)://host:port, got ${url}`);
  return base;
}

function operatorTokenIn(read: ReturnType<typeof readOperatorToken>): string | null {
  return "token" in read ? read.token : null;
}

/** The currency label the gateway shows money with (its dashboard's setting), or undefined when it names none. */
async function gatewayCurrency(target: Target): Promise<string | undefined> {
  try {
    const config = await getJson<{ currency?: unknown }>(target, "/v1/dashboard/config");
    return typeof config.currency === "string" && /^\S{1,16}$/.test(config.currency) ? config.currency : undefined;
  } catch (e) {
    if (e instanceof JamgateError && e.code === "JG_ERR_RPC_CLOSED") throw e;
    return undefined; // a gateway without the dashboard: micro-units
  }
}

/** Whether a streamed entry passes the listing's filter: the stream applies all but the time bounds; checked here again, whatever a gateway sent. */
export function matches(entry: EntryView, filter: LedgerFilter): boolean {
  if (filter.service !== undefined && entry.service !== filter.service) return false;
  if (filter.account !== undefined && !entry.accounts.includes(filter.account)) return false;
  if (filter.device !== undefined && entry.device !== filter.device) return false;
  if (filter.router !== undefined && entry.router !== filter.router) return false;
  if (filter.sinceMs !== undefined && entry.timeMs < filter.sinceMs) return false;
  if (filter.untilMs !== undefined && entry.timeMs > filter.untilMs) return false;
  return true;
}

function entriesQuery(filter: LedgerFilter, page: { before?: number | null; limit: number }): string {
  const q = new URLSearchParams();
  if (filter.service !== undefined) q.set("service", filter.service);
  if (filter.account !== undefined) q.set("account", filter.account);
  if (filter.device !== undefined) q.set("device", filter.device);
  if (filter.router !== undefined) q.set("router", filter.router);
  if (filter.sinceMs !== undefined) q.set("since", String(filter.sinceMs));
  if (filter.untilMs !== undefined) q.set("until", String(filter.untilMs));
  if (page.before != null) q.set("before", String(page.before));
  q.set("limit", String(page.limit));
  return `/v1/entries?${q}`;
}

/** `/v1/events` with the filters the stream applies itself (service, account, device, router); time bounds are applied here. */
export function eventsPath(filter: LedgerFilter): string {
  const q = new URLSearchParams();
  if (filter.service !== undefined) q.set("service", filter.service);
  if (filter.account !== undefined) q.set("account", filter.account);
  if (filter.device !== undefined) q.set("device", filter.device);
  if (filter.router !== undefined) q.set("router", filter.router);
  const query = q.toString();
  return query === "" ? "/v1/events" : `/v1/events?${query}`;
}

/** The newest `limit` entries that pass the filter, newest first, paging by cursor. */
export async function listEntries(target: Target, filter: LedgerFilter, limit: number): Promise<{ items: EntryView[]; note: string | null }> {
  const items: EntryView[] = [];
  let before: number | null = null;
  for (let pages = 0; items.length < limit; pages++) {
    if (pages === LEDGER_PAGES_MAX)
      return { items, note: `stopped after ${LEDGER_PAGES_MAX} pages (the ledger is long and the filter matches little): narrow it with --since` };
    const page: Page<EntryView> = await getJson<Page<EntryView>>(
      target,
      entriesQuery(filter, { before, limit: Math.min(PAGE_LIMIT_MAX, limit - items.length) }),
    );
    items.push(...page.items.slice(0, limit - items.length));
    if (page.next === null) break;
    before = page.next;
  }
  return { items, note: null };
}

/** Every entry newer than `afterId` that passes the filter, oldest first (what a reconnection missed). */
export async function entriesAfter(target: Target, filter: LedgerFilter, afterId: number): Promise<{ items: EntryView[]; note: string | null }> {
  const items: EntryView[] = [];
  let before: number | null = null;
  for (let pages = 0; ; pages++) {
    if (pages === LEDGER_PAGES_MAX || items.length >= LEDGER_LIST_MAX)
      return { items: items.reverse(), note: `more entries settled while the stream was down than one catch-up fetches; showing the newest ${items.length}` };
    const page: Page<EntryView> = await getJson<Page<EntryView>>(target, entriesQuery(filter, { before, limit: PAGE_LIMIT_MAX }));
    for (const entry of page.items) {
      if (entry.id <= afterId) return { items: items.reverse(), note: null };
      items.push(entry);
    }
    if (page.next === null || page.next <= afterId + 1) return { items: items.reverse(), note: null };
    before = page.next;
  }
}

interface FollowHandlers {
  /** The stream's path and query: `/v1/events`, with the filters the gateway applies to it. */
  readonly path: string;
  /** The API to connect to, resolved again before each connection. */
  target(): Target;
  /** The newest entry id handled, sent as Last-Event-ID. */
  seen(): number;
  onEntry(entry: EntryView): void;
  /** Entries newer than seen() that passed the filter, oldest first. */
  catchUp(target: Target): Promise<EntryView[]>;
  /** Called when a connection is up and caught up: from here on entries come as they settle. */
  onConnected?(): void;
}

/**
 * Follows `/v1/events` until the process is interrupted. On each connection it first fetches what
 * it missed (catchUp; events arriving meanwhile wait in a bounded queue, and ones already printed
 * are dropped by id), then prints entries as they come. A dropped stream, an `overflow` event (the
 * gateway closes a client that falls behind) or a refused connection is retried with
 * Last-Event-ID and a doubling delay; FOLLOW_RECONNECTS_MAX failures in a row without an event end
 * it with JG_ERR_RPC_CLOSED.
 */
export async function followEntries(
  handlers: FollowHandlers,
  options: { readonly reconnectDelayMs?: number; readonly reconnectDelayMaxMs?: number } = {},
): Promise<never> {
  const baseDelay = options.reconnectDelayMs ?? FOLLOW_RECONNECT_DELAY_MS;
  const maxDelay = options.reconnectDelayMaxMs ?? FOLLOW_RECONNECT_DELAY_MAX_MS;
  let failures = 0;
  let lastProblem = "";
  for (;;) {
    if (failures > 0) {
      if (failures > FOLLOW_RECONNECTS_MAX)
        throw new JamgateError("JG_ERR_RPC_CLOSED", `the event stream failed ${FOLLOW_RECONNECTS_MAX + 1} times in a row (last: ${lastProblem})`);
      const delay = Math.min(maxDelay, baseDelay * 2 ** (failures - 1));
      process.stderr.write(`event stream: ${lastProblem}; reconnecting in ${delay} ms\n`);
      await sleep(delay);
    }
    let target: Target;
    try {
      target = handlers.target();
    } catch (e) {
      // No gateway running on the data dir (yet, or any more): retried like a refused connection.
      if (!(e instanceof JamgateError)) throw e;
      failures++;
      lastProblem = e.message;
      continue;
    }
    const openedAtMs = Date.now();
    const outcome = await streamOnce(target, handlers);
    if (outcome.fatal !== undefined) throw outcome.fatal;
    // A stream that worked for a while counts as a success: the next drop starts the delays over.
    failures = outcome.gotEvent || Date.now() - openedAtMs >= FOLLOW_STABLE_MS ? 1 : failures + 1;
    lastProblem = outcome.problem;
  }
}

/** One connection to the event stream, until it ends. */
async function streamOnce(target: Target, handlers: FollowHandlers): Promise<{ gotEvent: boolean; problem: string; fatal?: JamgateError }> {
  let response: IncomingMessage;
  try {
    response = await open(target, handlers.path, {
      accept: "text/event-stream",
      ...(handlers.seen() >= 0 ? { "last-event-id": String(handlers.seen()) } : {}),
    });
  } catch (e) {
    return { gotEvent: false, problem: (e as Error).message };
  }
  if (response.statusCode !== 200) {
    const text = await readBody(response, ANSWER_BYTES_MAX).catch(() => "");
    response.destroy();
    const problem = `${target.base}${handlers.path} answered ${response.statusCode}: ${text.slice(0, 300)}`;
    // Busy (503) or failing (5xx): worth retrying; anything else will not change.
    if ((response.statusCode ?? 0) >= 500) return { gotEvent: false, problem };
    return { gotEvent: false, problem, fatal: new JamgateError(errorCodeOf(text), problem) };
  }
  let gotEvent = false;
  let catchingUp = true;
  const queue: EntryView[] = [];
  let problem = "the gateway closed the event stream";
  const parser = new SseParser((event) => {
    gotEvent = true;
    if (event.event === "overflow") {
      problem = "the gateway dropped this client for falling behind (overflow)";
      response.destroy();
      return;
    }
    if (event.event !== "entry") return;
    let entry: EntryView;
    try {
      entry = JSON.parse(event.data) as EntryView;
    } catch {
      process.stderr.write(`event stream: an entry that is not JSON: ${event.data.slice(0, 200)}\n`);
      return;
    }
    if (typeof entry?.id !== "number" || !Array.isArray(entry.accounts)) {
      process.stderr.write(`event stream: not an entry: ${event.data.slice(0, 200)}\n`);
      return;
    }
    if (!catchingUp) return handlers.onEntry(entry);
    if (queue.length >= FOLLOW_QUEUE_MAX) {
      problem = `more than ${FOLLOW_QUEUE_MAX} events arrived while catching up`;
      response.destroy();
      return;
    }
    queue.push(entry);
  });
  const decoder = new TextDecoder();
  const ended = new Promise<void>((resolve) => {
    response.on("data", (chunk: Buffer) => parser.push(decoder.decode(chunk, { stream: true })));
    response.on("end", resolve);
    response.on("close", resolve);
    response.on("error", (e) => {
      problem = e.message;
      resolve();
    });
  });
  try {
    for (const entry of await handlers.catchUp(target)) handlers.onEntry(entry);
  } catch (e) {
    response.destroy();
    if (e instanceof JamgateError && e.code !== "JG_ERR_RPC_CLOSED" && e.code !== "JG_ERR_RPC_TIMEOUT") return { gotEvent, problem: e.message, fatal: e };
    return { gotEvent, problem: (e as Error).message };
  }
  catchingUp = false;
  for (const entry of queue.splice(0)) handlers.onEntry(entry);
  handlers.onConnected?.();
  await ended;
  return { gotEvent, problem };
}

/** A GET of the API (an event stream too): its timeout holds until the answer's head. */
const open = (target: Target, path: string, headers: Record<string, string> = {}): Promise<IncomingMessage> =>
  openRequest(target, path, { headers, timeoutMs: REQUEST_TIMEOUT_MS, untilHead: true });

/** GET a JSON answer; a non-2xx answer fails with the code the gateway gave (the registry's) or JG_ERR_RPC_REMOTE. */
export async function getJson<T>(target: Target, path: string): Promise<T> {
  const url = `${target.base}${path}`;
  let status: number;
  let text: string;
  try {
    const response = await open(target, path);
    status = response.statusCode ?? 0;
    text = await readBody(response, ANSWER_BYTES_MAX);
  } catch (e) {
    throw new JamgateError("JG_ERR_RPC_CLOSED", (e as Error).message);
  }
  if (status < 200 || status >= 300) throw new JamgateError(errorCodeOf(text), `gateway answered ${status} to GET ${url}: ${text.slice(0, 500)}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new JamgateError("JG_ERR_RPC_REMOTE", `gateway answered GET ${url} with no JSON: ${text.slice(0, 200)}`);
  }
}

// ---- output

/** Micro-units (a decimal string, maybe signed) as text: "1234567 µ", or with a currency label "1.234567 EUR". Exact: digits are moved, never divided. */
export function formatMicros(micros: string, currency: string | undefined, per = ""): string {
  if (!/^-?\d+$/.test(micros)) return `${micros} µ${per}`;
  if (currency === undefined) return `${micros} µ${per}`;
  const negative = micros.startsWith("-");
  const digits = (negative ? micros.slice(1) : micros).padStart(7, "0");
  const whole = digits.slice(0, -6).replace(/^0+(?=\d)/, "");
  return `${negative ? "-" : ""}${whole}.${digits.slice(-6)} ${currency}${per}`;
}

/** Ascending seqs as ranges (devices/protocol/seq-ranges.ts: the device CLI prints them the same way). */
export const formatSeqs = seqRanges;

const COLUMNS = [
  { name: "ID", width: 8, right: true },
  { name: "TIME (UTC)", width: 20 },
  { name: "SLOT", width: 8, right: true },
  { name: "SERVICE", width: 14 },
  { name: "KIND", width: 11 },
] as const;

/** One table row, or the table's header; the parties column is as wide as the ids it shows. */
export function formatRow(entry: EntryView | null, options: { readonly currency?: string | undefined; readonly wide?: boolean | undefined }): string {
  const idChars = options.wide ? 32 : 13;
  const partiesWidth = 2 * idChars + 3;
  const party = (id: string | null) => (id === null ? "-" : id === "grid" || options.wide || id.length <= 12 ? id : `${id.slice(0, 12)}…`);
  const cells =
    entry === null
      ? [...COLUMNS.map((c) => c.name), "DEVICE / SELLER → BUYER", "DETAIL"]
      : [
          String(entry.id),
          new Date(entry.timeMs).toISOString().replace(/\.\d{3}Z$/, "Z"),
          String(entry.slot),
          entry.service,
          entry.kind,
          entry.kind === "envelopes"
            ? party(entry.device)
            : entry.reason !== undefined
              ? wifiParties(entry, party)
              : `${party(entry.seller)} → ${party(entry.buyer)}`,
          entry.reason !== undefined
            ? wifiDetail(entry, options.currency)
            : entry.kind === "envelopes"
              ? `seqs ${formatSeqs(entry.seqs ?? [])}${entry.packageHash === null ? "" : `  package ${options.wide ? entry.packageHash : `${entry.packageHash.slice(0, 12)}…`}`}`
              : [
                  entry.energyWh === null ? null : `${entry.energyWh} Wh`,
                  entry.priceMicrosPerKwh === null ? null : `@ ${formatMicros(String(entry.priceMicrosPerKwh), options.currency, "/kWh")}`,
                  entry.amountMicros === null ? null : `= ${formatMicros(entry.amountMicros, options.currency)}`,
                  entry.interval === null ? null : `(interval ${entry.interval})`,
                ]
                  .filter((s) => s !== null)
                  .join(" "),
        ];
  const widths = [...COLUMNS.map((c) => c.width), partiesWidth];
  return cells
    .map((cell, i) => {
      const width = widths[i];
      if (width === undefined) return cell;
      const right = i < COLUMNS.length && "right" in COLUMNS[i]! && COLUMNS[i]!.right;
      return right ? cell.padStart(width) : cell.padEnd(width);
    })
    .join("  ")
    .trimEnd();
}

/** A Wi-Fi entry's parties: the account that pays → the router for usage; the account alone for top-ups and stakes. */
function wifiParties(entry: EntryView, party: (id: string | null) => string): string {
  return entry.router == null || entry.reason === "stake-lock" || entry.reason === "stake-return"
    ? party(entry.client ?? null)
    : `${party(entry.client ?? null)} → ${party(entry.router)}`;
}

/** A Wi-Fi entry's detail: octets at the session's price, the amount and its fee; router-attested usage marked. */
function wifiDetail(entry: EntryView, currency: string | undefined): string {
  const usage = entry.reason === "usage" || entry.reason === "balance-exhausted" || entry.reason === "disputed";
  return [
    usage ? `${entry.octets ?? "0"} octets @ ${formatMicros(entry.priceMicrosPerGb ?? "0", currency, "/GB")}` : null,
    entry.amountMicros === null ? null : `= ${formatMicros(entry.amountMicros, currency)}`,
    usage && entry.feeMicros !== undefined && entry.feeMicros !== "0" ? `(fee ${formatMicros(entry.feeMicros, currency)})` : null,
    entry.attested === true ? "router-attested" : null,
  ]
    .filter((s) => s !== null)
    .join(" ");
}

function printer(options: { readonly json?: boolean | undefined; readonly currency?: string | undefined; readonly wide?: boolean | undefined }): {
  header(): void;
  entry(e: EntryView): void;
} {
  return {
    header: () => console.log(formatRow(null, options)),
    entry: (e) => console.log(options.json ? JSON.stringify(e) : formatRow(e, options)),
  };
}
