/**
 * Refine outputs of the energy-trading service (the work result's ok blob, GP 11.1.4), refine →
 * accumulate: what is left of a package once its envelopes are verified and condensed. The raw
 * readings stay in the data-availability layer, committed to by `commitment`; the output keeps,
 * per device, which seqs passed refine, a meter's energy per market interval with its first and
 * last reading, and an agent's order sets.
 *
 * Envelopes output: u8 0 ⌢ u64 marketStartMs ⌢ u32 intervalMs ⌢ commitment 32 ⌢ u16 n ⌢ n × device
 *   device: deviceId 16 ⌢ u16 runs ⌢ runs × (u64 start ⌢ u32 length) ⌢ u16 r ⌢ r × (u64 seq ⌢ u8 code)
 *     ⌢ u8 meter ⌢ [reading first ⌢ reading last ⌢ u16 k ⌢ k × (u32 interval ⌢ u32 importWh ⌢ u32 exportWh)]
 *     ⌢ u16 m ⌢ m × (u64 seq ⌢ u32 interval ⌢ u8 lines ⌢ lines × (u8 side ⌢ u32 energyWh ⌢ u32 priceMicrosPerKwh))
 *   reading: u64 t ⌢ u64 importWh ⌢ u64 exportWh
 *   meter: 0 no digest; 1 a digest whose first reading follows the meter's last settled one; 2 a
 *     digest whose first reading is a `meter.reset` (a new baseline: no energy since the last
 *     settled reading). Outputs without a reset are byte for byte what they were before resets.
 * Registrations output: u8 1 ⌢ u32 n ⌢ n × (deviceId 16 ⌢ publicKey 32 ⌢ u8 role ⌢ household 16)
 *
 * Every accepted seq is in `accepted`; those of order sets are listed with their orders, the rest
 * are the meter's envelopes, condensed into `meter`.
 */
import { compareBytes, type Result, U16_MAX } from "../common/bytes.ts";
import { d, decode, type Descriptor, encode } from "../common/codec.ts";
import { itemOutputCodec } from "../common/dispatch.ts";
import {
  ED25519_PUBLIC_KEY_BYTES,
  type RawDeviceId,
  rawDeviceIdCodec,
  type SeqRejection,
  seqRejectionCodec,
  type SeqRun,
  seqRunCodec,
} from "../common/envelope.ts";

export type { SeqRejection } from "../common/envelope.ts";
import { DeviceRole, ItemKind, REGISTRATIONS_PER_ITEM_MAX } from "./payload.ts";

/** Order lines in one order set (an agent's price steps for one interval). */
export const ORDER_LINES_MAX = 8;

export interface Reading {
  readonly t: bigint;
  readonly importWh: bigint;
  readonly exportWh: bigint;
}

export interface IntervalEnergy {
  readonly interval: number;
  readonly importWh: number;
  readonly exportWh: number;
}

/** A meter's envelopes of one package, condensed: the energy between its first and last reading, per market interval. */
export interface MeterDigest {
  /** True when `first` is a `meter.reset`: accumulate takes it as the new baseline and credits no energy before it. */
  readonly firstIsReset: boolean;
  readonly first: Reading;
  readonly last: Reading;
  readonly intervals: readonly IntervalEnergy[];
}

const METER_NONE = 0;
const METER_DIGEST = 1;
const METER_DIGEST_FROM_RESET = 2;

export const OrderSide = { bid: 0, ask: 1 } as const;
export type OrderSide = (typeof OrderSide)[keyof typeof OrderSide];

export interface OrderLine {
  readonly side: OrderSide;
  readonly energyWh: number;
  readonly priceMicrosPerKwh: number;
}

/** One agent envelope: its orders for one interval (no lines withdraws earlier ones). */
export interface OrderSet {
  readonly seq: bigint;
  readonly interval: number;
  readonly lines: readonly OrderLine[];
}

export interface DeviceOutput {
  readonly deviceId: RawDeviceId;
  readonly accepted: readonly SeqRun[];
  readonly rejected: readonly SeqRejection[];
  readonly meter: MeterDigest | null;
  readonly orders: readonly OrderSet[];
}

export interface EnvelopesOutput {
  readonly kind: typeof ItemKind.envelopes;
  readonly marketStartMs: bigint;
  readonly intervalMs: number;
  readonly commitment: Uint8Array;
  readonly devices: readonly DeviceOutput[];
}

export interface RegistrationEntry {
  readonly deviceId: RawDeviceId;
  readonly publicKey: Uint8Array;
  readonly role: DeviceRole;
  readonly household: RawDeviceId;
}

