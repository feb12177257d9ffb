/**
 * The genesis a user runs holds no development key and no test service: the services accept work
 * packages only from the keys given (the gateway's), never from a key anyone can derive.
 */
import { describe, expect, it } from "vitest";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { builtinServices } from "./genesis.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("the built-in genesis", () => {
  it("has the telemetry, energy-trading and wifi-billing services only, each authorized for the given keys and no other", () => {
    const gateway = keyPairFromSeed(new Uint8Array(32).fill(9)).publicKey;
    const services = builtinServices([gateway]);
    expect(services.map((s) => s.name)).toEqual(["telemetry", "energy-trading", "wifi-billing"]);
    for (const s of services) expect(s.authorizedKeys.map(hex)).toEqual([hex(gateway)]);
    expect(() => builtinServices([])).toThrow(/at least one key/);
  });
});
