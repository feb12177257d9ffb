/**
 * The dashboard's Wi-Fi panel in a real browser: Debian's chromium driven by playwright-core,
 * against a real `jamgate start` on which Wi-Fi usage is settled the way routers send it. Accounts
 * and two routers are registered, topped up and onboarded over `/v1/wifi/*`; the routers publish
 * `router.usage` envelopes over real MQTT (devices/wifi.ts bodies): one router's sessions carry the
 * client's vouchers and are billed, the other's are router-attested from a router whose owner did
 * not choose attested billing, so they are disputed; a voucher signed by another key is refused.
 * The panel shows the billed GB, the money paid and paid out in the currency asked for, the
 * routers ranked by octets billed, the sessions with their reason and who signed them, the
 * disputed and refused counts, a uPlot chart; it follows new usage live; the ledger's router
 * filter narrows the ledger (by keyboard, from the panel and by typing an id); no horizontal
 * overflow at 375 px. Screenshots go to .artifacts/dashboard/ (gitignored). Every wait polls a
 * condition with a generous deadline: nothing here depends on how fast the machine is.
 */
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDeviceKey } from "../devices/keys.ts";
import { RouterSession, UsageStatus } from "../devices/wifi.ts";
import type { EntryView, Page as ApiPage } from "./ledger/types.ts";
import { ARTIFACTS, type Chromium, launchChromium, type PageDocument, type PageWindow } from "./testing/browser.ts";
import { countersigned, type RouterLink, startWifiGateway, type WifiGateway } from "./testing/wifi.ts";
import type { WifiRouterView, WifiStatsView } from "./wifi/backend.ts";

declare const document: PageDocument;
declare const window: PageWindow;

/** Generous: on a busy 2-core machine a start took over 20 s. */
const DEADLINE_MS = 120_000;
const SLOT_MS = 500;
/** Not the default label: the page shows the one `jamgate start --currency` was given. */
const CURRENCY = "USD";
const WIFI = "wifi-billing";

/** The service's rule (services/wifi-billing/README.md), restated: micros per 10^9 octets, fee 50,000 ppm of each amount, floor. */
const OCTETS_PER_GB = 1_000_000_000n;
const charged = (octets: bigint, priceMicrosPerGb: bigint) => (octets * priceMicrosPerGb) / OCTETS_PER_GB;
const feeOf = (amountMicros: bigint) => (amountMicros * 50_000n) / 1_000_000n;

const PRICE = 500_000n;
const STAKE = 1_000_000n;
const OWNER_TOPUP = 3_000_000n;
const CLIENT_TOPUP = 10_000_000n;
const CAFE = "café corner";
const LIBRARY = "library";

let wifi: WifiGateway;
let chromium: Chromium | undefined;
let http = "";
const owner = generateDeviceKey();
const client = generateDeviceKey();
const intruder = generateDeviceKey();
/** Bills client-signed usage. */
const cafe = generateDeviceKey();
/** Its owner did not choose router-attested billing: its router-only usage is disputed. */
const library = generateDeviceKey();
const billed: bigint[] = [];

let cafeLink: RouterLink;

const api = <T>(method: string, path: string, body?: unknown) => wifi.api<T>(method, path, body);
const routers = async () => (await api<{ items: WifiRouterView[] }>("GET", "/v1/wifi/routers?limit=500")).json.items;
const openPage = (options?: { width?: number; height?: number }) => chromium!.openPage(options);
const text = (page: Page, selector: string) => page.locator(selector).textContent();
const cells = (page: Page, row: string) => page.locator(`${row} > *`).allTextContents();

const S1 = new Uint8Array(16).fill(0x51);
const S2 = new Uint8Array(16).fill(0x52);
const S3 = new Uint8Array(16).fill(0x53);
const S4 = new Uint8Array(16).fill(0x54);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

