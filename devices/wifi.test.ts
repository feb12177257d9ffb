import { blake2b } from "@noble/hashes/blake2.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCbor } from "./cbor.ts";
import { deviceIdOf, toHex } from "./envelope.ts";
import { deviceKeyFromSecret } from "./keys.ts";
import {
  encodeUsageBody,
  FIRST_PREV,
  joinOctets,
  RouterSession,
  signVoucher,
  splitOctets,
  UsageStatus,
  VOUCHER_SIGNING_BYTES,
  verifyVoucher,
  voucherHash,
  voucherSigningBytes,
} from "./wifi.ts";

const client = deviceKeyFromSecret(new Uint8Array(32).fill(7));
const router = deviceIdOf(new Uint8Array(32).fill(9));
const session = Uint8Array.from({ length: 16 }, (_, i) => i);

describe("voucher", () => {
  const fields = { router, session, inputOctets: 0x0102_0304_0506_0708n, outputOctets: 5n, seconds: 60, prev: FIRST_PREV };

  it("signs the documented layout: domain, router, session, u64 LE octets, u32 LE seconds, prev", () => {
    const bytes = voucherSigningBytes(fields);
    expect(bytes.length).toBe(VOUCHER_SIGNING_BYTES);
    const domain = new TextEncoder().encode("jamgate/voucher/v1\u0000");
    expect(toHex(bytes.subarray(0, 19))).toBe(toHex(domain));
    expect(toHex(bytes.subarray(19, 35))).toBe(router);
    expect(toHex(bytes.subarray(35, 51))).toBe(toHex(session));
    expect(toHex(bytes.subarray(51, 59))).toBe("0807060504030201");
    expect(toHex(bytes.subarray(59, 67))).toBe("0500000000000000");
    expect(toHex(bytes.subarray(67, 71))).toBe("3c000000");
    expect(toHex(bytes.subarray(71))).toBe("00".repeat(32));
    expect(toHex(voucherHash(fields))).toBe(toHex(blake2b(bytes, { dkLen: 32 })));
  });

  it("a signature verifies with the client's key over these fields only", () => {
    const signature = signVoucher(fields, client.secretKey);
    expect(verifyVoucher(fields, signature, client.publicKey)).toBe(true);
    expect(verifyVoucher({ ...fields, outputOctets: 6n }, signature, client.publicKey)).toBe(false);
    expect(verifyVoucher(fields, signature, deviceKeyFromSecret(new Uint8Array(32).fill(8)).publicKey)).toBe(false);
  });

  it("refuses fields out of range", () => {
    expect(() => voucherSigningBytes({ ...fields, seconds: 2 ** 32 })).toThrow(/seconds/);
    expect(() => voucherSigningBytes({ ...fields, inputOctets: -1n })).toThrow(/u64/);
    expect(() => voucherSigningBytes({ ...fields, router: "AB" })).toThrow(/router/);
  });
});

describe("octets split the RADIUS way", () => {
  it("joinOctets(splitOctets(x)) = x for every u64", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (x) => {
        const { octets, gigawords } = splitOctets(x);
        expect(octets).toBeLessThan(2 ** 32);
        expect(joinOctets(octets, gigawords)).toBe(x);
      }),
    );
  });
});

describe("usage body", () => {
  const base = {
    session,
    client: client.deviceId,
    status: UsageStatus.interim,
    inOctets: 1,
    outOctets: 2,
    inGigawords: 3,
    outGigawords: 4,
    seconds: 5,
    cause: 0,
    prev: FIRST_PREV,
  };

  it("is a CBOR map of byte strings (major type 2, no tag) and integers", () => {
    const bytes = encodeUsageBody(base);
    expect(bytes[0]! >> 5).toBe(5); // a map
    expect(bytes[0]! & 0x1f).toBe(10); // of ten keys
    expect(toHex(bytes)).toContain(`6773657373696f6e50${toHex(session)}`); // "session" then bytes(16) as head 0x50: major type 2, no RFC 8746 tag
    const decoded = decodeCbor(bytes) as Record<string, unknown>;
    expect(toHex(decoded.session as Uint8Array)).toBe(toHex(session));
    expect(decoded).toMatchObject({ status: 3, inOctets: 1, outOctets: 2, inGigawords: 3, outGigawords: 4, seconds: 5, cause: 0 });
  });

  it("carries voucher and client key together, and only together", () => {
    const voucher = new Uint8Array(64).fill(1);
    const decoded = decodeCbor(encodeUsageBody({ ...base, voucher, clientKey: client.publicKey })) as Record<string, unknown>;
    expect(toHex(decoded.clientKey as Uint8Array)).toBe(toHex(client.publicKey));
    expect(() => encodeUsageBody({ ...base, voucher })).toThrow(/clientKey/);
    expect(() => encodeUsageBody({ ...base, clientKey: client.publicKey })).toThrow(/voucher/);
  });

  it("throws on a counter of 2^32, an unknown status, a cause before the Stop", () => {
    expect(() => encodeUsageBody({ ...base, inOctets: 2 ** 32 })).toThrow(/inOctets/);
    expect(() => encodeUsageBody({ ...base, status: 4 as UsageStatus })).toThrow(/status/);
    expect(() => encodeUsageBody({ ...base, cause: 1 })).toThrow(/cause/);
  });
});

describe("RouterSession", () => {
  it("chains each update to the one before and splits counters into gigawords", () => {
    const s = new RouterSession(router, session, client.deviceId);
    const counters = [
      { inputOctets: 0n, outputOctets: 0n, seconds: 0 },
      { inputOctets: 5_000_000_000n, outputOctets: 100n, seconds: 60 },
      { inputOctets: 6_000_000_000n, outputOctets: 200n, seconds: 120 },
    ];
    let prev: Uint8Array = FIRST_PREV;
    for (const [i, c] of counters.entries()) {
      const fields = s.voucherFields(c);
      expect(toHex(fields.prev)).toBe(toHex(prev));
      const signature = signVoucher(fields, client.secretKey);
      const { body, hash } = s.update(c, { voucher: signature, clientKey: client.publicKey, ...(i === 2 ? { status: UsageStatus.stop, cause: 1 } : {}) });
      const decoded = decodeCbor(body) as Record<string, number | Uint8Array>;
      expect(decoded.status).toBe(i === 0 ? 1 : i === 1 ? 3 : 2);
      expect(joinOctets(decoded.inOctets as number, decoded.inGigawords as number)).toBe(c.inputOctets);
      expect(toHex(decoded.prev as Uint8Array)).toBe(toHex(prev));
      expect(toHex(hash)).toBe(toHex(voucherHash(fields)));
      expect(toHex(s.lastVoucherHash)).toBe(toHex(hash));
      prev = hash;
    }
    expect(() => s.update({ inputOctets: 7_000_000_000n, outputOctets: 200n, seconds: 180 })).toThrow(/stopped/);
  });

  it("refuses counters going backwards and a second Start", () => {
    const s = new RouterSession(router, session, client.deviceId);
    s.update({ inputOctets: 10n, outputOctets: 10n, seconds: 1 });
    expect(() => s.update({ inputOctets: 9n, outputOctets: 10n, seconds: 2 })).toThrow(/backwards/);
    expect(() => s.update({ inputOctets: 10n, outputOctets: 10n, seconds: 2 }, { status: UsageStatus.start })).toThrow(/Start/);
    expect(() =>
      new RouterSession(router, session, client.deviceId).update({ inputOctets: 0n, outputOctets: 0n, seconds: 0 }, { status: UsageStatus.interim }),
    ).toThrow(/first update/);
  });
});
