/**
 * Package outcomes for receipts: for each accumulated package, which of its records were refused
 * and why (everything else in it was settled), stored under `outcome/<packageHash>` so the
 * gateway can answer each device "settled" or "refused". Kept for the last OUTCOMES_KEPT_MAX
 * packages only: a FIFO ring in storage deletes the oldest outcome as it adds one, so state stays
 * bounded however long the service runs.
 */
import type { AccumulateHost } from "../../node/service-api/index.ts";
import { compareBytes, Reader, toHex, Writer } from "./bytes.ts";
import type { RejectionCode } from "./errors.ts";
import type { RawDeviceId } from "./payload.ts";
import { OUTCOME_FIFO_KEY, outcomeFifoSlotKey, outcomeKey, type PackageOutcome, type RejectedRegistration, type RejectedRun } from "./storage.ts";

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
      if (last !== undefined && last.code === r.code && compareBytes(last.deviceId, r.deviceId) === 0 && last.start + BigInt(last.length) === r.seq) last.length++;
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
      const r = new Reader(raw ?? new Uint8Array(8));
      this.written = r.u64();
      if (!r.done) throw new Error("stored outcome FIFO counter is corrupt"); // a bug: only this code writes it
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
    if (this.written !== null) this.host.write(OUTCOME_FIFO_KEY, new Writer(8).u64(this.written).finish());
  }
}
