/**
 * Proofs an auditor checks offline, without trusting the server that made them:
 * `jamgate-proof/1` documents (the ledger's proof routes make them, `jamgate verify` checks them).
 *
 * A ledger value is proven by its path to a state root (GP D.2: the binary Patricia Merkle trie
 * over 31-byte state keys, node/state/proof.ts) under the key C(s, k) of its service storage
 * item (GP D.1), and that root's place in the chain: the child of the block whose posterior root
 * it is commits to it as its prior state root (GP 5.1 H_r), and each next header names the one
 * before by hash (H_p), up to the last, the anchor. A raw reading is proven by its path from its
 * envelope into the package's bundle, erasure root, work report and the block that guaranteed
 * it (da-proof.ts), then the same headers.
 *
 * What a verifier trusts is one hash: the anchor it prints, or the `--root` it is given, which must
 * be the state root itself or the hash of a header in the proof (the report block's, for a
 * reading). The state block's own hash (`state.block.hash`) is not accepted as a root: its
 * header is not in the proof and does not commit to its posterior root, so trusting it would
 * let a made-up child header carry any root.
 *
 * The document is untrusted input: its size is bounded before it is parsed (PROOF_JSON_BYTES_MAX,
 * verify-cli.ts), its shape by a JSON Schema (ajv) with every string, array and number bounded,
 * and every decoder runs on bytes already within those bounds. Whatever it holds, `verifyProof`
 * returns a coded error rather than throwing.
 */
import { Ajv, type ErrorObject } from "ajv";
import { type ChainName, type ChainParams, chainParams } from "../../node/chain/params.ts";
import { headerHash } from "../../node/chain/block.ts";
import { bytesEqual, decode, encode, fromHex, Header, toHex } from "../../node/codec/jam.ts";
import { type CodedError, codedError, type ErrorCode } from "../../devices/protocol/errors.ts";
import { storageKey } from "../../node/state/components.ts";
import { STATE_PROOF_SIBLINGS_MAX, verifyStatePath } from "../../node/state/proof.ts";
import type { ReplayWindow } from "../../services/common/window.ts";
import {
  balanceKey,
  decodeBalance,
  decodeDeviceRecord as decodeEnergyDevice,
  decodeLedgerEntries as decodeEnergyLedger,
  deviceKey as energyDeviceKey,
  ENERGY_SERVICE_NAME,
  LEDGER_REASONS as ENERGY_LEDGER_REASONS,
  ledgerKey as energyLedgerKey,
} from "../../services/energy-trading/types.ts";
import { decodeDeviceRecord as decodeTelemetryDevice, deviceKey as telemetryDeviceKey, TELEMETRY_SERVICE_NAME } from "../../services/telemetry/types.ts";
import {
  accountKey as wifiAccountKey,
  decodeAccount as decodeWifiAccount,
  decodeDeviceRecord as decodeWifiDeviceRecord,
  decodeLedgerEntries as decodeWifiLedger,
  deviceKey as wifiDeviceKey,
  LEDGER_REASONS as WIFI_LEDGER_REASONS,
  ledgerKey as wifiLedgerKey,
  WIFI_SERVICE_NAME,
} from "../../services/wifi-billing/types.ts";
import {
  bundleBase64Max,
  HEADER_BYTES_MAX,
  type ProofDa,
  READING_SERVICES,
  type ReadingService,
  REPORT_BYTES_MAX,
  reportBlockBytesMax,
  verifyReadingDa,
} from "./da-proof.ts";
import type { Hex } from "./types.ts";
import { SEQ_WINDOW_SEQS } from "../../devices/protocol/seq-window.ts";

export { type ProofDa, readingProof, type ReadingProofRequest, READING_SERVICES, type ReadingService } from "./da-proof.ts";

export const PROOF_FORMAT = "jamgate-proof/1";

// ---------------------------------------------------------------------------------------------
// The document.

/** An energy ledger entry: `ledger/` ⌢ interval's value, entry `index`, says `entry`. */
export interface EnergyEntryClaim {
  readonly kind: "energy-entry";
  readonly service: typeof ENERGY_SERVICE_NAME;
  readonly interval: number;
  readonly index: number;
  readonly entry: {
    readonly reason: (typeof ENERGY_LEDGER_REASONS)[number];
    /** A household's id (32 hex digits) or "grid". */
    readonly buyer: string;
    readonly seller: string;
    readonly energyWh: number;
    readonly priceMicrosPerKwh: number;
    /** Decimal micro-units (u64). */
    readonly amountMicros: string;
  };
}

