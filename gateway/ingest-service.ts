/**
 * What the gateway needs of a service it settles envelopes on: how to pack envelopes and
 * registrations into work items, and how to read its device registry and its per-package
 * outcomes back from state. One adapter per service (gateway/services/: telemetry, energy-trading, wifi-billing).
 */
import type { DeviceKind } from "../devices/protocol/device-kinds.ts";
import type { ReplayWindow } from "../services/common/window.ts";
import { EMPTY_WINDOW, type SeqWindow } from "./window.ts";

export interface EnvelopeRecord {
  readonly deviceId: string;
  readonly seq: number;
  readonly publicKey: Uint8Array;
  readonly signingBytes: Uint8Array;
  readonly signature: Uint8Array;
}

export interface RegistrationRecord {
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKind;
  /** An energy agent's household: its meter's device id (32 lowercase hex digits). */
  readonly household?: string;
  /** A Wi-Fi router's terms on wifi-billing (services/wifi-billing/README.md): its owner, price, stake, capacity, billing of attested usage, name. */
  readonly router?: RouterTerms;
}

/** What a router registers with on the wifi-billing service; amounts in micro-units, checked by the HTTP route. */
export interface RouterTerms {
  /** The owner's account id (32 lowercase hex digits): its balance pays the stake and gets the router's earnings. */
  readonly owner: string;
  /** Micro-units per 10^9 octets. */
  readonly priceMicrosPerGb: bigint;
  /** Moved from the owner's balance to its locked at registration; returned after deregistration's cool-down. */
  readonly stakeMicros: bigint;
  readonly capacityBitsPerSecond: bigint;
  /** The owner takes router-attested usage (no client voucher) as billable. */
  readonly attested: boolean;
  /** UTF-8, at most 32 bytes. */
  readonly name: string;
}

export interface RegisteredDevice {
  readonly publicKey: Uint8Array;
  readonly kind: DeviceKind;
  /** The highest seq the service has settled for the device (so signed by its key), or -1 before the first. */
  readonly settledHighestSeq: number;
  /**
   * The service's whole window of the device's settled seqs (services/common/window.ts): the highest
   * and which of the SEQ_WINDOW_SEQS below it are settled, in the gateway's form (gateway/window.ts),
   * so a gateway that learns it from the ledger (a cluster's gateway a device moves to,
   * cluster/windows.ts learnedWindow) refuses a resend of any of them before its PUBACK, not only
   * of the highest. Absent (a device just registered): nothing settled below the highest.
   */
  readonly settledWindow?: SeqWindow;
}

/** What a service decided about each envelope of one accumulated package: null = settled, else the refusal's code. */
export type EnvelopeVerdicts = (deviceId: string, seq: number) => string | null;

