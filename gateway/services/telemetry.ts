/** The gateway's adapter for the telemetry service (services/telemetry/types.ts). */
import { DEVICE_KINDS } from "../../devices/protocol/device-kinds.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import {
  accumulateGasLimit,
  DEVICE_ID_BYTES,
  DEVICE_KINDS as SERVICE_KINDS,
  decodeDeviceRecord,
  deviceKey,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  encodeEnvelopesItem,
  encodeRefineOutput,
  encodeRegistrationsItem,
  ItemKind,
  outcomeKey,
  REGISTRATIONS_PER_ITEM_MAX,
  type RawDeviceId,
  TELEMETRY_SERVICE_NAME,
  W_R,
} from "../../services/telemetry/types.ts";
import { type IngestService, settledHighestSeqOf, settledWindowOf } from "../ingest-service.ts";
import { registrationKeysRefineGas } from "../refine-gas.ts";
import { outcomeDecoders } from "./outcome.ts";

/** Refine threads of the embedded node (tiny chain: one per core): the items a package is split into for them. */
const TELEMETRY_ITEMS_PER_PACKAGE_MAX = 2;

/**
 * What telemetry's refine output of an envelopes item takes (services/telemetry/output.ts), measured
 * on the service's own encoder: per item, the kind, the commitment and the device count (35 bytes);
 * per device whose envelopes in the item are one run of seqs, none refused (the usual case), its
 * id, its run and the two counts (32 bytes: the "32.0 B per device" of services/telemetry/refine.test.ts).
 */
const outputBytes = (devices: number) =>
  encodeRefineOutput({
    kind: ItemKind.envelopes,
    commitment: new Uint8Array(32),
    devices: Array.from({ length: devices }, () => ({
      deviceId: new Uint8Array(DEVICE_ID_BYTES) as RawDeviceId,
      accepted: [{ start: 0n, length: 1 }],
      rejected: [],
    })),
  }).length;
export const TELEMETRY_OUTPUT_ITEM_BYTES = outputBytes(0);
export const TELEMETRY_OUTPUT_DEVICE_BYTES = outputBytes(1) - outputBytes(0);

/**
 * Output bytes of a package's report kept for what a device costs beyond one run: each gap in its
 * seqs within the package is a run more (12 bytes), each refused envelope 9, and one that splits
 * a run 21. 4 KiB is 341 gaps, or 195 refusals mid-run, a package; a report past W_R fails its
 * package (JG_ERR_REPORT_OVERSIZE) and the package is packed again.
 */
export const TELEMETRY_OUTPUT_SLACK_BYTES = 4_096;

/**
 * Items a telemetry envelopes package is cut into at most (settlement/builder.ts): one per refine
 * thread, and as many as its devices take at ENVELOPE_DEVICES_PER_ITEM_MAX (1,024) an item; W_R
 * holds at most 1,536 one-run devices, so two.
 */
const TELEMETRY_PACKAGE_ITEMS_MAX = Math.max(
  TELEMETRY_ITEMS_PER_PACKAGE_MAX,
  Math.ceil(Math.floor(W_R / TELEMETRY_OUTPUT_DEVICE_BYTES) / ENVELOPE_DEVICES_PER_ITEM_MAX),
);

/**
 * Devices in one telemetry envelopes package: as many one-run devices as a report's W_R = 49,152
 * bytes of results take after its items' own bytes and the slack above: (49,152 − 2 × 35 − 4,096)
 * / 32 = 1,405. A fleet of 100,000 devices sending once a minute is 1,667 devices a second: two
 * packages a slot.
 */
export const TELEMETRY_PACKAGE_DEVICES_MAX = Math.floor(
  (W_R - TELEMETRY_PACKAGE_ITEMS_MAX * TELEMETRY_OUTPUT_ITEM_BYTES - TELEMETRY_OUTPUT_SLACK_BYTES) / TELEMETRY_OUTPUT_DEVICE_BYTES,
);

export function telemetryService(serviceId: number): IngestService {
  return {
    name: TELEMETRY_SERVICE_NAME,
    serviceId,
    codeHash: nativeCodeHash(TELEMETRY_SERVICE_NAME),
    kinds: [...DEVICE_KINDS],
    packageDevicesMax: TELEMETRY_PACKAGE_DEVICES_MAX,
    itemDevicesMax: ENVELOPE_DEVICES_PER_ITEM_MAX,
    registrationsPerPackageMax: REGISTRATIONS_PER_ITEM_MAX,
    // Its 64-seq replay window settles a device's packages in any order (SEQ_WINDOW_SEQS, gateway/settlement/batcher.ts):
    // a busy device keeps up to 4 in flight, about one slot of its envelopes each.
    packagesInFlightPerDeviceMax: 4,
    // The embedded node (tiny chain) refines on 2 threads, one per core.
    itemsPerPackageMax: TELEMETRY_ITEMS_PER_PACKAGE_MAX,
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
