/**
 * What every service that settles device envelopes shares: the GP sizes it budgets against, the
 * device id, and the signed layout of an envelope (devices/envelope.ts `signingBytes`),
 * re-implemented here because a service imports only node/service-api and services/common.
 */
import { ascii, bytesEqual, compareBytes, fail, ok, Reader, type Result, toHex, U64_MAX, Writer } from "./bytes.ts";
import { d, type Descriptor, encode } from "./codec.ts";
import { isRejectionCode, type RejectionCode } from "./errors.ts";

/** W_B, GP I.4.4: the largest work-package bundle, in bytes. */
export const W_B = 13_791_360;
/** W_R, GP I.4.4: the largest total of a work report's results, in bytes. */
export const W_R = 49_152;

/** The first byte of an ingest service's work item: what the item holds. */
export const ItemKind = { envelopes: 0, registrations: 1 } as const;
export type ItemKind = (typeof ItemKind)[keyof typeof ItemKind];

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
/** A device id: the first 16 bytes of blake2b-256(public key) (docs/protocol.md, "Identity"). */
export const DEVICE_ID_BYTES = 16;

/** 16 raw bytes of a device id (the gateway's DeviceId is the same bytes as 32 lowercase hex digits). */
export type RawDeviceId = Uint8Array & { readonly __brand: "RawDeviceId" };

export function tryAsRawDeviceId(bytes: Uint8Array): RawDeviceId | null {
  return bytes.length === DEVICE_ID_BYTES ? (bytes as RawDeviceId) : null;
}

/** A device id as its 16 bytes, in stored values and refine outputs. */
export const rawDeviceIdCodec: Descriptor<RawDeviceId> = d.map(
  d.bytes(DEVICE_ID_BYTES),
  (bytes) => bytes as RawDeviceId,
  (id) => id,
  "device id",
);

/** Domain separation of envelope signatures: "jamgate/envelope/v1" ⌢ 0x00. */
export const ENVELOPE_DOMAIN = ascii("jamgate/envelope/v1\u0000");
export const ENVELOPE_VERSION = 1;
const DEVICE_ID_HEX_DIGITS = 2 * DEVICE_ID_BYTES;

export interface SignedFields {
  readonly version: number;
  readonly deviceId: RawDeviceId;
  readonly seq: bigint;
  /** The envelope kind, ASCII (e.g. "meter.reading"); not interpreted by this service. */
  readonly kind: string;
  readonly timeMs: bigint;
  /** A view of the body inside the signed bytes. */
  readonly body: Uint8Array;
}

/**
 * Parses "jamgate/envelope/v1" ⌢ 0x00 ⌢ u8 version ⌢ u8 |device| ⌢ device (ASCII hex) ⌢ u64 seq
 * ⌢ u8 |kind| ⌢ kind (ASCII) ⌢ u64 timeMs ⌢ u32 |body| ⌢ body; never throws.
 */
export function parseSigningBytes(bytes: Uint8Array): Result<SignedFields> {
  const r = new Reader(bytes);
  if (!bytesEqual(r.bytes(ENVELOPE_DOMAIN.length), ENVELOPE_DOMAIN)) return fail("signed bytes do not start with the envelope domain");
  const version = r.u8();
  if (version !== ENVELOPE_VERSION) return fail(`envelope version ${version}, not ${ENVELOPE_VERSION}`);
  const deviceLength = r.u8();
  if (deviceLength !== DEVICE_ID_HEX_DIGITS) return fail(`device id of ${deviceLength} characters, not ${DEVICE_ID_HEX_DIGITS}`);
  const deviceId = lowerHexAsciiToBytes(r.bytes(deviceLength));
  if (deviceId === null) return fail("device id is not lowercase hex");
  const seq = r.u64();
  const kindBytes = r.bytes(r.u8());
  let kind = "";
  for (const c of kindBytes) {
    if (c < 0x21 || c > 0x7e) return fail("envelope kind is not printable ASCII");
    kind += String.fromCharCode(c);
  }
  const timeMs = r.u64();
  const body = r.bytes(r.u32());
  if (r.failed) return fail("signed bytes are truncated");
  if (!r.done) return fail(`${r.remaining} bytes after the body`);
  return ok({ version, deviceId: deviceId as RawDeviceId, seq, kind, timeMs, body });
}

