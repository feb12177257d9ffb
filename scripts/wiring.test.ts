/** `jamgate start`'s wiring builds its genesis (gateway/genesis.ts) for the data dir's gateway key only. */
import { describe, expect, it } from "vitest";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { builtinWiring } from "./cli.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("jamgate start's wiring", () => {
  it("authorizes the data dir's gateway key in its genesis, and not the old public development key", () => {
    const devKey = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-dev-submitter"))).publicKey;
    const gatewayKey = keyPairFromSeed(new Uint8Array(32).fill(3));
    const services = builtinWiring.genesis(gatewayKey, { dataDir: tempDir(), slotMs: 1000 });
    const keys = services.flatMap((s) => s.authorizedKeys.map(hex));
    expect(new Set(keys)).toEqual(new Set([hex(gatewayKey.publicKey)]));
    expect(keys).not.toContain(hex(devKey));
    expect(services.some((s) => s.name === "counter")).toBe(false);
  });
});
