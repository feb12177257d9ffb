/**
 * Acceptance of one MQTT publish: the checks an envelope passes before the gateway writes it to
 * its durable log and PUBACKs it. Every refusal is a coded error (docs/errors.md) told to the
 * device on its error topic; a refused envelope changes nothing.
 */
import { createPublicKey, type KeyObject, verify } from "node:crypto";
import { decodeEnvelope, type Envelope, signingBytes } from "../devices/envelope.ts";
import type { ErrorCode } from "../node/errors.ts";
import { judgeSeq, type SeqWindow } from "./window.ts";

/** How far ahead of the gateway's clock an envelope's time may be: clocks drift, devices batch. */
export const FUTURE_TOLERANCE_MS = 5 * 60 * 1000;

const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** What acceptance needs to know of a registered device. */
export interface KnownDevice {
  readonly deviceId: string;
  readonly publicKey: Uint8Array;
  /** node:crypto key, built once per device (verification is the hot path: ~9,000/s per core). */
  readonly keyObject: KeyObject;
}

export function knownDevice(deviceId: string, publicKey: Uint8Array): KnownDevice {
  return { deviceId, publicKey, keyObject: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: "der", type: "spki" }) };
}

export type Acceptance =
  | { readonly ok: true; readonly envelope: Envelope }
  | { readonly ok: false; readonly code: ErrorCode; readonly detail: string; readonly seq: number | null };

/**
 * Judges `payload` published by device `device` on its topic for `topicKind`. Does not change
 * the window: the caller accepts the seq once it decides to log the envelope.
 */
export function judgeEnvelope(device: KnownDevice, topicKind: string, payload: Uint8Array, window: SeqWindow, nowMs: number): Acceptance {
  const decoded = decodeEnvelope(payload);
  if (!decoded.ok) return { ok: false, code: decoded.error.code, detail: decoded.error.detail, seq: null };
  const e = decoded.envelope;
  if (e.device !== device.deviceId) return { ok: false, code: "JG_ERR_ENVELOPE_DEVICE", detail: `envelope of ${e.device} sent by ${device.deviceId}`, seq: e.seq };
  if (e.kind !== topicKind) return { ok: false, code: "JG_ERR_ENVELOPE_DEVICE", detail: `envelope kind ${e.kind} published on the ${topicKind} topic`, seq: e.seq };
  if (e.timeMs > nowMs + FUTURE_TOLERANCE_MS) return { ok: false, code: "JG_ERR_ENVELOPE_FUTURE", detail: `time ${e.timeMs} is ${e.timeMs - nowMs} ms ahead`, seq: e.seq };
  if (!verify(null, signingBytes(e), device.keyObject, e.signature)) return { ok: false, code: "JG_ERR_ENVELOPE_SIGNATURE", detail: "signature does not verify", seq: e.seq };
  switch (judgeSeq(window, e.seq)) {
    case "new":
      return { ok: true, envelope: e };
    case "replay":
      return { ok: false, code: "JG_ERR_ENVELOPE_REPLAY", detail: `seq ${e.seq} was already accepted`, seq: e.seq };
    case "too-old":
      return { ok: false, code: "JG_ERR_ENVELOPE_SEQ", detail: `seq ${e.seq} is more than 64 below the highest, ${window.highest}`, seq: e.seq };
    case "too-far-ahead":
      return { ok: false, code: "JG_ERR_ENVELOPE_SEQ", detail: `seq ${e.seq} jumps too far past ${window.highest}`, seq: e.seq };
  }
}
