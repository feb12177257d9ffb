/**
 * JSON <-> typeberry object conversions for the codec vectors
 * (JSON shape: jam-test-vectors `lib/jam-types.asn`, snake_case keys,
 * `0x`-prefixed hex for byte strings, plain JSON numbers for integers).
 *
 * - `*FromJson`: typeberry `json-parser` descriptors (used with `parseFromJson`)
 *   for the types typeberry's `block-json` has no parser for: work item and
 *   work package (GP §14.3, "Packages and Items"). They build the objects with
 *   the typeberry `create()` builders.
 * - `*ToJson`: the inverse "JSON view" of a decoded object, so a test can
 *   deep-compare it with the vector's `.json`: refine context (GP §11.1.2),
 *   work item / work package (GP §14.3), work result / work report (GP §11.1).
 */
import {
  ImportSpec,
  type RefineContext,
  tryAsServiceGas,
  tryAsServiceId,
  tryAsSegmentIndex,
  tryAsWorkItemsCount,
  WorkExecResultKind,
  WorkItem,
  WorkItemExtrinsicSpec,
  WorkPackage,
  type WorkReport,
  type WorkResult,
} from "@typeberry/lib/block";
import { fromJson, refineContextFromJson } from "@typeberry/lib/block-json";
import type { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { asKnownSize, FixedSizeArray } from "@typeberry/lib/collections";
import { json } from "@typeberry/lib/json-parser";
import { tryAsU16, tryAsU32 } from "@typeberry/lib/numbers";

// ---------------------------------------------------------------------------
// JSON -> object
// ---------------------------------------------------------------------------

/** Gas (u64) from a JSON number (or bigint). */
const gasFromJson = json.fromBigInt((x) => tryAsServiceGas(x));

/** `ImportSpec` JSON: `{ tree_root, index }`. */
export const importSpecFromJson = json.object<{ tree_root: Bytes<32>; index: number }, ImportSpec>(
  {
    tree_root: fromJson.bytes32(),
    index: "number",
  },
  ({ tree_root, index }) => ImportSpec.create({ treeRoot: tree_root, index: tryAsSegmentIndex(index) }),
);

/** `WorkItemExtrinsicSpec` JSON: `{ hash, len }`. */
export const extrinsicSpecFromJson = json.object<{ hash: Bytes<32>; len: number }, WorkItemExtrinsicSpec>(
  {
    hash: fromJson.bytes32(),
    len: "number",
  },
  ({ hash, len }) => WorkItemExtrinsicSpec.create({ hash: hash.asOpaque(), len: tryAsU32(len) }),
);

interface WorkItemJson {
  service: number;
  code_hash: Bytes<32>;
  refine_gas_limit: ReturnType<typeof tryAsServiceGas>;
  accumulate_gas_limit: ReturnType<typeof tryAsServiceGas>;
  export_count: number;
  payload: BytesBlob;
  import_segments: ImportSpec[];
  extrinsic: WorkItemExtrinsicSpec[];
}

/** Work item (GP §14.3), built with `WorkItem.create`. */
export const workItemFromJson = json.object<WorkItemJson, WorkItem>(
  {
    service: "number",
    code_hash: fromJson.bytes32(),
    refine_gas_limit: gasFromJson,
    accumulate_gas_limit: gasFromJson,
    export_count: "number",
    payload: fromJson.bytesBlob,
    import_segments: json.array(importSpecFromJson),
    extrinsic: json.array(extrinsicSpecFromJson),
  },
  (w) =>
    WorkItem.create({
      service: tryAsServiceId(w.service),
      codeHash: w.code_hash.asOpaque(),
      payload: w.payload,
      refineGasLimit: w.refine_gas_limit,
      accumulateGasLimit: w.accumulate_gas_limit,
      importSegments: asKnownSize(w.import_segments),
      extrinsic: w.extrinsic,
      exportCount: tryAsU16(w.export_count),
    }),
);

interface WorkPackageJson {
  auth_code_host: number;
  auth_code_hash: Bytes<32>;
  context: RefineContext;
  authorization: BytesBlob;
  authorizer_config: BytesBlob;
  items: WorkItem[];
}

/** Work package `P` (GP §14.3), built with `WorkPackage.create`. */
export const workPackageFromJson = json.object<WorkPackageJson, WorkPackage>(
  {
    auth_code_host: "number",
    auth_code_hash: fromJson.bytes32(),
    context: refineContextFromJson,
    authorization: fromJson.bytesBlob,
    authorizer_config: fromJson.bytesBlob,
    items: json.array(workItemFromJson),
  },
  (p) =>
    WorkPackage.create({
      authToken: p.authorization,
      authCodeHost: tryAsServiceId(p.auth_code_host),
      authCodeHash: p.auth_code_hash.asOpaque(),
      authConfiguration: p.authorizer_config,
      context: p.context,
      items: FixedSizeArray.new(p.items, tryAsWorkItemsCount(p.items.length)),
    }),
);

// ---------------------------------------------------------------------------
// object -> JSON view
// ---------------------------------------------------------------------------

/** `0x`-prefixed lowercase hex, as in the vectors. */
const hex = (b: BytesBlob): string => b.toString();

/** u64 as a JSON number; refuses values a JSON number could not have carried exactly. */
function u64(x: bigint): number {
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Error(`u64 value ${x} is not representable as an exact JSON number`);
  }
  return Number(x);
}

