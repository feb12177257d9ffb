/**
 * Simulated devices for the gateway benchmarks: keys from public seeds, MQTT tokens and signed
 * envelopes made with node:crypto (the same bytes as devices/keys.ts and devices/envelope.ts,
 * which sign with @noble/ed25519, ~10× slower), a loopback source address per group of devices,
 * and bulk registration: up to 512 registrations per telemetry work item, several items per
 * package, instead of one package per device (gateway/registration.ts).
 */
import { createHash, sign } from "node:crypto";
import { type DeviceId, deviceIdOf, encodeEnvelope, type EnvelopeFields, signingBytes } from "../../devices/envelope.ts";
import { parseMqttPassword } from "../../devices/keys.ts";
import { encodeReadings } from "../../devices/readings.ts";
import { encodeCbor } from "../../devices/cbor.ts";
import { meterReadings } from "../../devices/simulate.ts";
import type { NodeApi, WorkPackageStatus } from "../../node/api.ts";
import type { ChainParams } from "../../node/chain/params.ts";
import { type Ed25519KeyPair, keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { buildWorkPackage } from "../../node/intake/builder.ts";
import type { IngestService } from "../../gateway/ingest-service.ts";
import { REGISTRATIONS_PER_ITEM_MAX } from "../../services/telemetry/types.ts";

/** The key gateway/testing/harness.ts gives its gateway (authorized for the telemetry service at genesis). */
export const HARNESS_GATEWAY_KEY = keyPairFromSeed(new Uint8Array(32).fill(42));

/** Devices per loopback source address: the gateway allows a burst of 200 CONNECTs per IP (gatewayLimits.connectsPerIp). */
export const DEVICES_PER_SOURCE_IP = 100;

export interface BenchDevice {
  readonly index: number;
  readonly key: Ed25519KeyPair;
  readonly deviceId: DeviceId;
  /** Loopback source address (127.0.1.x …): the whole 127/8 is local on Linux. */
  readonly sourceIp: string;
}

export function benchDevice(index: number): BenchDevice {
  const key = keyPairFromSeed(createHash("sha256").update(`jamgate-bench-gateway-device/${index}`).digest());
  const group = Math.floor(index / DEVICES_PER_SOURCE_IP);
  return { index, key, deviceId: deviceIdOf(key.publicKey), sourceIp: `127.0.${1 + Math.floor(group / 250)}.${1 + (group % 250)}` };
}

/** The device's MQTT password (devices/keys.ts `mqttPassword`, signed with node:crypto). */
export function benchToken(device: BenchDevice, expiresAtMs: number): string {
  // parseMqttPassword returns the signed message for any well-formed token: the layout stays in devices/keys.ts.
  const message = parseMqttPassword(device.deviceId, `v1.${expiresAtMs}.${"A".repeat(86)}`)!.message;
  return `v1.${expiresAtMs}.${sign(null, message, device.key.privateKey).toString("base64url")}`;
}

/** One meter reading as the issue describes it: integer counters, power, voltage and time. */
export interface BenchReading {
  readonly t: number;
  readonly importWh: number;
  readonly exportWh: number;
  readonly powerW: number;
  readonly voltageV: number;
}

/** `count` envelopes of `readingsPerEnvelope` one-second readings each, seq from 0 (CBOR wire bytes); the body in the SDK's column form, or as rows. */
export function signedEnvelopes(device: BenchDevice, count: number, readingsPerEnvelope: number, startMs: number, body: "columns" | "rows" = "columns"): Uint8Array[] {
  const readings = meterReadings(device.index + 1, startMs);
  const out: Uint8Array[] = [];
  for (let seq = 0; seq < count; seq++) {
    const batch: BenchReading[] = [];
    for (let i = 0; i < readingsPerEnvelope; i++) {
      const r = readings.next().value!;
      batch.push({ t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh, powerW: r.powerW, voltageV: r.voltageV });
    }
    const fields: EnvelopeFields = { version: 1, device: device.deviceId, seq, kind: "meter.reading", timeMs: batch[batch.length - 1]!.t, body: body === "columns" ? encodeReadings(batch) : encodeCbor(batch) };
    const signature = new Uint8Array(sign(null, signingBytes(fields), device.key.privateKey));
    out.push(encodeEnvelope({ ...fields, signature }));
  }
  return out;
}

/**
 * Registrations per package: refine outputs 49 bytes per registration (device id, key, kind) and
 * a report's results must fit W_R = 49,152 bytes, so ~1,000 fit, not 16 items × 512 (tried: 7 × 512
 * failed with JG_ERR_REPORT_OVERSIZE, 175,637 bytes of results).
 */
const REGISTRATIONS_PER_PACKAGE = 960;

/**
 * Registers `publicKeys` (all "meter") through the node directly, 960 per package in items of at
 * most 512, and resolves once every package is accumulated. Throws if one fails.
 */
export async function registerInBulk(
  api: NodeApi,
  params: ChainParams,
  signer: Ed25519KeyPair,
  service: IngestService,
  publicKeys: readonly Uint8Array[],
): Promise<{ packages: number; ms: number }> {
  const started = performance.now();
  const perPackage = REGISTRATIONS_PER_PACKAGE;
  const waits: Promise<WorkPackageStatus>[] = [];
  for (let at = 0, n = 0; at < publicKeys.length; at += perPackage, n++) {
    const keys = publicKeys.slice(at, at + perPackage);
    const items = [];
    for (let i = 0; i < keys.length; i += REGISTRATIONS_PER_ITEM_MAX) {
      const records = keys.slice(i, i + REGISTRATIONS_PER_ITEM_MAX).map((publicKey) => ({ publicKey, kind: "meter" as const }));
      items.push({ serviceId: service.serviceId, codeHash: service.codeHash, payload: service.registrationsPayload(records), refineGasLimit: 10_000_000n, accumulateGasLimit: service.registrationsGas(records.length) });
    }
    const best = await api.bestBlock();
    const stateRoot = await api.stateRoot(best.headerHash);
    const pkg = buildWorkPackage(params, { signer, anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot }, items });
    waits.push(
      new Promise<WorkPackageStatus>((resolve) => {
        void api.subscribeWorkPackageStatus(pkg.hash, (status) => {
          if (status.kind === "accumulated" || status.kind === "failed") resolve(status);
        });
      }),
    );
    await api.submitWorkPackage(n % params.coresCount, pkg.bytes, []);
  }
  const statuses = await Promise.all(waits);
  const failed = statuses.find((s) => s.kind === "failed");
  if (failed !== undefined && failed.kind === "failed") throw new Error(`registration package failed: ${failed.code} ${failed.detail}`);
  return { packages: waits.length, ms: performance.now() - started };
}
