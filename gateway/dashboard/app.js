/**
 * The dashboard at `/`: the chain, the cores, the gateway's work packages, the settlement ledger,
 * the energy market, Wi-Fi billing and balances, from the ledger's HTTP API (the views of
 * gateway/ledger/types.ts). Live through Server-Sent Events (`/v1/events?entries=digest`: blocks,
 * packages and intervals as they come, the ledger's entries as a digest a second); while the stream
 * is down (refused when busy, closed after an overflow, the server restarting) it polls the same
 * routes. Plain ES modules, no framework: the page is a handful of tables and five uPlot charts.
 * Every value from the server is written as text (textContent), never as markup.
 */
import uPlot from "/assets/uplot/uPlot.esm.js";
import {
  entryMatches,
  formatEnergy,
  formatFixed,
  formatMoney,
  formatOctets,
  formatPrice,
  formatPricePerGb,
  formatSeqs,
  formatUtc,
  MICROS_DIGITS,
  OCTET_DIGITS,
  shortHex,
  WH_DIGITS,
} from "./format.js";
import { mergeWindow, octetsOverTime, recentSessions, routerTotals, serviceCounts, topRouters } from "./wifi.js";

/** Blocks the chain table and the cores' strips show: two minutes of a 6 s slot. */
const BLOCKS_SHOWN = 20;
/** Packages kept for the status counts and refine times: the newest of the gateway's, one API page. */
const PACKAGES_KEPT = 200;
/** Packages the table lists. */
const PACKAGES_SHOWN = 10;
/** Ledger rows per page (a digest carries as many: gateway/ledger/events.ts ENTRY_DIGEST_LATEST_MAX). */
const LEDGER_PAGE_SIZE = 25;
/** How often the stream sends a digest of new entries (gateway/ledger/events.ts ENTRY_DIGEST_MS): the rate shown is per this. */
const ENTRY_DIGEST_MS = 1_000;
/** No digest for this long: no entry matched the filter lately, and the rate shown says so. */
const DIGEST_QUIET_MS = 2 * ENTRY_DIGEST_MS + 500;
/** Intervals charted: a day of 15-minute intervals. */
const INTERVALS_SHOWN = 96;
/** Intervals the table lists (the newest): six hours of 15-minute intervals; the charts show the rest. */
const INTERVALS_LISTED = 24;
/** A read the gateway has not answered in this long is given up and shown as an error (a later refresh reads again), so a part never waits on it for good. */
const API_TIMEOUT_MS = 20_000;
/** How often the page reads the API while the live stream is down. */
const POLL_MS = 3_000;
/** Balances are read again at most this often: no event carries them, they change as intervals settle. */
const BALANCES_REFRESH_MS = 3_000;
/** The stream is opened again after this long once the browser gave up on it (a 503 when the server has SSE_CLIENTS_MAX clients), doubling to the max. */
const STREAM_RETRY_MS_MIN = 2_000;
const STREAM_RETRY_MS_MAX = 60_000;
/** Chart height in CSS pixels; the width follows the box. */
const CHART_HEIGHT = 220;
/** The statuses a package goes through, in order (gateway/ledger/types.ts PACKAGE_STATUSES). */
const PACKAGE_STATUSES = ["submitted", "refined", "reported", "available", "accumulated", "failed"];
/** The energy service's name: its accounts are the balances shown. */
const ENERGY_SERVICE = "energy-trading";
/** The Wi-Fi billing service's name (services/wifi-billing/service.ts WIFI_SERVICE_NAME). */
const WIFI_SERVICE = "wifi-billing";
/** The Wi-Fi panel is read again at most this often: after a Wi-Fi package is accumulated or Wi-Fi entries arrive. */
const WIFI_REFRESH_MS = 3_000;
/** Newest Wi-Fi ledger entries kept for the chart and the sessions: four API pages; a read takes at most as many pages of newer ones (more arrived meanwhile: the window starts again from those). */
const WIFI_ENTRIES_KEPT = 2_000;
/** One API page (gateway/ledger/types.ts LIST_LIMIT_MAX) of entries or routers. */
const API_PAGE_MAX = 500;
/** Pages of routers read (by id) for the totals and the top routers: 2,000 routers, each read from state by the server. */
const WIFI_ROUTER_PAGES_MAX = 4;
/** Routers the top list shows. */
const WIFI_ROUTERS_SHOWN = 10;
/** Sessions the recent list shows. */
const WIFI_SESSIONS_SHOWN = 10;
/** Bars of the billed chart at most: a bar a few pixels wide at phone width. */
const WIFI_BUCKETS_MAX = 60;

const state = {
  /** Until `/v1/dashboard/config` answers: serve.ts DEFAULT_CURRENCY_LABEL. */
  config: { currency: "EUR", coresCount: null },
  /** Service id → view. */
  services: new Map(),
  head: null,
  /** Newest first, at most BLOCKS_SHOWN. */
  blocks: [],
  /** Hash → view, at most PACKAGES_KEPT (the newest by submission). */
  packages: new Map(),
  /** Interval number → view, at most INTERVALS_SHOWN. */
  intervals: new Map(),
  balances: [],
  ledger: {
    /** The filter the page shows: service, account, device, router, interval (strings, "" for none). */
    filter: { service: "", account: "", device: "", router: "", interval: "" },
    /** The `before` cursor of each page from the newest to the one shown (undefined: the newest). */
    cursors: [undefined],
    items: [],
    next: null,
    /** Entries that arrived live while an older page is shown. */
    newer: 0,
    /** The last digest's count (entries matching the filter in its second), or null: none lately, or the stream is down. */
    rate: null,
    /** Ids of rows to mark as just arrived. */
    fresh: new Set(),
    /** Drops a response overtaken by a later request (the filter changed meanwhile). */
    request: 0,
  },
  /** The interval whose households are shown, or null. */
  detail: null,
  wifi: {
    /** Whether the gateway serves Wi-Fi billing (`/v1/wifi/routers` answers); null until asked. */
    available: null,
    /** Routers by id (at most WIFI_ROUTER_PAGES_MAX pages), and whether that is all of them. */
    routers: [],
    routersComplete: true,
    /** Router id → name, of those routers. */
    names: new Map(),
    /** The newest Wi-Fi ledger entries, newest first, at most WIFI_ENTRIES_KEPT. */
    entries: [],
    /** The service's counters (`/v1/wifi/stats`: disputes and refusals across all routers), or null until read. */
    stats: null,
  },
};

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(API_TIMEOUT_MS) });
  } catch (e) {
    throw new ApiError(
      0,
      "NETWORK",
      e.name === "TimeoutError" ? `the gateway did not answer ${path} within ${API_TIMEOUT_MS / 1000} s` : `the gateway did not answer (${e.message})`,
    );
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body?.error?.code ?? `HTTP ${response.status}`, body?.error?.message ?? response.statusText);
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