export interface IngestService {
  /** The service's name, as operators and `POST /v1/devices` name it ("telemetry", "energy-trading"). */
  readonly name: string;
  readonly serviceId: number;
  readonly codeHash: Uint8Array;
  /** Device kinds it takes. */
  readonly kinds: readonly DeviceKind[];
  /** Distinct devices in one envelopes package: what the service's refine output per device lets fit in W_R. */
  readonly packageDevicesMax: number;
  /**
   * Distinct devices in one envelopes item, where the service's item bound is below packageDevicesMax
   * (telemetry: ENVELOPE_DEVICES_PER_ITEM_MAX, 1,024, in a package of more): settlement/builder.ts cuts
   * a package into as many more items as that takes. Absent: packageDevicesMax.
   */
  readonly itemDevicesMax?: number;
  /**
   * Envelopes in one envelopes package, when the service bounds them below settlement's
   * packageEnvelopesMax (wifi-billing: 320, one session delta each must fit W_R). Settlement packs
   * at most this many (settlement/batcher.ts takeBatch's `envelopesMax`).
   */
  readonly packageEnvelopesMax?: number;
  /**
   * Packages of one device in flight at once (default 1). More keep a busy device's envelopes
   * moving while its last package settles; only for a service that takes a device's packages in
   * any order (telemetry's replay window does; the energy market's counters must come in order).
   */
  readonly packagesInFlightPerDeviceMax?: number;
  /**
   * Envelope items one package may be split into (default 1): the node's refine threads. The node
   * refines a package's items in parallel, a group of them per refine thread, so a large package
   * split in two is refined in about half the time; a packing of several packages shares them
   * (settlement/builder.ts packageItemsMax). Only for a service whose accumulate takes a package's items
   * together (telemetry keeps one outcome per package).
   */
  readonly itemsPerPackageMax?: number;
  /** Registrations in one package (the service's per-item bound). */
  readonly registrationsPerPackageMax: number;
  /** Why a registration request cannot be taken (e.g. an agent without its household), or null. */
  checkRegistration?(record: RegistrationRecord): string | null;
  /**
   * Work-item payload of envelopes, records sorted by (deviceId, seq) and unique: written into the
   * start of `into` when it has room (a view of it is returned, valid until the caller reuses it),
   * else into a new buffer.
   */
  envelopesPayload(records: readonly EnvelopeRecord[], into?: Uint8Array): Uint8Array;
  /** Accumulate gas for an envelopes item of that shape (within G_A). */
  envelopesGas(devices: number, envelopes: number): bigint;
  /**
   * Refine gas declared for an envelopes item of that shape, with its margin and at most
   * `shareMax`, for a service whose refine is charged more per envelope than telemetry's and
   * energy's (refine-gas.ts envelopesRefineGas, the default): wifi-billing verifies a client's
   * voucher beside each envelope's own signature.
   */
  envelopesRefineGas?(item: { readonly payloadBytes: number; readonly envelopes: number; readonly devices: number }, shareMax: bigint): bigint;
  /**
   * Refine gas declared for a registrations item of that shape, with its margin and at most
   * `shareMax`, for a service whose refine is charged other than refine-gas.ts registrationsRefineGas
   * (the default: a key hashed per registration): telemetry's hashes nothing.
   */
  registrationsRefineGas?(item: { readonly payloadBytes: number; readonly registrations: number }, shareMax: bigint): bigint;
  registrationsPayload(records: readonly RegistrationRecord[]): Uint8Array;
  registrationsGas(registrations: number): bigint;
  deviceKey(deviceId: string): Uint8Array;
  decodeDevice(value: Uint8Array): RegisteredDevice | null;
  outcomeKey(packageHash: Uint8Array): Uint8Array;
  /** The verdicts of an accumulated package from its outcome value; null if it does not decode. */
  decodeOutcome(value: Uint8Array): EnvelopeVerdicts | null;
  /** Why the package refused each registration (null = stored), from its outcome value; null if it does not decode. */
  decodeRegistrationOutcome?(value: Uint8Array): ((deviceId: string) => string | null) | null;
}

/** A service window's highest settled seq as the gateway counts seqs (below 2^53: envelopes carry no more), -1 before the first. */
export function settledHighestSeqOf(window: { readonly highestSeq: bigint | null }): number {
  if (window.highestSeq === null) return -1;
  return window.highestSeq > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(window.highestSeq);
}

/**
 * A service's window (services/common/window.ts) in the gateway's form (gateway/window.ts): the
 * highest settled seq (-1 before the first) and the bitmap of the SEQ_WINDOW_SEQS below it, bit i
 * for seq highest − 1 − i in both. A highest past 2^53 (no envelope carries one) is kept as
 * settledHighestSeqOf clamps it, without its bitmap, whose bits would then name other seqs.
 */
export function settledWindowOf(window: ReplayWindow): SeqWindow {
  if (window.highestSeq === null) return EMPTY_WINDOW;
  const highest = settledHighestSeqOf(window);
  return { highest, below: BigInt(highest) === window.highestSeq ? window.bitmap : 0n };
}

/** A registered device's settled window: its whole window where its service's adapter read it, else its highest alone. */
export function settledWindowOfDevice(device: Pick<RegisteredDevice, "settledHighestSeq" | "settledWindow">): SeqWindow {
  return device.settledWindow ?? (device.settledHighestSeq < 0 ? EMPTY_WINDOW : { highest: device.settledHighestSeq, below: 0n });
}
