/**
 * Builds signed, GP-encoded work packages: what a builder (the gateway, a test, the CLI) hands
 * to `submitWorkPackage`. One package, items for one or more services, authorized by one key.
 */
import { RefineContext, tryAsServiceGas, tryAsServiceId, WorkItem, WorkPackage } from "@typeberry/lib/block";
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { FixedSizeArray, asKnownSize } from "@typeberry/lib/collections";
import { tryAsU16 } from "@typeberry/lib/numbers";
import type { ChainParams } from "../chain/params.ts";
import { encode, Encoder, h32 } from "../codec/jam.ts";
import type { Ed25519KeyPair } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import { AUTHORIZER_HOST_SERVICE, compactLength, ED25519_AUTHORIZER_CODE_HASH, ED25519_SIGNATURE_BYTES, signPackageInPlace } from "./authorizer.ts";

export interface WorkItemSpec {
  readonly serviceId: number;
  readonly codeHash: Uint8Array;
  readonly payload: Uint8Array;
  readonly refineGasLimit: bigint;
  readonly accumulateGasLimit: bigint;
}

export interface PackageSpec {
  readonly signer: Ed25519KeyPair;
  /** The anchor block: a recent block's header hash and its posterior state root (GP 11.1.2). */
  readonly anchor: { readonly headerHash: Uint8Array; readonly stateRoot: Uint8Array; readonly slot: number };
  readonly items: readonly WorkItemSpec[];
}

export interface BuiltPackage {
  readonly bytes: Uint8Array;
  readonly hash: Uint8Array;
}

/**
 * E(p) in one buffer of its exact size: the package is encoded once with a placeholder token
 * and signed in place. Before, it was encoded into a growing buffer and then copied with its
 * token spliced in: two 13 MB buffers per full package on the gateway's thread, not one, and new
 * ArrayBuffer memory is what sets off that thread's full garbage collections (V8 starts one per
 * ~64 MB of it: measured at 5,000 envelopes/s, BENCHMARKS.md §5.2).
 */
export function buildWorkPackage(params: ChainParams, spec: PackageSpec): BuiltPackage {
  const items = (payload: (item: WorkItemSpec) => Uint8Array) =>
    spec.items.map((item) =>
      WorkItem.create({
        service: tryAsServiceId(item.serviceId),
        codeHash: h32(item.codeHash),
        payload: BytesBlob.blobFrom(payload(item)),
        refineGasLimit: tryAsServiceGas(item.refineGasLimit),
        accumulateGasLimit: tryAsServiceGas(item.accumulateGasLimit),
        importSegments: asKnownSize([]),
        extrinsic: [],
        exportCount: tryAsU16(0),
      }),
    );
  const packageOf = (workItems: WorkItem[]) =>
    WorkPackage.create({
      authToken: BytesBlob.blobFrom(new Uint8Array(ED25519_SIGNATURE_BYTES)),
      authCodeHost: tryAsServiceId(AUTHORIZER_HOST_SERVICE),
      authCodeHash: h32(ED25519_AUTHORIZER_CODE_HASH),
      authConfiguration: BytesBlob.blobFrom(spec.signer.publicKey),
      context: RefineContext.create({
        anchor: h32(spec.anchor.headerHash),
        stateRoot: h32(spec.anchor.stateRoot),
        beefyRoot: Bytes.zero(32).asOpaque(),
        lookupAnchor: h32(spec.anchor.headerHash),
        lookupAnchorSlot: spec.anchor.slot as never,
        prerequisites: [],
      }),
      items: FixedSizeArray.new(workItems, workItems.length as never),
    });
  // The exact size: the package with empty payloads (a few hundred bytes to encode), plus each
  // payload and the octets its length prefix takes beyond the one an empty payload has.
  const shell = encode(WorkPackage.Codec, packageOf(items(() => EMPTY)), params.spec).length;
  const size = spec.items.reduce((n, item) => n + item.payload.length + compactLength(item.payload.length) - 1, shell);
  const p = packageOf(items((item) => item.payload));
  const bytes = new Uint8Array(size);
  const encoder = Encoder.create({ destination: bytes });
  encoder.attachContext(params.spec);
  encoder.object(WorkPackage.Codec, p);
  if (encoder.viewResult().length !== size) throw new Error(`package encoded in ${encoder.viewResult().length} bytes, not the ${size} computed`);
  signPackageInPlace(params, p, bytes, spec.signer);
  return { bytes, hash: hash(bytes) };
}

const EMPTY = new Uint8Array(0);
