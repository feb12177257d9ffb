import { createPublicKey, verify } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { errorRegistry } from "./protocol/errors.ts";
import {
  decodeBody,
  decodeEnvelope,
  ENVELOPE_KINDS,
  ENVELOPE_VERSION,
  type EnvelopeFields,
  encodeBody,
  encodeEnvelope,
  signEnvelope,
  signingBytes,
  signingBytesWriter,
  verifyEnvelope,
} from "./envelope.ts";
import { type DeviceKey, deviceKeyFromSecret, generateDeviceKey } from "./keys.ts";

const key = generateDeviceKey();

const fieldsArb = (k: DeviceKey) =>
  fc
    .record({
      seq: fc.maxSafeNat(),
      kind: fc.constantFrom(...ENVELOPE_KINDS),
      timeMs: fc.maxSafeNat(),
      readings: fc.array(fc.record({ timeMs: fc.nat(), importWh: fc.nat(), powerW: fc.integer(), label: fc.string() }), { maxLength: 20 }),
    })
    .map(({ readings, ...f }): EnvelopeFields => ({ version: ENVELOPE_VERSION, device: k.deviceId, body: encodeBody(readings), ...f }));

/** The gateway's way: node:crypto with the raw 32-byte key as a JWK (RFC 8037). */
function nodeVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const keyObject = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") }, format: "jwk" });
  return verify(null, message, keyObject, signature);
}

describe("envelopes", () => {
  it("sign exactly the documented layout (docs/protocol.md): domain, version, device, seq, kind, time, body", () => {
    const fields: EnvelopeFields = {
      version: 1,
      device: "00112233445566778899aabbccddeeff" as EnvelopeFields["device"],
      seq: 2 ** 40 + 3,
      kind: "meter.reading",
      timeMs: 1_700_000_000_123,
      body: Uint8Array.of(0xa1, 0x61, 0x78, 0x01),
    };
    const u64 = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(n));
      return b;
    };
    const expected = Buffer.concat([
      Buffer.from("jamgate/envelope/v1\u0000"),
      Buffer.from([1, 32]),
      Buffer.from(fields.device),
      u64(fields.seq),
      Buffer.from([13]),
      Buffer.from("meter.reading"),
      u64(fields.timeMs),
      Buffer.from([4, 0, 0, 0]),
      Buffer.from(fields.body),
    ]);
    expect(Buffer.from(signingBytes(fields)).toString("hex")).toBe(expected.toString("hex"));
  });

  it("write their signed bytes into a caller's buffer at any offset, exactly signingBytes and nothing past it", () => {
    fc.assert(
      fc.property(fieldsArb(key), fc.nat({ max: 40 }), fc.nat({ max: 40 }), (fields, before, after) => {
        const writer = signingBytesWriter(fields);
        const expected = signingBytes(fields);
        expect(writer.length).toBe(expected.length);
        const buffer = new Uint8Array(before + writer.length + after).fill(0xee);
        writer.write(buffer.subarray(before));
        expect(buffer.subarray(before, before + writer.length)).toEqual(expected);
        expect([...buffer.subarray(0, before), ...buffer.subarray(before + writer.length)].every((b) => b === 0xee)).toBe(true);
        expect(() => writer.write(new Uint8Array(writer.length - 1))).toThrow(RangeError);
      }),
    );
  });

  it("round-trip through CBOR and verify", () => {
    fc.assert(
      fc.property(fieldsArb(key), (fields) => {
        const envelope = signEnvelope(fields, key.secretKey);
        const decoded = decodeEnvelope(encodeEnvelope(envelope));
        expect(decoded).toEqual({ ok: true, envelope });
        expect(verifyEnvelope(envelope, key.publicKey)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("verify identically with @noble/ed25519 and node:crypto, so the gateway may use node:crypto", () => {
    fc.assert(
      fc.property(fieldsArb(key), fc.nat({ max: 63 }), fc.integer({ min: 1, max: 255 }), fc.boolean(), (fields, at, flip, tamper) => {
        const envelope = signEnvelope(fields, key.secretKey);
        const signature = tamper ? envelope.signature.map((b, i) => (i === at ? b ^ flip : b)) : envelope.signature;
        const noble = verifyEnvelope({ ...envelope, signature }, key.publicKey);
        expect(nodeVerify(key.publicKey, signingBytes(envelope), signature)).toBe(noble);
        expect(noble).toBe(!tamper);
      }),
      { numRuns: 100 },
    );
  });

  it("detect tampering with any signed field or another device's key", () => {
    const envelope = signEnvelope(
      { version: ENVELOPE_VERSION, device: key.deviceId, seq: 7, kind: "meter.reading", timeMs: 1_700_000_000_000, body: encodeBody([{ importWh: 10 }]) },
      key.secretKey,
    );
    const other = deviceKeyFromSecret(new Uint8Array(32).fill(9));
    expect(verifyEnvelope(envelope, key.publicKey)).toBe(true);
    expect(verifyEnvelope({ ...envelope, seq: 8 }, key.publicKey)).toBe(false);
    expect(verifyEnvelope({ ...envelope, kind: "inverter.reading" }, key.publicKey)).toBe(false);
    expect(verifyEnvelope({ ...envelope, timeMs: envelope.timeMs + 1 }, key.publicKey)).toBe(false);
    expect(verifyEnvelope({ ...envelope, body: encodeBody([{ importWh: 11 }]) }, key.publicKey)).toBe(false);
    expect(verifyEnvelope({ ...envelope, device: other.deviceId }, key.publicKey)).toBe(false);
    expect(verifyEnvelope(envelope, other.publicKey)).toBe(false);
    expect(verifyEnvelope({ ...envelope, signature: new Uint8Array(64) }, key.publicKey)).toBe(false);
  });

  it("decodeEnvelope never throws on arbitrary bytes and answers with a registry code", () => {
    const codes = new Set(Object.keys(errorRegistry));
    const valid = encodeEnvelope(
      signEnvelope({ version: ENVELOPE_VERSION, device: key.deviceId, seq: 1, kind: "meter.reading", timeMs: 1, body: encodeBody([1, 2, 3]) }, key.secretKey),
    );
    const mutated = fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, x]) => valid.map((b, i) => (i === at ? b ^ x : b)));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          mutated,
          fc.anything().map((v) => encodeBody(v)),
        ),
        (bytes) => {
          const result = decodeEnvelope(bytes);
          if (!result.ok) expect(codes.has(result.error.code)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
    expect(decodeEnvelope(new Uint8Array(70_000))).toMatchObject({ ok: false, error: { code: "JG_ERR_ENVELOPE_OVERSIZE" } });
  });

  it("are plain RFC 8949 on the wire: byte strings untagged, shortest map header", () => {
    const envelope = signEnvelope(
      { version: ENVELOPE_VERSION, device: key.deviceId, seq: 0, kind: "meter.reading", timeMs: 0, body: encodeBody([1]) },
      key.secretKey,
    );
    const bytes = encodeEnvelope(envelope);
    expect(bytes[0]).toBe(0xa7); // map of 7
    const hex = Buffer.from(bytes).toString("hex");
    // Each byte string's header follows its key at once: no RFC 8746 tag 64 (d840) between them. (The
    // signature's own bytes are random, so "no d840 anywhere" failed about once in 500 runs.)
    expect(hex).toContain(`${Buffer.from("b").toString("hex")}428101`); // "b": h'8101' (the CBOR of [1])
    expect(hex).toContain(`${Buffer.from("sig").toString("hex")}5840`); // "sig": a 64-byte string
    expect(decodeBody(envelope.body)).toEqual([1]);
  });
});
