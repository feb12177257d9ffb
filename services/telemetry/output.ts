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
 * Registrations output (keys), what refine makes:
 *   u8 2 ⌢ u16 count ⌢ count × (publicKey 32 ⌢ u8 device kind)
 * accumulate derives each device id from its key (the first 16 bytes of H(key)), so 33 bytes a
 * registration reach W_R: 1,489 a package (payload.ts REGISTRATIONS_PER_ITEM_MAX).
 *
 * Registrations output with ids, what refine made before the keys output (a report refined then
 * may still wait in a node's data dir for accumulate, which takes both):
 *   u8 1 ⌢ u16 count ⌢ count × (deviceId 16 ⌢ publicKey 32 ⌢ u8 device kind)
 */
import { compareBytes, type Result, toHex, U16_MAX } from "../common/bytes.ts";
import { d, decode, type Descriptor, encode } from "../common/codec.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import {
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

import { rawDeviceIdCodec, type SeqRejection, seqRejectionCodec, type SeqRun, seqRunCodec, toRuns } from "../common/envelope.ts";

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

/** The kind byte of the keys output: not an item kind (ItemKind), an output's; a registrations item (ItemKind.registrations) refines to it. */
export const REGISTRATION_KEYS_OUTPUT = 2;

export interface RegistrationKey {
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKindCode;
}

/** A registrations item's output: each registration's key and kind, in the item's order; accumulate derives the ids. */
export interface RegistrationKeysOutput {
  readonly kind: typeof REGISTRATION_KEYS_OUTPUT;
  readonly registrations: readonly RegistrationKey[];
}

export type RefineOutput = EnvelopesOutput | RegistrationsOutput | RegistrationKeysOutput;

const REFINE_REJECTION_CODES: ReadonlySet<number> = new Set([REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE, REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE]);

/** Why a device's part of an output is not canonical, or null: runs ascend apart, refusals ascend outside them. */
function checkSettlement(device: DeviceSettlement): string | null {
  if (device.accepted.length === 0 && device.rejected.length === 0) return "a device with no envelopes";
  let next = 0n; // the lowest seq the next run may start at
  for (const [j, run] of device.accepted.entries()) {
    if (run.start < next) return `run ${j} is out of order or touches the one before`;
    next = run.start + BigInt(run.length) + 1n;
  }
  let r = 0;
  for (const [j, rejection] of device.rejected.entries()) {
    if (j > 0 && device.rejected[j - 1]!.seq >= rejection.seq) return "rejected seqs out of order";
    while (r < device.accepted.length && device.accepted[r]!.start + BigInt(device.accepted[r]!.length) <= rejection.seq) r++;
    if (r < device.accepted.length && device.accepted[r]!.start <= rejection.seq) return `seq ${rejection.seq} both accepted and rejected`;
  }
  return null;
}

/** Devices ascend, and their records are at most an item's. */
function checkDevices(devices: readonly DeviceSettlement[]): string | null {
  let records = 0;
  for (const [i, device] of devices.entries()) {
    if (i > 0 && compareBytes(devices[i - 1]!.deviceId, device.deviceId) >= 0) return `device ${i} is not above the one before`;
    for (const run of device.accepted) records += run.length;
    records += device.rejected.length;
  }
  return records > ENVELOPES_PER_ITEM_MAX ? `more than ${ENVELOPES_PER_ITEM_MAX} envelopes` : null;
}

/** deviceId 16 ⌢ u16 runs ⌢ runs × (u64 start ⌢ u32 length) ⌢ u16 r ⌢ r × (u64 seq ⌢ u8 code). */
const deviceSettlementCodec: Descriptor<DeviceSettlement> = d.checked(
  d.object({
    deviceId: rawDeviceIdCodec,
    accepted: d.array(seqRunCodec, "u16", U16_MAX),
    rejected: d.array(seqRejectionCodec(REFINE_REJECTION_CODES), "u16", U16_MAX),
  }),
  checkSettlement,
  "device",
);

const envelopesOutputCodec: Descriptor<EnvelopesOutput> = d.map(
  d.object({ commitment: d.bytes(32), devices: d.checked(d.array(deviceSettlementCodec, "u16", ENVELOPE_DEVICES_PER_ITEM_MAX), checkDevices, "devices") }),
  (body) => ({ kind: ItemKind.envelopes, ...body }),
  ({ kind: _, ...body }) => body as { commitment: Uint8Array; devices: DeviceSettlement[] },
  "envelopes output",
);

/** The most registrations an output with ids carried: refine made them from items of at most 512 (REGISTRATIONS_PER_ITEM_MAX then). */
const REGISTRATIONS_WITH_IDS_MAX = 512;

const registrationEntryCodec: Descriptor<RegistrationEntry> = d.object({
  deviceId: rawDeviceIdCodec,
  publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
  kind: d.checked(d.u8 as Descriptor<DeviceKindCode>, (kind) => (isDeviceKindCode(kind) ? null : `unknown device kind ${kind}`), "device kind"),
});

const registrationsOutputCodec: Descriptor<RegistrationsOutput> = d.map(
  d.array(registrationEntryCodec, "u16", REGISTRATIONS_WITH_IDS_MAX),
  (registrations) => ({ kind: ItemKind.registrations, registrations }),
  (output) => output.registrations as RegistrationEntry[],
  "registrations output",
);

const deviceKindCodec = d.checked(d.u8 as Descriptor<DeviceKindCode>, (kind) => (isDeviceKindCode(kind) ? null : `unknown device kind ${kind}`), "device kind");

/** publicKey 32 ⌢ u8 device kind: 33 bytes. */
const registrationKeyCodec: Descriptor<RegistrationKey> = d.object({ publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES), kind: deviceKindCodec });