beforeAll(async () => {
  const [gateway] = await Promise.all([
    startWifiGateway({ slotMs: SLOT_MS, deadlineMs: DEADLINE_MS, args: ["--currency", CURRENCY] }),
    launchChromium({ screenshotPrefix: "wifi-" }).then((launched) => (chromium = launched)),
  ]);
  wifi = gateway;
  http = wifi.http;

  // Accounts, money, routers: as an operator onboards them.
  await wifi.registerAccounts(owner, client);
  await wifi.topUp(owner.deviceId, OWNER_TOPUP);
  await wifi.topUp(client.deviceId, CLIENT_TOPUP);
  await wifi.onboardRouter({ key: cafe, owner: owner.deviceId, name: CAFE, priceMicrosPerGb: PRICE, stakeMicros: STAKE });
  await wifi.onboardRouter({ key: library, owner: owner.deviceId, name: LIBRARY, priceMicrosPerGb: PRICE, stakeMicros: STAKE });

  // The café: a session of 2 GB, then 5 GB in all and stopped, each update signed by the client.
  cafeLink = await wifi.connectRouter(cafe);
  const session = new RouterSession(cafe.deviceId, S1, client.deviceId);
  let before = 0n;
  for (const [counters, status] of [
    [{ inputOctets: 1_000_000_000n, outputOctets: 1_000_000_000n, seconds: 100 }, undefined],
    [{ inputOctets: 3_000_000_000n, outputOctets: 2_000_000_000n, seconds: 200 }, UsageStatus.stop],
  ] as const) {
    const total = counters.inputOctets + counters.outputOctets;
    billed.push(charged(total, PRICE) - charged(before, PRICE));
    before = total;
    await cafeLink.settled(cafeLink.publish(countersigned(session, counters, client, status === undefined ? {} : { status })));
  }
  // A voucher another key signed: refused (its code on the router's error topic), billed nothing.
  const forged = cafeLink.publish(
    countersigned(new RouterSession(cafe.deviceId, S3, client.deviceId), { inputOctets: 10_000_000n, outputOctets: 0n, seconds: 10 }, intruder),
  );
  await wifi.until(
    "the forged voucher's refusal",
    async () => cafeLink.errors.some((e) => e.seq === forged),
    (r) => r,
  );

  // The library: router-attested usage (no voucher), its owner did not choose attested billing.
  const libraryLink = await wifi.connectRouter(library);
  const attested = new RouterSession(library.deviceId, S4, client.deviceId);
  await libraryLink.settled(libraryLink.publish(attested.update({ inputOctets: 600_000_000n, outputOctets: 400_000_000n, seconds: 100 }).body));
  await wifi.until(
    "usage totals on the routers",
    routers,
    (rs) =>
      rs.some((r) => r.router === cafe.deviceId && r.usage.billedOctets === "5000000000") &&
      rs.some((r) => r.router === library.deviceId && r.usage.disputedOctets === "1000000000"),
  );
}, DEADLINE_MS * 3);

afterAll(async () => {
  await chromium?.close();
  await wifi?.stop("SIGTERM");
}, 60_000);

