/**
 * Routers onboarded for RADIUS accounting: a stock router (hostapd, CoovaChilli, OpenWrt) speaks
 * RADIUS, not signed envelopes, so the gateway holds an Ed25519 key for it and signs its usage
 * with it (router-attested usage: docs/wifi.md). Each router is one file,
 * `<data-dir>/radius/<routerId>.json` (mode 0600, its dir 0700), holding that key and the
 * router's RADIUS shared secret; the router id is the device id of the public key
 * (devices/envelope.ts `deviceIdOf`), which the router sends as its NAS-Identifier.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DeviceId, deviceIdOf, fromHex, toHex, tryAsDeviceId } from "../../devices/envelope.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { DATA_FILE_MODE, makePrivateDir } from "../../node/storage/data-dir.ts";

/** The folder of a data dir that holds the RADIUS routers' files (and the listener's state, state.ts). */
export const RADIUS_DIR = "radius";

/**
 * Shared secrets: at least 16 octets, as RFC 2865 §3 prefers ("It is preferred that the secret be at
 * least 16 octets"), at most 128 (FreeRADIUS's clients.conf takes longer ones, but no NAS UI known
 * here does), printable ASCII without spaces, so a router's web form and radclient's command line
 * take it as it is.
 */
export const SHARED_SECRET_BYTES_MIN = 16;
export const SHARED_SECRET_BYTES_MAX = 128;
/**
 * A generated secret: 32 characters of [A-Za-z0-9] (190 bits). Letters and digits only: base64url's
 * `-` and `_` were allowed before, and a secret that began with `-` (1 in 64) was read as an option
 * by radclient's command line (`radclient: invalid option -- 'H'`), and by many a shell tool.
 */
const GENERATED_SECRET_CHARS = 32;
const SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** Random octets at or above this are drawn again, so every character of the alphabet is equally likely (248 = 4 × 62). */
const SECRET_OCTET_LIMIT = 256 - (256 % SECRET_ALPHABET.length);
const SHARED_SECRET_PATTERN = /^[\x21-\x7e]+$/;

export interface RadiusRouter {
  readonly routerId: DeviceId;
  /** Ed25519 public key (32 bytes): the router's key on the wifi-billing service. */
  readonly publicKey: Uint8Array;
  /** Ed25519 secret key (32-byte seed), held by the gateway: RADIUS usage is signed with it. */
  readonly secretKey: Uint8Array;
  /** The RADIUS shared secret the router and the gateway hold (RFC 2865 §3). */
  readonly sharedSecret: string;
}

interface RouterFile {
  readonly routerId: string;
  readonly publicKey: string;
  readonly secretKey: string;
  readonly sharedSecret: string;
}

/** Why a shared secret is not taken, or null. */
export function sharedSecretProblem(secret: string): string | null {
  if (secret.length < SHARED_SECRET_BYTES_MIN || secret.length > SHARED_SECRET_BYTES_MAX)
    return `a RADIUS shared secret has ${SHARED_SECRET_BYTES_MIN}..${SHARED_SECRET_BYTES_MAX} characters (RFC 2865 §3), got ${secret.length}`;
  if (!SHARED_SECRET_PATTERN.test(secret)) return "a RADIUS shared secret is printable ASCII without spaces";
  return null;
}

/** A random shared secret of GENERATED_SECRET_CHARS letters and digits. */
export function generatedSecret(): string {
  let secret = "";
  while (secret.length < GENERATED_SECRET_CHARS) {
    for (const octet of randomBytes(GENERATED_SECRET_CHARS)) {
      if (octet < SECRET_OCTET_LIMIT && secret.length < GENERATED_SECRET_CHARS) secret += SECRET_ALPHABET[octet % SECRET_ALPHABET.length];
    }
  }
  return secret;
}

export function radiusDir(dataDir: string): string {
  return join(dataDir, RADIUS_DIR);
}

function routerPath(dataDir: string, routerId: string): string {
  return join(radiusDir(dataDir), `${routerId}.json`);
}

/**
 * A new router: a fresh Ed25519 key and the given shared secret (or a random one of 32 printable
 * characters), written to its file before it is returned. A bad given secret is JG_ERR_HTTP_BODY
 * (the onboarding request's).
 */