/**
 * A wifi-billing ledger entry: `ledger/` ⌢ u32 slot's value (the entries that slot's block wrote),
 * entry `index`, says `entry` (services/wifi-billing/storage.ts LedgerEntry; a zero session or
 * router id is null, as the ledger's entry view shows it; octets and micro-units decimal u64).
 */
export interface WifiEntryClaim {
  readonly kind: "wifi-entry";
  readonly service: typeof WIFI_SERVICE_NAME;
  readonly slot: number;
  readonly index: number;
  readonly entry: {
    readonly reason: (typeof WIFI_LEDGER_REASONS)[number];
    readonly session: Hex | null;
    readonly router: Hex | null;
    /** The account the entry moves: the client for usage, the owner for stakes, the account topped up. */
    readonly client: Hex;
    readonly inputOctets: string;
    readonly outputOctets: string;
    readonly priceMicrosPerGb: string;
    readonly amountMicros: string;
    readonly feeMicros: string;
    readonly attested: boolean;
  };
}

/**
 * An account's balance. energy-trading: `balance/` ⌢ account's value is `balanceMicros` (signed
 * decimal, i64). wifi-billing: `account/` ⌢ account's record holds `balanceMicros` and
 * `lockedMicros` (its routers' stakes), decimal u64; `lockedMicros` is there for wifi-billing only.
 */
export interface BalanceClaim {
  readonly kind: "balance";
  readonly service: BalanceService;
  readonly account: Hex;
  readonly balanceMicros: string;
  readonly lockedMicros?: string;
}

/** The device's replay window (services/common/window.ts) in its record holds `seq` as settled (wifi-billing: a router's record, `dev/` ⌢ id). */
export interface SettledSeqClaim {
  readonly kind: "settled-seq";
  readonly service: SeqService;
  readonly device: Hex;
  readonly seq: number;
}

/** The device signed envelope `seq`, and it was in a package whose report a block guaranteed. */
export interface ReadingClaim {
  readonly kind: "reading";
  readonly service: ReadingService;
  readonly device: Hex;
  readonly seq: number;
}

export type ProofClaim = EnergyEntryClaim | WifiEntryClaim | BalanceClaim | SettledSeqClaim | ReadingClaim;
export type EntryClaim = EnergyEntryClaim | WifiEntryClaim;

export interface ProofState {
  readonly serviceId: number;
  /** The service storage key, before GP hashing. */
  readonly storageKey: Hex;
  /** C(serviceId, storageKey), 31 octets (GP D.1). */
  readonly stateKey: Hex;
  readonly value: Hex;
  readonly root: Hex;
  /** From the root down to the leaf's depth, 32 octets each. */
  readonly siblings: readonly Hex[];
  /** The block whose posterior state root is `root`. */
  readonly block: { readonly hash: Hex; readonly slot: number };
}

export interface Proof {
  readonly format: typeof PROOF_FORMAT;
  readonly chain: ChainName;
  readonly claim: ProofClaim;
  /** Absent for kind "reading". */
  readonly state?: ProofState;
  /** Kind "reading" only. */
  readonly da?: ProofDa;
  /** GP-encoded headers, oldest first: headers[0] is the child of state.block (or of the report block); the last is the anchor. */
  readonly headers: readonly Hex[];
}

// ---------------------------------------------------------------------------------------------
// Where each service keeps what a claim says, and how its value reads: the only place where
// energy-trading's and wifi-billing's proofs differ (the key and the decoder).

type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** A service's ledger: the key of a place in it (an energy interval, a Wi-Fi slot) and its stored entries, each as a claim states it. */
interface LedgerLayout<C extends EntryClaim> {
  readonly service: C["service"];
  /** What the claim's place is called: "interval" or "slot". */
  readonly placeName: string;
  place(claim: C): number;
  key(place: number): Uint8Array;
  entries(value: Uint8Array): Decoded<readonly C["entry"][]>;
}

