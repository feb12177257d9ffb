import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RawDeviceId } from "../common/envelope.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import { decodeRefineOutput, encodeRefineOutput, type EnvelopesOutput, ORDER_LINES_MAX, type RefineOutput } from "./output.ts";
import { decodeRegistrationsItem, encodeRegistrationsItem } from "./payload.ts";

const id = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => b as RawDeviceId);
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const reading = fc.record({ t: u64, importWh: u64, exportWh: u64 });

const envelopesOutput: fc.Arbitrary<EnvelopesOutput> = fc.record({
  kind: fc.constant(0 as const),
  marketStartMs: u64,
  intervalMs: fc.integer({ min: 1, max: 0xffff_ffff }),
  commitment: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  devices: fc
    .uniqueArray(
      fc.record({
        deviceId: id,
        accepted: fc.array(fc.record({ start: fc.bigInt({ min: 0n, max: 1n << 40n }), length: fc.integer({ min: 1, max: 1000 }) }), { maxLength: 3 }),
        rejected: fc.array(fc.record({ seq: u64, code: fc.constantFrom(...Object.values(REJECTION_CODES)) }), { maxLength: 3 }),
        meter: fc.option(
          fc.record({
            firstIsReset: fc.boolean(),
            first: reading,
            last: reading,
            intervals: fc.array(fc.record({ interval: u32, importWh: u32, exportWh: u32 }), { maxLength: 4 }),
          }),
          { nil: null },
        ),
        orders: fc.array(
          fc.record({
            seq: u64,
            interval: u32,
            lines: fc.array(fc.record({ side: fc.constantFrom(0 as const, 1 as const), energyWh: u32, priceMicrosPerKwh: u32 }), {
              maxLength: ORDER_LINES_MAX,
            }),
          }),
          { maxLength: 2 },
        ),
      }),
      { selector: (d) => Buffer.from(d.deviceId).toString("hex"), maxLength: 4 },
    )
    .map((devices) => [...devices].sort((a, b) => Buffer.compare(a.deviceId, b.deviceId))),
});

describe("energy-trading refine output and items", () => {
  it("round-trips refine outputs, and never throws on garbage", () => {
    fc.assert(
      fc.property(envelopesOutput, (output) => {
        const decoded = decodeRefineOutput(encodeRefineOutput(output));
        expect(decoded).toEqual({ ok: true, value: output });
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const decoded = decodeRefineOutput(bytes);
        expect(typeof decoded.ok).toBe("boolean");
      }),
    );
  });

  it("round-trips registration outputs and items", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ deviceId: id, publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }), role: fc.constantFrom(0 as const, 1 as const), household: id }),
          { maxLength: 5 },
        ),
        (registrations) => {
          const output: RefineOutput = { kind: 1, registrations };
          expect(decodeRefineOutput(encodeRefineOutput(output))).toEqual({ ok: true, value: output });
          const item = encodeRegistrationsItem(registrations.map((r) => ({ publicKey: r.publicKey, role: r.role, household: r.household })));
          const back = decodeRegistrationsItem(item);
          expect(back.ok && back.value.map((r) => [r.role, Buffer.from(r.household).toString("hex")])).toEqual(
            registrations.map((r) => [r.role, r.role === 0 ? "00".repeat(16) : Buffer.from(r.household).toString("hex")]), // a meter is its own household
          );
        },
      ),
    );
  });

  it("refuses an agent registration without its household (a caller bug)", () => {
    expect(() => encodeRegistrationsItem([{ publicKey: new Uint8Array(32), role: "agent" }])).toThrow(/household/);
  });
});
