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
import { type CodedError, codedError, type ErrorCode } from "../../node/errors.ts";
import { storageKey } from "../../node/state/components.ts";
import { STATE_PROOF_SIBLINGS_MAX, verifyStatePath } from "../../node/state/proof.ts";
import type { ReplayWindow } from "../../services/common/window.ts";
import { balanceKey, decodeBalance, decodeDeviceRecord as decodeEnergyDevice, decodeLedgerEntries, deviceKey as energyDeviceKey, ENERGY_SERVICE_NAME, LEDGER_REASONS, ledgerKey } from "../../services/energy-trading/types.ts";
import { decodeDeviceRecord as decodeTelemetryDevice, deviceKey as telemetryDeviceKey, TELEMETRY_SERVICE_NAME, WINDOW_SEQS } from "../../services/telemetry/types.ts";
import { bundleBase64Max, HEADER_BYTES_MAX, type ProofDa, READING_SERVICES, type ReadingService, REPORT_BYTES_MAX, reportBlockBytesMax, verifyReadingDa } from "./da-proof.ts";
import type { Hex } from "./types.ts";

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
    readonly reason: (typeof LEDGER_REASONS)[number];
    /** A household's id (32 hex digits) or "grid". */
    readonly buyer: string;
    readonly seller: string;
    readonly energyWh: number;
    readonly priceMicrosPerKwh: number;
    /** Decimal micro-units (u64). */
    readonly amountMicros: string;
  };
}

/** An account's balance: `balance/` ⌢ account's value is `balanceMicros` (signed decimal, i64). */
export interface BalanceClaim {
  readonly kind: "balance";
  readonly service: typeof ENERGY_SERVICE_NAME;
  readonly account: Hex;
  readonly balanceMicros: string;
}

