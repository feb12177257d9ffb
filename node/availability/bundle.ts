/**
 * What a guarantor does with a bundle before it is reported (GP 14.4.1): erasure-codes it into
 * one chunk per validator and computes the erasure root and each validator's proof. Runs in the
 * refine worker thread, after refine, so the main thread never codes 13.8 MB.
 */
import type { ChainName } from "../chain/params.ts";
import { type ChunkProof, chunkBytes, encodeChunks, erasureParams, erasureTree } from "./erasure.ts";

export interface EncodedBundle {
  readonly erasureRoot: Uint8Array;
  readonly bundleBytes: number;
  readonly chunkBytes: number;
  /** Chunk i for validator i. */
  readonly chunks: readonly Uint8Array[];
  readonly proofs: readonly ChunkProof[];
}

export function encodeBundle(chain: ChainName, bundle: Uint8Array): EncodedBundle {
  const params = erasureParams(chain);
  const chunks = encodeChunks(params, bundle);
  const tree = erasureTree(chunks);
  return {
    erasureRoot: tree.root,
    bundleBytes: bundle.length,
    chunkBytes: chunkBytes(params, bundle.length),
    chunks,
    proofs: chunks.map((_, i) => tree.proof(i)),
  };
}