function lowerHexAsciiToBytes(text: Uint8Array): Uint8Array | null {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text[2 * i]!);
    const lo = hexValue(text[2 * i + 1]!);
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10; // a-f
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Envelope records: how an envelopes item carries them (after the item's own header).
//   u32 count ⌢ count × (publicKey 32 ⌢ u32 len ⌢ signingBytes len ⌢ signature 64)
// sorted by (device id, seq), strictly: the device id as its 16 bytes (the order of its lowercase
// hex), then seq as an unsigned integer.

/** One envelope as the gateway hands it over: the exact signed bytes, the key and the signature. */
export interface EnvelopeRecord {
  readonly publicKey: Uint8Array;
  readonly signingBytes: Uint8Array;
  readonly signature: Uint8Array;
}

/** A decoded envelope record: views into the payload plus the parsed signed fields. */
export interface EnvelopeRecordView extends EnvelopeRecord {
  readonly fields: SignedFields;
}

/** A service's bounds on one envelopes item. */
export interface EnvelopeItemBounds {
  readonly envelopesMax: number;
  readonly devicesMax: number;
  readonly payloadBytesMax: number;
}

/** Largest signed-bytes layout of one envelope: devices/envelope.ts caps envelopes at 64 KiB on the wire. */
export const SIGNING_BYTES_MAX = 64 * 1024;

/** Bytes one envelope takes in an envelopes item. */
export function envelopeRecordBytes(signingBytesLength: number): number {
  return ED25519_PUBLIC_KEY_BYTES + 4 + signingBytesLength + ED25519_SIGNATURE_BYTES;
}

/** Order of envelope records: device id bytes, then seq. */
export function compareDeviceSeq(
  a: { readonly deviceId: Uint8Array; readonly seq: bigint },
  b: { readonly deviceId: Uint8Array; readonly seq: bigint },
): number {
  const byDevice = compareBytes(a.deviceId, b.deviceId);
  if (byDevice !== 0) return byDevice;
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
}

export interface SortedEnvelopeRecord {
  readonly record: EnvelopeRecord;
  readonly deviceId: RawDeviceId;
  readonly seq: bigint;
}

/**
 * Records checked and sorted by (device id, seq), for an item whose header takes `headerBytes`.
 * Throws (a gateway bug) on a malformed signed layout, a repeated (device, seq), or a bound
 * exceeded: the caller batches within the bounds.
 */
export function sortEnvelopeRecords(records: readonly EnvelopeRecord[], bounds: EnvelopeItemBounds, headerBytes: number): SortedEnvelopeRecord[] {
  if (records.length > bounds.envelopesMax) throw new Error(`${records.length} envelopes > ENVELOPES_PER_ITEM_MAX = ${bounds.envelopesMax}`);
  const parsed = records.map((record, index) => {
    if (record.publicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new Error(`envelope ${index}: public key of ${record.publicKey.length} bytes`);
    if (record.signature.length !== ED25519_SIGNATURE_BYTES) throw new Error(`envelope ${index}: signature of ${record.signature.length} bytes`);
    if (record.signingBytes.length > SIGNING_BYTES_MAX) throw new Error(`envelope ${index}: ${record.signingBytes.length} signed bytes > ${SIGNING_BYTES_MAX}`);
    const fields = parseSigningBytes(record.signingBytes);
    if (!fields.ok) throw new Error(`envelope ${index}: ${fields.error}`);
    return { record, deviceId: fields.value.deviceId, seq: fields.value.seq };
  });
  parsed.sort(compareDeviceSeq);
  let devices = 0;
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i]!;
    const previous = parsed[i - 1];
    if (previous !== undefined && compareDeviceSeq(previous, p) === 0) throw new Error(`envelope (${toHex(p.deviceId)}, ${p.seq}) given twice`);
    if (previous === undefined || !bytesEqual(previous.deviceId, p.deviceId)) devices++;
  }
  if (devices > bounds.devicesMax) throw new Error(`${devices} devices > ENVELOPE_DEVICES_PER_ITEM_MAX = ${bounds.devicesMax}`);
  const size = headerBytes + envelopeRecordsBytes(parsed);
  if (size > bounds.payloadBytesMax) throw new Error(`envelopes item of ${size} bytes > ITEM_PAYLOAD_BYTES_MAX = ${bounds.payloadBytesMax}`);
  return parsed;
}

/** Bytes of the records part (count included). */
export function envelopeRecordsBytes(sorted: readonly SortedEnvelopeRecord[]): number {
  let size = 4;
  for (const p of sorted) size += envelopeRecordBytes(p.record.signingBytes.length);
  return size;
}

export function writeEnvelopeRecords(w: Writer, sorted: readonly SortedEnvelopeRecord[]): void {
  w.u32(sorted.length);
  for (const { record } of sorted) w.bytes(record.publicKey).u32(record.signingBytes.length).bytes(record.signingBytes).bytes(record.signature);
}

