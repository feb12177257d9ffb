/**
 * JSON schemas of the ledger's views (types.ts) and of the proof document, as the HTTP routes
 * declare them: fastify serializes every response through them (fast-json-stringify) and
 * @fastify/swagger publishes them as the OpenAPI document's components (`/docs/json`). Each is
 * registered once with `addSchema` under its `$id` and referred to as `{ $ref: "<id>#" }`.
 */
import { ENTRY_KINDS, PACKAGE_KINDS, PACKAGE_STATUSES, WIFI_ENTRY_KINDS } from "./types.ts";
import { DEVICE_KINDS } from "../../devices/protocol/device-kinds.ts";

/** 64 lowercase hex digits: a hash (header, package, report, state root). */
export const HASH_PATTERN = "^[0-9a-f]{64}$";
/** 32 lowercase hex digits: a device id or an account (16 bytes). */
export const ID_PATTERN = "^[0-9a-f]{32}$";
/** A service's name as the gateway names it (`telemetry`, `energy-trading`). */
export const SERVICE_NAME_PATTERN = "^[a-z][a-z0-9-]{0,31}$";
/** A decimal integer that may pass 2^53 (amounts in micro-units, gas), with an optional minus sign. */
export const DECIMAL_PATTERN = "^-?(0|[1-9][0-9]*)$";

const hash = { type: "string", pattern: HASH_PATTERN } as const;
const id = { type: "string", pattern: ID_PATTERN } as const;
const nullable = <T extends { type: string }>(schema: T) => ({ ...schema, type: [schema.type, "null"] });
const uint = { type: "integer", minimum: 0 } as const;
const decimal = { type: "string", pattern: DECIMAL_PATTERN } as const;
const ref = (schemaId: string) => ({ $ref: `${schemaId}#` });

/** `{error: {code, message}}`: every refusal (docs/errors.md). */
export const errorSchema = {
  $id: "Error",
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string", pattern: "^JG_ERR_[A-Z0-9_]+$" }, message: { type: "string" } },
    },
  },
} as const;

export const reportViewSchema = {
  $id: "ReportView",
  type: "object",
  description: "A work report as a block carried it (GP 11.1.4, E_G guarantees).",
  required: ["packageHash", "reportHash", "core", "serviceIds", "erasureRoot", "bundleBytes", "refineGasUsed"],
  properties: {
    packageHash: hash,
    reportHash: hash,
    core: uint,
    serviceIds: { type: "array", items: uint },
    erasureRoot: hash,
    bundleBytes: uint,
    refineGasUsed: decimal,
  },
} as const;

export const blockViewSchema = {
  $id: "BlockView",
  type: "object",
  required: ["slot", "hash", "parentHash", "priorStateRoot", "stateRoot", "author", "reports", "assurances", "accumulated", "serviceIds", "seenAtMs"],
  properties: {
    slot: uint,
    hash,
    parentHash: hash,
    priorStateRoot: { ...hash, description: "The state root before the block (GP 5.1 H_r)." },
    stateRoot: { ...hash, description: "The state root after the block." },
    author: uint,
    reports: { type: "array", items: ref("ReportView") },
    assurances: uint,
    accumulated: { type: "array", items: hash, description: "Packages of the gateway this block accumulated." },
    serviceIds: { type: "array", items: uint },
    seenAtMs: { ...uint, description: "When the gateway saw the block (Unix ms, its clock)." },
  },
} as const;

export const packageViewSchema = {
  $id: "PackageView",
  type: "object",
  required: [
    "hash",
    "serviceId",
    "service",
    "kind",
    "items",
    "bytes",
    "core",
    "status",
    "submittedAtMs",
    "refineMs",
    "reportedSlot",
    "accumulatedSlot",
    "accumulatedBlock",
    "settled",
    "refused",
    "error",
  ],
  properties: {
    hash,
    serviceId: uint,
    service: { type: "string" },
    kind: { type: "string", enum: [...PACKAGE_KINDS] },
    items: uint,
    bytes: uint,
    core: nullable(uint),
    status: { type: "string", enum: [...PACKAGE_STATUSES] },
    submittedAtMs: uint,
    refineMs: nullable(uint),
    reportedSlot: nullable(uint),
    accumulatedSlot: nullable(uint),
    accumulatedBlock: nullable(hash),
    settled: uint,
    refused: uint,
    error: {
      type: ["object", "null"],
      required: ["code", "detail"],
      properties: { code: { type: "string" }, detail: { type: "string" } },
    },
  },
} as const;

export const serviceViewSchema = {
  $id: "ServiceView",
  type: "object",
  required: ["id", "name", "codeHash", "kinds", "devices", "entries"],
  properties: {
    id: uint,
    name: { type: "string" },
    codeHash: hash,
    kinds: { type: "array", items: { type: "string" } },
    devices: uint,
    entries: uint,
  },
} as const;

