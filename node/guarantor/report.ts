/**
 * Builds the work report of a refined package (GP 11.1.1–11.1.4): availability specifier, context,
 * core, authorizer hash, and one result per item. The availability specifier carries the
 * package hash, the bundle length and the erasure root of its chunks (GP 14.4.1).
 */
import { FixedSizeArray } from "@typeberry/lib/collections";
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
import { codedError, err, ok, type Result } from "../../devices/protocol/errors.ts";
import { authorizerHash } from "../intake/authorizer.ts";
import type { RefineItemOutcome } from "../refine/task.ts";

export interface BundleSpec {
  readonly packageHash: Uint8Array;
  readonly bundleBytes: number;
  /** GP 14.4.1 erasure root of the bundle's chunks (node/availability/bundle.ts). */
  readonly erasureRoot: Uint8Array;
}

export function buildReport(params: ChainParams, p: WorkPackage, bundle: BundleSpec, core: number, outcomes: readonly RefineItemOutcome[]): Result<WorkReport> {
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
  if (resultBytes > params.maxReportResultsBytes)
    return err(codedError("JG_ERR_REPORT_OVERSIZE", `${resultBytes} bytes of results > W_R = ${params.maxReportResultsBytes}`));
  return ok(
    WorkReport.create({
      workPackageSpec: WorkPackageSpec.create({
        hash: h32(bundle.packageHash),
        length: tryAsU32(bundle.bundleBytes),
        erasureRoot: h32(bundle.erasureRoot),
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
