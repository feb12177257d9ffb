import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { deviceIdOf } from "../../devices/envelope.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { tempDir } from "../../node/testing/fixtures.ts";
import {
  createRadiusRouter,
  generatedSecret,
  loadRadiusRouter,
  loadRadiusRouters,
  radiusKeysOf,
  removeRadiusRouter,
  SHARED_SECRET_BYTES_MIN,
} from "./routers.ts";

describe("RADIUS routers", () => {
  it("creates a router with a fresh key and a random secret of 32 letters and digits, in a 0600 file of a 0700 dir, and reads it back", () => {
    const dir = tempDir();
    const router = createRadiusRouter(dir);
    expect(router.routerId).toBe(deviceIdOf(router.publicKey));
    expect(Buffer.from(keyPairFromSeed(router.secretKey).publicKey).equals(Buffer.from(router.publicKey))).toBe(true);
    expect(router.sharedSecret).toMatch(/^[A-Za-z0-9]{32}$/);
    const file = join(dir, "radius", `${router.routerId}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "radius")).mode & 0o777).toBe(0o700);
    expect(loadRadiusRouter(dir, router.routerId)).toEqual(router);
    const other = createRadiusRouter(dir, "given-shared-secret-1234");
    expect(other.sharedSecret).toBe("given-shared-secret-1234");
    expect(other.routerId).not.toBe(router.routerId);
    expect([...loadRadiusRouters(dir).keys()].sort()).toEqual([router.routerId, other.routerId].sort());
    expect(removeRadiusRouter(dir, router.routerId)).toBe(true);
    expect(removeRadiusRouter(dir, router.routerId)).toBe(false);
    expect(loadRadiusRouter(dir, router.routerId)).toBeNull();
    expect([...loadRadiusRouters(dir).keys()]).toEqual([other.routerId]);
  });

  it("generates secrets of letters and digits only, none starting with a '-' a command line would take for an option, drawn evenly", () => {
    const secrets = Array.from({ length: 2_000 }, () => generatedSecret());
    for (const secret of secrets) expect(secret).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(new Set(secrets).size).toBe(secrets.length);
    // 64,000 characters over 62 symbols: 1,032 each (σ 32). A plain modulo of an octet would give
    // the first 8 symbols 1,250 each and the others 1,000; each must be within 850..1,215 (±5.7 σ:
    // a fair draw falls outside for any of the 62 about once in 1.4 million runs).
    const counts = new Map<string, number>();
    for (const c of secrets.join("")) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThanOrEqual(850);
      expect(n).toBeLessThanOrEqual(1_215);
    }
  });

  it("refuses a given secret shorter than 16, longer than 128, or not printable ASCII without spaces (JG_ERR_HTTP_BODY)", () => {
    const dir = tempDir();
    for (const secret of ["x".repeat(SHARED_SECRET_BYTES_MIN - 1), "x".repeat(129), "sixteen chars with spaces", "sixteen-chars-é-é-é"]) {
      expect(() => createRadiusRouter(dir, secret)).toThrow(/JG_ERR_HTTP_BODY/);
    }
    expect(loadRadiusRouters(dir).size).toBe(0);
  });

  it("finds no router in a data dir without any, and none for an id that is not one", () => {
    const dir = tempDir();
    expect(loadRadiusRouters(dir).size).toBe(0);
    expect(loadRadiusRouter(dir, "../operator-token")).toBeNull();
  });

  it("refuses, naming the file, a router file whose key does not match its id", () => {
    const dir = tempDir();
    const a = createRadiusRouter(dir);
    const b = createRadiusRouter(dir);
    const fileA = join(dir, "radius", `${a.routerId}.json`);
    writeFileSync(fileA, readFileSync(join(dir, "radius", `${b.routerId}.json`)));
    expect(() => loadRadiusRouter(dir, a.routerId)).toThrow(a.routerId);
  });
});

describe("radiusKeysOf", () => {
  it("creates routers in the data dir and removes them, telling the listener to forget a removed one", () => {
    const dir = tempDir();
    const forgotten: string[] = [];
    const keys = radiusKeysOf(dir, { forgetRouter: (id) => forgotten.push(id) });
    const router = keys.create();
    expect(loadRadiusRouter(dir, router.routerId)).toEqual(router);
    keys.remove(router.routerId);
    expect(loadRadiusRouter(dir, router.routerId)).toBeNull();
    expect(forgotten).toEqual([router.routerId]);
    radiusKeysOf(dir, null).remove(keys.create().routerId);
    expect(loadRadiusRouters(dir).size).toBe(0);
  });
});
