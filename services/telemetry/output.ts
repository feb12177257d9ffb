/**
 * Refine outputs, refine → accumulate: the work results (GP 11.1.4, the ok blob of a work
 * result). They go into the work report, whose results are bounded by W_R = 49,152 bytes for
 * the whole package, so an envelopes item is condensed per device to runs of accepted seqs:
 * a device that sent any number of consecutive envelopes costs 32 bytes. The raw envelopes stay
 * in the package bundle (DA); `commitment` ties them to this result.
 *
 * Envelopes output:
 *   u8 0 ⌢ commitment 32 ⌢ u16 deviceCount ⌢ deviceCount × (
 *     deviceId 16 ⌢ u16 runCount ⌢ runCount × (u64 start ⌢ u32 length)
 *                 ⌢ u16 rejectedCount ⌢ rejectedCount × (u64 seq ⌢ u8 code))
 * with commitment = H(⌢ over accepted records in order of deviceId 16 ⌢ u64 seq ⌢ H(body))
 * (`commitmentLeaf`). Devices ascend; runs ascend and are separated by at least one missing
 * seq; rejected seqs ascend and lie outside the runs; codes are JG_ERR_ENVELOPE_SIGNATURE or
 * JG_ERR_ENVELOPE_DEVICE (errors.ts).
 *
 * Registrations output:
 *   u8 1 ⌢ u16 count ⌢ count × (deviceId 16 ⌢ publicKey 32 ⌢ u8 device kind)
 */
import { compareBytes, fail, ok, Reader, type Result, U64_MAX, Writer } from "../common/bytes.ts";
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import {
  DEVICE_ID_BYTES,
  type DeviceKindCode,
  ED25519_PUBLIC_KEY_BYTES,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  ENVELOPES_PER_ITEM_MAX,
  type EnvelopeRecord,
  isDeviceKindCode,
  ItemKind,
  parseSigningBytes,
  REGISTRATIONS_PER_ITEM_MAX,
  type RawDeviceId,
  W_R,
} from "./payload.ts";

import { type SeqRejection, type SeqRun, toRuns } from "../common/envelope.ts";

export type { SeqRejection } from "../common/envelope.ts";

export { COMMITMENT_LEAF_BYTES, commitmentLeaf, type SeqRun, toRuns } from "../common/envelope.ts";

/** Refine fails an item rather than hand on an output the report could not carry. */
export const REFINE_OUTPUT_BYTES_MAX = W_R;

export interface DeviceSettlement {
  readonly deviceId: RawDeviceId;
  /** Seqs whose envelopes verified, as runs. */
  readonly accepted: readonly SeqRun[];
  readonly rejected: readonly SeqRejection[];
}

export interface EnvelopesOutput {
  readonly kind: typeof ItemKind.envelopes;
  readonly commitment: Uint8Array;
  readonly devices: readonly DeviceSettlement[];
}

export interface RegistrationEntry {
  readonly deviceId: RawDeviceId;
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKindCode;
}

export interface RegistrationsOutput {
  readonly kind: typeof ItemKind.registrations;
  readonly registrations: readonly RegistrationEntry[];
}

export type RefineOutput = EnvelopesOutput | RegistrationsOutput;

const ENVELOPES_HEADER_BYTES = 1 + 32 + 2;
const DEVICE_FIXED_BYTES = DEVICE_ID_BYTES + 2 + 2;
const RUN_BYTES = 8 + 4;
const REJECTION_BYTES = 8 + 1;
const REGISTRATION_ENTRY_BYTES = DEVICE_ID_BYTES + ED25519_PUBLIC_KEY_BYTES + 1;
export function envelopesOutputBytes(output: EnvelopesOutput): number {
  let size = ENVELOPES_HEADER_BYTES;
  for (const d of output.devices) size += DEVICE_FIXED_BYTES + RUN_BYTES * d.accepted.length + REJECTION_BYTES * d.rejected.length;
  return size;
}

/**
 * The refine output size of an envelopes item if every record verifies (the usual case, as the
 * gateway verified them first): what the gateway budgets against W_R when it fills a package.
 */
