/** The part of sodium-native (libsodium bindings; the package has no types) that the node uses. */
declare module "sodium-native" {
  const sodium: {
    /** libsodium crypto_sign_verify_detached: whether `signature` is `publicKey`'s Ed25519 signature of `message`. Throws on wrong lengths. */
    crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  };
  export default sodium;
}
