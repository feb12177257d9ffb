import { WorkPackage } from "@typeberry/lib/block";
import { describe, expect, it } from "vitest";
import { counterPayload } from "../testing/counter/types.ts";
import { tinyParams } from "../chain/params.ts";
import { decode } from "../codec/jam.ts";
import { buildWorkPackage } from "../intake/builder.ts";
import { counterItem, submitterKey } from "../testing/fixtures.ts";
import { buildReport } from "./report.ts";

const pkg = buildWorkPackage(tinyParams, {
  signer: submitterKey,
  anchor: { headerHash: new Uint8Array(32), stateRoot: new Uint8Array(32), slot: 0 },
  items: [counterItem(counterPayload.increment(1n)), counterItem(counterPayload.increment(2n))],
});
const p = decode(WorkPackage.Codec, pkg.bytes, tinyParams.spec) as WorkPackage;
const spec = { packageHash: pkg.hash, bundleBytes: pkg.bytes.length, erasureRoot: new Uint8Array(32).fill(3) };
const outcome = (bytes: number) => ({ ok: true as const, output: new Uint8Array(bytes), payloadHash: new Uint8Array(32), gasUsed: 5n });

describe("work report", () => {
  it("carries one result per item with the item's accumulate gas and the refine gas used", () => {
    const report = buildReport(tinyParams, p, spec, 1, [outcome(10), outcome(20)]);
    if (!report.ok) throw new Error(report.error.detail);
    expect(report.value.coreIndex).toBe(1);
    expect(Array.from(report.value.results, (r) => [r.gas, r.load.gasUsed, r.result.okBlob?.length])).toEqual([
      [1_000_000n, 5n, 10],
      [1_000_000n, 5n, 20],
    ]);
    expect(report.value.workPackageSpec.hash.raw).toEqual(pkg.hash);
  });

  it("refuses results over W_R in total", () => {
    const half = tinyParams.maxReportResultsBytes / 2;
    expect(buildReport(tinyParams, p, spec, 0, [outcome(half), outcome(half)]).ok).toBe(true);
    const over = buildReport(tinyParams, p, spec, 0, [outcome(half), outcome(half + 1)]);
    expect(over.ok ? "ok" : over.error.code).toBe("JG_ERR_REPORT_OVERSIZE");
  });

  it("fails with the first failed item's code", () => {
    const failed = buildReport(tinyParams, p, spec, 0, [outcome(1), { ok: false, code: "JG_ERR_REFINE_OUT_OF_GAS", detail: "item 1", gasUsed: 9n }]);
    expect(failed.ok ? "ok" : failed.error).toEqual({ code: "JG_ERR_REFINE_OUT_OF_GAS", detail: "item 1" });
  });
});
