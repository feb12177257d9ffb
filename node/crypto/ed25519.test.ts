/**
 * Ed25519 verification through libsodium: the same answers as node:crypto (OpenSSL) for keys
 * honest signers make, and a refusal where OpenSSL accepts a signature anyone can make.
 */
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "./ed25519.ts";

const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const openssl = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) =>
  verify(null, message, createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" }), signature);

describe("verifyEd25519", () => {
  it("agrees with node:crypto on good and bad signatures of generated keys", () => {
    for (let i = 0; i < 100; i++) {
      const key = keyPairFromSeed(randomBytes(32));
      const message = randomBytes(i * 37);
      const signature = signEd25519(key, message);
      const tampered = Uint8Array.from(signature, (b, j) => (j === i % 64 ? b ^ 1 : b));
      const other = randomBytes(i * 37 + 1);
      for (const [m, s] of [
        [message, signature],
        [message, tampered],
        [other, signature],
      ] as const)
        expect(verifyEd25519(key.publicKey, m, s)).toBe(openssl(key.publicKey, m, s));
      expect(verifyEd25519(key.publicKey, message, signature)).toBe(true);
    }
  });

  it("says false, without throwing, for keys and signatures of the wrong length or off the curve", () => {
    const key = keyPairFromSeed(new Uint8Array(32).fill(7));
    const signature = signEd25519(key, Uint8Array.of(1, 2, 3));
    expect(verifyEd25519(key.publicKey.subarray(1), Uint8Array.of(1, 2, 3), signature)).toBe(false);
    expect(verifyEd25519(key.publicKey, Uint8Array.of(1, 2, 3), signature.subarray(1))).toBe(false);
    expect(verifyEd25519(new Uint8Array(32).fill(0xff), Uint8Array.of(1, 2, 3), signature)).toBe(false);
  });

  it("refuses the signature anyone can make for a small-order public key, which OpenSSL accepts for any message", () => {
    // Public key: the identity point. R = the base point, S = 1: [S]B = R + [k]·identity for every k.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const forged = new Uint8Array(64);
    forged.set(Buffer.from("5866666666666666666666666666666666666666666666666666666666666666", "hex"), 0);
    forged[32] = 1;
    for (const message of [new TextEncoder().encode("pay 1,000,000 µ to mallory"), randomBytes(100)]) {
      expect(openssl(identity, message, forged)).toBe(true);
      expect(verifyEd25519(identity, message, forged)).toBe(false);
    }
  });
});