// ---------------------------------------------------------------------------------------------
// DOM helpers

const $ = (id) => document.getElementById(id);

/** An element with attributes (`class`, `data-*`, `aria-*`, properties otherwise) and children (nodes or text). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (
      name.startsWith("data-") ||
      name.startsWith("aria-") ||
      name === "role" ||
      name === "title" ||
      name === "href" ||
      name === "download" ||
      name === "type"
    )
      element.setAttribute(name, value === true ? "" : String(value));
    else element[name] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === "") continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A hex id shortened, the whole of it in its title and for copying. */
const hexCell = (hex) => (hex === null || hex === undefined ? "—" : h("code", { title: hex }, shortHex(hex)));
const td = (content, cls) => h("td", cls === undefined ? {} : { class: cls }, content);

/**
 * Brings a table body's rows in line with `items`, keyed: a row whose item (and whatever else
 * it shows, `stamp`) is unchanged is kept as it is, new ones are built, gone ones removed. Rows
 * stay put while entries stream in, so a click or a keyboard focus on a row is not lost when
 * the next event arrives; a focused control of a rebuilt row gets the focus back by its `data-key`.
 */
function reconcileRows(tbody, items, keyOf, build, stampOf = (item) => JSON.stringify(item)) {
  const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute("data-key") : null;
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.rowKey, row]));
  const rows = items.map((item) => {
    const key = String(keyOf(item));
    const stamp = `${stampOf(item)} ${state.config.currency}`;
    const old = existing.get(key);
    if (old !== undefined && old.dataset.rowStamp === stamp) return old;
    const row = build(item);
    row.dataset.rowKey = key;
    row.dataset.rowStamp = stamp;
    return row;
  });
  // In order: each row goes before the first one not yet placed; what is left after them is gone.
  let next = tbody.firstElementChild;
  for (const row of rows) {
    if (row === next) next = next.nextElementSibling;
    else tbody.insertBefore(row, next);
  }
  while (next !== null) {
    const after = next.nextElementSibling;
    next.remove();
    next = after;
  }
  if (focused !== null && !tbody.contains(document.activeElement)) tbody.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function showError(id, error) {
  const element = $(id);
  if (element === null) return;
  if (error === null) {
    element.hidden = true;
    element.textContent = "";
  } else {
    element.hidden = false;
    element.textContent = error instanceof ApiError ? `${error.code}: ${error.message.replace(/^[^:]+: /, "")}` : String(error);
  }
}

const serviceName = (id) => state.services.get(id)?.name ?? `service ${id}`;
const money = (micros) => formatMoney(micros, state.config.currency);
const price = (microsPerKwh) => formatPrice(microsPerKwh, state.config.currency);
const pricePerGb = (microsPerGb) => formatPricePerGb(microsPerGb, state.config.currency);
/** A router's name when the Wi-Fi panel has read it, else "". */
const routerNameOf = (router) => state.wifi.names.get(router) ?? "";
/** A router by its name when the panel has read it, its id in the title. */
function routerLabel(router) {
  if (router === null || router === undefined) return "—";
  const name = routerNameOf(router);
  return name === "" ? hexCell(router) : h("span", { title: router }, name);
}

// ---------------------------------------------------------------------------------------------
// Rendering, at most once per frame for each part

const dirty = new Set();
let frame = 0;
function render(...parts) {
  for (const part of parts) dirty.add(part);
  if (frame === 0) frame = requestAnimationFrame(flush);
}
function flush() {
  frame = 0;
  const parts = [...dirty];
  dirty.clear();
  for (const part of parts) {
    try {
      part();
    } catch (e) {
      console.error(e);
    }
  }
}

function renderHead() {
  const head = state.head;
  $("head-slot").textContent = head === null ? "—" : String(head.slot);
  $("head-hash").replaceChildren(head === null ? "—" : h("a", { href: `/v1/blocks/${head.hash}`, title: head.hash }, shortHex(head.hash)));
  $("head-root").replaceChildren(head === null ? "—" : hexCell(head.stateRoot));
  $("head-seen").textContent = head === null ? "—" : formatUtc(head.seenAtMs);
}

function renderBlocks() {
  const row = (block) =>
    h(
      "tr",
      { "data-slot": block.slot },
      td(String(block.slot), "num"),
      td(h("a", { href: `/v1/blocks/${block.hash}`, title: block.hash, "data-key": `block-${block.hash}` }, shortHex(block.hash))),
      td(block.reports.length === 0 ? "—" : block.reports.map((r) => `${shortHex(r.packageHash)} (${r.core})`).join(", ")),
      td(String(block.assurances), "num"),
      td(String(block.accumulated.length), "num"),
      td(block.serviceIds.map(serviceName).join(", ") || "—"),
      td(formatUtc(block.seenAtMs)),
    );
  reconcileRows(
    $("blocks").tBodies[0],
    state.blocks,
    (block) => block.hash,
    row,
    (block) => `${block.hash} ${block.serviceIds.map(serviceName)}`,
  );
}

function median(sorted) {
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : Math.round((sorted[middle - 1] + sorted[middle]) / 2);
}

function coresCount() {
  if (state.config.coresCount !== null) return state.config.coresCount;
  let highest = -1;
  for (const block of state.blocks) for (const report of block.reports) highest = Math.max(highest, report.core);
  for (const pkg of state.packages.values()) if (pkg.core !== null) highest = Math.max(highest, pkg.core);
  return highest + 1;
}

function renderCores() {
  const oldestFirst = [...state.blocks].reverse();
  const rows = [];
  for (let core = 0; core < coresCount(); core++) {
    const busy = oldestFirst.map((block) => block.reports.some((r) => r.core === core));
    const refineMs = [...state.packages.values()]
      .filter((p) => p.core === core && p.refineMs !== null)
      .map((p) => p.refineMs)
      .sort((a, b) => a - b);
    const mid = median(refineMs);
    rows.push(
      h(
        "tr",
        { "data-core": core },
        h("th", { scope: "row" }, `Core ${core}`),
        td(
          h(
            "span",
            { class: "strip", "aria-hidden": "true" },
            busy.map((b) => h("span", { class: b ? "busy" : "" })),
          ),
        ),
        td(`${busy.filter(Boolean).length} of ${busy.length}`, "num"),
        td(mid === null ? "—" : `${mid} ms`, "num"),
        td(refineMs.length === 0 ? "—" : `${refineMs[refineMs.length - 1]} ms`, "num"),
      ),
    );
  }
  $("cores-table").tBodies[0].replaceChildren(...rows);
  const refined = [...state.packages.values()].filter((p) => p.refineMs !== null).sort((a, b) => a.submittedAtMs - b.submittedAtMs);
  charts.refine?.setData([refined.map((p) => p.submittedAtMs / 1000), refined.map((p) => p.refineMs)]);
}

