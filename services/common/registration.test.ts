import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hash } from "../../node/crypto/hash.ts";
import { d } from "./codec.ts";
import { ItemKind } from "./envelope.ts";
import { decodeRegistrations, deviceIdOfKey, encodeRegistrations, registrationsItemCodec } from "./registration.ts";

const record = d.object({ publicKey: d.bytes(32), kind: d.oneOf([0, 1, 2]) });
const item = registrationsItemCodec(record, 3);
const recordArb = fc.record({ publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }), kind: fc.constantFrom(0 as const, 1 as const, 2 as const) });

describe("the registrations item", () => {
  it("is u8 1 ⌢ u32 count ⌢ count × record, and round-trips in the order given", () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 3 }), (records) => {
        const payload = encodeRegistrations(item, records);
        expect(payload[0]).toBe(ItemKind.registrations);
        expect(Buffer.from(payload.subarray(1, 5)).readUInt32LE()).toBe(records.length);
        expect(payload.length).toBe(5 + 33 * records.length);
        expect(decodeRegistrations(item, payload)).toEqual({ ok: true, value: records });
      }),
    );
  });

  it("refuses another item kind, more records than the max, bad records and trailing bytes; never throws on garbage", () => {
    const payload = encodeRegistrations(item, [{ publicKey: new Uint8Array(32), kind: 1 }]);
    expect(decodeRegistrations(item, Uint8Array.from([0, ...payload.subarray(1)])).ok).toBe(false);
    expect(decodeRegistrations(item, Uint8Array.from([...payload.subarray(0, 37), 7])).ok).toBe(false);
    expect(decodeRegistrations(item, Uint8Array.from([...payload, 0])).ok).toBe(false);
    const four = Uint8Array.from([1, 4, 0, 0, 0, ...new Uint8Array(4 * 33)]);
    expect(decodeRegistrations(item, four)).toMatchObject({ ok: false, error: expect.stringMatching(/REGISTRATIONS_PER_ITEM_MAX = 3/) });
    expect(() =>
      encodeRegistrations(
        item,
        [1, 2, 3, 4].map(() => ({ publicKey: new Uint8Array(32), kind: 0 as const })),
      ),
    ).toThrow();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => void decodeRegistrations(item, Uint8Array.from([1, ...garbage]))));
  });

  it("names a device by its key: the first 16 bytes of H(public key)", () => {
    const key = new Uint8Array(32).fill(9);
    expect(Buffer.compare(deviceIdOfKey({ hash }, key), hash(key).subarray(0, 16))).toBe(0);
  });
});
