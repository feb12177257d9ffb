/**
 * Refine of the energy-trading service (GP 14.3, Ψ_R of one work item): stateless, on a core, in
 * parallel with other cores. Checks each envelope (device id against its key, Ed25519 signature),
 * decodes its body by kind, and condenses the item:
 *
 * - a meter's envelopes (`meter.reading`: counters in Wh, one reading every few seconds) become
 *   its first and last reading and the energy it imported and exported per market interval; a
 *   reading that gains more than METER_POWER_W_MAX delivers since the reading before it refuses its
 *   envelope (JG_ERR_ENERGY_POWER), and the next envelope counts from the last one accepted;
 * - a `meter.reset` (one reading: the counters of a replaced or reset meter) starts a new baseline
 *   in the meter's digest, from which the readings after it count;
 * - an agent's envelopes (`agent.order`) become order sets (interval, side, energy, price);
 * - everything accepted is committed to by one hash of (device, seq, H(body)) leaves, so the raw
 *   readings, which stay available in DA, can be proven against the ledger.
 *
 * A bad envelope is a refusal in the output, with its code; a malformed payload is a gateway bug
 * and fails the item (throws). Deterministic: integers only, no clock; the market clock comes in
 * the item and accumulate checks it against the service's.
 */
import type { RefineContext } from "../../node/service-api/index.ts";
import { bytesEqual, U32_MAX } from "../common/bytes.ts";
import { decodedOrThrow, refineItem } from "../common/dispatch.ts";
import { deviceIdOfKey } from "../common/registration.ts";
import { CommitmentLeaves, type RawDeviceId, toRuns } from "../common/envelope.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import { decodeMeterBody, decodeMeterResetBody, decodeOrderBody, type MeterReading } from "./body.ts";
import { condenseReadings, firstOverPower } from "./condense.ts";
import {
  type DeviceOutput,
  encodeRefineOutput,
  type EnvelopesOutput,
  type MeterDigest,
  type OrderSet,
  OrderSide,
  type RegistrationsOutput,
  type SeqRejection,
} from "./output.ts";
import { decodeEnvelopesItem, decodeRegistrationsItem, DeviceRole, ItemKind } from "./payload.ts";

const SERVICE = "energy-trading";

/** The hash and signature check refine needs from its host (both gas-charged there). */
export type RefineHost = Pick<RefineContext, "hash" | "verifyEd25519">;

export const METER_READING_KIND = "meter.reading";
/** A meter's new baseline after its counter was replaced or reset (README, "A meter whose counter was replaced or reset"). */
export const METER_RESET_KIND = "meter.reset";
export const AGENT_ORDER_KIND = "agent.order";

export function refine(payload: Uint8Array, context: RefineContext): Uint8Array {
  return refineItem(
    SERVICE,
    payload,
    {
      [ItemKind.envelopes]: () => encodeRefineOutput(refineEnvelopes(payload, context)),
      [ItemKind.registrations]: () => encodeRefineOutput(refineRegistrations(payload, context)),
    },
    "the item has too many devices",
  );
}

