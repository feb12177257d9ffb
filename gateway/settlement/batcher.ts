/**
 * What goes into the next package, device-fair: each service's pending envelopes in acceptance
 * order, taken a package at a time (takeBatch), devices whole and oldest first, a device with
 * packages in flight only within its service's bound on them and SEQ_WINDOW_SEQS of its lowest
 * unsettled seq; and whether a packing makes one more package (packsAnother).
 */
import type { IngestService } from "../ingest-service.ts";
import type { LogEntry } from "../log.ts";
import { settlementLimits } from "./limits.ts";
import { SEQ_WINDOW_SEQS } from "../../devices/protocol/seq-window.ts";

export class Batcher {
  /** Pending entries per service, in acceptance order. */
  private readonly pending = new Map<number, LogEntry[]>();
  /** Record bytes of each service's pending entries (what a package of them would carry). */
  private readonly pendingBytes = new Map<number, number>();
  /**
   * Devices with envelopes in a package in flight, and in how many. A device's next envelopes wait
   * until its packages are settled or failed (or, where its service allows several, are packed
   * within SEQ_WINDOW_SEQS), so the ledger sees each device's seqs package after package in order,
   * and the service's 64-seq window never mistakes a late package for a replay (a retried package
   * overtaken by a later one would otherwise be refused).
   */
  private readonly busyDevices = new Map<string, number>();
  /** Per device with packages in flight: the lowest seq of each (at most packagesInFlightPerDeviceMax). */
  private readonly inFlightSeqs = new Map<string, number[]>();
  /** Counts packages landing (devices leaving busyDevices): the only thing that lets a waiting entry be packed. */
  private busyEpoch = 0;
  /**
   * Per service: how long its pending list was when packing last found nothing to take (every
   * entry's device busy), and the busyEpoch then. Until a package lands, those entries still
   * cannot be taken, so the next packing looks only at what was added after them: rescanning a
   * backlog of 90,000 envelopes every batch deadline took 10% of the main thread (measured,
   * bench/gateway.ts --rate 5000 --cpu-prof).
   */
  private readonly idleUpTo = new Map<number, { readonly length: number; readonly epoch: number }>();

  constructor(private readonly services: ReadonlyMap<number, IngestService>) {}

  /** Envelopes waiting to be packed, across services. */
  get pendingCount(): number {
    let n = 0;
    for (const list of this.pending.values()) n += list.length;
    return n;
  }

  /** Envelopes of a service waiting to be packed. */
  pendingOf(serviceId: number): number {
    return this.pending.get(serviceId)?.length ?? 0;
  }

  /** The services with envelopes pending, most first. */
  servicesByPending(): number[] {
    return [...this.pending]
      .filter(([, list]) => list.length > 0)
      .sort(([, a], [, b]) => b.length - a.length)
      .map(([serviceId]) => serviceId);
  }

  /** Queues a freshly logged entry. */
  add(entry: LogEntry): void {
    appendTo(this.pending, entry.serviceId, entry);
    this.countPending(entry.serviceId, [entry], 1);
  }

  /** Entries taken for a package that did not go: back to the front of their service's pending list. */
  putBack(serviceId: number, batch: readonly LogEntry[]): void {
    const list = this.pending.get(serviceId) ?? [];
    const back = batch.filter((entry) => entry.state === "pending");
    list.unshift(...back);
    list.sort((a, b) => a.order - b.order);
    this.pending.set(serviceId, list);
    this.countPending(serviceId, back, 1);
    this.idleUpTo.delete(serviceId);
  }

  private countPending(serviceId: number, entries: readonly LogEntry[], sign: 1 | -1): void {
    let bytes = 0;
    for (const e of entries) bytes += recordBytes(e);
    this.pendingBytes.set(serviceId, (this.pendingBytes.get(serviceId) ?? 0) + sign * bytes);
  }

