/**
 * The data-availability layer of the in-process validators (GP 14.4, 11.2): each validator keeps
 * its own erasure-coded chunk of every reported bundle, checked against the erasure root before
 * it is stored, assures the cores whose chunks it holds, and any third of the chunks gives the
 * bundle back. Chunks are kept for a retention horizon and within a byte bound.
 *
 * Chunks and assurances arriving from outside (the RPC) are bad input until proven otherwise:
 * a chunk that does not match its root, a chunk of the wrong length, an assurance not signed by
 * a validator, or anything about an unknown report is refused with a coded error, never stored
 * and never counted toward availability.
 */
import { AvailabilityAssurance } from "@typeberry/lib/block";
import type { ChainParams } from "../chain/params.ts";
import { bytesEqual, decode, toHex } from "../codec/jam.ts";
import type { Ed25519KeyPair } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import { codedError, type ErrorCode, err, ok, type Result } from "../../devices/protocol/errors.ts";
import type { PendingReport } from "../state/components.ts";
import type { DaRecord, Store } from "../storage/store.ts";
import { assure, checkAssuranceSignature } from "./assurance.ts";
import type { EncodedBundle } from "./bundle.ts";
import { type ChunkProof, erasureParams, type ErasureParams, recoverData, verifyChunk } from "./erasure.ts";

export interface AvailabilityOptions {
  /** Slots a package's chunks are kept after they were stored. */
  readonly retentionSlots: number;
  /** Bound on stored chunk bytes across all validators; past it the oldest packages are pruned. */
  readonly maxBytes: number;
  /** Validators that do not store chunks (offline, or withholding): for tests and simulations. */
  readonly withholding?: readonly number[];
  readonly log?: (obj: object, msg: string) => void;
  /** Called once per refused input, with its code. */
  readonly count?: (code: ErrorCode) => void;
}

export { DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "./limits.ts";

export class Availability {
  private readonly erasure: ErasureParams;
  private readonly withholding: ReadonlySet<number>;
  /** External assurances waiting for the next block, one per validator (the latest wins). */
  private readonly pooled = new Map<number, AvailabilityAssurance>();
  private storedBytes: number;
  private warnedOverBound = false;

  constructor(
    private readonly params: ChainParams,
    private readonly store: Store,
    private readonly validators: readonly Ed25519KeyPair[],
    private readonly options: AvailabilityOptions,
  ) {
    this.erasure = erasureParams(params.name);
    this.withholding = new Set(options.withholding ?? []);
    this.storedBytes = 0;
    for (const record of store.daRecordsBySlot()) this.storedBytes += record.heldBytes;
  }

  private refuse(code: ErrorCode, detail: string): Result<never> {
    this.options.count?.(code);
    return err(codedError(code, detail));
  }

  /**
   * A guarantor announces a package it will report, then hands each validator its chunk. The
   * chunks come from the node's own coder, which computed the erasure root from them, so they are
   * stored without the proof check that chunks from outside get (hashing them again cost 3× the
   * bundle in blake2b per package).
   */
  distribute(packageHash: Uint8Array, encoded: EncodedBundle, slot: number): void {
    const erasureRoot = toHex(encoded.erasureRoot);
    this.store.transaction(() => {
      const record = this.store.daRecord(erasureRoot) ?? {
        erasureRoot,
        packageHash: toHex(packageHash),
        bundleBytes: encoded.bundleBytes,
        chunkBytes: encoded.chunkBytes,
        slot,
        heldBytes: 0,
      };
      let added = 0;
      for (let index = 0; index < this.params.validatorsCount; index++) {
        if (this.withholding.has(index)) continue;
        const chunk = encoded.chunks[index]!;
        if (chunk.length !== record.chunkBytes) throw new Error(`the node's coder made chunk ${index} of ${chunk.length} bytes, not ${record.chunkBytes}`);
        if (!this.store.hasChunk(erasureRoot, index)) added += chunk.length;
        this.store.putChunk(erasureRoot, index, { chunk, ...encoded.proofs[index]!, path: [...encoded.proofs[index]!.path] });
      }
      this.store.putDaRecord({ ...record, heldBytes: record.heldBytes + added });
      this.storedBytes += added;
    });
  }

  /** Validator `index` receives its chunk of the package with `erasureRoot`, with its proof. */
  receiveChunk(erasureRoot: Uint8Array, index: number, chunk: Uint8Array, proof: ChunkProof): Result<void> {
    const record = this.store.daRecord(toHex(erasureRoot));
    if (record === null) return this.refuse("JG_ERR_DA_UNKNOWN_REPORT", `no report with erasure root ${toHex(erasureRoot)}`);
    if (!Number.isInteger(index) || index < 0 || index >= this.params.validatorsCount) return this.refuse("JG_ERR_DA_CHUNK_INDEX", `chunk index ${index}`);
    if (chunk.length !== record.chunkBytes) return this.refuse("JG_ERR_DA_CHUNK_LENGTH", `chunk of ${chunk.length} bytes, expected ${record.chunkBytes}`);
    if (!verifyChunk(this.erasure, erasureRoot, index, chunk, proof))
      return this.refuse("JG_ERR_DA_CHUNK_MISMATCH", `chunk ${index} does not match erasure root ${record.erasureRoot}`);
    this.store.transaction(() => {
      if (!this.store.hasChunk(record.erasureRoot, index)) this.held(record, chunk.length);
      this.store.putChunk(record.erasureRoot, index, { chunk, segmentsRoot: proof.segmentsRoot, path: [...proof.path] });
    });
    return ok(undefined);
  }

  /** Counts `bytes` more (or fewer) chunk bytes held for `record`, in it and in the total. */
  private held(record: DaRecord, bytes: number): void {
    const current = this.store.daRecord(record.erasureRoot) ?? record;
    this.store.putDaRecord({ ...current, heldBytes: current.heldBytes + bytes });
    this.storedBytes += bytes;
  }

  /** Whether validator `index` holds its chunk of the package with `erasureRoot`. */
  holds(erasureRoot: Uint8Array, index: number): boolean {
    return this.store.hasChunk(toHex(erasureRoot), index);
  }

  /**
   * The assurances for the block after `parentHash` (GP 11.2): each in-process validator assures
   * the engaged cores whose chunk it holds; validators holding none sign nothing, unless an
   * external assurance for them is pooled. Sorted by validator index.
   */
  assurances(pending: readonly (PendingReport | null)[], parentHash: Uint8Array): AvailabilityAssurance[] {
    const out: AvailabilityAssurance[] = [];
    for (let v = 0; v < this.params.validatorsCount; v++) {
      const cores = pending.flatMap((p, core) => (p !== null && this.holds(p.report.workPackageSpec.erasureRoot.raw, v) ? [core] : []));
      const external = this.pooled.get(v);
      if (cores.length > 0) out.push(assure(this.params, this.validators[v]!, v, parentHash, cores));
      else if (external !== undefined && bytesEqual(external.anchor.raw, parentHash)) out.push(external);
    }
    this.pooled.clear();
    return out;
  }

  /**
   * An assurance from outside (GP 11.2.1 checks): it must decode, be anchored on the best block,
   * be signed by the validator it names, and only assure cores with a pending report.
   */
  receiveAssurance(bytes: Uint8Array, bestHash: Uint8Array, pending: readonly (PendingReport | null)[], validatorKeys: readonly Uint8Array[]): Result<void> {
    let a: AvailabilityAssurance;
    try {
      a = decode(AvailabilityAssurance.Codec, bytes, this.params.spec) as AvailabilityAssurance;
    } catch (e) {
      return this.refuse("JG_ERR_DA_ASSURANCE_MALFORMED", e instanceof Error ? e.message : String(e));
    }
    if (a.validatorIndex >= this.params.validatorsCount || !checkAssuranceSignature(validatorKeys, a)) {
      return this.refuse("JG_ERR_DA_ASSURANCE_SIGNER", `not signed by validator ${a.validatorIndex}`);
    }
    if (!bytesEqual(a.anchor.raw, bestHash)) return this.refuse("JG_ERR_DA_ASSURANCE_ANCHOR", "not anchored on the best block");
    for (let core = 0; core < this.params.coresCount; core++) {
      if (a.bitfield.isSet(core) && pending[core] === null) return this.refuse("JG_ERR_DA_UNKNOWN_REPORT", `core ${core} has no pending report`);
    }
    this.pooled.set(a.validatorIndex, a);
    return ok(undefined);
  }

  /**
   * The bundle of a package, from any N of the validators' chunks (GP 14.4: any third). Each chunk
   * used is checked against the erasure root first; the result is checked against the package hash.
   */
  fetch(packageHash: Uint8Array): Result<Uint8Array> {
    const record = this.store.daRecordOfPackage(toHex(packageHash));
    if (record === null) return err(codedError("JG_ERR_DA_UNAVAILABLE", `no chunks of package ${toHex(packageHash)} are kept`));
    const root = Buffer.from(record.erasureRoot, "hex");
    const chunks = new Map<number, Uint8Array>();
    // Data chunks first: with all N of them, recovery is a copy.
    for (let index = 0; index < this.params.validatorsCount && chunks.size < this.erasure.dataShards; index++) {
      const stored = this.store.chunk(record.erasureRoot, index);
      if (stored === null || !verifyChunk(this.erasure, root, index, stored.chunk, { segmentsRoot: stored.segmentsRoot, path: stored.path })) continue;
      chunks.set(index, stored.chunk);
    }
    if (chunks.size < this.erasure.dataShards) {
      return err(codedError("JG_ERR_DA_UNAVAILABLE", `${chunks.size} good chunks of package ${record.packageHash}, ${this.erasure.dataShards} needed`));
    }
    const recovered = recoverData(this.erasure, chunks, record.bundleBytes);
    if (!recovered.ok) return err(codedError("JG_ERR_DA_UNAVAILABLE", recovered.error.detail));
    const bundle = recovered.value.slice(0, record.bundleBytes);
    if (toHex(hash(bundle)) !== record.packageHash)
      throw new Error(`chunks that match erasure root ${record.erasureRoot} recovered data that is not package ${record.packageHash}`);
    return ok(bundle);
  }

  /** Loses chunks (a validator's disk failing): for tests of recovery. */
  dropChunks(packageHash: Uint8Array, indices: readonly number[]): void {
    const record = this.store.daRecordOfPackage(toHex(packageHash));
    if (record === null) return;
    for (const index of indices) {
      if (this.store.hasChunk(record.erasureRoot, index)) this.held(record, -record.chunkBytes);
      this.store.removeChunk(record.erasureRoot, index);
    }
  }

  get bytesStored(): number {
    return this.storedBytes;
  }

  /**
   * Drops packages stored before the retention horizon, then the oldest while over the byte
   * bound, except those stored in the last U + 2 slots: their reports may still be waiting for
   * availability, and pruning them would turn a full disk into lost work. If only those are
   * left, the bound is exceeded and a warning says so.
   */
  prune(bestSlot: number): { packages: number; bytes: number } {
    let packages = 0;
    let bytes = 0;
    const protectedFrom = bestSlot - (this.params.availabilityTimeoutSlots + 2);
    // Choose first, then remove: the slot index is not changed while it is read.
    const doomed: DaRecord[] = [];
    let remaining = this.storedBytes;
    for (const record of this.store.daRecordsBySlot()) {
      const expired = record.slot < bestSlot - this.options.retentionSlots;
      const overBound = remaining > this.options.maxBytes && record.slot < protectedFrom;
      if (!expired && !overBound) break;
      doomed.push(record);
      remaining -= record.heldBytes;
    }
    for (const record of doomed) {
      this.store.removeDa(record, this.params.validatorsCount);
      this.storedBytes -= record.heldBytes;
      packages++;
      bytes += record.heldBytes;
    }
    if (this.storedBytes > this.options.maxBytes && !this.warnedOverBound) {
      this.warnedOverBound = true;
      this.options.log?.(
        { storedBytes: this.storedBytes, maxBytes: this.options.maxBytes },
        "DA storage over its bound: only chunks of reports that may still become available are left",
      );
    }
    if (this.storedBytes <= this.options.maxBytes) this.warnedOverBound = false;
    if (packages > 0) {
      this.options.log?.(
        { packages, bytes, storedBytes: this.storedBytes, retentionSlots: this.options.retentionSlots, maxBytes: this.options.maxBytes },
        "pruned DA chunks",
      );
    }
    return { packages, bytes };
  }
}
