import radius from "radius";
import { describe, expect, it } from "vitest";
import {
  ACCT_STATUS,
  accountingResponse,
  authenticatorMatches,
  octets64,
  RADIUS_PACKET_BYTES_MAX,
  readAccountingContent,
  readAccountingRequest,
} from "./packet.ts";
import { accountingRequest, TEST_CLIENT_ID, TEST_ROUTER_ID, TEST_SECRET } from "./testing.ts";

function read(datagram: Buffer) {
  const r = readAccountingRequest(datagram);
  if (!r.ok) throw new Error(`${r.refusal.code}: ${r.refusal.detail}`);
  return r.value;
}

function usageOf(datagram: Buffer) {
  const c = readAccountingContent(read(datagram));
  if (!c.ok) throw new Error(`${c.refusal.code}: ${c.refusal.detail}`);
  if (c.value.kind !== "usage") throw new Error("not usage");
  return c.value.usage;
}

function refusalOf(datagram: Buffer): string {
  const r = readAccountingRequest(datagram);
  if (!r.ok) return r.refusal.code;
  const c = readAccountingContent(r.value);
  return c.ok ? "none" : c.refusal.code;
}

describe("Request Authenticator (RFC 2866 §3)", () => {
  it("verifies with the shared secret and not with another, nor after a byte of the packet changed", () => {
    const packet = accountingRequest(TEST_SECRET, { inOctets: 1000 });
    expect(authenticatorMatches(packet, TEST_SECRET)).toBe(true);
    expect(authenticatorMatches(packet, `${TEST_SECRET}x`)).toBe(false);
    const tampered = Buffer.from(packet);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 1; // the last attribute's value
    expect(authenticatorMatches(tampered, TEST_SECRET)).toBe(false);
    const header = Buffer.from(packet);
    header[1] = header[1]! ^ 1; // the Identifier
    expect(authenticatorMatches(header, TEST_SECRET)).toBe(false);
  });

  it("tells apart authenticators that the codec's own check, comparing them as UTF-8 text, takes for equal", () => {
    // Find a packet whose authenticator has an octet that alone is not UTF-8 (0x80–0xBF after an
    // ASCII octet): changed to another such octet, the text is the same, the octets are not.
    for (let i = 0; i < 1000; i++) {
      const packet = accountingRequest(TEST_SECRET, { session: `s-${i}` });
      const auth = packet.subarray(4, 20);
      for (let j = 1; j < 16; j++) {
        if (auth[j]! < 0x80 || auth[j]! > 0xbf || auth[j - 1]! >= 0x80) continue;
        const forged = Buffer.from(packet);
        forged[4 + j] = auth[j] === 0x80 ? 0x81 : 0x80;
        if (forged.subarray(4, 20).toString() !== auth.toString()) continue;
        expect(() => radius.decode({ packet: Buffer.from(forged), secret: TEST_SECRET })).not.toThrow(); // the codec takes the forgery
        expect(authenticatorMatches(forged, TEST_SECRET)).toBe(false);
        expect(authenticatorMatches(packet, TEST_SECRET)).toBe(true);
        return;
      }
    }
    throw new Error("no packet with such an authenticator in 1,000 (each has one with odds ~0.9)");
  });
});

describe("readAccountingRequest", () => {
  it("reads the router id from NAS-Identifier, lowercased", () => {
    expect(read(accountingRequest(TEST_SECRET)).routerId).toBe(TEST_ROUTER_ID);
    expect(read(accountingRequest(TEST_SECRET, { router: TEST_ROUTER_ID.toUpperCase() })).routerId).toBe(TEST_ROUTER_ID);
  });

  it("refuses what is not an Accounting-Request of at most 4096 octets with a router id", () => {
    expect(refusalOf(Buffer.alloc(RADIUS_PACKET_BYTES_MAX + 1))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(Buffer.alloc(19))).toBe("JG_ERR_RADIUS_PACKET");
    const access = radius.encode({ code: "Access-Request", secret: TEST_SECRET, attributes: [["NAS-Identifier", TEST_ROUTER_ID]] });
    expect(refusalOf(access)).toBe("JG_ERR_RADIUS_PACKET");
    const truncated = accountingRequest(TEST_SECRET);
    expect(refusalOf(truncated.subarray(0, truncated.length - 1))).toBe("JG_ERR_RADIUS_PACKET"); // Length past the datagram
    const badAttribute = Buffer.from(accountingRequest(TEST_SECRET));
    badAttribute[21] = 1; // the first attribute's length < 2
    expect(refusalOf(badAttribute)).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(accountingRequest(TEST_SECRET, { router: "router-7" }))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(accountingRequest(TEST_SECRET, { extra: [["NAS-Identifier", TEST_ROUTER_ID]] }))).toBe("JG_ERR_RADIUS_PACKET");
  });

  it("ignores octets past the Length field (RFC 2865 §3: padding)", () => {
    const packet = accountingRequest(TEST_SECRET, { inOctets: 5 });
    const padded = Buffer.concat([packet, Buffer.from([1, 2, 3])]);
    const request = read(padded);
    expect(request.bytes.length).toBe(packet.length);
    expect(authenticatorMatches(request.bytes, TEST_SECRET)).toBe(true);
  });
});

