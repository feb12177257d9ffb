/**
 * A RADIUS update as the router's signed `router.usage` envelope (services/wifi-billing/README.md): the body
 * from devices/wifi.ts without a voucher (router-attested), chained by `prev` to the session's
 * previous update, signed with the key the gateway holds for the router.
 */
import { ENVELOPE_VERSION, type EnvelopeFields, encodeEnvelope, signingBytes } from "../../devices/envelope.ts";
import { encodeUsageBody, voucherHash } from "../../devices/wifi.ts";
import { type Ed25519KeyPair, keyPairFromSeed, signEd25519 } from "../../node/crypto/ed25519.ts";
import { type AccountingUsage, octets64 } from "./packet.ts";
import type { RadiusRouter } from "./routers.ts";

/**
 * Each router's signing key, made once: node:crypto signs with a held key in ~0.15 ms, against
 * ~1.2 ms when the key is made from its seed for each signature and ~0.74 ms with @noble/ed25519
 * (devices/envelope.ts signEnvelope), measured here on 1,000 usage envelopes.
 */
const signers = new WeakMap<RadiusRouter, Ed25519KeyPair>();

/** The envelope's wire bytes, and the voucher hash of its update (the session's next `prev`). */
export function usageEnvelope(
  router: RadiusRouter,
  seq: number,
  timeMs: number,
  session: Uint8Array,
  usage: AccountingUsage,
  prev: Uint8Array,
): { readonly envelope: Uint8Array; readonly hash: Uint8Array } {
  const { status, inOctets, outOctets, inGigawords, outGigawords, seconds, cause } = usage;
  const body = encodeUsageBody({ session, client: usage.clientId, status, inOctets, outOctets, inGigawords, outGigawords, seconds, cause, prev });
  const hash = voucherHash({
    router: router.routerId,
    session,
    inputOctets: octets64(inOctets, inGigawords),
    outputOctets: octets64(outOctets, outGigawords),
    seconds,
    prev,
  });
  let signer = signers.get(router);
  if (signer === undefined) {
    signer = keyPairFromSeed(router.secretKey);
    signers.set(router, signer);
  }
  const fields: EnvelopeFields = { version: ENVELOPE_VERSION, device: router.routerId, seq, kind: "router.usage", timeMs, body };
  return { envelope: encodeEnvelope({ ...fields, signature: signEd25519(signer, signingBytes(fields)) }), hash };
}
