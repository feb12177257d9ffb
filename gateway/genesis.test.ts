/**
 * The genesis a user runs holds no development key and no test service: the services accept work
 * packages only from the keys given (the gateway's), never from a key anyone can derive.
 */
import { describe, expect, it } from "vitest";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { builtinServices } from "./genesis.ts";
import { builtinWiring } from "./cli.ts";
import { tempDir } from "../node/testing/fixtures.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("the built-in genesis", () => {
  it("has the telemetry, energy-trading and wifi-billing services only, each authorized for the given keys and no other", () => {
    const gateway = keyPairFromSeed(new Uint8Array(32).fill(9)).publicKey;
    const services = builtinServices([gateway]);
    expect(services.map((s) => s.name)).toEqual(["telemetry", "energy-trading", "wifi-billing"]);
    for (const s of services) expect(s.authorizedKeys.map(hex)).toEqual([hex(gateway)]);
    expect(() => builtinServices([])).toThrow(/at least one key/);
  });

  it("jamgate start's genesis authorizes the data dir's gateway key, and not the old public development key", () => {
    const devKey = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-dev-submitter"))).publicKey;
    const gatewayKey = keyPairFromSeed(new Uint8Array(32).fill(3));
    const services = builtinWiring.genesis(gatewayKey, { dataDir: tempDir(), slotMs: 1000 });
    const keys = services.flatMap((s) => s.authorizedKeys.map(hex));
    expect(new Set(keys)).toEqual(new Set([hex(gatewayKey.publicKey)]));
    expect(keys).not.toContain(hex(devKey));
    expect(services.some((s) => s.name === "counter")).toBe(false);
  });
});
