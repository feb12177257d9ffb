/**
 * The telemetry adapter's package size, against the service itself: a package of
 * TELEMETRY_PACKAGE_DEVICES_MAX devices, each with one envelope (a fleet's devices, sending once a
 * minute), is packed by the batcher, built by the builder and refined by telemetry's own refine,
 * and its report's results leave the slack free in W_R; one device more would not, and the batcher
 * leaves it for the next package.
 */
import { WorkPackage } from "@typeberry/lib/block";
import { describe, expect, it } from "vitest";
import { type DeviceId, deviceIdOf, signingBytes } from "../../devices/envelope.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { decode } from "../../node/codec/jam.ts";
import { type Ed25519KeyPair, keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { memoryRefineContext } from "../../services/common/testing.ts";
import { decodeRefineOutput, type EnvelopesOutput } from "../../services/telemetry/output.ts";
import { ENVELOPE_DEVICES_PER_ITEM_MAX, W_R } from "../../services/telemetry/payload.ts";
import { refine } from "../../services/telemetry/refine.ts";
import type { LogEntry } from "../log.ts";
import { Batcher } from "../settlement/batcher.ts";
import { PackageBuilder } from "../settlement/builder.ts";
import { settlementLimits } from "../settlement/limits.ts";
import {
  TELEMETRY_OUTPUT_DEVICE_BYTES,
  TELEMETRY_OUTPUT_ITEM_BYTES,
  TELEMETRY_OUTPUT_SLACK_BYTES,
  TELEMETRY_PACKAGE_DEVICES_MAX,
  telemetryService,
} from "./telemetry.ts";

const SERVICE = 2;
const ANCHOR = { headerHash: new Uint8Array(32), stateRoot: new Uint8Array(32), slot: 0 };
const adapter = telemetryService(SERVICE);

/** `count` devices with their keys, each with one signed envelope of a minute of readings' size, logged in this order. */
function fleet(count: number) {
  const keys = new Map<string, Ed25519KeyPair>();
  const entries: LogEntry[] = Array.from({ length: count }, (_, i) => {
    const key = keyPairFromSeed(hash(Uint8Array.of(i & 0xff, i >> 8, 7)));
    const deviceId = deviceIdOf(key.publicKey) as DeviceId;
    keys.set(deviceId, key);
    const bytes = signingBytes({
      version: 1,
      device: deviceId,
      seq: 41,
      kind: "meter.reading",
      timeMs: 1_700_000_000_000,
      body: new Uint8Array(400).fill(i & 0xff),
    });
    return {
      deviceId,
      seq: 41,
      order: i,
      signingBytes: bytes,
      signature: signEd25519(key, bytes),
      serviceId: SERVICE,
      acceptedAtMs: 0,
      state: "pending",
      attempts: 0,
    };
  });
  return { keys, entries };
}

/** The package of `entries` as the builder makes it (one package alone: both refine threads), refined item by item by telemetry's refine. */
function buildAndRefine(entries: readonly LogEntry[], keys: ReadonlyMap<string, Ed25519KeyPair>) {
  const builder = new PackageBuilder({
    params: tinyParams,
    signer: keyPairFromSeed(new Uint8Array(32).fill(1)),
    services: new Map([[SERVICE, adapter]]),
    publicKeyOf: (id) => keys.get(id)?.publicKey ?? null,
  });
  const pkg: WorkPackage = decode(WorkPackage.Codec, builder.build(SERVICE, entries, ANCHOR, adapter.itemsPerPackageMax!).bytes, tinyParams.spec);
  return Array.from(pkg.items, (item) => {
    const context = memoryRefineContext({ hash, verifyEd25519 }, BigInt(item.refineGasLimit));
    const bytes = refine(item.payload.raw, context);
    const output = decodeRefineOutput(bytes);
    if (!output.ok) throw new Error(output.error);
    return {
      bytes: bytes.length,
      output: output.value as EnvelopesOutput,
      refineGas: { used: context.gas.used, declared: BigInt(item.refineGasLimit) },
      accumulateGas: BigInt(item.accumulateGasLimit),
    };
  });
}

describe("telemetry packages' size", () => {
  it("is W_R's worth of one-run devices after two items' bytes and the slack: 1,405", () => {
    expect([TELEMETRY_OUTPUT_ITEM_BYTES, TELEMETRY_OUTPUT_DEVICE_BYTES]).toEqual([35, 32]);
    expect(TELEMETRY_PACKAGE_DEVICES_MAX).toBe(
      Math.floor((W_R - 2 * TELEMETRY_OUTPUT_ITEM_BYTES - TELEMETRY_OUTPUT_SLACK_BYTES) / TELEMETRY_OUTPUT_DEVICE_BYTES),
    );
    expect(TELEMETRY_PACKAGE_DEVICES_MAX).toBe(1_405);
    expect(adapter.packageDevicesMax).toBe(TELEMETRY_PACKAGE_DEVICES_MAX);
    // Settlement's own bound does not cut it lower.
    expect(settlementLimits.packageDevicesMax).toBeGreaterThanOrEqual(TELEMETRY_PACKAGE_DEVICES_MAX);
  });

  it("packs TELEMETRY_PACKAGE_DEVICES_MAX devices into a package whose refined results leave the slack in W_R, and leaves one more device for the next", () => {
    const cap = TELEMETRY_PACKAGE_DEVICES_MAX;
    const { keys, entries } = fleet(cap + 1);
    // The batcher: one package of the cap, the device over it left for the next.
    const batcher = new Batcher(new Map([[SERVICE, adapter]]));
    for (const e of entries) batcher.add(e);
    const first = batcher.take(SERVICE, settlementLimits.packageEnvelopesMax);
    expect(first).toHaveLength(cap);
    expect(new Set(first.map((e) => e.deviceId)).size).toBe(cap);
    expect(batcher.take(SERVICE, settlementLimits.packageEnvelopesMax).map((e) => e.deviceId)).toEqual([entries[cap]!.deviceId]);

    // Built and refined through the service's own refine: two items (more devices than one item takes), every envelope settled.
    const items = buildAndRefine(first, keys);
    expect(items).toHaveLength(2);
    for (const item of items) expect(item.output.devices.length).toBeLessThanOrEqual(ENVELOPE_DEVICES_PER_ITEM_MAX);
    expect(items.flatMap((i) => i.output.devices).filter((d) => d.accepted.length === 1 && d.rejected.length === 0)).toHaveLength(cap);
    const results = items.reduce((n, i) => n + i.bytes, 0);
    expect(results).toBe(2 * TELEMETRY_OUTPUT_ITEM_BYTES + cap * TELEMETRY_OUTPUT_DEVICE_BYTES);
    expect(results + TELEMETRY_OUTPUT_SLACK_BYTES).toBeLessThanOrEqual(W_R);
    // Each item's refine within the gas it declares; accumulate within G_A.
    for (const item of items) expect(item.refineGas.used).toBeLessThanOrEqual(item.refineGas.declared);
    expect(items.reduce((n, i) => n + i.accumulateGas, 0n)).toBeLessThanOrEqual(tinyParams.accumulateGasPerReport);

    // One device more would eat into the slack: the cap is the most that leaves it.
    const over = buildAndRefine(entries, keys);
    expect(over.reduce((n, i) => n + i.bytes, 0) + TELEMETRY_OUTPUT_SLACK_BYTES).toBeGreaterThan(W_R);
  });

  it("declares accumulate gas within G_A for a full package: the cap's devices and settlement's envelopes bound", () => {
    // Two items, the devices and envelopes split between them as unevenly as a package can be.
    const gas =
      adapter.envelopesGas(ENVELOPE_DEVICES_PER_ITEM_MAX, settlementLimits.packageEnvelopesMax) +
      adapter.envelopesGas(TELEMETRY_PACKAGE_DEVICES_MAX - ENVELOPE_DEVICES_PER_ITEM_MAX, 0);
    expect(gas).toBeLessThanOrEqual(tinyParams.accumulateGasPerReport);
  });
});