function newestPackages() {
  return [...state.packages.values()].sort((a, b) => b.submittedAtMs - a.submittedAtMs);
}

function renderPackages() {
  const packages = newestPackages();
  const counts = new Map(PACKAGE_STATUSES.map((s) => [s, 0]));
  for (const p of packages) counts.set(p.status, (counts.get(p.status) ?? 0) + 1);
  $("package-statuses").replaceChildren(
    ...[...counts].map(([status, n]) =>
      h("li", { "data-status": status }, h("span", { class: `status status-${status}` }, status), h("span", { class: "count" }, String(n))),
    ),
  );
  $("packages-note").textContent = `Of the latest ${packages.length} packages the gateway submitted.`;
  const row = (p) =>
    h(
      "tr",
      { "data-hash": p.hash },
      td(h("a", { href: `/v1/packages/${p.hash}`, title: p.hash, "data-key": `package-${p.hash}` }, shortHex(p.hash))),
      td(`${p.service} (${p.kind})`),
      td(String(p.items), "num"),
      td(p.core === null ? "—" : String(p.core), "num"),
      td(h("span", { class: `status status-${p.status}`, title: p.error === null ? undefined : `${p.error.code}: ${p.error.detail}` }, p.status)),
      td(p.refineMs === null ? "—" : `${p.refineMs} ms`, "num"),
      td(p.reportedSlot === null ? "—" : String(p.reportedSlot), "num"),
      td(p.accumulatedSlot === null ? "—" : String(p.accumulatedSlot), "num"),
      td(`${p.settled} / ${p.refused}`, "num"),
    );
  reconcileRows($("packages-table").tBodies[0], packages.slice(0, PACKAGES_SHOWN), (p) => p.hash, row);
}

function partiesOf(entry) {
  if (entry.kind === "envelopes") return [hexCell(entry.device), ` seqs ${formatSeqs(entry.seqs)}`];
  if (entry.reason !== undefined) {
    // Wi-Fi: the account it moves (client, owner, or the account topped up) and the router.
    if (entry.router === null || entry.router === undefined) return [hexCell(entry.client)];
    return [hexCell(entry.client), " → ", routerLabel(entry.router), entry.attested ? " (router-attested)" : ""];
  }
  const party = (p) => (p === "grid" ? "grid" : hexCell(p));
  return [party(entry.seller), " → ", party(entry.buyer), entry.interval === null ? "" : ` (interval ${entry.interval})`];
}

function renderLedger() {
  const ledger = state.ledger;
  const row = (entry) => {
    const proof = `/v1/proofs/entries/${entry.id}`;
    return h(
      "tr",
      {
        "data-id": entry.id,
        "data-kind": entry.kind,
        "data-accounts": entry.accounts.join(" "),
        "data-device": entry.device ?? "",
        "data-router": entry.router ?? "",
        class: ledger.fresh.has(entry.id) ? "new" : "",
      },
      td(String(entry.id), "num"),
      td(formatUtc(entry.timeMs)),
      td(h("a", { href: `/v1/blocks/${entry.blockHash}`, title: entry.blockHash, "data-key": `slot-${entry.id}` }, String(entry.slot)), "num"),
      td(entry.service),
      td(entry.kind),
      td(partiesOf(entry), "parties"),
      td(
        entry.energyWh !== null ? formatEnergy(entry.energyWh) : entry.octets !== undefined && entry.session !== null ? formatOctets(entry.octets) : "—",
        "num",
      ),
      td(
        entry.priceMicrosPerKwh !== null
          ? price(entry.priceMicrosPerKwh)
          : entry.priceMicrosPerGb !== undefined && entry.session !== null
            ? pricePerGb(entry.priceMicrosPerGb)
            : "—",
        "num",
      ),
      td(entry.amountMicros === null ? "—" : money(entry.amountMicros), "num"),
      td([
        h("a", { href: proof, class: "proof", "data-key": `proof-${entry.id}`, "aria-label": `Proof of entry ${entry.id} (JSON)` }, "open"),
        h(
          "a",
          {
            href: proof,
            download: `entry-${entry.id}.proof.json`,
            "data-key": `download-${entry.id}`,
            "aria-label": `Download the proof of entry ${entry.id}`,
          },
          "download",
        ),
      ]),
    );
  };
  // An entry never changes once settled: its id says it all (and its router's name once the Wi-Fi panel has read it).
  reconcileRows(
    $("ledger-table").tBodies[0],
    ledger.items,
    (entry) => entry.id,
    row,
    (entry) => (entry.router ? routerNameOf(entry.router) : ""),
  );
  ledger.fresh.clear();
  $("ledger-empty").hidden = ledger.items.length !== 0;
  const page = ledger.cursors.length;
  $("ledger-page").textContent = `Page ${page}`;
  $("ledger-first").disabled = page === 1;
  $("ledger-newer-page").disabled = page === 1;
  $("ledger-older").disabled = ledger.next === null;
  const newer = $("ledger-newer");
  newer.hidden = ledger.newer === 0;
  newer.textContent = ledger.newer === 0 ? "" : `${ledger.newer} newer ${ledger.newer === 1 ? "entry" : "entries"} arrived: “Newest” shows them.`;
}

/** How many entries the last digest counted: "N new entries in the last second", while the stream is live. */
function renderRate() {
  const element = $("ledger-rate");
  if (element === null) return;
  const live = $("connection").dataset.state === "live";
  const rate = state.ledger.rate;
  const f = state.ledger.filter;
  const filtered = f.service !== "" || f.account !== "" || f.device !== "" || f.router !== "" || f.interval !== "";
  element.hidden = !live;
  element.dataset.count = String(rate ?? 0);
  const what = rate === null || rate === 0 ? "No new entries" : `${rate} new ${rate === 1 ? "entry" : "entries"}`;
  element.textContent = `${what}${filtered ? " matching the filter" : ""} in the last ${ENTRY_DIGEST_MS === 1_000 ? "second" : `${ENTRY_DIGEST_MS / 1000} s`}.`;
}

function newestIntervals() {
  return [...state.intervals.values()].sort((a, b) => b.interval - a.interval);
}

