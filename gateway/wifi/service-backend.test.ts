/**
 * The Wi-Fi backend's checks against the service's state before anything is submitted (unknown
 * owner, account or router; an owner short of the stake), the RADIUS key made for a router and
 * removed when its registration is refused, the views of what state does not hold yet, and the
 * service's counters and fees as `/v1/wifi/stats` gives them.
 */
import { describe, expect, it } from "vitest";
import type { BlockDescriptor } from "../../node/api.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { accountKey, feesKey, REJECTION_CODES, statsKey, WIFI_SERVICE_NAME } from "../../services/wifi-billing/types.ts";
import type { DeviceKind } from "../../devices/protocol/device-kinds.ts";
import type { IngestService } from "../ingest-service.ts";
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

/** The counters as the service stores them (storage.ts statsDesc): version, 17 u64 counters in WifiStats's order, u8 32, 32 u64 refusals by code byte. */
const STATS_FIELDS = [
  "accountsRegistered",
  "routersRegistered",
  "routersDeregistered",
  "stakesReturned",
  "envelopesSettled",
  "envelopesRejected",
  "registrationsRejected",
  "actionsApplied",
  "actionsRejected",
  "sessionsStarted",
  "sessionsStopped",
  "billedOctets",
  "billedMicros",
  "disputedOctets",
  "exhaustedUpdates",
  "toppedUpMicros",
  "ledgerEntries",
] as const;
function stats(counters: Partial<Record<(typeof STATS_FIELDS)[number], bigint>>, refusals: ReadonlyMap<number, bigint>): Uint8Array {
  const b = Buffer.alloc(1 + 8 * STATS_FIELDS.length + 1 + 8 * 32);
  b.writeUInt8(1, 0);
  STATS_FIELDS.forEach((field, i) => {
    b.writeBigUInt64LE(counters[field] ?? 0n, 1 + 8 * i);
  });
  const at = 1 + 8 * STATS_FIELDS.length;
  b.writeUInt8(32, at);
  for (const [code, count] of refusals) b.writeBigUInt64LE(count, at + 1 + 8 * code);
  return new Uint8Array(b);
}

/** The fees collected as stored: version, u64 micros. */
function fees(micros: bigint): Uint8Array {
  const b = Buffer.alloc(9);
  b.writeUInt8(1, 0);
  b.writeBigUInt64LE(micros, 1);
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
  /** The blocks each state read named, and how often the best block was asked for. */
  const reads = { heads: [] as string[], bestBlocks: 0 };
  const backend = new ServiceBackend({
    registrations,
    service,
    api: {
      bestBlock: async () => (reads.bestBlocks++, block),
      serviceValue: async (headerHash, _id, key) => (
        reads.heads.push(Buffer.from(headerHash).toString("hex")), state.get(Buffer.from(key).toString("hex")) ?? null
      ),
    },
    radius,
  });
  return { backend, registered, files, state, reads };
}

const request = (over: Partial<RouterRequest> = {}): RouterRequest => ({
  publicKey: new Uint8Array(32).fill(9),
  owner,
  name: "hotspot",
  priceMicrosPerGb: 1n,
  stakeMicros: 1_000n,
  capacityBitsPerSecond: 1_000_000n,
  attested: true,
  radius: false,
  ...over,
});
const code = async (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => (e instanceof JamgateError ? e.code : e),
  );

describe("the Wi-Fi backend on the service's state", () => {
  it("refuses a router whose owner is unknown (404) or short of the stake (402) before registering anything", async () => {
    const h = harness();
    expect(await code(h.backend.registerRouter(request({ owner: fakeHex("nobody", 16) })))).toBe("JG_ERR_WIFI_ACCOUNT");
    expect(await code(h.backend.registerRouter(request({ owner: poor })))).toBe("JG_ERR_WIFI_STAKE");
    expect(h.registered).toEqual([]);
    const ok = await h.backend.registerRouter(request());
    expect(ok.view.status).toBe("pending");
    expect(h.registered).toEqual([
      [
        "09".repeat(32),
        "router",
        {
          service: WIFI_SERVICE_NAME,
          router: { owner, priceMicrosPerGb: 1n, stakeMicros: 1_000n, capacityBitsPerSecond: 1_000_000n, attested: true, name: "hotspot" },
        },
      ],
    ]);
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

  it("reads the service's counters and fees at one block: decimal strings exact past 2^53, refusals under their registry names (none refused: left out); zeros before anything was counted", async () => {
    const h = harness();
    expect(await h.backend.stats()).toEqual({
      slot: 9,
      sessionsStarted: "0",
      sessionsStopped: "0",
      billedOctets: "0",
      billedMicros: "0",
      feesMicros: "0",
      disputedOctets: "0",
      exhaustedUpdates: "0",
      envelopesRejected: "0",
      refusedByCode: {},
    });
    const u64Max = 2n ** 64n - 1n;
    const refusals = new Map([
      [REJECTION_CODES.JG_ERR_WIFI_VOUCHER_SIGNATURE, 3n],
      [REJECTION_CODES.JG_ERR_WIFI_SESSION, 1n],
      [REJECTION_CODES.JG_ERR_WIFI_REPLAY, 2n ** 53n + 1n],
    ]);
    const counters = {
      envelopesSettled: 99n,
      envelopesRejected: 4n,
      sessionsStarted: 9n,
      sessionsStopped: 7n,
      billedOctets: u64Max,
      billedMicros: 2n ** 53n + 1n,
      disputedOctets: 1_000_000_000n,
      exhaustedUpdates: 2n,
      ledgerEntries: 40n,
    };
    h.state.set(Buffer.from(statsKey).toString("hex"), stats(counters, refusals));
    h.state.set(Buffer.from(feesKey).toString("hex"), fees(450_359_962_737_049n));
    h.reads.heads.length = 0;
    h.reads.bestBlocks = 0;
    expect(await h.backend.stats()).toEqual({
      slot: 9,
      sessionsStarted: "9",
      sessionsStopped: "7",
      billedOctets: "18446744073709551615",
      billedMicros: "9007199254740993",
      feesMicros: "450359962737049",
      disputedOctets: "1000000000",
      exhaustedUpdates: "2",
      envelopesRejected: "4",
      refusedByCode: { JG_ERR_WIFI_VOUCHER_SIGNATURE: "3", JG_ERR_WIFI_SESSION: "1", JG_ERR_WIFI_REPLAY: "9007199254740993" },
    });
    // One best block, and both values read at it.
    expect(h.reads.bestBlocks).toBe(1);
    expect(h.reads.heads).toEqual(["01".repeat(32), "01".repeat(32)]);
    // A value that does not decode is a bug, not zeros.
    h.state.set(Buffer.from(statsKey).toString("hex"), new Uint8Array([1, 2, 3]));
    await expect(h.backend.stats()).rejects.toThrow(/wifi-billing stats/);
  });
});
