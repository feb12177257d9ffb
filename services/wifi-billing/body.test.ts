import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "../../devices/cbor.ts";
import { encodeUsageBody, joinOctets, voucherHash as deviceVoucherHash, voucherSigningBytes as deviceVoucherSigningBytes } from "../../devices/wifi.ts";
import { blake2b } from "@noble/hashes/blake2.js";
import { toHex } from "../common/bytes.ts";
import { decodeUsageBody, USAGE_BODY_BYTES_MAX } from "./body.ts";
import { voucherSigningBytes } from "./voucher.ts";

const bytesArb = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u32 = fc.nat({ max: 2 ** 32 - 1 });
const updateArb = fc
  .record({
    session: bytesArb(16),
    client: bytesArb(16),
    status: fc.constantFrom(1, 2, 3) as fc.Arbitrary<1 | 2 | 3>,
    inOctets: u32,
    outOctets: u32,
    inGigawords: u32,
    outGigawords: u32,
    seconds: u32,
    cause: u32,
    prev: bytesArb(32),
    signed: fc.option(fc.record({ voucher: bytesArb(64), clientKey: bytesArb(32) }), { nil: undefined }),
  })
  .map(({ signed, ...u }) => ({ ...u, cause: u.status === 2 ? u.cause : 0, ...(signed ?? {}) }));

describe("device and service agree byte for byte", () => {
  it("on the voucher's signing bytes and hash", () => {
    fc.assert(
      fc.property(
        bytesArb(16),
        bytesArb(16),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        u32,
        bytesArb(32),
        (router, session, inputOctets, outputOctets, seconds, prev) => {
          const f = { router, session, inputOctets, outputOctets, seconds, prev };
          const service = voucherSigningBytes(f);
          expect(Buffer.compare(service, deviceVoucherSigningBytes(f))).toBe(0);
          expect(toHex(blake2b(service, { dkLen: 32 }))).toBe(toHex(deviceVoucherHash(f)));
        },
      ),
    );
  });

  it("on the usage body: the service reads back every field the device wrote", () => {
    fc.assert(
      fc.property(updateArb, (u) => {
        const decoded = decodeUsageBody(encodeUsageBody(u));
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        const v = decoded.value;
        expect([toHex(v.session), toHex(v.client), toHex(v.prev)]).toEqual([toHex(u.session), toHex(u.client), toHex(u.prev)]);
        expect(v.inputOctets).toBe(joinOctets(u.inOctets, u.inGigawords));
        expect(v.outputOctets).toBe(joinOctets(u.outOctets, u.outGigawords));
        expect([v.status, v.seconds, v.cause]).toEqual([u.status, u.seconds, u.cause]);
        if (u.voucher === undefined) expect(v.voucher).toBeNull();
        else expect([toHex(v.voucher!.signature), toHex(v.voucher!.clientKey)]).toEqual([toHex(u.voucher), toHex(u.clientKey!)]);
      }),
    );
  });
});

describe("usage body refusals", () => {
  const good = {
    session: new Uint8Array(16),
    client: new Uint8Array(16).fill(1),
    status: 3,
    inOctets: 1,
    outOctets: 2,
    inGigawords: 0,
    outGigawords: 0,
    seconds: 3,
    cause: 0,
    prev: new Uint8Array(32),
  };
  const refusal = (body: Uint8Array) => {
    const decoded = decodeUsageBody(body);
    expect(decoded.ok).toBe(false);
    return decoded.ok ? "" : `${decoded.code}: ${decoded.detail}`;
  };

  it.each([
    ["a missing field", { ...good, seconds: undefined }, /missing seconds/],
    ["an unknown key", { ...good, extra: 1 }, /unknown key/],
    ["a short session id", { ...good, session: new Uint8Array(15) }, /session must be a byte string of 16 bytes/],
    ["a counter of 2^32", { ...good, inOctets: 2 ** 32 }, /inOctets .* 2\^32/],
    ["a negative counter", { ...good, outOctets: -1 }, /outOctets must be an unsigned integer/],
    ["status 4", { ...good, status: 4 }, /status 4/],
    ["a cause on an interim update", { ...good, cause: 1 }, /cause 1/],
    ["a voucher without the client key", { ...good, voucher: new Uint8Array(64) }, /together/],
    ["a counter as text", { ...good, seconds: "3" }, /seconds must be an unsigned integer/],
  ])("%s", (_, body, detail) => {
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    expect(refusal(encodeCbor(clean))).toMatch(new RegExp(`^JG_ERR_WIFI_BODY: .*${detail.source}`));
  });

  it("a float counter, an array body, an oversize body", () => {
    expect(refusal(Uint8Array.of(0xa1, 0x67, ...new TextEncoder().encode("seconds"), 0xfb, 0x40, 0x08, 0, 0, 0, 0, 0, 0))).toMatch(/float/);
    expect(refusal(encodeCbor([1, 2]))).toMatch(/not a map/);
    expect(refusal(new Uint8Array(USAGE_BODY_BYTES_MAX + 1))).toMatch(/USAGE_BODY_BYTES_MAX/);
  });

  it("never throws on garbage; answers JG_ERR_WIFI_BODY", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const decoded = decodeUsageBody(bytes);
        if (!decoded.ok) expect(decoded.code).toBe("JG_ERR_WIFI_BODY");
      }),
      { numRuns: 3_000 },
    );
  });

  it("never throws on mutations of a good body; answers JG_ERR_WIFI_BODY or a body", () => {
    const body = encodeUsageBody({ ...good, status: 3, voucher: new Uint8Array(64), clientKey: new Uint8Array(32) });
    fc.assert(
      fc.property(fc.nat({ max: body.length - 1 }), fc.nat({ max: 255 }), fc.nat({ max: body.length }), (at, value, cut) => {
        const mutated = Uint8Array.from(body.subarray(0, cut), (b, i) => (i === at ? value : b));
        const decoded = decodeUsageBody(mutated);
        if (!decoded.ok) expect(decoded.code).toBe("JG_ERR_WIFI_BODY");
      }),
      { numRuns: 3_000 },
    );
  });
});