const party = (p: Uint8Array | "grid") => (p === "grid" ? "grid" : toHex(p));
/** wifi-billing writes zero bytes for an entry of no session (a top-up, a stake) and no router (a top-up). */
const idOrNull = (id: Uint8Array) => (id.every((b) => b === 0) ? null : toHex(id));

const ENERGY_LEDGER: LedgerLayout<EnergyEntryClaim> = {
  service: ENERGY_SERVICE_NAME,
  placeName: "interval",
  place: (claim) => claim.interval,
  key: energyLedgerKey,
  entries: (value) => {
    const decoded = decodeEnergyLedger(value);
    if (!decoded.ok) return decoded;
    return {
      ok: true,
      value: decoded.value.map((e) => ({
        reason: e.reason,
        buyer: party(e.buyer),
        seller: party(e.seller),
        energyWh: e.energyWh,
        priceMicrosPerKwh: e.priceMicrosPerKwh,
        amountMicros: e.amountMicros.toString(),
      })),
    };
  },
};

const WIFI_LEDGER: LedgerLayout<WifiEntryClaim> = {
  service: WIFI_SERVICE_NAME,
  placeName: "slot",
  place: (claim) => claim.slot,
  key: wifiLedgerKey,
  entries: (value) => {
    const decoded = decodeWifiLedger(value);
    if (!decoded.ok) return decoded;
    return {
      ok: true,
      value: decoded.value.map((e) => ({
        reason: e.reason,
        session: idOrNull(e.session),
        router: idOrNull(e.router),
        client: toHex(e.client),
        inputOctets: e.inputOctets.toString(),
        outputOctets: e.outputOctets.toString(),
        priceMicrosPerGb: e.priceMicrosPerGb.toString(),
        amountMicros: e.amountMicros.toString(),
        feeMicros: e.feeMicros.toString(),
        attested: e.attested,
      })),
    };
  },
};

/** The ledger an entry claim's kind reads. */
export function ledgerOf<C extends EntryClaim>(kind: C["kind"]): LedgerLayout<C> {
  return (kind === "energy-entry" ? ENERGY_LEDGER : WIFI_LEDGER) as unknown as LedgerLayout<C>;
}

/** The services whose accounts' balances are proven. */
export const BALANCE_SERVICES = [ENERGY_SERVICE_NAME, WIFI_SERVICE_NAME] as const;
export type BalanceService = (typeof BALANCE_SERVICES)[number];
type BalanceFields = Pick<BalanceClaim, "balanceMicros" | "lockedMicros">;

/** Where a service keeps an account's balance, and the value as the claim states it. */
const BALANCES: Record<BalanceService, { key(account: Hex): Uint8Array; read(value: Uint8Array): Decoded<BalanceFields> }> = {
  [ENERGY_SERVICE_NAME]: {
    key: balanceKey,
    read: (value) => {
      const balance = decodeBalance(value);
      return balance.ok ? { ok: true, value: { balanceMicros: balance.value.toString() } } : balance;
    },
  },
  [WIFI_SERVICE_NAME]: {
    key: wifiAccountKey,
    read: (value) => {
      const account = decodeWifiAccount(value);
      return account.ok
        ? { ok: true, value: { balanceMicros: account.value.balanceMicros.toString(), lockedMicros: account.value.lockedMicros.toString() } }
        : account;
    },
  },
};

export const balanceKeyOf = (service: BalanceService, account: Hex): Uint8Array => BALANCES[service].key(account);
export const readBalance = (service: BalanceService, value: Uint8Array): Decoded<BalanceFields> => BALANCES[service].read(value);

/** The services whose devices' replay windows are proven: the reading services', and wifi-billing's routers'. */
export const SEQ_SERVICES = [...READING_SERVICES, WIFI_SERVICE_NAME] as const;
export type SeqService = (typeof SEQ_SERVICES)[number];

/** A device's replay window as its record holds it (services/common/window.ts). */
export type RecordedWindow = ReplayWindow;

const fullWindow = (record: Decoded<{ readonly window: ReplayWindow }>): Decoded<RecordedWindow> =>
  record.ok ? { ok: true, value: record.value.window } : record;

