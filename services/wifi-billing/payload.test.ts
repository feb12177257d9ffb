import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../common/bytes.ts";
import {
  ACTION_RECORD_BYTES,
  ACTIONS_PER_ITEM_MAX,
  CAPACITY_BITS_PER_SECOND_DEFAULT,
  decodeActionsItem,
  decodeRegistrationsItem,
  REGISTRATIONS_PER_ITEM_MAX,
  routerTermsProblem,
  type WifiAction,
  wifiActionProblem,
  wifiActionsPayload,
  WifiActionType,
  WifiDeviceKind,
  wifiRegistrationsPayload,
} from "./payload.ts";

const key = (n: number) => new Uint8Array(32).fill(n);
const id = (n: number) => new Uint8Array(16).fill(n);
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

describe("registrations item", () => {
  it("round-trips accounts and routers, in order, with the router's terms", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ k: fc.integer({ min: 0, max: 255 }) }).map(({ k }) => ({ publicKey: key(k), kind: "client" as const })),
            fc
              .record({ k: fc.integer({ min: 0, max: 255 }), price: u64, stake: u64, capacity: u64, attested: fc.boolean(), name: fc.string({ maxLength: 8 }) })
              .map((r) => ({
                publicKey: key(r.k),
                kind: "router" as const,
                router: {
                  owner: id(r.k),
                  priceMicrosPerGb: r.price,
                  stakeMicros: r.stake,
                  capacityBitsPerSecond: r.capacity,
                  attested: r.attested,
                  name: r.name,
                },
              })),
          ),
          { maxLength: 20 },
        ),
        (records) => {
          const decoded = decodeRegistrationsItem(wifiRegistrationsPayload(records));
          expect(decoded.ok).toBe(true);
          if (!decoded.ok) return;
          expect(decoded.value.length).toBe(records.length);
          for (const [i, r] of records.entries()) {
            const d = decoded.value[i]!;
            expect(toHex(d.publicKey)).toBe(toHex(r.publicKey));
            if (r.kind === "client") {
              expect(d).toMatchObject({ kind: WifiDeviceKind.client, router: null });
            } else {
              expect(d.kind).toBe(WifiDeviceKind.router);
              expect({ ...d.router!, owner: toHex(d.router!.owner) }).toEqual({ ...r.router, owner: toHex(r.router.owner) });
            }
          }
        },
      ),
    );
  });

  it("fills in the default capacity and no attested billing", () => {
    const bytes = wifiRegistrationsPayload([
      { publicKey: key(1), kind: "router", router: { owner: toHex(id(2)), priceMicrosPerGb: 500_000n, stakeMicros: 10n, name: "café" } },
    ]);
    const decoded = decodeRegistrationsItem(bytes);
    expect(decoded.ok && decoded.value[0]!.router).toMatchObject({ capacityBitsPerSecond: CAPACITY_BITS_PER_SECOND_DEFAULT, attested: false, name: "café" });
  });

  it("throws on caller bugs: another kind, a router without terms, a long name, too many", () => {
    expect(() => wifiRegistrationsPayload([{ publicKey: key(1), kind: "meter" }])).toThrow(/not meter/);
    expect(() => wifiRegistrationsPayload([{ publicKey: key(1), kind: "router" }])).toThrow(/needs its terms/);
    expect(() =>
      wifiRegistrationsPayload([{ publicKey: key(1), kind: "router", router: { owner: id(1), priceMicrosPerGb: 1n, stakeMicros: 1n, name: "x".repeat(33) } }]),
    ).toThrow(/name/);
    expect(() => wifiRegistrationsPayload(Array.from({ length: REGISTRATIONS_PER_ITEM_MAX + 1 }, () => ({ publicKey: key(1), kind: "client" })))).toThrow(
      /REGISTRATIONS_PER_ITEM_MAX/,
    );
  });

  it("decoding never throws on garbage and refuses truncation and trailing bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void decodeRegistrationsItem(Uint8Array.of(1, ...bytes))));
    const good = wifiRegistrationsPayload([{ publicKey: key(1), kind: "router", router: { owner: id(1), priceMicrosPerGb: 1n, stakeMicros: 1n, name: "ab" } }]);
    expect(decodeRegistrationsItem(good).ok).toBe(true);
    expect(decodeRegistrationsItem(good.subarray(0, good.length - 1)).ok).toBe(false);
    expect(decodeRegistrationsItem(Uint8Array.from([...good, 0])).ok).toBe(false);
  });

  it("names the code of terms accumulate would refuse", () => {
    const terms = { owner: id(1), priceMicrosPerGb: 1n, stakeMicros: 1n, name: "r" };
    expect(routerTermsProblem(terms)).toBeNull();
    expect(routerTermsProblem({ ...terms, priceMicrosPerGb: 0n })?.code).toBe("JG_ERR_WIFI_AMOUNT");
    expect(routerTermsProblem({ ...terms, priceMicrosPerGb: 1_000_000_001n })?.code).toBe("JG_ERR_WIFI_AMOUNT");
    expect(routerTermsProblem({ ...terms, stakeMicros: 0n })?.code).toBe("JG_ERR_WIFI_AMOUNT");
    expect(routerTermsProblem({ ...terms, capacityBitsPerSecond: 0n })?.code).toBe("JG_ERR_WIFI_AMOUNT");
  });
});

