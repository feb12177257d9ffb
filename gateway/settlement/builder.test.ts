/**
 * The package builder on its own: a package's items are cut at device boundaries, as many as it
 * is allowed and its envelopes fill (envelopesPerItemMin each), and more where its devices exceed
 * an item's, every envelope once, each item's refine gas at least what it will be charged; a
 * package built later, through the same reused payload buffer, leaves an earlier package's bytes
 * as they were.
 */
import { createHash } from "node:crypto";
import { WorkPackage } from "@typeberry/lib/block";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DeviceId, signingBytes } from "../../devices/envelope.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { decode } from "../../node/codec/jam.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { decodeEnvelopesItem } from "../../services/telemetry/payload.ts";
import type { LogEntry } from "../log.ts";
import { telemetryService } from "../services/telemetry.ts";
import { envelopesRefineGas } from "../refine-gas.ts";
import { PackageBuilder, refineGasShares, splitAtDevices } from "./builder.ts";
import { settlementLimits } from "./limits.ts";

const SERVICE = 2;
const ANCHOR = { headerHash: new Uint8Array(32), stateRoot: new Uint8Array(32), slot: 0 };

const deviceIdOf = (d: number) => `${d.toString(16).padStart(4, "0")}${"0".repeat(28)}` as DeviceId;

/** `perDevice` envelopes from each of `devices` devices, seqs from `from`, in acceptance order (round by round). */
function entries(devices: number, perDevice: number, from = 0): LogEntry[] {
  return Array.from({ length: devices * perDevice }, (_, i) => {
    const deviceId = deviceIdOf(i % devices);
    const seq = from + Math.floor(i / devices);
    return {
      deviceId,
      seq,
      order: i,
      signingBytes: signingBytes({ version: 1, device: deviceId, seq, kind: "meter.reading", timeMs: 0, body: new Uint8Array(50).fill(seq) }),
      signature: new Uint8Array(64).fill(i % devices),
      serviceId: SERVICE,
      acceptedAtMs: 0,
      state: "pending",
      attempts: 0,
    };
  });
}

function builder(publicKeyOf: (deviceId: string) => Uint8Array | null = () => new Uint8Array(32)): PackageBuilder {
  return new PackageBuilder({
    params: tinyParams,
    signer: keyPairFromSeed(new Uint8Array(32).fill(1)),
    services: new Map([[SERVICE, telemetryService(SERVICE)]]),
    publicKeyOf,
  });
}

/** A built package's items, each as its "device/seq" list. */
function itemsOf(bytes: Uint8Array): string[][] {
  const p: WorkPackage = decode(WorkPackage.Codec, bytes, tinyParams.spec);
  return Array.from(p.items, (item) => {
    const records = decodeEnvelopesItem(item.payload.raw);
    if (!records.ok) throw new Error(records.error);
    return Array.from(records.value, (r) => `${Buffer.from(r.fields.deviceId).toString("hex")}/${r.fields.seq}`);
  });
}

const digest = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("PackageBuilder", () => {
  it("cuts a package into as many items as allowed at device boundaries, each envelope once, sorted by device", () => {
    const batch = entries(49, 50); // 2,450 envelopes: room for 2 items of at least 1,000; the middle falls inside a device
    const items = itemsOf(builder().build(SERVICE, batch, ANCHOR, 4).bytes);
    expect(items).toHaveLength(Math.floor(batch.length / settlementLimits.envelopesPerItemMin));
    const all = items.flat();
    const byDevice = [...batch].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.seq - b.seq));
    expect(all).toEqual(byDevice.map((e) => `${e.deviceId}/${e.seq}`));
    const deviceOf = (key: string) => key.split("/")[0];
    expect(deviceOf(items[0]!.at(-1)!)).not.toBe(deviceOf(items[1]![0]!));
    // One item when only one is allowed, or when two would hold fewer than envelopesPerItemMin each.
    expect(itemsOf(builder().build(SERVICE, batch, ANCHOR, 1).bytes)).toHaveLength(1);
    expect(itemsOf(builder().build(SERVICE, entries(50, 39), ANCHOR, 2).bytes)).toHaveLength(1);
  });

  it("reuses its payload buffer without touching a package built before", () => {
    const b = builder();
    const first = b.build(SERVICE, entries(50, 50), ANCHOR, 2);
    const firstDigest = digest(first.bytes);
    const second = b.build(SERVICE, entries(40, 60, 100), ANCHOR, 2);
    expect(digest(first.bytes)).toBe(firstDigest);
    expect(itemsOf(second.bytes).flat()).toHaveLength(40 * 60);
    // The same as a fresh builder makes: nothing of the first package is left in the second.
    expect(digest(second.bytes)).toBe(digest(builder().build(SERVICE, entries(40, 60, 100), ANCHOR, 2).bytes));
  });

  it("refuses a service it has no adapter for, and a device without a key", () => {
    expect(() => builder().build(SERVICE + 1, entries(1, 1), ANCHOR, 1)).toThrow(/no adapter for service 3/);
    expect(() => builder(() => null).build(SERVICE, entries(1, 1), ANCHOR, 1)).toThrow(/its device is unknown/);
  });
});

