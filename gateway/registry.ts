/**
 * The gateway's cache of the device registry. The registry itself is on the ledger: a device is
 * registered when its registration work item is accumulated into the owning service's state.
 * The cache answers the hot path (every CONNECT and PUBLISH) without a node round trip; unknown
 * ids are looked up in the services' state and remembered briefly either way.
 */
import type { NodeApi } from "../node/api.ts";
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
    const best = await this.api.bestBlock();
    for (const service of this.services) {
      const value = await this.api.serviceValue(best.headerHash, service.serviceId, service.deviceKey(deviceId));
      const device = value === null ? null : service.decodeDevice(value);
      if (device !== null) return this.remember(deviceId, device.publicKey, device.kind, service.serviceId, device.settledHighestSeq, device.settledWindow);
    }
    if (this.unknownUntil.size >= UNKNOWN_CACHE_MAX) this.unknownUntil.clear();
    this.unknownUntil.set(deviceId, this.now() + UNKNOWN_DEVICE_TTL_MS);
    return null;
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