/** Reads the records part and checks its order and bounds; never throws. The caller checks what follows. */
export function readEnvelopeRecords(r: Reader, bounds: EnvelopeItemBounds): Result<EnvelopeRecordView[]> {
  const count = r.u32();
  if (count > bounds.envelopesMax) return fail(`${count} envelopes > ENVELOPES_PER_ITEM_MAX = ${bounds.envelopesMax}`);
  const records: EnvelopeRecordView[] = [];
  let devices = 0;
  for (let i = 0; i < count; i++) {
    const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES);
    const length = r.u32();
    if (length > SIGNING_BYTES_MAX) return fail(`envelope ${i}: ${length} signed bytes > SIGNING_BYTES_MAX = ${SIGNING_BYTES_MAX}`);
    const signingBytes = r.bytes(length);
    const signature = r.bytes(ED25519_SIGNATURE_BYTES);
    if (r.failed) return fail(`envelope ${i}: payload truncated`);
    const fields = parseSigningBytes(signingBytes);
    if (!fields.ok) return fail(`envelope ${i}: ${fields.error}`);
    const previous = records[i - 1]?.fields;
    const order = previous === undefined ? -1 : compareDeviceSeq(previous, fields.value);
    if (order >= 0)
      return fail(`envelope ${i}: (${toHex(fields.value.deviceId)}, ${fields.value.seq}) is ${order === 0 ? "a repeat" : "out of (device, seq) order"}`);
    if (previous === undefined || !bytesEqual(previous.deviceId, fields.value.deviceId)) devices++;
    if (devices > bounds.devicesMax) return fail(`more than ENVELOPE_DEVICES_PER_ITEM_MAX = ${bounds.devicesMax} devices`);
    records.push({ publicKey, signingBytes, signature, fields: fields.value });
  }
  if (r.failed) return fail("records truncated");
  return ok(records);
}

// ---------------------------------------------------------------------------------------------
// What refine hands on of accepted records.

/** Consecutive seqs start, start + 1, …, start + length - 1. */
export interface SeqRun {
  readonly start: bigint;
  readonly length: number;
}

/** A record refine refused, and why. */
export interface SeqRejection {
  readonly seq: bigint;
  readonly code: RejectionCode;
}

/** u64 start ⌢ u32 length: a run of at least one seq, within u64. */
export const seqRunCodec: Descriptor<SeqRun> = d.checked(
  d.object({ start: d.u64, length: d.u32 }),
  (run) => (run.length === 0 ? "an empty run" : run.start + BigInt(run.length) - 1n > U64_MAX ? "a run past 2^64" : null),
  "seq run",
);

/** u64 seq ⌢ u8 code: a record refused, with a registry code (`codes`: the ones the producer may give). */
export function seqRejectionCodec(codes: ReadonlySet<number> | null = null): Descriptor<SeqRejection> {
  return d.object({
    seq: d.u64,
    code: d.checked(
      d.u8 as Descriptor<RejectionCode>,
      (code) => (isRejectionCode(code) && (codes === null || codes.has(code)) ? null : `rejection code ${code}`),
      "rejection code",
    ),
  });
}

/** Ascending distinct seqs as runs of consecutive ones. */
export function toRuns(seqs: readonly bigint[]): SeqRun[] {
  const runs: { start: bigint; length: number }[] = [];
  for (const seq of seqs) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.start + BigInt(last.length) === seq) last.length++;
    else runs.push({ start: seq, length: 1 });
  }
  return runs;
}

/** deviceId 16 ⌢ u64 seq ⌢ H(body) 32: one accepted record's part of the commitment. */
const commitmentLeafCodec = d.object({ deviceId: d.bytes(DEVICE_ID_BYTES), seq: d.u64, bodyHash: d.bytes(32) });

/** The leaf bytes of the commitment for one accepted record. */
export const COMMITMENT_LEAF_BYTES = commitmentLeafCodec.fixedBytes!;

export function commitmentLeaf(deviceId: Uint8Array, seq: bigint, bodyHash: Uint8Array): Uint8Array {
  return encode(commitmentLeafCodec, { deviceId, seq, bodyHash });
}

/**
 * The leaves of an envelopes item's commitment, in the order of its accepted records, written into
 * one buffer sized for all the item's records; `commitment` hashes them: H(⌢ of the leaves).
 */
export class CommitmentLeaves {
  private readonly leaves: Uint8Array;
  private bytes = 0;

  constructor(records: number) {
    this.leaves = new Uint8Array(records * COMMITMENT_LEAF_BYTES);
  }

  add(deviceId: Uint8Array, seq: bigint, bodyHash: Uint8Array): void {
    const w = new Writer(COMMITMENT_LEAF_BYTES, this.leaves.subarray(this.bytes));
    commitmentLeafCodec.encodeTo(w, { deviceId, seq, bodyHash });
    w.finish();
    this.bytes += COMMITMENT_LEAF_BYTES;
  }

  /** H(⌢ of the leaves added), with the refine host's hash (gas-charged there). */
  commitment(hash: (data: Uint8Array) => Uint8Array): Uint8Array {
    return hash(this.leaves.subarray(0, this.bytes));
  }
}
