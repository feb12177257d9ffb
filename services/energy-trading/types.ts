/**
 * The energy-trading service's public types and codecs: what the gateway imports to build work
 * items, and what the simulator and the ledger view import to read the service's storage.
 * Nothing here runs in the node.
 */
export { REJECTION_CODES, rejectionName, type RejectionName } from "../common/errors.ts";
export { decodeOutcome, envelopeRejection, outcomeKey, registrationRejection, type PackageOutcome } from "../common/outcome.ts";
export { DEVICE_ID_BYTES, type EnvelopeRecord } from "../common/envelope.ts";
export {
  DeviceRole,
  type DeviceRoleName,
  decodeEnvelopesItem,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  ENVELOPES_PER_ITEM_MAX,
  type ItemClock,
  ITEM_PAYLOAD_BYTES_MAX,
  REGISTRATIONS_PER_ITEM_MAX,
} from "./payload.ts";
export { AGENT_ORDER_KIND, METER_READING_KIND, METER_RESET_KIND } from "./refine.ts";
export { METER_POWER_W_MAX } from "./condense.ts";
export { READINGS_PER_ENVELOPE_MAX } from "./body.ts";
export { ORDER_LINES_MAX } from "./output.ts";
export type { GridPrices } from "./market.ts";
export { ALWAYS_ACCUMULATE_GAS, accumulateGasLimit, HOUSEHOLDS_MAX, LEDGER_INTERVALS_KEPT, ORDER_HORIZON_INTERVALS } from "./accumulate.ts";
export {
  balanceKey,
  CONFIG_KEY,
  decodeBalance,
  decodeDeviceRecord,
  decodeHouseholds,
  decodeIntervalSummary,
  decodeLedgerEntries,
  decodeMarketConfig,
  decodeMarketProgress,
  decodeStats,
  type DeviceRecord,
  deviceKey,
  encodeMarketConfig,
  type EnergyStats,
  GRID_BALANCE_KEY,
  HOUSEHOLDS_KEY,
  type IntervalSummary,
  intervalKey,
  intervalStartMs,
  LEDGER_REASONS,
  type LedgerReasonName,
  ledgerKey,
  MARKET_KEY,
  MARKET_MODES,
  type MarketConfig,
  type MarketModeName,
  type MarketProgress,
  marketTimeMs,
  STATS_KEY,
  type StoredLedgerEntry,
} from "./storage.ts";
export { ENERGY_SERVICE_NAME } from "./service.ts";
export { GRID, type LedgerEntry } from "./settlement.ts";