export function plannedEnvelopesOutputBytes(records: readonly EnvelopeRecord[]): number {
  const byDevice = new Map<string, bigint[]>();
  for (const record of records) {
    const fields = parseSigningBytes(record.signingBytes);
    if (!fields.ok) throw new Error(fields.error);
    const key = Array.from(fields.value.deviceId, (b) => b.toString(16).padStart(2, "0")).join("");
    const seqs = byDevice.get(key) ?? [];
    seqs.push(fields.value.seq);
    byDevice.set(key, seqs);
  }
  let size = ENVELOPES_HEADER_BYTES;
  for (const seqs of byDevice.values()) {
    const sorted = [...new Set(seqs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    size += DEVICE_FIXED_BYTES + RUN_BYTES * toRuns(sorted).length;
  }
  return size;
}

export function encodeRefineOutput(output: RefineOutput): Uint8Array {
  if (output.kind === ItemKind.registrations) {
    const w = new Writer(1 + 2 + REGISTRATION_ENTRY_BYTES * output.registrations.length).u8(ItemKind.registrations).u16(output.registrations.length);
    for (const r of output.registrations) w.bytes(r.deviceId).bytes(r.publicKey).u8(r.kind);
    return w.finish();
  }
  const w = new Writer(envelopesOutputBytes(output)).u8(ItemKind.envelopes).bytes(output.commitment).u16(output.devices.length);
  for (const d of output.devices) {
    w.bytes(d.deviceId).u16(d.accepted.length);
    for (const run of d.accepted) w.u64(run.start).u32(run.length);
    w.u16(d.rejected.length);
    for (const r of d.rejected) w.u64(r.seq).u8(r.code);
  }
  return w.finish();
}

const REFINE_REJECTION_CODES: ReadonlySet<number> = new Set([REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE, REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE]);

/**
 * Decodes and checks a refine output: canonical order, bounds, codes. Never throws, whatever the
 * bytes; accumulate treats an error as a bug (its refine made the bytes).
 */
export function decodeRefineOutput(bytes: Uint8Array): Result<RefineOutput> {
  const r = new Reader(bytes);
  const kind = r.u8();
  if (kind === ItemKind.registrations) return decodeRegistrations(r);
  if (kind === ItemKind.envelopes) return decodeEnvelopes(r);
  return fail(r.failed ? "empty output" : `unknown output kind ${kind}`);
}

function decodeRegistrations(r: Reader): Result<RefineOutput> {
  const count = r.u16();
  if (count > REGISTRATIONS_PER_ITEM_MAX) return fail(`${count} registrations > ${REGISTRATIONS_PER_ITEM_MAX}`);
  if (r.remaining !== count * REGISTRATION_ENTRY_BYTES) return fail(`registrations output does not hold ${count} entries`);
  const registrations: RegistrationEntry[] = [];
  for (let i = 0; i < count; i++) {
    const deviceId = r.bytes(DEVICE_ID_BYTES) as RawDeviceId;
    const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES);
    const kind = r.u8();
    if (!isDeviceKindCode(kind)) return fail(`registration ${i}: unknown device kind ${kind}`);
    registrations.push({ deviceId, publicKey, kind });
  }
  return ok({ kind: ItemKind.registrations, registrations });
}

function decodeEnvelopes(r: Reader): Result<RefineOutput> {
  const commitment = r.bytes(32);
  const deviceCount = r.u16();
  if (deviceCount > ENVELOPE_DEVICES_PER_ITEM_MAX) return fail(`${deviceCount} devices > ${ENVELOPE_DEVICES_PER_ITEM_MAX}`);
  const devices: DeviceSettlement[] = [];
  let records = 0;
  for (let i = 0; i < deviceCount; i++) {
    const deviceId = r.bytes(DEVICE_ID_BYTES) as RawDeviceId;
    const previous = devices[i - 1];
    if (previous !== undefined && compareBytes(previous.deviceId, deviceId) >= 0) return fail(`device ${i} is not above the one before`);
    const runCount = r.u16();
    const accepted: SeqRun[] = [];
    let next = 0n; // the lowest seq the next run may start at
    for (let j = 0; j < runCount && !r.failed; j++) {
      const start = r.u64();
      const length = r.u32();
      if (length === 0 || start < next || start + BigInt(length) - 1n > U64_MAX) return fail(`device ${i}: run ${j} is empty, out of order, touches the one before, or passes 2^64`);
      records += length;
      if (records > ENVELOPES_PER_ITEM_MAX) return fail(`more than ${ENVELOPES_PER_ITEM_MAX} envelopes`);
      accepted.push({ start, length });
      next = start + BigInt(length) + 1n;
    }
    const rejectedCount = r.u16();
    const rejected: SeqRejection[] = [];
    let run = 0;
    for (let j = 0; j < rejectedCount && !r.failed; j++) {
      const seq = r.u64();
      const code = r.u8();
      if (!REFINE_REJECTION_CODES.has(code)) return fail(`device ${i}: rejection code ${code} is not one refine gives`);
      const before = rejected[j - 1];
      if (before !== undefined && before.seq >= seq) return fail(`device ${i}: rejected seqs out of order`);
      while (run < accepted.length && accepted[run]!.start + BigInt(accepted[run]!.length) <= seq) run++;
      if (run < accepted.length && accepted[run]!.start <= seq) return fail(`device ${i}: seq ${seq} both accepted and rejected`);
      records++;
      if (records > ENVELOPES_PER_ITEM_MAX) return fail(`more than ${ENVELOPES_PER_ITEM_MAX} envelopes`);
      rejected.push({ seq, code: code as RejectionCode });
    }
    if (r.failed) return fail("envelopes output truncated");
    if (runCount === 0 && rejectedCount === 0) return fail(`device ${i} has no envelopes`);
    devices.push({ deviceId, accepted, rejected });
  }
  if (r.failed) return fail("envelopes output truncated");
  if (!r.done) return fail(`${r.remaining} bytes after the last device`);
  return ok({ kind: ItemKind.envelopes, commitment, devices });
}