function renderMarket() {
  const intervals = newestIntervals();
  const row = (v) =>
    h(
      "tr",
      { "data-interval": v.interval, "data-settled": String(v.settled), "data-moved": String(v.tradedWh !== "0" || v.gridImportWh > 0 || v.gridExportWh > 0) },
      td(String(v.interval), "num"),
      td(formatUtc(v.startMs)),
      td(v.settled ? "settled" : "cleared"),
      td(v.clearingPriceMicrosPerKwh === null ? "—" : price(v.clearingPriceMicrosPerKwh), "num"),
      td(formatEnergy(v.tradedWh), "num"),
      td(String(v.orders), "num"),
      td(String(v.trades), "num"),
      td(formatEnergy(v.gridImportWh), "num"),
      td(formatEnergy(v.gridExportWh), "num"),
      td(
        h(
          "button",
          {
            type: "button",
            "data-key": `interval-${v.interval}`,
            "aria-controls": "interval-detail",
            "aria-expanded": state.detail === v.interval ? "true" : "false",
            onclick: () => void showInterval(v.interval),
          },
          "Details",
          h("span", { class: "visually-hidden" }, ` of interval ${v.interval}`),
        ),
      ),
    );
  reconcileRows(
    $("intervals-table").tBodies[0],
    intervals.slice(0, INTERVALS_LISTED),
    (v) => v.interval,
    row,
    (v) => `${JSON.stringify(v)} ${state.detail === v.interval}`,
  );
  const oldestFirst = [...intervals].reverse();
  const x = oldestFirst.map((v) => v.startMs / 1000);
  charts.price?.setData([x, oldestFirst.map((v) => v.clearingPriceMicrosPerKwh)]);
  charts.volume?.setData([x, oldestFirst.map((v) => Number(v.tradedWh))]);
  charts.grid?.setData([x, oldestFirst.map((v) => v.gridImportWh), oldestFirst.map((v) => v.gridExportWh)]);
}

function renderBalances() {
  const row = (b) => {
    const proof = `/v1/proofs/balances/${encodeURIComponent(b.service)}/${b.account}`;
    return h(
      "tr",
      { "data-account": b.account },
      h("th", { scope: "row" }, hexCell(b.account)),
      td(money(b.balanceMicros), "num"),
      td(String(b.slot), "num"),
      td(
        h(
          "button",
          {
            type: "button",
            "data-key": `entries-${b.account}`,
            onclick: () => filterByAccount(b.account),
            "aria-label": `Show the ledger entries of account ${b.account}`,
          },
          "entries",
        ),
      ),
      td([
        h("a", { href: proof, "data-key": `bproof-${b.account}`, "aria-label": `Proof of the balance of ${b.account} (JSON)` }, "open"),
        h(
          "a",
          {
            href: proof,
            download: `balance-${b.account}.proof.json`,
            "data-key": `bdownload-${b.account}`,
            "aria-label": `Download the proof of the balance of ${b.account}`,
          },
          "download",
        ),
      ]),
    );
  };
  reconcileRows($("balances-table").tBodies[0], state.balances, (b) => `${b.service}/${b.account}`, row);
}

/** Bucket widths as the chart's caption says them: "10 s", "5 min", "1 h". */
function widthText(ms) {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

function renderWifi() {
  const wifi = state.wifi;
  const unavailable = wifi.available === false;
  $("wifi-note").textContent = unavailable
    ? "This gateway does not serve Wi-Fi billing (no wifi-billing service on its chain)."
    : `Routers' totals as the service keeps them, at the best block${wifi.routersComplete ? "" : ` (the first ${wifi.routers.length} routers by id)`}; disputed octets and refusals as the service counts them, across all routers; the chart and the sessions from the newest ${wifi.entries.length} Wi-Fi ledger entries. GB: 10⁹ octets.`;
  const totals = routerTotals(wifi.routers);
  const known = wifi.available === true;
  const counts = known && wifi.stats !== null ? serviceCounts(wifi.stats) : null;
  $("wifi-open").textContent = known ? String(totals.open) : "—";
  $("wifi-closed").textContent = known ? String(totals.closed) : "—";
  $("wifi-billed").textContent = known ? formatOctets(totals.billedOctets) : "—";
  $("wifi-paid").textContent = known ? money(totals.billedMicros) : "—";
  $("wifi-earned").textContent = known ? money(totals.earnedMicros) : "—";
  $("wifi-disputed").textContent = counts === null ? "—" : formatOctets(counts.disputedOctets);
  $("wifi-disputed").dataset.octets = counts === null ? "" : counts.disputedOctets.toString();
  $("wifi-disputed-entries").textContent = counts === null ? "" : "router-attested, not billed: all routers";
  $("wifi-refused").textContent = counts === null ? "—" : counts.refused.toString();
  $("wifi-refused").dataset.count = counts === null ? "" : counts.refused.toString();
  // Every refusal by code: envelopes', and registrations' and operator actions' too.
  $("wifi-refused-packages").textContent =
    counts === null
      ? ""
      : counts.codes.length === 0
        ? "none by any code"
        : `all refusals by code: ${counts.codes.map((c) => `${c.code} ${c.count}`).join(", ")}`;
  $("wifi-billed").dataset.octets = totals.billedOctets.toString();

  const routerRow = (r) =>
    h(
      "tr",
      { "data-router": r.router, "data-billed-octets": r.usage.billedOctets },
      h("th", { scope: "row" }, r.name === "" ? hexCell(r.router) : [h("span", { class: "name" }, r.name), " ", hexCell(r.router)]),
      td(r.status),
      td(formatOctets(r.usage.billedOctets), "num"),
      td(money(r.usage.billedMicros), "num"),
      td(money(r.usage.earnedMicros), "num"),
      td(String(r.usage.openSessions), "num"),
      td(formatOctets(r.usage.disputedOctets), "num"),
      td(pricePerGb(r.priceMicrosPerGb), "num"),
      td(
        h(
          "button",
          {
            type: "button",
            "data-key": `router-entries-${r.router}`,
            onclick: () => filterByRouter(r.router),
            "aria-label": `Show the ledger entries of router ${r.name === "" ? r.router : `${r.name} (${r.router})`}`,
          },
          "entries",
        ),
      ),
    );
  const top = topRouters(wifi.routers, WIFI_ROUTERS_SHOWN);
  reconcileRows($("routers-table").tBodies[0], top, (r) => r.router, routerRow);
  $("routers-empty").hidden = !known || top.length !== 0;

  const sessionRow = (s) =>
    h(
      "tr",
      { "data-session": s.session, "data-router": s.router ?? "", "data-reason": s.reason, "data-attested": String(s.attested) },
      h("th", { scope: "row" }, hexCell(s.session)),
      td(routerLabel(s.router)),
      td(hexCell(s.client)),
      td(formatOctets(s.octets), "num"),
      td(money(s.amountMicros), "num"),
      td(s.reason),
      td(
        s.attested ? h("span", { class: "attested", title: "Usage the router alone vouched for, without the client's voucher" }, "router-attested") : "client",
      ),
      td(formatUtc(s.timeMs)),
    );
  const sessions = recentSessions(wifi.entries, WIFI_SESSIONS_SHOWN);
  reconcileRows(
    $("sessions-table").tBodies[0],
    sessions,
    (s) => s.key,
    sessionRow,
    (s) => `${s.lastId} ${s.entries} ${routerNameOf(s.router)}`,
  );
  $("sessions-empty").hidden = !known || sessions.length !== 0;

  const series = octetsOverTime(wifi.entries, WIFI_BUCKETS_MAX);
  $("wifi-chart-caption").textContent =
    series.widthMs === null ? "Billed and disputed (GB), by block time" : `Billed and disputed (GB) per ${widthText(series.widthMs)}, by block time (UTC)`;
  // Each bar at the middle of its bucket, the axis from the first bucket's start to the last one's end (bars whole at both edges).
  const width = series.widthMs === null ? 0 : series.widthMs / 1000;
  charts.wifi?.setData([series.times.map((t) => t + width / 2), series.billed.map(Number), series.disputed.map(Number)]);
  if (series.times.length > 0) charts.wifi?.setScale("x", { min: series.times[0], max: series.times[series.times.length - 1] + width });
}

function renderConfig() {
  for (const element of document.querySelectorAll(".currency")) element.textContent = state.config.currency;
  const select = $("filter-service");
  const chosen = state.ledger.filter.service;
  const names = [...state.services.values()].map((s) => s.name).sort();
  if (chosen !== "" && !names.includes(chosen)) names.push(chosen);
  select.replaceChildren(h("option", { value: "" }, "All services"), ...names.map((name) => h("option", { value: name, selected: name === chosen }, name)));
}

// ---------------------------------------------------------------------------------------------
// Charts (uPlot): x is the interval's start in Unix seconds, shown in UTC

const charts = { price: null, volume: null, grid: null, refine: null, wifi: null };
const COLORS = { price: "#0b63c4", traded: "#1c7c3a", import: "#b3261e", export: "#c27c00", refine: "#6a3fb5", billed: "#0b63c4", disputed: "#b3261e" };

/** Time ticks in UTC, 24-hour: "06:15" (with seconds when ticks are under a minute apart), with the date ("06-21 06:15") at the first tick and where a day starts. */
function timeTicks(splits) {
  let day = "";
  const seconds = splits.length > 1 && splits[1] - splits[0] < 60;
  return splits.map((at) => {
    const text = formatUtc(at * 1000);
    const [date, time] = [text.slice(5, 10), text.slice(11, seconds ? 19 : 16)];
    const label = date === day ? time : `${date} ${time}`;
    day = date;
    return label;
  });
}

/** Tick spacings of the Wi-Fi chart's time axis (seconds): whole seconds at least, as its buckets are. */
const WIFI_TICK_SECONDS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1_800, 3_600, 10_800, 21_600, 43_200, 86_400];

