/**
 * Chain parameters of the embedded node (Gray Paper v0.7.2, Appendix I.4.4 "Constants").
 *
 * `tiny` is the community test-vector chain spec (V=6, C=2, E=12); `full` is the Gray Paper's.
 * Both keep W_B, W_R and I at the Gray Paper values, so a package that fits here fits on a real
 * JAM network.
 */
import { type ChainSpec, fullChainSpec, tinyChainSpec } from "@typeberry/lib/config";

export type ChainName = "tiny" | "full";

export interface ChainParams {
  readonly name: ChainName;
  /** typeberry's chain spec (validator and core counts, epoch length) for the codec. */
  readonly spec: ChainSpec;
  /** V: validators. */
  readonly validatorsCount: number;
  /** C: cores. */
  readonly coresCount: number;
  /** E: slots per epoch. */
  readonly epochLength: number;
  /** R: slots between rotations of validator-to-core assignments. */
  readonly rotationPeriod: number;
  /** I: maximum work items in a package. */
  readonly maxWorkItems: number;
  /** W_B: maximum size of an encoded work-package bundle, in bytes. */
  readonly maxBundleBytes: number;
  /** W_R: maximum total size of the results (and authorization output) of a report, in bytes. */
  readonly maxReportResultsBytes: number;
  /** G_R: refine gas for a whole package. */
  readonly refineGasPerPackage: bigint;
  /** G_A: accumulate gas for one report. */
  readonly accumulateGasPerReport: bigint;
  /** G_T: accumulate gas for one block. */
  readonly accumulateGasPerBlock: bigint;
  /** U: slots a reported package may wait for availability before it is dropped. */
  readonly availabilityTimeoutSlots: number;
  /** L: maximum age of a package's anchor block, in slots. */
  readonly maxAnchorAgeSlots: number;
  /** Guarantor signatures a report needs (GP 11.4: two of the three assigned guarantors). */
  readonly guarantorsRequired: number;
}

/** W_B, GP I.4.4: 13,791,360 bytes (12 MiB of data plus import/extrinsic overhead). */
const W_B = 13_791_360;
/** W_R, GP I.4.4: 48 KiB of results per report. */
const W_R = 49_152;

export const tinyParams: ChainParams = {
  name: "tiny",
  spec: tinyChainSpec,
  validatorsCount: 6,
  coresCount: 2,
  epochLength: 12,
  rotationPeriod: 4,
  maxWorkItems: 16,
  maxBundleBytes: W_B,
  maxReportResultsBytes: W_R,
  refineGasPerPackage: 1_000_000_000n,
  accumulateGasPerReport: 10_000_000n,
  accumulateGasPerBlock: 20_000_000n,
  availabilityTimeoutSlots: 5,
  maxAnchorAgeSlots: 24,
  guarantorsRequired: 2,
};

export const fullParams: ChainParams = {
  name: "full",
  spec: fullChainSpec,
  validatorsCount: 1023,
  coresCount: 341,
  epochLength: 600,
  rotationPeriod: 10,
  maxWorkItems: 16,
  maxBundleBytes: W_B,
  maxReportResultsBytes: W_R,
  refineGasPerPackage: 5_000_000_000n,
  accumulateGasPerReport: 10_000_000n,
  accumulateGasPerBlock: 3_500_000_000n,
  availabilityTimeoutSlots: 5,
  maxAnchorAgeSlots: 14_400,
  guarantorsRequired: 2,
};

export function chainParams(name: ChainName): ChainParams {
  return name === "full" ? fullParams : tinyParams;
}
