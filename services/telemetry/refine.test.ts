import { describe, expect, it } from "vitest";
import { deviceIdOf, type EnvelopeKind, signEnvelope, signingBytes } from "../../devices/envelope.ts";
import { deviceKeyFromSecret } from "../../devices/keys.ts";
import { keyPairFromSeed, signEd25519, type Ed25519KeyPair, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { pseudoRandomBytes } from "../../node/testing/bytes.ts";
import { concatBytes, toHex } from "../common/bytes.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import { commitmentLeaf, decodeRefineOutput, type EnvelopesOutput, REGISTRATION_KEYS_OUTPUT, type RegistrationKeysOutput } from "./output.ts";
import { encodeEnvelopesItem, encodeRegistrationsItem, type EnvelopeRecord, ITEM_PAYLOAD_BYTES_MAX, REGISTRATIONS_PER_ITEM_MAX, W_R } from "./payload.ts";
import { refine } from "./refine.ts";
import { memoryRefineContext } from "../common/testing.ts";

const crypto = { hash, verifyEd25519 };

function device(n: number): Ed25519KeyPair & { id: string } {
  const key = keyPairFromSeed(hash(Uint8Array.of(n, n >> 8, n >> 16)));
  return { ...key, id: deviceIdOf(key.publicKey) };
}

function envelope(
  key: Ed25519KeyPair,
  seq: number,
  body: Uint8Array,
  options: { claim?: string; kind?: EnvelopeKind } = {},
): EnvelopeRecord & { body: Uint8Array } {
  const bytes = signingBytes({
    version: 1,
    device: (options.claim ?? deviceIdOf(key.publicKey)) as never,
    seq,
    kind: options.kind ?? "meter.reading",
    timeMs: 1_700_000_000_000 + seq,
    body,
  });
  return { publicKey: key.publicKey, signingBytes: bytes, signature: signEd25519(key, bytes), body };
}

function refineOutput(payload: Uint8Array) {
  const context = memoryRefineContext(crypto);
  const bytes = refine(payload, context);
  const decoded = decodeRefineOutput(bytes);
  if (!decoded.ok) throw new Error(decoded.error);
  return { bytes, output: decoded.value, gasUsed: context.gas.used };
}

describe("refine: envelopes", () => {
  it("accepts verified envelopes as runs per device and commits to their bodies", () => {
    const [a, b] = [device(1), device(2)];
    const records = [
      envelope(a, 3, Uint8Array.of(3)),
      envelope(a, 1, Uint8Array.of(1)),
      envelope(b, 0, Uint8Array.of(0)),
      envelope(a, 2, Uint8Array.of(2)),
      envelope(a, 7, Uint8Array.of(7)),
    ];
    const { output } = refineOutput(encodeEnvelopesItem(records));
    const expected = [a, b]
      .sort((x, y) => (x.id < y.id ? -1 : 1))
      .map((d) =>
        d === a
          ? {
              deviceId: a.id,
              accepted: [
                { start: 1n, length: 3 },
                { start: 7n, length: 1 },
              ],
              rejected: [],
            }
          : { deviceId: b.id, accepted: [{ start: 0n, length: 1 }], rejected: [] },
      );
    const out = output as EnvelopesOutput;
    expect(out.devices.map((d) => ({ ...d, deviceId: toHex(d.deviceId) }))).toEqual(expected);
    // The commitment, recomputed from the envelopes as an auditor would from the bundle in DA.
    const sorted = [...records].sort((x, y) => {
      const dx = deviceIdOf(x.publicKey);
      const dy = deviceIdOf(y.publicKey);
      return dx !== dy ? (dx < dy ? -1 : 1) : x.body[0]! - y.body[0]!;
    });
    const leaves = sorted.map((r) => commitmentLeaf(Uint8Array.from(Buffer.from(deviceIdOf(r.publicKey), "hex")), BigInt(r.body[0]!), hash(r.body)));
    expect(out.commitment).toEqual(hash(concatBytes(leaves)));
  });

  it("refuses a bad signature or a foreign device id per envelope, and keeps the rest", () => {
    const [a, b] = [device(1), device(2)];
    const forged = envelope(a, 2, Uint8Array.of(2));
    forged.signature[0]! ^= 1;
    const claimsB = envelope(a, 9, Uint8Array.of(9), { claim: b.id }); // a's key, b's id: signature fine, device wrong
    const { output } = refineOutput(
      encodeEnvelopesItem([envelope(a, 1, Uint8Array.of(1)), forged, envelope(a, 3, Uint8Array.of(3)), claimsB, envelope(b, 10, Uint8Array.of(10))]),
    );
    const byId = new Map((output as EnvelopesOutput).devices.map((d) => [toHex(d.deviceId), d]));
    expect(byId.get(a.id)).toMatchObject({
      accepted: [
        { start: 1n, length: 1 },
        { start: 3n, length: 1 },
      ],
      rejected: [{ seq: 2n, code: REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE }],
    });
    expect(byId.get(b.id)).toMatchObject({ accepted: [{ start: 10n, length: 1 }], rejected: [{ seq: 9n, code: REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE }] });
  });

  it("accepts envelopes signed by devices/envelope.ts (noble) like those signed by node:crypto", () => {
    const key = deviceKeyFromSecret(new Uint8Array(32).fill(5));
    const e = signEnvelope({ version: 1, device: key.deviceId, seq: 42, kind: "inverter.reading", timeMs: 1, body: Uint8Array.of(1, 2) }, key.secretKey);
    const { output } = refineOutput(encodeEnvelopesItem([{ publicKey: key.publicKey, signingBytes: signingBytes(e), signature: e.signature }]));
    expect((output as EnvelopesOutput).devices[0]).toMatchObject({ accepted: [{ start: 42n, length: 1 }], rejected: [] });
  });

  it("fails the item (throws) on a malformed payload: unsorted, repeated, truncated, unknown kind", () => {
    const a = device(1);
    const good = encodeEnvelopesItem([envelope(a, 1, Uint8Array.of(1)), envelope(a, 2, Uint8Array.of(2))]);
    const context = memoryRefineContext(crypto);
    expect(() => refine(good.subarray(0, good.length - 1), context)).toThrow(/truncated/);
    const [first, second] = [good.subarray(5, 5 + (good.length - 5) / 2), good.subarray(5 + (good.length - 5) / 2)];
    expect(() => refine(concatBytes([good.subarray(0, 5), second, first]), context)).toThrow(/order/);
    expect(() => refine(concatBytes([good.subarray(0, 5), first, first]), context)).toThrow(/repeat/);
    expect(() => refine(Uint8Array.of(7), context)).toThrow(/item kind/);
    expect(() => refine(new Uint8Array(0), context)).toThrow(/item kind/);
  });
});

describe("refine: registrations", () => {
  it("hands on each key and kind, 33 bytes a registration (accumulate derives the ids)", () => {
    const keys = [device(1), device(2)];
    const { output, bytes } = refineOutput(
      encodeRegistrationsItem([
        { publicKey: keys[0]!.publicKey, kind: "meter" },
        { publicKey: keys[1]!.publicKey, kind: "router" },
      ]),
    );
    expect(bytes.length).toBe(3 + 2 * 33);
    expect(output).toEqual({
      kind: REGISTRATION_KEYS_OUTPUT,
      registrations: [
        { publicKey: keys[0]!.publicKey, kind: 0 },
        { publicKey: keys[1]!.publicKey, kind: 2 },
      ],
    });
  });

  it("fits a full item (REGISTRATIONS_PER_ITEM_MAX) in W_R, and refuses one more", () => {
    const records = [...Array(REGISTRATIONS_PER_ITEM_MAX).keys()].map((i) => ({ publicKey: hash(Uint8Array.of(i & 0xff, i >> 8)), kind: "meter" as const }));
    const { bytes, output } = refineOutput(encodeRegistrationsItem(records));
    expect(bytes.length).toBeLessThanOrEqual(W_R);
    expect(bytes.length + 33).toBeGreaterThan(W_R); // the bound is W_R's, not below it
    expect((output as RegistrationKeysOutput).registrations.length).toBe(REGISTRATIONS_PER_ITEM_MAX);
    expect(() => encodeRegistrationsItem([...records, records[0]!])).toThrow(/REGISTRATIONS_PER_ITEM_MAX/);
  });
});

describe("refine: compression", () => {
  function measure(devices: number, perDevice: number, bodyBytes: number) {
    const records: EnvelopeRecord[] = [];
    for (let d = 0; d < devices; d++) {
      const key = device(1_000 + d);
      for (let s = 0; s < perDevice; s++) records.push(envelope(key, 100 + s, pseudoRandomBytes(bodyBytes, d * perDevice + s + 1)));
    }
    const payload = encodeEnvelopesItem(records);
    const { bytes, output, gasUsed } = refineOutput(payload);
    const ratio = payload.length / bytes.length;
    console.log(
      `telemetry refine, ${devices} devices × ${perDevice} envelopes of ${bodyBytes} B bodies: ${payload.length} B in, ${bytes.length} B out (${(bytes.length / devices).toFixed(1)} B per device), ratio ${ratio.toFixed(0)}×, refine gas ${gasUsed}`,
    );
    return { payload, bytes, output: output as EnvelopesOutput, ratio, gasUsed };
  }

  it("condenses 1,000 devices × 5 envelopes (the most W_B holds: ~2.7 KB each) by more than 50×, 32 B per device", () => {
    const m = measure(1_000, 5, 2_560);
    expect(m.payload.length).toBeLessThanOrEqual(ITEM_PAYLOAD_BYTES_MAX);
    expect(m.output.devices.every((d) => d.accepted.length === 1 && d.accepted[0]!.length === 5 && d.rejected.length === 0)).toBe(true);
    expect(m.bytes.length).toBe(1 + 32 + 2 + 1_000 * 32);
    expect(m.bytes.length).toBeLessThan(W_R);
    expect(m.ratio).toBeGreaterThan(50);
    expect(m.gasUsed).toBeLessThan(1_000_000_000n); // G_R of the tiny chain
  });

  it("condenses 500 devices × 5 envelopes of 3 KB bodies the same way (1,000 of them exceed W_B)", () => {
    const m = measure(500, 5, 3_000);
    expect(m.ratio).toBeGreaterThan(50);
    expect(1_000 * 5 * (m.payload.length / 2_500)).toBeGreaterThan(ITEM_PAYLOAD_BYTES_MAX);
  });
});
