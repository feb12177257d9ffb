/**
 * The wifi-billing service's public types and codecs: what the gateway imports to build work items
 * (registrations of accounts and routers, routers' usage envelopes, operator actions) and what the
 * gateway, the CLI and the ledger view import to read the service's storage. Nothing here runs in
 * the node; nothing outside this folder imports its other files.
 */
export { REJECTION_CODES, rejectionName, type RejectionName } from "../common/errors.ts";
export { decodeOutcome, envelopeRejection, outcomeKey, registrationRejection, type PackageOutcome } from "../common/outcome.ts";
export { DEVICE_ID_BYTES, type EnvelopeRecord } from "../common/envelope.ts";
export {
  ACTION_ID_BYTES,
  type AccountRegistration,
  ACTIONS_PER_ITEM_MAX,
  CAPACITY_BITS_PER_SECOND_DEFAULT,
  CAPACITY_BITS_PER_SECOND_MAX,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  ENVELOPES_PER_ITEM_MAX,
  ITEM_PAYLOAD_BYTES_MAX,
  OCTETS_PER_GB,
  PRICE_MICROS_PER_GB_MAX,
  REGISTRATIONS_PER_ITEM_MAX,
  ROUTER_NAME_BYTES_MAX,
  ROUTER_USAGE_KIND,
  type RouterRegistration,
  type RouterTerms,
  routerTermsProblem,
  STAKE_MICROS_MAX,
  TOPUP_MICROS_MAX,
  type WifiAction,
  wifiActionProblem,
  wifiActionsPayload,
  type WifiActionTypeName,
  WifiDeviceKind,
  wifiEnvelopesPayload,
  WifiItemKind,
  type WifiRegistration,
  wifiRegistrationsPayload,
} from "./payload.ts";
export { ALWAYS_ACCUMULATE_GAS, wifiActionsGas, wifiEnvelopesGas, wifiRegistrationsGas } from "./gas.ts";
export { CAPACITY_SLACK_SECONDS, chargedMicros, feeMicros, OPEN_SESSIONS_PER_ROUTER_MAX } from "./accumulate.ts";
export { WIFI_SERVICE_NAME } from "./service.ts";
export { UsageStatus } from "./body.ts";
export {
  type AccountRecord,
  accountKey,
  actionKey,
  ACTIONS_KEPT,
  CLOSED_SESSIONS_KEPT,
  configKey,
  decodeAccount,
  decodeActionVerdict,
  decodeConfig,
  decodeDevice,
  decodeDeviceRecord,
  decodeFees,
  decodeLedgerEntries,
  decodeRouter,
  decodeSession,
  decodeStats,
  decodeStoredAction,
  DEFAULT_CONFIG,
  deviceKey,
  encodeConfig,
  feesKey,
  LEDGER_REASONS,
  LEDGER_SLOTS_KEPT,
  type LedgerEntry,
  ledgerKey,
  type LedgerReason,
  PROTOCOL_FEE_PPM,
  REFUSAL_CODE_SLOTS,
  type RouterRecord,
  routerKey,
  type RouterStatus,
  type SessionRecord,
  sessionKey,
  STAKE_COOLDOWN_SLOTS,
  statsKey,
  type StoredAction,
  type WifiConfig,
  type WifiStats,
} from "./storage.ts";
