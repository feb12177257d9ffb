/**
 * Availability assurances (GP 11.2): each validator signs, for the parent block, a bitfield of
 * the cores whose pending report's data it holds: `$jam_available ⌢ H(E(anchor, bitfield))`.
 * A report is available once more than two thirds of validators have assured it.
 *
 * This is the simple availability step: every in-process validator that holds the package
 * bundle assures it. Erasure-coded chunks per validator come with node/availability's next stage.
 */
import { AvailabilityAssurance, tryAsValidatorIndex } from "@typeberry/lib/block";
import { BitVec, Bytes } from "@typeberry/lib/bytes";
import type { ChainParams } from "../chain/params.ts";
import { h32 } from "../codec/jam.ts";
import { JAM_AVAILABLE, withContext } from "../crypto/contexts.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519 } from "../crypto/ed25519.ts";
import { hashParts } from "../crypto/hash.ts";

function assuranceMessage(anchor: Uint8Array, bitfield: BitVec): Uint8Array {
  return withContext(JAM_AVAILABLE, hashParts(anchor, bitfield.raw));
}

export function assure(
  params: ChainParams,
  validator: Ed25519KeyPair,
  validatorIndex: number,
  anchor: Uint8Array,
  cores: readonly number[],
): AvailabilityAssurance {
  const bitfield = BitVec.empty(params.coresCount);
  for (const core of cores) bitfield.setBit(core, true);
  return AvailabilityAssurance.create({
    anchor: h32(anchor),
    bitfield,
    validatorIndex: tryAsValidatorIndex(validatorIndex),
    signature: Bytes.fromBlob(signEd25519(validator, assuranceMessage(anchor, bitfield)), 64).asOpaque(),
  });
}

export function checkAssuranceSignature(validatorKeys: readonly Uint8Array[], a: AvailabilityAssurance): boolean {
  const key = validatorKeys[a.validatorIndex];
  return key !== undefined && verifyEd25519(key, assuranceMessage(a.anchor.raw, a.bitfield), a.signature.raw);
}

/** GP 11.2.1: available when assured by more than 2V/3 validators. */
export function isAvailable(params: ChainParams, assurances: number): boolean {
  return 3 * assurances > 2 * params.validatorsCount;
}
