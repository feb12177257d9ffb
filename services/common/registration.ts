/**
 * The registrations work item every service that registers devices shares (gateway → refine):
 *
 *   u8 1 (ItemKind.registrations) ⌢ u32 count ⌢ count × record
 *
 * where a record is the service's own fixed layout, starting with the device's Ed25519 public key
 * (telemetry: key ⌢ u8 device kind; energy-trading: key ⌢ u8 role ⌢ household 16). Refine names
 * each device by its key: its id is the first 16 bytes of H(public key) (docs/protocol.md,
 * "Identity"), so a registration cannot claim someone else's id.
 */
import type { RefineContext } from "../../node/service-api/index.ts";
import type { Result } from "./bytes.ts";
import { d, decode, type Descriptor, encode } from "./codec.ts";
import { DEVICE_ID_BYTES, ItemKind, type RawDeviceId } from "./envelope.ts";

/** The registrations item of `record`s, at most `max` of them (the service's REGISTRATIONS_PER_ITEM_MAX). */
export function registrationsItemCodec<R>(record: Descriptor<R>, max: number): Descriptor<R[]> {
  return d.map(
    d.object({
      kind: d.literal(ItemKind.registrations),
      records: d.array(record, "u32", max, `registrations (at most REGISTRATIONS_PER_ITEM_MAX = ${max})`),
    }),
    (item) => item.records,
    (records) => ({ kind: ItemKind.registrations, records }),
    "registrations item",
  );
}

/** The item's bytes; throws (a caller's bug) on a record outside its layout or more than the max. */
export function encodeRegistrations<R>(codec: Descriptor<R[]>, records: readonly R[]): Uint8Array {
  return encode(codec, records as R[]);
}

/** The item's records (kind byte included in `payload`); never throws. */
export function decodeRegistrations<R>(codec: Descriptor<R[]>, payload: Uint8Array): Result<R[]> {
  return decode(codec, payload);
}

/** The device id of a registration's key: the first 16 bytes of H(public key), hashed on the refine host (gas-charged there). */
export function deviceIdOfKey(host: Pick<RefineContext, "hash">, publicKey: Uint8Array): RawDeviceId {
  return host.hash(publicKey).slice(0, DEVICE_ID_BYTES) as RawDeviceId;
}