const deviceViewProperties = {
  id,
  publicKey: hash,
  kind: { type: "string" },
  service: { type: "string" },
  serviceId: uint,
  household: nullable(id),
  registeredSlot: nullable(uint),
  settledHighestSeq: { type: "integer", minimum: -1 },
  envelopesSettled: uint,
  lastSettledSlot: nullable(uint),
} as const;

export const deviceViewSchema = {
  $id: "DeviceView",
  type: "object",
  required: Object.keys(deviceViewProperties),
  properties: deviceViewProperties,
} as const;

/**
 * `GET /v1/devices/:id`: the registration's status (what `POST /v1/devices` started) and, once the
 * ledger index knows the device, its DeviceView fields.
 */
export const deviceStatusSchema = {
  $id: "DeviceStatus",
  type: "object",
  required: ["deviceId", "kind", "status"],
  properties: {
    ...deviceViewProperties,
    deviceId: id,
    kind: { type: "string", enum: [...DEVICE_KINDS] },
    status: { type: "string", enum: ["pending", "registered", "failed"] },
    packageHash: hash,
    code: { type: "string", description: "Why the registration failed (a JG_ERR_ code)." },
    detail: { type: "string" },
  },
} as const;

/** What `POST /v1/devices` answers (202): the registration's status (gateway/registration.ts RegistrationView). */
export const registrationViewSchema = {
  $id: "RegistrationView",
  type: "object",
  required: ["deviceId", "kind", "status"],
  properties: {
    deviceId: id,
    kind: { type: "string", enum: [...DEVICE_KINDS] },
    service: { type: "string" },
    status: { type: "string", enum: ["pending", "registered", "failed"] },
    packageHash: hash,
    code: { type: "string" },
    detail: { type: "string" },
  },
} as const;

export const entryViewSchema = {
  $id: "EntryView",
  type: "object",
  description: "One settlement entry; `id` is the index's append order (larger is newer, never reused).",
  required: [
    "id",
    "service",
    "serviceId",
    "kind",
    "slot",
    "blockHash",
    "timeMs",
    "device",
    "seqs",
    "packageHash",
    "interval",
    "index",
    "buyer",
    "seller",
    "energyWh",
    "priceMicrosPerKwh",
    "amountMicros",
    "accounts",
  ],
  properties: {
    id: uint,
    service: { type: "string" },
    serviceId: uint,
    kind: { type: "string", enum: [...ENTRY_KINDS] },
    slot: uint,
    blockHash: hash,
    timeMs: uint,
    device: nullable(id),
    seqs: { type: ["array", "null"], items: uint },
    packageHash: nullable(hash),
    interval: nullable(uint),
    index: nullable(uint),
    buyer: { type: ["string", "null"], description: 'A household id or "grid".' },
    seller: { type: ["string", "null"], description: 'A household id or "grid".' },
    energyWh: nullable(uint),
    priceMicrosPerKwh: nullable(uint),
    amountMicros: nullable(decimal),
    accounts: { type: "array", items: id },
    reason: {
      type: "string",
      enum: [...WIFI_ENTRY_KINDS],
      description: "Wi-Fi entries (wifi-billing) only, as the fields below: the entry's reason (its kind).",
    },
    session: { ...nullable(id), description: "The session; null for entries of none (top-ups, stakes)." },
    router: { ...nullable(id), description: "The router; null for a top-up." },
    client: { ...id, description: "The account the entry moves: the client for usage, the owner for stakes, the account topped up." },
    inputOctets: { ...decimal, description: "Octets of the session's delta, in and out, and their sum." },
    outputOctets: decimal,
    octets: decimal,
    priceMicrosPerGb: { ...decimal, description: "The session's price (its start price)." },
    feeMicros: { ...decimal, description: "The protocol fee of amountMicros; the owner got the rest." },
    attested: { type: "boolean", description: "Router-attested usage (no client voucher)." },
  },
} as const;

export const householdResultSchema = {
  $id: "HouseholdResult",
  type: "object",
  required: ["household", "boughtWh", "soldWh", "gridImportWh", "gridExportWh", "paidMicros", "receivedMicros", "netMicros"],
  properties: {
    household: id,
    boughtWh: uint,
    soldWh: uint,
    gridImportWh: uint,
    gridExportWh: uint,
    paidMicros: decimal,
    receivedMicros: decimal,
    netMicros: decimal,
  },
} as const;

