/**
 * Wi-Fi billing end to end on a real `jamgate start` (its own process, its HTTP API and broker on
 * free ports): an owner and a client account registered and topped up over `/v1/wifi/*`, a router
 * onboarded with the owner's stake, then the router's `router.usage` envelopes over real MQTT,
 * each update countersigned by the client (devices/wifi.ts). Balances move exactly by the
 * service's rule (charged on cumulative octets at the start price, 5 % fee to the protocol); the
 * ledger shows the entries by router (`/v1/entries?router=` and `jamgate ledger --router`); a
 * voucher signed by another key comes back on the router's error topic with its code; a balance
 * running out sends the router a disconnect on its control topic; a price change and a
 * deregistration are actions whose status is the service's verdict (a second deregistration in the
 * same item is refused), and the deregistered router's usage is refused.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDeviceKey } from "../../devices/keys.ts";
import { RouterSession, type SessionCounters } from "../../devices/wifi.ts";
import { JAMGATE_BIN } from "../../scripts/testing/process.ts";
import type { EntryView, Page } from "../ledger/types.ts";
import { countersigned, type RouterLink, startWifiGateway, type WifiGateway } from "../testing/wifi.ts";
import type { ActionView, WifiRouterView } from "./backend.ts";

const SLOT_MS = 500;
/**
 * The service's rule (services/wifi-billing/README.md, accumulate), restated: micros per 10^9
 * octets of the session's cumulative octets, the fee 50,000 ppm of the session's cumulative
 * billed amount, floor, so neither drifts by rounding; each entry carries the differences.
 */
const OCTETS_PER_GB = 1_000_000_000n;
const FEE_PPM = 50_000n;
const charged = (octets: bigint, price: bigint) => (octets * price) / OCTETS_PER_GB;
const feeOf = (billed: bigint) => (billed * FEE_PPM) / 1_000_000n;
/** Fees of successive amounts of one session: the cumulative fee's steps. */
const feesOf = (amounts: readonly bigint[]) => {
  let billed = 0n;
  return amounts.map((a) => {
    const fee = feeOf(billed + a) - feeOf(billed);
    billed += a;
    return fee;
  });
};

const PRICE = 500_000n;
const STAKE = 1_000_000n;
const OWNER_TOPUP = 1_500_000n;
const CLIENT_TOPUP = 3_000_000n;

const run = promisify(execFile);
let wifi: WifiGateway;
const owner = generateDeviceKey();
const client = generateDeviceKey();
const intruder = generateDeviceKey();
const router = generateDeviceKey();
let routerLink: RouterLink;

const api = <T>(method: string, path: string, body?: unknown) => wifi.api<T>(method, path, body);
const until = <T>(what: string, read: () => Promise<T>, done: (value: T) => boolean) => wifi.until(what, read, done);
const balanceOf = (id: string) => wifi.balanceOf(id);

/** Publishes the next `router.usage` envelope of the router with this body; its seq. */
const publish = (body: Uint8Array) => routerLink.publish(body);

/** An update of a session countersigned by `signer` (the client unless a forgery is wanted), with the client's key. */
const signed = (session: RouterSession, counters: SessionCounters, signer = client) =>
  countersigned(session, counters, signer, { clientKey: client.publicKey });

const settled = (s: number) => routerLink.settled(s);

beforeAll(async () => {
  wifi = await startWifiGateway({ slotMs: SLOT_MS, deadlineMs: 60_000, startTimeoutMs: 90_000 });
}, 120_000);

afterAll(async () => {
  await wifi?.stop();
});

