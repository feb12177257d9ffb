/** The gateway's adapter for the telemetry service (services/telemetry/types.ts). */
import { DEVICE_KINDS } from "../../devices/protocol/device-kinds.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import {
  accumulateGasLimit,
  DEVICE_KINDS as SERVICE_KINDS,
  decodeDeviceRecord,
  deviceKey,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  outcomeKey,
  REGISTRATIONS_PER_ITEM_MAX,
  TELEMETRY_SERVICE_NAME,
} from "../../services/telemetry/types.ts";
import { type IngestService, settledHighestSeqOf, settledWindowOf } from "../ingest-service.ts";
import { registrationKeysRefineGas } from "../refine-gas.ts";
import { outcomeDecoders } from "./outcome.ts";

export function telemetryService(serviceId: number): IngestService {
  return {
    name: TELEMETRY_SERVICE_NAME,
    serviceId,
    codeHash: nativeCodeHash(TELEMETRY_SERVICE_NAME),
    kinds: [...DEVICE_KINDS],
    // Refine condenses a device to ~40 bytes; a report's results must fit W_R = 49,152.
    packageDevicesMax: 1_000,
    registrationsPerPackageMax: REGISTRATIONS_PER_ITEM_MAX,
    // Its 64-seq replay window settles a device's packages in any order (SEQ_WINDOW_SEQS, gateway/settlement/batcher.ts):
    // a busy device keeps up to 4 in flight, about one slot of its envelopes each.
    packagesInFlightPerDeviceMax: 4,
    // The embedded node (tiny chain) refines on 2 threads, one per core.
    itemsPerPackageMax: 2,
    envelopesPayload: (records, into) =>
      encodeEnvelopesItem(
        records.map((r) => ({ publicKey: r.publicKey, signingBytes: r.signingBytes, signature: r.signature })),
        into,
      ),
    envelopesGas: (devices, envelopes) => accumulateGasLimit({ devices, envelopes }),
    registrationsPayload: (records) => encodeRegistrationsItem(records.map((r) => ({ publicKey: r.publicKey, kind: r.kind }))),
    registrationsGas: (registrations) => accumulateGasLimit({ registrations }),
    // Its refine hands keys on unhashed (services/telemetry/refine.ts refineRegistrations).
    registrationsRefineGas: registrationKeysRefineGas,
    deviceKey: (deviceId) => deviceKey(deviceId),
    decodeDevice(value) {
      const record = decodeDeviceRecord(value);
      if (!record.ok) return null;
      const kind = SERVICE_KINDS[record.value.kind];
      if (kind === undefined) return null;
      const { window } = record.value;
      return { publicKey: record.value.publicKey, kind, settledHighestSeq: settledHighestSeqOf(window), settledWindow: settledWindowOf(window) };
    },
    outcomeKey,
    ...outcomeDecoders,
  };
}
