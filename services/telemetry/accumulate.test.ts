import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deviceIdOf, signingBytes } from "../../devices/envelope.ts";
import { type Ed25519KeyPair, keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { accumulate, accumulateGasLimit } from "./accumulate.ts";
import { fromLowerHex, toHex, U64_MAX } from "../common/bytes.ts";
import { REJECTION_CODES, type RejectionCode, rejectionName } from "../common/errors.ts";
import { OUTCOMES_KEPT_MAX, OutcomeFifo } from "../common/outcome.ts";
import { encodeRefineOutput, type EnvelopesOutput, REGISTRATION_KEYS_OUTPUT, toRuns } from "./output.ts";
import { encodeEnvelopesItem, encodeRegistrationsItem, type EnvelopeRecord, type RawDeviceId, REGISTRATIONS_PER_ITEM_MAX } from "./payload.ts";
import { refine } from "./refine.ts";
import { decodeDeviceRecord, decodeStats, deviceKey, STATS_KEY } from "./storage.ts";
import { decodeOutcome, envelopeRejection, outcomeKey, type PackageOutcome } from "../common/outcome.ts";
import { MemoryStorage, memoryRefineContext, resultItem } from "../common/testing.ts";

const crypto = { hash, verifyEd25519 };

function packageHash(n: number): Uint8Array {
  return hash(Uint8Array.of(0xbe, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff));
}

function rawId(n: number): RawDeviceId {
  return new Uint8Array(16).fill(n) as RawDeviceId;
}

/** A refine output for registrations of these ids (keys need not match ids: accumulate trusts refine). */
function registrations(...ids: number[]): Uint8Array {
  return encodeRefineOutput({ kind: 1, registrations: ids.map((n) => ({ deviceId: rawId(n), publicKey: new Uint8Array(32).fill(n), kind: 0 })) });
}

/** A refine output in which these devices' seqs all verified. */
function envelopes(devices: Record<number, readonly (number | bigint)[]>, rejected: Record<number, [bigint, RejectionCode][]> = {}): Uint8Array {
  const ids = [...new Set([...Object.keys(devices), ...Object.keys(rejected)].map(Number))].sort((a, b) => a - b);
  const output: EnvelopesOutput = {
    kind: 0,
    commitment: new Uint8Array(32).fill(7),
    devices: ids.map((n) => ({
      deviceId: rawId(n),
      accepted: toRuns((devices[n] ?? []).map(BigInt)),
      rejected: (rejected[n] ?? []).map(([seq, code]) => ({ seq, code })),
    })),
  };
  return encodeRefineOutput(output);
}

function run(storage: MemoryStorage, slot: number, packages: { hash: Uint8Array; outputs: Uint8Array[] }[]) {
  return storage.accumulate(
    accumulate,
    packages.flatMap((p) => p.outputs.map((o) => resultItem(p.hash, o))),
    { slot, hash },
  );
}

function outcomeOf(storage: MemoryStorage, h: Uint8Array): PackageOutcome {
  const raw = storage.get(outcomeKey(h));
  if (raw === null) throw new Error("no outcome");
  const decoded = decodeOutcome(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

function deviceOf(storage: MemoryStorage, n: number | Uint8Array) {
  const raw = storage.get(deviceKey(typeof n === "number" ? rawId(n) : n));
  if (raw === null) return null;
  const decoded = decodeDeviceRecord(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

function statsOf(storage: MemoryStorage) {
  const decoded = decodeStats(storage.get(STATS_KEY)!);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

describe("accumulate: registry", () => {
  it("registers new devices once and refuses a second registration", () => {
    const storage = new MemoryStorage();
    run(storage, 5, [{ hash: packageHash(1), outputs: [registrations(1, 2, 1)] }]);
    expect(deviceOf(storage, 1)).toEqual({
      publicKey: new Uint8Array(32).fill(1),
      kind: 0,
      registeredSlot: 5,
      window: { highestSeq: null, bitmap: 0n },
      envelopesSettled: 0n,
      lastSettledSlot: null,
    });
    expect(outcomeOf(storage, packageHash(1))).toMatchObject({
      slot: 5,
      registrationsSettled: 2,
      rejectedRegistrations: [{ deviceId: rawId(1), code: REJECTION_CODES.JG_ERR_DEVICE_EXISTS }],
    });
    run(storage, 6, [{ hash: packageHash(2), outputs: [registrations(2)] }]);
    expect(outcomeOf(storage, packageHash(2)).rejectedRegistrations).toEqual([{ deviceId: rawId(2), code: REJECTION_CODES.JG_ERR_DEVICE_EXISTS }]);
    expect(deviceOf(storage, 2)!.registeredSlot).toBe(5);
    expect(statsOf(storage).devicesRegistered).toBe(2n);
  });

  it("registers from a keys output (what refine makes now) under the id of each key, and refuses a key already registered", () => {
    const storage = new MemoryStorage();
    const keys = [1, 2].map((n) => keyPairFromSeed(hash(Uint8Array.of(0x4b, n))).publicKey);
    const keysOutput = (...ks: Uint8Array[]) =>
      encodeRefineOutput({ kind: REGISTRATION_KEYS_OUTPUT, registrations: ks.map((publicKey) => ({ publicKey, kind: 2 })) });
    run(storage, 3, [{ hash: packageHash(1), outputs: [keysOutput(keys[0]!, keys[1]!, keys[0]!)] }]);
    const id = (k: Uint8Array) => fromLowerHex(deviceIdOf(k))!;
    for (const k of keys) expect(deviceOf(storage, id(k))).toMatchObject({ publicKey: k, kind: 2, registeredSlot: 3 });
    expect(outcomeOf(storage, packageHash(1))).toMatchObject({
      registrationsSettled: 2,
      rejectedRegistrations: [{ deviceId: id(keys[0]!), code: REJECTION_CODES.JG_ERR_DEVICE_EXISTS }],
    });
    // A key registered from an output with ids (a report refined before the keys output) is taken too.
    run(storage, 4, [{ hash: packageHash(2), outputs: [keysOutput(keys[1]!), registrations(9)] }]);
    expect(outcomeOf(storage, packageHash(2))).toMatchObject({
      registrationsSettled: 1,
      rejectedRegistrations: [{ deviceId: id(keys[1]!), code: REJECTION_CODES.JG_ERR_DEVICE_EXISTS }],
    });
    expect(deviceOf(storage, 9)).toMatchObject({ registeredSlot: 4 });
    expect(statsOf(storage).devicesRegistered).toBe(3n);
  });

  it("refuses every envelope of an unregistered device, as one run", () => {
    const storage = new MemoryStorage();
    run(storage, 1, [{ hash: packageHash(1), outputs: [registrations(1), envelopes({ 1: [0, 1], 9: [4, 5, 6, 10] })] }]);
    const outcome = outcomeOf(storage, packageHash(1));
    expect(outcome.envelopesSettled).toBe(2);
    expect(outcome.rejectedEnvelopes).toEqual([
      { deviceId: rawId(9), start: 4n, length: 3, code: REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED },
      { deviceId: rawId(9), start: 10n, length: 1, code: REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED },
    ]);
    expect(deviceOf(storage, 9)).toBeNull();
  });
});

describe("accumulate: exactly once", () => {
  it("settles a seq once; a replayed package is refused whole; totals count each once", () => {
    const storage = new MemoryStorage();
    run(storage, 1, [{ hash: packageHash(0), outputs: [registrations(1)] }]);
    run(storage, 2, [{ hash: packageHash(1), outputs: [envelopes({ 1: [0, 1, 2] })] }]);
    run(storage, 3, [{ hash: packageHash(2), outputs: [envelopes({ 1: [0, 1, 2] })] }]);
    expect(outcomeOf(storage, packageHash(1))).toMatchObject({ envelopesSettled: 3, rejectedEnvelopes: [] });
    expect(outcomeOf(storage, packageHash(2))).toMatchObject({
      envelopesSettled: 0,
      rejectedEnvelopes: [{ deviceId: rawId(1), start: 0n, length: 3, code: REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY }],
    });
    expect(deviceOf(storage, 1)).toMatchObject({ envelopesSettled: 3n, lastSettledSlot: 2, window: { highestSeq: 2n, bitmap: 0b11n } });
    expect(statsOf(storage)).toEqual({ devicesRegistered: 1n, envelopesSettled: 3n, envelopesRejected: 3n });
  });

  it("window edges through accumulate: highest − 64 and − 63 settle once, − 65 is a replay, huge jumps work", () => {
    const storage = new MemoryStorage();
    run(storage, 1, [{ hash: packageHash(0), outputs: [registrations(1)] }]);
    run(storage, 2, [{ hash: packageHash(1), outputs: [envelopes({ 1: [100] })] }]);
    run(storage, 3, [{ hash: packageHash(2), outputs: [envelopes({ 1: [35, 36, 37] })] }]);
    expect(outcomeOf(storage, packageHash(2))).toMatchObject({
      envelopesSettled: 2,
      rejectedEnvelopes: [{ start: 35n, length: 1, code: REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY }],
    });
    run(storage, 4, [{ hash: packageHash(3), outputs: [envelopes({ 1: [36, 37, 38, U64_MAX - 1n] })] }]);
    expect(outcomeOf(storage, packageHash(3))).toMatchObject({ envelopesSettled: 2, rejectedEnvelopes: [{ start: 36n, length: 2 }] });
    expect(deviceOf(storage, 1)).toMatchObject({ envelopesSettled: 5n, window: { highestSeq: U64_MAX - 1n, bitmap: 0n } });
    run(storage, 5, [{ hash: packageHash(4), outputs: [envelopes({ 1: [U64_MAX - 2n, U64_MAX - 1n, U64_MAX] })] }]);
    expect(outcomeOf(storage, packageHash(4))).toMatchObject({ envelopesSettled: 2, rejectedEnvelopes: [{ start: U64_MAX - 1n, length: 1 }] });
  });

  it("records refine's refusals, and a pair settled by one item of a package is not refused by another", () => {
    const storage = new MemoryStorage();
    run(storage, 1, [{ hash: packageHash(0), outputs: [registrations(1)] }]);
    run(storage, 2, [
      { hash: packageHash(1), outputs: [envelopes({ 1: [1, 2] }, { 1: [[3n, REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE]] }), envelopes({ 1: [2, 3] })] },
    ]);
    const outcome = outcomeOf(storage, packageHash(1));
    expect(outcome).toMatchObject({ envelopesSettled: 3, rejectedEnvelopes: [] }); // 3 forged in item 1, settled by item 2
    expect(outcome.commitments).toHaveLength(2);
    run(storage, 3, [{ hash: packageHash(2), outputs: [envelopes({}, { 1: [[9n, REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE]] })] }]);
    expect(envelopeRejection(outcomeOf(storage, packageHash(2)), rawId(1), 9)).toBe("JG_ERR_ENVELOPE_DEVICE");
  });

  it("changes nothing when it meets an output its refine cannot have made", () => {
    const storage = new MemoryStorage();
    run(storage, 1, [{ hash: packageHash(0), outputs: [registrations(1)] }]);
    const before = new Map(storage.values);
    expect(() => run(storage, 2, [{ hash: packageHash(1), outputs: [envelopes({ 1: [1] }), Uint8Array.of(0, 1, 2)] }])).toThrow(/does not decode/);
    expect(storage.values).toEqual(before);
  });
});

describe("accumulate: outcomes", () => {
  it(`keeps the last ${OUTCOMES_KEPT_MAX} outcomes and deletes the oldest as it adds`, () => {
    const storage = new MemoryStorage();
    const extra = 5;
    for (let i = 0; i < OUTCOMES_KEPT_MAX + extra; i++) run(storage, i + 1, [{ hash: packageHash(i), outputs: [registrations()] }]);
    for (let i = 0; i < extra; i++) expect(storage.get(outcomeKey(packageHash(i)))).toBeNull();
    for (const i of [extra, extra + 1, OUTCOMES_KEPT_MAX + extra - 1]) expect(outcomeOf(storage, packageHash(i)).slot).toBe(i + 1);
    // outcomes, ring slots, the ring counter and stats: nothing else grows
    expect(storage.size).toBe(2 * OUTCOMES_KEPT_MAX + 2);
  });

  it("the FIFO evicts in order at any capacity, several packages per call", () => {
    const storage = new MemoryStorage();
    const capacity = 3;
    const fifoAccumulate: typeof accumulate = (items, host) => {
      const fifo = new OutcomeFifo(host, capacity);
      for (const item of items) if (item.kind === "result") fifo.push(item.packageHash, item.output);
      fifo.flush();
    };
    for (let call = 0; call < 4; call++) {
      storage.accumulate(
        fifoAccumulate,
        [0, 1].map((k) => resultItem(packageHash(2 * call + k), Uint8Array.of(2 * call + k))),
        { slot: call, hash },
      );
    }
    const kept = [...Array(8).keys()].filter((i) => storage.get(outcomeKey(packageHash(i))) !== null);
    expect(kept).toEqual([5, 6, 7]);
  });
});

describe("accumulate: gas", () => {
  it("stays within accumulateGasLimit for the largest items, settling or refusing", () => {
    const storage = new MemoryStorage();
    const ids = [...Array(1_000).keys()].map((i) => i + 1);
    const regs = encodeRefineOutput({
      kind: 1,
      registrations: ids.slice(0, 500).map((i) => ({ deviceId: wideId(i), publicKey: new Uint8Array(32), kind: 1 })),
    });
    const regsGas = run(storage, 1, [{ hash: packageHash(1), outputs: [regs] }]).gasUsed;
    expect(regsGas).toBeLessThanOrEqual(accumulateGasLimit({ registrations: 500 }));
    // A full item of keys (REGISTRATIONS_PER_ITEM_MAX), all new, then all again (each refused), within its limit and G_A.
    const full = encodeRefineOutput({
      kind: REGISTRATION_KEYS_OUTPUT,
      registrations: [...Array(REGISTRATIONS_PER_ITEM_MAX).keys()].map((i) => ({ publicKey: hash(Uint8Array.of(0x6b, i & 0xff, i >> 8)), kind: 0 })),
    });
    const keysLimit = accumulateGasLimit({ registrations: REGISTRATIONS_PER_ITEM_MAX });
    for (const [n, slot] of [
      [10, 10],
      [11, 11],
    ] as const)
      expect(run(storage, slot, [{ hash: packageHash(n), outputs: [full] }]).gasUsed).toBeLessThanOrEqual(keysLimit);
    expect(outcomeOf(storage, packageHash(11)).rejectedRegistrations.length).toBe(REGISTRATIONS_PER_ITEM_MAX);
    expect(keysLimit).toBeLessThanOrEqual(10_000_000n); // G_A
    const seqs = [0n, 1n, 2n, 3n, 4n];
    const item = encodeRefineOutput({
      kind: 0,
      commitment: new Uint8Array(32),
      devices: ids.map((i) => ({ deviceId: wideId(i), accepted: toRuns(seqs), rejected: [] })),
    });
    const settle = run(storage, 2, [{ hash: packageHash(2), outputs: [item] }]).gasUsed;
    // seqs with gaps: the unregistered half refused seq by seq, the registered half replaying 0, 2, 4: one run per refusal
    const gappy = encodeRefineOutput({
      kind: 0,
      commitment: new Uint8Array(32),
      devices: ids.map((i) => ({ deviceId: wideId(i), accepted: toRuns([0n, 2n, 4n, 6n, 8n]), rejected: [] })),
    });
    const refuse = run(storage, 3, [{ hash: packageHash(3), outputs: [gappy] }]).gasUsed;
    const limit = accumulateGasLimit({ devices: 1_000, envelopes: 5_000 });
    console.log(`telemetry accumulate gas, 1,000 devices × 5 envelopes: settling ${settle}, refusing ${refuse}, limit ${limit}; 500 registrations: ${regsGas}`);
    expect(settle).toBeLessThanOrEqual(limit);
    expect(refuse).toBeLessThanOrEqual(limit);
    expect(limit).toBeLessThanOrEqual(10_000_000n); // G_A
  });
});

function wideId(i: number): RawDeviceId {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(0, i, false);
  return id as RawDeviceId;
}

// ---------------------------------------------------------------------------------------------
// Property: refine → accumulate settles each (device, seq) at most once, for any sequence of
// packages (reordered, repeated, overlapping), and agrees with a set-based model of the window.

const KEYS = [0, 1, 2, 3].map((n) => keyPairFromSeed(hash(Uint8Array.of(0x70, n))));
const IDS = KEYS.map((k) => deviceIdOf(k.publicKey));
/** Device 3 starts unregistered; a registration step registers it. */
const INITIALLY_REGISTERED = [0, 1, 2];
const signed = new Map<string, EnvelopeRecord>();

function record(device: number, seq: number, forged: boolean): EnvelopeRecord {
  const key = `${device}:${seq}`;
  let r = signed.get(key);
  if (r === undefined) {
    const k: Ed25519KeyPair = KEYS[device]!;
    const bytes = signingBytes({ version: 1, device: IDS[device]!, seq, kind: "meter.reading", timeMs: seq, body: Uint8Array.of(device, seq & 0xff) });
    r = { publicKey: k.publicKey, signingBytes: bytes, signature: signEd25519(k, bytes) };
    signed.set(key, r);
  }
  if (!forged) return r;
  const signature = r.signature.slice();
  signature[5]! ^= 0x40;
  return { ...r, signature };
}

const pairArb = fc.record({
  device: fc.nat({ max: 3 }),
  seq: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 90 }) }, { weight: 1, arbitrary: fc.constantFrom(150, 214, 215, 216, 1_000, 1_000_000) }),
  forged: fc.constant(false),
});
const forgedPairArb = fc.record({ device: fc.nat({ max: 3 }), seq: fc.nat({ max: 90 }), forged: fc.constant(true) });
const itemArb = fc.uniqueArray(fc.oneof({ weight: 9, arbitrary: pairArb }, { weight: 1, arbitrary: forgedPairArb }), {
  selector: (p) => `${p.device}:${p.seq}`,
  maxLength: 10,
});
type Step = { kind: "envelopes"; items: { device: number; seq: number; forged: boolean }[][] } | { kind: "register" } | { kind: "replay"; of: number };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.array(itemArb, { minLength: 1, maxLength: 3 }).map((items) => ({ kind: "envelopes" as const, items })) },
  { weight: 1, arbitrary: fc.constant({ kind: "register" as const }) },
  { weight: 3, arbitrary: fc.nat().map((of) => ({ kind: "replay" as const, of })) },
);