function makeChart(box, series, yValues, xLabel = "Interval start (UTC)", xIncrements = undefined) {
  const options = {
    width: Math.max(box.clientWidth, 200),
    height: CHART_HEIGHT,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
    scales: { x: { time: true } },
    axes: [
      { values: (_u, splits) => timeTicks(splits), ...(xIncrements === undefined ? {} : { incrs: xIncrements }) },
      { values: (_u, splits) => splits.map(yValues), size: 70 },
    ],
    series: [{ label: xLabel, value: (_u, v) => (v === null || v === undefined ? "—" : formatUtc(v * 1000)) }, ...series],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const chart = new uPlot(options, [[], ...series.map(() => [])], box);
  new ResizeObserver(() => chart.setSize({ width: Math.max(box.clientWidth, 200), height: CHART_HEIGHT })).observe(box);
  return chart;
}

function makeCharts() {
  const bars = uPlot.paths.bars({ size: [0.6, 40] });
  const micros = (v) => (v === null || v === undefined ? "—" : price(Math.round(v)));
  const kwh = (v) => (v === null || v === undefined ? "—" : formatEnergy(Math.round(v)));
  const axisMicros = (v) => formatFixed(Math.round(v), MICROS_DIGITS, 2);
  const axisKwh = (v) => formatFixed(Math.round(v), WH_DIGITS, 0);
  charts.price = makeChart(
    $("chart-price"),
    [
      {
        label: "Clearing price",
        stroke: COLORS.price,
        width: 2,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: true, size: 6, fill: COLORS.price },
        value: (_u, v) => micros(v),
      },
    ],
    axisMicros,
  );
  charts.volume = makeChart(
    $("chart-volume"),
    [{ label: "Traded", stroke: COLORS.traded, fill: `${COLORS.traded}88`, paths: bars, points: { show: false }, value: (_u, v) => kwh(v) }],
    axisKwh,
  );
  charts.grid = makeChart(
    $("chart-grid"),
    [
      { label: "Grid import", stroke: COLORS.import, width: 2, value: (_u, v) => kwh(v) },
      { label: "Grid export", stroke: COLORS.export, width: 2, value: (_u, v) => kwh(v) },
    ],
    axisKwh,
  );
  // Octets as numbers for drawing only (exact below 2^53 octets, 9 PB); the figures shown are the tables' exact ones.
  const gb = (v) => (v === null || v === undefined ? "—" : formatOctets(Math.round(v)));
  // Billed left and disputed right of each bucket's middle, side by side.
  charts.wifi = makeChart(
    $("chart-wifi"),
    [
      {
        label: "Billed",
        stroke: COLORS.billed,
        fill: `${COLORS.billed}88`,
        paths: uPlot.paths.bars({ size: [0.4, 30], align: -1 }),
        points: { show: false },
        value: (_u, v) => gb(v),
      },
      {
        label: "Disputed",
        stroke: COLORS.disputed,
        fill: `${COLORS.disputed}88`,
        paths: uPlot.paths.bars({ size: [0.4, 30], align: 1 }),
        points: { show: false },
        value: (_u, v) => gb(v),
      },
    ],
    (v) => formatFixed(Math.round(v), OCTET_DIGITS, 0),
    "Bucket (UTC)",
    WIFI_TICK_SECONDS,
  );
  charts.refine = makeChart(
    $("chart-refine"),
    [
      {
        label: "Refine",
        stroke: COLORS.refine,
        paths: () => null,
        points: { show: true, size: 6, fill: COLORS.refine },
        value: (_u, v) => (v === null || v === undefined ? "—" : `${v} ms`),
      },
    ],
    (v) => `${Math.round(v)} ms`,
    "Submitted (UTC)",
  );
}

