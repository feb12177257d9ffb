/**
 * The embedded node's one authorizer (GP 8 "Authorization", simplified). A real JAM core runs
 * the package's is-authorized code (identified by `authCodeHash`) on `authToken` and
 * `authConfiguration`. Here that code is native and fixed: the configuration is an Ed25519
 * public key, the token is that key's signature over `$jamgate_auth_ed25519 ⌢ H(E(p'))`, where
 * p' is the package with an empty token, and the key must be in the state's authorizer pool for
 * every service the package names.
 */
import { WorkPackage } from "@typeberry/lib/block";
import { BytesBlob } from "@typeberry/lib/bytes";
import type { ChainParams } from "../chain/params.ts";
import { encode } from "../codec/jam.ts";
import { JAMGATE_AUTH, withContext } from "../crypto/contexts.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519 } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";

/** `authCodeHash` naming the Ed25519 authorizer: H("jamgate-native-authorizer:ed25519"). */
export const ED25519_AUTHORIZER_CODE_HASH = hash(new TextEncoder().encode("jamgate-native-authorizer:ed25519"));
/** The service hosting the authorizer code; a real network needs one, the node only checks it is this. */
export const AUTHORIZER_HOST_SERVICE = 0;

function unsignedDigest(params: ChainParams, p: WorkPackage): Uint8Array {
  const unsigned = WorkPackage.create({ ...p, authToken: BytesBlob.empty() });
  return withContext(JAMGATE_AUTH, hash(encode(WorkPackage.Codec, unsigned, params.spec)));
}

/** The token for `p` (whose authConfiguration must already be the signer's public key). */
export function authorizationToken(params: ChainParams, p: WorkPackage, signer: Ed25519KeyPair): Uint8Array {
  return signEd25519(signer, unsignedDigest(params, p));
}

/** True when the token is the configured key's signature of the package. */
export function verifyAuthorization(params: ChainParams, p: WorkPackage): boolean {
  return verifyEd25519(p.authConfiguration.raw, unsignedDigest(params, p), p.authToken.raw);
}

/** GP 14.3 authorizer hash a = H(u ⌢ f): code hash, then configuration. */
export function authorizerHash(p: WorkPackage): Uint8Array {
  return hash(Buffer.concat([p.authCodeHash.raw, p.authConfiguration.raw]));
}
