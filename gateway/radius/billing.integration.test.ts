/**
 * RADIUS accounting billed end to end: a real `jamgate start --radius-port P` (its own process),
 * an owner and a client account registered and topped up over `/v1/wifi/*`, two routers onboarded
 * with `radius: true` (the gateway makes their keys and shared secrets), one whose owner chose
 * router-attested billing and one whose owner did not; then FreeRADIUS's `radclient` sends each
 * router's Start, Interim-Update and Stop as a stock router would. The attested router's usage is
 * billed at its price on the cumulative octets (gigawords included), the other's is written as
 * disputed and bills nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDeviceKey } from "../../devices/keys.ts";
import { freePort } from "../../node/testing/ports.ts";
import type { EntryView, Page } from "../ledger/types.ts";
import { answered, radclient } from "../testing/radclient.ts";
import { startWifiGateway, type WifiGateway } from "../testing/wifi.ts";
import type { WifiAccountView } from "../wifi/backend.ts";

const SLOT_MS = 500;
/** The service's rule (services/wifi-billing/README.md), restated: micros per 10^9 octets, floor. */
const charged = (octets: bigint, priceMicrosPerGb: bigint) => (octets * priceMicrosPerGb) / 1_000_000_000n;
const PRICE = 500_000n;
const STAKE = 1_000_000n;
const CLIENT_TOPUP = 5_000_000n;
/** The session's last counters: 600 MB in, 2^32 + 705,032,704 = 5 GB out (one gigaword), over 120 s (within 1 Gbit/s). */
const STOP = { "Acct-Input-Octets": 600_000_000, "Acct-Output-Octets": 705_032_704, "Acct-Output-Gigawords": 1, "Acct-Session-Time": 120 };
const TOTAL_OCTETS = 600_000_000n + 2n ** 32n + 705_032_704n;

let wifi: WifiGateway;
let radiusPort: number;
const owner = generateDeviceKey();
const client = generateDeviceKey();
const routers: Record<"attested" | "plain", { id: string; secret: string }> = { attested: { id: "", secret: "" }, plain: { id: "", secret: "" } };

/** One Accounting-Request of `router` sent by radclient; true when answered. */
const sent = async (router: { id: string; secret: string }, attributes: Record<string, string | number>) =>
  answered(await radclient(`127.0.0.1:${radiusPort}`, router.secret, { "NAS-Identifier": router.id, "User-Name": client.deviceId, ...attributes }, 20));

/** Start, Interim-Update and Stop of one session of `router`, each answered before the next is sent. */
async function session(router: { id: string; secret: string }, id: string): Promise<void> {
  expect(await sent(router, { "Acct-Session-Id": id, "Acct-Status-Type": "Start" })).toBe(true);
  expect(
    await sent(router, {
      "Acct-Session-Id": id,
      "Acct-Status-Type": "Interim-Update",
      "Acct-Input-Octets": 300_000_000,
      "Acct-Output-Octets": 700_000_000,
      "Acct-Session-Time": 60,
    }),
  ).toBe(true);
  expect(await sent(router, { "Acct-Session-Id": id, "Acct-Status-Type": "Stop", "Acct-Terminate-Cause": "User-Request", ...STOP })).toBe(true);
}

const entriesOf = (router: string) => wifi.api<Page<EntryView>>("GET", `/v1/entries?router=${router}&limit=50`).then((r) => r.json.items);

beforeAll(async () => {
  radiusPort = await freePort();
  wifi = await startWifiGateway({ slotMs: SLOT_MS, deadlineMs: 90_000, radiusPort });
  expect(wifi.started.radius).toBe(`udp://127.0.0.1:${radiusPort}`);
}, 120_000);

afterAll(async () => {
  await wifi?.stop();
});

