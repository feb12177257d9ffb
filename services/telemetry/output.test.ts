import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareBytes, U64_MAX, Writer } from "../common/bytes.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import {
  decodeRefineOutput,
  type EnvelopesOutput,
  encodeRefineOutput,
  envelopesOutputBytes,
  REGISTRATION_KEYS_OUTPUT,
  type RegistrationKeysOutput,
  type RegistrationsOutput,
  toRuns,
} from "./output.ts";
import { ENVELOPES_PER_ITEM_MAX, ItemKind, type RawDeviceId } from "./payload.ts";

const idArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => b as RawDeviceId);
const seqArb = fc.oneof(fc.bigInt({ min: 0n, max: 40n }), fc.bigInt({ min: 0n, max: U64_MAX }));
const codeArb = fc.constantFrom(REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE, REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE);

/** Canonical envelopes outputs: what refine can produce. */
const envelopesOutputArb: fc.Arbitrary<EnvelopesOutput> = fc
  .record({
    commitment: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    devices: fc.uniqueArray(
      fc.record({
        deviceId: idArb,
        seqs: fc.uniqueArray(fc.record({ seq: seqArb, code: fc.option(codeArb, { freq: 3 }) }), { selector: (s) => s.seq, minLength: 1, maxLength: 12 }),
      }),
      { selector: (d) => d.deviceId.join(","), maxLength: 8 },
    ),
  })
  .map(({ commitment, devices }) => ({
    kind: ItemKind.envelopes,
    commitment,
    devices: devices
      .sort((a, b) => compareBytes(a.deviceId, b.deviceId))
      .map((d) => {
        const seqs = [...d.seqs].sort((a, b) => (a.seq < b.seq ? -1 : 1));
        return {
          deviceId: d.deviceId,
          accepted: toRuns(seqs.filter((s) => s.code === null).map((s) => s.seq)),
          rejected: seqs.filter((s) => s.code !== null).map((s) => ({ seq: s.seq, code: s.code! })),
        };
      }),
  }));

const registrationsOutputArb: fc.Arbitrary<RegistrationsOutput> = fc.record({
  kind: fc.constant(ItemKind.registrations),
  registrations: fc.array(
    fc.record({ deviceId: idArb, publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }), kind: fc.constantFrom(0, 1, 2, 3, 4 as const) }),
    { maxLength: 10 },
  ),
});

const registrationKeysOutputArb: fc.Arbitrary<RegistrationKeysOutput> = fc.record({
  kind: fc.constant(REGISTRATION_KEYS_OUTPUT),
  registrations: fc.array(fc.record({ publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }), kind: fc.constantFrom(0, 1, 2, 3, 4 as const) }), {
    maxLength: 10,
  }),
});

describe("refine output", () => {
  it("round-trips envelopes and registrations outputs (with ids, and keys)", () => {
    fc.assert(
      fc.property(fc.oneof(envelopesOutputArb, registrationsOutputArb, registrationKeysOutputArb), (output) => {
        const bytes = encodeRefineOutput(output);
        if (output.kind === ItemKind.envelopes) expect(bytes.length).toBe(envelopesOutputBytes(output));
        expect(decodeRefineOutput(bytes)).toEqual({ ok: true, value: output });
      }),
    );
  });

  it("costs 32 bytes per device that sent a run of seqs, however long (up to all an item holds)", () => {
    const output: EnvelopesOutput = {
      kind: 0,
      commitment: new Uint8Array(32),
      devices: [{ deviceId: new Uint8Array(16) as RawDeviceId, accepted: [{ start: 10n, length: ENVELOPES_PER_ITEM_MAX }], rejected: [] }],
    };
    expect(encodeRefineOutput(output).length).toBe(1 + 32 + 2 + 32);
  });

  it("decoding never throws: on garbage, on damaged outputs, on truncations", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (garbage) => {
        for (const kind of [0, 1, 2, 3]) expect(() => decodeRefineOutput(Uint8Array.from([kind, ...garbage]))).not.toThrow();
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(envelopesOutputArb, fc.nat(), fc.nat({ max: 255 }), (output, at, value) => {
        const bytes = encodeRefineOutput(output);
        const damaged = bytes.slice();
        damaged[at % bytes.length] = value;
        const decoded = decodeRefineOutput(damaged);
        if (decoded.ok) expect(encodeRefineOutput(decoded.value)).toEqual(damaged); // whatever decodes is canonical
        expect(decodeRefineOutput(bytes.subarray(0, at % bytes.length)).ok).toBe(false);
      }),
    );
  });

  it("refuses non-canonical outputs: unsorted devices, touching runs, overlaps, foreign codes", () => {
    const id = (n: number) => new Uint8Array(16).fill(n);
    const device = (w: Writer, n: number, runs: [bigint, number][], rejected: [bigint, number][]) => {
      w.bytes(id(n)).u16(runs.length);
      for (const [s, l] of runs) w.u64(s).u32(l);
      w.u16(rejected.length);
      for (const [s, c] of rejected) w.u64(s).u8(c);
    };
    const out = (devices: [number, [bigint, number][], [bigint, number][]][]) => {
      const size = 35 + devices.reduce((n, [, r, x]) => n + 20 + 12 * r.length + 9 * x.length, 0);
      const w = new Writer(size).u8(0).bytes(new Uint8Array(32)).u16(devices.length);
      for (const [n, r, x] of devices) device(w, n, r, x);
      return decodeRefineOutput(w.finish());
    };
    expect(
      out([
        [1, [[0n, 2]], [[5n, 1]]],
        [2, [[0n, 1]], []],
      ]).ok,
    ).toBe(true);
    expect(
      out([
        [2, [[0n, 1]], []],
        [1, [[0n, 1]], []],
      ]).ok,
    ).toBe(false); // devices out of order
    expect(
      out([
        [1, [[0n, 1]], []],
        [1, [[3n, 1]], []],
      ]).ok,
    ).toBe(false); // a device twice
    expect(
      out([
        [
          1,
          [
            [0n, 2],
            [2n, 1],
          ],
          [],
        ],
      ]).ok,
    ).toBe(false); // runs touch: not merged
    expect(out([[1, [[0n, 0]], []]]).ok).toBe(false); // empty run
    expect(out([[1, [[U64_MAX, 2]], []]]).ok).toBe(false); // past 2^64
    expect(out([[1, [[0n, 3]], [[1n, 1]]]]).ok).toBe(false); // seq accepted and rejected
    expect(out([[1, [], [[1n, REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY]]]]).ok).toBe(false); // not a refine code
    expect(out([[1, [], []]]).ok).toBe(false); // a device with nothing
  });
});
