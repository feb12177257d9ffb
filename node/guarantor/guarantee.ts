/**
 * Guarantees (GP 11.4): a report signed by guarantors of its core, each over
 * `$jam_guarantee ⌢ H(E(report))`, sorted by validator index.
 */
import { Credential, ReportGuarantee, tryAsTimeSlot, tryAsValidatorIndex, WorkReport } from "@typeberry/lib/block";
import { Bytes } from "@typeberry/lib/bytes";
import { asKnownSize } from "@typeberry/lib/collections";
import type { ChainParams } from "../chain/params.ts";
import { encode } from "../codec/jam.ts";
import { JAM_GUARANTEE, withContext } from "../crypto/contexts.ts";
import { type Ed25519KeyPair, signEd25519, verifyEd25519 } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import { guarantorsOfCore } from "./assignment.ts";

export function reportHash(params: ChainParams, report: WorkReport): Uint8Array {
  return hash(encode(WorkReport.Codec, report, params.spec));
}

/** Signs `report` by the first `guarantorsRequired` guarantors assigned to its core at `slot`. */
export function guarantee(params: ChainParams, validators: readonly Ed25519KeyPair[], report: WorkReport, slot: number): ReportGuarantee {
  const message = withContext(JAM_GUARANTEE, reportHash(params, report));
  const signers = guarantorsOfCore(params, report.coreIndex, slot).slice(0, params.guarantorsRequired);
  const credentials = signers.map((v) => {
    const key = validators[v];
    if (key === undefined) throw new Error(`no key for validator ${v}`);
    return Credential.create({ validatorIndex: tryAsValidatorIndex(v), signature: Bytes.fromBlob(signEd25519(key, message), 64).asOpaque() });
  });
  return ReportGuarantee.create({ report, slot: tryAsTimeSlot(slot), credentials: asKnownSize(credentials) });
}

/**
 * Why a guarantee cannot be included, or null if it can (GP 11.4: enough credentials, sorted and
 * unique, each from a guarantor of the report's core at the guarantee's slot, each a valid signature).
 */
export function checkGuarantee(params: ChainParams, validatorKeys: readonly Uint8Array[], g: ReportGuarantee): string | null {
  if (g.credentials.length < params.guarantorsRequired) return `only ${g.credentials.length} credentials`;
  const assigned = guarantorsOfCore(params, g.report.coreIndex, g.slot);
  const message = withContext(JAM_GUARANTEE, reportHash(params, g.report));
  let previous = -1;
  for (const c of g.credentials) {
    if (c.validatorIndex <= previous) return "credentials not sorted by validator index";
    previous = c.validatorIndex;
    if (!assigned.includes(c.validatorIndex)) return `validator ${c.validatorIndex} is not a guarantor of core ${g.report.coreIndex}`;
    const key = validatorKeys[c.validatorIndex];
    if (key === undefined || !verifyEd25519(key, message, c.signature.raw)) return `bad signature from validator ${c.validatorIndex}`;
  }
  return null;
}