export interface RegistrationsOutput {
  readonly kind: typeof ItemKind.registrations;
  readonly registrations: readonly RegistrationEntry[];
}

export type RefineOutput = EnvelopesOutput | RegistrationsOutput;

/** u64 t ⌢ u64 importWh ⌢ u64 exportWh. */
export const readingCodec: Descriptor<Reading> = d.object({ t: d.u64, importWh: d.u64, exportWh: d.u64 });

/** reading first ⌢ reading last ⌢ u16 k ⌢ k × (u32 interval ⌢ u32 importWh ⌢ u32 exportWh): a digest after its flag. */
const digestBodyCodec = d.object({
  first: readingCodec,
  last: readingCodec,
  intervals: d.array(d.object({ interval: d.u32, importWh: d.u32, exportWh: d.u32 }), "u16", U16_MAX),
});

/** u8 meter flag (METER_NONE, METER_DIGEST, METER_DIGEST_FROM_RESET) ⌢ the digest unless none. */
const meterCodec: Descriptor<MeterDigest | null> = d.union<MeterDigest | null>(
  {
    [METER_NONE]: d.constant(null),
    [METER_DIGEST]: d.map(
      digestBodyCodec,
      (body): MeterDigest | null => ({ firstIsReset: false, ...body }),
      (digest) => ({ first: digest!.first, last: digest!.last, intervals: digest!.intervals as IntervalEnergy[] }),
    ),
    [METER_DIGEST_FROM_RESET]: d.map(
      digestBodyCodec,
      (body): MeterDigest | null => ({ firstIsReset: true, ...body }),
      (digest) => ({ first: digest!.first, last: digest!.last, intervals: digest!.intervals as IntervalEnergy[] }),
    ),
  },
  (digest) => (digest === null ? METER_NONE : digest.firstIsReset ? METER_DIGEST_FROM_RESET : METER_DIGEST),
  "meter digest",
);

/** u64 seq ⌢ u32 interval ⌢ u8 lines ⌢ lines × (u8 side ⌢ u32 energyWh ⌢ u32 priceMicrosPerKwh). */
const orderSetCodec: Descriptor<OrderSet> = d.object({
  seq: d.u64,
  interval: d.u32,
  lines: d.array(d.object({ side: d.oneOf([OrderSide.bid, OrderSide.ask], "order side"), energyWh: d.u32, priceMicrosPerKwh: d.u32 }), "u8", ORDER_LINES_MAX),
});

const deviceOutputCodec: Descriptor<DeviceOutput> = d.object({
  deviceId: rawDeviceIdCodec,
  accepted: d.array(seqRunCodec, "u16", U16_MAX),
  rejected: d.array(seqRejectionCodec(), "u16", U16_MAX),
  meter: meterCodec,
  orders: d.array(orderSetCodec, "u16", U16_MAX),
});

const envelopesOutputCodec: Descriptor<EnvelopesOutput> = d.map(
  d.object({
    marketStartMs: d.u64,
    intervalMs: d.u32,
    commitment: d.bytes(32),
    devices: d.checked(d.array(deviceOutputCodec, "u16", U16_MAX), (devices) => {
      for (let i = 1; i < devices.length; i++) if (compareBytes(devices[i - 1]!.deviceId, devices[i]!.deviceId) >= 0) return `device ${i} out of order`;
      return null;
    }),
  }),
  (body) => ({ kind: ItemKind.envelopes, ...body }),
  ({ kind: _, ...body }) => body,
  "envelopes output",
);

const registrationsOutputCodec: Descriptor<RegistrationsOutput> = d.map(
  d.array(
    d.object({
      deviceId: rawDeviceIdCodec,
      publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
      role: d.oneOf([DeviceRole.meter, DeviceRole.agent], "role"),
      household: rawDeviceIdCodec,
    }),
    "u32",
    REGISTRATIONS_PER_ITEM_MAX,
  ),
  (registrations) => ({ kind: ItemKind.registrations, registrations }),
  (output) => [...output.registrations],
  "registrations output",
);

/** u8 kind (ItemKind) ⌢ that kind's output. */
export const refineOutputCodec: Descriptor<RefineOutput> = itemOutputCodec(envelopesOutputCodec, registrationsOutputCodec);

export const encodeRefineOutput = (output: RefineOutput): Uint8Array => encode(refineOutputCodec, output);
/** Decodes a refine output; never throws. */
export const decodeRefineOutput = (bytes: Uint8Array): Result<RefineOutput> => decode(refineOutputCodec, bytes);
