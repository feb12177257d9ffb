/**
 * The service's storage (GP 9.2, a service account's storage dictionary): keys and compact
 * binary values, with pure decoders the gateway uses to read them through the node's
 * `serviceValue` (JIP-2). Integers are little-endian integers; every value starts with a format
 * version byte so a later layout can be told apart.
 *
 * | key | value |
 * |---|---|
 * | "dev/" ⌢ deviceId 16 | device record, 67 bytes (`encodeDeviceRecord`) |
 * | "outcome/…", "outcome-fifo…" | package outcomes for receipts (services/common/outcome.ts) |
 * | "stats" | service-wide counters (`encodeStats`) |
 */
import { ascii, concatBytes, type Result } from "../common/bytes.ts";
import { d, decode, type Descriptor, encode } from "../common/codec.ts";
import { type DeviceIdInput, rawDeviceId } from "../common/outcome.ts";
import type { ReplayWindow } from "../common/window.ts";
import { type DeviceKindCode, ED25519_PUBLIC_KEY_BYTES, isDeviceKindCode } from "./payload.ts";

export const STORAGE_FORMAT_VERSION = 1;

const DEVICE_PREFIX = ascii("dev/");
export const STATS_KEY = ascii("stats");

/** "dev/" ⌢ deviceId: where a device's record is. */
export function deviceKey(id: DeviceIdInput): Uint8Array {
  return concatBytes([DEVICE_PREFIX, rawDeviceId(id)]);
}

// ---------------------------------------------------------------------------------------------
// Device record.

export interface DeviceRecord {
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKindCode;
  /** The slot whose block accumulated the registration. */
  readonly registeredSlot: number;
  /** Exactly-once state (window.ts). */
  readonly window: ReplayWindow;
  readonly envelopesSettled: bigint;
  /** The slot of the last block that settled one of its envelopes; null before the first. */
  readonly lastSettledSlot: number | null;
}

const deviceKindCodec = d.checked(d.u8 as Descriptor<DeviceKindCode>, (kind) => (isDeviceKindCode(kind) ? null : `device kind ${kind}`), "device kind");

/** The stored fields: the settled flag (u8 0|1) stands for the highest seq and the last settled slot, which are zeros until the first settlement. */
const storedDeviceCodec = d.checked(
  d.object({
    publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
    kind: deviceKindCodec,
    registeredSlot: d.u32,
    settled: d.bool,
    highestSeq: d.u64,
    bitmap: d.u64,
    envelopesSettled: d.u64,
    lastSettledSlot: d.u32,
  }),
  (s) =>
    !s.settled && (s.highestSeq !== 0n || s.bitmap !== 0n || s.envelopesSettled !== 0n || s.lastSettledSlot !== 0)
      ? "settlement fields but no settled flag"
      : null,
  "device record",
);

/** version ⌢ publicKey 32 ⌢ u8 kind ⌢ u32 registeredSlot ⌢ u8 flags (bit 0: settled any) ⌢ u64 highestSeq ⌢ u64 bitmap ⌢ u64 envelopesSettled ⌢ u32 lastSettledSlot. */
export const deviceRecordCodec: Descriptor<DeviceRecord> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.map(
    storedDeviceCodec,
    ({ settled, highestSeq, bitmap, lastSettledSlot, ...rest }) => ({
      ...rest,
      window: { highestSeq: settled ? highestSeq : null, bitmap },
      lastSettledSlot: settled ? lastSettledSlot : null,
    }),
    ({ window, lastSettledSlot, ...rest }) => {
      const settled = window.highestSeq !== null;
      if (settled !== (lastSettledSlot !== null)) throw new Error("a device record has a highest seq exactly when it has a last settled slot");
      return { ...rest, settled, highestSeq: window.highestSeq ?? 0n, bitmap: window.bitmap, lastSettledSlot: lastSettledSlot ?? 0 };
    },
  ),
  "device record",
);

export const DEVICE_RECORD_BYTES = deviceRecordCodec.fixedBytes!;
export const encodeDeviceRecord = (record: DeviceRecord): Uint8Array => encode(deviceRecordCodec, record);
/** Decodes a `dev/…` value; never throws. */
export const decodeDeviceRecord = (bytes: Uint8Array): Result<DeviceRecord> => decode(deviceRecordCodec, bytes);

// ---------------------------------------------------------------------------------------------
// Service-wide counters.

export interface TelemetryStats {
  readonly devicesRegistered: bigint;
  readonly envelopesSettled: bigint;
  readonly envelopesRejected: bigint;
}

export const EMPTY_STATS: TelemetryStats = { devicesRegistered: 0n, envelopesSettled: 0n, envelopesRejected: 0n };

/** version ⌢ u64 devicesRegistered ⌢ u64 envelopesSettled ⌢ u64 envelopesRejected. */
export const statsCodec: Descriptor<TelemetryStats> = d.versioned(
  STORAGE_FORMAT_VERSION,
  d.object({ devicesRegistered: d.u64, envelopesSettled: d.u64, envelopesRejected: d.u64 }),
  "stats",
);

export const encodeStats = (stats: TelemetryStats): Uint8Array => encode(statsCodec, stats);
/** Decodes the `stats` value; never throws. */
export const decodeStats = (bytes: Uint8Array): Result<TelemetryStats> => decode(statsCodec, bytes);
