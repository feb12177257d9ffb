import { createHash } from "node:crypto";
import radius from "radius";
import { describe, expect, it } from "vitest";
import { decodeCbor } from "../../devices/cbor.ts";
import { deviceKeyFromSecret } from "../../devices/keys.ts";
import { FIRST_PREV, joinOctets, verifyVoucher, voucherHash } from "../../devices/wifi.ts";
import { accountingRequest, nativeFraudBody, nativeSession, updateHash } from "./bodies.ts";
import type { SessionPlan } from "./traffic.ts";

const key = (label: string) => deviceKeyFromSecret(createHash("sha256").update(label).digest());
const client = key("client");
const routerId = key("router").deviceId;
const sessionId = Uint8Array.from(Buffer.alloc(16, 7));
// Four updates; the last passes 2^32 octets out, so the body splits it into octets and gigawords.
const plan: SessionPlan = {
  index: 0,
  client: 0,
  router: 0,
  acctSessionId: "5A1B2C3D4E5F6A7B",
  updates: [
    { status: 1, atSeconds: 0, seconds: 0, inputOctets: 0, outputOctets: 0, cause: 0 },
    { status: 3, atSeconds: 300, seconds: 300, inputOctets: 1_000_000, outputOctets: 9_000_000, cause: 0 },
    { status: 3, atSeconds: 600, seconds: 600, inputOctets: 2_000_000, outputOctets: 2_000_000_000, cause: 0 },
    { status: 2, atSeconds: 700, seconds: 700, inputOctets: 3_000_000, outputOctets: 5_000_000_000, cause: 1 },
  ],
};
type Body = {
  session: Uint8Array;
  client: Uint8Array;
  status: number;
  inOctets: number;
  outOctets: number;
  inGigawords: number;
  outGigawords: number;
  seconds: number;
  cause: number;
  prev: Uint8Array;
  voucher?: Uint8Array;
  clientKey?: Uint8Array;
};
const read = (bytes: Uint8Array) => decodeCbor(bytes) as Body;
const fields = (b: Body) => ({
  router: routerId,
  session: b.session,
  inputOctets: joinOctets(b.inOctets, b.inGigawords),
  outputOctets: joinOctets(b.outOctets, b.outGigawords),
  seconds: b.seconds,
  prev: b.prev,
});

describe("native bodies", () => {
  const native = nativeSession(routerId, plan, sessionId, client, false);

  it("chains the honest updates, each countersigned by the client over exactly its counters", () => {
    expect(native.bodies).toHaveLength(4);
    native.bodies.forEach((bytes, i) => {
      const b = read(bytes);
      expect(b.status).toBe(plan.updates[i]!.status);
      expect(Buffer.compare(b.prev, i === 0 ? FIRST_PREV : native.hashes[i - 1]!)).toBe(0);
      expect(fields(b).outputOctets).toBe(BigInt(plan.updates[i]!.outputOctets));
      expect(verifyVoucher(fields(b), b.voucher!, client.publicKey)).toBe(true);
      expect(Buffer.compare(voucherHash(fields(b)), native.hashes[i]!)).toBe(0);
      expect(Buffer.compare(updateHash(routerId, sessionId, plan.updates[i]!, native.prevOf(i)), native.hashes[i]!)).toBe(0);
    });
    expect(read(native.bodies[3]!)).toMatchObject({ outGigawords: 1, outOctets: 5_000_000_000 - 2 ** 32, cause: 1 });
  });

  it("leaves the vouchers out of a stripped session, chained by the same hashes", () => {
    const stripped = nativeSession(routerId, plan, sessionId, client, true);
    for (const bytes of stripped.bodies) expect(read(bytes).voucher).toBeUndefined();
    expect(stripped.hashes.map((h) => Buffer.from(h).toString("hex"))).toEqual(native.hashes.map((h) => Buffer.from(h).toString("hex")));
  });

  it("inflates counters past the voucher, which then does not verify over them (but does over the true ones)", () => {
    const b = read(nativeFraudBody({ kind: "inflate", update: 2, extraInputOctets: 0, extraOutputOctets: 10 }, routerId, plan, sessionId, native, client));
    expect(fields(b).outputOctets).toBe(2_000_000_010n);
    expect(Buffer.compare(b.prev, native.hashes[1]!)).toBe(0);
    expect(verifyVoucher(fields(b), b.voucher!, client.publicKey)).toBe(false);
    expect(verifyVoucher({ ...fields(b), outputOctets: 2_000_000_000n }, b.voucher!, client.publicKey)).toBe(true);
  });

  it("replays and reorders genuine bodies, and lowers the input on the last voucher's chain without a voucher", () => {
    expect(Buffer.compare(nativeFraudBody({ kind: "replay", of: 1 }, routerId, plan, sessionId, native, client), native.bodies[1]!)).toBe(0);
    expect(Buffer.compare(nativeFraudBody({ kind: "reorder", update: 3 }, routerId, plan, sessionId, native, client), native.bodies[3]!)).toBe(0);
    const b = read(nativeFraudBody({ kind: "backwards", after: 2, minusInputOctets: 5 }, routerId, plan, sessionId, native, client));
    expect(b).toMatchObject({ status: 3, inOctets: 2_000_000 - 5, seconds: 600 });
    expect(fields(b).outputOctets).toBe(2_000_000_000n);
    expect(Buffer.compare(b.prev, native.hashes[2]!)).toBe(0);
    expect(b.voucher).toBeUndefined();
  });
});