/** The device's replay window (services/common/window.ts) in its record holds `seq` as settled. */
export interface SettledSeqClaim {
  readonly kind: "settled-seq";
  readonly service: ReadingService;
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

export type ProofClaim = EnergyEntryClaim | BalanceClaim | SettledSeqClaim | ReadingClaim;

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
const energyService = { type: "string", const: ENERGY_SERVICE_NAME } as const;
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
            reason: { type: "string", enum: [...LEDGER_REASONS] },
            buyer: { type: "string", pattern: "^([0-9a-f]{32}|grid)$" },
            seller: { type: "string", pattern: "^([0-9a-f]{32}|grid)$" },
            energyWh: u32,
            priceMicrosPerKwh: u32,
            amountMicros: { type: "string", pattern: "^(0|[1-9][0-9]{0,19})$" },
          },
        },
      },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "account", "balanceMicros"],
      properties: { kind: { const: "balance" }, service: energyService, account: deviceId, balanceMicros: { type: "string", pattern: "^-?(0|[1-9][0-9]{0,18})$" } },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "device", "seq"],
      properties: { kind: { const: "settled-seq" }, service: readingServices, device: deviceId, seq: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
    },
    {
      type: "object",
      additionalProperties: false,
      required: ["kind", "service", "device", "seq"],
      properties: { kind: { const: "reading" }, service: readingServices, device: deviceId, seq: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
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
          properties: { offset: { type: "integer", minimum: 0, maximum: fullParams.maxBundleBytes }, length: { type: "integer", minimum: 1, maximum: fullParams.maxBundleBytes } },
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
      return `${at}/kind: must be one of "energy-entry", "balance", "settled-seq", "reading"`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

/** The document, shape-checked: JG_ERR_PROOF_FORMAT when it is not a jamgate-proof/1 proof (the first problem, with its JSON path). */
export function checkProofShape(proof: unknown): { readonly ok: true; readonly value: Proof } | { readonly ok: false; readonly error: CodedError } {
  const validate = validator();
  if (!validate(proof)) return fail("JG_ERR_PROOF_FORMAT", describeSchemaError(validate.errors?.[0]));
  const p = proof as Proof;
  if (p.claim.kind === "reading" && (p.da === undefined || p.state !== undefined)) return fail("JG_ERR_PROOF_FORMAT", 'a proof of kind "reading" has "da" and no "state"');
  if (p.claim.kind !== "reading" && (p.state === undefined || p.da !== undefined)) return fail("JG_ERR_PROOF_FORMAT", `a proof of kind "${p.claim.kind}" has "state" and no "da"`);
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
    if (!verifyStatePath(stateKey, fromHex(s.value), s.siblings.map(fromHex), root)) return fail("JG_ERR_PROOF_STATE", `the value's path of ${s.siblings.length} siblings does not lead to state root ${s.root}`);
    if (!bytesEqual(first.priorStateRoot.raw, root)) return fail("JG_ERR_PROOF_CHAIN", `headers[0]'s prior state root is ${toHex(first.priorStateRoot.raw)}, not the proof's root ${s.root}`);
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
    if (!bytesEqual(header.parentHeaderHash.raw, before.hash)) return fail("JG_ERR_PROOF_CHAIN", `headers[${i}]'s parent is ${toHex(header.parentHeaderHash.raw)}, not ${before.what} ${toHex(before.hash)}`);
    if (header.timeSlotIndex <= before.slot) return fail("JG_ERR_PROOF_CHAIN", `headers[${i}] is at slot ${header.timeSlotIndex}, not after ${before.what}'s ${before.slot}`);
  }

  const claimed = p.state !== undefined ? checkStateClaim(p.claim, p.state) : checkReadingClaim(p.claim as ReadingClaim, envelope!);
  if (claimed !== null) return fail("JG_ERR_PROOF_CLAIM", claimed);

  if (options.root !== undefined && !trusted.some((t) => bytesEqual(t, options.root!))) {
    return fail("JG_ERR_PROOF_ANCHOR", `${toHex(options.root)} is neither the proof's state root nor the hash of a block whose header it holds${p.state !== undefined && bytesEqual(options.root, fromHex(p.state.block.hash)) ? " (the state block's own header is not in the proof: trust its child's hash or the state root)" : ""}`);
  }
  const anchor = headers[headers.length - 1]!;
  return { ok: true, anchor: { hash: toHex(anchor.hash), slot: anchor.header.timeSlotIndex }, claim: p.claim, ...(reading === undefined ? {} : { reading }) };
}

/** Null when the state value says the claim, else why not. */
function checkStateClaim(claim: ProofClaim, state: ProofState): string | null {
  const key = fromHex(state.storageKey);
  const value = fromHex(state.value);
  switch (claim.kind) {
    case "energy-entry": {
      if (!bytesEqual(key, ledgerKey(claim.interval))) return `the proven key ${state.storageKey} is not interval ${claim.interval}'s ledger`;
      const entries = decodeLedgerEntries(value);
      if (!entries.ok) return `the value is not an energy ledger: ${entries.error}`;
      const entry = entries.value[claim.index];
      if (entry === undefined) return `interval ${claim.interval}'s ledger has ${entries.value.length} entries, none at index ${claim.index}`;
      const stored = {
        reason: entry.reason,
        buyer: entry.buyer === "grid" ? "grid" : toHex(entry.buyer),
        seller: entry.seller === "grid" ? "grid" : toHex(entry.seller),
        energyWh: entry.energyWh,
        priceMicrosPerKwh: entry.priceMicrosPerKwh,
        amountMicros: entry.amountMicros.toString(),
      };
      const differs = (Object.keys(stored) as (keyof typeof stored)[]).find((field) => stored[field] !== claim.entry[field]);
      return differs === undefined ? null : `entry ${claim.index} of interval ${claim.interval} has ${differs} ${stored[differs]}, not ${claim.entry[differs]}`;
    }
    case "balance": {
      if (!bytesEqual(key, balanceKey(claim.account))) return `the proven key ${state.storageKey} is not account ${claim.account}'s balance`;
      const balance = decodeBalance(value);
      if (!balance.ok) return `the value is not a balance: ${balance.error}`;
      return balance.value === BigInt(claim.balanceMicros) ? null : `the balance is ${balance.value} micro-units, not ${claim.balanceMicros}`;
    }
    case "settled-seq": {
      const telemetry = claim.service === TELEMETRY_SERVICE_NAME;
      if (!bytesEqual(key, telemetry ? telemetryDeviceKey(claim.device) : energyDeviceKey(claim.device))) return `the proven key ${state.storageKey} is not device ${claim.device}'s record`;
      const record = telemetry ? decodeTelemetryDevice(value) : decodeEnergyDevice(value);
      if (!record.ok) return `the value is not a ${claim.service} device record: ${record.error}`;
      return settledInWindow(record.value.window, BigInt(claim.seq));
    }
    case "reading":
      return "a reading is proven through data availability, not state";
  }
}

/** Null when the window holds `seq` as settled (window.ts: bit i is seq highest − 1 − i), else why not. */
function settledInWindow(window: ReplayWindow, seq: bigint): string | null {
  const highest = window.highestSeq;
  if (highest === null) return "the device has settled no seq yet";
  if (seq > highest) return `seq ${seq} is above the highest settled, ${highest}`;
  const distance = highest - seq;
  if (distance === 0n) return null;
  if (distance > WINDOW_SEQS) return `seq ${seq} is more than ${WINDOW_SEQS} below the highest settled (${highest}): the window no longer tells`;
  return ((window.bitmap >> (distance - 1n)) & 1n) === 1n ? null : `seq ${seq} is not settled (the window's bit for it is clear)`;
}

function checkReadingClaim(claim: ReadingClaim, envelope: { readonly deviceId: Uint8Array; readonly seq: bigint }): string | null {
  if (toHex(envelope.deviceId) !== claim.device) return `the envelope is device ${toHex(envelope.deviceId)}'s, not ${claim.device}'s`;
  return envelope.seq === BigInt(claim.seq) ? null : `the envelope is seq ${envelope.seq}, not ${claim.seq}`;
}