describe.sequential("the dashboard's Wi-Fi panel in chromium, on a running jamgate with settled Wi-Fi usage", () => {
  it(
    "shows billed GB, what clients paid and owners were paid, disputed and refused counts, sessions and top routers",
    async () => {
      const { page, problems } = await openPage();
      await page.goto(`${http}/#wifi`);
      // Only the café's client-signed usage is billed: 5 GB at 0.50 a GB.
      await page.waitForFunction(() => document.querySelector("#wifi-billed")?.textContent === "5.0 GB", undefined, { timeout: DEADLINE_MS });
      const paid = billed.reduce((a, b) => a + b, 0n);
      const earned = billed.reduce((a, b) => a + b - feeOf(b), 0n);
      expect(paid).toBe(2_500_000n);
      expect(await text(page, "#wifi-paid")).toBe(`2.50 ${CURRENCY}`);
      expect(earned).toBe(2_375_000n);
      expect(await text(page, "#wifi-earned")).toBe(`2.375 ${CURRENCY}`);
      // The library's 1 GB, router-attested without attested billing: disputed, as the service counts it (/v1/wifi/stats, all routers).
      const stats = (await api<WifiStatsView>("GET", "/v1/wifi/stats")).json;
      expect(stats.disputedOctets).toBe("1000000000");
      await page.waitForFunction(() => document.querySelector("#wifi-disputed")?.getAttribute("data-octets") === "1000000000", undefined, {
        timeout: DEADLINE_MS,
      });
      expect(await text(page, "#wifi-disputed")).toBe("1.0 GB");
      // Sessions open and closed as the routers' totals say; the café's first session was stopped.
      const totals = await routers();
      const started = totals.reduce((a, r) => a + BigInt(r.usage.sessionsStarted), 0n);
      const open = totals.reduce((a, r) => a + r.usage.openSessions, 0);
      expect(await text(page, "#wifi-open")).toBe(String(open));
      expect(await text(page, "#wifi-closed")).toBe(String(started - BigInt(open)));
      expect(started - BigInt(open)).toBeGreaterThanOrEqual(1n);
      // The forged voucher's envelope, refused, as the service counts it, under the code its router was told; every refusal by code, most first.
      const forgedCode = cafeLink.errors.at(-1)!.code;
      expect(BigInt(stats.envelopesRejected)).toBeGreaterThanOrEqual(1n);
      expect(BigInt(stats.refusedByCode[forgedCode] ?? "0")).toBeGreaterThanOrEqual(1n);
      const codes = Object.entries(stats.refusedByCode).sort(([a, m], [b, n]) => (m === n ? (a < b ? -1 : 1) : BigInt(n) > BigInt(m) ? 1 : -1));
      await page.waitForFunction((n) => document.querySelector("#wifi-refused")?.textContent === n, stats.envelopesRejected, { timeout: DEADLINE_MS });
      expect(await text(page, "#wifi-refused-packages")).toBe(`all refusals by code: ${codes.map(([code, n]) => `${code} ${n}`).join(", ")}`);

      // Top routers: the café first (5 GB billed), with what its owner was paid and its price; then the library.
      await page.waitForFunction(() => document.querySelectorAll("#routers-table tbody tr").length === 2, undefined, { timeout: DEADLINE_MS });
      expect(await page.locator("#routers-table tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-router")))).toEqual([
        cafe.deviceId,
        library.deviceId,
      ]);
      const [name, status, billedGb, paidCell, earnedCell, openCell, disputedCell, price] = await cells(
        page,
        `#routers-table tbody tr[data-router="${cafe.deviceId}"]`,
      );
      expect(name).toContain(CAFE);
      expect([status, billedGb, paidCell, earnedCell, disputedCell, price]).toEqual([
        "active",
        "5.0 GB",
        `2.50 ${CURRENCY}`,
        `2.375 ${CURRENCY}`,
        "0.0 GB",
        `0.50 ${CURRENCY}/GB`,
      ]);
      expect(openCell).toBe(String(totals.find((r) => r.router === cafe.deviceId)!.usage.openSessions));
      expect((await cells(page, `#routers-table tbody tr[data-router="${library.deviceId}"]`)).slice(2, 7)).toEqual([
        "0.0 GB",
        `0.00 ${CURRENCY}`,
        `0.00 ${CURRENCY}`,
        expect.any(String),
        "1.0 GB",
      ]);

      // Recent sessions: the café's, billed and client-signed; the library's, disputed and router-attested.
      const cafeSession = `#sessions-table tbody tr[data-session="${hex(S1)}"]`;
      await page.waitForSelector(cafeSession, { timeout: DEADLINE_MS });
      const [, routerCell, clientCell, octets, amount, reason, signer] = await cells(page, cafeSession);
      expect([routerCell, octets, amount, reason, signer]).toEqual([CAFE, "5.0 GB", `2.50 ${CURRENCY}`, "usage", "client"]);
      expect(clientCell).toBe(`${client.deviceId.slice(0, 8)}…${client.deviceId.slice(-4)}`);
      const librarySession = `#sessions-table tbody tr[data-session="${hex(S4)}"]`;
      expect(await page.locator(librarySession).getAttribute("data-attested")).toBe("true");
      expect((await cells(page, librarySession)).slice(1)).toEqual([
        LIBRARY,
        expect.any(String),
        "1.0 GB",
        `0.00 ${CURRENCY}`,
        "disputed",
        "router-attested",
        expect.any(String),
      ]);
      // The forged voucher's session is on no ledger entry.
      expect(await page.locator(`#sessions-table tbody tr[data-session="${hex(S3)}"]`).count()).toBe(0);

      // The billed chart: a uPlot canvas, its buckets named in the caption.
      expect(await page.locator("#chart-wifi canvas").count()).toBe(1);
      expect(await text(page, "#wifi-chart-caption")).toMatch(/^Billed and disputed \(GB\) per [0-9]+ (s|min|h), by block time \(UTC\)$/);
      await page.locator("#wifi").screenshot({ path: join(ARTIFACTS, "wifi.png") });
      expect(problems).toEqual([]);
    },
    DEADLINE_MS * 2,
  );

  it(
    "follows new usage live: a new session's GB and money appear without a reload",
    async () => {
      const { page, problems } = await openPage();
      await page.goto(`${http}/#wifi`);
      await page.waitForFunction(() => document.querySelector("#wifi-billed")?.textContent === "5.0 GB", undefined, { timeout: DEADLINE_MS });
      await page.waitForFunction(() => document.querySelector("#connection")?.getAttribute("data-state") === "live", undefined, { timeout: DEADLINE_MS });
      const session = new RouterSession(cafe.deviceId, S2, client.deviceId);
      await cafeLink.settled(cafeLink.publish(countersigned(session, { inputOctets: 500_000_000n, outputOctets: 500_000_000n, seconds: 60 }, client)));
      await page.waitForFunction(() => document.querySelector("#wifi-billed")?.textContent === "6.0 GB", undefined, { timeout: DEADLINE_MS });
      expect(await text(page, "#wifi-paid")).toBe(`3.00 ${CURRENCY}`);
      await page.waitForSelector(`#sessions-table tbody tr[data-session="${hex(S2)}"][data-reason="usage"]`, { timeout: DEADLINE_MS });
      // Newest first.
      expect(await page.locator("#sessions-table tbody tr").first().getAttribute("data-session")).toBe(hex(S2));
      expect(problems).toEqual([]);
    },
    DEADLINE_MS * 2,
  );

  it(
    "filters the ledger by router: by keyboard from the top routers, then by typing another router's id",
    async () => {
      const { page, problems } = await openPage();
      await page.goto(http);
      const button = page.getByRole("button", { name: `Show the ledger entries of router ${CAFE} (${cafe.deviceId})` });
      await button.waitFor({ timeout: DEADLINE_MS });
      await button.focus();
      await page.keyboard.press("Enter");
      await page.waitForURL(new RegExp(`router=${cafe.deviceId}`), { timeout: DEADLINE_MS });
      // The focus goes to the filter's router field, which holds the id.
      expect(await page.evaluate(() => document.activeElement?.id)).toBe("filter-router");
      expect(await page.locator("#filter-router").inputValue()).toBe(cafe.deviceId);
      const onlyOf = (router: string) =>
        page.waitForFunction(
          (r) => {
            const rows = [...document.querySelectorAll("#ledger-table tbody tr")];
            return rows.length > 0 && rows.every((row) => row.getAttribute("data-router") === r);
          },
          router,
          { timeout: DEADLINE_MS },
        );
      await onlyOf(cafe.deviceId);
      // Exactly the router's entries the API lists (usage of its two billed sessions, and its stake).
      const api1 = (await api<ApiPage<EntryView>>("GET", `/v1/entries?router=${cafe.deviceId}&limit=25`)).json.items;
      expect(api1.length).toBeGreaterThanOrEqual(3);
      await page.waitForFunction((n) => document.querySelectorAll("#ledger-table tbody tr").length === n, api1.length, { timeout: DEADLINE_MS });
      expect(await page.locator("#ledger-table tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-id"))))).toEqual(
        api1.map((e) => e.id),
      );
      // A usage row shows its octets in GB and its price per GB; the amount in the currency.
      const first = api1.find((e) => e.kind === "usage" && e.octets === "2000000000")!;
      const row = await cells(page, `#ledger-table tbody tr[data-id="${first.id}"]`);
      expect([row[3], row[4], row[6], row[7], row[8]]).toEqual([WIFI, "usage", "2.0 GB", `0.50 ${CURRENCY}/GB`, `1.00 ${CURRENCY}`]);
      expect(row[5]).toContain(CAFE);

      // Type the library's id in the router field (upper case is taken), Enter.
      await page.locator("#filter-router").fill("");
      await page.keyboard.type(library.deviceId.toUpperCase());
      await page.keyboard.press("Enter");
      await page.waitForURL(new RegExp(`router=${library.deviceId}`), { timeout: DEADLINE_MS });
      await onlyOf(library.deviceId);
      expect(await page.locator(`#ledger-table tbody tr[data-kind="disputed"]`).count()).toBe(1);
      expect(await page.locator(`#ledger-table tbody tr[data-kind="usage"]`).count()).toBe(0);
      // A wrong id is refused by the field, in the browser's words; the ledger stays as it was.
      await page.locator("#filter-router").fill("not-a-router");
      await page.keyboard.press("Enter");
      expect(await page.locator("#filter-router").evaluate((input) => (input as unknown as { validity: { valid: boolean } }).validity.valid)).toBe(false);
      expect(page.url()).toMatch(new RegExp(`router=${library.deviceId}`));
      // Clear brings every entry back, energy-less services and all.
      await page.locator("#ledger-filter button[type=reset]").click();
      await page.waitForFunction(
        (r) => [...document.querySelectorAll("#ledger-table tbody tr")].some((row) => row.getAttribute("data-router") !== r),
        library.deviceId,
        { timeout: DEADLINE_MS },
      );
      expect(page.url()).not.toMatch(/router=/);
      await page.screenshot({ path: join(ARTIFACTS, "wifi-ledger.png"), fullPage: true });
      expect(problems).toEqual([]);
    },
    DEADLINE_MS * 2,
  );

  it(
    "is readable at phone width with the Wi-Fi panel: no horizontal overflow at 375 px",
    async () => {
      const { page, problems } = await openPage({ width: 375, height: 812 });
      await page.goto(http);
      await page.waitForFunction(
        () =>
          document.querySelectorAll("#routers-table tbody tr").length > 0 &&
          document.querySelectorAll("#sessions-table tbody tr").length > 0 &&
          document.querySelectorAll("#ledger-table tbody tr").length > 0,
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
      // Its tables scroll inside their own regions, which the keyboard can reach.
      expect(await page.locator("#wifi .table-wrap").evaluateAll((wraps) => wraps.map((w) => w.getAttribute("tabindex")))).toEqual(["0", "0"]);
      await page.locator("#wifi").screenshot({ path: join(ARTIFACTS, "wifi-phone-375.png") });
      expect(problems).toEqual([]);
    },
    DEADLINE_MS + 30_000,
  );
});