/** Where a service keeps a device's record, and the window in it. */
const DEVICE_RECORDS: Record<SeqService, { key(device: Hex): Uint8Array; window(value: Uint8Array): Decoded<RecordedWindow> }> = {
  [TELEMETRY_SERVICE_NAME]: { key: telemetryDeviceKey, window: (value) => fullWindow(decodeTelemetryDevice(value)) },
  [ENERGY_SERVICE_NAME]: { key: energyDeviceKey, window: (value) => fullWindow(decodeEnergyDevice(value)) },
  [WIFI_SERVICE_NAME]: { key: wifiDeviceKey, window: (value) => fullWindow(decodeWifiDeviceRecord(value)) },
};

export const deviceRecordKey = (service: SeqService, device: Hex): Uint8Array => DEVICE_RECORDS[service].key(device);
export const recordedWindow = (service: SeqService, value: Uint8Array): Decoded<RecordedWindow> => DEVICE_RECORDS[service].window(value);

/**
 * Where `seq` stands in a window (services/common/window.ts: bit i is seq highest − 1 − i):
 * settled; not settled (above the highest, or its bit clear); or below what the window holds.
 */
export function seqInWindow(window: RecordedWindow, seq: bigint): "settled" | "unsettled" | "below" {
  const highest = window.highestSeq;
  if (highest === null || seq > highest) return "unsettled";
  const distance = highest - seq;
  if (distance === 0n) return "settled";
  if (distance > BigInt(SEQ_WINDOW_SEQS)) return "below";
  return ((window.bitmap >> (distance - 1n)) & 1n) === 1n ? "settled" : "unsettled";
}

// ---------------------------------------------------------------------------------------------
// Bounds on the document.

/**
 * Largest proof file read: a W_B bundle (18.4 MB of base64), a day of headers (PROOF_HEADERS_MAX,
 * ~10 MB of hex on the tiny chain) and a tiny-chain report block (~0.4 MB of hex) fit with room.
 */
export const PROOF_JSON_BYTES_MAX = 64 * 1024 * 1024;
/** Headers from the proven block to the anchor: a day of 6-second slots. A proof anchored further on is made again from a later block. */
export const PROOF_HEADERS_MAX = 14_400;
/**
 * Largest storage value proven: the largest the services write is an energy interval's ledger
 * (50 octets per entry, a few entries per household, HOUSEHOLDS_MAX = 10,000: ~2 MB).
 */
export const STATE_VALUE_BYTES_MAX = 4 * 1024 * 1024;
/** Largest service storage key: the services' keys are at most 24 octets ("outcome/…" ones); room for other services' keys. */
export const STORAGE_KEY_BYTES_MAX = 1024;

const U32_MAX = 0xffff_ffff;
const HASH_HEX = "^[0-9a-f]{64}$";
const DEVICE_HEX = "^[0-9a-f]{32}$";
/** Lowercase hex of any length; an even length is checked in code (a `([0-9a-f]{2})*` pattern backtracks per pair on megabytes). */
const HEX_DIGITS = "^[0-9a-f]*$";

const hash32 = { type: "string", pattern: HASH_HEX } as const;
const deviceId = { type: "string", pattern: DEVICE_HEX } as const;
const u32 = { type: "integer", minimum: 0, maximum: U32_MAX } as const;
const hexOf = (bytesMax: number) => ({ type: "string", maxLength: 2 * bytesMax, pattern: HEX_DIGITS }) as const;
const readingServices = { type: "string", enum: [...READING_SERVICES] } as const;
const seqServices = { type: "string", enum: [...SEQ_SERVICES] } as const;
const energyService = { type: "string", const: ENERGY_SERVICE_NAME } as const;
/** Decimal u64 (20 digits at most; one past u64 is refused by the claim check, as it matches no stored value). */
const decimalU64 = { type: "string", pattern: "^(0|[1-9][0-9]{0,19})$" } as const;
const fullParams = chainParams("full");