describe("Wi-Fi billing on a running jamgate", { timeout: 180_000 }, () => {
  it("registers an owner and a client, tops them up, and onboards a router with the owner's stake", async () => {
    await wifi.registerAccounts(owner, client);
    await wifi.topUp(owner.deviceId, OWNER_TOPUP);
    // A JSON number is taken as well as a decimal string.
    await wifi.topUp(client.deviceId, Number(CLIENT_TOPUP));
    expect(await balanceOf(client.deviceId)).toMatchObject({ balanceMicros: String(CLIENT_TOPUP), lockedMicros: "0" });

    const onboard = await wifi.onboardRouter({ key: router, owner: owner.deviceId, name: "café corner", priceMicrosPerGb: PRICE, stakeMicros: STAKE });
    expect(onboard.response.router).toBe(router.deviceId);
    expect(onboard.view).toMatchObject({
      owner: owner.deviceId,
      name: "café corner",
      priceMicrosPerGb: String(PRICE),
      stakeMicros: String(STAKE),
      capacityBitsPerSecond: "1000000000",
      attested: false,
    });
    expect(await balanceOf(owner.deviceId)).toMatchObject({ balanceMicros: String(OWNER_TOPUP - STAKE), lockedMicros: String(STAKE) });
    const listed = await until(
      "router listed",
      () => api<{ items: WifiRouterView[] }>("GET", "/v1/wifi/routers"),
      (r) => r.json.items.some((x) => x.router === router.deviceId),
    );
    expect(listed.status).toBe(200);

    routerLink = await wifi.connectRouter(router);
  });

  const session = new RouterSession(router.deviceId, new Uint8Array(16).fill(0x51), client.deviceId);
  const deltas: bigint[] = [];

  it("bills the client's countersigned usage exactly: client − amount, owner + amount − fee", async () => {
    // 2 GB, then 3 GB more, within 1 Gbit/s × the seconds.
    let billedOctets = 0n;
    for (const counters of [
      { inputOctets: 1_000_000_000n, outputOctets: 1_000_000_000n, seconds: 100 },
      { inputOctets: 3_000_000_000n, outputOctets: 2_000_000_000n, seconds: 200 },
    ]) {
      const total = counters.inputOctets + counters.outputOctets;
      deltas.push(charged(total, PRICE) - charged(billedOctets, PRICE));
      billedOctets = total;
      await settled(publish(signed(session, counters)));
    }
    const paid = deltas.reduce((a, b) => a + b, 0n);
    const fees = feesOf(deltas).reduce((a, b) => a + b, 0n);
    expect(paid).toBe(2_500_000n);
    const c = await until(
      "client billed",
      () => balanceOf(client.deviceId),
      (v) => v.balanceMicros !== String(CLIENT_TOPUP),
    );
    expect(c.balanceMicros).toBe(String(CLIENT_TOPUP - paid));
    expect((await balanceOf(owner.deviceId)).balanceMicros).toBe(String(OWNER_TOPUP - STAKE + paid - fees));
    expect(routerLink.errors).toEqual([]);
    const shown = (await api<WifiRouterView>("GET", `/v1/wifi/routers/${router.deviceId}`)).json;
    expect(shown.usage).toMatchObject({ billedOctets: "5000000000", billedMicros: String(paid), earnedMicros: String(paid - fees) });
  });

  it("answers a voucher the client did not sign on the router's error topic with its code, and bills nothing of it", async () => {
    const { balanceMicros, lockedMicros } = await balanceOf(client.deviceId);
    const forged = new RouterSession(router.deviceId, new Uint8Array(16).fill(0x52), client.deviceId);
    const s = publish(signed(forged, { inputOctets: 10_000_000n, outputOctets: 0n, seconds: 10 }, intruder));
    const refusal = await until(
      "the refusal",
      async () => routerLink.errors.find((e) => e.seq === s),
      (e) => e !== undefined,
    );
    expect(refusal!.code).toBe("JG_ERR_WIFI_VOUCHER_SIGNATURE");
    expect(routerLink.receipts.has(s)).toBe(false);
    expect(await balanceOf(client.deviceId)).toMatchObject({ balanceMicros, lockedMicros });
  });

  it("bills at most the client's balance when it runs out, writes balance-exhausted, and tells the router to disconnect", async () => {
    const left = BigInt((await balanceOf(client.deviceId)).balanceMicros);
    const ownerBefore = BigInt((await balanceOf(owner.deviceId)).balanceMicros);
    // 9 GB in all: 2,000,000 more micros due, more than is left.
    const s = publish(signed(session, { inputOctets: 5_000_000_000n, outputOctets: 4_000_000_000n, seconds: 300 }));
    await settled(s);
    expect(charged(9_000_000_000n, PRICE) - charged(5_000_000_000n, PRICE)).toBeGreaterThan(left);
    const c = await until(
      "client drained",
      () => balanceOf(client.deviceId),
      (v) => v.balanceMicros === "0",
    );
    expect(c.balanceMicros).toBe("0");
    expect((await balanceOf(owner.deviceId)).balanceMicros).toBe(String(ownerBefore + left - feesOf([...deltas, left]).at(-1)!));
    const control = await until(
      "the control message",
      async () => routerLink.controls,
      (m) => m.length > 0,
    );
    expect(control).toEqual([{ type: "disconnect", session: "51".repeat(16), client: client.deviceId, reason: "balance-exhausted" }]);
    deltas.push(left);
  });

  it("shows the router's entries on the ledger, by /v1/entries?router= and jamgate ledger --router", async () => {
    const page = await until(
      "the ledger's entries",
      async () => (await api<Page<EntryView>>("GET", `/v1/entries?router=${router.deviceId}&limit=50`)).json,
      (p) => p.items.filter((e) => e.kind === "usage" || e.kind === "balance-exhausted").length === 3,
    );
    const usage = page.items.filter((e) => e.kind === "usage" || e.kind === "balance-exhausted").reverse();
    const fees = feesOf(deltas);
    expect(usage.map((e) => [e.kind, e.amountMicros, e.feeMicros])).toEqual([
      ["usage", String(deltas[0]), String(fees[0])],
      ["usage", String(deltas[1]), String(fees[1])],
      ["balance-exhausted", String(deltas[2]), String(fees[2])],
    ]);
    for (const e of usage)
      expect(e).toMatchObject({
        service: "wifi-billing",
        router: router.deviceId,
        client: client.deviceId,
        session: "51".repeat(16),
        priceMicrosPerGb: String(PRICE),
        attested: false,
        accounts: [client.deviceId, owner.deviceId],
      });
    expect(usage.map((e) => e.octets)).toEqual(["2000000000", "3000000000", "4000000000"]);
    expect(page.items.every((e) => e.router === router.deviceId)).toBe(true);
    // Another router's filter finds none of them.
    expect((await api<Page<EntryView>>("GET", `/v1/entries?router=${owner.deviceId}`)).json.items).toEqual([]);

    const { stdout } = await run(
      process.execPath,
      [JAMGATE_BIN, "ledger", "--data-dir", wifi.dataDir, "--router", router.deviceId, "--json", "--limit", "50"],
      { timeout: 60_000 },
    );
    const lines = stdout
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as EntryView);
    expect(lines.map((e) => e.id).sort()).toEqual(page.items.map((e) => e.id).sort());
  });

  it("proves a usage entry (/v1/proofs/entries/:id) so that `jamgate verify` takes it, and refuses it with a tampered amount", async () => {
    const usage = (await api<Page<EntryView>>("GET", `/v1/entries?router=${router.deviceId}&limit=50`)).json.items.findLast((e) => e.kind === "usage")!;
    const proof = await api<{ claim: { kind: string; slot: number; entry: { amountMicros: string } } }>("GET", `/v1/proofs/entries/${usage.id}`);
    expect(proof.status, JSON.stringify(proof.json)).toBe(200);
    expect(proof.json.claim).toMatchObject({ kind: "wifi-entry", slot: usage.slot, entry: { amountMicros: String(deltas[0]) } });
    const verify = (name: string, document: unknown) => {
      writeFileSync(join(wifi.dataDir, name), JSON.stringify(document));
      return run(process.execPath, [JAMGATE_BIN, "verify", join(wifi.dataDir, name), "--json"], { timeout: 60_000 }).then(
        ({ stdout }) => JSON.parse(stdout) as { ok: boolean; claim?: unknown; error?: { code: string } },
        (e: { stdout: string }) => JSON.parse(e.stdout.split("\n")[0]!) as { ok: boolean; error?: { code: string } },
      );
    };
    expect(await verify("usage-proof.json", proof.json)).toMatchObject({ ok: true, claim: proof.json.claim });
    proof.json.claim.entry.amountMicros = String(deltas[0]! + 1n);
    expect(await verify("tampered-proof.json", proof.json)).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_CLAIM" } });
  });

  it("changes the price and deregisters by actions whose status is the service's verdict; a deregistered router's usage is refused", async () => {
    await wifi.applied(api("POST", `/v1/wifi/routers/${router.deviceId}/price`, { priceMicrosPerGb: "750000" }));
    expect((await api<WifiRouterView>("GET", `/v1/wifi/routers/${router.deviceId}`)).json.priceMicrosPerGb).toBe("750000");
    // Two deregistrations at once pass the gateway's check (the router is active) and share an item: the service applies the first and refuses the second.
    const both = await Promise.all([
      api<ActionView>("DELETE", `/v1/wifi/routers/${router.deviceId}`),
      api<ActionView>("DELETE", `/v1/wifi/routers/${router.deviceId}`),
    ]);
    expect(both.map((r) => r.status)).toEqual([202, 202]);
    const verdicts = await Promise.all(
      both.map((r) =>
        until(
          `action ${r.json.action}`,
          () => api<ActionView>("GET", `/v1/wifi/actions/${r.json.action}`),
          (v) => v.json.status !== "pending",
        ),
      ),
    );
    expect(verdicts.map((v) => [v.json.kind, v.json.status, v.json.code]).sort()).toEqual([
      ["deregister", "applied", undefined],
      ["deregister", "refused", "JG_ERR_WIFI_ROUTER"],
    ]);
    const gone = (await api<WifiRouterView>("GET", `/v1/wifi/routers/${router.deviceId}`)).json;
    expect(gone).toMatchObject({ status: "deregistered", stakeReturnSlot: gone.deregisteredSlot! + 600 });
    expect((await balanceOf(owner.deviceId)).lockedMicros).toBe(String(STAKE));
    // Now the gateway refuses a change at once, and the service the router's usage.
    expect((await api<{ error: { code: string } }>("POST", `/v1/wifi/routers/${router.deviceId}/price`, { priceMicrosPerGb: "1" })).json.error.code).toBe(
      "JG_ERR_WIFI_ROUTER",
    );
    const late = new RouterSession(router.deviceId, new Uint8Array(16).fill(0x53), client.deviceId);
    const s = publish(signed(late, { inputOctets: 1_000n, outputOctets: 1_000n, seconds: 1 }));
    const refusal = await until(
      "the refusal",
      async () => routerLink.errors.find((e) => e.seq === s),
      (e) => e !== undefined,
    );
    expect(refusal!.code).toBe("JG_ERR_WIFI_ROUTER");
  });
});
