import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "./cbor.ts";
import { generateDeviceKey } from "./keys.ts";
import {
  DETAIL_CHARS_MAX,
  DOWN_MESSAGE_BYTES_MAX,
  DOWN_WILDCARD,
  decodeDeviceError,
  decodeReceipts,
  downTopic,
  encodeDeviceError,
  encodeReceipt,
  encodeReceipts,
  parseDownTopic,
  RECEIPT_SEQS_MAX,
  parseUpTopic,
  upTopic,
} from "./messages.ts";

const id = generateDeviceKey().deviceId;
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe("receipts and errors", () => {
  it("round-trip", () => {
    fc.assert(
      fc.property(fc.record({ seq: fc.maxSafeNat(), packageHash: hash, blockHash: hash, slot: fc.nat({ max: 2 ** 32 - 1 }) }), (r) => {
        expect(decodeReceipts(encodeReceipt(r))).toEqual([r]);
        expect(decodeDeviceError(encodeReceipt(r))).toBeNull();
      }),
    );
    const seqs = fc.uniqueArray(fc.maxSafeNat(), { minLength: 1, maxLength: RECEIPT_SEQS_MAX }).map((xs) => xs.sort((a, b) => a - b));
    fc.assert(
      fc.property(fc.record({ seqs, packageHash: hash, blockHash: hash, slot: fc.nat({ max: 2 ** 32 - 1 }) }), (b) => {
        const bytes = encodeReceipts(b);
        expect(bytes.length).toBeLessThanOrEqual(DOWN_MESSAGE_BYTES_MAX);
        expect(decodeReceipts(bytes)).toEqual(b.seqs.map((seq) => ({ seq, packageHash: b.packageHash, blockHash: b.blockHash, slot: b.slot })));
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.option(fc.maxSafeNat(), { nil: null }),
          code: fc.constantFrom("JG_ERR_ENVELOPE_REPLAY", "JG_ERR_ENVELOPE_SIGNATURE"),
          detail: fc.string({ maxLength: DETAIL_CHARS_MAX }),
        }),
        (e) => {
          expect(decodeDeviceError(encodeDeviceError(e))).toEqual(e);
          expect(decodeReceipts(encodeDeviceError(e))).toBeNull();
        },
      ),
    );
  });

  it("cut a long detail and refuse a code that is not one", () => {
    const decoded = decodeDeviceError(encodeDeviceError({ seq: 1, code: "JG_ERR_ENVELOPE_SEQ", detail: "x".repeat(5000) }));
    expect(decoded?.detail).toHaveLength(DETAIL_CHARS_MAX);
    expect(() => encodeDeviceError({ seq: 1, code: "oops", detail: "" })).toThrow();
  });

  it("decoders never throw and return null for anything else", () => {
    const near = fc.record(
      { s: fc.anything(), p: fc.oneof(hash, fc.anything()), h: hash, t: fc.anything(), c: fc.string(), m: fc.anything() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.anything().map(encodeCbor), near.map(encodeCbor)), (bytes) => {
        const r = decodeReceipts(bytes);
        const e = decodeDeviceError(bytes);
        if (r !== null) for (const x of r) expect(x.packageHash).toHaveLength(32);
        if (e !== null) expect(e.code).toMatch(/^JG_ERR_/);
      }),
      { numRuns: 1000 },
    );
    const z = new Uint8Array(32);
    expect(decodeReceipts(encodeCbor({ s: 1, p: z, h: z, t: 2 ** 32 }))).toBeNull();
    expect(decodeReceipts(encodeCbor({ s: -1, p: z, h: z, t: 1 }))).toBeNull();
    expect(decodeReceipts(encodeCbor({ s: 1, p: z, h: z, t: 1, x: 0 }))).toBeNull();
    // Seq lists: empty, out of order, repeated, too long, or holding a non-seq.
    for (const s of [[], [2, 1], [1, 1], Array.from({ length: RECEIPT_SEQS_MAX + 1 }, (_, i) => i), [1, -2], [1, 1.5], [1, "2"]]) {
      expect(decodeReceipts(encodeCbor({ s, p: z, h: z, t: 1 }))).toBeNull();
    }
    expect(() => encodeReceipts({ seqs: [], packageHash: z, blockHash: z, slot: 1 })).toThrow();
    expect(() => encodeReceipts({ seqs: [3, 2], packageHash: z, blockHash: z, slot: 1 })).toThrow();
    // The single-seq form, as gateways sent it before receipts were batched.
    expect(decodeReceipts(encodeCbor({ s: 7, p: z, h: z, t: 1 }))).toEqual([{ seq: 7, packageHash: z, blockHash: z, slot: 1 }]);
  });
});

describe("topics", () => {
  it("are built and parsed back", () => {
    expect(upTopic(id, "meter.reading")).toBe(`devices/${id}/up/meter.reading`);
    expect(parseUpTopic(upTopic(id, "meter.reading"))).toEqual({ deviceId: id, kind: "meter.reading" });
    expect(parseUpTopic(`devices/${id}/up/some.future.kind`)).toEqual({ deviceId: id, kind: "some.future.kind" });
    expect(downTopic(id, "receipts")).toBe(`devices/${id}/down/receipts`);
    expect(parseDownTopic(downTopic(id, "errors"))).toEqual({ deviceId: id, channel: "errors" });
    expect(DOWN_WILDCARD(id)).toBe(`devices/${id}/down/#`);
  });

  it("parseUpTopic refuses anything but a device's own up topic", () => {
    for (const topic of [
      `devices/${id}/up`,
      `devices/${id}/up/meter.reading/x`,
      `devices/${id}/down/receipts`,
      `devices/${id.toUpperCase()}/up/meter.reading`,
      `devices/+/up/meter.reading`,
      `devices/${id}/up/#`,
      `devices/${id}/up/Meter`,
      `devices/${id}/up/`,
      `/devices/${id}/up/meter.reading`,
      `things/${id}/up/meter.reading`,
      `devices/${id}/up/${"a".repeat(65)}`,
    ]) {
      expect(parseUpTopic(topic), topic).toBeNull();
    }
    fc.assert(fc.property(fc.string(), (s) => void parseUpTopic(s)));
  });
});
