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
import { compareBytes, fail, ok, Reader, type Result, U64_MAX, Writer } from "../common/bytes.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, type RawDeviceId, type SeqRejection, type SeqRun } from "../common/envelope.ts";

export type { SeqRejection } from "../common/envelope.ts";
import { isRejectionCode, type RejectionCode } from "../common/errors.ts";
import { type DeviceRole, isDeviceRole, ItemKind } from "./payload.ts";

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

const READING_BYTES = 24;
const REGISTRATION_ENTRY_BYTES = DEVICE_ID_BYTES + ED25519_PUBLIC_KEY_BYTES + 1 + DEVICE_ID_BYTES;

function deviceBytes(d: DeviceOutput): number {
  let size = DEVICE_ID_BYTES + 2 + 12 * d.accepted.length + 2 + 9 * d.rejected.length + 1 + 2;
  if (d.meter !== null) size += 2 * READING_BYTES + 2 + 12 * d.meter.intervals.length;
  for (const o of d.orders) size += 8 + 4 + 1 + 9 * o.lines.length;
  return size;
}

export function encodeRefineOutput(output: RefineOutput): Uint8Array {
  if (output.kind === ItemKind.registrations) {
    const w = new Writer(1 + 4 + REGISTRATION_ENTRY_BYTES * output.registrations.length).u8(ItemKind.registrations).u32(output.registrations.length);
    for (const r of output.registrations) w.bytes(r.deviceId).bytes(r.publicKey).u8(r.role).bytes(r.household);
    return w.finish();
  }
  let size = 1 + 8 + 4 + 32 + 2;
  for (const d of output.devices) size += deviceBytes(d);
  const w = new Writer(size).u8(ItemKind.envelopes).u64(output.marketStartMs).u32(output.intervalMs).bytes(output.commitment).u16(output.devices.length);
  for (const d of output.devices) {
    w.bytes(d.deviceId).u16(d.accepted.length);
    for (const run of d.accepted) w.u64(run.start).u32(run.length);
    w.u16(d.rejected.length);
    for (const r of d.rejected) w.u64(r.seq).u8(r.code);
    w.u8(d.meter === null ? METER_NONE : d.meter.firstIsReset ? METER_DIGEST_FROM_RESET : METER_DIGEST);
    if (d.meter !== null) {
      for (const reading of [d.meter.first, d.meter.last]) w.u64(reading.t).u64(reading.importWh).u64(reading.exportWh);
      w.u16(d.meter.intervals.length);
      for (const e of d.meter.intervals) w.u32(e.interval).u32(e.importWh).u32(e.exportWh);
    }
    w.u16(d.orders.length);
    for (const o of d.orders) {
      w.u64(o.seq).u32(o.interval).u8(o.lines.length);
      for (const line of o.lines) w.u8(line.side).u32(line.energyWh).u32(line.priceMicrosPerKwh);
    }
  }
  return w.finish();
}

/** Decodes a refine output; never throws. */
export function decodeRefineOutput(bytes: Uint8Array): Result<RefineOutput> {
  const r = new Reader(bytes);
  const kind = r.u8();
  if (kind === ItemKind.registrations) {
    const count = r.u32();
    if (r.failed || r.remaining !== count * REGISTRATION_ENTRY_BYTES) return fail("registrations output truncated or too long");
    const registrations: RegistrationEntry[] = [];
    for (let i = 0; i < count; i++) {
      const deviceId = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
      const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES).slice();
      const role = r.u8();
      const household = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
      if (!isDeviceRole(role)) return fail(`registration ${i}: role ${role}`);
      registrations.push({ deviceId, publicKey, role, household });
    }
    return ok({ kind: ItemKind.registrations, registrations });
  }
  if (kind !== ItemKind.envelopes) return fail(r.failed ? "empty output" : `output kind ${kind}`);
  const marketStartMs = r.u64();
  const intervalMs = r.u32();
  const commitment = r.bytes(32).slice();
  const count = r.u16();
  const devices: DeviceOutput[] = [];
  let previous: Uint8Array | null = null;
  for (let i = 0; i < count && !r.failed; i++) {
    const deviceId = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    if (previous !== null && compareBytes(previous, deviceId) >= 0) return fail(`device ${i} out of order`);
    previous = deviceId;
    const accepted: SeqRun[] = [];
    for (let n = r.u16(), j = 0; j < n && !r.failed; j++) {
      const start = r.u64();
      const length = r.u32();
      if (length === 0 || start + BigInt(length) - 1n > U64_MAX) return fail(`device ${i}: run ${j} is empty or past u64`);
      accepted.push({ start, length });
    }
    const rejected: SeqRejection[] = [];
    for (let n = r.u16(), j = 0; j < n && !r.failed; j++) {
      const seq = r.u64();
      const code = r.u8();
      if (!isRejectionCode(code)) return fail(`device ${i}: rejection code ${code}`);
      rejected.push({ seq, code });
    }
    let meter: MeterDigest | null = null;
    const hasMeter = r.u8();
    if (hasMeter > METER_DIGEST_FROM_RESET) return fail(`device ${i}: meter flag ${hasMeter}`);
    if (hasMeter !== METER_NONE) {
      const first = { t: r.u64(), importWh: r.u64(), exportWh: r.u64() };
      const last = { t: r.u64(), importWh: r.u64(), exportWh: r.u64() };
      const intervals: IntervalEnergy[] = [];
      for (let n = r.u16(), j = 0; j < n && !r.failed; j++) intervals.push({ interval: r.u32(), importWh: r.u32(), exportWh: r.u32() });
      meter = { firstIsReset: hasMeter === METER_DIGEST_FROM_RESET, first, last, intervals };
    }
    const orders: OrderSet[] = [];
    for (let n = r.u16(), j = 0; j < n && !r.failed; j++) {
      const seq = r.u64();
      const interval = r.u32();
      const lineCount = r.u8();
      if (lineCount > ORDER_LINES_MAX) return fail(`device ${i}: ${lineCount} order lines`);
      const lines: OrderLine[] = [];
      for (let k = 0; k < lineCount; k++) {
        const side = r.u8();
        if (side !== OrderSide.bid && side !== OrderSide.ask) return fail(`device ${i}: order side ${side}`);
        lines.push({ side, energyWh: r.u32(), priceMicrosPerKwh: r.u32() });
      }
      orders.push({ seq, interval, lines });
    }
    devices.push({ deviceId, accepted, rejected, meter, orders });
  }
  if (!r.done) return fail(r.failed ? "envelopes output truncated" : `${r.remaining} bytes after the last device`);
  return ok({ kind: ItemKind.envelopes, marketStartMs, intervalMs, commitment, devices });
}