describe("accountingRequest", () => {
  const secret = "a-shared-secret-of-some-length";
  /** RFC 2866 §3: the Request Authenticator is MD5(Code ⌢ Identifier ⌢ Length ⌢ 16 zero octets ⌢ attributes ⌢ secret). */
  const authentic = (packet: Buffer, s: string) => {
    const zeroed = Buffer.from(packet);
    zeroed.fill(0, 4, 20);
    return Buffer.compare(createHash("md5").update(zeroed).update(s).digest(), packet.subarray(4, 20)) === 0;
  };

  it("encodes a Stop with the counters split into octets and gigawords, the cause, and an authenticator of the shared secret", () => {
    const packet = accountingRequest({
      secret,
      identifier: 9,
      routerId,
      clientId: client.deviceId,
      acctSessionId: plan.acctSessionId,
      update: plan.updates[3]!,
    });
    const decoded = radius.decode({ packet, secret }) as { code: string; identifier: number; attributes: Record<string, unknown> };
    expect(decoded.code).toBe("Accounting-Request");
    expect(decoded.identifier).toBe(9);
    expect(decoded.attributes).toMatchObject({
      "NAS-Identifier": routerId,
      "Acct-Status-Type": "Stop",
      "Acct-Session-Id": "5A1B2C3D4E5F6A7B",
      "User-Name": client.deviceId,
      "Acct-Output-Octets": 5_000_000_000 - 2 ** 32,
      "Acct-Output-Gigawords": 1,
      "Acct-Input-Octets": 3_000_000,
      "Acct-Session-Time": 700,
    });
    expect(authentic(packet, secret)).toBe(true);
    expect(
      authentic(
        accountingRequest({
          secret: "another",
          identifier: 9,
          routerId,
          clientId: client.deviceId,
          acctSessionId: plan.acctSessionId,
          update: plan.updates[3]!,
        }),
        secret,
      ),
    ).toBe(false);
  });

  it("sends a Start without counters, and an Interim-Update with the input it is given", () => {
    const start = radius.decode({
      packet: accountingRequest({ secret, identifier: 1, routerId, clientId: client.deviceId, acctSessionId: "X", update: plan.updates[0]! }),
      secret,
    }) as { attributes: Record<string, unknown> };
    expect(start.attributes["Acct-Status-Type"]).toBe("Start");
    expect(start.attributes["Acct-Input-Octets"]).toBeUndefined();
    const lowered = radius.decode({
      packet: accountingRequest({
        secret,
        identifier: 2,
        routerId,
        clientId: client.deviceId,
        acctSessionId: "X",
        update: plan.updates[2]!,
        inputOctets: 1_999_000,
      }),
      secret,
    }) as { attributes: Record<string, unknown> };
    expect(lowered.attributes).toMatchObject({ "Acct-Status-Type": "Interim-Update", "Acct-Input-Octets": 1_999_000, "Acct-Output-Octets": 2_000_000_000 });
  });
});
