/**
 * The Wi-Fi backend's checks against the service's state before anything is submitted (unknown
 * owner, account or router; an owner short of the stake), the RADIUS key made for a router and
 * removed when its registration is refused, and the views of what state does not hold yet.
 */
import { describe, expect, it } from "vitest";
import type { BlockDescriptor } from "../../node/api.ts";
import { JamgateError } from "../../node/errors.ts";
import { accountKey, WIFI_SERVICE_NAME } from "../../services/wifi-billing/types.ts";
import type { DeviceKind, IngestService } from "../ingest-service.ts";
import { type RegisterOptions, RegistrationError, type Registrations, type RegistrationView } from "../registration.ts";
import { fakeHex } from "../testing/fake-ledger.ts";
import type { RouterRequest } from "./backend.ts";
import { type RadiusKeys, ServiceBackend } from "./service-backend.ts";

const service = { name: WIFI_SERVICE_NAME, serviceId: 4 } as IngestService;
const owner = fakeHex("owner", 16);
const poor = fakeHex("poor owner", 16);
const pending = fakeHex("pending client", 16);
const block: BlockDescriptor = { headerHash: new Uint8Array(32).fill(1), slot: 9 };

/** An account as the service stores it (storage.ts AccountRecord): version, balance, locked, registered slot. */
function account(balance: bigint, locked: bigint): Uint8Array {
  const b = Buffer.alloc(21);
  b.writeUInt8(1, 0);
  b.writeBigUInt64LE(balance, 1);
  b.writeBigUInt64LE(locked, 9);
  b.writeUInt32LE(3, 17);
  return new Uint8Array(b);
}

function harness(refuseWith?: Error) {
  const state = new Map<string, Uint8Array>([
    [Buffer.from(accountKey(owner)).toString("hex"), account(5_000n, 0n)],
    [Buffer.from(accountKey(poor)).toString("hex"), account(10n, 0n)],
  ]);
  const registered: [string, DeviceKind, RegisterOptions][] = [];
  const views = new Map<string, RegistrationView>([[pending, { deviceId: pending, kind: "client", service: WIFI_SERVICE_NAME, status: "pending" }]]);
  const registrations = {
    async register(publicKey: Uint8Array, kind: DeviceKind, options: RegisterOptions): Promise<RegistrationView> {
      if (refuseWith !== undefined) throw refuseWith;
      registered.push([Buffer.from(publicKey).toString("hex"), kind, options]);
      const view: RegistrationView = { deviceId: fakeHex(Buffer.from(publicKey).toString("hex"), 16), kind, service: WIFI_SERVICE_NAME, status: "pending" };
      views.set(view.deviceId, view);
      return view;
    },
    async view(id: string): Promise<RegistrationView | null> {
      return views.get(id) ?? null;
    },
    submitItem: async () => new Uint8Array(32),
  } as unknown as Registrations;
  const files: string[] = [];
  const radius: RadiusKeys = {
    create: () => {
      const routerId = fakeHex(`radius router ${files.length}`, 16);
      files.push(routerId);
      return { routerId, publicKey: new Uint8Array(32).fill(files.length), sharedSecret: "a-shared-secret-of-32-characters" };
    },
    remove: (routerId) => void files.splice(files.indexOf(routerId), 1),
  };
  const backend = new ServiceBackend({
    registrations,
    service,
    api: { bestBlock: async () => block, serviceValue: async (_h, _id, key) => state.get(Buffer.from(key).toString("hex")) ?? null },
    radius,
  });
  return { backend, registered, files, state };
}

const request = (over: Partial<RouterRequest> = {}): RouterRequest => ({ publicKey: new Uint8Array(32).fill(9), owner, name: "hotspot", priceMicrosPerGb: 1n, stakeMicros: 1_000n, capacityBitsPerSecond: 1_000_000n, attested: true, radius: false, ...over });
const code = async (p: Promise<unknown>) => p.then(() => null, (e: unknown) => (e instanceof JamgateError ? e.code : e));

describe("the Wi-Fi backend on the service's state", () => {
  it("refuses a router whose owner is unknown (404) or short of the stake (402) before registering anything", async () => {
    const h = harness();
    expect(await code(h.backend.registerRouter(request({ owner: fakeHex("nobody", 16) })))).toBe("JG_ERR_WIFI_ACCOUNT");
    expect(await code(h.backend.registerRouter(request({ owner: poor })))).toBe("JG_ERR_WIFI_STAKE");
    expect(h.registered).toEqual([]);
    const ok = await h.backend.registerRouter(request());
    expect(ok.view.status).toBe("pending");
    expect(h.registered).toEqual([["09".repeat(32), "router", { service: WIFI_SERVICE_NAME, router: { owner, priceMicrosPerGb: 1n, stakeMicros: 1_000n, capacityBitsPerSecond: 1_000_000n, attested: true, name: "hotspot" } }]]);
    // Until state has it, the router reads as pending with the terms it asked for.
    expect(await h.backend.router(ok.view.deviceId)).toMatchObject({ status: "pending", owner, stakeMicros: "1000", attested: true });
  });

  it("makes a RADIUS router's key and secret, and removes them when its registration is refused", async () => {
    const h = harness();
    const made = await h.backend.registerRouter(request({ publicKey: null, radius: true }));
    expect(made.radius).toEqual({ sharedSecret: "a-shared-secret-of-32-characters" });
    expect(h.registered[0]![0]).toBe("01".repeat(32));
    expect(h.files).toHaveLength(1);
    const refused = harness(new RegistrationError("JG_ERR_QUEUE_FULL", "10000 registrations in flight"));
    await expect(refused.backend.registerRouter(request({ publicKey: null, radius: true }))).rejects.toThrow(RegistrationError);
    expect(refused.files).toEqual([]);
  });

  it("refuses actions on unknown or deregistered routers and unknown accounts; reads a pending account as not registered", async () => {
    const h = harness();
    const router = fakeHex("router", 16);
    expect(await code(h.backend.topup(fakeHex("nobody", 16), 5n))).toBe("JG_ERR_WIFI_ACCOUNT");
    expect(await code(h.backend.setPrice(router, 5n))).toBe("JG_ERR_WIFI_ROUTER");
    expect(await code(h.backend.deregister(router))).toBe("JG_ERR_WIFI_ROUTER");
    expect(h.backend.actions.pending).toBe(0);
    expect((await h.backend.topup(owner, 5n)).status).toBe("pending");
    expect(h.backend.actions.pending).toBe(1);
    h.backend.stop();
    expect(await h.backend.account(owner)).toEqual({ account: owner, balanceMicros: "5000", lockedMicros: "0", registered: true, slot: 9 });
    expect(await h.backend.account(pending)).toEqual({ account: pending, balanceMicros: "0", lockedMicros: "0", registered: false });
    expect(await h.backend.account(fakeHex("nobody", 16))).toBeNull();
    expect(await h.backend.router(router)).toBeNull();
  });
});