  /** Whether a service has a full package pending: packing it now costs no envelope a place in it. */
  fullPending(serviceId: number): boolean {
    const envelopesMax = Math.min(settlementLimits.packageEnvelopesMax, this.services.get(serviceId)?.packageEnvelopesMax ?? Infinity);
    return (this.pending.get(serviceId)?.length ?? 0) >= envelopesMax || (this.pendingBytes.get(serviceId) ?? 0) >= settlementLimits.packageEnvelopeBytesMax;
  }

  /** Whether any service has a full package pending. */
  anyFullPending(): boolean {
    for (const serviceId of this.pending.keys()) if (this.fullPending(serviceId)) return true;
    return false;
  }

  /**
   * Takes the next package's worth of a service's pending entries (takeBatch), at most
   * `envelopesMax` and the service's own bounds. Taking nothing marks the list idle up to its
   * length, until a package lands.
   */
  take(serviceId: number, envelopesMax: number): LogEntry[] {
    const list = this.pending.get(serviceId);
    if (list === undefined) return [];
    const service = this.services.get(serviceId);
    const devicesMax = Math.min(settlementLimits.packageDevicesMax, service?.packageDevicesMax ?? Infinity);
    const idle = this.idleUpTo.get(serviceId);
    const from = idle !== undefined && idle.epoch === this.busyEpoch ? Math.min(idle.length, list.length) : 0;
    const overlap: PackageOverlap = {
      packagesPerDeviceMax: service?.packagesInFlightPerDeviceMax ?? 1,
      lowestInFlightSeq: (id) => Math.min(...(this.inFlightSeqs.get(id) ?? [Number.POSITIVE_INFINITY])),
    };
    const batch = takeBatch(list, this.busyDevices, devicesMax, from, overlap, Math.min(envelopesMax, service?.packageEnvelopesMax ?? Infinity));
    this.countPending(serviceId, batch, -1);
    if (batch.length === 0) {
      // Everything pending waits for its device's package in flight.
      this.idleUpTo.set(serviceId, { length: list.length, epoch: this.busyEpoch });
      return batch;
    }
    this.idleUpTo.delete(serviceId);
    return batch;
  }

  /** A package of these entries is in flight: its devices are busy. */
  hold(entries: readonly LogEntry[]): void {
    for (const [id, seq] of lowestSeqs(entries)) {
      this.busyDevices.set(id, (this.busyDevices.get(id) ?? 0) + 1);
      appendTo(this.inFlightSeqs, id, seq);
    }
  }

  /** A package of these entries is no longer in flight: its devices are free for the next one. */
  release(entries: readonly LogEntry[]): void {
    this.busyEpoch++;
    for (const [id, seq] of lowestSeqs(entries)) {
      const n = (this.busyDevices.get(id) ?? 1) - 1;
      if (n <= 0) this.busyDevices.delete(id);
      else this.busyDevices.set(id, n);
      const seqs = this.inFlightSeqs.get(id) ?? [];
      const at = seqs.indexOf(seq);
      if (at >= 0) seqs.splice(at, 1);
      if (seqs.length === 0) this.inFlightSeqs.delete(id);
    }
  }

  /** Forgets the idle marks: the next packing looks at every pending entry again. */
  forgetIdle(): void {
    this.idleUpTo.clear();
  }
}

/**
 * Whether a packing makes another package of a service's pending envelopes, after `made` of
 * them, `parts` being the service's share of the packing's cores: within the share, always;
 * past it, a full package (it goes at once), or when aligned to a block one package for a
 * backlog of settlementLimits.backlogPackageEnvelopesMin or more; a smaller rest waits.
 */
export function packsAnother(p: {
  readonly aligned: boolean;
  readonly made: number;
  readonly parts: number;
  readonly pending: number;
  readonly fullPending: boolean;
}): boolean {
  if (p.made < p.parts || p.fullPending) return true;
  return p.aligned && p.made === p.parts && p.pending >= settlementLimits.backlogPackageEnvelopesMin;
}

/** Adds `value` to the list of `key` in `groups`, starting the list if there is none. */
export function appendTo<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key);
  if (list === undefined) groups.set(key, [value]);
  else list.push(value);
}

