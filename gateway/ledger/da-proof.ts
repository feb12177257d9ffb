/**
 * A raw reading's path into the chain through data availability (GP §14), for `jamgate-proof/1`
 * proofs of kind "reading" (gateway/README.md, proofs): the device's signed envelope
 * record at a place in its work package's bundle, the bundle's hash (the package hash) and
 * erasure root (GP 14.4.1), the work report that names both (GP 11.1.4), and the block whose
 * guarantees extrinsic carries that report, committed to by its header's extrinsic hash (GP 5.4).
 * From that block on, proof.ts links headers up to the anchor.
 *
 * The embedded node's bundle is the encoded work package itself (no imports or extrinsics:
 * JG_ERR_PACKAGE_UNSUPPORTED), so H(bundle) is the package hash and the erasure root is over
 * its chunks (node/availability/bundle.ts). Envelopes are found by decoding the package and its
 * items with the service's own payload decoders, never by searching bytes: a record counts only
 * where the service's refine would read one.
 *
 * `readingProof` assembles the `da` part from a node (`NodeApi`); `verifyReadingDa` checks one
 * with nothing but its bytes. This module does not import proof.ts (proof.ts imports it).
 */
import type { NodeApi } from "../../node/api.ts";
import { encodeBundle } from "../../node/availability/bundle.ts";
import { extrinsicHash, headerHash } from "../../node/chain/block.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import type { ChainParams } from "../../node/chain/params.ts";
import { Block, bytesEqual, decode, encode, toHex, WorkPackage, WorkReport } from "../../node/codec/jam.ts";
import { verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { type CodedError, codedError, err, JamgateError, ok, type Result } from "../../devices/protocol/errors.ts";
import { decodeEnvelopesItem as decodeEnergyEnvelopes } from "../../services/energy-trading/types.ts";
import { ENERGY_SERVICE_NAME } from "../../services/energy-trading/types.ts";
import {
  DEVICE_ID_BYTES,
  decodeEnvelopesItem as decodeTelemetryEnvelopes,
  envelopeRecordBytes,
  ItemKind,
  TELEMETRY_SERVICE_NAME,
  W_R,
} from "../../services/telemetry/types.ts";
import type { Hex } from "./types.ts";

/** The services whose work items carry device envelopes, by the name their code hash is made from (node/chain/genesis.ts nativeCodeHash). */
export const READING_SERVICES = [TELEMETRY_SERVICE_NAME, ENERGY_SERVICE_NAME] as const;
export type ReadingService = (typeof READING_SERVICES)[number];

/** The `da` part of a reading proof. */
export interface ProofDa {
  readonly packageHash: Hex;
  /** The work-package bundle, base64 (RFC 4648 §4, padded). */
  readonly bundle: string;
  /** Where the envelope record is in the bundle: its first octet and its length. */
  readonly envelope: { readonly offset: number; readonly length: number };
  /** GP-encoded WorkReport (GP C.26), hex. */
  readonly report: Hex;
  /** GP-encoded Block that guaranteed the report, hex. */
  readonly reportBlock: Hex;
}

/**
 * Largest encoded work report taken: W_R (its results and authorization output together, GP
 * 11.1.4) plus 16 KiB for the fixed fields (package spec, refine context, up to I = 16 results'
 * headers of about 120 octets each), which never come near it.
 */
export const REPORT_BYTES_MAX = W_R + 16 * 1024;
/** Largest encoded header taken: a full-chain header with an epoch marker (1,023 validators × 64 octets) and a tickets marker (600 × 33) is about 86 KB. */
export const HEADER_BYTES_MAX = 128 * 1024;
/** Octets a block may spend on what the embedded node never puts in one (tickets, preimages, disputes): another implementation's block still fits. */
const OTHER_EXTRINSIC_BYTES_MAX = 64 * 1024;

/**
 * Largest encoded block taken as a proof's report block: its header, a guarantee per core (a
 * report and up to three credentials of 66 octets), an assurance per validator (anchor 32, a bit
 * per core, index 2, signature 64), and OTHER_EXTRINSIC_BYTES_MAX. Tiny: about 213 KB.
 */
export function reportBlockBytesMax(params: ChainParams): number {
  const guarantee = REPORT_BYTES_MAX + 4 + 1 + 3 * 66;
  const assurance = 32 + Math.ceil(params.coresCount / 8) + 2 + 64;
  return HEADER_BYTES_MAX + params.coresCount * guarantee + params.validatorsCount * assurance + OTHER_EXTRINSIC_BYTES_MAX;
}

/** One envelope record of a bundle: where it is and what it says (views into the bundle). */
export interface LocatedEnvelope {
  readonly offset: number;
  readonly length: number;
  readonly itemIndex: number;
  readonly publicKey: Uint8Array;
  readonly signingBytes: Uint8Array;
  readonly signature: Uint8Array;
  readonly deviceId: Uint8Array;
  readonly seq: bigint;
  readonly kind: string;
  readonly timeMs: bigint;
  readonly body: Uint8Array;
}

/** What a checked `da` part proves: the envelope, and the block that guaranteed its package. */
export interface VerifiedReading {
  readonly envelope: LocatedEnvelope;
  readonly reportBlockHash: Uint8Array;
  readonly reportBlockSlot: number;
}

/** Decodes `bytes` whole, or returns null: the edge of untrusted input, where typeberry's decoder throws on malformed bytes. */
function tryDecode<T>(what: () => T): T | null {
  try {
    return what();
  } catch {
    return null;
  }
}

/** The byte offset of `view` in `within`, which it must be a view of (decoders hand out views: typeberry's Decoder and services' Reader both subarray). */
function offsetIn(view: Uint8Array, within: Uint8Array): number {
  if (view.buffer !== within.buffer) throw new Error("a decoded field is not a view of the bundle");
  return view.byteOffset - within.byteOffset;
}

/**
 * The envelope records of the service's envelopes items of a decoded package, each with its place
 * in `bundle` (the package's encoding the package was decoded from). Only items whose code hash
 * is the service's and whose kind byte is "envelopes" are read; `onlyItemAt`, when given, limits
 * the decoding to the item whose payload holds that offset (a verifier decodes one item, not 16).
 */
export function envelopesInPackage(pkg: WorkPackage, bundle: Uint8Array, service: ReadingService, onlyItemAt?: number): Result<LocatedEnvelope[], string> {
  const codeHash = nativeCodeHash(service);
  const found: LocatedEnvelope[] = [];
  for (const [itemIndex, item] of pkg.items.entries()) {
    if (!bytesEqual(item.codeHash.raw, codeHash)) continue;
    const payload = item.payload.raw;
    const payloadOffset = offsetIn(payload, bundle);
    if (onlyItemAt !== undefined && (onlyItemAt < payloadOffset || onlyItemAt >= payloadOffset + payload.length)) continue;
    if (payload[0] !== ItemKind.envelopes) continue;
    const decoded = service === TELEMETRY_SERVICE_NAME ? decodeTelemetryEnvelopes(payload) : mapOk(decodeEnergyEnvelopes(payload), (i) => i.records);
    if (!decoded.ok) return err(`work item ${itemIndex} of ${service} does not decode: ${decoded.error}`);
    for (const record of decoded.value) {
      found.push({
        offset: offsetIn(record.publicKey, bundle),
        length: envelopeRecordBytes(record.signingBytes.length),
        itemIndex,
        publicKey: record.publicKey,
        signingBytes: record.signingBytes,
        signature: record.signature,
        deviceId: record.fields.deviceId,
        seq: record.fields.seq,
        kind: record.fields.kind,
        timeMs: record.fields.timeMs,
        body: record.fields.body,
      });
    }
  }
  return ok(found);
}

function mapOk<T, U, E>(r: { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E }, f: (value: T) => U): Result<U, E> {
  return r.ok ? ok(f(r.value)) : err(r.error);
}

// ---------------------------------------------------------------------------------------------
// Assembling (server side).

export interface ReadingProofRequest {
  readonly api: Pick<NodeApi, "fetchWorkPackage" | "workReport" | "block">;
  readonly params: ChainParams;
  readonly service: ReadingService;
  readonly packageHash: Uint8Array;
  /** 16 raw octets. */
  readonly device: Uint8Array;
  readonly seq: bigint;
  /** The package's report (its status's reportHash) and the block that carried it (reportedIn). */
  readonly reportHash: Uint8Array;
  readonly reportBlockHash: Uint8Array;
}

/**
 * The `da` part of a proof that the device's envelope (device, seq) was in the package:
 * JG_ERR_PROOF_UNAVAILABLE when the node no longer has the bundle (past DA retention), the report
 * or the block; JG_ERR_NOT_FOUND when the package holds no such envelope; JG_ERR_PROOF_DA when the
 * report does not name the package or the block does not carry the report (the caller's index
 * disagrees with the node). Other errors of the node (a closed connection) are thrown.
 */
export async function readingProof(request: ReadingProofRequest): Promise<Result<ProofDa>> {
  const { api, params, packageHash } = request;
  let bundle: Uint8Array;
  try {
    bundle = await api.fetchWorkPackage(packageHash);
  } catch (e) {
    if (e instanceof JamgateError && e.code === "JG_ERR_DA_UNAVAILABLE") return err(codedError("JG_ERR_PROOF_UNAVAILABLE", e.detail));
    throw e;
  }
  const pkg = decode<WorkPackage>(WorkPackage.Codec, bundle, params.spec); // the node checked it against its hash: it decodes
  const envelopes = envelopesInPackage(pkg, bundle, request.service);
  if (!envelopes.ok) return err(codedError("JG_ERR_PROOF_DA", envelopes.error));
  const envelope = envelopes.value.find((e) => bytesEqual(e.deviceId, request.device) && e.seq === request.seq);
  if (envelope === undefined)
    return err(codedError("JG_ERR_NOT_FOUND", `package ${toHex(packageHash)} holds no ${request.service} envelope (${toHex(request.device)}, ${request.seq})`));
  const report = await api.workReport(request.reportHash);
  if (report === null) return err(codedError("JG_ERR_PROOF_UNAVAILABLE", `the node has no work report ${toHex(request.reportHash)}`));
  if (!bytesEqual(decode<WorkReport>(WorkReport.Codec, report, params.spec).workPackageSpec.hash.raw, packageHash)) {
    return err(codedError("JG_ERR_PROOF_DA", `work report ${toHex(request.reportHash)} is not of package ${toHex(packageHash)}`));
  }
  const block = await api.block(request.reportBlockHash);
  if (block === null) return err(codedError("JG_ERR_PROOF_UNAVAILABLE", `the node has no block ${toHex(request.reportBlockHash)}`));
  const carried = decode<Block>(Block.Codec, block, params.spec).extrinsic.guarantees.some((g) =>
    bytesEqual(encode<WorkReport>(WorkReport.Codec, g.report, params.spec), report),
  );
  if (!carried)
    return err(codedError("JG_ERR_PROOF_DA", `block ${toHex(request.reportBlockHash)} does not guarantee work report ${toHex(request.reportHash)}`));
  return ok({
    packageHash: toHex(packageHash),
    bundle: Buffer.from(bundle.buffer, bundle.byteOffset, bundle.byteLength).toString("base64"),
    envelope: { offset: envelope.offset, length: envelope.length },
    report: toHex(report),
    reportBlock: toHex(block),
  });
}

// ---------------------------------------------------------------------------------------------
// Checking (offline).

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Base64 characters of a bundle of W_B octets. */
export function bundleBase64Max(params: ChainParams): number {
  return 4 * Math.ceil(params.maxBundleBytes / 3);
}

function daError(detail: string): Result<never> {
  return err(codedError("JG_ERR_PROOF_DA", detail));
}

function formatError(detail: string): Result<never> {
  return err(codedError("JG_ERR_PROOF_FORMAT", detail));
}

/** Bytes of a hex field the schema has checked for digits; null when its length is odd. */
function hexBytes(hex: string): Uint8Array | null {
  return hex.length % 2 === 0 ? new Uint8Array(Buffer.from(hex, "hex")) : null;
}

/**
 * Checks a reading's `da` part of a proof for `service` on the chain `params` (fields already
 * shape-checked by proof.ts): JG_ERR_PROOF_FORMAT for a field that does not decode,
 * JG_ERR_PROOF_DA for a link that does not hold. On success, the envelope it proves and the
 * report block's header hash and slot, which the proof's first header must follow. Whether the
 * envelope is the claim's (device, seq) is the caller's check (JG_ERR_PROOF_CLAIM).
 */
export function verifyReadingDa(params: ChainParams, service: ReadingService, da: ProofDa): Result<VerifiedReading, CodedError> {
  if (da.bundle.length > bundleBase64Max(params) || da.bundle.length % 4 !== 0 || !BASE64.test(da.bundle))
    return formatError(`da.bundle is not base64 of at most W_B = ${params.maxBundleBytes} octets`);
  const bundle = new Uint8Array(Buffer.from(da.bundle, "base64"));
  if (bundle.length > params.maxBundleBytes) return formatError(`da.bundle holds ${bundle.length} octets > W_B = ${params.maxBundleBytes}`);
  const packageHash = hexBytes(da.packageHash);
  if (packageHash === null || packageHash.length !== 32) return formatError("da.packageHash is not 32 octets");
  if (!bytesEqual(hash(bundle), packageHash)) return daError(`the bundle hashes to ${toHex(hash(bundle))}, not to the package hash ${da.packageHash}`);
  const pkg = tryDecode(() => decode<WorkPackage>(WorkPackage.Codec, bundle, params.spec));
  if (pkg === null) return daError("the bundle is not a GP-encoded work package");

  const { offset, length } = da.envelope;
  if (offset + length > bundle.length) return daError(`the envelope at ${offset}..${offset + length} is past the bundle's ${bundle.length} octets`);
  const envelopes = envelopesInPackage(pkg, bundle, service, offset);
  if (!envelopes.ok) return daError(envelopes.error);
  const envelope = envelopes.value.find((e) => e.offset === offset);
  if (envelope === undefined) return daError(`no ${service} envelope record starts at octet ${offset} of the bundle`);
  if (envelope.length !== length) return daError(`the envelope record at ${offset} is ${envelope.length} octets, not ${length}`);
  if (!bytesEqual(hash(envelope.publicKey).subarray(0, DEVICE_ID_BYTES), envelope.deviceId))
    return daError(`the record's key is not device ${toHex(envelope.deviceId)}'s (its id is the key's hash)`);
  if (!verifyEd25519(envelope.publicKey, envelope.signingBytes, envelope.signature))
    return daError(`the envelope's signature does not verify with device ${toHex(envelope.deviceId)}'s key`);

  const reportBytes = hexBytes(da.report);
  if (reportBytes === null || reportBytes.length > REPORT_BYTES_MAX) return formatError(`da.report is not hex of at most ${REPORT_BYTES_MAX} octets`);
  const report = tryDecode(() => decode<WorkReport>(WorkReport.Codec, reportBytes, params.spec));
  if (report === null) return formatError("da.report is not a GP-encoded work report");
  const spec = report.workPackageSpec;
  if (!bytesEqual(spec.hash.raw, packageHash)) return daError(`the report is of package ${toHex(spec.hash.raw)}, not ${da.packageHash}`);
  if (spec.length !== bundle.length) return daError(`the report's bundle is ${spec.length} octets, the proof's ${bundle.length}`);
  const erasureRoot = encodeBundle(params.name, bundle).erasureRoot;
  if (!bytesEqual(spec.erasureRoot.raw, erasureRoot))
    return daError(`the bundle's erasure root is ${toHex(erasureRoot)}, the report's ${toHex(spec.erasureRoot.raw)}`);

  const blockBytes = hexBytes(da.reportBlock);
  if (blockBytes === null || blockBytes.length > reportBlockBytesMax(params))
    return formatError(`da.reportBlock is not hex of at most ${reportBlockBytesMax(params)} octets`);
  const block = tryDecode(() => decode<Block>(Block.Codec, blockBytes, params.spec));
  if (block === null || !bytesEqual(encode<Block>(Block.Codec, block, params.spec), blockBytes))
    return formatError("da.reportBlock is not a canonically GP-encoded block");
  const carried = block.extrinsic.guarantees.some((g) => bytesEqual(encode<WorkReport>(WorkReport.Codec, g.report, params.spec), reportBytes));
  if (!carried) return daError("the report block's guarantees do not carry the report");
  if (!bytesEqual(extrinsicHash(params, block.extrinsic), block.header.extrinsicHash.raw))
    return daError("the report block's header does not commit to its extrinsic (extrinsic hash)");
  return ok({ envelope, reportBlockHash: headerHash(params, block.header), reportBlockSlot: block.header.timeSlotIndex });
}
