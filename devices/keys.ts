/**
 * Device keys (Ed25519) and the MQTT password that proves possession of one: a token signed by
 * the device key, valid until an expiry time, so a captured password stops working (compare
 * AWS IoT custom authorizers' signed tokens). Browser-safe: no Node built-ins.
 *
 * Token: "v1." ⌢ expiresAtMs (decimal) ⌢ "." ⌢ base64url(signature), the signature over
 * "jamgate/mqtt-auth/v1" ⌢ 0x00 ⌢ deviceId (ASCII) ⌢ u64 expiresAtMs (little-endian).
 */
import * as ed from "@noble/ed25519";
import { type DeviceId, deviceIdOf, fromHex, toHex } from "./envelope.ts";
import { TOKEN_LIFETIME_MAX_MS } from "./protocol/mqtt-token.ts";

const AUTH_DOMAIN = new TextEncoder().encode("jamgate/mqtt-auth/v1\u0000");
/** Longest validity a gateway accepts (./protocol/mqtt-token.ts), exported here as part of this module's public API. */
export { TOKEN_LIFETIME_MAX_MS };

export interface DeviceKey {
  /** 32-byte Ed25519 secret key (seed). */
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly deviceId: DeviceId;
}

export function generateDeviceKey(): DeviceKey {
  return deviceKeyFromSecret(ed.utils.randomSecretKey());
}

export function deviceKeyFromSecret(secretKey: Uint8Array): DeviceKey {
  const publicKey = ed.getPublicKey(secretKey);
  return { secretKey, publicKey, deviceId: deviceIdOf(publicKey) };
}

/** The JSON a key file holds (`jamgate device keygen`). */
export interface DeviceKeyFile {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly secretKey: string;
}

export function keyToJson(key: DeviceKey): DeviceKeyFile {
  return { deviceId: key.deviceId, publicKey: toHex(key.publicKey), secretKey: toHex(key.secretKey) };
}

export function keyFromJson(json: unknown): DeviceKey {
  const f = json as Partial<DeviceKeyFile>;
  if (typeof f?.secretKey !== "string" || !/^[0-9a-f]{64}$/.test(f.secretKey)) throw new Error("key file: secretKey must be 64 hex digits");
  const key = deviceKeyFromSecret(fromHex(f.secretKey));
  if (f.deviceId !== undefined && f.deviceId !== key.deviceId) throw new Error("key file: deviceId does not match the key");
  return key;
}

function authMessage(deviceId: string, expiresAtMs: number): Uint8Array {
  const id = new TextEncoder().encode(deviceId);
  const out = new Uint8Array(AUTH_DOMAIN.length + id.length + 8);
  out.set(AUTH_DOMAIN, 0);
  out.set(id, AUTH_DOMAIN.length);
  new DataView(out.buffer).setBigUint64(AUTH_DOMAIN.length + id.length, BigInt(expiresAtMs), true);
  return out;
}

export function mqttPassword(key: DeviceKey, expiresAtMs: number): string {
  return `v1.${expiresAtMs}.${base64url(ed.sign(authMessage(key.deviceId, expiresAtMs), key.secretKey))}`;
}

export interface ParsedToken {
  readonly expiresAtMs: number;
  readonly signature: Uint8Array;
  /** The bytes the signature covers. */
  readonly message: Uint8Array;
}

/** Parses a password for `deviceId`; null if it is not a token. The caller checks expiry and signature. */
export function parseMqttPassword(deviceId: string, password: string): ParsedToken | null {
  const m = /^v1\.(\d{1,16})\.([A-Za-z0-9_-]{86})$/.exec(password);
  if (m === null) return null;
  const expiresAtMs = Number(m[1]);
  if (!Number.isSafeInteger(expiresAtMs)) return null;
  const signature = fromBase64url(m[2]!);
  return signature.length === 64 ? { expiresAtMs, signature, message: authMessage(deviceId, expiresAtMs) } : null;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
