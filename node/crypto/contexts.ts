/**
 * Signing contexts (GP Appendix I.4.5 "Signing Contexts"): ASCII prefixes that keep a signature
 * made for one purpose from being valid for another.
 */
const ascii = (s: string) => new TextEncoder().encode(s);

/** X_G, `$jam_guarantee`: guarantor signature over H(E(report)) (GP 11.4). */
export const JAM_GUARANTEE = ascii("jam_guarantee");
/** X_A, `$jam_available`: assurer signature over H(E(anchor, bitfield)) (GP 11.2). */
export const JAM_AVAILABLE = ascii("jam_available");
/**
 * Not in the Gray Paper: the embedded node seals blocks with Ed25519 instead of a Bandersnatch
 * ticket/fallback seal (Safrole is out of scope), over H(E_U(header)).
 */
export const JAMGATE_SEAL = ascii("jamgate_seal_ed25519");
/** Not in the Gray Paper: the simple authorizer's token, an Ed25519 signature over H(package without token). */
export const JAMGATE_AUTH = ascii("jamgate_auth_ed25519");

export function withContext(context: Uint8Array, message: Uint8Array): Uint8Array {
  const out = new Uint8Array(context.length + message.length);
  out.set(context, 0);
  out.set(message, context.length);
  return out;
}
