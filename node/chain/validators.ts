/**
 * The devnet's validators: V in-process validators with Ed25519 keys derived from a public seed,
 * like other JAM devnets' well-known dev keys. They are not secret and must never guard value.
 */
import { type Ed25519KeyPair, keyPairFromSeed } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";

export function devValidatorKeys(count: number): Ed25519KeyPair[] {
  return Array.from({ length: count }, (_, index) => keyPairFromSeed(hash(new TextEncoder().encode(`jamgate-devnet-validator-${index}`))));
}
