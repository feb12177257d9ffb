/**
 * Generates bench-envelopes payloads and W_B-sized work packages of 1 KB signed envelopes.
 * Device keys are derived from public seeds (1,000 devices by default, reused round-robin), so
 * runs are reproducible. Signing ~13,500 envelopes with node:crypto takes well under a second,
 * so nothing is cached on disk.
 */
import { type ChainParams, tinyParams } from "../../node/chain/params.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { type Ed25519KeyPair, keyPairFromSeed, signEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { type BuiltPackage, buildWorkPackage, type PackageSpec, type WorkItemSpec } from "../../node/intake/builder.ts";
import { BODY_BYTES, ENVELOPE_BYTES, HEADER_BYTES, PUBLIC_KEY_BYTES, SERVICE_NAME, SIGNATURE_BYTES } from "../services/envelopes.ts";

export const ENVELOPES_MODULE_URL = new URL("../services/envelopes.ts", import.meta.url).href;
export const ENVELOPES_CODE_HASH = nativeCodeHash(SERVICE_NAME);
export const BENCH_SERVICE_ID = 100;
/** The key that signs bench packages (must be in the service's authorizedKeys at genesis). */
export const benchSubmitter = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-bench-submitter")));

export function deviceKeys(count = 1_000): Ed25519KeyPair[] {
  return Array.from({ length: count }, (_, i) => keyPairFromSeed(hash(new TextEncoder().encode(`jamgate-bench-device-${i}`))));
}

/** Fills `body` with a device reading: device u32, sequence u32, nonce u32, then xorshift filler. */
function fillBody(body: Uint8Array, device: number, sequence: number, nonce: number): void {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  view.setUint32(0, device, true);
  view.setUint32(4, sequence, true);
  view.setUint32(8, nonce, true);
  let x = (sequence * 2654435761) ^ (nonce * 40503) ^ 0x9e3779b9 || 1;
  for (let at = 12; at + 4 <= body.length; at += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(at, x >>> 0, true);
  }
}

/** Writes one signed envelope at `at` in `out`. */
export function writeEnvelope(out: Uint8Array, at: number, key: Ed25519KeyPair, device: number, sequence: number, nonce: number): void {
  const body = out.subarray(at + PUBLIC_KEY_BYTES + SIGNATURE_BYTES, at + ENVELOPE_BYTES);
  fillBody(body, device, sequence, nonce);
  out.set(key.publicKey, at);
  out.set(signEd25519(key, body), at + PUBLIC_KEY_BYTES);
}

/** A payload of `count` envelopes from `keys` round-robin; `outputBytes` = 0 for the compact digest. */
export function envelopePayload(keys: readonly Ed25519KeyPair[], count: number, outputBytes = 0, nonce = 0): Uint8Array {
  const payload = new Uint8Array(HEADER_BYTES + count * ENVELOPE_BYTES);
  new DataView(payload.buffer).setUint32(0, outputBytes, true);
  for (let i = 0; i < count; i++) writeEnvelope(payload, HEADER_BYTES + i * ENVELOPE_BYTES, keys[i % keys.length]!, i % keys.length, i, nonce);
  return payload;
}

/** A copy of `payload` with another output size and envelope 0 re-signed with `nonce` (a distinct payload hash). */
export function variant(payload: Uint8Array, keys: readonly Ed25519KeyPair[], nonce: number, outputBytes?: number): Uint8Array {
  const copy = payload.slice();
  if (outputBytes !== undefined) new DataView(copy.buffer).setUint32(0, outputBytes, true);
  if (copy.length >= HEADER_BYTES + ENVELOPE_BYTES) writeEnvelope(copy, HEADER_BYTES, keys[0]!, 0, 0, nonce);
  return copy;
}

export function envelopeItem(payload: Uint8Array, params: ChainParams = tinyParams, accumulateGasLimit = 1_000_000n): WorkItemSpec {
  return { serviceId: BENCH_SERVICE_ID, codeHash: ENVELOPES_CODE_HASH, payload, refineGasLimit: params.refineGasPerPackage, accumulateGasLimit };
}

const zeroAnchor = { headerHash: new Uint8Array(32), stateRoot: new Uint8Array(32), slot: 0 };

/**
 * The most envelopes one single-item package can hold within W_B (the bound on the encoded
 * package), and the package's encoded size at that count.
 */
export function maxEnvelopesPerPackage(params: ChainParams = tinyParams): { envelopes: number; packageBytes: number } {
  const build = (count: number) =>
    buildWorkPackage(params, {
      signer: benchSubmitter,
      anchor: zeroAnchor,
      items: [envelopeItem(new Uint8Array(HEADER_BYTES + count * ENVELOPE_BYTES), params)],
    }).bytes.length;
  const overhead = build(0) - HEADER_BYTES;
  // The payload's length prefix grows from 1 to 4 bytes at this size: allow for it, then check.
  let count = Math.floor((params.maxBundleBytes - overhead - HEADER_BYTES - 3) / ENVELOPE_BYTES);
  let size = build(count);
  while (size > params.maxBundleBytes) size = build(--count);
  return { envelopes: count, packageBytes: size };
}

export function envelopePackage(params: ChainParams, payload: Uint8Array, anchor: PackageSpec["anchor"] = zeroAnchor): BuiltPackage {
  return buildWorkPackage(params, { signer: benchSubmitter, anchor, items: [envelopeItem(payload, params)] });
}

export { BODY_BYTES, ENVELOPE_BYTES, HEADER_BYTES };
