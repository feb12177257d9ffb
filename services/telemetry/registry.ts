/**
 * The device registry in service storage: registration, and exactly-once settlement of
 * (device, seq) through each device's replay window. Reusable by any service that ingests
 * device envelopes (energy, Wi-Fi): it knows keys, records and windows, not what a reading means.
 *
 * Each record is read at most once and written at most once per accumulate call (a cache over
 * the host's storage), in ascending device order, so the gas a call uses does not depend on how
 * its items repeat devices.
 */
import type { AccumulateHost } from "../../node/service-api/index.ts";
import { toHex } from "../common/bytes.ts";
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import type { DeviceKindCode, RawDeviceId } from "./payload.ts";
import { decodeDeviceRecord, type DeviceRecord, deviceKey, encodeDeviceRecord } from "./storage.ts";
import { EMPTY_WINDOW, windowSettle } from "../common/window.ts";

/** The host calls the registry needs. */
export type RegistryHost = Pick<AccumulateHost, "read" | "write">;

interface Entry {
  readonly id: RawDeviceId;
  record: DeviceRecord | null;
  dirty: boolean;
}

export class DeviceRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly host: RegistryHost) {}

  private entry(id: RawDeviceId): Entry {
    const hex = toHex(id);
    let entry = this.entries.get(hex);
    if (entry === undefined) {
      const raw = this.host.read(deviceKey(id));
      let record: DeviceRecord | null = null;
      if (raw !== null) {
        const decoded = decodeDeviceRecord(raw);
        if (!decoded.ok) throw new Error(`stored record of device ${hex} is corrupt: ${decoded.error}`); // a bug: only this code writes it
        record = decoded.value;
      }
      entry = { id, record, dirty: false };
      this.entries.set(hex, entry);
    }
    return entry;
  }

  get(id: RawDeviceId): DeviceRecord | null {
    return this.entry(id).record;
  }

  /** Stores a new device at `slot`; null when stored, JG_ERR_DEVICE_EXISTS when the id is taken. */
  register(id: RawDeviceId, publicKey: Uint8Array, kind: DeviceKindCode, slot: number): RejectionCode | null {
    const entry = this.entry(id);
    if (entry.record !== null) return REJECTION_CODES.JG_ERR_DEVICE_EXISTS;
    entry.record = { publicKey: publicKey.slice(), kind, registeredSlot: slot, window: EMPTY_WINDOW, envelopesSettled: 0n, lastSettledSlot: null };
    entry.dirty = true;
    return null;
  }

  /**
   * Settles envelope (id, seq) at `slot` if it is the first time: null when settled, otherwise
   * why not (JG_ERR_DEVICE_UNREGISTERED or JG_ERR_ENVELOPE_REPLAY).
   */
  settle(id: RawDeviceId, seq: bigint, slot: number): RejectionCode | null {
    const entry = this.entry(id);
    const record = entry.record;
    if (record === null) return REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED;
    const window = windowSettle(record.window, seq);
    if (window === null) return REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY;
    entry.record = { ...record, window, envelopesSettled: record.envelopesSettled + 1n, lastSettledSlot: slot };
    entry.dirty = true;
    return null;
  }

  /** Writes changed records, in ascending device id order. */
  flush(): void {
    const dirty = [...this.entries.entries()].filter(([, e]) => e.dirty).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [, entry] of dirty) {
      this.host.write(deviceKey(entry.id), encodeDeviceRecord(entry.record!));
      entry.dirty = false;
    }
  }
}
