/**
 * Builds signed, GP-encoded work packages: what a builder (the gateway, a test, the CLI) hands
 * to `submitWorkPackage`. One package, items for one or more services, authorized by one key.
 */
import { RefineContext, tryAsServiceGas, tryAsServiceId, WorkItem, WorkPackage } from "@typeberry/lib/block";
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { FixedSizeArray, asKnownSize } from "@typeberry/lib/collections";
import { tryAsU16 } from "@typeberry/lib/numbers";
import type { ChainParams } from "../chain/params.ts";
import { encode, h32 } from "../codec/jam.ts";
import type { Ed25519KeyPair } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import { AUTHORIZER_HOST_SERVICE, ED25519_AUTHORIZER_CODE_HASH, signPackageBytes } from "./authorizer.ts";

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

export function buildWorkPackage(params: ChainParams, spec: PackageSpec): BuiltPackage {
  const items = spec.items.map((item) =>
    WorkItem.create({
      service: tryAsServiceId(item.serviceId),
      codeHash: h32(item.codeHash),
      payload: BytesBlob.blobFrom(item.payload),
      refineGasLimit: tryAsServiceGas(item.refineGasLimit),
      accumulateGasLimit: tryAsServiceGas(item.accumulateGasLimit),
      importSegments: asKnownSize([]),
      extrinsic: [],
      exportCount: tryAsU16(0),
    }),
  );
  const unsigned = WorkPackage.create({
    authToken: BytesBlob.empty(),
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
    items: FixedSizeArray.new(items, items.length as never),
  });
  const bytes = signPackageBytes(params, unsigned, encode(WorkPackage.Codec, unsigned, params.spec), spec.signer);
  return { bytes, hash: hash(bytes) };
}