describe("readAccountingContent", () => {
  it("maps every usage attribute", () => {
    const u = usageOf(
      accountingRequest(TEST_SECRET, {
        status: "Stop",
        session: "8023-ab",
        inOctets: 11,
        outOctets: 22,
        inGigawords: 3,
        outGigawords: 4,
        seconds: 600,
        cause: 1,
      }),
    );
    expect(u).toEqual({
      status: ACCT_STATUS.stop,
      acctSessionId: "8023-ab",
      clientId: TEST_CLIENT_ID,
      inOctets: 11,
      outOctets: 22,
      inGigawords: 3,
      outGigawords: 4,
      seconds: 600,
      cause: 1,
    });
  });

  it("takes absent counters as 0 and a terminate cause only with a Stop", () => {
    const u = usageOf(accountingRequest(TEST_SECRET, { status: "Interim-Update", cause: 4 }));
    expect(u).toMatchObject({ status: ACCT_STATUS.interimUpdate, inOctets: 0, outOctets: 0, inGigawords: 0, outGigawords: 0, seconds: 0, cause: 0 });
  });

  it("lowercases User-Name", () => {
    expect(usageOf(accountingRequest(TEST_SECRET, { user: TEST_CLIENT_ID.toUpperCase() })).clientId).toBe(TEST_CLIENT_ID);
  });

  it("answers Accounting-On and Accounting-Off without a session or user", () => {
    for (const [status, value] of [
      ["Accounting-On", 7],
      ["Accounting-Off", 8],
    ] as const) {
      const packet = radius.encode({
        code: "Accounting-Request",
        secret: TEST_SECRET,
        attributes: [
          ["NAS-Identifier", TEST_ROUTER_ID],
          ["Acct-Status-Type", status],
        ],
      });
      const c = readAccountingContent(read(packet));
      expect(c).toEqual({ ok: true, value: { kind: "on-off", status: value } });
    }
  });

  it("refuses usage without Acct-Status-Type, Acct-Session-Id or an account id as User-Name, another status, twice an attribute, or an integer not of 4 octets", () => {
    const without = (name: string) =>
      radius.encode({
        code: "Accounting-Request",
        secret: TEST_SECRET,
        attributes: [
          ["NAS-Identifier", TEST_ROUTER_ID],
          ["Acct-Status-Type", "Start"],
          ["Acct-Session-Id", "s"],
          ["User-Name", TEST_CLIENT_ID],
        ].filter(([n]) => n !== name),
      });
    expect(refusalOf(without("Acct-Status-Type"))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(without("Acct-Session-Id"))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(without("User-Name"))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(without("nothing"))).toBe("none");
    expect(refusalOf(accountingRequest(TEST_SECRET, { user: "alice" }))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(accountingRequest(TEST_SECRET, { status: 15 }))).toBe("JG_ERR_RADIUS_PACKET"); // Failed
    expect(refusalOf(accountingRequest(TEST_SECRET, { inOctets: 1, extra: [["Acct-Input-Octets", 2]] }))).toBe("JG_ERR_RADIUS_PACKET");
    expect(refusalOf(accountingRequest(TEST_SECRET, { extra: [[42, Buffer.from([0, 0, 1])]] }))).toBe("JG_ERR_RADIUS_PACKET");
  });
});

describe("octets64 (RFC 2869 §5.1–5.2)", () => {
  it("adds gigawords × 2^32 to the 32-bit counter", () => {
    expect(octets64(5, 0)).toBe(5n);
    expect(octets64(5, 1)).toBe(2n ** 32n + 5n);
    expect(octets64(0xffff_ffff, 0xffff_ffff)).toBe(2n ** 64n - 1n);
    expect(usageOf(accountingRequest(TEST_SECRET, { inOctets: 7, inGigawords: 2 }))).toMatchObject({ inOctets: 7, inGigawords: 2 });
  });
});

describe("accountingResponse (RFC 2866 §4.2)", () => {
  it("is an Accounting-Response to the request's identifier whose authenticator the NAS verifies with the secret", () => {
    const packet = accountingRequest(TEST_SECRET, { identifier: 42 });
    const response = accountingResponse(read(packet), TEST_SECRET);
    expect(response[0]).toBe(5);
    expect(response[1]).toBe(42);
    expect(radius.verify_response({ request: packet, response, secret: TEST_SECRET })).toBe(true);
    expect(radius.verify_response({ request: packet, response, secret: "another-secret-of-some-length" })).toBe(false);
  });
});