// ---------------------------------------------------------------------------------------------
// Reading the API

function acceptBlock(block) {
  if (state.head === null || block.slot >= state.head.slot) state.head = block;
  const others = state.blocks.filter((b) => b.slot !== block.slot);
  others.push(block);
  others.sort((a, b) => b.slot - a.slot);
  state.blocks = others.slice(0, BLOCKS_SHOWN);
  render(renderHead, renderBlocks, renderCores);
}

function acceptPackage(pkg) {
  state.packages.set(pkg.hash, pkg);
  if (pkg.service === WIFI_SERVICE && (pkg.status === "accumulated" || pkg.status === "failed")) refreshWifiSoon();
  if (state.packages.size > PACKAGES_KEPT) {
    for (const old of newestPackages().slice(PACKAGES_KEPT)) state.packages.delete(old.hash);
  }
  render(renderPackages, renderCores);
}

function acceptInterval(interval) {
  state.intervals.set(interval.interval, interval);
  if (state.intervals.size > INTERVALS_SHOWN) {
    for (const old of newestIntervals().slice(INTERVALS_SHOWN)) state.intervals.delete(old.interval);
  }
  render(renderMarket);
  refreshBalancesSoon();
}

let digestQuietTimer = 0;
/**
 * A digest (`event: entries`, gateway/ledger/types.ts EntryDigestView) of the entries that matched
 * the page's filter (the stream applies it) since the last: `count` of them, the newest in `latest`,
 * newest first. On the newest page they go on top, rows kept by id; when more came than the digest
 * carries, the rows below it are no longer the next older ones, so the page ends at its oldest and
 * "Older" reads on from there by cursor. On an older page they are counted.
 */
function acceptDigest(digest) {
  const ledger = state.ledger;
  clearTimeout(digestQuietTimer);
  digestQuietTimer = setTimeout(() => {
    ledger.rate = null;
    render(renderRate);
  }, DIGEST_QUIET_MS);
  // The stream applies the filter (the router's too); the page shows only rows its own filter matches, whatever it was sent.
  const latest = digest.latest.filter((entry) => entryMatches(entry, ledger.filter));
  const count = digest.count;
  ledger.rate = count;
  const gap = digest.count > digest.latest.length;
  if (ledger.cursors.length > 1) {
    ledger.newer += count;
  } else if (latest.length > 0) {
    const known = new Set(ledger.items.map((e) => e.id));
    for (const entry of latest) if (!known.has(entry.id)) ledger.fresh.add(entry.id);
    const oldest = digest.latest[digest.latest.length - 1].id;
    const kept = ledger.items.filter((e) => !gap || e.id >= oldest).filter((e) => !latest.some((n) => n.id === e.id));
    const items = [...latest, ...kept].sort((a, b) => b.id - a.id);
    ledger.items = items.slice(0, LEDGER_PAGE_SIZE);
    if (gap || items.length > LEDGER_PAGE_SIZE) ledger.next = ledger.items[ledger.items.length - 1].id;
  }
  render(renderLedger, renderRate);
  if (digest.latest.some((e) => e.service === ENERGY_SERVICE) || (gap && (ledger.filter.service === "" || ledger.filter.service === ENERGY_SERVICE)))
    refreshBalancesSoon();
  if (digest.latest.some((e) => e.service === WIFI_SERVICE)) refreshWifiSoon();
}

async function loadConfig() {
  try {
    const config = await api("/v1/dashboard/config");
    state.config = { currency: config.currency, coresCount: config.coresCount };
  } catch {
    // The defaults stand: an older server without the route.
  }
  render(renderConfig, renderLedger, renderMarket, renderBalances, renderCores, renderWifi);
}

async function loadServices() {
  const services = await api("/v1/services");
  state.services = new Map(services.map((s) => [s.id, s]));
  render(renderConfig, renderBlocks);
}

async function loadChain() {
  try {
    const [head, blocks] = await Promise.all([api("/v1/chain/head"), api(`/v1/blocks${query({ limit: BLOCKS_SHOWN })}`)]);
    for (const block of [...blocks.items].reverse()) acceptBlock(block);
    acceptBlock(head);
    showError("chain-error", null);
  } catch (e) {
    showError("chain-error", e);
    throw e;
  }
}

async function loadPackages() {
  try {
    const page = await api(`/v1/packages${query({ limit: PACKAGES_KEPT })}`);
    for (const pkg of page.items) state.packages.set(pkg.hash, pkg);
    for (const old of newestPackages().slice(PACKAGES_KEPT)) state.packages.delete(old.hash);
    render(renderPackages, renderCores);
    showError("packages-error", null);
  } catch (e) {
    showError("packages-error", e);
    throw e;
  }
}

async function loadIntervals() {
  try {
    const page = await api(`/v1/energy/intervals${query({ limit: INTERVALS_SHOWN })}`);
    for (const interval of page.items) state.intervals.set(interval.interval, interval);
    for (const old of newestIntervals().slice(INTERVALS_SHOWN)) state.intervals.delete(old.interval);
    render(renderMarket);
    showError("market-error", null);
  } catch (e) {
    showError("market-error", e);
    throw e;
  }
}

let balancesReadAtMs = 0;
let balancesTimer = 0;
async function loadBalances() {
  balancesReadAtMs = Date.now();
  try {
    state.balances = [...(await api(`/v1/balances${query({ service: ENERGY_SERVICE })}`))];
    render(renderBalances);
    showError("balances-error", null);
  } catch (e) {
    // A gateway without the energy service has no balances to show.
    if (e instanceof ApiError && e.status === 404) state.balances = [];
    else showError("balances-error", e);
    render(renderBalances);
  }
}

/** Balances again, at most once per BALANCES_REFRESH_MS however many entries arrive. */
function refreshBalancesSoon() {
  if (balancesTimer !== 0) return;
  const wait = Math.max(0, balancesReadAtMs + BALANCES_REFRESH_MS - Date.now());
  balancesTimer = setTimeout(() => {
    balancesTimer = 0;
    void loadBalances();
  }, wait);
}

let wifiReadAtMs = 0;
let wifiTimer = 0;
let wifiReading = null;

/**
 * The Wi-Fi panel's reads: the routers (by id, at most WIFI_ROUTER_PAGES_MAX pages), the ledger's
 * Wi-Fi entries newer than the window's newest (at most WIFI_ENTRIES_KEPT of them, by cursor), and
 * the service's counters. A gateway without Wi-Fi billing answers the router list 404: the
 * panel says so. One read at a time.
 */