describe("splitAtDevices", () => {
  /** The cut as it is made with no bound on an item's devices: each place moved forward to where the next device begins. */
  function plainSplit<R extends { deviceId: string }>(records: readonly R[], parts: number): R[][] {
    const out: R[][] = [];
    let from = 0;
    for (let k = 1; k < parts; k++) {
      let cut = Math.max(from, Math.round((records.length * k) / parts));
      while (cut > 0 && cut < records.length && records[cut]!.deviceId === records[cut - 1]!.deviceId) cut++;
      if (cut <= from || cut >= records.length) continue;
      out.push(records.slice(from, cut));
      from = cut;
    }
    out.push(records.slice(from));
    return out;
  }

  const cases = fc.record({
    counts: fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 80 }),
    parts: fc.integer({ min: 0, max: 4 }),
    devicesMax: fc.integer({ min: 1, max: 40 }),
  });
  const recordsOf = (counts: number[]) =>
    counts.flatMap((n, d) => Array.from({ length: n }, (_, seq) => ({ deviceId: `d${String(d).padStart(3, "0")}`, seq })));
  const devicesIn = (part: readonly { deviceId: string }[]) => new Set(part.map((r) => r.deviceId)).size;

  it("keeps every item within devicesMax devices, at device boundaries, every record once in order, in as few items as that allows beside the parts asked", () => {
    fc.assert(
      fc.property(cases, ({ counts, parts, devicesMax }) => {
        const records = recordsOf(counts);
        const split = splitAtDevices(records, parts, devicesMax);
        expect(split.flat()).toEqual(records);
        for (const part of split) expect(devicesIn(part)).toBeLessThanOrEqual(devicesMax);
        for (let i = 1; i < split.length; i++) expect(split[i]![0]!.deviceId).not.toBe(split[i - 1]!.at(-1)!.deviceId);
        expect(split.length).toBeLessThanOrEqual(Math.max(1, parts, Math.ceil(counts.length / devicesMax)));
        if (counts.length > 0) expect(split.every((part) => part.length > 0)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("cuts as before where no item would hold more than devicesMax devices", () => {
    fc.assert(
      fc.property(cases, ({ counts, parts }) => {
        const records = recordsOf(counts);
        const plain = plainSplit(records, parts);
        const bound = Math.max(1, ...plain.map(devicesIn));
        expect(splitAtDevices(records, parts, bound)).toEqual(plain);
        expect(splitAtDevices(records, parts)).toEqual(plain);
      }),
      { numRuns: 500 },
    );
  });

  it("moves a cut rather than add an item when the parts asked can hold the devices", () => {
    // 3 devices of 10 records, then 7 of 1: the even cut (where device 2 begins) would leave 8 devices
    // after it; at most 6 an item, it moves forward to leave 6, and the package stays two items.
    const records = recordsOf([10, 10, 10, 1, 1, 1, 1, 1, 1, 1]);
    const split = splitAtDevices(records, 2, 6);
    expect(split.map(devicesIn)).toEqual([4, 6]);
    expect(split.map((p) => p.length)).toEqual([31, 6]);
  });
});

describe("refineGasShares", () => {
  const G_R = tinyParams.refineGasPerPackage;

  it("gives each item what refine will be charged and a quarter, when the package's items fit G_R together", () => {
    // A package cut unevenly: a busy device's 10,000 envelopes on one side, a fleet's 1,024 devices on the other.
    const items = [
      { payloadBytes: 6_000_000, envelopes: 10_000, devices: 10 },
      { payloadBytes: 1_300_000, envelopes: 3_000, devices: 1_024 },
    ];
    const shares = refineGasShares(items, G_R, envelopesRefineGas);
    expect(shares).toEqual(items.map((item) => envelopesRefineGas(item, G_R)));
    // An even share of G_R would have held the larger item below what refine is charged for it (the declaration less its quarter).
    expect((shares[0]! * 4n) / 5n).toBeGreaterThan(G_R / 2n);
    expect(shares.reduce((a, b) => a + b, 0n)).toBeLessThanOrEqual(G_R);
  });

  it("cuts every item's share in proportion when they would add up to more than G_R", () => {
    const items = [
      { payloadBytes: 6_000_000, envelopes: 10_000, devices: 10 },
      { payloadBytes: 1_000_000, envelopes: 5_000, devices: 10 },
    ];
    const wanted = items.map((item) => envelopesRefineGas(item, G_R));
    expect(wanted[0]! + wanted[1]!).toBeGreaterThan(G_R);
    const shares = refineGasShares(items, G_R, envelopesRefineGas);
    const total = wanted[0]! + wanted[1]!;
    expect(shares).toEqual(wanted.map((gas) => (gas * G_R) / total));
    expect(shares[0]! + shares[1]!).toBeLessThanOrEqual(G_R);
    // What refine is charged (the declaration less its quarter) fits G_R, so each item keeps at least its charge.
    const charged = wanted.map((gas) => (gas * 4n) / 5n);
    expect(charged[0]! + charged[1]!).toBeLessThanOrEqual(G_R);
    for (const [i, share] of shares.entries()) expect(share).toBeGreaterThanOrEqual(charged[i]!);
  });
});