const CLAIM_SCHEMA = {
  type: "object",
  discriminator: { propertyName: "kind" },
  required: ["kind"],
  oneOf: [
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "interval", "index", "entry"],
      properties: {
        kind: { const: "energy-entry" },
        service: energyService,
        interval: u32,
        index: u32,
        entry: {
          type: "object",
          additionalProperties: false,
          required: ["reason", "buyer", "seller", "energyWh", "priceMicrosPerKwh", "amountMicros"],
          properties: {
            reason: { type: "string", enum: [...ENERGY_LEDGER_REASONS] },
            buyer: { type: "string", pattern: "^([0-9a-f]{32}|grid)$" },
            seller: { type: "string", pattern: "^([0-9a-f]{32}|grid)$" },
            energyWh: u32,
            priceMicrosPerKwh: u32,
            amountMicros: decimalU64,
          },
        },
      },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "slot", "index", "entry"],
      properties: {
        kind: { const: "wifi-entry" },
        service: { type: "string", const: WIFI_SERVICE_NAME },
        slot: u32,
        index: u32,
        entry: {
          type: "object",
          additionalProperties: false,
          required: ["reason", "session", "router", "client", "inputOctets", "outputOctets", "priceMicrosPerGb", "amountMicros", "feeMicros", "attested"],
          properties: {
            reason: { type: "string", enum: [...WIFI_LEDGER_REASONS] },
            session: { oneOf: [deviceId, { type: "null" }] },
            router: { oneOf: [deviceId, { type: "null" }] },
            client: deviceId,
            inputOctets: decimalU64,
            outputOctets: decimalU64,
            priceMicrosPerGb: decimalU64,
            amountMicros: decimalU64,
            feeMicros: decimalU64,
            attested: { type: "boolean" },
          },
        },
      },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "account", "balanceMicros"],
      properties: {
        kind: { const: "balance" },
        service: { type: "string", enum: [...BALANCE_SERVICES] },
        account: deviceId,
        balanceMicros: { type: "string", pattern: "^-?(0|[1-9][0-9]{0,19})$" },
        lockedMicros: decimalU64,
      },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "device", "seq"],
      properties: {
        kind: { const: "settled-seq" },
        service: seqServices,
        device: deviceId,
        seq: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "device", "seq"],
      properties: {
        kind: { const: "reading" },
        service: readingServices,
        device: deviceId,
        seq: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      },
    },
  ],
} as const;

/** The document's shape, every field bounded; per-chain bounds (W_B, the report block) are checked again in code. */
export const PROOF_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["format", "chain", "claim", "headers"],
  properties: {
    format: { const: PROOF_FORMAT },
    chain: { type: "string", enum: ["tiny", "full"] },
    claim: CLAIM_SCHEMA,
    state: {
      type: "object",
      additionalProperties: false,
      required: ["serviceId", "storageKey", "stateKey", "value", "root", "siblings", "block"],
      properties: {
        serviceId: u32,
        storageKey: hexOf(STORAGE_KEY_BYTES_MAX),
        stateKey: { type: "string", pattern: "^[0-9a-f]{62}$" },
        value: hexOf(STATE_VALUE_BYTES_MAX),
        root: hash32,
        siblings: { type: "array", maxItems: STATE_PROOF_SIBLINGS_MAX, items: hash32 },
        block: { type: "object", additionalProperties: false, required: ["hash", "slot"], properties: { hash: hash32, slot: u32 } },
      },
    },
    da: {
      type: "object",
      additionalProperties: false,
      required: ["packageHash", "bundle", "envelope", "report", "reportBlock"],
      properties: {
        packageHash: hash32,
        bundle: { type: "string", maxLength: bundleBase64Max(fullParams) },
        envelope: {
          type: "object",
          additionalProperties: false,
          required: ["offset", "length"],
          properties: {
            offset: { type: "integer", minimum: 0, maximum: fullParams.maxBundleBytes },
            length: { type: "integer", minimum: 1, maximum: fullParams.maxBundleBytes },
          },
        },
        report: hexOf(REPORT_BYTES_MAX),
        reportBlock: hexOf(reportBlockBytesMax(fullParams)),
      },
    },
    headers: { type: "array", minItems: 1, maxItems: PROOF_HEADERS_MAX, items: hexOf(HEADER_BYTES_MAX) },
  },
} as const;

let compiled: ReturnType<Ajv["compile"]> | null = null;
function validator(): ReturnType<Ajv["compile"]> {
  compiled ??= new Ajv({ allErrors: false, strict: true, strictRequired: false, discriminator: true }).compile(PROOF_SCHEMA);
  return compiled;
}

