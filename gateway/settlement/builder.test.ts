/**
 * The package builder on its own: a package's items are cut at device boundaries, as many as it
 * is allowed and its envelopes fill (envelopesPerItemMin each), every envelope once; a package
 * built later, through the same reused payload buffer, leaves an earlier package's bytes as they were.
 */
import { createHash } from "node:crypto";
import { WorkPackage } from "@typeberry/lib/block";
import { describe, expect, it } from "vitest";
import { type DeviceId, signingBytes } from "../../devices/envelope.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { decode } from "../../node/codec/jam.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { decodeEnvelopesItem } from "../../services/telemetry/payload.ts";
import type { LogEntry } from "../log.ts";
import { telemetryService } from "../services/telemetry.ts";
import { PackageBuilder } from "./builder.ts";
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