export const REGISTRATION_KEY_OUTPUT_BYTES = registrationKeyCodec.fixedBytes!;

const registrationKeysOutputCodec: Descriptor<RegistrationKeysOutput> = d.map(
  d.array(registrationKeyCodec, "u16", REGISTRATIONS_PER_ITEM_MAX),
  (registrations) => ({ kind: REGISTRATION_KEYS_OUTPUT, registrations }),
  (output) => output.registrations as RegistrationKey[],
  "registration keys output",
);

/**
 * u8 kind ⌢ that kind's output: ItemKind.envelopes, ItemKind.registrations (with ids), or
 * REGISTRATION_KEYS_OUTPUT (common/dispatch.ts itemOutputCodec, with the third variant).
 */
export const refineOutputCodec: Descriptor<RefineOutput> = d.union<RefineOutput>(
  {
    [ItemKind.envelopes]: envelopesOutputCodec as Descriptor<RefineOutput>,
    [ItemKind.registrations]: registrationsOutputCodec as Descriptor<RefineOutput>,
    [REGISTRATION_KEYS_OUTPUT]: registrationKeysOutputCodec as Descriptor<RefineOutput>,
  },
  (output) => output.kind,
  "refine output",
);

const NO_COMMITMENT = new Uint8Array(32);

export function envelopesOutputBytes(output: EnvelopesOutput): number {
  return refineOutputCodec.bytesOf(output);
}

/**
 * The refine output size of an envelopes item if every record verifies (the usual case, as the
 * gateway verified them first): what the gateway budgets against W_R when it fills a package.
 */
export function plannedEnvelopesOutputBytes(records: readonly EnvelopeRecord[]): number {
  const byDevice = new Map<string, { deviceId: RawDeviceId; seqs: bigint[] }>();
  for (const record of records) {
    const fields = parseSigningBytes(record.signingBytes);
    if (!fields.ok) throw new Error(fields.error);
    const key = toHex(fields.value.deviceId);
    const device = byDevice.get(key) ?? { deviceId: fields.value.deviceId, seqs: [] };
    device.seqs.push(fields.value.seq);
    byDevice.set(key, device);
  }
  const devices = [...byDevice.values()].map(({ deviceId, seqs }) => ({
    deviceId,
    accepted: toRuns([...new Set(seqs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))),
    rejected: [],
  }));
  return envelopesOutputBytes({ kind: ItemKind.envelopes, commitment: NO_COMMITMENT, devices });
}

export const encodeRefineOutput = (output: RefineOutput): Uint8Array => encode(refineOutputCodec, output);

/**
 * Decodes and checks a refine output: canonical order, bounds, codes. Never throws, whatever the
 * bytes; accumulate treats an error as a bug (its refine made the bytes).
 */
export const decodeRefineOutput = (bytes: Uint8Array): Result<RefineOutput> => decode(refineOutputCodec, bytes);