/** Each device of a package with its lowest seq in it. */
function lowestSeqs(entries: readonly LogEntry[]): Map<string, number> {
  const lowest = new Map<string, number>();
  for (const e of entries) lowest.set(e.deviceId, Math.min(lowest.get(e.deviceId) ?? e.seq, e.seq));
  return lowest;
}

/** How many packages a device may have in flight, and the lowest seq it has in flight (for SEQ_WINDOW_SEQS). */
export interface PackageOverlap {
  readonly packagesPerDeviceMax: number;
  lowestInFlightSeq(deviceId: string): number;
}

const NO_OVERLAP: PackageOverlap = { packagesPerDeviceMax: 1, lowestInFlightSeq: () => Number.POSITIVE_INFINITY };

/** What an envelope adds to an envelopes item besides its signed bytes: public key 32, u32 length, signature 64 (services/telemetry/payload.ts). */
const ENVELOPE_RECORD_OVERHEAD_BYTES = 32 + 4 + 64;

/** Bytes an entry takes in a package: its signed bytes, public key, length and signature. */
function recordBytes(entry: LogEntry): number {
  return ENVELOPE_RECORD_OVERHEAD_BYTES + entry.signingBytes.length;
}

/**
 * Takes the next package's worth of entries out of `list` (acceptance order), within the package
 * bounds, skipping devices that are busy. Devices are taken whole, oldest pending entry first:
 * all of a device's pending entries go into the package, as far as it has room. So each device's
 * envelopes reach the ledger in the order they were accepted (what is taken of a device is a
 * prefix of its entries), and a package leaves the devices it does not hold free for the next one.
 * Taking every device's oldest entry instead put all 1,000 devices of the benchmark in the first
 * W_B-full package, ~3 entries each, so one package at a time was in flight and settlement fell to
 * ~1,250/s at an offered 2,000/s (measured: bench/gateway.ts --rate 2000).
 * Entries before `from` are known to belong to busy devices (the caller's idle mark) and are not
 * looked at. The package is full by count, or by bytes within one envelope.
 */
export function takeBatch(
  list: LogEntry[],
  busy: ReadonlyMap<string, number>,
  devicesMax: number,
  from = 0,
  overlap: PackageOverlap = NO_OVERLAP,
  envelopesMax: number = settlementLimits.packageEnvelopesMax,
): LogEntry[] {
  // Free devices' entries (their indices), devices in the order of their oldest entry.
  const byDevice = new Map<string, number[]>();
  const limitOf = new Map<string, number>();
  for (let i = from; i < list.length; i++) {
    const entry = list[i]!;
    const id = entry.deviceId;
    const packages = busy.get(id) ?? 0;
    if (packages >= overlap.packagesPerDeviceMax) continue;
    if (packages > 0) {
      // A device with a package in flight: only seqs within SEQ_WINDOW_SEQS of its lowest unsettled one.
      let limit = limitOf.get(id);
      if (limit === undefined) {
        limit = Math.min(overlap.lowestInFlightSeq(id), entry.seq) + SEQ_WINDOW_SEQS;
        limitOf.set(id, limit);
      }
      if (entry.seq >= limit) continue;
    }
    appendTo(byDevice, id, i);
  }
  const takenAt: number[] = [];
  let bytes = 0;
  let devices = 0;
  fill: for (const at of byDevice.values()) {
    if (devices >= devicesMax) break;
    devices++;
    for (const i of at) {
      const cost = recordBytes(list[i]!);
      if (takenAt.length >= Math.min(envelopesMax, settlementLimits.packageEnvelopesMax) || bytes + cost > settlementLimits.packageEnvelopeBytesMax) break fill; // full: the rest waits for the next package
      takenAt.push(i);
      bytes += cost;
    }
  }
  if (takenAt.length === 0) return [];
  // Take them out in acceptance order; what stays keeps its order.
  takenAt.sort((a, b) => a - b);
  const taken: LogEntry[] = [];
  let kept = takenAt[0]!;
  let next = 0;
  for (let i = kept; i < list.length; i++) {
    if (i === takenAt[next]) {
      taken.push(list[i]!);
      next++;
    } else list[kept++] = list[i]!;
  }
  list.length = kept;
  return taken;
}