export function createRadiusRouter(dataDir: string, sharedSecret?: string): RadiusRouter {
  const secret = sharedSecret ?? generatedSecret();
  const problem = sharedSecretProblem(secret);
  if (problem !== null) throw new JamgateError("JG_ERR_HTTP_BODY", problem);
  const secretKey = new Uint8Array(randomBytes(32));
  const publicKey = keyPairFromSeed(secretKey).publicKey;
  const router: RadiusRouter = { routerId: deviceIdOf(publicKey), publicKey, secretKey, sharedSecret: secret };
  makePrivateDir(radiusDir(dataDir));
  const file: RouterFile = { routerId: router.routerId, publicKey: toHex(publicKey), secretKey: toHex(secretKey), sharedSecret: secret };
  // Written whole under another name and renamed: a reader never sees half a file.
  const path = routerPath(dataDir, router.routerId);
  const partial = `${path}.partial`;
  writeFileSync(partial, `${JSON.stringify(file, null, 2)}\n`, { mode: DATA_FILE_MODE });
  chmodSync(partial, DATA_FILE_MODE);
  renameSync(partial, path);
  return router;
}

/** The router's file read back, or null when there is none. Throws, naming the file, on one this code did not write (a damaged data dir). */
export function loadRadiusRouter(dataDir: string, routerId: string): RadiusRouter | null {
  if (tryAsDeviceId(routerId) === null) return null;
  const path = routerPath(dataDir, routerId);
  if (!existsSync(path)) return null;
  return parseRouterFile(path, readFileSync(path, "utf8"));
}

/** Whether the router's file is (still) in the data dir. */
export function radiusRouterExists(dataDir: string, routerId: string): boolean {
  return tryAsDeviceId(routerId) !== null && existsSync(routerPath(dataDir, routerId));
}

/** Every router onboarded for RADIUS in the data dir, by router id. */
export function loadRadiusRouters(dataDir: string): Map<DeviceId, RadiusRouter> {
  const routers = new Map<DeviceId, RadiusRouter>();
  const dir = radiusDir(dataDir);
  if (!existsSync(dir)) return routers;
  for (const name of readdirSync(dir)) {
    const id = name.endsWith(".json") ? tryAsDeviceId(name.slice(0, -".json".length)) : null;
    if (id === null) continue;
    const router = loadRadiusRouter(dataDir, id);
    if (router !== null) routers.set(router.routerId, router);
  }
  return routers;
}

/** Removes the router's file (its key and secret); false when there was none. */
export function removeRadiusRouter(dataDir: string, routerId: string): boolean {
  if (tryAsDeviceId(routerId) === null) return false;
  const path = routerPath(dataDir, routerId);
  if (!existsSync(path)) return false;
  unlinkSync(path);
  return true;
}

/**
 * Onboarding's hold on the data dir's RADIUS routers (the Wi-Fi routes' `radius: true`): `create`
 * writes a new router's file, `remove` deletes it and has the listener, when one runs, forget it.
 */
export function radiusKeysOf(
  dataDir: string,
  listener: { forgetRouter(routerId: string): void } | null,
): { create(sharedSecret?: string): RadiusRouter; remove(routerId: string): void } {
  return {
    create: (sharedSecret) => createRadiusRouter(dataDir, sharedSecret),
    remove: (routerId) => {
      removeRadiusRouter(dataDir, routerId);
      listener?.forgetRouter(routerId);
    },
  };
}

function parseRouterFile(path: string, text: string): RadiusRouter {
  const bad = (why: string) => new Error(`RADIUS router file ${path}: ${why}`);
  let f: Partial<RouterFile>;
  try {
    f = JSON.parse(text) as Partial<RouterFile>;
  } catch (e) {
    throw bad(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof f?.secretKey !== "string" || !/^[0-9a-f]{64}$/.test(f.secretKey)) throw bad("secretKey must be 64 hex digits");
  if (typeof f.sharedSecret !== "string" || sharedSecretProblem(f.sharedSecret) !== null)
    throw bad(sharedSecretProblem(String(f.sharedSecret)) ?? "sharedSecret must be a string");
  const secretKey = fromHex(f.secretKey);
  const publicKey = keyPairFromSeed(secretKey).publicKey;
  const routerId = deviceIdOf(publicKey);
  if (f.routerId !== routerId || f.publicKey !== toHex(publicKey)) throw bad("routerId and publicKey do not match secretKey");
  if (!path.endsWith(`${routerId}.json`)) throw bad(`holds router ${routerId}`);
  return { routerId, publicKey, secretKey, sharedSecret: f.sharedSecret };
}
