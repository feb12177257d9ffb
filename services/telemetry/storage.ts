/**
 * The service's storage (GP 9.2, a service account's storage dictionary): keys and compact
 * binary values, with pure decoders the gateway uses to read them through the node's
 * `serviceValue` (JIP-2). Integers are little-endian integers; every value starts with a format
 * version byte so a later layout can be told apart.
 *
 * | key | value |
 * |---|---|
 * | "dev/" ⌢ deviceId 16 | device record, 67 bytes (`encodeDeviceRecord`) |
 * | "outcome/" ⌢ packageHash 32 | what happened to each record of that package (`encodeOutcome`) |
 * | "outcome-fifo" | u64 outcomes written so far |
 * | "outcome-fifo/" ⌢ u32 (n mod OUTCOMES_KEPT_MAX) | packageHash 32 of the n-th outcome written |
 * | "stats" | service-wide counters (`encodeStats`) |
 */
import { ascii, concatBytes, fail, fromLowerHex, ok, Reader, type Result, Writer } from "./bytes.ts";
import { isRejectionCode, type RejectionCode, rejectionName, type RejectionName } from "./errors.ts";
import { DEVICE_ID_BYTES, type DeviceKindCode, ED25519_PUBLIC_KEY_BYTES, isDeviceKindCode, type RawDeviceId } from "./payload.ts";
import type { ReplayWindow } from "./window.ts";

export const STORAGE_FORMAT_VERSION = 1;

const DEVICE_PREFIX = ascii("dev/");
const OUTCOME_PREFIX = ascii("outcome/");
export const OUTCOME_FIFO_KEY = ascii("outcome-fifo");
const OUTCOME_FIFO_PREFIX = ascii("outcome-fifo/");
export const STATS_KEY = ascii("stats");

/** A device id as 16 bytes or as 32 lowercase hex digits (devices/envelope.ts DeviceId). */
export type DeviceIdInput = Uint8Array | string;

export function rawDeviceId(id: DeviceIdInput): RawDeviceId {
  const bytes = typeof id === "string" ? fromLowerHex(id) : id;
  if (bytes === null || bytes.length !== DEVICE_ID_BYTES) throw new Error(`not a device id: ${typeof id === "string" ? id : `${id.length} bytes`}`);
  return bytes as RawDeviceId;
}

/** "dev/" ⌢ deviceId: where a device's record is. */
export function deviceKey(id: DeviceIdInput): Uint8Array {
  return concatBytes([DEVICE_PREFIX, rawDeviceId(id)]);
}

/** "outcome/" ⌢ packageHash: where a package's outcome is, once accumulated (and for OUTCOMES_KEPT_MAX packages after). */
export function outcomeKey(packageHash: Uint8Array): Uint8Array {
  if (packageHash.length !== 32) throw new Error(`a package hash is 32 bytes, got ${packageHash.length}`);
  return concatBytes([OUTCOME_PREFIX, packageHash]);
}