function loadWifi() {
  wifiReading ??= readWifi().finally(() => (wifiReading = null));
  return wifiReading;
}

async function readWifi() {
  wifiReadAtMs = Date.now();
  const wifi = state.wifi;
  try {
    const routers = [];
    let after;
    let complete = false;
    for (let page = 0; page < WIFI_ROUTER_PAGES_MAX; page++) {
      const answer = await api(`/v1/wifi/routers${query({ after, limit: API_PAGE_MAX })}`);
      routers.push(...answer.items);
      if (answer.next === null) {
        complete = true;
        break;
      }
      after = answer.next;
    }
    wifi.available = true;
    wifi.routers = routers;
    wifi.routersComplete = complete;
    wifi.names = new Map(routers.map((r) => [r.router, r.name]));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      wifi.available = false;
      showError("wifi-error", null);
      render(renderWifi);
      return;
    }
    showError("wifi-error", e);
    render(renderWifi);
    throw e;
  }
  try {
    const newest = wifi.entries[0]?.id ?? -1;
    const fresh = [];
    let before;
    let reached = false;
    for (let pages = 0; pages < WIFI_ENTRIES_KEPT / API_PAGE_MAX; pages++) {
      const page = await api(`/v1/entries${query({ service: WIFI_SERVICE, before, limit: API_PAGE_MAX })}`);
      fresh.push(...page.items.filter((e) => e.id > newest));
      // Newest first: down to the window's newest, or to the ledger's oldest.
      if (page.next === null || page.next <= newest + 1 || page.items.some((e) => e.id <= newest)) {
        reached = true;
        break;
      }
      before = page.next;
    }
    wifi.entries = mergeWindow(wifi.entries, fresh, reached, WIFI_ENTRIES_KEPT);
    wifi.stats = await api("/v1/wifi/stats");
    showError("wifi-error", null);
  } catch (e) {
    showError("wifi-error", e);
    throw e;
  } finally {
    render(renderWifi, renderLedger);
  }
}

/** The Wi-Fi panel again, at most once per WIFI_REFRESH_MS however many packages and entries arrive. */
function refreshWifiSoon() {
  if (wifiTimer !== 0 || state.wifi.available === false) return;
  const wait = Math.max(0, wifiReadAtMs + WIFI_REFRESH_MS - Date.now());
  wifiTimer = setTimeout(() => {
    wifiTimer = 0;
    void loadWifi().catch(() => undefined);
  }, wait);
}

/** The ledger page the cursors point at, with the filter the form holds. */
async function loadLedger() {
  const ledger = state.ledger;
  const request = ++ledger.request;
  const before = ledger.cursors[ledger.cursors.length - 1];
  const { service, account, device, router, interval } = ledger.filter;
  try {
    const page = await api(`/v1/entries${query({ service, account, device, router, interval, before, limit: LEDGER_PAGE_SIZE })}`);
    if (request !== ledger.request) return;
    if (ledger.cursors.length === 1) {
      // Entries that came live after this page was read stay on top.
      const newest = page.items[0]?.id ?? -1;
      const live = ledger.items.filter((e) => e.id > newest);
      ledger.items = [...live, ...page.items].slice(0, LEDGER_PAGE_SIZE);
      ledger.next = live.length === 0 ? page.next : (ledger.items[ledger.items.length - 1]?.id ?? page.next);
    } else {
      ledger.items = [...page.items];
      ledger.next = page.next;
    }
    showError("ledger-error", null);
  } catch (e) {
    if (request !== ledger.request) return;
    showError("ledger-error", e);
  }
  render(renderLedger);
}

async function showInterval(interval) {
  const panel = $("interval-detail");
  if (state.detail === interval && !panel.hidden) {
    closeInterval();
    return;
  }
  state.detail = interval;
  let view;
  try {
    view = await api(`/v1/energy/intervals/${interval}`);
  } catch (e) {
    showError("market-error", e);
    return;
  }
  $("interval-detail-title").textContent = `Interval ${view.interval}: ${formatUtc(view.startMs)} to ${formatUtc(view.endMs)} UTC`;
  const sum = (field) => view.households.reduce((total, r) => total + BigInt(r[field]), 0n);
  $("interval-detail-totals").textContent =
    view.households.length === 0
      ? "No household results for this interval."
      : `Community: bought ${formatEnergy(sum("boughtWh"))} from each other, ${formatEnergy(sum("gridImportWh"))} from the grid; sold ${formatEnergy(sum("gridExportWh"))} to the grid.`;
  const rows = view.households.map((r) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, hexCell(r.household)),
      td(formatEnergy(r.boughtWh), "num"),
      td(formatEnergy(r.soldWh), "num"),
      td(formatEnergy(r.gridImportWh), "num"),
      td(formatEnergy(r.gridExportWh), "num"),
      td(money(r.paidMicros), "num"),
      td(money(r.receivedMicros), "num"),
      td(money(r.netMicros), "num"),
    ),
  );
  $("households-table").tBodies[0].replaceChildren(...rows);
  panel.hidden = false;
  render(renderMarket);
  panel.focus();
}

function closeInterval() {
  const interval = state.detail;
  state.detail = null;
  $("interval-detail").hidden = true;
  renderMarket();
  document.querySelector(`[data-key="interval-${interval}"]`)?.focus();
}

/** Everything the page shows, read again (at start, in polling, after the stream reconnects). */
async function refreshAll() {
  const results = await Promise.allSettled([loadServices(), loadChain(), loadPackages(), loadIntervals(), loadBalances(), loadLedger(), loadWifi()]);
  return results.every((r) => r.status === "fulfilled" || !(r.reason instanceof ApiError && r.reason.status === 0));
}

// ---------------------------------------------------------------------------------------------
// Live: Server-Sent Events, polling while they are down

let source = null;
let pollTimer = 0;
let streamRetryMs = STREAM_RETRY_MS_MIN;
let streamRetryTimer = 0;

function setConnection(mode, text) {
  const element = $("connection");
  element.dataset.state = mode;
  element.textContent = text;
  if (mode !== "live") state.ledger.rate = null;
  render(renderRate);
}

function startPolling(reason) {
  setConnection("polling", `Polling every ${POLL_MS / 1000} s (${reason})`);
  if (pollTimer !== 0) return;
  const tick = async () => {
    const reachable = await refreshAll();
    if (pollTimer === 0) return;
    if (!reachable) setConnection("offline", "Offline: the gateway does not answer; trying again");
    else if ($("connection").dataset.state === "offline") setConnection("polling", `Polling every ${POLL_MS / 1000} s (${reason})`);
    pollTimer = setTimeout(tick, POLL_MS);
  };
  pollTimer = setTimeout(tick, 0);
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = 0;
}