export const intervalViewSchema = {
  $id: "IntervalView",
  type: "object",
  required: [
    "interval",
    "startMs",
    "endMs",
    "settled",
    "clearingPriceMicrosPerKwh",
    "tradedWh",
    "orders",
    "trades",
    "gridImportWh",
    "gridExportWh",
    "clearedSlot",
    "settledSlot",
    "households",
  ],
  properties: {
    interval: uint,
    startMs: uint,
    endMs: uint,
    settled: { type: "boolean" },
    clearingPriceMicrosPerKwh: nullable(uint),
    tradedWh: decimal,
    orders: uint,
    trades: uint,
    gridImportWh: uint,
    gridExportWh: uint,
    clearedSlot: uint,
    settledSlot: uint,
    households: { type: "array", items: ref("HouseholdResult"), description: "Per household (the detail route only; [] in lists)." },
  },
} as const;

export const balanceViewSchema = {
  $id: "BalanceView",
  type: "object",
  required: ["service", "account", "balanceMicros", "slot", "blockHash"],
  properties: {
    service: { type: "string" },
    account: id,
    balanceMicros: { ...decimal, description: "Signed, decimal micro-units, at `slot`." },
    slot: uint,
    blockHash: hash,
  },
} as const;

/** Page<T> of types.ts: `next` is the `before` of the next (older) page, null at the end. */
export function pageSchema(itemsId: string) {
  return {
    type: "object",
    required: ["items", "next"],
    properties: { items: { type: "array", items: ref(itemsId) }, next: nullable(uint) },
  } as const;
}

const hexString = { type: "string", pattern: "^([0-9a-f]{2})*$" } as const;
const partyOrGrid = { type: "string", pattern: "^([0-9a-f]{32}|grid)$" } as const;

/** The proof document `jamgate verify` checks (format `jamgate-proof/1`; gateway/ledger/proof.ts). */
export const proofSchema = {
  $id: "Proof",
  type: "object",
  required: ["format", "chain", "claim", "headers"],
  properties: {
    format: { type: "string", enum: ["jamgate-proof/1"] },
    chain: { type: "string", enum: ["tiny", "full"] },
    claim: {
      type: "object",
      description: "What is proven: kind energy-entry, wifi-entry, balance, settled-seq or reading (gateway/ledger/proof.ts ProofClaim).",
      required: ["kind", "service"],
      properties: {
        kind: { type: "string", enum: ["energy-entry", "wifi-entry", "balance", "settled-seq", "reading"] },
        service: { type: "string" },
        interval: uint,
        slot: uint,
        index: uint,
        entry: {
          type: "object",
          description:
            "energy-entry: reason, buyer, seller, energyWh, priceMicrosPerKwh, amountMicros; wifi-entry: reason, session, router, client, inputOctets, outputOctets, priceMicrosPerGb, amountMicros, feeMicros, attested.",
          required: ["reason", "amountMicros"],
          properties: {
            reason: { type: "string" },
            buyer: partyOrGrid,
            seller: partyOrGrid,
            energyWh: uint,
            priceMicrosPerKwh: uint,
            session: { type: ["string", "null"] },
            router: { type: ["string", "null"] },
            client: id,
            inputOctets: decimal,
            outputOctets: decimal,
            priceMicrosPerGb: decimal,
            amountMicros: decimal,
            feeMicros: decimal,
            attested: { type: "boolean" },
          },
        },
        account: id,
        balanceMicros: decimal,
        lockedMicros: decimal,
        device: id,
        seq: uint,
      },
    },
    state: {
      type: "object",
      description: "The value's path to the state root of `block` (GP D.2); absent for a reading.",
      required: ["serviceId", "storageKey", "stateKey", "value", "root", "siblings", "block"],
      properties: {
        serviceId: uint,
        storageKey: hexString,
        stateKey: { type: "string", pattern: "^[0-9a-f]{62}$" },
        value: hexString,
        root: hash,
        siblings: { type: "array", items: hash },
        block: { type: "object", required: ["hash", "slot"], properties: { hash, slot: uint } },
      },
    },
    da: {
      type: "object",
      description: "A reading's path from its envelope to the package's erasure root (GP 14); kind reading only.",
      required: ["packageHash", "bundle", "envelope", "report", "reportBlock"],
      properties: {
        packageHash: hash,
        bundle: { type: "string", description: "base64" },
        envelope: { type: "object", required: ["offset", "length"], properties: { offset: uint, length: uint } },
        report: hexString,
        reportBlock: hexString,
      },
    },
    headers: { type: "array", items: hexString, description: "GP-encoded headers, oldest first; the last is the anchor." },
  },
} as const;

/** Every shared schema, in an order where each one's references come before it. */
export const sharedSchemas = [
  errorSchema,
  reportViewSchema,
  blockViewSchema,
  packageViewSchema,
  serviceViewSchema,
  deviceViewSchema,
  deviceStatusSchema,
  registrationViewSchema,
  entryViewSchema,
  householdResultSchema,
  intervalViewSchema,
  balanceViewSchema,
  proofSchema,
] as const;

export { ref as schemaRef };
