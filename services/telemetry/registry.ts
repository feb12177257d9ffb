/**
 * The device registry in service storage: registration, and exactly-once settlement of
 * (device, seq) through each device's replay window. Reusable by any service that ingests
 * device envelopes (energy, Wi-Fi): it knows keys, records and windows, not what a reading means.
 *
 * Each record is read at most once and written at most once per accumulate call (a map of the
 * service's Store, services/common/store.ts), in ascending device order, so the gas a call uses
 * does not depend on how its items repeat devices.
 */
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import type { KeyedMap, Store } from "../common/store.ts";
import { EMPTY_WINDOW, windowSettle } from "../common/window.ts";
import type { DeviceKindCode, RawDeviceId } from "./payload.ts";
import { type DeviceRecord, deviceKey, deviceRecordCodec } from "./storage.ts";

export class DeviceRegistry {
  private readonly records: KeyedMap<RawDeviceId, DeviceRecord>;

  /** The records live in `store`; its flush writes the changed ones. */
  constructor(store: Store) {
    this.records = store.map(deviceKey, deviceRecordCodec);
  }

  get(id: RawDeviceId): DeviceRecord | null {
    return this.records.get(id);
  }

  /** Stores a new device at `slot`; null when stored, JG_ERR_DEVICE_EXISTS when the id is taken. */
  register(id: RawDeviceId, publicKey: Uint8Array, kind: DeviceKindCode, slot: number): RejectionCode | null {
    if (this.records.has(id)) return REJECTION_CODES.JG_ERR_DEVICE_EXISTS;
    this.records.set(id, { publicKey: publicKey.slice(), kind, registeredSlot: slot, window: EMPTY_WINDOW, envelopesSettled: 0n, lastSettledSlot: null });
    return null;
  }

  /**
   * Settles envelope (id, seq) at `slot` if it is the first time: null when settled, otherwise
   * why not (JG_ERR_DEVICE_UNREGISTERED or JG_ERR_ENVELOPE_REPLAY).
   */
  settle(id: RawDeviceId, seq: bigint, slot: number): RejectionCode | null {
    const record = this.records.get(id);
    if (record === null) return REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED;
    const window = windowSettle(record.window, seq);
    if (window === null) return REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY;
    this.records.set(id, { ...record, window, envelopesSettled: record.envelopesSettled + 1n, lastSettledSlot: slot });
    return null;
  }
}
