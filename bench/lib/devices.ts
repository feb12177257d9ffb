/**
 * Simulated devices for the gateway benchmarks: keys from public seeds, MQTT tokens and signed
 * envelopes made with node:crypto (the same bytes as devices/keys.ts and devices/envelope.ts,
 * which sign with @noble/ed25519, ~10× slower), a loopback source address per group of devices,
 * and bulk registration: up to the service's registrations per work item, several items per
 * package, instead of one package per device (gateway/registration.ts). Meters send readings;
 * Wi-Fi routers (bench/wifi.ts) send `router.usage` envelopes of devices/wifi.ts sessions, each
 * update countersigned by the router's client.
 */
import { createHash, sign } from "node:crypto";
import { type DeviceId, deviceIdOf, encodeEnvelope, type EnvelopeFields, signingBytes } from "../../devices/envelope.ts";
import { parseMqttPassword } from "../../devices/keys.ts";
import { encodeReadings } from "../../devices/readings.ts";
import { encodeCbor } from "../../devices/cbor.ts";
import { meterReadings } from "../../devices/simulate.ts";
import { RouterSession, UsageStatus, voucherSigningBytes } from "../../devices/wifi.ts";
import type { NodeApi, WorkPackageStatus } from "../../node/api.ts";
import type { ChainParams } from "../../node/chain/params.ts";
import { type Ed25519KeyPair, keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { buildWorkPackage, type WorkItemSpec } from "../../node/intake/builder.ts";
import type { IngestService, RegistrationRecord } from "../../gateway/ingest-service.ts";

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
export function signedEnvelopes(
  device: BenchDevice,
  count: number,
  readingsPerEnvelope: number,
  startMs: number,
  body: "columns" | "rows" = "columns",
): Uint8Array[] {
  const readings = meterReadings(device.index + 1, startMs);
  const out: Uint8Array[] = [];
  for (let seq = 0; seq < count; seq++) {
    const batch: BenchReading[] = [];
    for (let i = 0; i < readingsPerEnvelope; i++) {
      const r = readings.next().value!;
      batch.push({ t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh, powerW: r.powerW, voltageV: r.voltageV });
    }
    const fields: EnvelopeFields = {
      version: 1,
      device: device.deviceId,
      seq,
      kind: "meter.reading",
      timeMs: batch[batch.length - 1]!.t,
      body: body === "columns" ? encodeReadings(batch) : encodeCbor(batch),
    };
    const signature = new Uint8Array(sign(null, signingBytes(fields), device.key.privateKey));
    out.push(encodeEnvelope({ ...fields, signature }));
  }
  return out;
}

/**
 * Router indices start here, apart from meters' (bench/gateway.ts takes at most 250,000 devices):
 * a router's key, device id and loopback source address are its own.
 */
export const ROUTER_INDEX_BASE = 500_000;

/** One account of the router at `index` (services/wifi-billing/README.md): its owner's (stake, earnings) or its client's (pays, countersigns). */
export function benchWifiAccount(index: number, role: "owner" | "client"): Ed25519KeyPair {
  return keyPairFromSeed(createHash("sha256").update(`jamgate-bench-wifi-${role}/${index}`).digest());
}

/** What one session update adds: octets to the client (in) and from it (out), and seconds (RFC 2866 Acct-Input/Output-Octets, Acct-Session-Time). */
export const USAGE_INPUT_OCTETS_PER_UPDATE = 4_000_000n;
export const USAGE_OUTPUT_OCTETS_PER_UPDATE = 1_000_000n;
/** An Interim-Update a minute: 5 MB a minute is ~0.7 Mbit/s, far inside a router's stated 1 Gbit/s (the service's capacity check). */
export const USAGE_SECONDS_PER_UPDATE = 60;

export interface UsageOptions {
  /** Updates per session: a Start, Interim-Updates, and a Stop as the last (1: a Start alone, never stopped). */
  readonly sessionUpdates: number;
  /** Router-attested usage: no client voucher (billed only for an owner who chose it). */
  readonly attested?: boolean;
}

/** The session id of the router's `n`-th session (devices/wifi.ts: 16 bytes; a native router's are random, these are from public seeds). */
function benchSessionId(router: BenchDevice, n: number): Uint8Array {
  return new Uint8Array(createHash("sha256").update(`jamgate-bench-wifi-session/${router.index}/${n}`).digest().subarray(0, 16));
}

/**
 * `count` `router.usage` envelopes of the router, seq from 0 (CBOR wire bytes): sessions of
 * `sessionUpdates` updates with its client (benchWifiAccount), one after the other, each update's
 * counters growing by the USAGE_*_PER_UPDATE amounts (cumulative, so gigawords wrap past 4 GB)
 * and chained to the one before (devices/wifi.ts RouterSession); the client countersigns each
 * (its voucher, node:crypto) unless `attested`. Envelope times are a second apart from `startMs`.
 */
export function signedUsageEnvelopes(router: BenchDevice, count: number, startMs: number, options: UsageOptions): Uint8Array[] {
  if (!Number.isInteger(options.sessionUpdates) || options.sessionUpdates < 1)
    throw new Error(`sessionUpdates must be a positive integer, not ${options.sessionUpdates}`);
  const client = benchWifiAccount(router.index, "client");
  const clientId = deviceIdOf(client.publicKey);
  const out: Uint8Array[] = [];
  let session: RouterSession | null = null;
  for (let seq = 0; seq < count; seq++) {
    const k = seq % options.sessionUpdates;
    if (k === 0) session = new RouterSession(router.deviceId, benchSessionId(router, seq / options.sessionUpdates), clientId);
    const n = BigInt(k + 1);
    const counters = {
      inputOctets: n * USAGE_INPUT_OCTETS_PER_UPDATE,
      outputOctets: n * USAGE_OUTPUT_OCTETS_PER_UPDATE,
      seconds: (k + 1) * USAGE_SECONDS_PER_UPDATE,
    };
    const last = options.sessionUpdates > 1 && k === options.sessionUpdates - 1;
    const status = k === 0 ? UsageStatus.start : last ? UsageStatus.stop : UsageStatus.interim;
    const voucher =
      options.attested === true
        ? {}
        : { voucher: new Uint8Array(sign(null, voucherSigningBytes(session!.voucherFields(counters)), client.privateKey)), clientKey: client.publicKey };
    // RFC 2866 §5.10 Acct-Terminate-Cause 1: User-Request.
    const { body } = session!.update(counters, { status, ...(last ? { cause: 1 } : {}), ...voucher });
    const fields: EnvelopeFields = { version: 1, device: router.deviceId, seq, kind: "router.usage", timeMs: startMs + seq * 1_000, body };
    const signature = new Uint8Array(sign(null, signingBytes(fields), router.key.privateKey));
    out.push(encodeEnvelope({ ...fields, signature }));
  }
  return out;
}

/**
 * Registrations per telemetry package here: a report's results must fit W_R = 49,152 bytes. When
 * refine output 49 bytes per registration (device id, key, kind) ~1,000 fit, not 16 items × 512
 * (tried: 7 × 512 failed with JG_ERR_REPORT_OVERSIZE, 175,637 bytes of results); since its output
 * is 33 bytes (key, kind; services/telemetry/output.ts) 1,489 fit in one item, which the gateway's
 * own bulk path packs (gateway/registration.ts). The benchmarks that register through the node
 * keep 960.
 */
export const REGISTRATIONS_PER_PACKAGE = 960;

/**
 * Submits these packages of work items through the node, spread over the cores, and resolves
 * once every one is accumulated. Throws if one fails.
 */
export async function submitInBulk(
  api: NodeApi,
  params: ChainParams,
  signer: Ed25519KeyPair,
  packages: readonly (readonly WorkItemSpec[])[],
): Promise<{ packages: number; ms: number }> {
  const started = performance.now();
  const waits: Promise<WorkPackageStatus>[] = [];
  for (const [n, items] of packages.entries()) {
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
  if (failed !== undefined && failed.kind === "failed") throw new Error(`package failed: ${failed.code} ${failed.detail}`);
  return { packages: waits.length, ms: performance.now() - started };
}

/**
 * Registers devices through the node directly: `perPackage` per package (REGISTRATIONS_PER_PACKAGE
 * suits telemetry's 49-byte outputs; a service with larger ones passes fewer) in items of the
 * service's registrationsPerPackageMax, and resolves once every package is accumulated. A bare
 * public key is a meter. Throws if a package fails; a registration the service refuses is not
 * seen here (look the devices up after).
 */
export async function registerInBulk(
  api: NodeApi,
  params: ChainParams,
  signer: Ed25519KeyPair,
  service: IngestService,
  devices: readonly (Uint8Array | RegistrationRecord)[],
  perPackage: number = REGISTRATIONS_PER_PACKAGE,
): Promise<{ packages: number; ms: number }> {
  const records = devices.map((d): RegistrationRecord => (d instanceof Uint8Array ? { publicKey: d, kind: "meter" } : d));
  const perItem = service.registrationsPerPackageMax;
  const packages: WorkItemSpec[][] = [];
  for (let at = 0; at < records.length; at += perPackage) {
    const inPackage = records.slice(at, at + perPackage);
    const items: WorkItemSpec[] = [];
    for (let i = 0; i < inPackage.length; i += perItem) {
      const batch = inPackage.slice(i, i + perItem);
      items.push({
        serviceId: service.serviceId,
        codeHash: service.codeHash,
        payload: service.registrationsPayload(batch),
        refineGasLimit: 10_000_000n,
        accumulateGasLimit: service.registrationsGas(batch.length),
      });
    }
    packages.push(items);
  }
  return submitInBulk(api, params, signer, packages);
}
