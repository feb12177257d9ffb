/**
 * bench-envelopes: the benchmark service. A work item's payload is a 4-byte header followed by
 * 1 KB signed envelopes, as a fleet of IoT devices would send them:
 *
 *   payload  = outputBytes u32 LE ⌢ envelope*
 *   envelope = public key (32) ⌢ Ed25519 signature (64) over body ⌢ body (928)
 *
 * refine verifies every signature (context.verifyEd25519) and hashes every body (context.hash),
 * and outputs a digest: envelope count u32 LE, valid signatures u32 LE, H(H(body_0) ⌢ … ⌢ H(body_n)).
 * With outputBytes = 0 the output is that 40-byte digest; with outputBytes ≥ 40 it is the digest
 * followed by the body hashes (cycled) up to outputBytes, so a package can make a "full" report
 * (results totalling W_R = 49,152 bytes).
 *
 * accumulate writes each item's output into storage under key = payloadHash, and keeps running
 * totals (envelopes, valid signatures) under "totals": state work proportional to the report.
 *
 * Deterministic (no clock, no randomness) except for `accumulateProbe`, a bench-only timer that
 * records how long each accumulate call took; it never affects outputs or state.
 */
import type { AccumulateHost, AccumulateItem, RefineContext, ServiceModule } from "../../node/service-api/index.ts";

export const SERVICE_NAME = "bench-envelopes";
export const HEADER_BYTES = 4;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const BODY_BYTES = 928;
export const ENVELOPE_BYTES = PUBLIC_KEY_BYTES + SIGNATURE_BYTES + BODY_BYTES; // 1,024
export const DIGEST_BYTES = 4 + 4 + 32;
export const TOTALS_KEY = new TextEncoder().encode("totals");

/** Bench-only: wall time of each accumulate call in this thread (ms). Read by bench/block.ts. */
export const accumulateProbe: { ms: number[]; items: number[] } = { ms: [], items: [] };

export function refine(payload: Uint8Array, context: RefineContext): Uint8Array {
  if (payload.length < HEADER_BYTES || (payload.length - HEADER_BYTES) % ENVELOPE_BYTES !== 0) {
    throw new Error(`payload of ${payload.length} bytes is not a 4-byte header and whole 1 KB envelopes`);
  }
  const outputBytes = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
  if (outputBytes !== 0 && outputBytes < DIGEST_BYTES) throw new Error(`output size ${outputBytes} is below the ${DIGEST_BYTES}-byte digest`);
  const count = (payload.length - HEADER_BYTES) / ENVELOPE_BYTES;
  const bodyHashes = new Uint8Array(count * 32);
  let valid = 0;
  for (let i = 0, at = HEADER_BYTES; i < count; i++, at += ENVELOPE_BYTES) {
    const publicKey = payload.subarray(at, at + PUBLIC_KEY_BYTES);
    const signature = payload.subarray(at + PUBLIC_KEY_BYTES, at + PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
    const body = payload.subarray(at + PUBLIC_KEY_BYTES + SIGNATURE_BYTES, at + ENVELOPE_BYTES);
    if (context.verifyEd25519(publicKey, body, signature)) valid++;
    bodyHashes.set(context.hash(body), i * 32);
  }
  const digest = new Uint8Array(DIGEST_BYTES);
  const view = new DataView(digest.buffer);
  view.setUint32(0, count, true);
  view.setUint32(4, valid, true);
  digest.set(context.hash(bodyHashes), 8);
  if (outputBytes === 0) return digest;

  const output = new Uint8Array(outputBytes);
  output.set(digest, 0);
  if (bodyHashes.length > 0) {
    for (let at = DIGEST_BYTES; at < outputBytes; at += bodyHashes.length) {
      output.set(bodyHashes.subarray(0, Math.min(bodyHashes.length, outputBytes - at)), at);
    }
  }
  return output;
}

function readU64(bytes: Uint8Array | null, offset: number): bigint {
  return bytes === null ? 0n : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);
}

export function accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void {
  const started = performance.now();
  const totals = host.read(TOTALS_KEY);
  let envelopes = readU64(totals, 0);
  let valid = readU64(totals, 8);
  for (const item of items) {
    if (item.kind !== "result") continue;
    if (item.output.length >= DIGEST_BYTES) {
      const view = new DataView(item.output.buffer, item.output.byteOffset, item.output.byteLength);
      envelopes += BigInt(view.getUint32(0, true));
      valid += BigInt(view.getUint32(4, true));
    }
    host.write(item.payloadHash, item.output);
  }
  const next = new Uint8Array(16);
  const view = new DataView(next.buffer);
  view.setBigUint64(0, envelopes, true);
  view.setBigUint64(8, valid, true);
  host.write(TOTALS_KEY, next);
  accumulateProbe.ms.push(performance.now() - started);
  accumulateProbe.items.push(items.length);
}

const service: ServiceModule = { name: SERVICE_NAME, refine, accumulate };
export default service;