function describeSchemaError(e: ErrorObject | undefined): string {
  if (e === undefined) return "does not match the jamgate-proof/1 schema";
  const at = e.instancePath === "" ? "/" : e.instancePath;
  switch (e.keyword) {
    case "required":
      return `${e.instancePath}/${String(e.params.missingProperty)}: is required`;
    case "additionalProperties":
      return `${e.instancePath}/${String(e.params.additionalProperty)}: is not a field of jamgate-proof/1`;
    case "const":
      return `${at}: must be ${JSON.stringify(e.params.allowedValue)}`;
    case "enum":
      return `${at}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "discriminator":
      return `${at}/kind: must be one of "energy-entry", "wifi-entry", "balance", "settled-seq", "reading"`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

/** The document, shape-checked: JG_ERR_PROOF_FORMAT when it is not a jamgate-proof/1 proof (the first problem, with its JSON path). */
export function checkProofShape(proof: unknown): { readonly ok: true; readonly value: Proof } | { readonly ok: false; readonly error: CodedError } {
  const validate = validator();
  if (!validate(proof)) return fail("JG_ERR_PROOF_FORMAT", describeSchemaError(validate.errors?.[0]));
  const p = proof as Proof;
  if (p.claim.kind === "reading" && (p.da === undefined || p.state !== undefined))
    return fail("JG_ERR_PROOF_FORMAT", 'a proof of kind "reading" has "da" and no "state"');
  if (p.claim.kind !== "reading" && (p.state === undefined || p.da !== undefined))
    return fail("JG_ERR_PROOF_FORMAT", `a proof of kind "${p.claim.kind}" has "state" and no "da"`);
  if (p.claim.kind === "balance" && (p.claim.service === WIFI_SERVICE_NAME) !== (p.claim.lockedMicros !== undefined))
    return fail("JG_ERR_PROOF_FORMAT", `/claim/lockedMicros: a ${WIFI_SERVICE_NAME} balance has it, and only that`);
  const odd = oddHexField(p);
  if (odd !== null) return fail("JG_ERR_PROOF_FORMAT", `${odd}: has an odd number of hex digits`);
  return { ok: true, value: p };
}

function oddHexField(p: Proof): string | null {
  const fields: [string, string][] = p.headers.map((h, i) => [`/headers/${i}`, h]);
  if (p.state !== undefined) fields.push(["/state/storageKey", p.state.storageKey], ["/state/value", p.state.value]);
  if (p.da !== undefined) fields.push(["/da/report", p.da.report], ["/da/reportBlock", p.da.reportBlock]);
  return fields.find(([, hex]) => hex.length % 2 !== 0)?.[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// Verifying.

/** What a proof proves, once checked: the claim, and the block it is anchored to. */
export interface VerifiedProof {
  readonly ok: true;
  /** The last header: trust the proof when this block is on the chain you trust (or give `root`). */
  readonly anchor: { readonly hash: Hex; readonly slot: number };
  readonly claim: ProofClaim;
  /** Kind "reading": what the device signed. */
  readonly reading?: { readonly kind: string; readonly timeMs: string; readonly body: Hex };
}

export type VerifyResult = VerifiedProof | { readonly ok: false; readonly error: CodedError };

export interface VerifyOptions {
  /** A state root or header hash the verifier trusts: it must be in the proof (JG_ERR_PROOF_ANCHOR otherwise). */
  readonly root?: Uint8Array;
}

function fail(code: ErrorCode, detail: string): { readonly ok: false; readonly error: CodedError } {
  return { ok: false, error: codedError(code, detail) };
}

interface DecodedHeader {
  readonly hash: Uint8Array;
  readonly header: Header;
}

/** The headers decoded, each exactly as GP encodes it (a non-canonical encoding would hash apart from the header it decodes to). */
function decodeHeaders(params: ChainParams, headers: readonly Hex[]): DecodedHeader[] | string {
  const decoded: DecodedHeader[] = [];
  for (const [i, hex] of headers.entries()) {
    const bytes = fromHex(hex);
    let header: Header;
    try {
      header = decode<Header>(Header.Codec, bytes, params.spec);
    } catch (e) {
      return `/headers/${i}: is not a GP-encoded header of the ${params.name} chain (${e instanceof Error ? e.message : String(e)})`;
    }
    if (!bytesEqual(encode<Header>(Header.Codec, header, params.spec), bytes)) return `/headers/${i}: is not canonically encoded`;
    decoded.push({ hash: headerHash(params, header), header });
  }
  return decoded;
}

/**
 * Checks a proof (any JSON value: it is untrusted) and returns what it proves, or the first check
 * that failed as a coded error, in this order: shape (JG_ERR_PROOF_FORMAT), the state path
 * (JG_ERR_PROOF_STATE) or the reading's DA path (JG_ERR_PROOF_DA), the headers' links
 * (JG_ERR_PROOF_CHAIN), the claim (JG_ERR_PROOF_CLAIM), the trusted root (JG_ERR_PROOF_ANCHOR).
 * Never throws on bad input.
 */
export function verifyProof(proof: unknown, options: VerifyOptions = {}): VerifyResult {
  const shaped = checkProofShape(proof);
  if (!shaped.ok) return shaped;
  const p = shaped.value;
  const params = chainParams(p.chain);
  const headers = decodeHeaders(params, p.headers);
  if (typeof headers === "string") return fail("JG_ERR_PROOF_FORMAT", headers);
  const first = headers[0]!.header;

  // The value's path to the state root, or the reading's path to the block that guaranteed it;
  // either way, the block headers[0] must follow.
  let parent: { readonly hash: Uint8Array; readonly slot: number; readonly what: string };
  const trusted: Uint8Array[] = headers.map((h) => h.hash);
  let reading: VerifiedProof["reading"];
  let envelope: { readonly deviceId: Uint8Array; readonly seq: bigint } | null = null;
  if (p.state !== undefined) {
    const s = p.state;
    const stateKey = fromHex(s.stateKey);
    const expectedKey = storageKey(s.serviceId, fromHex(s.storageKey));
    if (expectedKey !== s.stateKey) return fail("JG_ERR_PROOF_STATE", `state key ${s.stateKey} is not C(${s.serviceId}, ${s.storageKey}) = ${expectedKey}`);
    const root = fromHex(s.root);
    if (!verifyStatePath(stateKey, fromHex(s.value), s.siblings.map(fromHex), root))
      return fail("JG_ERR_PROOF_STATE", `the value's path of ${s.siblings.length} siblings does not lead to state root ${s.root}`);
    if (!bytesEqual(first.priorStateRoot.raw, root))
      return fail("JG_ERR_PROOF_CHAIN", `headers[0]'s prior state root is ${toHex(first.priorStateRoot.raw)}, not the proof's root ${s.root}`);
    parent = { hash: fromHex(s.block.hash), slot: s.block.slot, what: "the state block" };
    trusted.push(root);
  } else {
    const da = verifyReadingDa(params, p.claim.service as ReadingService, p.da!);
    if (!da.ok) return da;
    const e = da.value.envelope;
    envelope = e;
    reading = { kind: e.kind, timeMs: e.timeMs.toString(), body: toHex(e.body) };
    parent = { hash: da.value.reportBlockHash, slot: da.value.reportBlockSlot, what: "the report block" };
    trusted.push(da.value.reportBlockHash);
  }

  for (const [i, { header }] of headers.entries()) {
    const before = i === 0 ? parent : { hash: headers[i - 1]!.hash, slot: headers[i - 1]!.header.timeSlotIndex, what: `headers[${i - 1}]` };
    if (!bytesEqual(header.parentHeaderHash.raw, before.hash))
      return fail("JG_ERR_PROOF_CHAIN", `headers[${i}]'s parent is ${toHex(header.parentHeaderHash.raw)}, not ${before.what} ${toHex(before.hash)}`);
    if (header.timeSlotIndex <= before.slot)
      return fail("JG_ERR_PROOF_CHAIN", `headers[${i}] is at slot ${header.timeSlotIndex}, not after ${before.what}'s ${before.slot}`);
  }

  const claimed = p.state !== undefined ? checkStateClaim(p.claim, p.state) : checkReadingClaim(p.claim as ReadingClaim, envelope!);
  if (claimed !== null) return fail("JG_ERR_PROOF_CLAIM", claimed);

  if (options.root !== undefined && !trusted.some((t) => bytesEqual(t, options.root!))) {
    return fail(
      "JG_ERR_PROOF_ANCHOR",
      `${toHex(options.root)} is neither the proof's state root nor the hash of a block whose header it holds${p.state !== undefined && bytesEqual(options.root, fromHex(p.state.block.hash)) ? " (the state block's own header is not in the proof: trust its child's hash or the state root)" : ""}`,
    );
  }
  const anchor = headers[headers.length - 1]!;
  return { ok: true, anchor: { hash: toHex(anchor.hash), slot: anchor.header.timeSlotIndex }, claim: p.claim, ...(reading === undefined ? {} : { reading }) };
}

