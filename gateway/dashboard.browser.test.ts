/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against a real
 * `jamgate start` with a short energy simulation run into it (`jamgate sim energy --mqtt --node`),
 * as a user would watch it. The head slot moves and blocks arrive live, ledger rows appear and
 * link to proofs that are jamgate-proof/1 documents, the market fills its charts and intervals,
 * balances show money with the currency label, the ledger's filter form works by keyboard, the
 * page has no horizontal overflow at 375 px, and without the event stream the page polls.
 * Screenshots go to .artifacts/dashboard/ (gitignored). Every wait polls a condition with a
 * generous deadline: nothing here depends on how fast the machine is.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { runCli, type RunningCli } from "../scripts/testing/process.ts";
import { ARTIFACTS, type Chromium, launchChromium, type PageDocument, type PageElement, type PageWindow } from "./testing/browser.ts";

declare const document: PageDocument;
declare const window: PageWindow;
declare function getComputedStyle(element: PageElement): { readonly outlineStyle: string };

/** Generous: on a busy 2-core machine a start took over 20 s, and the simulation's 4 intervals take ~50 slots. */
const DEADLINE_MS = 120_000;
/** Long enough that the node, the gateway, the simulation and chromium share 2 cores without the market's orders arriving late. */
const SLOT_MS = 500;
/** The label `jamgate start` shows money with by default. */
/** Not the default label: the page shows the one `jamgate start --currency` was given. */
const CURRENCY = "CHF";
const ENERGY_KINDS = ["trade", "grid-import", "grid-export", "shortfall", "surplus"];

let gateway: RunningCli | null = null;
let sim: RunningCli | null = null;
let chromium: Chromium | undefined;
let baseUrl = "";
let dataDir = "";
let ports: { mqtt: number; ws: number; http: number; rpc: number };

const openPage = (options?: { width?: number; height?: number }) => chromium!.openPage(options);

/** What the test reads of a proof (gateway/ledger/proof.ts has the whole type). */
interface Proof {
  readonly format: string;
  readonly claim: { readonly kind: string };
  readonly headers: readonly string[];
}

const headSlot = (page: Page) =>
  page
    .locator("#head-slot")
    .textContent()
    .then((text) => Number(text));
const ledgerRows = (page: Page) => page.locator("#ledger-table tbody tr");
/** Rows of energy-market entries (each names the accounts it moves money for). */
const ENERGY_ROWS = ENERGY_KINDS.map((kind) => `#ledger-table tbody tr[data-kind="${kind}"]`).join(", ");

beforeAll(async () => {
  dataDir = tempDir();
  // A market of 15-minute intervals at 3 market minutes per slot (5 slots an interval), pay-as-clear
  // so traded intervals have a clearing price; written before the first start, as
  // simulators/energy/cli.test.ts does. It opens at 08:00 on a June day, so the simulation most
  // likely runs in daylight and households trade; the checks below hold at night too (households
  // then only buy from the grid), since how many slots pass before it starts depends on the machine.
  writeFileSync(
    join(dataDir, "market.json"),
    JSON.stringify({
      startMs: String(Date.parse("2026-06-21T08:00:00Z")),
      intervalMs: 900_000,
      startSlot: 0,
      marketMsPerSlot: 180_000,
      mode: "pay-as-clear",
      importPriceMicrosPerKwh: 300_000,
      exportPriceMicrosPerKwh: 80_000,
      settlementDelayMs: 1_800_000,
    }),
  );
  ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort(), rpc: await freePort() };
  gateway = runCli([
    "start",
    "--data-dir",
    dataDir,
    "--slot-ms",
    String(SLOT_MS),
    "--currency",
    CURRENCY,
    "--mqtt-port",
    String(ports.mqtt),
    "--ws-port",
    String(ports.ws),
    "--http-port",
    String(ports.http),
    "--rpc-port",
    String(ports.rpc),
  ]);
  const [started] = await Promise.all([gateway.waitFor(/"msg":"jamgate started"/, DEADLINE_MS), launchChromium().then((launched) => (chromium = launched))]);
  baseUrl = (JSON.parse(started) as { http: string }).http;
}, DEADLINE_MS + 30_000);

afterAll(async () => {
  await chromium?.close();
  for (const child of [sim, gateway]) {
    if (child === null) continue;
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGTERM");
    await child.exited;
  }
}, 60_000);

