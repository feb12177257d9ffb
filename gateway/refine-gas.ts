/**
 * The refine gas the gateway declares for its work items: what the ingest services' refine will
 * be charged, on the node's schedule (node/service-api/gas.ts), plus a margin. The node bounds a
 * refine's wall-clock time by the gas its items declare (node/guarantor/refine-pool.ts), so a
 * declaration of all of G_R for every package, as before, let a package of 50 envelopes hold a
 * refine thread as long as one of 12,000.
 *
 * What refine is charged for an envelopes item (services/telemetry/refine.ts and
 * services/energy-trading/refine.ts through node/refine/refine.ts's host; the same for both):
 * - the payload handed over: one host call + 1 per byte;
 * - per envelope, its signature verified: one host call + 50,000 + 1 per signed byte;
 * - per accepted envelope, its body hashed: one host call + 1 per body byte;
 * - per device, its public key hashed (records of a device are adjacent and share its key): one host call + 32;
 * - once, the commitment: one host call + 56 per accepted envelope (device id 16, seq 8, body hash 32).
 * Every signed byte and body byte is a byte of the payload, so they add at most 2 per payload byte.
 */
import { gasSchedule } from "../node/service-api/gas.ts";

/** Bytes hashed per device: its Ed25519 public key (the device id is its hash's first 16 bytes). */
const PUBLIC_KEY_BYTES = 32n;
/** Bytes of an envelope's leaf in the commitment refine hashes: device id 16, seq 8, H(body) 32. */
const COMMITMENT_LEAF_BYTES = 56n;

/**
 * Margin over the charges above, in quarters: 5/4 of them. Those charges are an upper bound of
 * today's refines (measured with bench/refine-gas.ts's packages: telemetry, 12,000 envelopes of
 * 497-byte bodies, charged 646.9 M, bound 650.4 M; energy, 3,072 envelopes of 60 readings, 194.5 M
 * against 195.3 M), so the margin is for refine's code changing before the gateway's
 * does: an item short of gas fails its whole package (JG_ERR_REFINE_OUT_OF_GAS). It costs the
 * node's watchdog a quarter more time on a refine that spins, nothing else.
 */
const MARGIN_QUARTERS = 5n;

function withMargin(gas: bigint, shareMax: bigint): bigint {
  const declared = (gas * MARGIN_QUARTERS + 3n) / 4n;
  return declared < shareMax ? declared : shareMax;
}

/**
 * Refine gas for an envelopes item of `envelopes` envelopes from `devices` devices in
 * `payloadBytes`, with the margin, and at most `shareMax` (the item's share of G_R: intake refuses
 * a package whose items' gas adds up to more).
 */
export function envelopesRefineGas(item: { readonly payloadBytes: number; readonly envelopes: number; readonly devices: number }, shareMax: bigint): bigint {
  const s = gasSchedule;
  const charged =
    2n * s.hostCallBase +
    BigInt(item.payloadBytes) * (s.perPayloadByte + 2n * s.perByteHashed) +
    BigInt(item.envelopes) * (2n * s.hostCallBase + s.perSignatureVerified + COMMITMENT_LEAF_BYTES * s.perByteHashed) +
    BigInt(item.devices) * (s.hostCallBase + PUBLIC_KEY_BYTES * s.perByteHashed);
  return withMargin(charged, shareMax);
}

/**
 * Refine gas for a registrations item of `registrations` in `payloadBytes`, with the margin, at
 * most `shareMax`: the payload handed over, and each registration's public key hashed into its
 * device id (energy-trading's refine; telemetry's hands the keys on: registrationKeysRefineGas).
 */
export function registrationsRefineGas(item: { readonly payloadBytes: number; readonly registrations: number }, shareMax: bigint): bigint {
  const s = gasSchedule;
  const charged =
    s.hostCallBase + BigInt(item.payloadBytes) * s.perPayloadByte + BigInt(item.registrations) * (s.hostCallBase + PUBLIC_KEY_BYTES * s.perByteHashed);
  return withMargin(charged, shareMax);
}

/**
 * Refine gas for a registrations item whose refine hashes nothing (telemetry's: it hands each key
 * and kind on and accumulate derives the ids), with the margin, at most `shareMax`: the payload
 * handed over.
 */
export function registrationKeysRefineGas(item: { readonly payloadBytes: number; readonly registrations: number }, shareMax: bigint): bigint {
  const s = gasSchedule;
  return withMargin(s.hostCallBase + BigInt(item.payloadBytes) * s.perPayloadByte, shareMax);
}
