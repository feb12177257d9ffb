import { describe, expect, it } from "vitest";
import type { AccumulateItem } from "../../node/service-api/index.ts";
import { toHex } from "./bytes.ts";
import { decodedOrThrow, PackageOutcomes, refineItem, resultsOf } from "./dispatch.ts";
import { W_R } from "./envelope.ts";
import { REJECTION_CODES } from "./errors.ts";
import { decodeOutcome, OUTCOME_FIFO_KEY, outcomeKey } from "./outcome.ts";
import { fail, ok } from "./result.ts";
import { resultItem } from "./testing.ts";

const id = (n: number) => new Uint8Array(16).fill(n) as never;
const hashOf = (n: number) => new Uint8Array(32).fill(n);

/** A host over a map, as the outcome FIFO needs it. */
function mapHost(slot: number) {
  const values = new Map<string, Uint8Array>();
  return {
    values,
    slot,
    read: (key: Uint8Array) => values.get(toHex(key)) ?? null,
    write: (key: Uint8Array, value: Uint8Array | null) => void (value === null ? values.delete(toHex(key)) : values.set(toHex(key), value)),
  };
}

describe("refineItem", () => {
  const handlers = { 0: () => Uint8Array.of(0xa0), 1: (payload: Uint8Array) => payload.subarray(1), 2: () => new Uint8Array(W_R + 1) };

  it("runs the handler of the payload's first byte", () => {
    expect([...refineItem("svc", Uint8Array.of(0, 9), handlers, "too many")]).toEqual([0xa0]);
    expect([...refineItem("svc", Uint8Array.of(1, 7, 8), handlers, "too many")]).toEqual([7, 8]);
  });

  it("throws (a gateway bug, failing the item) on an unknown kind, an empty payload, or an output over W_R", () => {
    expect(() => refineItem("svc", Uint8Array.of(5), handlers, "too many")).toThrow("svc: unknown item kind 5");
    expect(() => refineItem("svc", new Uint8Array(0), handlers, "too many")).toThrow("svc: unknown item kind (empty payload)");
    expect(() => refineItem("svc", Uint8Array.of(2), handlers, "too many")).toThrow(`svc: refine output of ${W_R + 1} bytes > W_R = ${W_R}; too many`);
  });

  it("decodedOrThrow gives the value, or throws naming the service and the item", () => {
    expect(decodedOrThrow("svc", "envelopes item", ok(3))).toBe(3);
    expect(() => decodedOrThrow("svc", "envelopes item", fail("truncated"))).toThrow("svc: envelopes item: truncated");
  });
});

describe("resultsOf and PackageOutcomes", () => {
  const transfer: AccumulateItem = { kind: "transfer", source: 2, amount: 5n, memo: new Uint8Array(0), gasLimit: 1n };
  const decodeOutput = (bytes: Uint8Array) => (bytes[0] === 0xff ? fail("bad output") : ok(bytes[0]!));

  it("yields each work result decoded with its package's builder, skipping transfers; items of one package share a builder", () => {
    const packages = new PackageOutcomes();
    const items = [resultItem(hashOf(1), Uint8Array.of(10)), transfer, resultItem(hashOf(2), Uint8Array.of(20)), resultItem(hashOf(1), Uint8Array.of(11))];
    const seen = [...resultsOf("svc", items, decodeOutput, packages)];
    expect(seen.map((s) => s.output)).toEqual([10, 20, 11]);
    expect(seen[0]!.outcome).toBe(seen[2]!.outcome);
    expect(seen[0]!.outcome).not.toBe(seen[1]!.outcome);
    expect(packages.size).toBe(2);
  });

  it("throws on a result that does not decode (the service's own refine made it: a bug)", () => {
    const items = [resultItem(hashOf(1), Uint8Array.of(0xff))];
    expect(() => [...resultsOf("svc", items, decodeOutput, new PackageOutcomes())]).toThrow("svc: refine output does not decode: bad output");
  });

  it("stores each package's outcome at the host's slot, in the order first seen, and hands each to the caller's counter", () => {
    const packages = new PackageOutcomes();
    packages.of(hashOf(2)).settleEnvelope(id(1), 4n);
    packages.of(hashOf(1)).rejectRegistration(id(3), REJECTION_CODES.JG_ERR_DEVICE_EXISTS);
    packages.of(hashOf(2)).settleRegistration();
    const host = mapHost(77);
    const counted: number[] = [];
    packages.store(host, (outcome) => counted.push(outcome.envelopesSettled));
    expect(counted).toEqual([1, 0]); // package 2 was seen first
    const second = decodeOutcome(host.values.get(toHex(outcomeKey(hashOf(2))))!);
    expect(second).toMatchObject({ ok: true, value: { slot: 77, envelopesSettled: 1, registrationsSettled: 1 } });
    const first = decodeOutcome(host.values.get(toHex(outcomeKey(hashOf(1))))!);
    expect(first).toMatchObject({ ok: true, value: { rejectedRegistrations: [{ code: REJECTION_CODES.JG_ERR_DEVICE_EXISTS }] } });
    expect(host.values.has(toHex(OUTCOME_FIFO_KEY))).toBe(true);
  });

  it("writes nothing for a call without packages", () => {
    const host = mapHost(1);
    new PackageOutcomes().store(host);
    expect(host.values.size).toBe(0);
  });
});
