/**
 * The wifi-billing adapter: the registrations it takes, and the refine gas it declares for
 * envelopes items measured against what the service's refine is charged (as refine-gas.test.ts
 * does for telemetry and energy), including the voucher each envelope carries.
 */
import { describe, expect, it } from "vitest";
import { deviceIdOf, signingBytes } from "../../devices/envelope.ts";
import { RouterSession, signVoucher } from "../../devices/wifi.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { OutOfGas } from "../../node/service-api/gas.ts";
import { memoryRefineContext } from "../../services/common/testing.ts";
import { refine } from "../../services/wifi-billing/refine.ts";
import { ENVELOPES_PER_ITEM_MAX, wifiActionsPayload, wifiEnvelopesPayload, wifiRegistrationsPayload } from "../../services/wifi-billing/types.ts";
import { envelopesRefineGas, registrationsRefineGas } from "../refine-gas.ts";
import { wifiEnvelopesRefineGas, wifiService } from "./wifi.ts";

const G_R = tinyParams.refineGasPerPackage;
const key = (label: string) => keyPairFromSeed(hash(new TextEncoder().encode(`wifi-adapter-test-${label}`)));
const routers = Array.from({ length: 8 }, (_, i) => key(`router ${i}`));
const clients = Array.from({ length: 8 }, (_, i) => key(`client ${i}`));

/** `perRouter` countersigned updates from each router, one session per client, sorted as the gateway sends them. */
function usageRecords(perRouter: number, voucher = true) {
  const out = [];
  for (const [r, router] of routers.entries()) {
    const routerId = deviceIdOf(router.publicKey);
    const client = clients[r]!;
    const session = new RouterSession(routerId, new Uint8Array(16).fill(r + 1), deviceIdOf(client.publicKey));
    for (let seq = 0; seq < perRouter; seq++) {
      const counters = { inputOctets: BigInt(seq) * 1_000_000n, outputOctets: BigInt(seq) * 500_000n, seconds: seq * 10 };
      const body = voucher
        ? session.update(counters, { voucher: signVoucher(session.voucherFields(counters), client.seed), clientKey: client.publicKey }).body
        : session.update(counters).body;
      const signed = signingBytes({ version: 1, device: routerId, seq, kind: "router.usage", timeMs: 1_750_000_000_000, body });
      out.push({ id: routerId as string, seq, publicKey: router.publicKey, signingBytes: signed, signature: signEd25519(router, signed) });
    }
  }
  return out.sort((a, b) => (a.id !== b.id ? (a.id < b.id ? -1 : 1) : a.seq - b.seq));
}

function charged(payload: Uint8Array, declared: bigint): bigint {
  const context = memoryRefineContext({ hash, verifyEd25519 }, declared);
  context.gas.charge(1_000n + BigInt(payload.length)); // the payload handed over, as node/refine/refine.ts charges it
  refine(payload, context);
  return context.gas.used;
}

describe("the wifi-billing adapter", () => {
  it("declares the refine gas a usage item is charged, voucher included, and a quarter more (30% at most)", () => {
    for (const records of [usageRecords(30), usageRecords(1), usageRecords(Math.floor(ENVELOPES_PER_ITEM_MAX / routers.length))]) {
      const payload = wifiEnvelopesPayload(records);
      const item = { payloadBytes: payload.length, envelopes: records.length, devices: routers.length };
      const declared = wifiEnvelopesRefineGas(item, G_R);
      const used = charged(payload, declared);
      expect(declared).toBeGreaterThanOrEqual((used * 5n) / 4n);
      expect(declared).toBeLessThanOrEqual((used * 13n) / 10n + 10_000n);
      // The telemetry formula it adds to is short of it: those packages ran out of gas.
      expect(() => charged(payload, envelopesRefineGas(item, G_R))).toThrow(OutOfGas);
    }
  });

  it("covers router-attested usage (no voucher), and registrations and actions items at the registrations formula", () => {
    const attested = usageRecords(20, false);
    const payload = wifiEnvelopesPayload(attested);
    expect(
      charged(payload, wifiEnvelopesRefineGas({ payloadBytes: payload.length, envelopes: attested.length, devices: routers.length }, G_R)),
    ).toBeGreaterThan(0n);
    const owner = deviceIdOf(clients[0]!.publicKey);
    const registrations = wifiRegistrationsPayload([
      ...clients.map((c) => ({ publicKey: c.publicKey, kind: "client" })),
      ...routers.map((r, i) => ({
        publicKey: r.publicKey,
        kind: "router",
        router: { owner, priceMicrosPerGb: 500_000n, stakeMicros: 1_000n, name: `router ${i} ☕` },
      })),
    ]);
    expect(charged(registrations, registrationsRefineGas({ payloadBytes: registrations.length, registrations: 16 }, G_R))).toBeGreaterThan(0n);
    const actions = wifiActionsPayload(
      clients.map((c, i) => ({ actionId: new Uint8Array(16).fill(i), type: "topup" as const, account: deviceIdOf(c.publicKey), amountMicros: 5n })),
    );
    expect(charged(actions, registrationsRefineGas({ payloadBytes: actions.length, registrations: clients.length }, G_R))).toBeGreaterThan(0n);
  });

  it("takes routers with their terms and accounts without; refuses other kinds and bad terms before anything is submitted", () => {
    const service = wifiService(4);
    const owner = deviceIdOf(clients[0]!.publicKey);
    const terms = { owner, priceMicrosPerGb: 500_000n, stakeMicros: 1_000n, capacityBitsPerSecond: 1_000_000_000n, attested: false, name: "corner" };
    expect(service.kinds).toEqual(["router", "client"]);
    expect(service.packageEnvelopesMax).toBe(ENVELOPES_PER_ITEM_MAX);
    expect(service.checkRegistration!({ publicKey: routers[0]!.publicKey, kind: "router", router: terms })).toBeNull();
    expect(service.checkRegistration!({ publicKey: clients[0]!.publicKey, kind: "client" })).toBeNull();
    expect(service.checkRegistration!({ publicKey: routers[0]!.publicKey, kind: "router" })).toMatch(/needs its terms/);
    expect(service.checkRegistration!({ publicKey: clients[0]!.publicKey, kind: "client", router: terms })).toMatch(/no router terms/);
    expect(service.checkRegistration!({ publicKey: clients[0]!.publicKey, kind: "meter" })).toMatch(/not meters/);
    expect(service.checkRegistration!({ publicKey: routers[0]!.publicKey, kind: "router", router: { ...terms, priceMicrosPerGb: 0n } })).toMatch(/price/);
  });
});