describe("accumulate: property", () => {
  it("settles each (device, seq) at most once whatever the order and repetition of packages", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat({ max: 2 }), { minLength: 12, maxLength: 12 }), (steps, callSizes) => {
        const storage = new MemoryStorage();
        const setup = encodeRegistrationsItem(INITIALLY_REGISTERED.map((d) => ({ publicKey: KEYS[d]!.publicKey, kind: "meter" as const })));
        run(storage, 1, [{ hash: packageHash(1_000_000), outputs: [refine(setup, memoryRefineContext(crypto))] }]);

        // The model: per device the settled set and the highest seq.
        const model = KEYS.map((_, d) => ({ registered: INITIALLY_REGISTERED.includes(d), settled: new Set<number>(), highest: null as number | null }));
        const settledCount = new Map<string, number>();
        const envelopeSteps: Extract<Step, { kind: "envelopes" }>[] = [];
        const packages: { hash: Uint8Array; outputs: Uint8Array[]; expect: Map<string, RejectionCode | null> }[] = [];

        for (const [n, step] of steps.entries()) {
          if (step.kind === "replay" && envelopeSteps.length === 0) continue;
          const concrete: Exclude<Step, { kind: "replay" }> = step.kind === "replay" ? envelopeSteps[step.of % envelopeSteps.length]! : step;
          if (concrete.kind === "register") {
            const payload = encodeRegistrationsItem([{ publicKey: KEYS[3]!.publicKey, kind: "client" }]);
            const expected = new Map<string, RejectionCode | null>([[`reg:3`, model[3]!.registered ? REJECTION_CODES.JG_ERR_DEVICE_EXISTS : null]]);
            model[3]!.registered = true;
            packages.push({ hash: packageHash(n), outputs: [refine(payload, memoryRefineContext(crypto))], expect: expected });
            continue;
          }
          if (step.kind === "envelopes") envelopeSteps.push(step);
          const expected = new Map<string, RejectionCode | null>();
          const settledHere = new Set<string>();
          const outputs = concrete.items.map((pairs) => {
            // The model, in the order accumulate applies an item: device id, then seq.
            const ordered = [...pairs].sort((a, b) => (IDS[a.device]! < IDS[b.device]! ? -1 : IDS[a.device]! > IDS[b.device]! ? 1 : a.seq - b.seq));
            for (const p of ordered) {
              const key = `${p.device}:${p.seq}`;
              const m = model[p.device]!;
              let code: RejectionCode | null = null;
              if (p.forged) code = REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE;
              else if (!m.registered) code = REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED;
              else if (m.settled.has(p.seq) || (m.highest !== null && p.seq < m.highest - 64)) code = REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY;
              if (code === null) {
                m.settled.add(p.seq);
                m.highest = m.highest === null ? p.seq : Math.max(m.highest, p.seq);
                settledHere.add(key);
                expected.set(key, null);
              } else if (!settledHere.has(key) && !expected.has(key)) {
                expected.set(key, code);
              }
            }
            return refine(encodeEnvelopesItem(pairs.map((p) => record(p.device, p.seq, p.forged))), memoryRefineContext(crypto));
          });
          packages.push({ hash: packageHash(n), outputs, expect: expected });
        }

        // Accumulate in calls of 1 to 3 packages, as blocks group reports.
        let slot = 2;
        for (let at = 0, c = 0; at < packages.length; c++) {
          const size = (callSizes[c % callSizes.length] ?? 0) + 1;
          run(storage, slot++, packages.slice(at, at + size));
          at += size;
        }

        for (const p of packages) {
          const outcome = outcomeOf(storage, p.hash);
          for (const [key, code] of p.expect) {
            if (key.startsWith("reg:")) {
              expect(outcome.rejectedRegistrations.map((r) => r.code)).toEqual(code === null ? [] : [code]);
              continue;
            }
            const [device, seq] = key.split(":").map(Number) as [number, number];
            const refused = envelopeRejection(outcome, IDS[device]!, seq);
            expect(refused, `package ${toHex(p.hash).slice(0, 8)} ${key}`).toBe(code === null ? null : rejectionName(code));
            if (refused === null) settledCount.set(key, (settledCount.get(key) ?? 0) + 1);
          }
        }
        for (const [key, count] of settledCount) expect(count, key).toBe(1); // never twice
        let total = 0n;
        for (const [d, m] of model.entries()) {
          const stored = deviceOf(storage, fromLowerHex(IDS[d]!)!);
          if (!m.registered) {
            expect(stored).toBeNull();
            continue;
          }
          expect(stored!.envelopesSettled).toBe(BigInt(m.settled.size));
          expect(stored!.window.highestSeq).toBe(m.highest === null ? null : BigInt(m.highest));
          total += BigInt(m.settled.size);
        }
        expect(statsOf(storage).envelopesSettled).toBe(total);
        expect([...settledCount.values()].length).toBe(Number(total));
      }),
      { numRuns: 120 },
    );
  });
});