export function outcomeFifoSlotKey(slot: number): Uint8Array {
  return concatBytes([OUTCOME_FIFO_PREFIX, new Writer(4).u32(slot).finish()]);
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
// Package outcome.

/** Envelopes of one device refused for one reason: seqs start … start + length − 1. */
export interface RejectedRun {
  readonly deviceId: RawDeviceId;
  readonly start: bigint;
  readonly length: number;
  readonly code: RejectionCode;
}

export interface RejectedRegistration {
  readonly deviceId: RawDeviceId;
  readonly code: RejectionCode;
}

export interface PackageOutcome {
  /** The slot of the block that accumulated the package. */
  readonly slot: number;
  readonly envelopesSettled: number;
  readonly registrationsSettled: number;
  /** The refine commitment of each envelopes item, in item order (output.ts). */
  readonly commitments: readonly Uint8Array[];
  /** Refused envelopes, ascending by (device, start); every envelope of the package not here was settled. */
  readonly rejectedEnvelopes: readonly RejectedRun[];
  /** Refused registrations, in item order; every other registration of the package was stored. */
  readonly rejectedRegistrations: readonly RejectedRegistration[];
}

const REJECTED_RUN_BYTES = DEVICE_ID_BYTES + 8 + 4 + 1;
const REJECTED_REGISTRATION_BYTES = DEVICE_ID_BYTES + 1;

/**
 * version ⌢ u32 slot ⌢ u32 envelopesSettled ⌢ u32 registrationsSettled ⌢ u8 n ⌢ n × commitment 32
 * ⌢ u32 runs ⌢ runs × (deviceId 16 ⌢ u64 start ⌢ u32 length ⌢ u8 code)
 * ⌢ u32 m ⌢ m × (deviceId 16 ⌢ u8 code).
 */
export function encodeOutcome(outcome: PackageOutcome): Uint8Array {
  const size = 1 + 4 + 4 + 4 + 1 + 32 * outcome.commitments.length + 4 + REJECTED_RUN_BYTES * outcome.rejectedEnvelopes.length + 4 + REJECTED_REGISTRATION_BYTES * outcome.rejectedRegistrations.length;
  const w = new Writer(size).u8(STORAGE_FORMAT_VERSION).u32(outcome.slot).u32(outcome.envelopesSettled).u32(outcome.registrationsSettled).u8(outcome.commitments.length);
  for (const c of outcome.commitments) w.bytes(c);
  w.u32(outcome.rejectedEnvelopes.length);
  for (const run of outcome.rejectedEnvelopes) w.bytes(run.deviceId).u64(run.start).u32(run.length).u8(run.code);
  w.u32(outcome.rejectedRegistrations.length);
  for (const reg of outcome.rejectedRegistrations) w.bytes(reg.deviceId).u8(reg.code);
  return w.finish();
}

/** Decodes an `outcome/…` value; never throws. */
export function decodeOutcome(bytes: Uint8Array): Result<PackageOutcome> {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== STORAGE_FORMAT_VERSION) return fail(r.failed ? "empty outcome" : `outcome format ${version}`);
  const slot = r.u32();
  const envelopesSettled = r.u32();
  const registrationsSettled = r.u32();
  const commitmentCount = r.u8();
  const commitments: Uint8Array[] = [];
  for (let i = 0; i < commitmentCount && !r.failed; i++) commitments.push(r.bytes(32).slice());
  const runCount = r.u32();
  if (r.failed || runCount * REJECTED_RUN_BYTES > r.remaining) return fail("outcome truncated");
  const rejectedEnvelopes: RejectedRun[] = [];
  for (let i = 0; i < runCount; i++) {
    const deviceId = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    const start = r.u64();
    const length = r.u32();
    const code = r.u8();
    if (!isRejectionCode(code)) return fail(`outcome run ${i}: code ${code}`);
    if (length === 0) return fail(`outcome run ${i} is empty`);
    rejectedEnvelopes.push({ deviceId, start, length, code });
  }
  const registrationCount = r.u32();
  if (r.failed || registrationCount * REJECTED_REGISTRATION_BYTES !== r.remaining) return fail("outcome truncated or too long");
  const rejectedRegistrations: RejectedRegistration[] = [];
  for (let i = 0; i < registrationCount; i++) {
    const deviceId = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    const code = r.u8();
    if (!isRejectionCode(code)) return fail(`outcome registration ${i}: code ${code}`);
    rejectedRegistrations.push({ deviceId, code });
  }
  return ok({ slot, envelopesSettled, registrationsSettled, commitments, rejectedEnvelopes, rejectedRegistrations });
}

/** Why the package refused envelope (device, seq), or null: it was settled (if the package carried it). */
export function envelopeRejection(outcome: PackageOutcome, device: DeviceIdInput, seq: bigint | number): RejectionName | null {
  const id = rawDeviceId(device);
  const s = BigInt(seq);
  for (const run of outcome.rejectedEnvelopes) {
    if (sameId(run.deviceId, id) && run.start <= s && s < run.start + BigInt(run.length)) return rejectionName(run.code);
  }
  return null;
}

/** Why the package refused the registration of a device, or null: it was stored (if the package carried it). */
export function registrationRejection(outcome: PackageOutcome, device: DeviceIdInput): RejectionName | null {
  const id = rawDeviceId(device);
  const found = outcome.rejectedRegistrations.find((r) => sameId(r.deviceId, id));
  return found === undefined ? null : rejectionName(found.code);
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < DEVICE_ID_BYTES; i++) if (a[i] !== b[i]) return false;
  return a.length === b.length;
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
