/**
 * Which validators guarantee which core (GP 11.3, "Guarantor Assignments"), simplified: the Gray
 * Paper shuffles validators with epoch entropy before rotating; the embedded node has no
 * entropy (no Safrole), so it only rotates. Validator v works on core ⌊C·((v + r) mod V) / V⌋,
 * r = ⌊slot / R⌋, which gives each core V/C guarantors (3 of 6 on tiny).
 */
import type { ChainParams } from "../chain/params.ts";

export function coreOfValidator(params: ChainParams, validatorIndex: number, slot: number): number {
  const rotation = Math.floor(slot / params.rotationPeriod);
  return Math.floor((params.coresCount * ((validatorIndex + rotation) % params.validatorsCount)) / params.validatorsCount);
}

/** Validator indices assigned to `core` at `slot`, ascending. */
export function guarantorsOfCore(params: ChainParams, core: number, slot: number): number[] {
  const out: number[] = [];
  for (let v = 0; v < params.validatorsCount; v++) if (coreOfValidator(params, v, slot) === core) out.push(v);
  return out;
}
