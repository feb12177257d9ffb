/**
 * Work-item payloads, gateway → service: what the gateway submits and refine reads. Binary,
 * little-endian, one canonical form each, with encoders (for the gateway) beside the decoders
 * (for refine). Decoders never throw; refine turns their errors into a failed item, because a
 * malformed payload is a gateway bug, not a device's fault.
 *
 * | byte 0 | rest |
 * |---|---|
 * | 0 envelopes | u32 count, then count × (publicKey 32 ⌢ u32 len ⌢ signingBytes len ⌢ signature 64) |
 * | 1 registrations | u32 count, then count × (publicKey 32 ⌢ u8 device kind) |
 *
 * Envelope records are sorted by (device id, seq), strictly: the device id as its 16 bytes
 * (the same order as its lowercase hex), then seq as an unsigned integer.
 */
import { fail, Reader, type Result, Writer } from "../common/bytes.ts";
import { d, type Descriptor } from "../common/codec.ts";
import { decodeRegistrations, encodeRegistrations, registrationsItemCodec } from "../common/registration.ts";
import {
  ED25519_PUBLIC_KEY_BYTES,
  type EnvelopeItemBounds,
  type EnvelopeRecord,
  type EnvelopeRecordView,
  envelopeRecordsBytes,
  readEnvelopeRecords,
  sortEnvelopeRecords,
  ItemKind,
  W_B,
  writeEnvelopeRecords,
} from "../common/envelope.ts";
import { DEVICE_KINDS, type DeviceKind } from "../../devices/protocol/device-kinds.ts";

export {
  DEVICE_ID_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  ENVELOPE_DOMAIN,
  ENVELOPE_VERSION,
  compareDeviceSeq,
  type EnvelopeRecord,
  envelopeRecordBytes,
  type EnvelopeRecordView,
  parseSigningBytes,
  type RawDeviceId,
  type SignedFields,
  SIGNING_BYTES_MAX,
  tryAsRawDeviceId,
  W_B,
  W_R,
} from "../common/envelope.ts";

/** Largest item payload: W_B less 4 KiB for the package's other fields (authorization, context, item headers). */
export const ITEM_PAYLOAD_BYTES_MAX = W_B - 4_096;
/**
 * Envelope records per item: at ~53,000 refine gas each (an Ed25519 verification is 51,000,
 * gasSchedule), 16,384 of the smallest envelopes use 0.87e9 of G_R = 1e9 (tiny chain).
 */
export const ENVELOPES_PER_ITEM_MAX = 16_384;
/** Distinct devices per envelopes item: 1,024 devices at 32 output bytes each (one run of seqs) use 32 KiB of W_R. */
export const ENVELOPE_DEVICES_PER_ITEM_MAX = 1_024;
/**
 * Registrations per item, and so per package (the gateway submits one registrations item a package):
 * what refine's output fits in W_R = 49,152 bytes, the bound of a package's report. Refine
 * hands each registration on as its key and device kind, 33 bytes (output.ts, the keys output),
 * after a 3-byte header: (49,152 − 3) / 33 = 1,489. Neither the payload (33 bytes each: 49 KB of
 * W_B's 13.8 MB) nor gas (accumulate.ts: ~3,300 each, 4.9e6 of G_A = 1e7) binds before it. Was
 * 512 while refine's output carried each device id as well (49 bytes each), which still decodes.
 */
export const REGISTRATIONS_PER_ITEM_MAX = 1_489;

export { ItemKind };

/** Device kinds, by code: the code is the index (devices/protocol/device-kinds.ts, which only grows at the end). */
export { DEVICE_KINDS };
export type DeviceKindName = DeviceKind;
export type DeviceKindCode = 0 | 1 | 2 | 3 | 4;

export function deviceKindCode(name: DeviceKindName): DeviceKindCode {
  const code = DEVICE_KINDS.indexOf(name);
  if (code < 0) throw new Error(`unknown device kind ${String(name)}`);
  return code as DeviceKindCode;
}

export function isDeviceKindCode(code: number): code is DeviceKindCode {
  return Number.isInteger(code) && code >= 0 && code < DEVICE_KINDS.length;
}

// ---------------------------------------------------------------------------------------------
// Envelopes item.

/** Item kind byte and record count. */
export const ITEM_HEADER_BYTES = 1 + 4;

const BOUNDS: EnvelopeItemBounds = { envelopesMax: ENVELOPES_PER_ITEM_MAX, devicesMax: ENVELOPE_DEVICES_PER_ITEM_MAX, payloadBytesMax: ITEM_PAYLOAD_BYTES_MAX };

/**
 * The envelopes item for these records, sorted by (device id, seq). Throws (a gateway bug) on a
 * malformed signed layout, a repeated (device, seq), or a bound exceeded: the caller batches
 * within ENVELOPES_PER_ITEM_MAX, ENVELOPE_DEVICES_PER_ITEM_MAX and ITEM_PAYLOAD_BYTES_MAX.
 * Written into the start of `into` when it has room (a view of it is returned), else a new buffer.
 */
export function encodeEnvelopesItem(records: readonly EnvelopeRecord[], into?: Uint8Array): Uint8Array {
  const sorted = sortEnvelopeRecords(records, BOUNDS, 1);
  const w = new Writer(1 + envelopeRecordsBytes(sorted), into).u8(ItemKind.envelopes);
  writeEnvelopeRecords(w, sorted);
  return w.finish();
}

/** Decodes an envelopes item (kind byte included) and checks its order and bounds; never throws. */
export function decodeEnvelopesItem(payload: Uint8Array): Result<EnvelopeRecordView[]> {
  if (payload.length > ITEM_PAYLOAD_BYTES_MAX) return fail(`payload of ${payload.length} bytes > ITEM_PAYLOAD_BYTES_MAX = ${ITEM_PAYLOAD_BYTES_MAX}`);
  const r = new Reader(payload);
  if (r.u8() !== ItemKind.envelopes) return fail("not an envelopes item");
  const records = readEnvelopeRecords(r, BOUNDS);
  if (records.ok && !r.done) return fail(`${r.remaining} bytes after the last envelope`);
  return records;
}

// ---------------------------------------------------------------------------------------------
// Registrations item.

export interface RegistrationRecord {
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKindCode;
}

/** publicKey 32 ⌢ u8 device kind. */
const registrationRecordCodec: Descriptor<RegistrationRecord> = d.object({
  publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
  kind: d.checked(d.u8 as Descriptor<DeviceKindCode>, (kind) => (isDeviceKindCode(kind) ? null : `unknown device kind code ${kind}`), "device kind"),
});
const registrationsItem = registrationsItemCodec(registrationRecordCodec, REGISTRATIONS_PER_ITEM_MAX);

export const REGISTRATION_RECORD_BYTES = registrationRecordCodec.fixedBytes!;

/** The registrations item for these records, in the order given (the first of two for one key wins). */
export function encodeRegistrationsItem(records: readonly { readonly publicKey: Uint8Array; readonly kind: DeviceKindName | DeviceKindCode }[]): Uint8Array {
  return encodeRegistrations(
    registrationsItem,
    records.map((record) => ({ publicKey: record.publicKey, kind: typeof record.kind === "number" ? record.kind : deviceKindCode(record.kind) })),
  );
}

/** Decodes a registrations item (kind byte included); never throws. */
export function decodeRegistrationsItem(payload: Uint8Array): Result<RegistrationRecord[]> {
  return decodeRegistrations(registrationsItem, payload);
}
