/**
 * Package outcomes for receipts: for each accumulated package, which of its records were refused
 * and why (everything else in it was settled), stored under `outcome/<packageHash>` so the
 * gateway can answer each device "settled" or "refused". Kept for the last OUTCOMES_KEPT_MAX
 * packages only: a FIFO ring in storage deletes the oldest outcome as it adds one, so state stays
 * bounded however long the service runs. Shared by every service that settles device envelopes,
 * so the gateway reads all their outcomes one way.
 */
import type { AccumulateHost } from "../../node/service-api/index.ts";
import { ascii, compareBytes, concatBytes, fromLowerHex, toHex, U32_MAX } from "./bytes.ts";
import { d, decode, type Descriptor, encode } from "./codec.ts";
import { ok, type Result } from "./result.ts";
import { DEVICE_ID_BYTES, type RawDeviceId, rawDeviceIdCodec } from "./envelope.ts";
import { isRejectionCode, type RejectionCode, rejectionName, type RejectionName } from "./errors.ts";

/** First byte of every outcome value: a later layout can be told apart. */
const OUTCOME_FORMAT_VERSION = 1;
const OUTCOME_PREFIX = ascii("outcome/");
export const OUTCOME_FIFO_KEY = ascii("outcome-fifo");
const OUTCOME_FIFO_PREFIX = ascii("outcome-fifo/");

/** A device id as 16 bytes or as 32 lowercase hex digits (devices/envelope.ts DeviceId). */
export type DeviceIdInput = Uint8Array | string;

export function rawDeviceId(id: DeviceIdInput): RawDeviceId {
  const bytes = typeof id === "string" ? fromLowerHex(id) : id;
  if (bytes === null || bytes.length !== DEVICE_ID_BYTES) throw new Error(`not a device id: ${typeof id === "string" ? id : `${id.length} bytes`}`);
  return bytes as RawDeviceId;
}

/** "outcome/" ⌢ packageHash: where a package's outcome is, once accumulated (and for OUTCOMES_KEPT_MAX packages after). */
export function outcomeKey(packageHash: Uint8Array): Uint8Array {
  if (packageHash.length !== 32) throw new Error(`a package hash is 32 bytes, got ${packageHash.length}`);
  return concatBytes([OUTCOME_PREFIX, packageHash]);
}

export function outcomeFifoSlotKey(slot: number): Uint8Array {
  return concatBytes([OUTCOME_FIFO_PREFIX, encode(d.u32, slot)]);
}

/**
 * Outcomes kept: 4,096 packages is ~7 minutes of one package per slot on both cores of the tiny
 * chain at 6 s slots, enough for a gateway that restarts to read what it missed; at most a few
 * hundred bytes each when nearly everything settles.
 */
export const OUTCOMES_KEPT_MAX = 4_096;

interface EnvelopeRejection {
  readonly deviceId: RawDeviceId;
  readonly seq: bigint;
  readonly code: RejectionCode;
}

/** Collects one package's outcome over its items during an accumulate call. */
export class OutcomeBuilder {
  envelopesSettled = 0;
  registrationsSettled = 0;
  readonly commitments: Uint8Array[] = [];
  private readonly rejectedEnvelopes: EnvelopeRejection[] = [];
  private readonly rejectedRegistrations: RejectedRegistration[] = [];
  /** (device, seq) settled by this package: a repeat of one in a later item is not a refusal. */
  private readonly settledHere = new Set<string>();

  constructor(readonly packageHash: Uint8Array) {}

  settleEnvelope(deviceId: RawDeviceId, seq: bigint): void {
    this.envelopesSettled++;
    this.settledHere.add(`${toHex(deviceId)}:${seq}`);
  }

  rejectEnvelope(deviceId: RawDeviceId, seq: bigint, code: RejectionCode): void {
    this.rejectedEnvelopes.push({ deviceId, seq, code });
  }

  settleRegistration(): void {
    this.registrationsSettled++;
  }

  rejectRegistration(deviceId: RawDeviceId, code: RejectionCode): void {
    this.rejectedRegistrations.push({ deviceId, code });
  }

  /** The outcome: refusals sorted by (device, seq), one per pair (the first), in runs of one code. */
  finish(slot: number): PackageOutcome {
    const rejected = this.rejectedEnvelopes
      .filter((r) => !this.settledHere.has(`${toHex(r.deviceId)}:${r.seq}`))
      .map((r, index) => ({ ...r, index }))
      .sort((a, b) => compareBytes(a.deviceId, b.deviceId) || (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : a.index - b.index));
    const runs: { deviceId: RawDeviceId; start: bigint; length: number; code: RejectionCode }[] = [];
    let previous: (typeof rejected)[number] | undefined;
    for (const r of rejected) {
      const samePair = previous !== undefined && compareBytes(previous.deviceId, r.deviceId) === 0 && previous.seq === r.seq;
      previous = r;
      if (samePair) continue;
      const last = runs[runs.length - 1];
      if (last !== undefined && last.code === r.code && compareBytes(last.deviceId, r.deviceId) === 0 && last.start + BigInt(last.length) === r.seq)
        last.length++;
      else runs.push({ deviceId: r.deviceId, start: r.seq, length: 1, code: r.code });
    }
    const rejectedEnvelopes: RejectedRun[] = runs;
    return {
      slot,
      envelopesSettled: this.envelopesSettled,
      registrationsSettled: this.registrationsSettled,
      commitments: this.commitments,
      rejectedEnvelopes,
      rejectedRegistrations: this.rejectedRegistrations,
    };
  }
}

