import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deviceIdOf, ENVELOPE_KINDS, type EnvelopeKind, signingBytes } from "../../devices/envelope.ts";
import { toHex, Writer } from "../common/bytes.ts";
import {
  decodeEnvelopesItem,
  decodeRegistrationsItem,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  ENVELOPES_PER_ITEM_MAX,
  envelopeRecordBytes,
  ITEM_HEADER_BYTES,
  ITEM_PAYLOAD_BYTES_MAX,
  ItemKind,
  parseSigningBytes,
  W_B,
} from "./payload.ts";

const keys = [1, 2, 3].map((i) => new Uint8Array(32).fill(i));

const fieldsArb = fc.record({
  key: fc.constantFrom(...keys),
  seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  kind: fc.constantFrom(...ENVELOPE_KINDS),
  timeMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  body: fc.uint8Array({ maxLength: 64 }),
});

function signed(f: { key: Uint8Array; seq: number; kind: EnvelopeKind; timeMs: number; body: Uint8Array }) {
  return signingBytes({ version: 1, device: deviceIdOf(f.key), seq: f.seq, kind: f.kind, timeMs: f.timeMs, body: f.body });
}

describe("signed envelope layout", () => {
  it("parses exactly what devices/envelope.ts signs", () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const parsed = parseSigningBytes(signed(f));
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        expect(toHex(parsed.value.deviceId)).toBe(deviceIdOf(f.key));
        expect(parsed.value).toMatchObject({ version: 1, seq: BigInt(f.seq), kind: f.kind, timeMs: BigInt(f.timeMs) });
        expect(parsed.value.body).toEqual(f.body);
      }),
    );
  });

  it("refuses another domain, version, device id form, truncation and trailing bytes", () => {
    const good = signed({ key: keys[0]!, seq: 1, kind: "meter.reading", timeMs: 2, body: Uint8Array.of(1, 2, 3) });
    const at = (i: number, v: number) => Uint8Array.from(good, (b, j) => (j === i ? v : b));
    expect(parseSigningBytes(good).ok).toBe(true);
    expect(parseSigningBytes(at(0, 0x4a)).ok).toBe(false); // "J": not the domain
    expect(parseSigningBytes(at(20, 2)).ok).toBe(false); // version 2
    expect(parseSigningBytes(at(22, 0x41)).ok).toBe(false); // uppercase hex digit
    expect(parseSigningBytes(good.subarray(0, good.length - 1)).ok).toBe(false);
    expect(parseSigningBytes(Uint8Array.from([...good, 0])).ok).toBe(false);
  });
});

const recordArb = fc.record({ fields: fieldsArb, signature: fc.uint8Array({ minLength: 64, maxLength: 64 }) }).map(({ fields, signature }) => ({
  publicKey: fields.key,
  signingBytes: signed(fields),
  signature,
  device: deviceIdOf(fields.key),
  seq: BigInt(fields.seq),
}));

