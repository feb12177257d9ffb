/**
 * Codec vectors: `codec/{tiny,full}/<type>[_<n>].bin` + sibling `.json`.
 *
 * Checks the JAM serialization of GP Appendix C (serialization codec) via
 * typeberry's codec, for each vector file:
 *  1. the `.bin` decodes (consuming every byte) with the chain spec of its
 *     directory (`tiny` / `full`: validator, core and epoch counts differ, and
 *     they fix the length of several sequences, e.g. epoch-marker validators);
 *  2. re-encoding the decoded object gives the `.bin` byte-for-byte;
 *  3. the object built from the `.json` encodes to the `.bin` byte-for-byte;
 *  4. the decoded object deep-equals the JSON-built object;
 *  5. where a JSON view exists (see `codec-json.ts`), the view of the decoded
 *     object deep-equals the `.json` itself.
 *
 * The type is chosen from the file name: `header_1.bin` -> `header`. Files of
 * an unknown type fail (`UnknownVectorType`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  assurancesExtrinsicCodec,
  Block,
  DisputesExtrinsic,
  Extrinsic,
  guaranteesExtrinsicCodec,
  Header,
  preimagesExtrinsicCodec,
  RefineContext,
  ticketsExtrinsicCodec,
  WorkItem,
  WorkPackage,
  WorkReport,
  WorkResult,
} from "@typeberry/lib/block";
import {
  blockFromJson,
  disputesExtrinsicFromJson,
  getAssurancesExtrinsicFromJson,
  getExtrinsicFromJson,
  guaranteesExtrinsicFromJson,
  headerFromJson,
  preimagesExtrinsicFromJson,
  refineContextFromJson,
  ticketsExtrinsicFromJson,
  workReportFromJson,
  workResultFromJson,
} from "@typeberry/lib/block-json";
import { type Codec, Decoder, Encoder } from "@typeberry/lib/codec";
import { type ChainSpec, fullChainSpec, tinyChainSpec } from "@typeberry/lib/config";
import { type FromJson, parseFromJson } from "@typeberry/lib/json-parser";
import { expect } from "vitest";
import {
  refineContextToJson,
  workItemFromJson,
  workItemToJson,
  workPackageFromJson,
  workPackageToJson,
  workReportToJson,
  workResultToJson,
} from "./codec-json.ts";
import { expectSameBytes } from "./assert.ts";
import { type CaseOutcome, listFiles, stem, UnknownVectorType, type VectorCase, type VectorFamily } from "./discover.ts";

/**
 * Byte arrays compare by content (and class, so a Node `Buffer` still differs
 * from a `Uint8Array`) in one call: vitest's generic `toEqual` walks typed
 * arrays element by element, which makes deep-comparing a block take ~1 s.
 * Registered for the test file importing this module (vitest isolates files).
 */
expect.addEqualityTesters([
  function uint8ArrayEquality(a: unknown, b: unknown): boolean | undefined {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) return undefined;
    return a.constructor === b.constructor && Buffer.compare(a, b) === 0;
  },
]);

/** Chain spec per `codec/` sub-directory. Other sub-directories are not discovered. */
const CHAIN_SPECS: Readonly<Record<string, ChainSpec>> = {
  tiny: tinyChainSpec,
  full: fullChainSpec,
};

/** How to check one vector type. */
interface CodecType<T> {
  /** typeberry codec descriptor (GP Appendix C). */
  readonly codec: Codec<T>;
  /** `parseFromJson` description building the object from the vector's `.json`. */
  readonly fromJson: (spec: ChainSpec) => FromJson<T>;
  /** Optional JSON view of a decoded object; must deep-equal the `.json`. */
  readonly toJson?: (value: T) => unknown;
}

/** Erase `T` so heterogeneous types fit in one table (each entry is consistent by construction). */
function codecType<T>(t: CodecType<T>): CodecType<unknown> {
  return t as CodecType<unknown>;
}

/**
 * Extrinsic sequences (tickets, preimages, guarantees, assurances; parts of the
 * block extrinsic `E`, GP §4.1): typeberry's codecs are chain-spec-bounded
 * `KnownSizeArray<T>`s while its JSON parsers yield plain `T[]` — the same
 * runtime value, so the static types are bridged here.
 */
function sequenceType<T>(codec: Codec<readonly T[]>, fromJson: (spec: ChainSpec) => FromJson<T[]>): CodecType<unknown> {
  return { codec: codec as Codec<unknown>, fromJson: fromJson as unknown as (spec: ChainSpec) => FromJson<unknown> };
}

