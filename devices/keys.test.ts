import * as ed from "@noble/ed25519";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deviceIdOf, toHex } from "./envelope.ts";
import { generateDeviceKey, keyFromJson, keyToJson, mqttPassword, parseMqttPassword } from "./keys.ts";

const key = generateDeviceKey();

describe("device keys and MQTT tokens", () => {
  it("derive the device id from the public key and round-trip through the key file", () => {
    expect(key.deviceId).toMatch(/^[0-9a-f]{32}$/);
    expect(deviceIdOf(key.publicKey)).toBe(key.deviceId);
    const json = JSON.parse(JSON.stringify(keyToJson(key)));
    expect(keyFromJson(json)).toEqual(key);
    expect(() => keyFromJson({ ...json, deviceId: "0".repeat(32) })).toThrow(/does not match/);
    expect(() => keyFromJson({ secretKey: "zz" })).toThrow(/64 hex/);
  });

  it("tokens round-trip and verify for their own device and expiry only", () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 48 }), (expiresAtMs) => {
        const token = parseMqttPassword(key.deviceId, mqttPassword(key, expiresAtMs));
        expect(token?.expiresAtMs).toBe(expiresAtMs);
        expect(ed.verify(token!.signature, token!.message, key.publicKey)).toBe(true);
      }),
      { numRuns: 50 },
    );
    const password = mqttPassword(key, 1_700_000_000_000);
    const other = generateDeviceKey();
    const forOther = parseMqttPassword(other.deviceId, password)!; // a replay under another username
    expect(ed.verify(forOther.signature, forOther.message, key.publicKey)).toBe(false);
    const later = parseMqttPassword(key.deviceId, password.replace("1700000000000", "1800000000000"))!; // a stretched expiry
    expect(ed.verify(later.signature, later.message, key.publicKey)).toBe(false);
    const sig = password.split(".")[2]!;
    const flipped = parseMqttPassword(key.deviceId, `v1.1700000000000.${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`)!;
    expect(ed.verify(flipped.signature, flipped.message, key.publicKey)).toBe(false);
  });

  it("parseMqttPassword never throws and refuses what is not a token", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        expect(parseMqttPassword(key.deviceId, s)).toBeNull();
      }),
    );
    expect(parseMqttPassword(key.deviceId, `v2.1.${"A".repeat(86)}`)).toBeNull();
    expect(parseMqttPassword(key.deviceId, `v1.99999999999999999.${"A".repeat(86)}`)).toBeNull();
    expect(toHex(new Uint8Array([0, 255]))).toBe("00ff");
  });
});
