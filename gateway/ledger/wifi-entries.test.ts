/**
 * wifi-billing's ledger entries in the index: written per slot with the mark, once; read back as
 * EntryViews with their Wi-Fi fields; found by the `router`, `account` (client and owner) and
 * `service` filters; told as entry events, which the control messages follow (wifi/control.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { controlMessageOf, WifiControl } from "../wifi/control.ts";
import { LedgerIndex, type WifiEntryInput } from "./index.ts";
import type { EntryView, LedgerEvent } from "./types.ts";

const TELEMETRY = { name: "telemetry", serviceId: 2, codeHash: new Uint8Array(32).fill(2), kinds: ["meter"] as const };
const WIFI = { name: "wifi-billing", serviceId: 4, codeHash: new Uint8Array(32).fill(4), kinds: ["router", "client"] as const };
const id = (n: number) => n.toString(16).padStart(32, "0");
const [routerA, routerB, client, owner, session] = [id(0xa), id(0xb), id(0xc), id(0xd), id(0x5e)];
const readAt = { hash: "ab".repeat(32), seenAtMs: 1_700_000_000_000 };

const usage = (router: string, amount: bigint, reason: WifiEntryInput["reason"] = "usage"): WifiEntryInput => ({
  reason,
  session,
  router,
  client,
  inputOctets: 3_000_000_000n,
  outputOctets: 2_000_000_000n,
  priceMicrosPerGb: 500_000n,
  amountMicros: amount,
  feeMicros: amount / 20n,
  attested: false,
  owner,
});
const topup: WifiEntryInput = {
  reason: "topup",
  session: null,
  router: null,
  client,
  inputOctets: 0n,
  outputOctets: 0n,
  priceMicrosPerGb: 0n,
  amountMicros: 10_000_000n,
  feeMicros: 0n,
  attested: false,
  owner: null,
};

let dir: string;
let index: LedgerIndex;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-wifi-entries-"));
  index = new LedgerIndex({ path: join(dir, "ledger"), services: [TELEMETRY, WIFI] });
});
afterEach(async () => {
  await index.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("Wi-Fi entries in the ledger index", () => {
  it("are written once per slot, with the mark; read back with their fields; filtered by router, account and service", async () => {
    const events: LedgerEvent[] = [];
    index.subscribe((e) => events.push(e));
    expect(index.wifiServiceId).toBe(4);
    expect(index.wifiMark()).toBe(0);
    await index.writeWifiSlots(
      [
        { slot: 3, entries: [topup], readAt },
        { slot: 5, entries: [usage(routerA, 2_500_000n), usage(routerB, 1_000n, "balance-exhausted")], readAt },
      ],
      9,
    );
    expect(index.wifiMark()).toBe(9);
    // Again (a pass repeated after a crash): slots below the mark are not written twice.
    await index.writeWifiSlots([{ slot: 5, entries: [usage(routerA, 2_500_000n)], readAt }], 9);
    const all = await index.entries({ service: "wifi-billing" }, { limit: 50 });
    expect(all.items.map((e) => e.kind)).toEqual(["balance-exhausted", "usage", "topup"]);
    const first = all.items[1]!;
    expect(first).toEqual({
      id: 2,
      service: "wifi-billing",
      serviceId: 4,
      kind: "usage",
      slot: 5,
      blockHash: readAt.hash,
      timeMs: readAt.seenAtMs,
      device: null,
      seqs: null,
      packageHash: null,
      interval: null,
      index: null,
      buyer: null,
      seller: null,
      energyWh: null,
      priceMicrosPerKwh: null,
      amountMicros: "2500000",
      accounts: [client, owner],
      reason: "usage",
      session,
      router: routerA,
      client,
      inputOctets: "3000000000",
      outputOctets: "2000000000",
      octets: "5000000000",
      priceMicrosPerGb: "500000",
      feeMicros: "125000",
      attested: false,
    } satisfies EntryView);
    expect(all.items[2]).toMatchObject({ kind: "topup", session: null, router: null, client, amountMicros: "10000000", accounts: [client] });
    expect((await index.entries({ router: routerA }, { limit: 50 })).items.map((e) => e.id)).toEqual([2]);
    expect((await index.entries({ router: routerB }, { limit: 50 })).items.map((e) => e.id)).toEqual([3]);
    expect((await index.entries({ router: id(0xff) }, { limit: 50 })).items).toEqual([]);
    expect((await index.entries({ account: owner }, { limit: 50 })).items.map((e) => e.id)).toEqual([3, 2]);
    expect((await index.entries({ account: client }, { limit: 50 })).items.map((e) => e.id)).toEqual([3, 2, 1]);
    expect((await index.entries({ router: routerA, service: "telemetry" }, { limit: 50 })).items).toEqual([]);
    expect((await index.services()).find((s) => s.name === "wifi-billing")?.entries).toBe(3);
    expect(events.filter((e) => e.kind === "entry").map((e) => (e as { entry: EntryView }).entry.id)).toEqual([1, 2, 3]);
  });

  it("are pruned as receipts are: those of slots before the retention go with their router, account and service rows; energy-like rows stay", async () => {
    await index.close();
    index = new LedgerIndex({ path: join(dir, "ledger-retained"), services: [TELEMETRY, WIFI], retention: { retentionSlots: 10, pruneRowsPerWriteMax: 5 } });
    for (let slot = 0; slot < 30; slot += 3)
      await index.writeWifiSlots([{ slot, entries: [usage(slot % 2 === 0 ? routerA : routerB, BigInt(slot + 1))], readAt }], slot + 1);
    expect((await index.entries({ service: "wifi-billing" }, { limit: 50 })).items).toHaveLength(10);
    // Kept: slots 20..29 (head 29, 10 slots), those written at 21, 24 and 27.
    const pruned = await index.prune(29, Number.MAX_SAFE_INTEGER);
    expect(pruned.more).toBe(false);
    const left = (await index.entries({ service: "wifi-billing" }, { limit: 50 })).items;
    expect(left.map((e) => e.slot)).toEqual([27, 24, 21]);
    // Every index lost its rows of the pruned ones, and the count follows.
    expect((await index.entries({ router: routerA }, { limit: 50 })).items.map((e) => e.slot)).toEqual([24]);
    expect((await index.entries({ router: routerB }, { limit: 50 })).items.map((e) => e.slot)).toEqual([27, 21]);
    expect((await index.entries({ account: owner }, { limit: 50 })).items.map((e) => e.slot)).toEqual([27, 24, 21]);
    expect((await index.services()).find((s) => s.name === "wifi-billing")?.entries).toBe(3);
    expect(await index.prune(29, Number.MAX_SAFE_INTEGER)).toEqual({ removed: 0, more: false });
  });

  it("a balance-exhausted entry tells its router to disconnect the session, on its control topic, once", async () => {
    const sent: [string, string][] = [];
    const control = new WifiControl({
      ledger: index,
      serviceName: "wifi-billing",
      publish: (router, payload) => sent.push([router, Buffer.from(payload).toString("utf8")]),
    });
    control.start();
    await index.writeWifiSlots([{ slot: 7, entries: [usage(routerA, 9n), usage(routerB, 4n, "balance-exhausted"), topup], readAt }], 8);
    await index.writeWifiSlots([{ slot: 7, entries: [usage(routerB, 4n, "balance-exhausted")], readAt }], 8);
    expect(sent).toEqual([[routerB, JSON.stringify({ type: "disconnect", session, client, reason: "balance-exhausted" })]]);
    control.stop();
    await index.writeWifiSlots([{ slot: 8, entries: [usage(routerB, 4n, "balance-exhausted")], readAt }], 9);
    expect(sent).toHaveLength(1);
    // Only wifi-billing's entries of that reason.
    const exhausted = (await index.entries({ router: routerB }, { limit: 1 })).items[0]!;
    expect(controlMessageOf(exhausted, "wifi-billing")?.router).toBe(routerB);
    expect(controlMessageOf({ ...exhausted, service: "telemetry" }, "wifi-billing")).toBeNull();
    expect(controlMessageOf({ ...exhausted, kind: "usage" }, "wifi-billing")).toBeNull();
  });
});
