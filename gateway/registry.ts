/**
 * The gateway's cache of the device registry. The registry itself is on the ledger: a device is
 * registered when its registration work item is accumulated into the owning service's state.
 * The cache answers the hot path (every CONNECT and PUBLISH) without a node round trip; unknown
 * ids are looked up in the services' state and remembered briefly either way.
 */
import type { BlockDescriptor, NodeApi } from "../node/api.ts";
import { bytesEqual } from "../node/codec/jam.ts";
import { type KnownDevice, knownDevice } from "./accept.ts";
import type { DeviceKind } from "../devices/protocol/device-kinds.ts";
import type { IngestService } from "./ingest-service.ts";
import type { SeqWindow } from "./window.ts";

/**
 * Registered devices kept in memory: ~600 bytes of heap each (an id, a key, the entry; measured
 * with 100,000 remembered: 613 bytes of V8 heap and array buffers, 1,063 of RSS), so 250,000 are
 * ~150–270 MB; a fleet of 100,000 (bench/fleet.ts) fits with room, and its connect storm after a
 * restart reads each device from the ledger once, not again after an eviction.
 */
export const DEVICE_CACHE_MAX = 250_000;
/** How long "not registered" is believed: short, so a registration is seen soon; non-zero, so a connect flood of unknown ids does not become a flood of state reads. */
export const UNKNOWN_DEVICE_TTL_MS = 2_000;
const UNKNOWN_CACHE_MAX = 100_000;
/**
 * How long one read of the best block serves the lookups that need its hash. A connect storm looks
 * up thousands of devices a second, and each read is a JIP-2 call to a remote node: one per device,
 * its frame writes were 3.9% of a cluster gateway's main thread in a storm of 30,000 devices on 6
 * gateways (bench/fleet.ts --profile), besides the node's side. Reused for this long, a registration
 * is seen up to this much later (an unknown id is believed UNKNOWN_DEVICE_TTL_MS anyway), and a
 * window learnt at connect may miss a block's settlements, which the ledger's own window still refuses.
 */
export const BEST_BLOCK_REUSE_MS = 100;

export interface RegistryEntry extends KnownDevice {
  readonly kind: DeviceKind;
  readonly serviceId: number;
  /** The highest seq its service had settled when this entry was read from the ledger (-1: none): a lower bound of what the device has signed. */
  readonly settledHighestSeq: number;
  /** Its service's whole window of settled seqs when this entry was read (ingest-service.ts RegisteredDevice.settledWindow); absent: the highest alone. */
  readonly settledWindow?: SeqWindow;
}

export class DeviceRegistry {
  private readonly known = new Map<string, RegistryEntry>();
  private readonly unknownUntil = new Map<string, number>();
  /** The last best-block read and when it was asked (BEST_BLOCK_REUSE_MS); a failed read is not kept. */
  private best: { readonly at: number; readonly block: Promise<BlockDescriptor> } | null = null;

  constructor(
    private readonly api: NodeApi,
    private readonly services: readonly IngestService[],
    private readonly now: () => number = Date.now,
  ) {}

  /** The device if it is registered; only the cache (for the synchronous hot path). */
  cached(deviceId: string): RegistryEntry | null {
    return this.known.get(deviceId) ?? null;
  }

  /** The device if it is registered, reading the ledger when the cache does not know it. */
  async lookup(deviceId: string): Promise<RegistryEntry | null> {
    const hit = this.known.get(deviceId);
    if (hit !== undefined) return hit;
    const until = this.unknownUntil.get(deviceId);
    if (until !== undefined && until > this.now()) return null;
    const reused = this.best !== null && this.fresh(this.best.at, this.now());
    const best = await this.bestBlock();
    const found = await this.readDevice(deviceId, best.headerHash);
    if (found !== null) return found;
    // Not there at a read other lookups shared: at the latest block, before it counts as unknown
    // (a device registered since that read; storms are of registered devices).
    if (reused) {
      this.best = null;
      const latest = await this.bestBlock();
      const again = bytesEqual(latest.headerHash, best.headerHash) ? null : await this.readDevice(deviceId, latest.headerHash);
      if (again !== null) return again;
    }
    if (this.unknownUntil.size >= UNKNOWN_CACHE_MAX) this.unknownUntil.clear();
    this.unknownUntil.set(deviceId, this.now() + UNKNOWN_DEVICE_TTL_MS);
    return null;
  }

  /** The device as the services' state at block `headerHash` has it, remembered; null if none has it. */
  private async readDevice(deviceId: string, headerHash: Uint8Array): Promise<RegistryEntry | null> {
    for (const service of this.services) {
      const value = await this.api.serviceValue(headerHash, service.serviceId, service.deviceKey(deviceId));
      const device = value === null ? null : service.decodeDevice(value);
      if (device !== null) return this.remember(deviceId, device.publicKey, device.kind, service.serviceId, device.settledHighestSeq, device.settledWindow);
    }
    return null;
  }

  /** The node's best block, read at most once per BEST_BLOCK_REUSE_MS: the lookups meanwhile share the read. */
  bestBlock(): Promise<BlockDescriptor> {
    const now = this.now();
    if (this.best === null || !this.fresh(this.best.at, now)) {
      const block = this.api.bestBlock();
      this.best = { at: now, block };
      block.catch(() => {
        if (this.best?.block === block) this.best = null;
      });
    }
    return this.best.block;
  }

  /** Whether a read asked at `at` still serves at `now` (a clock set back does not keep it). */
  private fresh(at: number, now: number): boolean {
    return now >= at && now - at < BEST_BLOCK_REUSE_MS;
  }

  remember(deviceId: string, publicKey: Uint8Array, kind: DeviceKind, serviceId: number, settledHighestSeq = -1, settledWindow?: SeqWindow): RegistryEntry {
    if (this.known.size >= DEVICE_CACHE_MAX) this.known.delete(this.known.keys().next().value!);
    const entry = { ...knownDevice(deviceId, publicKey), kind, serviceId, settledHighestSeq, ...(settledWindow === undefined ? {} : { settledWindow }) };
    this.known.set(deviceId, entry);
    this.unknownUntil.delete(deviceId);
    return entry;
  }

  get size(): number {
    return this.known.size;
  }
}
