/**
 * The gateway's adapter for the energy-trading service (services/energy-trading/types.ts).
 * Envelopes items name the market clock refine bins readings by, so the adapter is made for the
 * market the service runs: `energyServiceFromChain` reads it from the service's state.
 */
import { tryAsDeviceId } from "../../devices/envelope.ts";
import type { NodeApi } from "../../node/api.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import {
  accumulateGasLimit,
  CONFIG_KEY,
  decodeDeviceRecord,
  decodeMarketConfig,
  DeviceRole,
  deviceKey,
  ENERGY_SERVICE_NAME,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  type ItemClock,
  type MarketConfig,
  outcomeKey,
  REGISTRATIONS_PER_ITEM_MAX,
} from "../../services/energy-trading/types.ts";
import { type IngestService, settledHighestSeqOf, settledWindowOf } from "../ingest-service.ts";
import { outcomeDecoders } from "./outcome.ts";

export function energyService(serviceId: number, clock: ItemClock): IngestService {
  return {
    name: ENERGY_SERVICE_NAME,
    serviceId,
    codeHash: nativeCodeHash(ENERGY_SERVICE_NAME),
    kinds: ["meter", "agent"],
    packageDevicesMax: ENVELOPE_DEVICES_PER_ITEM_MAX,
    registrationsPerPackageMax: REGISTRATIONS_PER_ITEM_MAX,
    checkRegistration(record) {
      if (record.kind !== "meter" && record.kind !== "agent") return `the energy market takes meters and agents, not ${record.kind}s`;
      if (record.kind === "agent" && (record.household === undefined || tryAsDeviceId(record.household) === null))
        return "an agent needs its household: the device id of the household's meter";
      if (record.kind === "meter" && record.household !== undefined) return "a meter is its own household; give household for agents only";
      return null;
    },
    envelopesPayload: (records, into) =>
      encodeEnvelopesItem(
        clock,
        records.map((r) => ({ publicKey: r.publicKey, signingBytes: r.signingBytes, signature: r.signature })),
        into,
      ),
    envelopesGas: (devices, envelopes) => accumulateGasLimit({ devices, envelopes }),
    registrationsPayload: (records) =>
      encodeRegistrationsItem(
        records.map((r) => ({
          publicKey: r.publicKey,
          role: r.kind === "agent" ? "agent" : "meter",
          household: r.household === undefined ? null : Buffer.from(r.household, "hex"),
        })),
      ),
    registrationsGas: (registrations) => accumulateGasLimit({ registrations }),
    deviceKey: (deviceId) => deviceKey(deviceId),
    decodeDevice(value) {
      const record = decodeDeviceRecord(value);
      if (!record.ok) return null;
      return {
        publicKey: record.value.publicKey,
        kind: record.value.role === DeviceRole.agent ? "agent" : "meter",
        settledHighestSeq: settledHighestSeqOf(record.value.window),
        settledWindow: settledWindowOf(record.value.window),
      };
    },
    outcomeKey,
    ...outcomeDecoders,
  };
}

/** The market config of the energy service on the node's best block, or null when it has none. */
export async function marketConfigOnChain(api: NodeApi, serviceId: number): Promise<MarketConfig | null> {
  const best = await api.bestBlock();
  const value = await api.serviceValue(best.headerHash, serviceId, CONFIG_KEY);
  if (value === null) return null;
  const config = decodeMarketConfig(value);
  if (!config.ok) throw new Error(`energy-trading service ${serviceId}: ${config.error}`);
  return config.value;
}

/** The adapter for the market the service runs, or null when the node has no such market. */
export async function energyServiceFromChain(api: NodeApi, serviceId: number): Promise<IngestService | null> {
  const config = await marketConfigOnChain(api, serviceId);
  return config === null ? null : energyService(serviceId, { marketStartMs: config.startMs, intervalMs: config.intervalMs });
}
