/**
 * Acceptance of one MQTT publish: the checks an envelope passes before the gateway writes it to
 * its durable log and PUBACKs it. Every refusal is a coded error (docs/errors.md) told to the
 * device on its error topic; a refused envelope changes nothing.
 *
 * The Ed25519 signature is not checked here by default: the service's refine checks every
 * envelope's signature before anything is credited, in parallel on the cores, and refuses a bad
 * one with JG_ERR_ENVELOPE_SIGNATURE, which reaches the device on its error topic after
 * settlement. Checking it here too cost the main thread ~137 µs per envelope (7,305/s on one
 * core), 40–42% of its busy time at an offered 5,000/s (measured: `node --import tsx
 * bench/gateway.ts --rate 5000 --cpu-prof DIR`, BENCHMARKS.md §5.2). A device is authenticated
 * at CONNECT by its signed token, so what it publishes unsigned costs only its own rate and seqs.
 * `verifySignature` restores the check before PUBACK (gateway/README.md, "Signatures").
 */
import { decodeEnvelope, type Envelope, type SigningBytesWriter, signingBytes, signingBytesWriter } from "../devices/envelope.ts";
import { verifyEd25519 } from "../node/crypto/ed25519.ts";
import type { ErrorCode } from "../devices/protocol/errors.ts";
import { judgeSeq, type SeqWindow } from "./window.ts";

/** How far ahead of the gateway's clock an envelope's time may be: clocks drift, devices batch. */
export const FUTURE_TOLERANCE_MS = 5 * 60 * 1000;

/** What acceptance needs to know of a registered device. */
export interface KnownDevice {
  readonly deviceId: string;
  /** Its Ed25519 key: checked with the node's verifier (libsodium), as refine checks it, for the token at CONNECT and the opt-in envelope check. */
  readonly publicKey: Uint8Array;
}

export function knownDevice(deviceId: string, publicKey: Uint8Array): KnownDevice {
  return { deviceId, publicKey };
}

export type Acceptance =
  | {
      readonly ok: true;
      readonly envelope: Envelope;
      /**
       * The envelope's signed bytes (devices/envelope.ts `signingBytes`): what its work item
       * carries. Built here only if the signature was checked; else a writer, so the log writes
       * them straight into the envelope's record (one buffer per envelope, not two).
       */
      readonly signingBytes: Uint8Array | SigningBytesWriter;
      /** The signature was verified here (it verified). */
      readonly signatureVerified: boolean;
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly detail: string; readonly seq: number | null };

export interface AcceptanceOptions {
  /**
   * Verify the Ed25519 signature before PUBACK too: always (true), never (false, the default:
   * refine verifies it before anything is credited), or for the seqs a function picks (the gateway
   * picks those that would move the device's window past what it knows was signed).
   */
  readonly verifySignature?: boolean | ((seq: number) => boolean);
}

/**
 * Judges `payload` published by device `device` on its topic for `topicKind`. Does not change
 * the window: the caller accepts the seq once it decides to log the envelope.
 */
export function judgeEnvelope(
  device: KnownDevice,
  topicKind: string,
  payload: Uint8Array,
  window: SeqWindow,
  nowMs: number,
  options: AcceptanceOptions = {},
): Acceptance {
  const decoded = decodeEnvelope(payload);
  if (!decoded.ok) return { ok: false, code: decoded.error.code, detail: decoded.error.detail, seq: decoded.error.seq };
  const e = decoded.envelope;
  if (e.device !== device.deviceId)
    return { ok: false, code: "JG_ERR_ENVELOPE_DEVICE", detail: `envelope of ${e.device} sent by ${device.deviceId}`, seq: e.seq };
  if (e.kind !== topicKind)
    return { ok: false, code: "JG_ERR_ENVELOPE_DEVICE", detail: `envelope kind ${e.kind} published on the ${topicKind} topic`, seq: e.seq };
  if (e.timeMs > nowMs + FUTURE_TOLERANCE_MS)
    return { ok: false, code: "JG_ERR_ENVELOPE_FUTURE", detail: `time ${e.timeMs} is ${e.timeMs - nowMs} ms ahead`, seq: e.seq };
  let signed: Uint8Array | null = null;
  const verify = typeof options.verifySignature === "function" ? options.verifySignature(e.seq) : options.verifySignature === true;
  if (verify) {
    signed = signingBytes(e);
    if (!verifyEd25519(device.publicKey, signed, e.signature))
      return { ok: false, code: "JG_ERR_ENVELOPE_SIGNATURE", detail: "signature does not verify", seq: e.seq };
  }
  switch (judgeSeq(window, e.seq)) {
    case "new":
      return { ok: true, envelope: e, signingBytes: signed ?? signingBytesWriter(e), signatureVerified: signed !== null };
    case "replay":
      return { ok: false, code: "JG_ERR_ENVELOPE_REPLAY", detail: `seq ${e.seq} was already accepted`, seq: e.seq };
    case "too-old":
      return { ok: false, code: "JG_ERR_ENVELOPE_SEQ", detail: `seq ${e.seq} is more than 64 below the highest, ${window.highest}`, seq: e.seq };
    case "too-far-ahead":
      return { ok: false, code: "JG_ERR_ENVELOPE_SEQ", detail: `seq ${e.seq} jumps too far past ${window.highest}`, seq: e.seq };
  }
}