describe("RADIUS accounting billed on a running jamgate", { timeout: 240_000 }, () => {
  it("onboards two RADIUS routers, one router-attested, with the owner's stakes", async () => {
    await wifi.registerAccounts(owner, client);
    await wifi.topUp(owner.deviceId, 2n * STAKE);
    await wifi.topUp(client.deviceId, CLIENT_TOPUP);
    for (const [which, attested] of [
      ["attested", true],
      ["plain", false],
    ] as const) {
      const { response, view } = await wifi.onboardRouter({
        owner: owner.deviceId,
        name: `radius ${which}`,
        priceMicrosPerGb: PRICE,
        stakeMicros: STAKE,
        attested,
        radius: true,
      });
      routers[which] = { id: response.router, secret: response.radius!.sharedSecret };
      expect(view).toMatchObject({ owner: owner.deviceId, attested });
    }
    expect(await wifi.balanceOf(owner.deviceId)).toMatchObject({ balanceMicros: "0", lockedMicros: String(2n * STAKE) });
  });

  it("bills the router-attested router's RADIUS usage: the client pays its price on the cumulative octets, the owner gets it less the fee", async () => {
    await session(routers.attested, "A-0001");
    const expected = charged(TOTAL_OCTETS, PRICE);
    const sum = (items: readonly EntryView[], field: "amountMicros" | "feeMicros") =>
      items.filter((e) => e.kind === "usage").reduce((a, e) => a + BigInt(e[field] ?? "0"), 0n);
    const entries = await wifi.until(
      "the attested router's usage entries",
      () => entriesOf(routers.attested.id),
      (items) => sum(items, "amountMicros") === expected,
    );
    for (const e of entries.filter((x) => x.kind === "usage"))
      expect(e).toMatchObject({
        service: "wifi-billing",
        reason: "usage",
        router: routers.attested.id,
        client: client.deviceId,
        attested: true,
        priceMicrosPerGb: String(PRICE),
      });
    expect(entries.filter((e) => e.kind === "usage").reduce((a, e) => a + BigInt(e.octets ?? "0"), 0n)).toBe(TOTAL_OCTETS);
    const fees = sum(entries, "feeMicros");
    expect(fees).toBeGreaterThan(0n);
    expect((await wifi.balanceOf(client.deviceId)).balanceMicros).toBe(String(CLIENT_TOPUP - expected));
    expect((await wifi.balanceOf(owner.deviceId)).balanceMicros).toBe(String(expected - fees));
  });

  it("writes the other router's RADIUS usage as disputed and bills nothing of it", async () => {
    const clientBefore = await wifi.balanceOf(client.deviceId);
    const ownerBefore = await wifi.balanceOf(owner.deviceId);
    await session(routers.plain, "B-0001");
    const entries = await wifi.until(
      "the plain router's disputed entries",
      () => entriesOf(routers.plain.id),
      (items) => items.filter((e) => e.kind === "disputed").reduce((a, e) => a + BigInt(e.octets ?? "0"), 0n) === TOTAL_OCTETS,
    );
    // A session's Start alone in a package is a delta of no octets, which may be written as usage of nothing.
    expect(
      entries
        .filter((e) => e.kind === "usage")
        .map((e) => [e.octets, e.amountMicros])
        .filter(([octets, amount]) => octets !== "0" || amount !== "0"),
    ).toEqual([]);
    for (const e of entries.filter((x) => x.kind === "disputed"))
      expect(e).toMatchObject({ router: routers.plain.id, client: client.deviceId, attested: true });
    const money = ({ balanceMicros, lockedMicros }: WifiAccountView) => ({ balanceMicros, lockedMicros });
    expect(money(await wifi.balanceOf(client.deviceId))).toEqual(money(clientBefore));
    expect(money(await wifi.balanceOf(owner.deviceId))).toEqual(money(ownerBefore));
    const metrics = await (await fetch(`${wifi.http}/metrics`)).text();
    expect(metrics).toMatch(/jamgate_radius_requests_total\{status="taken"\} 6\b/);
  });
});
