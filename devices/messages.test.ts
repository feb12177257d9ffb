import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "./cbor.ts";
import { generateDeviceKey } from "./keys.ts";
import { DETAIL_CHARS_MAX, DOWN_WILDCARD, decodeDeviceError, decodeReceipt, downTopic, encodeDeviceError, encodeReceipt, parseDownTopic, parseUpTopic, upTopic } from "./messages.ts";

const id = generateDeviceKey().deviceId;
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe("receipts and errors", () => {
  it("round-trip", () => {
    fc.assert(
      fc.property(fc.record({ seq: fc.maxSafeNat(), packageHash: hash, blockHash: hash, slot: fc.nat({ max: 2 ** 32 - 1 }) }), (r) => {
        expect(decodeReceipt(encodeReceipt(r))).toEqual(r);
        expect(decodeDeviceError(encodeReceipt(r))).toBeNull();
      }),
    );
    fc.assert(
      fc.property(fc.record({ seq: fc.option(fc.maxSafeNat(), { nil: null }), code: fc.constantFrom("JG_ERR_ENVELOPE_REPLAY", "JG_ERR_ENVELOPE_SIGNATURE"), detail: fc.string({ maxLength: DETAIL_CHARS_MAX }) }), (e) => {
        expect(decodeDeviceError(encodeDeviceError(e))).toEqual(e);
        expect(decodeReceipt(encodeDeviceError(e))).toBeNull();
      }),
    );
  });

  it("cut a long detail and refuse a code that is not one", () => {
    const decoded = decodeDeviceError(encodeDeviceError({ seq: 1, code: "JG_ERR_ENVELOPE_SEQ", detail: "x".repeat(5000) }));
    expect(decoded?.detail).toHaveLength(DETAIL_CHARS_MAX);
    expect(() => encodeDeviceError({ seq: 1, code: "oops", detail: "" })).toThrow();
  });

  it("decoders never throw and return null for anything else", () => {
    const near = fc.record({ s: fc.anything(), p: fc.oneof(hash, fc.anything()), h: hash, t: fc.anything(), c: fc.string(), m: fc.anything() }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.anything().map(encodeCbor), near.map(encodeCbor)), (bytes) => {
        const r = decodeReceipt(bytes);
        const e = decodeDeviceError(bytes);
        if (r !== null) expect(r.packageHash).toHaveLength(32);
        if (e !== null) expect(e.code).toMatch(/^JG_ERR_/);
      }),
      { numRuns: 1000 },
    );
    expect(decodeReceipt(encodeCbor({ s: 1, p: new Uint8Array(32), h: new Uint8Array(32), t: 2 ** 32 }))).toBeNull();
    expect(decodeReceipt(encodeCbor({ s: -1, p: new Uint8Array(32), h: new Uint8Array(32), t: 1 }))).toBeNull();
    expect(decodeReceipt(encodeCbor({ s: 1, p: new Uint8Array(32), h: new Uint8Array(32), t: 1, x: 0 }))).toBeNull();
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
