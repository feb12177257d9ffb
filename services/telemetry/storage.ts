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
import { ascii, concatBytes, fail, ok, Reader, type Result, Writer } from "../common/bytes.ts";
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

/** version ⌢ publicKey 32 ⌢ u8 kind ⌢ u32 registeredSlot ⌢ u8 flags (bit 0: settled any) ⌢ u64 highestSeq ⌢ u64 bitmap ⌢ u64 envelopesSettled ⌢ u32 lastSettledSlot. */
export const DEVICE_RECORD_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 1 + 4 + 1 + 8 + 8 + 8 + 4;
const SETTLED_FLAG = 1;

export function encodeDeviceRecord(record: DeviceRecord): Uint8Array {
  const settled = record.window.highestSeq !== null;
  if (settled !== (record.lastSettledSlot !== null)) throw new Error("a device record has a highest seq exactly when it has a last settled slot");
  return new Writer(DEVICE_RECORD_BYTES)
    .u8(STORAGE_FORMAT_VERSION)
    .bytes(record.publicKey)
    .u8(record.kind)
    .u32(record.registeredSlot)
    .u8(settled ? SETTLED_FLAG : 0)
    .u64(record.window.highestSeq ?? 0n)
    .u64(record.window.bitmap)
    .u64(record.envelopesSettled)
    .u32(record.lastSettledSlot ?? 0)
    .finish();
}

/** Decodes a `dev/…` value; never throws. */
export function decodeDeviceRecord(bytes: Uint8Array): Result<DeviceRecord> {
  const r = new Reader(bytes);
  if (bytes.length !== DEVICE_RECORD_BYTES) return fail(`device record of ${bytes.length} bytes, not ${DEVICE_RECORD_BYTES}`);
  const version = r.u8();
  if (version !== STORAGE_FORMAT_VERSION) return fail(`device record format ${version}`);
  const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES).slice();
  const kind = r.u8();
  if (!isDeviceKindCode(kind)) return fail(`device kind ${kind}`);
  const registeredSlot = r.u32();
  const flags = r.u8();
  const highestSeq = r.u64();
  const bitmap = r.u64();
  const envelopesSettled = r.u64();
  const lastSettledSlot = r.u32();
  if (flags & ~SETTLED_FLAG) return fail(`device record flags ${flags}`);
  if (!(flags & SETTLED_FLAG) && (highestSeq !== 0n || bitmap !== 0n || envelopesSettled !== 0n || lastSettledSlot !== 0)) return fail("device record has settlement fields but no settled flag");
  const settled = (flags & SETTLED_FLAG) !== 0;
  return ok({
    publicKey,
    kind,
    registeredSlot,
    window: { highestSeq: settled ? highestSeq : null, bitmap },
    envelopesSettled,
    lastSettledSlot: settled ? lastSettledSlot : null,
  });
}

// ---------------------------------------------------------------------------------------------
// Service-wide counters.

export interface TelemetryStats {
  readonly devicesRegistered: bigint;
  readonly envelopesSettled: bigint;
  readonly envelopesRejected: bigint;
}

export const EMPTY_STATS: TelemetryStats = { devicesRegistered: 0n, envelopesSettled: 0n, envelopesRejected: 0n };
const STATS_BYTES = 1 + 8 + 8 + 8;

/** version ⌢ u64 devicesRegistered ⌢ u64 envelopesSettled ⌢ u64 envelopesRejected. */
export function encodeStats(stats: TelemetryStats): Uint8Array {
  return new Writer(STATS_BYTES).u8(STORAGE_FORMAT_VERSION).u64(stats.devicesRegistered).u64(stats.envelopesSettled).u64(stats.envelopesRejected).finish();
}

/** Decodes the `stats` value; never throws. */
export function decodeStats(bytes: Uint8Array): Result<TelemetryStats> {
  const r = new Reader(bytes);
  const version = r.u8();
  const stats = { devicesRegistered: r.u64(), envelopesSettled: r.u64(), envelopesRejected: r.u64() };
  if (!r.done) return fail(`stats of ${bytes.length} bytes, not ${STATS_BYTES}`);
  if (version !== STORAGE_FORMAT_VERSION) return fail(`stats format ${version}`);
  return ok(stats);
}
