/**
 * Blocks (GP 5): header hash, extrinsic hash, and the embedded node's Ed25519 seal.
 *
 * Out of scope, stated plainly: Safrole and Bandersnatch. The Gray Paper seals a header with a
 * Bandersnatch ring-VRF ticket or fallback signature and derives entropy from it; the embedded
 * node has V in-process validators, authors round-robin (slot mod V) and seals with the author's
 * Ed25519 key: `seal` holds the 64-byte signature of `$jamgate_seal_ed25519 ⌢ H(E_U(header))`
 * followed by 32 zero bytes, and `entropySource` is zero.
 */
import {
  Block,
  DisputesExtrinsic,
  Extrinsic,
  Header,
  ReportGuarantee,
  tryAsTimeSlot,
  tryAsValidatorIndex,
  type AvailabilityAssurance,
  assurancesExtrinsicCodec,
  ticketsExtrinsicCodec,
  preimagesExtrinsicCodec,
  WorkReport,
} from "@typeberry/lib/block";
import { Bytes } from "@typeberry/lib/bytes";
import { asKnownSize } from "@typeberry/lib/collections";
import { codec } from "@typeberry/lib/codec";
import type { ChainParams } from "./params.ts";
import { encode, h32 } from "../codec/jam.ts";
import { JAMGATE_SEAL, withContext } from "../crypto/contexts.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519 } from "../crypto/ed25519.ts";
import { hash, hashParts } from "../crypto/hash.ts";

export const ZERO_HASH = new Uint8Array(32);
const SEAL_BYTES = 96;

export function headerHash(params: ChainParams, header: Header): Uint8Array {
  return hash(encode(Header.Codec, header, params.spec));
}

/**
 * GP 5.4 (eq. 5.4–5.6) extrinsic hash: H(E(H(E_T), H(E_P), H(g), H(E_A), H(E_D))), where g encodes
 * each guarantee as (H(E(report)), E_4(slot), E(credentials)).
 */
export function extrinsicHash(params: ChainParams, extrinsic: Extrinsic): Uint8Array {
  const spec = params.spec;
  const guaranteeParts: Uint8Array[] = [encode(codec.varU32, extrinsic.guarantees.length as never)];
  for (const g of extrinsic.guarantees) {
    guaranteeParts.push(hash(encode(WorkReport.Codec, g.report, spec)));
    guaranteeParts.push(encode(codec.u32, g.slot as never));
    guaranteeParts.push(encode(ReportGuarantee.Codec, g, spec).subarray(encode(WorkReport.Codec, g.report, spec).length + 4));
  }
  return hashParts(
    hash(encode(ticketsExtrinsicCodec, extrinsic.tickets, spec)),
    hash(encode(preimagesExtrinsicCodec, extrinsic.preimages, spec)),
    hashParts(...guaranteeParts),
    hash(encode(assurancesExtrinsicCodec, extrinsic.assurances, spec)),
    hash(encode(DisputesExtrinsic.Codec, extrinsic.disputes, spec)),
  );
}

export function makeExtrinsic(guarantees: readonly ReportGuarantee[], assurances: readonly AvailabilityAssurance[]): Extrinsic {
  return Extrinsic.create({
    tickets: asKnownSize([]),
    preimages: [],
    guarantees: asKnownSize([...guarantees]),
    assurances: asKnownSize([...assurances]),
    disputes: DisputesExtrinsic.create({ verdicts: [], culprits: [], faults: [] }),
  });
}

export interface UnsealedHeaderFields {
  readonly parentHash: Uint8Array;
  readonly priorStateRoot: Uint8Array;
  readonly slot: number;
  readonly authorIndex: number;
}

function sealMessage(params: ChainParams, header: Header): Uint8Array {
  const unsealed = Header.create({ ...header, seal: Bytes.zero(SEAL_BYTES).asOpaque() });
  return withContext(JAMGATE_SEAL, hash(encode(Header.Codec, unsealed, params.spec)));
}

export function sealBlock(params: ChainParams, fields: UnsealedHeaderFields, extrinsic: Extrinsic, author: Ed25519KeyPair): Block {
  const unsealed = Header.create({
    parentHeaderHash: h32(fields.parentHash),
    priorStateRoot: h32(fields.priorStateRoot),
    extrinsicHash: h32(extrinsicHash(params, extrinsic)),
    timeSlotIndex: tryAsTimeSlot(fields.slot),
    epochMarker: null,
    ticketsMarker: null,
    bandersnatchBlockAuthorIndex: tryAsValidatorIndex(fields.authorIndex),
    entropySource: Bytes.zero(SEAL_BYTES).asOpaque(),
    offendersMarker: [],
    seal: Bytes.zero(SEAL_BYTES).asOpaque(),
  });
  const seal = new Uint8Array(SEAL_BYTES);
  seal.set(signEd25519(author, sealMessage(params, unsealed)), 0);
  return Block.create({ header: Header.create({ ...unsealed, seal: Bytes.fromBlob(seal, SEAL_BYTES).asOpaque() }), extrinsic });
}

export function checkSeal(params: ChainParams, header: Header, authorKey: Uint8Array): boolean {
  const seal = header.seal.raw;
  if (seal.subarray(64).some((b) => b !== 0)) return false;
  return verifyEd25519(authorKey, sealMessage(params, header), seal.subarray(0, 64));
}

/** The genesis header: slot 0, no parent, committing to the genesis state; unsealed. */
export function genesisBlock(params: ChainParams, genesisStateRoot: Uint8Array): Block {
  const extrinsic = makeExtrinsic([], []);
  return Block.create({
    header: Header.create({
      parentHeaderHash: h32(ZERO_HASH),
      priorStateRoot: h32(genesisStateRoot),
      extrinsicHash: h32(extrinsicHash(params, extrinsic)),
      timeSlotIndex: tryAsTimeSlot(0),
      epochMarker: null,
      ticketsMarker: null,
      bandersnatchBlockAuthorIndex: tryAsValidatorIndex(0),
      entropySource: Bytes.zero(SEAL_BYTES).asOpaque(),
      offendersMarker: [],
      seal: Bytes.zero(SEAL_BYTES).asOpaque(),
    }),
    extrinsic,
  });
}

export function encodeBlock(params: ChainParams, block: Block): Uint8Array {
  return encode(Block.Codec, block, params.spec);
}
