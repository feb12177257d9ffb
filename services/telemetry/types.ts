/**
 * The telemetry service's public types and codecs: what the gateway imports to build work
 * items, budget packages and read the service's storage. Nothing here runs in the node.
 */
export { REJECTION_CODES, rejectionName, type RejectionCode, type RejectionName } from "../common/errors.ts";
export {
  decodeEnvelopesItem,
  decodeRegistrationsItem,
  DEVICE_ID_BYTES,
  DEVICE_KINDS,
  deviceKindCode,
  type DeviceKindCode,
  type DeviceKindName,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  ENVELOPES_PER_ITEM_MAX,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  type EnvelopeRecord,
  envelopeRecordBytes,
  ITEM_HEADER_BYTES,
  ITEM_PAYLOAD_BYTES_MAX,
  ItemKind,
  parseSigningBytes,
  type RawDeviceId,
  REGISTRATION_RECORD_BYTES,
  REGISTRATIONS_PER_ITEM_MAX,
  type RegistrationRecord,
  SIGNING_BYTES_MAX,
  W_B,
  W_R,
} from "./payload.ts";
export {
  commitmentLeaf,
  decodeRefineOutput,
  encodeRefineOutput,
  plannedEnvelopesOutputBytes,
  REFINE_OUTPUT_BYTES_MAX,
  type DeviceSettlement,
  type EnvelopesOutput,
  type RefineOutput,
  type RegistrationsOutput,
  type SeqRun,
} from "./output.ts";
export { decodeDeviceRecord, decodeStats, deviceKey, type DeviceRecord, STATS_KEY, type TelemetryStats } from "./storage.ts";
export {
  decodeOutcome,
  envelopeRejection,
  outcomeKey,
  type PackageOutcome,
  registrationRejection,
  type RejectedRegistration,
  type RejectedRun,
} from "../common/outcome.ts";
export { OUTCOMES_KEPT_MAX } from "../common/outcome.ts";
export { accumulateGasLimit } from "./accumulate.ts";
export { TELEMETRY_SERVICE_NAME } from "./service.ts";