/** Supported vector types, keyed by file-name prefix. */
const CODEC_TYPES: Readonly<Record<string, CodecType<unknown>>> = {
  refine_context: codecType({
    codec: RefineContext.Codec,
    fromJson: () => refineContextFromJson,
    toJson: refineContextToJson,
  }),
  work_item: codecType({ codec: WorkItem.Codec, fromJson: () => workItemFromJson, toJson: workItemToJson }),
  work_package: codecType({ codec: WorkPackage.Codec, fromJson: () => workPackageFromJson, toJson: workPackageToJson }),
  work_result: codecType({ codec: WorkResult.Codec, fromJson: () => workResultFromJson, toJson: workResultToJson }),
  work_report: codecType({ codec: WorkReport.Codec, fromJson: () => workReportFromJson, toJson: workReportToJson }),
  header: codecType({ codec: Header.Codec, fromJson: () => headerFromJson }),
  block: codecType({ codec: Block.Codec, fromJson: (spec) => blockFromJson(spec) }),
  extrinsic: codecType({ codec: Extrinsic.Codec, fromJson: (spec) => getExtrinsicFromJson(spec) }),
  tickets_extrinsic: sequenceType(ticketsExtrinsicCodec, () => ticketsExtrinsicFromJson),
  preimages_extrinsic: sequenceType(preimagesExtrinsicCodec, () => preimagesExtrinsicFromJson),
  guarantees_extrinsic: sequenceType(guaranteesExtrinsicCodec, () => guaranteesExtrinsicFromJson),
  assurances_extrinsic: sequenceType(assurancesExtrinsicCodec, (spec) => getAssurancesExtrinsicFromJson(spec)),
  disputes_extrinsic: codecType({ codec: DisputesExtrinsic.Codec, fromJson: () => disputesExtrinsicFromJson }),
};

/** Vector type from a file stem: strip a trailing `_<n>` index (`work_result_0` -> `work_result`). */
export function codecTypeName(fileStem: string): string {
  return fileStem.replace(/_\d+$/, "");
}

/** `codec/<spec>/*.bin` with a sibling `.json`. */
export const codecFamily: VectorFamily = {
  name: "codec",
  discover(root) {
    const cases: VectorCase[] = [];
    for (const [specName, spec] of Object.entries(CHAIN_SPECS)) {
      const dir = join(root, "codec", specName);
      const jsons = new Set(listFiles(dir, ".json"));
      for (const bin of listFiles(dir, ".bin")) {
        const base = stem(bin, ".bin");
        if (!jsons.has(`${base}.json`)) continue;
        const name = `codec/${specName}/${base}`;
        cases.push({
          name,
          subfamily: specName,
          run: () => runCodecCase(name, join(dir, base), codecTypeName(base), spec),
        });
      }
    }
    return cases;
  },
};

/** Run the five checks listed in the module doc on `<basePath>.{bin,json}`. */
function runCodecCase(name: string, basePath: string, typeName: string, spec: ChainSpec): CaseOutcome {
  const type = CODEC_TYPES[typeName];
  if (type === undefined) {
    throw new UnknownVectorType(name, `no codec registered for type "${typeName}"`);
  }
  // Plain Uint8Array (not a Node Buffer) so deep equality with JSON-built bytes is not confused by the class.
  const bin = new Uint8Array(readFileSync(`${basePath}.bin`));
  const jsonValue: unknown = JSON.parse(readFileSync(`${basePath}.json`, "utf8"));

  // 1. Decode; `decodeObject` also fails if bytes are left over.
  const decoded = Decoder.decodeObject(type.codec, bin, spec);
  // 2. Round trip.
  expectSameBytes(Encoder.encodeObject(type.codec, decoded, spec), bin, `${name}: re-encoded .bin`);
  // 3. JSON -> object -> bytes.
  const fromJson = parseFromJson(jsonValue, type.fromJson(spec), name);
  expectSameBytes(Encoder.encodeObject(type.codec, fromJson, spec), bin, `${name}: encoded .json`);
  // 4. Decoded object == JSON-built object.
  expect(decoded, `${name}: decoded .bin vs object parsed from .json`).toEqual(fromJson);
  // 5. JSON view of the decoded object == the .json file.
  if (type.toJson !== undefined) {
    expect(type.toJson(decoded), `${name}: JSON view of decoded .bin vs .json`).toEqual(jsonValue);
    return { kind: "checked", units: { "json views": 1 } };
  }
  return { kind: "checked" };
}
