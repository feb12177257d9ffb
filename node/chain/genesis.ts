/**
 * Genesis: the devnet's initial state (GP 4.1 σ at slot 0): validators, services with their
 * balances and authorized submitter keys. Services are registered here with an id, the name
 * their code hash derives from, and the module that holds their native code.
 */
import type { ChainParams } from "./params.ts";
import { hash } from "../crypto/hash.ts";
import { StateComponents } from "../state/components.ts";
import { State } from "../state/kv.ts";

export interface GenesisService {
  readonly id: number;
  /** Code identity: the code hash is H("jamgate-native:" ⌢ name). */
  readonly name: string;
  /** URL of the module whose default export is the service (see node/service-api). */
  readonly moduleUrl: string;
  readonly balance: bigint;
  /** Ed25519 public keys allowed to submit packages naming this service. */
  readonly authorizedKeys: readonly Uint8Array[];
  /**
   * When set, the service is in χ_Z (GP 0.7.2 §9.4, "always-accumulate"): its accumulate runs in
   * every block, with this much gas, even with no work results (a market that clears on the
   * slot clock needs that).
   */
  readonly alwaysAccumulateGas?: bigint;
  /** Storage the service starts with (e.g. its configuration), as accumulate would have written it. */
  readonly storage?: readonly { readonly key: Uint8Array; readonly value: Uint8Array }[];
}

export function nativeCodeHash(name: string): Uint8Array {
  return hash(new TextEncoder().encode(`jamgate-native:${name}`));
}

export function genesisState(params: ChainParams, validatorKeys: readonly Uint8Array[], services: readonly GenesisService[]): State {
  const state = new State();
  const s = new StateComponents(state, params);
  s.setTimeslot(0);
  s.setValidatorKeys(validatorKeys);
  s.setPending(new Array(params.coresCount).fill(null));
  const ids = new Set<number>();
  for (const service of services) {
    if (ids.has(service.id)) throw new Error(`genesis lists service ${service.id} twice`);
    ids.add(service.id);
    s.createService(service.id, nativeCodeHash(service.name), service.balance, 0);
    for (const { key, value } of service.storage ?? []) s.storageSet(service.id, key, value);
  }
  const always = services
    .filter((service) => service.alwaysAccumulateGas !== undefined)
    .map((service) => ({ serviceId: service.id, gas: service.alwaysAccumulateGas! }));
  if (always.length > 0) s.setAlwaysAccumulate(always);
  s.setAuthorizers(services.flatMap((service) => service.authorizedKeys.map((publicKey) => ({ serviceId: service.id, publicKey }))));
  return state;
}
