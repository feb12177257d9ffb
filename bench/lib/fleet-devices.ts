/**
 * The devices of bench/fleet.ts: keys from public seeds, MQTT tokens and signed meter envelopes,
 * made with libsodium (sodium-native, what the node verifies with) rather than node:crypto. The
 * bytes are the same as devices/keys.ts and devices/envelope.ts make (Ed25519 is deterministic);
 * only the cost differs: a key from its seed takes ~0.2 ms with libsodium against ~2 ms through
 * node:crypto's KeyObjects (keyPairFromSeed, as bench/lib/devices.ts does), measured with 1,000
 * keys while other tests ran on the machine, and the fleet makes 100,000 of them.
 */
import { createHash } from "node:crypto";
import sodium from "sodium-native";
import { type DeviceId, deviceIdOf, encodeEnvelope, type EnvelopeFields, signingBytes } from "../../devices/envelope.ts";
import { parseMqttPassword } from "../../devices/keys.ts";
import { encodeReadings } from "../../devices/readings.ts";
import { meterReadings } from "../../devices/simulate.ts";

/** The libsodium calls used here (node/crypto/sodium-native.d.ts declares only what the node uses). */
const na = sodium as unknown as {
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
};

/** Devices per loopback source address: the gateway allows a burst of 200 CONNECTs per address (gateway/gateway.ts gatewayLimits.connectsPerIp), so a storm of all of them passes. */
export const FLEET_DEVICES_PER_SOURCE_IP = 100;

export interface FleetDevice {
  readonly index: number;
  readonly publicKey: Uint8Array;
  /** libsodium's 64-byte secret key: the seed, then the public key. */
  readonly secretKey: Uint8Array;
  readonly deviceId: DeviceId;
  /** Loopback source address (127.0.1.1 …; the whole of 127/8 is local on Linux): 1,000 of them for 100,000 devices, ~28,000 source ports each. */
  readonly sourceIp: string;
}

export function fleetDevice(index: number): FleetDevice {
  const publicKey = new Uint8Array(32);
  const secretKey = new Uint8Array(64);
  na.crypto_sign_seed_keypair(publicKey, secretKey, createHash("sha256").update(`jamgate-bench-fleet-device/${index}`).digest());
  const group = Math.floor(index / FLEET_DEVICES_PER_SOURCE_IP);
  return {
    index,
    publicKey,
    secretKey,
    deviceId: deviceIdOf(publicKey),
    sourceIp: `127.${1 + Math.floor(group / 62_500)}.${1 + Math.floor((group % 62_500) / 250)}.${1 + (group % 250)}`,
  };
}

function signed(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const signature = new Uint8Array(64);
  na.crypto_sign_detached(signature, message, secretKey);
  return signature;
}

/** The device's MQTT password (devices/keys.ts `mqttPassword`), valid until `expiresAtMs`. */
export function fleetToken(device: FleetDevice, expiresAtMs: number): string {
  // parseMqttPassword returns the signed message for any well-formed token: the layout stays in devices/keys.ts.
  const message = parseMqttPassword(device.deviceId, `v1.${expiresAtMs}.${"A".repeat(86)}`)!.message;
  return `v1.${expiresAtMs}.${Buffer.from(signed(message, device.secretKey)).toString("base64url")}`;
}

/**
 * The device's first `count` envelopes, seq 0 on: each `readings` one-second meter readings
 * (devices/simulate.ts, seeded by the device) from `startMs` on, in the SDK's column form
 * (devices/readings.ts), signed; CBOR wire bytes.
 */
export function fleetEnvelopes(device: FleetDevice, count: number, readings: number, startMs: number): Uint8Array[] {
  const source = meterReadings(device.index + 1, startMs);
  const out: Uint8Array[] = [];
  for (let seq = 0; seq < count; seq++) {
    const batch = [];
    for (let i = 0; i < readings; i++) {
      const r = source.next().value!;
      batch.push({ t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh, powerW: r.powerW, voltageV: r.voltageV });
    }
    const fields: EnvelopeFields = {
      version: 1,
      device: device.deviceId,
      seq,
      kind: "meter.reading",
      timeMs: batch[readings - 1]!.t,
      body: encodeReadings(batch),
    };
    out.push(encodeEnvelope({ ...fields, signature: signed(signingBytes(fields), device.secretKey) }));
  }
  return out;
}
