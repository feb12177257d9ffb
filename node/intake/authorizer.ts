/**
 * The embedded node's one authorizer (GP 8 "Authorization", simplified). A real JAM core runs
 * the package's is-authorized code (identified by `authCodeHash`) on `authToken` and
 * `authConfiguration`. Here that code is native and fixed: the configuration is an Ed25519
 * public key, the token is that key's signature over `$jamgate_auth_ed25519 ⌢ H(E(p'))`, where
 * p' is the package with an empty token, and the key must be in the state's authorizer pool for
 * every service the package names.
 */
import { RefineContext, type WorkPackage } from "@typeberry/lib/block";
import type { ChainParams } from "../chain/params.ts";
import { bytesEqual, encode } from "../codec/jam.ts";
import { JAMGATE_AUTH, withContext } from "../crypto/contexts.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519 } from "../crypto/ed25519.ts";
import { hash, hashParts } from "../crypto/hash.ts";

/** `authCodeHash` naming the Ed25519 authorizer: H("jamgate-native-authorizer:ed25519"). */
export const ED25519_AUTHORIZER_CODE_HASH = hash(new TextEncoder().encode("jamgate-native-authorizer:ed25519"));
/** Octets of an Ed25519 signature: the token's length (< 128, so its length prefix is one octet). */
export const ED25519_SIGNATURE_BYTES = 64;
/** The service hosting the authorizer code; a real network needs one, the node only checks it is this. */
export const AUTHORIZER_HOST_SERVICE = 0;

/**
 * Where the token sits in E(p). typeberry's WorkPackage.Codec (GP 0.7.2 C.28) encodes
 * E4(h) ⌢ u ⌢ E(c) ⌢ ↕j ⌢ ↕f ⌢ ↕w: the token j follows the context, and E(p') (p' = p with an
 * empty token) is E(p) with ↕j replaced by one zero octet. Splicing the bytes gives the digest
 * without encoding a 13 MB package again (that encode and its copies were most of intake's time).
 */
export function tokenSpan(params: ChainParams, p: WorkPackage): { readonly start: number; readonly end: number } {
  const start = 4 + 32 + encode(RefineContext.Codec, p.context, params.spec).length;
  return { start, end: start + compactLength(p.authToken.length) + p.authToken.length };
}

/** Octets of GP's compact natural-number encoding (C.1) of n: l + 1 where 2^(7l) ≤ n < 2^(7(l+1)), up to l = 8. */
export function compactLength(n: number): number {
  let l = 0;
  while (l < 8 && n >= 2 ** (7 * (l + 1))) l++;
  return l + 1;
}

const EMPTY_BLOB = new Uint8Array([0]);

/** The signed message: `$jamgate_auth_ed25519 ⌢ H(E(p'))`, from E(p) and the token's span in it. */
function unsignedDigest(bytes: Uint8Array, span: { readonly start: number; readonly end: number }): Uint8Array {
  return withContext(JAMGATE_AUTH, hashParts(bytes.subarray(0, span.start), EMPTY_BLOB, bytes.subarray(span.end)));
}

/**
 * Signs E(p) in place: `bytes` = E(p) for a package `p` whose authConfiguration is the signer's
 * public key and whose token is a placeholder of ED25519_SIGNATURE_BYTES; the token's bytes are
 * overwritten with the signature (the digest skips them, so their old value does not matter).
 * The package is built once, in its final buffer, instead of encoded and then copied with its
 * token spliced in.
 */
export function signPackageInPlace(params: ChainParams, p: WorkPackage, bytes: Uint8Array, signer: Ed25519KeyPair): void {
  const span = tokenSpan(params, p);
  if (
    p.authToken.length !== ED25519_SIGNATURE_BYTES ||
    bytes[span.start] !== ED25519_SIGNATURE_BYTES ||
    span.end !== span.start + 1 + ED25519_SIGNATURE_BYTES
  ) {
    throw new Error(`the package to sign needs a ${ED25519_SIGNATURE_BYTES}-byte placeholder token`);
  }
  bytes.set(signEd25519(signer, unsignedDigest(bytes, span)), span.start + 1);
}

/** True when the token of `p` (decoded from `bytes`) is the configured key's signature of the package. */
export function verifyAuthorization(params: ChainParams, p: WorkPackage, bytes: Uint8Array): boolean {
  const span = tokenSpan(params, p);
  const token = bytes.subarray(span.end - p.authToken.length, span.end);
  if (span.end > bytes.length || !bytesEqual(token, p.authToken.raw)) return false;
  return verifyEd25519(p.authConfiguration.raw, unsignedDigest(bytes, span), p.authToken.raw);
}

/** GP 14.3 authorizer hash a = H(u ⌢ f): code hash, then configuration. */
export function authorizerHash(p: WorkPackage): Uint8Array {
  return hash(Buffer.concat([p.authCodeHash.raw, p.authConfiguration.raw]));
}
