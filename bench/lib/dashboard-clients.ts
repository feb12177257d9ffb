/**
 * Dashboard clients for the gateway benchmark (bench/gateway.ts --dashboard-clients N), run as
 * their own process so their work never runs on the gateway's event loop. Each client does what
 * an open dashboard page does (gateway/dashboard/app.js): it holds the live stream as the page
 * opens it (STREAM_PATH, Server-Sent Events) and refreshes its views every POLL_MS: the chain head,
 * recent blocks, packages, the newest ledger entries, energy intervals and balances. Clients
 * start spread over one poll period, as pages opened at different times would be.
 *
 * Commands over IPC: start {url, clients}, stats, stop. Real dashboards run on other machines;
 * here the clients share the 2 cores with the gateway, so their CPU is reported beside the run.
 */
import { performance } from "node:perf_hooks";
import { processCpuS, serve } from "./proc.ts";
import { median, percentile } from "./stats.ts";

/** The stream as an unfiltered dashboard opens it (app.js connectStream): entries as a digest a second, not an event each. */
const STREAM_PATH = "/v1/events?entries=digest";
/** How often a page refreshes its views (the dashboard's own poll, beside the live stream). */
const POLL_MS = 5_000;
/** What a page fetches on each refresh. */
const VIEWS = [
  "/v1/chain/head",
  "/v1/blocks?limit=20",
  "/v1/packages?limit=50",
  "/v1/entries?limit=50",
  "/v1/energy/intervals?limit=48",
  "/v1/balances?service=energy-trading",
];

/** Request latencies kept for the percentiles: 50 clients × 6 views per 5 s for a few minutes is ~10,000. */
const LATENCY_SAMPLES_MAX = 100_000;

interface Client {
  readonly abort: AbortController;
  timer: NodeJS.Timeout | null;
}

let clients: Client[] = [];
let requests = 0;
let failures = 0;
let events = 0;
let streamsOpen = 0;
let streamErrors = 0;
let latenciesMs: number[] = [];
const failureCodes = new Map<string, number>();
let cpuAtStart = 0;

function countFailure(what: string): void {
  failures++;
  failureCodes.set(what, (failureCodes.get(what) ?? 0) + 1);
}

async function refresh(url: string, signal: AbortSignal): Promise<void> {
  for (const path of VIEWS) {
    const started = performance.now();
    try {
      const response = await fetch(url + path, { signal });
      await response.arrayBuffer();
      if (response.ok || response.status === 404) {
        requests++;
        if (latenciesMs.length < LATENCY_SAMPLES_MAX) latenciesMs.push(performance.now() - started);
      } else countFailure(String(response.status));
    } catch (e) {
      if (signal.aborted) return;
      countFailure((e as { cause?: { code?: string } }).cause?.code ?? "fetch");
    }
  }
}

/** Reads the event stream until it ends or the client stops; counts events by their `event:` lines. */
async function stream(url: string, signal: AbortSignal): Promise<void> {
  try {
    const response = await fetch(url + STREAM_PATH, { signal, headers: { accept: "text/event-stream" } });
    if (!response.ok || response.body === null) {
      streamErrors++;
      return;
    }
    streamsOpen++;
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of response.body) {
      rest += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let at = rest.indexOf("\n"); at >= 0; at = rest.indexOf("\n")) {
        if (rest.startsWith("event:")) events++;
        rest = rest.slice(at + 1);
      }
    }
    streamsOpen--;
  } catch {
    if (!signal.aborted) streamErrors++;
  }
}

serve({
  start(args) {
    const url = String(args.url).replace(/\/+$/, "");
    const n = Number(args.clients);
    cpuAtStart = processCpuS();
    for (let i = 0; i < n; i++) {
      const client: Client = { abort: new AbortController(), timer: null };
      clients.push(client);
      const delay = Math.floor((i * POLL_MS) / n);
      client.timer = setTimeout(() => {
        void stream(url, client.abort.signal);
        const poll = () => {
          void refresh(url, client.abort.signal).finally(() => {
            if (!client.abort.signal.aborted) client.timer = setTimeout(poll, POLL_MS);
          });
        };
        poll();
      }, delay);
    }
    return null;
  },
  stats() {
    return {
      clients: clients.length,
      streamsOpen,
      streamErrors,
      events,
      requests,
      failures,
      failureCodes: Object.fromEntries(failureCodes),
      requestMedianMs: latenciesMs.length === 0 ? null : median(latenciesMs),
      requestP99Ms: latenciesMs.length === 0 ? null : percentile(latenciesMs, 99),
      cpuS: processCpuS() - cpuAtStart,
    };
  },
  reset() {
    requests = 0;
    failures = 0;
    events = 0;
    latenciesMs = [];
    failureCodes.clear();
    cpuAtStart = processCpuS();
    return null;
  },
  stop() {
    for (const c of clients) {
      c.abort.abort();
      if (c.timer !== null) clearTimeout(c.timer);
    }
    clients = [];
    return null;
  },
});