/** The host calls the FIFO needs. */
export type OutcomeHost = Pick<AccumulateHost, "read" | "write">;

/**
 * A FIFO of outcomes in storage: "outcome-fifo" counts outcomes written; ring slot n mod
 * capacity names the package of the n-th. Adding the (capacity + k)-th deletes the k-th.
 */
export class OutcomeFifo {
  private written: bigint | null = null;

  constructor(
    private readonly host: OutcomeHost,
    /** Fixed for the life of a service's state: changing it would strand ring slots. */
    private readonly capacity: number = OUTCOMES_KEPT_MAX,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`outcome FIFO capacity ${capacity}`);
  }

  private count(): bigint {
    if (this.written === null) {
      const raw = this.host.read(OUTCOME_FIFO_KEY);
      const decoded = raw === null ? ok(0n) : decode(d.u64, raw);
      if (!decoded.ok) throw new Error(`stored outcome FIFO counter is corrupt: ${decoded.error}`); // a bug: only this code writes it
      this.written = decoded.value;
    }
    return this.written;
  }

  /** Stores `value` as the outcome of `packageHash`, evicting the oldest beyond capacity. */
  push(packageHash: Uint8Array, value: Uint8Array): void {
    const key = outcomeKey(packageHash);
    if (this.host.read(key) !== null) {
      // A package is accumulated once (GP 12.1); should it come again, replace its outcome in place.
      this.host.write(key, value);
      return;
    }
    const n = this.count();
    const slotKey = outcomeFifoSlotKey(Number(n % BigInt(this.capacity)));
    if (n >= BigInt(this.capacity)) {
      const oldest = this.host.read(slotKey);
      if (oldest === null) throw new Error(`outcome FIFO slot for outcome ${n} is empty`); // a bug
      this.host.write(outcomeKey(oldest), null);
    }
    this.host.write(key, value);
    this.host.write(slotKey, packageHash);
    this.written = n + 1n;
  }

  /** Writes the counter if outcomes were added. */
  flush(): void {
    if (this.written !== null) this.host.write(OUTCOME_FIFO_KEY, encode(d.u64, this.written));
  }
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

const rejectionCodeCodec = d.checked(d.u8 as Descriptor<RejectionCode>, (code) => (isRejectionCode(code) ? null : `code ${code}`), "rejection code");
/** Refusals of one package: the layout counts them in a u32; the package's records bound them far lower. */
const OUTCOME_REFUSALS_MAX = U32_MAX;

/** deviceId 16 ⌢ u64 start ⌢ u32 length ⌢ u8 code. */
const rejectedRunCodec = d.checked(
  d.object({ deviceId: rawDeviceIdCodec, start: d.u64, length: d.u32, code: rejectionCodeCodec }),
  (run) => (run.length === 0 ? "an empty run" : null),
  "refused run",
);
/** deviceId 16 ⌢ u8 code. */
const rejectedRegistrationCodec = d.object({ deviceId: rawDeviceIdCodec, code: rejectionCodeCodec });
/** Bytes a refused run, and a refused registration, add to an outcome (for gas budgets). */
export const REJECTED_RUN_BYTES = rejectedRunCodec.fixedBytes!;
export const REJECTED_REGISTRATION_BYTES = rejectedRegistrationCodec.fixedBytes!;

/**
 * version ⌢ u32 slot ⌢ u32 envelopesSettled ⌢ u32 registrationsSettled ⌢ u8 n ⌢ n × commitment 32
 * ⌢ u32 runs ⌢ runs × (deviceId 16 ⌢ u64 start ⌢ u32 length ⌢ u8 code)
 * ⌢ u32 m ⌢ m × (deviceId 16 ⌢ u8 code).
 */
export const outcomeCodec: Descriptor<PackageOutcome> = d.versioned(
  OUTCOME_FORMAT_VERSION,
  d.object({
    slot: d.u32,
    envelopesSettled: d.u32,
    registrationsSettled: d.u32,
    commitments: d.array(d.bytes(32), "u8", 0xff),
    rejectedEnvelopes: d.array(rejectedRunCodec, "u32", OUTCOME_REFUSALS_MAX),
    rejectedRegistrations: d.array(rejectedRegistrationCodec, "u32", OUTCOME_REFUSALS_MAX),
  }),
  "outcome",
);

export const encodeOutcome = (outcome: PackageOutcome): Uint8Array => encode(outcomeCodec, outcome);
/** Bytes of an outcome with no commitment and no refusals (for gas budgets). */
export const OUTCOME_FIXED_BYTES = outcomeCodec.bytesOf({
  slot: 0,
  envelopesSettled: 0,
  registrationsSettled: 0,
  commitments: [],
  rejectedEnvelopes: [],
  rejectedRegistrations: [],
});

/** Decodes an `outcome/…` value; never throws. */
export const decodeOutcome = (bytes: Uint8Array): Result<PackageOutcome> => decode(outcomeCodec, bytes);

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
