/**
 * Work-item payloads of the energy-trading service, gateway → refine. Binary, little-endian, one
 * canonical form each; encoders (for the gateway) beside the decoders (for refine). Decoders never
 * throw; refine turns their errors into a failed item, because a malformed payload is a gateway
 * bug, not a device's fault.
 *
 * | byte 0 | rest |
 * |---|---|
 * | 0 envelopes | u64 marketStartMs ⌢ u32 intervalMs ⌢ envelope records (services/common/envelope.ts) |
 * | 1 registrations | u32 count ⌢ count × (publicKey 32 ⌢ u8 role ⌢ household 16) |
 *
 * The envelopes item names the market clock the gateway built it for, because refine (which
 * cannot read state) bins meter readings into market intervals; accumulate refuses an item whose
 * clock is not the service's (JG_ERR_ENERGY_CLOCK).
 */
import { fail, ok, Reader, type Result, Writer } from "../common/bytes.ts";
import { d, type Descriptor } from "../common/codec.ts";
import { decodeRegistrations, encodeRegistrations, registrationsItemCodec } from "../common/registration.ts";
import {
  DEVICE_ID_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  type EnvelopeItemBounds,
  type EnvelopeRecord,
  type EnvelopeRecordView,
  envelopeRecordsBytes,
  type RawDeviceId,
  rawDeviceIdCodec,
  readEnvelopeRecords,
  sortEnvelopeRecords,
  ItemKind,
  W_B,
  writeEnvelopeRecords,
} from "../common/envelope.ts";

export { ItemKind };

/** Largest item payload: W_B less 4 KiB for the package's other fields. */
export const ITEM_PAYLOAD_BYTES_MAX = W_B - 4_096;
/** Envelopes per item: refine verifies each (~51,000 gas); 16,384 stay within G_R = 1e9 (tiny chain), as in telemetry. */
export const ENVELOPES_PER_ITEM_MAX = 16_384;
/**
 * Devices per envelopes item: refine keeps ~60–120 bytes per meter (its first and last reading and
 * an energy pair per interval touched) and ~30 per agent order; 256 devices stay well inside
 * W_R = 49,152 with room for refusals.
 */
export const ENVELOPE_DEVICES_PER_ITEM_MAX = 256;
/** Registrations per item: refine writes 66 bytes of output per registration; 640 × 66 = 42 KB < W_R. */
export const REGISTRATIONS_PER_ITEM_MAX = 640;

const BOUNDS: EnvelopeItemBounds = { envelopesMax: ENVELOPES_PER_ITEM_MAX, devicesMax: ENVELOPE_DEVICES_PER_ITEM_MAX, payloadBytesMax: ITEM_PAYLOAD_BYTES_MAX };

/** Kind byte, market start, interval length. */
export const ENVELOPES_HEADER_BYTES = 1 + 8 + 4;

/** The market clock an envelopes item was built for (a subset of the service's config). */
export interface ItemClock {
  readonly marketStartMs: bigint;
  readonly intervalMs: number;
}

export interface EnvelopesItem extends ItemClock {
  readonly records: EnvelopeRecordView[];
}

/**
 * The envelopes item for these records, sorted by (device id, seq). Throws (a gateway bug) on a
 * malformed signed layout, a repeated (device, seq), or a bound exceeded. Written into the start
 * of `into` when it has room (a view of it is returned), else a new buffer.
 */
export function encodeEnvelopesItem(clock: ItemClock, records: readonly EnvelopeRecord[], into?: Uint8Array): Uint8Array {
  if (clock.intervalMs <= 0 || !Number.isInteger(clock.intervalMs)) throw new Error(`market interval of ${clock.intervalMs} ms`);
  const sorted = sortEnvelopeRecords(records, BOUNDS, ENVELOPES_HEADER_BYTES);
  const w = new Writer(ENVELOPES_HEADER_BYTES + envelopeRecordsBytes(sorted), into).u8(ItemKind.envelopes).u64(clock.marketStartMs).u32(clock.intervalMs);
  writeEnvelopeRecords(w, sorted);
  return w.finish();
}

/** Decodes an envelopes item (kind byte included) and checks its order and bounds; never throws. */
export function decodeEnvelopesItem(payload: Uint8Array): Result<EnvelopesItem> {
  if (payload.length > ITEM_PAYLOAD_BYTES_MAX) return fail(`payload of ${payload.length} bytes > ITEM_PAYLOAD_BYTES_MAX = ${ITEM_PAYLOAD_BYTES_MAX}`);
  const r = new Reader(payload);
  if (r.u8() !== ItemKind.envelopes) return fail("not an envelopes item");
  const marketStartMs = r.u64();
  const intervalMs = r.u32();
  if (r.failed) return fail("envelopes item header truncated");
  if (intervalMs === 0) return fail("market interval of 0 ms");
  const records = readEnvelopeRecords(r, BOUNDS);
  if (!records.ok) return records;
  if (!r.done) return fail(`${r.remaining} bytes after the last envelope`);
  return ok({ marketStartMs, intervalMs, records: records.value });
}

// ---------------------------------------------------------------------------------------------
// Registrations item.

/** What a device is to the market: a household's meter, or the agent that trades for a household. */
export const DeviceRole = { meter: 0, agent: 1 } as const;
export type DeviceRole = (typeof DeviceRole)[keyof typeof DeviceRole];
export type DeviceRoleName = keyof typeof DeviceRole;

export function isDeviceRole(value: number): value is DeviceRole {
  return value === DeviceRole.meter || value === DeviceRole.agent;
}

export interface RegistrationRecord {
  readonly publicKey: Uint8Array;
  readonly role: DeviceRole;
  /** The household an agent trades for: its meter's device id. Zero bytes for a meter (a meter is its household). */
  readonly household: RawDeviceId;
}

const NO_HOUSEHOLD = new Uint8Array(DEVICE_ID_BYTES) as RawDeviceId;

/** publicKey 32 ⌢ u8 role ⌢ household 16 (zeros for a meter). */
const registrationRecordCodec: Descriptor<RegistrationRecord> = d.object({
  publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
  role: d.oneOf([DeviceRole.meter, DeviceRole.agent], "role"),
  household: rawDeviceIdCodec,
});
const registrationsItem = registrationsItemCodec(registrationRecordCodec, REGISTRATIONS_PER_ITEM_MAX);

export const REGISTRATION_RECORD_BYTES = registrationRecordCodec.fixedBytes!;

/** The registrations item for these records, in the order given. Throws on a caller bug. */
export function encodeRegistrationsItem(
  records: readonly { readonly publicKey: Uint8Array; readonly role: DeviceRole | DeviceRoleName; readonly household?: Uint8Array | null }[],
): Uint8Array {
  return encodeRegistrations(
    registrationsItem,
    records.map((record, index) => {
      const role = typeof record.role === "number" ? record.role : DeviceRole[record.role];
      if (role === DeviceRole.agent && record.household == null) throw new Error(`registration ${index}: an agent needs its household`);
      return { publicKey: record.publicKey, role, household: (role === DeviceRole.meter ? NO_HOUSEHOLD : record.household!) as RawDeviceId };
    }),
  );
}

/** Decodes a registrations item (kind byte included); never throws. */
export function decodeRegistrationsItem(payload: Uint8Array): Result<RegistrationRecord[]> {
  return decodeRegistrations(registrationsItem, payload);
}
