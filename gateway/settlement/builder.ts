/**
 * Builds a service's envelopes work package from logged entries: records sorted by device, cut
 * into items at device boundaries (as many as the packing leaves it refine threads, each of at
 * least envelopesPerItemMin envelopes, and as many more as the service's devices per item call
 * for), each item's payload written into one buffer kept for every package, with the item's refine
 * and accumulate gas; anchored on the best block.
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
    const parts = splitAtDevices(
      records,
      Math.min(itemsMax, Math.floor(records.length / settlementLimits.envelopesPerItemMin)),
      service.itemDevicesMax ?? service.packageDevicesMax,
    );
    // The items' payloads go into one buffer kept for every package (they are copied into the
    // package as it is built, before anything awaits): 13 MB less new memory per package.
    this.payloadScratch ??= new Uint8Array(this.deps.params.maxBundleBytes);
    const scratch = this.payloadScratch;
    let scratchAt = 0;
    const items = parts.map((part) => {
      const payload = service.envelopesPayload(part, scratch.subarray(scratchAt));
      if (payload.buffer === scratch.buffer) scratchAt += payload.length;
      return { payload, envelopes: part.length, devices: new Set(part.map((r) => r.deviceId)).size };
    });
    const refineGas = refineGasShares(
      items.map((item) => ({ payloadBytes: item.payload.length, envelopes: item.envelopes, devices: item.devices })),
      this.deps.params.refineGasPerPackage,
      service.envelopesRefineGas ?? envelopesRefineGas,
    );
    return buildWorkPackage(this.deps.params, {
      signer: this.deps.signer,
      anchor,
      items: items.map((item, i) => ({
        serviceId,
        codeHash: service.codeHash,
        payload: item.payload,
        refineGasLimit: refineGas[i]!,
        accumulateGasLimit: service.envelopesGas(item.devices, item.envelopes),
      })),
    });
  }
}

type ItemShape = { readonly payloadBytes: number; readonly envelopes: number; readonly devices: number };

/**
 * The refine gas each item of a package declares: what refine will be charged, a quarter more
 * (refine-gas.ts; the node bounds refine's time by it), and together at most G_R (`perPackage`,
 * intake refuses more). When the declarations add up to more, each is cut in proportion, so each
 * item keeps its share of what the package needs: an item of a package cut unevenly (a busy device
 * on one side, or a cut moved to keep an item within its devices) is never left below its charge
 * while another has room to spare, as an even share of G_R each could leave it (the item fails its
 * package with JG_ERR_REFINE_OUT_OF_GAS).
 */
export function refineGasShares(items: readonly ItemShape[], perPackage: bigint, gasOf: (item: ItemShape, shareMax: bigint) => bigint): bigint[] {
  const declared = items.map((item) => gasOf(item, perPackage));
  const total = declared.reduce((sum, gas) => sum + gas, 0n);
  return total <= perPackage ? declared : declared.map((gas) => (gas * perPackage) / total);
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
 * when a device's envelopes span a cut's place; always at least one. No run holds more than
 * `devicesMax` devices (the service's per item bound, ENVELOPE_DEVICES_PER_ITEM_MAX): there are
 * then at least as many runs as that takes, and a cut that would leave more on either side of it
 * is moved, at a device boundary, as little as it takes.
 */
export function splitAtDevices<R extends { readonly deviceId: string }>(records: readonly R[], parts: number, devicesMax = Number.POSITIVE_INFINITY): R[][] {
  // Where each device's records begin.
  const starts: number[] = [];
  for (let i = 0; i < records.length; i++) if (i === 0 || records[i]!.deviceId !== records[i - 1]!.deviceId) starts.push(i);
  const devices = starts.length;
  const runs = Math.max(parts, Math.ceil(devices / devicesMax));
  const out: R[][] = [];
  let from = 0; // the first device of the run being cut
  let next = 0; // the first device beginning at or after a cut's place (places only grow)
  for (let k = 1; k < runs; k++) {
    const place = Math.round((records.length * k) / runs);
    while (next < devices && starts[next]! < place) next++;
    // At most devicesMax devices in this run, and in each of the runs - k after it.
    const cut = Math.max(Math.min(next, from + devicesMax), devices - (runs - k) * devicesMax);
    if (cut <= from || cut >= devices) continue;
    out.push(records.slice(starts[from], starts[cut]));
    from = cut;
  }
  out.push(records.slice(starts[from] ?? 0));
  return out;
}