/** The view an event carries: its data is the view (a LedgerEvent wrapping it is unwrapped too). */
function viewOf(kind, data) {
  const parsed = JSON.parse(data);
  return parsed !== null && typeof parsed[kind] === "object" && parsed[kind] !== null ? parsed[kind] : parsed;
}

/**
 * Opens the live stream (closing one already open): entries as digests (`entries=digest`), of the
 * ledger's filter, so a digest's count and rows are the page's; a filter change opens it again.
 */
function connectStream() {
  clearTimeout(streamRetryTimer);
  source?.close();
  const { service, account, device, router, interval } = state.ledger.filter;
  const opened = new EventSource(`/v1/events${query({ entries: "digest", service, account, device, router, interval })}`);
  source = opened;
  // Events of a stream closed meanwhile (the filter changed) are not this page's any more.
  const current = () => source === opened;
  opened.addEventListener("open", () => {
    if (!current()) return;
    streamRetryMs = STREAM_RETRY_MS_MIN;
    stopPolling();
    setConnection("live", "Live");
    // What happened while the stream was being opened (or was down) is read by cursor.
    void refreshAll();
  });
  const handlers = { block: acceptBlock, entries: acceptDigest, package: acceptPackage, interval: acceptInterval };
  for (const [kind, accept] of Object.entries(handlers)) {
    opened.addEventListener(kind, (event) => {
      if (!current()) return;
      try {
        accept(kind === "entries" ? JSON.parse(event.data) : viewOf(kind, event.data));
      } catch (e) {
        console.error(`bad ${kind} event`, e);
      }
    });
  }
  // The server closes a client that fell behind: read by cursor, then open again.
  opened.addEventListener("overflow", () => {
    if (!current()) return;
    opened.close();
    startPolling("the live stream fell behind");
    streamRetryTimer = setTimeout(connectStream, STREAM_RETRY_MS_MIN);
  });
  opened.addEventListener("error", () => {
    if (!current()) return;
    startPolling("the live stream is unavailable");
    if (opened.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. 503 when the server has its most clients): open again later.
      streamRetryTimer = setTimeout(connectStream, streamRetryMs);
      streamRetryMs = Math.min(streamRetryMs * 2, STREAM_RETRY_MS_MAX);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The ledger's form and pages

const HEX_ID = /^[0-9a-f]{32}$/;

function filterFromForm() {
  const form = $("ledger-filter");
  const data = new FormData(form);
  const text = (name) =>
    String(data.get(name) ?? "")
      .trim()
      .toLowerCase();
  return { service: String(data.get("service") ?? ""), account: text("account"), device: text("device"), router: text("router"), interval: text("interval") };
}

function fillForm(filter) {
  $("filter-service").value = filter.service;
  $("filter-account").value = filter.account;
  $("filter-device").value = filter.device;
  $("filter-router").value = filter.router;
  $("filter-interval").value = filter.interval;
}

/** The filter in the page's address, so a filtered ledger can be bookmarked and shared. */
function filterToAddress(filter) {
  history.replaceState(null, "", `${location.pathname}${query(filter)}${location.hash}`);
}

function filterFromAddress() {
  const params = new URLSearchParams(location.search);
  const get = (name) => (params.get(name) ?? "").trim().toLowerCase();
  const filter = { service: params.get("service") ?? "", account: get("account"), device: get("device"), router: get("router"), interval: get("interval") };
  if (filter.account !== "" && !HEX_ID.test(filter.account)) filter.account = "";
  if (filter.device !== "" && !HEX_ID.test(filter.device)) filter.device = "";
  if (filter.router !== "" && !HEX_ID.test(filter.router)) filter.router = "";
  if (filter.interval !== "" && !/^[0-9]+$/.test(filter.interval)) filter.interval = "";
  return filter;
}

function applyFilter(filter) {
  const ledger = state.ledger;
  ledger.filter = filter;
  ledger.cursors = [undefined];
  ledger.items = [];
  ledger.next = null;
  ledger.newer = 0;
  ledger.rate = null;
  filterToAddress(filter);
  void loadLedger();
  // The stream's digests are of its filter: open it again with this one.
  if (source !== null) connectStream();
  // The rows of the filter before go at once: until the page is read, the table is empty, not stale.
  render(renderRate, renderLedger);
}

function filterByAccount(account) {
  const filter = { service: ENERGY_SERVICE, account, device: "", router: "", interval: "" };
  fillForm(filter);
  applyFilter(filter);
  $("ledger-title").scrollIntoView();
  $("filter-account").focus();
}

function filterByRouter(router) {
  const filter = { service: WIFI_SERVICE, account: "", device: "", router, interval: "" };
  fillForm(filter);
  applyFilter(filter);
  $("ledger-title").scrollIntoView();
  $("filter-router").focus();
}

function wireLedger() {
  const form = $("ledger-filter");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // The inputs' patterns say what is wrong, in the browser's words, next to the field.
    if (!form.reportValidity()) return;
    applyFilter(filterFromForm());
  });
  form.addEventListener("reset", () => {
    // After the browser has cleared the fields.
    setTimeout(() => applyFilter(filterFromForm()), 0);
  });
  $("ledger-older").addEventListener("click", () => {
    const ledger = state.ledger;
    if (ledger.next === null) return;
    ledger.cursors.push(ledger.next);
    void loadLedger();
  });
  $("ledger-newer-page").addEventListener("click", () => {
    const ledger = state.ledger;
    if (ledger.cursors.length === 1) return;
    ledger.cursors.pop();
    if (ledger.cursors.length === 1) ledger.newer = 0;
    void loadLedger();
  });
  $("ledger-first").addEventListener("click", () => {
    const ledger = state.ledger;
    ledger.cursors = [undefined];
    ledger.newer = 0;
    void loadLedger();
  });
  $("interval-detail-close").addEventListener("click", closeInterval);
  $("interval-detail").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeInterval();
  });
}

// ---------------------------------------------------------------------------------------------

function start() {
  const filter = filterFromAddress();
  state.ledger.filter = filter;
  fillForm(filter);
  wireLedger();
  // Where the digests' count is shown, above the ledger's table.
  $("ledger-newer").before(h("p", { id: "ledger-rate", class: "note", hidden: true }));
  makeCharts();
  render(renderHead, renderLedger, renderPackages, renderCores, renderMarket, renderBalances, renderWifi);
  void loadConfig();
  if (typeof EventSource === "function") connectStream();
  else startPolling("this browser has no EventSource");
  void refreshAll();
}

start();