describe.sequential("the dashboard in chromium, on a running jamgate", () => {
  it(
    "shows the chain head moving and blocks arriving, live over /v1/events",
    async () => {
      const { page, problems } = await openPage();
      const stream = page.waitForRequest((request) => new URL(request.url()).pathname === "/v1/events", { timeout: DEADLINE_MS });
      await page.goto(baseUrl);
      expect(await page.title()).toMatch(/^jamgate/);
      // Entries come as digests, a second's worth at a time, not an event each.
      expect(new URL((await stream).url()).searchParams.get("entries")).toBe("digest");
      await page.waitForFunction(() => /^\d+$/.test(document.querySelector("#head-slot")?.textContent ?? ""), undefined, { timeout: DEADLINE_MS });
      const first = await headSlot(page);
      // The stream, not a reload, moves it: three more slots.
      await page.waitForFunction((slot) => Number(document.querySelector("#head-slot")?.textContent) >= slot + 3, first, { timeout: DEADLINE_MS });
      expect(await page.locator("#connection").getAttribute("data-state")).toBe("live");
      await page.waitForFunction(() => document.querySelectorAll("#blocks tbody tr").length >= 3, undefined, { timeout: DEADLINE_MS });
      const slots = await page.locator("#blocks tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-slot"))));
      expect(slots).toEqual([...slots].sort((a, b) => b - a));
      expect(slots[0]).toBeGreaterThan(first);
      // Each core has a row, from the chain's parameters (the tiny chain's 2), busy or not.
      await page.waitForFunction(() => document.querySelectorAll("#cores-table tbody tr").length === 2, undefined, { timeout: DEADLINE_MS });
      await page.screenshot({ path: join(ARTIFACTS, "chain.png") });
      expect(problems).toEqual([]);
    },
    DEADLINE_MS + 30_000,
  );

  it(
    "shows ledger rows as a simulation settles, each linking to a jamgate-proof/1 document",
    async () => {
      const { page, problems } = await openPage();
      await page.goto(baseUrl);
      const token = readFileSync(join(dataDir, "operator-token"), "utf8").trim();
      sim = runCli([
        "sim",
        "energy",
        "--households",
        "3",
        "--hours",
        "1",
        "--seed",
        "9",
        "--no-progress",
        "--json",
        "--out",
        join(tempDir(), "report"),
        "--mqtt",
        `mqtt://127.0.0.1:${ports.mqtt}`,
        "--node",
        `ws://127.0.0.1:${ports.rpc}`,
        "--gateway",
        baseUrl,
        "--token",
        token,
      ]);
      // Rows arrive while the page is open, through the stream's digests (the page reads no entries
      // by cursor while it is live): first the devices' settled envelopes, then the market's entries.
      await page.waitForSelector(ENERGY_ROWS, { timeout: DEADLINE_MS * 2 });
      // The digests' count is shown above the table (a second's entries; the simulation settles some every slot).
      await page.waitForFunction(
        () => /^[1-9][0-9]* new entr(y|ies) in the last second\.$/.test(document.querySelector("#ledger-rate")?.textContent ?? ""),
        undefined,
        { timeout: DEADLINE_MS },
      );
      expect(await ledgerRows(page).count()).toBeGreaterThan(0);
      const ids = await ledgerRows(page).evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-id"))));
      expect(ids).toEqual([...ids].sort((a, b) => b - a));
      // Money carries its unit and the currency label, with the exact micro-unit digits.
      const amount = await page.locator(ENERGY_ROWS).first().locator("td").nth(8).textContent();
      expect(amount).toMatch(new RegExp(`^-?[0-9\u202f]+\\.[0-9]{2,6} ${CURRENCY}$`));
      await page.screenshot({ path: join(ARTIFACTS, "ledger.png"), fullPage: true });

      // Click through to an energy entry's proof: the browser shows the document the API made.
      const id = Number(await page.locator(ENERGY_ROWS).first().getAttribute("data-id"));
      // Its "download" link saves the same document under a name of its own.
      const links = page.locator(`#ledger-table tbody tr[data-id="${id}"]`);
      const [download] = await Promise.all([
        page.waitForEvent("download", { timeout: DEADLINE_MS }),
        links.getByRole("link", { name: `Download the proof of entry ${id}` }).click(),
      ]);
      expect(download.suggestedFilename()).toBe(`entry-${id}.proof.json`);
      const saved = JSON.parse(readFileSync(await download.path(), "utf8")) as Proof;
      expect(saved.format).toBe("jamgate-proof/1");
      // By its id: rows keep arriving above it meanwhile.
      const [response] = await Promise.all([page.waitForResponse(`**/v1/proofs/entries/${id}`, { timeout: DEADLINE_MS }), links.locator("a.proof").click()]);
      await page.waitForURL(`**/v1/proofs/entries/${id}`, { timeout: DEADLINE_MS });
      expect(response.status()).toBe(200);
      const proof = (await response.json()) as Proof;
      expect(proof.format).toBe("jamgate-proof/1");
      expect(proof.claim.kind).toBe("energy-entry");
      expect(proof.headers.length).toBeGreaterThan(0);
      // biome-ignore lint/performance/useDomNodeTextContent: playwright's Locator.innerText, not the DOM's.
      expect(await page.locator("body").innerText()).toContain('"format":"jamgate-proof/1"');
      await page.screenshot({ path: join(ARTIFACTS, "proof.png") });
      await page.goBack();
      await page.waitForSelector("#ledger-table tbody tr", { timeout: DEADLINE_MS });
      expect(await page.locator(".hint code").first().textContent()).toBe("jamgate verify proof.json");
      expect(problems).toEqual([]);
    },
    DEADLINE_MS * 3,
  );

  it(
    "fills the energy market's charts and intervals and the balances, money with its currency label",
    async () => {
      expect(sim).not.toBeNull();
      const done = await sim!.exited;
      expect(done, sim!.output()).toEqual({ code: 0, signal: null });
      const { page, problems } = await openPage();
      await page.goto(`${baseUrl}/#market`);
      // A settled interval in which energy moved (bought from the grid at least, by night too).
      const moved = '#intervals-table tbody tr[data-settled="true"][data-moved="true"]';
      await page.waitForSelector(moved, { timeout: DEADLINE_MS });
      // Clearing prices where households traded ("—" where none did).
      const prices = await page.locator("#intervals-table tbody tr td:nth-child(4)").allTextContents();
      for (const price of prices.filter((p) => p !== "—")) expect(price).toMatch(new RegExp(`^[0-9]+\\.[0-9]{2,6} ${CURRENCY}/kWh$`));
      // Three charts of the market and one of refine times, drawn by uPlot on canvases.
      expect(await page.locator("#market .chart-box canvas").count()).toBe(3);
      expect(await page.locator("#chart-refine canvas").count()).toBe(1);
      await page.waitForFunction(() => document.querySelectorAll("#balances-table tbody tr").length === 3, undefined, { timeout: DEADLINE_MS });
      // The first cell of a row is its account (a row header), the first data cell its balance.
      for (const balance of await page.locator("#balances-table tbody tr td:nth-of-type(1)").allTextContents())
        expect(balance).toMatch(new RegExp(`^-?[0-9\u202f]+\\.[0-9]{2,6} ${CURRENCY}$`));
      // Its households, opened and closed by keyboard.
      const details = page.locator(`${moved} button`).first();
      await details.focus();
      await page.keyboard.press("Enter");
      await page.waitForSelector("#interval-detail:not([hidden]) #households-table tbody tr", { timeout: DEADLINE_MS });
      expect(await page.locator("#households-table tbody tr").count()).toBeGreaterThan(0);
      await page.keyboard.press("Escape");
      await page.waitForSelector("#interval-detail[hidden]", { state: "attached", timeout: DEADLINE_MS });
      await page.locator("#market").screenshot({ path: join(ARTIFACTS, "market.png") });
      expect(problems).toEqual([]);
    },
    DEADLINE_MS * 2,
  );

  it(
    "filters the ledger by keyboard: tab to the form, type an account, Enter; Clear brings every entry back",
    async () => {
      const { page, problems } = await openPage();
      await page.goto(baseUrl);
      await page.waitForSelector(ENERGY_ROWS, { timeout: DEADLINE_MS });
      const account = (await page.locator(ENERGY_ROWS).first().getAttribute("data-accounts"))!.split(" ")[0]!;
      // Tab from the top of the page to the account field: it is in the tab order, after the service select.
      let seen = "";
      for (let presses = 0; presses < 80 && seen !== "filter-account"; presses++) {
        await page.keyboard.press("Tab");
        seen = await page.evaluate(() => document.activeElement?.id ?? "");
      }
      expect(seen).toBe("filter-account");
      await page.keyboard.type(account.toUpperCase());
      await page.keyboard.press("Enter");
      await page.waitForURL(new RegExp(`account=${account}`), { timeout: DEADLINE_MS });
      await page.waitForFunction(
        (a) => {
          const rows = [...document.querySelectorAll("#ledger-table tbody tr")];
          return rows.length > 0 && rows.every((r) => (r.getAttribute("data-accounts") ?? "").split(" ").includes(a));
        },
        account,
        { timeout: DEADLINE_MS },
      );
      // The focus ring shows where the keyboard is.
      expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe("none");
      // Tab on to "Apply filters", then "Clear", and press it with the space bar.
      for (let presses = 0; presses < 10 && (await page.evaluate(() => document.activeElement?.textContent)) !== "Clear"; presses++)
        await page.keyboard.press("Tab");
      await page.keyboard.press("Space");
      await page.waitForFunction(
        (a) => [...document.querySelectorAll("#ledger-table tbody tr")].some((r) => !(r.getAttribute("data-accounts") ?? "").split(" ").includes(a)),
        account,
        { timeout: DEADLINE_MS },
      );
      expect(page.url()).not.toMatch(/account=/);
      // The next page by cursor holds only entries older than the page before (read as "Older" is
      // pressed: live entries may come on top of page 1 until then).
      expect(await page.locator("#ledger-older").isDisabled()).toBe(false);
      const oldest = await page.evaluate(() => {
        const ids = [...document.querySelectorAll("#ledger-table tbody tr")].map((r) => Number(r.getAttribute("data-id")));
        document.querySelector("#ledger-older")!.click();
        return Math.min(...ids);
      });
      await page.waitForFunction(() => document.querySelector("#ledger-page")?.textContent === "Page 2", undefined, { timeout: DEADLINE_MS });
      await page.waitForFunction(
        (id) => [...document.querySelectorAll("#ledger-table tbody tr")].every((r) => Number(r.getAttribute("data-id")) < id),
        oldest,
        { timeout: DEADLINE_MS },
      );
      expect(await ledgerRows(page).count()).toBeGreaterThan(0);
      expect(problems).toEqual([]);
    },
    DEADLINE_MS * 2,
  );

  it(
    "is readable at phone width: no horizontal overflow at 375 px",
    async () => {
      const { page, problems } = await openPage({ width: 375, height: 812 });
      await page.goto(baseUrl);
      await page.waitForFunction(
        () => document.querySelectorAll("#ledger-table tbody tr").length > 0 && document.querySelectorAll("#intervals-table tbody tr").length > 0,
        undefined,
        { timeout: DEADLINE_MS },
      );
      const widths = await page.evaluate(() => ({
        document: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        viewport: window.innerWidth,
      }));
      expect(widths.document).toBeLessThanOrEqual(widths.viewport);
      expect(widths.body).toBeLessThanOrEqual(widths.viewport);
      // Wide tables scroll inside their own region, which the keyboard can reach.
      expect(await page.locator("#ledger .table-wrap").getAttribute("tabindex")).toBe("0");
      await page.screenshot({ path: join(ARTIFACTS, "phone-375.png"), fullPage: true });
      expect(problems).toEqual([]);
    },
    DEADLINE_MS + 30_000,
  );

  it(
    "polls the API when the event stream is unavailable, and the head still moves",
    async () => {
      const { page } = await openPage();
      // The browser cannot reach /v1/events at all: as when a proxy drops it or the server is at its client cap.
      await page.route("**/v1/events*", (route) => route.abort());
      await page.goto(baseUrl);
      await page.waitForFunction(() => document.querySelector("#connection")?.getAttribute("data-state") === "polling", undefined, { timeout: DEADLINE_MS });
      await page.waitForFunction(() => /^\d+$/.test(document.querySelector("#head-slot")?.textContent ?? ""), undefined, { timeout: DEADLINE_MS });
      const first = await headSlot(page);
      await page.waitForFunction((slot) => Number(document.querySelector("#head-slot")?.textContent) > slot, first, { timeout: DEADLINE_MS });
      expect(await page.locator("#connection").getAttribute("data-state")).toBe("polling");
    },
    DEADLINE_MS + 30_000,
  );
});