/** Refinement context (GP §11.1.2): anchor, state root, beefy root, lookup anchor, its slot, prerequisites. */
export function refineContextToJson(c: RefineContext) {
  return {
    anchor: hex(c.anchor),
    state_root: hex(c.stateRoot),
    beefy_root: hex(c.beefyRoot),
    lookup_anchor: hex(c.lookupAnchor),
    lookup_anchor_slot: Number(c.lookupAnchorSlot),
    prerequisites: c.prerequisites.map(hex),
  };
}

/** Work item (GP §14.3). */
export function workItemToJson(w: WorkItem) {
  return {
    service: Number(w.service),
    code_hash: hex(w.codeHash),
    refine_gas_limit: u64(w.refineGasLimit),
    accumulate_gas_limit: u64(w.accumulateGasLimit),
    export_count: Number(w.exportCount),
    payload: hex(w.payload),
    import_segments: w.importSegments.map((s) => ({ tree_root: hex(s.treeRoot), index: Number(s.index) })),
    extrinsic: w.extrinsic.map((x) => ({ hash: hex(x.hash), len: Number(x.len) })),
  };
}

/** Work package `P` (GP §14.3). */
export function workPackageToJson(p: WorkPackage) {
  return {
    auth_code_host: Number(p.authCodeHost),
    auth_code_hash: hex(p.authCodeHash),
    context: refineContextToJson(p.context),
    authorization: hex(p.authToken),
    authorizer_config: hex(p.authConfiguration),
    // `Array.from`, not `.map`: `FixedSizeArray#map` returns a `FixedSizeArray`,
    // which `toEqual` tells apart from the plain array of the parsed .json.
    items: Array.from(p.items, workItemToJson),
  };
}

/**
 * JSON key of each work execution result kind (GP §11.1.4):
 * names as used by the vectors / typeberry's `workResultFromJson`.
 */
const RESULT_KEYS: Record<WorkExecResultKind, string> = {
  [WorkExecResultKind.ok]: "ok",
  [WorkExecResultKind.outOfGas]: "out_of_gas",
  [WorkExecResultKind.panic]: "panic",
  [WorkExecResultKind.incorrectNumberOfExports]: "bad_exports",
  [WorkExecResultKind.digestTooBig]: "output_oversize",
  [WorkExecResultKind.badCode]: "bad_code",
  [WorkExecResultKind.codeOversize]: "code_oversize",
};

/** Work digest / result (GP §11.1.4). */
export function workResultToJson(r: WorkResult) {
  const key = RESULT_KEYS[r.result.kind];
  const okBlob = r.result.okBlob;
  return {
    service_id: Number(r.serviceId),
    code_hash: hex(r.codeHash),
    payload_hash: hex(r.payloadHash),
    accumulate_gas: u64(r.gas),
    result: { [key]: r.result.kind === WorkExecResultKind.ok && okBlob !== null ? hex(okBlob) : null },
    refine_load: {
      gas_used: u64(r.load.gasUsed),
      imports: Number(r.load.importedSegments),
      extrinsic_count: Number(r.load.extrinsicCount),
      extrinsic_size: Number(r.load.extrinsicSize),
      exports: Number(r.load.exportedSegments),
    },
  };
}

/** Work report `R` (GP §11.1.1) incl. availability specification (GP §11.1.3). */
export function workReportToJson(r: WorkReport) {
  const spec = r.workPackageSpec;
  return {
    package_spec: {
      hash: hex(spec.hash),
      length: Number(spec.length),
      erasure_root: hex(spec.erasureRoot),
      exports_root: hex(spec.exportsRoot),
      exports_count: Number(spec.exportsCount),
    },
    context: refineContextToJson(r.context),
    core_index: Number(r.coreIndex),
    authorizer_hash: hex(r.authorizerHash),
    auth_gas_used: u64(r.authorizationGasUsed),
    auth_output: hex(r.authorizationOutput),
    segment_root_lookup: r.segmentRootLookup.map((x) => ({
      work_package_hash: hex(x.workPackageHash),
      segment_tree_root: hex(x.segmentTreeRoot),
    })),
    results: Array.from(r.results, workResultToJson),
  };
}
