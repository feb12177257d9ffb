/** The gateway's adapter for the telemetry service (services/telemetry/types.ts). */
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import {
  accumulateGasLimit,
  DEVICE_KINDS as SERVICE_KINDS,
  decodeDeviceRecord,
  decodeOutcome,
  deviceKey,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  envelopeRejection,
  outcomeKey,
  TELEMETRY_SERVICE_NAME,
} from "../../services/telemetry/types.ts";
import type { IngestService } from "../ingest-service.ts";

export function telemetryService(serviceId: number): IngestService {
  return {
    serviceId,
    codeHash: nativeCodeHash(TELEMETRY_SERVICE_NAME),
    envelopesPayload: (records) => encodeEnvelopesItem(records.map((r) => ({ publicKey: r.publicKey, signingBytes: r.signingBytes, signature: r.signature }))),
    envelopesGas: (devices, envelopes) => accumulateGasLimit({ devices, envelopes }),
    registrationsPayload: (records) => encodeRegistrationsItem(records),
    registrationsGas: (registrations) => accumulateGasLimit({ registrations }),
    deviceKey: (deviceId) => deviceKey(deviceId),
    decodeDevice(value) {
      const record = decodeDeviceRecord(value);
      if (!record.ok) return null;
      const kind = SERVICE_KINDS[record.value.kind];
      return kind === undefined ? null : { publicKey: record.value.publicKey, kind };
    },
    outcomeKey,
    decodeOutcome(value) {
      const outcome = decodeOutcome(value);
      if (!outcome.ok) return null;
      return (deviceId, seq) => envelopeRejection(outcome.value, deviceId, seq);
    },
  };
}