describe("envelopes item", () => {
  it("round-trips, sorted by (device id, seq)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(recordArb, { selector: (r) => `${r.device}:${r.seq}`, maxLength: 20 }), (records) => {
        const payload = encodeEnvelopesItem(records);
        expect(payload[0]).toBe(ItemKind.envelopes);
        expect(payload.length).toBe(ITEM_HEADER_BYTES + records.reduce((n, r) => n + envelopeRecordBytes(r.signingBytes.length), 0));
        const decoded = decodeEnvelopesItem(payload);
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        const sorted = [...records].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
        expect(decoded.value.map((r) => [r.publicKey, r.signingBytes, r.signature])).toEqual(sorted.map((r) => [r.publicKey, r.signingBytes, r.signature]));
        expect(decoded.value.map((r) => `${toHex(r.fields.deviceId)}:${r.fields.seq}`)).toEqual(sorted.map((r) => `${r.device}:${r.seq}`));
      }),
    );
  });

  it("writes into a caller's buffer when it has room (a view of it), else into a new one; the same bytes either way", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(recordArb, { selector: (r) => `${r.device}:${r.seq}`, minLength: 1, maxLength: 10 }),
        fc.integer({ min: 0, max: 64 }),
        (records, spare) => {
          const fresh = encodeEnvelopesItem(records);
          const roomy = new Uint8Array(fresh.length + spare).fill(0xee);
          const into = encodeEnvelopesItem(records, roomy);
          expect(into).toEqual(fresh);
          expect(into.buffer).toBe(roomy.buffer);
          expect(roomy.subarray(fresh.length).every((b) => b === 0xee)).toBe(true); // nothing past its end
          const small = new Uint8Array(fresh.length - 1);
          const other = encodeEnvelopesItem(records, small);
          expect(other).toEqual(fresh);
          expect(other.buffer).not.toBe(small.buffer);
        },
      ),
    );
  });

  it("refuses a repeated (device, seq) when encoding, and an out-of-order or repeated one when decoding", () => {
    fc.assert(
      fc.property(recordArb, recordArb, (a, b) => {
        fc.pre(a.device !== b.device || a.seq !== b.seq);
        expect(() => encodeEnvelopesItem([a, { ...a, signature: b.signature }])).toThrow(/twice/);
        const [first, second] = a.device < b.device || (a.device === b.device && a.seq < b.seq) ? [a, b] : [b, a];
        const raw = (rs: (typeof a)[]) => {
          const w = new Writer(ITEM_HEADER_BYTES + rs.reduce((n, r) => n + envelopeRecordBytes(r.signingBytes.length), 0)).u8(0).u32(rs.length);
          for (const r of rs) w.bytes(r.publicKey).u32(r.signingBytes.length).bytes(r.signingBytes).bytes(r.signature);
          return w.finish();
        };
        expect(decodeEnvelopesItem(raw([first, second])).ok).toBe(true);
        expect(decodeEnvelopesItem(raw([second, first]))).toMatchObject({ ok: false, error: expect.stringMatching(/out of \(device, seq\) order/) });
        expect(decodeEnvelopesItem(raw([first, first]))).toMatchObject({ ok: false, error: expect.stringMatching(/repeat/) });
      }),
    );
  });

  it("never throws on garbage or on a damaged item", () => {
    const valid = encodeEnvelopesItem(fc.sample(recordArb, 5).filter((r, i, all) => all.findIndex((o) => o.device === r.device && o.seq === r.seq) === i));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(), (garbage, at, value) => {
        expect(() => decodeEnvelopesItem(Uint8Array.from([0, ...garbage]))).not.toThrow();
        const damaged = valid.slice();
        damaged[at % damaged.length] = value & 0xff;
        expect(() => decodeEnvelopesItem(damaged)).not.toThrow();
        expect(() => decodeEnvelopesItem(damaged.subarray(0, at % damaged.length))).not.toThrow();
      }),
    );
  });

  it("bounds: the record count and the payload size", () => {
    expect(ITEM_PAYLOAD_BYTES_MAX).toBeLessThan(W_B);
    const header = new Writer(5)
      .u8(0)
      .u32(ENVELOPES_PER_ITEM_MAX + 1)
      .finish();
    expect(decodeEnvelopesItem(header)).toMatchObject({ ok: false, error: expect.stringMatching(/ENVELOPES_PER_ITEM_MAX/) });
    expect(decodeEnvelopesItem(new Uint8Array(ITEM_PAYLOAD_BYTES_MAX + 1))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/ITEM_PAYLOAD_BYTES_MAX/),
    });
  });
});

describe("registrations item", () => {
  it("round-trips in the order given", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
            kind: fc.constantFrom("meter", "inverter", "router", "client", "agent" as const),
          }),
          { maxLength: 30 },
        ),
        (records) => {
          const payload = encodeRegistrationsItem(records);
          expect(payload.length).toBe(5 + 33 * records.length);
          const decoded = decodeRegistrationsItem(payload);
          expect(decoded).toEqual({
            ok: true,
            value: records.map((r) => ({ publicKey: r.publicKey, kind: ["meter", "inverter", "router", "client", "agent"].indexOf(r.kind) })),
          });
        },
      ),
    );
  });

  it("refuses unknown kinds and wrong lengths; never throws", () => {
    const payload = encodeRegistrationsItem([{ publicKey: keys[0]!, kind: "agent" }]);
    expect(decodeRegistrationsItem(Uint8Array.from([...payload.subarray(0, 37), 5]))).toMatchObject({ ok: false });
    expect(decodeRegistrationsItem(payload.subarray(0, 36))).toMatchObject({ ok: false });
    expect(() => encodeRegistrationsItem([{ publicKey: keys[0]!, kind: 9 as never }])).toThrow();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => void decodeRegistrationsItem(Uint8Array.from([1, ...garbage]))));
  });
});
