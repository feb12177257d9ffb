/**
 * The built-in genesis of `jamgate node start`: the counter test service (id 1), authorized for
 * the devnet submitter key. That key is derived from a public seed, like the validators' dev
 * keys: anyone can sign with it, which is what a local devnet wants and a real network must not.
 */
import { nativeCodeHash, type GenesisService } from "../node/chain/genesis.ts";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";

export const DEV_SUBMITTER_KEY = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-dev-submitter")));

export const COUNTER_SERVICE = {
  id: 1,
  name: "counter",
  codeHash: nativeCodeHash("counter"),
  moduleUrl: new URL("../services/counter/service.ts", import.meta.url).href,
};

export const TELEMETRY_SERVICE = {
  id: 2,
  name: "telemetry",
  moduleUrl: new URL("../services/telemetry/service.ts", import.meta.url).href,
};

/**
 * Genesis of `jamgate node start` and `jamgate start`: the counter and the telemetry service.
 * `gatewayKey` is the key the gateway submits envelopes and registrations with; `node start`
 * alone authorizes the dev submitter key instead.
 */
export function builtinServices(gatewayKey: Uint8Array = DEV_SUBMITTER_KEY.publicKey): GenesisService[] {
  return [
    { id: COUNTER_SERVICE.id, name: COUNTER_SERVICE.name, moduleUrl: COUNTER_SERVICE.moduleUrl, balance: 1_000_000_000n, authorizedKeys: [DEV_SUBMITTER_KEY.publicKey] },
    { id: TELEMETRY_SERVICE.id, name: TELEMETRY_SERVICE.name, moduleUrl: TELEMETRY_SERVICE.moduleUrl, balance: 1_000_000_000n, authorizedKeys: [gatewayKey] },
  ];
}