describe("actions item", () => {
  const actionArb: fc.Arbitrary<WifiAction> = fc.oneof(
    fc
      .record({ a: fc.integer({ min: 0, max: 255 }), v: u64 })
      .map(({ a, v }) => ({ actionId: id(a), type: "topup" as const, account: id(a ^ 1), amountMicros: v })),
    fc
      .record({ a: fc.integer({ min: 0, max: 255 }), v: u64 })
      .map(({ a, v }) => ({ actionId: toHex(id(a)), type: "setPrice" as const, router: id(a ^ 2), priceMicrosPerGb: v })),
    fc.integer({ min: 0, max: 255 }).map((a) => ({ actionId: id(a), type: "deregister" as const, router: toHex(id(a ^ 3)) })),
  );

  it("round-trips every action type, in order", () => {
    fc.assert(
      fc.property(fc.array(actionArb, { maxLength: 20 }), (actions) => {
        const bytes = wifiActionsPayload(actions);
        expect(bytes.length).toBe(5 + ACTION_RECORD_BYTES * actions.length);
        const decoded = decodeActionsItem(bytes);
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        for (const [i, a] of actions.entries()) {
          const d = decoded.value[i]!;
          expect(toHex(d.actionId)).toBe(typeof a.actionId === "string" ? a.actionId : toHex(a.actionId));
          expect(d.type).toBe(WifiActionType[a.type]);
          expect(d.value).toBe(a.type === "topup" ? a.amountMicros : a.type === "setPrice" ? a.priceMicrosPerGb : 0n);
        }
      }),
    );
  });

  it("refuses an unknown type, a deregistration with a value, truncation; throws past the bound", () => {
    const good = wifiActionsPayload([{ actionId: id(1), type: "deregister", router: id(2) }]);
    expect(decodeActionsItem(good).ok).toBe(true);
    const typeAt = 5 + 16;
    expect(decodeActionsItem(Uint8Array.from(good, (b, i) => (i === typeAt ? 3 : b))).ok).toBe(false);
    expect(decodeActionsItem(Uint8Array.from(good, (b, i) => (i === good.length - 1 ? 1 : b))).ok).toBe(false);
    expect(decodeActionsItem(good.subarray(0, good.length - 1)).ok).toBe(false);
    expect(() =>
      wifiActionsPayload(Array.from({ length: ACTIONS_PER_ITEM_MAX + 1 }, () => ({ actionId: id(1), type: "deregister" as const, router: id(2) }))),
    ).toThrow(/ACTIONS_PER_ITEM_MAX/);
    expect(() => wifiActionsPayload([{ actionId: id(1), type: "topup", account: id(2), amountMicros: -1n }])).toThrow(RangeError);
  });

  it("names the code of amounts accumulate would refuse", () => {
    expect(wifiActionProblem({ actionId: id(1), type: "topup", account: id(2), amountMicros: 0n })?.code).toBe("JG_ERR_WIFI_AMOUNT");
    expect(wifiActionProblem({ actionId: id(1), type: "topup", account: id(2), amountMicros: 1n })).toBeNull();
    expect(wifiActionProblem({ actionId: id(1), type: "setPrice", router: id(2), priceMicrosPerGb: 0n })?.code).toBe("JG_ERR_WIFI_AMOUNT");
  });
});
