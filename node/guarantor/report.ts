/**
 * Builds the work report of a refined package (GP 11.1.1–11.1.4): availability specifier, context,
 * core, authorizer hash, and one result per item. The availability specifier's erasure root is,
 * for the simple availability step, H(bundle); the erasure-coding stage replaces it with the
 * Merkle root of the chunks.
 */
import {
  FixedSizeArray,
} from "@typeberry/lib/collections";
import {
  tryAsCoreIndex,
  tryAsServiceGas,
  WorkExecResult,
  type WorkPackage,
  WorkPackageSpec,
  WorkRefineLoad,
  WorkReport,
  WorkResult,
} from "@typeberry/lib/block";
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { tryAsU16, tryAsU32 } from "@typeberry/lib/numbers";
import type { ChainParams } from "../chain/params.ts";
import { h32 } from "../codec/jam.ts";
import { codedError, err, ok, type Result } from "../errors.ts";
import { hash } from "../crypto/hash.ts";
import { authorizerHash } from "../intake/authorizer.ts";
import type { RefineItemOutcome } from "../refine/task.ts";

export function buildReport(
  params: ChainParams,
  p: WorkPackage,
  packageHash: Uint8Array,
  bundle: Uint8Array,
  core: number,
  outcomes: readonly RefineItemOutcome[],
): Result<WorkReport> {
  const results: WorkResult[] = [];
  let resultBytes = 0;
  for (const [index, item] of p.items.entries()) {
    const outcome = outcomes[index];
    if (outcome === undefined) throw new Error(`refine returned no outcome for item ${index}`);
    if (!outcome.ok) return err(codedError(outcome.code, outcome.detail));
    resultBytes += outcome.output.length;
    results.push(
      WorkResult.create({
        serviceId: item.service,
        codeHash: item.codeHash,
        payloadHash: h32(outcome.payloadHash),
        gas: tryAsServiceGas(item.accumulateGasLimit),
        result: WorkExecResult.ok(BytesBlob.blobFrom(outcome.output)),
        load: WorkRefineLoad.create({
          gasUsed: tryAsServiceGas(outcome.gasUsed),
          importedSegments: tryAsU32(0),
          extrinsicCount: tryAsU32(0),
          extrinsicSize: tryAsU32(0),
          exportedSegments: tryAsU32(0),
        }),
      }),
    );
  }
  if (resultBytes > params.maxReportResultsBytes) return err(codedError("JG_ERR_REPORT_OVERSIZE", `${resultBytes} bytes of results > W_R = ${params.maxReportResultsBytes}`));
  return ok(
    WorkReport.create({
      workPackageSpec: WorkPackageSpec.create({
        hash: h32(packageHash),
        length: tryAsU32(bundle.length),
        erasureRoot: h32(hash(bundle)),
        exportsRoot: Bytes.zero(32).asOpaque(),
        exportsCount: tryAsU16(0),
      }),
      context: p.context,
      coreIndex: tryAsCoreIndex(core),
      authorizerHash: h32(authorizerHash(p)),
      authorizationOutput: BytesBlob.empty(),
      segmentRootLookup: [],
      results: FixedSizeArray.new(results, results.length as never),
      authorizationGasUsed: tryAsServiceGas(0),
    }),
  );
}
