/**
 * Builds a service's envelopes work package from logged entries: records sorted by device, cut
 * into items at device boundaries (as many as the packing leaves it refine threads, each of at
 * least envelopesPerItemMin envelopes), each item's payload written into one buffer kept for
 * every package, with the item's refine and accumulate gas; anchored on the best block.
 */
import type { NodeApi } from "../../node/api.ts";
import type { ChainParams } from "../../node/chain/params.ts";
import type { Ed25519KeyPair } from "../../node/crypto/ed25519.ts";
import { type BuiltPackage, buildWorkPackage, type PackageSpec } from "../../node/intake/builder.ts";
import type { IngestService } from "../ingest-service.ts";
import type { LogEntry } from "../log.ts";
import { envelopesRefineGas } from "../refine-gas.ts";
import { settlementLimits } from "./limits.ts";

export type PackageAnchor = PackageSpec["anchor"];

export interface PackageBuilderDeps {
  readonly params: ChainParams;
  readonly signer: Ed25519KeyPair;
  readonly services: ReadonlyMap<number, IngestService>;
  /** The registered public key of a device (the gateway checked it before accepting). */
  publicKeyOf(deviceId: string): Uint8Array | null;
}

export class PackageBuilder {
  /**
   * Where a package's item payloads are written while it is built (W_B: a package's payloads
   * together never exceed it); made at the first package, reused by every one after.
   */
  private payloadScratch: Uint8Array | null = null;

  constructor(private readonly deps: PackageBuilderDeps) {}

  /**
   * The package of `batch`, a service's entries, in at most `itemsMax` items. Throws if the
   * service has no adapter or a device has no key. The package's bytes are its own; its items'
   * payloads are only until the next build.
   */
  build(serviceId: number, batch: readonly LogEntry[], anchor: PackageAnchor, itemsMax: number): BuiltPackage {
    const service = this.deps.services.get(serviceId);
    if (service === undefined) throw new Error(`no adapter for service ${serviceId}`);
    // The signed bytes were built once, at acceptance, and logged as they are: nothing is decoded again here.
    const records = batch
      .map((entry) => {
        const publicKey = this.deps.publicKeyOf(entry.deviceId);
        if (publicKey === null) throw new Error(`logged envelope ${entry.deviceId}/${entry.seq}: its device is unknown`);
        return { deviceId: entry.deviceId, seq: entry.seq, publicKey, signingBytes: entry.signingBytes, signature: entry.signature };
      })
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.seq - b.seq));
    const parts = splitAtDevices(records, Math.min(itemsMax, Math.floor(records.length / settlementLimits.envelopesPerItemMin)));
    // The items' payloads go into one buffer kept for every package (they are copied into the
    // package as it is built, before anything awaits): 13 MB less new memory per package.
    this.payloadScratch ??= new Uint8Array(this.deps.params.maxBundleBytes);
    const scratch = this.payloadScratch;
    let scratchAt = 0;
    const payloadOf = (part: typeof records) => {
      const payload = service.envelopesPayload(part, scratch.subarray(scratchAt));
      if (payload.buffer === scratch.buffer) scratchAt += payload.length;
      return payload;
    };
    return buildWorkPackage(this.deps.params, {
      signer: this.deps.signer,
      anchor,
      items: parts.map((part) => {
        const payload = payloadOf(part);
        const devices = new Set(part.map((r) => r.deviceId)).size;
        return {
          serviceId,
          codeHash: service.codeHash,
          payload,
          // What refine will be charged, a quarter more, within the item's share of G_R (refine-gas.ts): the node bounds refine's time by it.
          refineGasLimit: (service.envelopesRefineGas ?? envelopesRefineGas)(
            { payloadBytes: payload.length, envelopes: part.length, devices },
            this.deps.params.refineGasPerPackage / BigInt(parts.length),
          ),
          accumulateGasLimit: service.envelopesGas(devices, part.length),
        };
      }),
    });
  }
}

/** The best block and its state root: what a package is anchored on (GP 11.1.2). */
export async function bestAnchor(api: Pick<NodeApi, "bestBlock" | "stateRoot">): Promise<PackageAnchor> {
  const best = await api.bestBlock();
  return { headerHash: best.headerHash, stateRoot: await api.stateRoot(best.headerHash), slot: best.slot };
}

/**
 * Items for each of `packages` packages packed together, with `itemsPerPackageMax` refine threads
 * to share (the service's bound): a package alone is split across them all; two packages get one
 * item each. The node gives a package as many threads as it has items and are free, so when the
 * first of two split packages took both threads, the second waited for all of the first, erasure
 * coding included: it was refined after ~V + 2C (V its verification on one thread, C the coding)
 * instead of V + C on a thread of its own, and the slower of a packing's packages sets the lead.
 */
export function packageItemsMax(itemsPerPackageMax: number, packages: number): number {
  return Math.max(1, Math.floor(itemsPerPackageMax / Math.max(1, packages)));
}

/**
 * Records sorted by device, cut into at most `parts` runs of about equal length, each cut moved
 * forward to where the next device begins, so a device's envelopes stay in one item. Fewer runs
 * when a device's envelopes span a cut's place; always at least one.
 */
export function splitAtDevices<R extends { readonly deviceId: string }>(records: readonly R[], parts: number): R[][] {
  const out: R[][] = [];
  let from = 0;
  for (let k = 1; k < parts; k++) {
    let cut = Math.max(from, Math.round((records.length * k) / parts));
    while (cut > 0 && cut < records.length && records[cut]!.deviceId === records[cut - 1]!.deviceId) cut++;
    if (cut <= from || cut >= records.length) continue;
    out.push(records.slice(from, cut));
    from = cut;
  }
  out.push(records.slice(from));
  return out;
}