/** Null when the state value says the claim, else why not. */
function checkStateClaim(claim: ProofClaim, state: ProofState): string | null {
  const key = fromHex(state.storageKey);
  const value = fromHex(state.value);
  switch (claim.kind) {
    case "energy-entry":
    case "wifi-entry": {
      const ledger = ledgerOf(claim.kind);
      const place = ledger.place(claim);
      const where = `${ledger.placeName} ${place}`;
      if (!bytesEqual(key, ledger.key(place))) return `the proven key ${state.storageKey} is not ${where}'s ledger`;
      const entries = ledger.entries(value);
      if (!entries.ok) return `the value is not a ${ledger.service} ledger: ${entries.error}`;
      const stored = entries.value[claim.index];
      if (stored === undefined) return `${where}'s ledger has ${entries.value.length} entries, none at index ${claim.index}`;
      const differs = entryDiffers(stored, claim.entry);
      return differs === null ? null : `entry ${claim.index} of ${where} has ${differs.field} ${String(differs.stored)}, not ${String(differs.claimed)}`;
    }
    case "balance": {
      if (!bytesEqual(key, balanceKeyOf(claim.service, claim.account))) return `the proven key ${state.storageKey} is not account ${claim.account}'s balance`;
      const balance = readBalance(claim.service, value);
      if (!balance.ok) return `the value is not a ${claim.service} balance: ${balance.error}`;
      const differs = entryDiffers(balance.value, claim);
      return differs === null ? null : `the account's ${differs.field} is ${String(differs.stored)} micro-units, not ${String(differs.claimed)}`;
    }
    case "settled-seq": {
      if (!bytesEqual(key, deviceRecordKey(claim.service, claim.device))) return `the proven key ${state.storageKey} is not device ${claim.device}'s record`;
      const window = recordedWindow(claim.service, value);
      if (!window.ok) return `the value is not a ${claim.service} device record: ${window.error}`;
      return settledInWindow(window.value, BigInt(claim.seq));
    }
    case "reading":
      return "a reading is proven through data availability, not state";
  }
}

