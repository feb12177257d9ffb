import { describe, expect, it } from "vitest";
import { encodeCbor } from "../devices/cbor.ts";
import { deviceIdOf, signingBytes } from "../devices/envelope.ts";
import { tinyParams } from "../node/chain/params.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { OutOfGas } from "../node/service-api/gas.ts";
import { memoryRefineContext } from "../services/common/testing.ts";
import { encodeEnvelopesItem as energyEnvelopesItem, encodeRegistrationsItem as energyRegistrationsItem } from "../services/energy-trading/payload.ts";
import { refine as energyRefine } from "../services/energy-trading/refine.ts";
import { encodeEnvelopesItem as telemetryEnvelopesItem, encodeRegistrationsItem as telemetryRegistrationsItem } from "../services/telemetry/payload.ts";
import { refine as telemetryRefine } from "../services/telemetry/refine.ts";
import { envelopesRefineGas, registrationKeysRefineGas, registrationsRefineGas } from "./refine-gas.ts";

const G_R = tinyParams.refineGasPerPackage;
const START_MS = 1_750_000_000_000;
const keys = Array.from({ length: 100 }, (_, i) => keyPairFromSeed(hash(new TextEncoder().encode(`refine-gas-test-${i}`))));

interface Record {
  readonly id: string;
  readonly seq: number;
  readonly publicKey: Uint8Array;
  readonly signingBytes: Uint8Array;
  readonly signature: Uint8Array;
}

/** `perDevice` envelopes from each of `devices` devices, body by (device, seq); sorted as the gateway sends them. */
function records(devices: number, perDevice: number, body: (device: number, seq: number) => Uint8Array): Record[] {
  const out: Record[] = [];
  for (let d = 0; d < devices; d++) {
    const key = keys[d]!;
    for (let seq = 0; seq < perDevice; seq++) {
      const signed = signingBytes({ version: 1, device: deviceIdOf(key.publicKey), seq, kind: "meter.reading", timeMs: START_MS, body: body(d, seq) });
      out.push({ id: deviceIdOf(key.publicKey), seq, publicKey: key.publicKey, signingBytes: signed, signature: signEd25519(key, signed) });
    }
  }
  return out.sort((a, b) => (a.id !== b.id ? (a.id < b.id ? -1 : 1) : a.seq - b.seq));
}

/** Refine gas charged for `payload` when `declared` is given, or the OutOfGas it ran into. */
function charged(refine: typeof telemetryRefine, payload: Uint8Array, declared: bigint): bigint {
  const context = memoryRefineContext({ hash, verifyEd25519 }, declared);
  context.gas.charge(1_000n + BigInt(payload.length)); // the payload handed over, as node/refine/refine.ts charges it
  refine(payload, context);
  return context.gas.used;
}

const filler = (bytes: number) => (d: number, seq: number) => Uint8Array.from({ length: bytes }, (_, i) => (d * 31 + seq * 7 + i) & 0xff);

/** 60 one-second meter readings with counters that only rise: a body the energy service accepts. */
function meterBody(d: number, seq: number): Uint8Array {
  const readings = Array.from({ length: 60 }, (_, r) => {
    const second = seq * 60 + r + 1;
    return { t: START_MS + second * 1000, importWh: 1_000 * d + second, exportWh: second >> 1, powerW: 1_200, voltageV: 230 };
  });
  return encodeCbor(readings);
}

describe("refine gas the gateway declares", () => {
  const cases = [
    { name: "telemetry, 497-byte bodies", refine: telemetryRefine, records: records(100, 20, filler(497)), encode: (r: Record[]) => telemetryEnvelopesItem(r) },
    {
      name: "telemetry, 3,808-byte bodies",
      refine: telemetryRefine,
      records: records(50, 6, filler(3_808)),
      encode: (r: Record[]) => telemetryEnvelopesItem(r),
    },
    { name: "telemetry, one envelope", refine: telemetryRefine, records: records(1, 1, filler(10)), encode: (r: Record[]) => telemetryEnvelopesItem(r) },
    {
      name: "energy, meters of 60 readings",
      refine: energyRefine,
      records: records(40, 6, meterBody),
      encode: (r: Record[]) => energyEnvelopesItem({ marketStartMs: BigInt(START_MS), intervalMs: 900_000 }, r),
    },
  ];

  for (const c of cases) {
    it(`covers what refine charges, and a quarter more (30% at most): ${c.name}`, () => {
      const payload = c.encode(c.records);
      const declared = envelopesRefineGas(
        { payloadBytes: payload.length, envelopes: c.records.length, devices: new Set(c.records.map((r) => r.id)).size },
        G_R,
      );
      const used = charged(c.refine, payload, declared);
      expect(used).toBeLessThanOrEqual(declared);
      expect(declared).toBeGreaterThanOrEqual((used * 5n) / 4n); // the margin
      expect(declared).toBeLessThanOrEqual((used * 13n) / 10n + 10_000n); // and not much more: the bytes refine hashes are counted at most twice
      expect(declared).toBeLessThan(G_R / 4n); // before, it declared G_R (or half of it, one of two items), whatever the package
    });
  }

  it("covers a package whose signatures all fail (no body hashed, every envelope verified)", () => {
    const forged = records(20, 10, filler(497)).map((r) => ({ ...r, signature: r.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) }));
    const payload = telemetryEnvelopesItem(forged);
    const declared = envelopesRefineGas({ payloadBytes: payload.length, envelopes: forged.length, devices: 20 }, G_R);
    expect(charged(telemetryRefine, payload, declared)).toBeLessThanOrEqual(declared);
  });

  it("is what refine needs: a quarter less than declared runs out of gas", () => {
    const rs = records(50, 10, filler(497));
    const payload = telemetryEnvelopesItem(rs);
    const declared = envelopesRefineGas({ payloadBytes: payload.length, envelopes: rs.length, devices: 50 }, G_R);
    expect(() => charged(telemetryRefine, payload, (declared * 3n) / 4n)).toThrow(OutOfGas);
  });

  it("declares at most the item's share of G_R", () => {
    expect(envelopesRefineGas({ payloadBytes: 13_000_000, envelopes: 12_000, devices: 1_000 }, G_R / 2n)).toBe(G_R / 2n);
    // A full package (12,000 envelopes in 13 MB) fits G_R, so the share bites only past it.
    expect(envelopesRefineGas({ payloadBytes: 13_000_000, envelopes: 12_000, devices: 1_000 }, G_R)).toBeLessThan(G_R);
  });

  it("covers registrations items of both services", () => {
    const regs = keys.slice(0, 60);
    for (const [refine, payload, gas] of [
      [telemetryRefine, telemetryRegistrationsItem(regs.map((k) => ({ publicKey: k.publicKey, kind: "meter" as const }))), registrationKeysRefineGas],
      [energyRefine, energyRegistrationsItem(regs.map((k) => ({ publicKey: k.publicKey, role: "meter" as const }))), registrationsRefineGas],
    ] as const) {
      const declared = gas({ payloadBytes: payload.length, registrations: regs.length }, G_R);
      const used = charged(refine, payload, declared);
      expect(declared).toBeGreaterThanOrEqual((used * 5n) / 4n);
      expect(declared).toBeLessThanOrEqual((used * 13n) / 10n + 10_000n);
    }
  });
});