export function refineEnvelopes(payload: Uint8Array, host: RefineHost): EnvelopesOutput {
  const { records, marketStartMs, intervalMs } = decodedOrThrow(SERVICE, "envelopes item", decodeEnvelopesItem(payload));
  const clock = { startMs: Number(marketStartMs), intervalMs };
  if (!Number.isSafeInteger(clock.startMs)) throw new Error(`energy-trading: market start ${marketStartMs} ms is past 2^53`);
  const leaves = new CommitmentLeaves(records.length);
  const devices: DeviceOutput[] = [];
  let i = 0;
  while (i < records.length) {
    const deviceId: RawDeviceId = records[i]!.fields.deviceId;
    const accepted: bigint[] = [];
    const rejected: SeqRejection[] = [];
    const orders: OrderSet[] = [];
    const meterEnvelopes: MeterReading[][] = [];
    const resets: boolean[] = []; // of `meterEnvelopes`, index for index
    const bodyHashes: Uint8Array[] = []; // of `accepted`, index for index
    let lastReading: MeterReading | null = null;
    let idOfKey: Uint8Array | null = null;
    for (; i < records.length && bytesEqual(records[i]!.fields.deviceId, deviceId); i++) {
      const record = records[i]!;
      const { seq, kind, body } = record.fields;
      // Records of a device are adjacent and share its key (the gateway sends the registered one).
      if (idOfKey === null || !bytesEqual(records[i - 1]!.publicKey, record.publicKey)) idOfKey = deviceIdOfKey(host, record.publicKey);
      const reject = (code: SeqRejection["code"]) => rejected.push({ seq, code });
      if (!bytesEqual(idOfKey, deviceId)) {
        reject(REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE);
        continue;
      }
      if (!host.verifyEd25519(record.publicKey, record.signingBytes, record.signature)) {
        reject(REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE);
        continue;
      }
      if (kind === METER_READING_KIND) {
        const meter = decodeMeterBody(body);
        if (!meter.ok) {
          reject(meter.error === "counter-backwards" ? REJECTION_CODES.JG_ERR_ENERGY_COUNTER : REJECTION_CODES.JG_ERR_ENERGY_BODY);
          continue;
        }
        const first = meter.value[0]!;
        if (first.t < clock.startMs) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_CLOSED); // before the market's first interval
          continue;
        }
        if (lastReading !== null && first.t <= lastReading.t) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_BODY); // overlaps the device's earlier envelope in time
          continue;
        }
        if (lastReading !== null && (first.importWh < lastReading.importWh || first.exportWh < lastReading.exportWh)) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_COUNTER);
          continue;
        }
        // Against the package's last accepted reading (before it, accumulate checks the gap from state).
        if (firstOverPower(meter.value, lastReading) >= 0) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_POWER);
          continue;
        }
        meterEnvelopes.push(meter.value);
        resets.push(false);
        lastReading = meter.value[meter.value.length - 1]!;
      } else if (kind === METER_RESET_KIND) {
        const reset = decodeMeterResetBody(body);
        if (!reset.ok) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_BODY);
          continue;
        }
        if (reset.value.t < clock.startMs) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_CLOSED);
          continue;
        }
        // A reset may move the counters either way, but not back in time: the readings after it count from it.
        if (lastReading !== null && reset.value.t <= lastReading.t) {
          reject(REJECTION_CODES.JG_ERR_ENERGY_BODY);
          continue;
        }
        meterEnvelopes.push([reset.value]);
        resets.push(true);
        lastReading = reset.value;
      } else if (kind === AGENT_ORDER_KIND) {
        const order = decodeOrderBody(body);
        if (!order.ok) {
          reject(
            order.error === "out-of-range" || order.error === "too-many" || order.error === "mixed-sides" || order.error === "unknown-side"
              ? REJECTION_CODES.JG_ERR_ENERGY_ORDER
              : REJECTION_CODES.JG_ERR_ENERGY_BODY,
          );
          continue;
        }
        orders.push({
          seq,
          interval: order.value.interval,
          lines: order.value.orders.map((line) => ({
            side: line.side === "bid" ? OrderSide.bid : OrderSide.ask,
            energyWh: line.energyWh,
            priceMicrosPerKwh: line.priceMicrosPerKwh,
          })),
        });
      } else {
        reject(REJECTION_CODES.JG_ERR_ENERGY_KIND);
        continue;
      }
      accepted.push(seq);
      bodyHashes.push(host.hash(body));
    }
    let meter = meterEnvelopes.length === 0 ? null : digestOf(meterEnvelopes, resets, clock);
    const overflow =
      meter === null
        ? null
        : meter.intervals.some((e) => e.interval > U32_MAX)
          ? REJECTION_CODES.JG_ERR_ENERGY_INTERVAL_FAR
          : meter.intervals.some((e) => e.importWh > U32_MAX || e.exportWh > U32_MAX)
            ? REJECTION_CODES.JG_ERR_ENERGY_COUNTER
            : null;
    if (overflow !== null) {
      // An interval past 2^32 (readings far in the future) or more than 4.29 GWh in one interval
      // is no household's meter: refuse its readings of this package.
      const orderSeqs = new Set(orders.map((o) => o.seq));
      for (let k = accepted.length - 1; k >= 0; k--) {
        if (orderSeqs.has(accepted[k]!)) continue;
        rejected.push({ seq: accepted[k]!, code: overflow });
        accepted.splice(k, 1);
        bodyHashes.splice(k, 1);
      }
      meter = null;
    }
    for (const [k, seq] of accepted.entries()) leaves.add(deviceId, seq, bodyHashes[k]!);
    devices.push({ deviceId, accepted: toRuns(accepted), rejected, meter, orders });
  }
  return { kind: ItemKind.envelopes, marketStartMs, intervalMs, commitment: leaves.commitment((data) => host.hash(data)), devices };
}

function digestOf(envelopes: readonly MeterReading[][], resets: readonly boolean[], clock: { startMs: number; intervalMs: number }): MeterDigest {
  const condensed = condenseReadings(envelopes, clock, resets);
  // Every envelope was checked against the one before it and against the market start above.
  if (!condensed.ok) throw new Error(`energy-trading: readings that passed the checks do not condense: ${condensed.detail}`);
  const { first, last, intervals } = condensed.value;
  const reading = (r: MeterReading) => ({ t: BigInt(r.t), importWh: BigInt(r.importWh), exportWh: BigInt(r.exportWh) });
  return {
    firstIsReset: resets[0] === true,
    first: reading(first),
    last: reading(last),
    intervals: intervals.map((e) => ({ interval: e.interval, importWh: e.importWh, exportWh: e.exportWh })),
  };
}

export function refineRegistrations(payload: Uint8Array, host: RefineHost): RegistrationsOutput {
  const records = decodedOrThrow(SERVICE, "registrations item", decodeRegistrationsItem(payload));
  return {
    kind: ItemKind.registrations,
    registrations: records.map((r) => {
      const deviceId = deviceIdOfKey(host, r.publicKey);
      return { deviceId, publicKey: r.publicKey, role: r.role, household: r.role === DeviceRole.meter ? deviceId : r.household };
    }),
  };
}