/** The first field of `stored` whose value `claimed` does not state, or null when it states them all. */
export function entryDiffers<T extends object>(stored: T, claimed: T): { readonly field: string; readonly stored: unknown; readonly claimed: unknown } | null {
  const field = (Object.keys(stored) as (keyof T)[]).find((f) => stored[f] !== claimed[f]);
  return field === undefined ? null : { field: String(field), stored: stored[field], claimed: claimed[field] };
}

/** Null when the window holds `seq` as settled, else why not. */
function settledInWindow(window: RecordedWindow, seq: bigint): string | null {
  switch (seqInWindow(window, seq)) {
    case "settled":
      return null;
    case "unsettled":
      if (window.highestSeq === null) return "the device has settled no seq yet";
      return seq > window.highestSeq
        ? `seq ${seq} is above the highest settled, ${window.highestSeq}`
        : `seq ${seq} is not settled (the window's bit for it is clear)`;
    case "below":
      return `seq ${seq} is more than ${SEQ_WINDOW_SEQS} below the highest settled (${window.highestSeq}): the window no longer tells`;
  }
}

function checkReadingClaim(claim: ReadingClaim, envelope: { readonly deviceId: Uint8Array; readonly seq: bigint }): string | null {
  if (toHex(envelope.deviceId) !== claim.device) return `the envelope is device ${toHex(envelope.deviceId)}'s, not ${claim.device}'s`;
  return envelope.seq === BigInt(claim.seq) ? null : `the envelope is seq ${envelope.seq}, not ${claim.seq}`;
}
