/**
 * The wifi-billing service's storage (GP 9.2, a service account's storage dictionary): keys and
 * compact binary values, with pure decoders that the gateway and the ledger view use to read them
 * through the node's `serviceValue` (JIP-2). Integers little-endian; every value starts with a
 * format version byte; money in micro-units (u64), octets as u64, seconds as u32.
 *
 * | key | value |
 * |---|---|
 * | "config" | fee and cool-down (`WifiConfig`); absent = the defaults (PROTOCOL_FEE_PPM, STAKE_COOLDOWN_SLOTS) |
 * | "dev/" ⌢ id 16 | device record: key, kind (client or router), registration slot, (device, seq) replay window |
 * | "account/" ⌢ id 16 | an account: balanceMicros, lockedMicros (stakes of its routers) |
 * | "router/" ⌢ id 16 | a router: owner, price, stake, capacity, attested, status, open sessions, usage totals, name |
 * | "session/" ⌢ router 16 ⌢ session 16 | a session: client, start price, last voucher hash, counters, billed so far |
 * | "closed", "closed/" ⌢ u32 | ring of stopped sessions (CLOSED_SESSIONS_KEPT): evicting one deletes its session record |
 * | "actions", "actions/" ⌢ u32 | ring of applied action ids (ACTIONS_KEPT): evicting one deletes its "action/" record |
 * | "action/" ⌢ actionId 16 | an action and its verdict (applied, or refused with a code) |
 * | "cooldown", "cooldown/" ⌢ u64 | queue of deregistered routers whose stake returns at a slot |
 * | "ledger/" ⌢ u32 slot | the ledger entries written by that slot's block (LEDGER_SLOTS_KEPT slots) |
 * | "progress" | u32 the lowest slot whose ledger entries may still be in state (pruning mark) |
 * | "fees" | u64 protocol fees collected, micros |
 * | "stats" | service-wide counters, refusals per code |
 * | "outcome/…", "outcome-fifo…" | package outcomes for receipts (services/common/outcome.ts) |
 */
import { ascii, concatBytes, fail, ok, Reader, type Result, Writer } from "../common/bytes.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, type RawDeviceId } from "../common/envelope.ts";
import { type DeviceIdInput, rawDeviceId } from "../common/outcome.ts";
import { type RejectionName, rejectionName } from "../common/errors.ts";
import type { ReplayWindow } from "../common/window.ts";
import { ACTION_ID_BYTES, type ActionRecord, rawActionId, readActionRecords, ROUTER_NAME_BYTES_MAX, WifiDeviceKind } from "./payload.ts";

export const STORAGE_FORMAT_VERSION = 1;

export const configKey = ascii("config");
export const statsKey = ascii("stats");
export const feesKey = ascii("fees");
export const progressKey = ascii("progress");
export const closedKey = ascii("closed");
export const actionsKey = ascii("actions");
export const cooldownKey = ascii("cooldown");
const DEVICE_PREFIX = ascii("dev/");
const ACCOUNT_PREFIX = ascii("account/");
const ROUTER_PREFIX = ascii("router/");
const SESSION_PREFIX = ascii("session/");
const CLOSED_PREFIX = ascii("closed/");
const ACTIONS_PREFIX = ascii("actions/");
const ACTION_PREFIX = ascii("action/");
const COOLDOWN_PREFIX = ascii("cooldown/");
const LEDGER_PREFIX = ascii("ledger/");

/**
 * Slots whose ledger entries stay in state: 14,400 slots, a day at 6 s. Older ones are deleted as
 * blocks go by, so state stays bounded however long the service runs (their entries remain in the
 * blocks' history and their inputs in DA; the gateway's ledger index keeps its own copy).
 */
export const LEDGER_SLOTS_KEPT = 14_400;
/**
 * Stopped sessions remembered: 262,144 (~50 bytes of state each, ~13 MB). A voucher of a stopped
 * session is refused (JG_ERR_WIFI_SESSION) while its session is in the ring; once evicted, its
 * session record is deleted, so a router replaying a session stopped more than this many stops ago
 * could bill it again: the bound trades state for that horizon (about 3 days of a 1,000-router
 * network whose routers each stop a session a minute).
 */
export const CLOSED_SESSIONS_KEPT = 262_144;
/** Operator actions remembered for their verdict and against replays: 65,536 (~100 bytes each); an action replayed after more actions than that would be applied again. */
export const ACTIONS_KEPT = 65_536;

/** A session id: 16 bytes (native: random; RADIUS: the first 16 bytes of H(router id ⌢ Acct-Session-Id)). */
export const SESSION_ID_BYTES = 16;

const u32Bytes = (n: number) => new Writer(4).u32(n).finish();
const u64Bytes = (n: bigint) => new Writer(8).u64(n).finish();

function rawSessionId(session: Uint8Array | string): Uint8Array {
  return rawDeviceId(session); // the same shape: 16 bytes or 32 lowercase hex digits
}

/** Where a device's record is (the gateway's registry reads it for either kind). */
export const deviceKey = (id: DeviceIdInput): Uint8Array => concatBytes([DEVICE_PREFIX, rawDeviceId(id)]);
export const accountKey = (id: DeviceIdInput): Uint8Array => concatBytes([ACCOUNT_PREFIX, rawDeviceId(id)]);
export const routerKey = (id: DeviceIdInput): Uint8Array => concatBytes([ROUTER_PREFIX, rawDeviceId(id)]);
export const sessionKey = (router: DeviceIdInput, session: Uint8Array | string): Uint8Array => concatBytes([SESSION_PREFIX, rawDeviceId(router), rawSessionId(session)]);
export const closedSlotKey = (slot: number): Uint8Array => concatBytes([CLOSED_PREFIX, u32Bytes(slot)]);
export const actionsSlotKey = (slot: number): Uint8Array => concatBytes([ACTIONS_PREFIX, u32Bytes(slot)]);
export const actionKey = (actionId: Uint8Array | string): Uint8Array => concatBytes([ACTION_PREFIX, rawActionId(actionId)]);
export const cooldownEntryKey = (n: bigint): Uint8Array => concatBytes([COOLDOWN_PREFIX, u64Bytes(n)]);
/** The ledger entries accumulated in the block of `slot`. */
export const ledgerKey = (slot: number): Uint8Array => concatBytes([LEDGER_PREFIX, u32Bytes(slot)]);

function versionOk(r: Reader): boolean {
  return r.u8() === STORAGE_FORMAT_VERSION;
}

// ---------------------------------------------------------------------------------------------
// Config.

/** The service's parameters; fixed at genesis (absent = the defaults). */
export interface WifiConfig {
  /** Parts per million of each billed amount that goes to `fees` rather than the router's owner. */
  readonly protocolFeePpm: number;
  /** Slots from a deregistration until the router's stake returns to its owner. */
  readonly stakeCooldownSlots: number;
}

/** The share of each billed amount kept as protocol fee: 50,000 ppm = 5 %, floor. */
export const PROTOCOL_FEE_PPM = 50_000;
/** Slots from deregistration to stake return: 600 slots = 1 hour at 6 s, time for a dispute of the router's last usage to be seen. */
export const STAKE_COOLDOWN_SLOTS = 600;
export const DEFAULT_CONFIG: WifiConfig = { protocolFeePpm: PROTOCOL_FEE_PPM, stakeCooldownSlots: STAKE_COOLDOWN_SLOTS };
const PPM = 1_000_000;

export function encodeConfig(c: WifiConfig): Uint8Array {
  const problem = checkConfig(c);
  if (problem !== null) throw new Error(`wifi config: ${problem}`);
  return new Writer(9).u8(STORAGE_FORMAT_VERSION).u32(c.protocolFeePpm).u32(c.stakeCooldownSlots).finish();
}

export function decodeConfig(bytes: Uint8Array): Result<WifiConfig> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const config = { protocolFeePpm: r.u32(), stakeCooldownSlots: r.u32() };
  if (!r.done || !version) return fail("wifi config is corrupt");
  const problem = checkConfig(config);
  return problem === null ? ok(config) : fail(`wifi config: ${problem}`);
}

function checkConfig(c: WifiConfig): string | null {
  if (!Number.isInteger(c.protocolFeePpm) || c.protocolFeePpm < 0 || c.protocolFeePpm > PPM) return `fee of ${c.protocolFeePpm} ppm`;
  if (!Number.isInteger(c.stakeCooldownSlots) || c.stakeCooldownSlots < 0) return `cool-down of ${c.stakeCooldownSlots} slots`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Devices.

export type WifiDeviceKindName = "client" | "router";

export interface DeviceRecord {
  readonly publicKey: Uint8Array;
  readonly kind: WifiDeviceKind;
  readonly registeredSlot: number;
  /** The router's envelopes settled (an account sends none: its window stays empty). */
  readonly window: ReplayWindow;
  readonly envelopesSettled: bigint;
}

export const DEVICE_RECORD_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 1 + 4 + 1 + 8 + 8 + 8;

export function encodeDeviceRecord(d: DeviceRecord): Uint8Array {
  return new Writer(DEVICE_RECORD_BYTES)
    .u8(STORAGE_FORMAT_VERSION)
    .bytes(d.publicKey)
    .u8(d.kind)
    .u32(d.registeredSlot)
    .u8(d.window.highestSeq === null ? 0 : 1)
    .u64(d.window.highestSeq ?? 0n)
    .u64(d.window.bitmap)
    .u64(d.envelopesSettled)
    .finish();
}

export function decodeDeviceRecord(bytes: Uint8Array): Result<DeviceRecord> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES).slice();
  const kind = r.u8();
  const registeredSlot = r.u32();
  const hasSeq = r.u8();
  const highestSeq = r.u64();
  const bitmap = r.u64();
  const envelopesSettled = r.u64();
  if (!r.done || !version || hasSeq > 1 || (kind !== WifiDeviceKind.client && kind !== WifiDeviceKind.router)) return fail("device record is corrupt");
  return ok({ publicKey, kind, registeredSlot, window: { highestSeq: hasSeq === 1 ? highestSeq : null, bitmap }, envelopesSettled });
}

/** A device record as the gateway's registry reads it (gateway/ingest-service.ts RegisteredDevice), or null if it does not decode. */
export function decodeDevice(value: Uint8Array): { readonly publicKey: Uint8Array; readonly kind: WifiDeviceKindName; readonly settledHighestSeq: number } | null {
  const record = decodeDeviceRecord(value);
  if (!record.ok) return null;
  const highest = record.value.window.highestSeq;
  const settledHighestSeq = highest === null ? -1 : highest > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(highest);
  return { publicKey: record.value.publicKey, kind: record.value.kind === WifiDeviceKind.router ? "router" : "client", settledHighestSeq };
}

// ---------------------------------------------------------------------------------------------
// Accounts.

export interface AccountRecord {
  /** What the account can spend: top-ups and earnings less usage paid and stakes locked. */
  readonly balanceMicros: bigint;
  /** Stakes of the account's routers, locked until their cool-down ends. */
  readonly lockedMicros: bigint;
  readonly registeredSlot: number;
}

const ACCOUNT_RECORD_BYTES = 1 + 8 + 8 + 4;

export function encodeAccount(a: AccountRecord): Uint8Array {
  return new Writer(ACCOUNT_RECORD_BYTES).u8(STORAGE_FORMAT_VERSION).u64(a.balanceMicros).u64(a.lockedMicros).u32(a.registeredSlot).finish();
}

export function decodeAccount(bytes: Uint8Array): Result<AccountRecord> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const account = { balanceMicros: r.u64(), lockedMicros: r.u64(), registeredSlot: r.u32() };
  if (!r.done || !version) return fail("account is corrupt");
  return ok(account);
}

// ---------------------------------------------------------------------------------------------
// Routers.

/** A router's life: active; deregistered (its usage refused, its stake cooling down); its stake returned. */
export const ROUTER_STATUSES = ["active", "deregistered", "stake-returned"] as const;
export type RouterStatus = (typeof ROUTER_STATUSES)[number];

export interface RouterRecord {
  readonly owner: RawDeviceId;
  /** The price of sessions that start from now on (a session keeps the price it started with). */
  readonly priceMicrosPerGb: bigint;
  readonly stakeMicros: bigint;
  readonly capacityBitsPerSecond: bigint;
  readonly attested: boolean;
  readonly status: RouterStatus;
  readonly registeredSlot: number;
  /** The slot of the deregistration; 0 while active. */
  readonly deregisteredSlot: number;
  /** Sessions started and not stopped (bounded by OPEN_SESSIONS_PER_ROUTER_MAX). */
  readonly openSessions: number;
  readonly sessionsStarted: bigint;
  /** Octets (input + output) billed to clients, and the micros they paid (fees included). */
  readonly billedOctets: bigint;
  readonly billedMicros: bigint;
  /** What the owner received for them: billedMicros less fees. */
  readonly earnedMicros: bigint;
  /** Router-attested octets not billed because the owner did not choose attested billing. */
  readonly disputedOctets: bigint;
  readonly name: string;
}

const ROUTER_FIXED_BYTES = 1 + DEVICE_ID_BYTES + 8 + 8 + 8 + 1 + 1 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 1;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

export function encodeRouter(x: RouterRecord): Uint8Array {
  const name = textEncoder.encode(x.name);
  if (name.length > ROUTER_NAME_BYTES_MAX) throw new Error(`router name of ${name.length} bytes`);
  return new Writer(ROUTER_FIXED_BYTES + name.length)
    .u8(STORAGE_FORMAT_VERSION)
    .bytes(x.owner)
    .u64(x.priceMicrosPerGb)
    .u64(x.stakeMicros)
    .u64(x.capacityBitsPerSecond)
    .u8(x.attested ? 1 : 0)
    .u8(ROUTER_STATUSES.indexOf(x.status))
    .u32(x.registeredSlot)
    .u32(x.deregisteredSlot)
    .u32(x.openSessions)
    .u64(x.sessionsStarted)
    .u64(x.billedOctets)
    .u64(x.billedMicros)
    .u64(x.earnedMicros)
    .u64(x.disputedOctets)
    .u8(name.length)
    .bytes(name)
    .finish();
}

export function decodeRouter(bytes: Uint8Array): Result<RouterRecord> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const owner = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
  const priceMicrosPerGb = r.u64();
  const stakeMicros = r.u64();
  const capacityBitsPerSecond = r.u64();
  const attested = r.u8();
  const status = ROUTER_STATUSES[r.u8()];
  const registeredSlot = r.u32();
  const deregisteredSlot = r.u32();
  const openSessions = r.u32();
  const sessionsStarted = r.u64();
  const billedOctets = r.u64();
  const billedMicros = r.u64();
  const earnedMicros = r.u64();
  const disputedOctets = r.u64();
  const nameBytes = r.bytes(r.u8());
  if (!r.done || !version || attested > 1 || status === undefined || nameBytes.length > ROUTER_NAME_BYTES_MAX) return fail("router record is corrupt");
  let name: string;
  try {
    name = textDecoder.decode(nameBytes);
  } catch {
    return fail("router name is not UTF-8");
  }
  return ok({
    owner,
    priceMicrosPerGb,
    stakeMicros,
    capacityBitsPerSecond,
    attested: attested === 1,
    status,
    registeredSlot,
    deregisteredSlot,
    openSessions,
    sessionsStarted,
    billedOctets,
    billedMicros,
    earnedMicros,
    disputedOctets,
    name,
  });
}

// ---------------------------------------------------------------------------------------------
// Sessions.

export interface SessionRecord {
  readonly client: RawDeviceId;
  /** The router's price when the session started: what all of it is billed at. */
  readonly priceMicrosPerGb: bigint;
  /** Hash of the session's last voucher (or attested update): the next update's `prev`. */
  readonly lastVoucherHash: Uint8Array;
  /** Cumulative counters of the last update (after gigaword wrap). */
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
  /** Micros billed for the session so far (≤ charged(input + output)): less when the balance ran out. */
  readonly billedMicros: bigint;
  readonly stopped: boolean;
  /** The client's balance could not pay for all of it at some update (the router was told to disconnect). */
  readonly exhausted: boolean;
  /** Acct-Terminate-Cause of the Stop (RFC 2866 §5.10); 0 while open. */
  readonly terminateCause: number;
  readonly startSlot: number;
  readonly lastSlot: number;
}

export const SESSION_RECORD_BYTES = 1 + DEVICE_ID_BYTES + 8 + 32 + 8 + 8 + 4 + 8 + 1 + 4 + 4 + 4;

export function encodeSession(s: SessionRecord): Uint8Array {
  return new Writer(SESSION_RECORD_BYTES)
    .u8(STORAGE_FORMAT_VERSION)
    .bytes(s.client)
    .u64(s.priceMicrosPerGb)
    .bytes(s.lastVoucherHash)
    .u64(s.inputOctets)
    .u64(s.outputOctets)
    .u32(s.seconds)
    .u64(s.billedMicros)
    .u8((s.stopped ? 1 : 0) | (s.exhausted ? 2 : 0))
    .u32(s.terminateCause)
    .u32(s.startSlot)
    .u32(s.lastSlot)
    .finish();
}

export function decodeSession(bytes: Uint8Array): Result<SessionRecord> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const client = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
  const priceMicrosPerGb = r.u64();
  const lastVoucherHash = r.bytes(32).slice();
  const inputOctets = r.u64();
  const outputOctets = r.u64();
  const seconds = r.u32();
  const billedMicros = r.u64();
  const flags = r.u8();
  const terminateCause = r.u32();
  const startSlot = r.u32();
  const lastSlot = r.u32();
  if (!r.done || !version || flags > 3) return fail("session record is corrupt");
  return ok({ client, priceMicrosPerGb, lastVoucherHash, inputOctets, outputOctets, seconds, billedMicros, stopped: (flags & 1) !== 0, exhausted: (flags & 2) !== 0, terminateCause, startSlot, lastSlot });
}

// ---------------------------------------------------------------------------------------------
// Rings and queues.

/** u8 version ⌢ u64 count: how many entries a ring ("closed", "actions") has taken. */
export function encodeCount(n: bigint): Uint8Array {
  return new Writer(9).u8(STORAGE_FORMAT_VERSION).u64(n).finish();
}

export function decodeCount(bytes: Uint8Array): Result<bigint> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const n = r.u64();
  if (!r.done || !version) return fail("counter is corrupt");
  return ok(n);
}

/** A stopped session in the "closed" ring: router ⌢ session. */
export function encodeClosedEntry(router: Uint8Array, session: Uint8Array): Uint8Array {
  return new Writer(1 + DEVICE_ID_BYTES + SESSION_ID_BYTES).u8(STORAGE_FORMAT_VERSION).bytes(router).bytes(session).finish();
}

export function decodeClosedEntry(bytes: Uint8Array): Result<{ router: RawDeviceId; session: Uint8Array }> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const router = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
  const session = r.bytes(SESSION_ID_BYTES).slice();
  if (!r.done || !version) return fail("closed-session entry is corrupt");
  return ok({ router, session });
}

/** The "cooldown" queue: entries head … tail − 1 are waiting. */
export interface CooldownQueue {
  readonly head: bigint;
  readonly tail: bigint;
}

export function encodeCooldownQueue(q: CooldownQueue): Uint8Array {
  return new Writer(17).u8(STORAGE_FORMAT_VERSION).u64(q.head).u64(q.tail).finish();
}

export function decodeCooldownQueue(bytes: Uint8Array): Result<CooldownQueue> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const q = { head: r.u64(), tail: r.u64() };
  if (!r.done || !version || q.head > q.tail) return fail("cool-down queue is corrupt");
  return ok(q);
}

export interface CooldownEntry {
  readonly router: RawDeviceId;
  /** The first slot at which the stake returns. */
  readonly dueSlot: number;
}

export function encodeCooldownEntry(e: CooldownEntry): Uint8Array {
  return new Writer(1 + DEVICE_ID_BYTES + 4).u8(STORAGE_FORMAT_VERSION).bytes(e.router).u32(e.dueSlot).finish();
}

export function decodeCooldownEntry(bytes: Uint8Array): Result<CooldownEntry> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const router = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
  const dueSlot = r.u32();
  if (!r.done || !version) return fail("cool-down entry is corrupt");
  return ok({ router, dueSlot });
}

/** u8 version ⌢ u32: the lowest slot whose ledger entries may still be in state. */
export function encodeProgress(ledgerKeptFromSlot: number): Uint8Array {
  return new Writer(5).u8(STORAGE_FORMAT_VERSION).u32(ledgerKeptFromSlot).finish();
}

export function decodeProgress(bytes: Uint8Array): Result<number> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const slot = r.u32();
  if (!r.done || !version) return fail("progress is corrupt");
  return ok(slot);
}

// ---------------------------------------------------------------------------------------------
// Actions.

/** An applied or refused action: what it was, when, and its verdict (null = applied). */
export interface StoredAction {
  readonly action: ActionRecord;
  readonly slot: number;
  /** The refusal's code byte (services/common/errors.ts), or 0 when applied. */
  readonly code: number;
}

const STORED_ACTION_BYTES = 1 + ACTION_ID_BYTES + 1 + DEVICE_ID_BYTES + 8 + 4 + 1;

export function encodeStoredAction(s: StoredAction): Uint8Array {
  const a = s.action;
  return new Writer(STORED_ACTION_BYTES).u8(STORAGE_FORMAT_VERSION).bytes(a.actionId).u8(a.type).bytes(a.target).u64(a.value).u32(s.slot).u8(s.code).finish();
}

export function decodeStoredAction(bytes: Uint8Array): Result<StoredAction> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const action = readActionRecords(r, 1);
  const slot = r.u32();
  const code = r.u8();
  if (!action.ok || !r.done || !version) return fail("stored action is corrupt");
  return ok({ action: action.value[0]!, slot, code });
}

/**
 * An action's verdict as the gateway reports it (`GET /v1/wifi/actions/:id`) from the value under
 * actionKey(id): applied, or refused with its code; null if the value does not decode. No value
 * means the action was not accumulated (pending), or was evicted from the ring long ago.
 */
export function decodeActionVerdict(value: Uint8Array): { readonly status: "applied" | "refused"; readonly code: RejectionName | null; readonly slot: number } | null {
  const stored = decodeStoredAction(value);
  if (!stored.ok) return null;
  if (stored.value.code === 0) return { status: "applied", code: null, slot: stored.value.slot };
  return { status: "refused", code: rejectionName(stored.value.code), slot: stored.value.slot };
}

// ---------------------------------------------------------------------------------------------
// Ledger.

/** Why an entry was written (its byte is the index). */
export const LEDGER_REASONS = ["usage", "balance-exhausted", "disputed", "topup", "stake-lock", "stake-return"] as const;
export type LedgerReason = (typeof LEDGER_REASONS)[number];

/**
 * One ledger entry. `usage`: the client paid amountMicros for inputOctets + outputOctets (the
 * delta since the session's previous update) at priceMicrosPerGb, feeMicros of it to `fees`, the
 * rest to the router's owner. `balance-exhausted`: the same, but the client's balance paid only
 * amountMicros of what was due (the router is told to disconnect the session). `disputed`:
 * router-attested usage of a router whose owner did not choose attested billing; nothing moved.
 * `topup`: the account `client` was credited. `stake-lock` / `stake-return`: the router's stake
 * moved from its owner's (`client`) balance to locked, and back.
 */
export interface LedgerEntry {
  readonly reason: LedgerReason;
  /** Zero bytes for entries of no session. */
  readonly session: Uint8Array;
  /** Zero bytes for a top-up. */
  readonly router: RawDeviceId;
  /** The account whose balance the entry moves: the client for usage, the owner for stakes, the account topped up. */
  readonly client: RawDeviceId;
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly priceMicrosPerGb: bigint;
  readonly amountMicros: bigint;
  readonly feeMicros: bigint;
  /** Usage without a client voucher (router-attested). */
  readonly attested: boolean;
}

export const LEDGER_ENTRY_BYTES = 1 + SESSION_ID_BYTES + DEVICE_ID_BYTES + DEVICE_ID_BYTES + 8 + 8 + 8 + 8 + 8 + 1;

/** u8 version ⌢ u32 n ⌢ n × (u8 reason ⌢ session 16 ⌢ router 16 ⌢ client 16 ⌢ u64 in ⌢ u64 out ⌢ u64 price ⌢ u64 amount ⌢ u64 fee ⌢ u8 attested). */
export function encodeLedgerEntries(entries: readonly LedgerEntry[]): Uint8Array {
  const w = new Writer(1 + 4 + LEDGER_ENTRY_BYTES * entries.length).u8(STORAGE_FORMAT_VERSION).u32(entries.length);
  for (const e of entries) {
    w.u8(LEDGER_REASONS.indexOf(e.reason))
      .bytes(e.session)
      .bytes(e.router)
      .bytes(e.client)
      .u64(e.inputOctets)
      .u64(e.outputOctets)
      .u64(e.priceMicrosPerGb)
      .u64(e.amountMicros)
      .u64(e.feeMicros)
      .u8(e.attested ? 1 : 0);
  }
  return w.finish();
}

export function decodeLedgerEntries(bytes: Uint8Array): Result<LedgerEntry[]> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const count = r.u32();
  if (!version || r.failed || r.remaining !== count * LEDGER_ENTRY_BYTES) return fail("ledger entries are corrupt");
  const entries: LedgerEntry[] = [];
  for (let i = 0; i < count; i++) {
    const reason = LEDGER_REASONS[r.u8()];
    const session = r.bytes(SESSION_ID_BYTES).slice();
    const router = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    const client = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    const e = { inputOctets: r.u64(), outputOctets: r.u64(), priceMicrosPerGb: r.u64(), amountMicros: r.u64(), feeMicros: r.u64() };
    const attested = r.u8();
    if (reason === undefined || attested > 1) return fail(`ledger entry ${i} is corrupt`);
    entries.push({ reason, session, router, client, ...e, attested: attested === 1 });
  }
  return ok(entries);
}

// ---------------------------------------------------------------------------------------------
// Fees and counters.

export function encodeMicros(micros: bigint): Uint8Array {
  return new Writer(9).u8(STORAGE_FORMAT_VERSION).u64(micros).finish();
}

export function decodeMicros(bytes: Uint8Array): Result<bigint> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const micros = r.u64();
  if (!r.done || !version) return fail("amount is corrupt");
  return ok(micros);
}

/** The fees collected ("fees"), micros. */
export const decodeFees = decodeMicros;

/** Refusal counters kept per code byte: every code of services/common/errors.ts is below 32. */
export const REFUSAL_CODE_SLOTS = 32;

export interface WifiStats {
  readonly accountsRegistered: bigint;
  readonly routersRegistered: bigint;
  readonly routersDeregistered: bigint;
  readonly stakesReturned: bigint;
  readonly envelopesSettled: bigint;
  readonly envelopesRejected: bigint;
  readonly registrationsRejected: bigint;
  readonly actionsApplied: bigint;
  readonly actionsRejected: bigint;
  readonly sessionsStarted: bigint;
  readonly sessionsStopped: bigint;
  /** Octets (input + output) of billed usage, and the micros clients paid for them (fees included). */
  readonly billedOctets: bigint;
  readonly billedMicros: bigint;
  /** Router-attested octets of routers without attested billing: written as disputed, not billed. */
  readonly disputedOctets: bigint;
  /** Updates a client's balance could not pay in full (a `balance-exhausted` entry each). */
  readonly exhaustedUpdates: bigint;
  /** Every top-up credited: Σ balances + Σ locked + fees equals it (value is conserved). */
  readonly toppedUpMicros: bigint;
  readonly ledgerEntries: bigint;
  /** Refusals (of envelopes, registrations and actions) by code byte. */
  readonly refusalsByCode: readonly bigint[];
}

type CounterField = Exclude<keyof WifiStats, "refusalsByCode">;

export const EMPTY_STATS: WifiStats = {
  accountsRegistered: 0n,
  routersRegistered: 0n,
  routersDeregistered: 0n,
  stakesReturned: 0n,
  envelopesSettled: 0n,
  envelopesRejected: 0n,
  registrationsRejected: 0n,
  actionsApplied: 0n,
  actionsRejected: 0n,
  sessionsStarted: 0n,
  sessionsStopped: 0n,
  billedOctets: 0n,
  billedMicros: 0n,
  disputedOctets: 0n,
  exhaustedUpdates: 0n,
  toppedUpMicros: 0n,
  ledgerEntries: 0n,
  refusalsByCode: Array.from({ length: REFUSAL_CODE_SLOTS }, () => 0n),
};
export const STATS_COUNTERS = (Object.keys(EMPTY_STATS) as (keyof WifiStats)[]).filter((k): k is CounterField => k !== "refusalsByCode");

/** u8 version ⌢ the counters as u64 in EMPTY_STATS's order ⌢ u8 n ⌢ n × u64 refusals by code. */
export function encodeStats(stats: WifiStats): Uint8Array {
  const w = new Writer(1 + 8 * STATS_COUNTERS.length + 1 + 8 * REFUSAL_CODE_SLOTS).u8(STORAGE_FORMAT_VERSION);
  for (const field of STATS_COUNTERS) w.u64(stats[field]);
  w.u8(REFUSAL_CODE_SLOTS);
  for (let code = 0; code < REFUSAL_CODE_SLOTS; code++) w.u64(stats.refusalsByCode[code] ?? 0n);
  return w.finish();
}

export function decodeStats(bytes: Uint8Array): Result<WifiStats> {
  const r = new Reader(bytes);
  const version = versionOk(r);
  const counters = Object.fromEntries(STATS_COUNTERS.map((field) => [field, r.u64()])) as Record<CounterField, bigint>;
  const slots = r.u8();
  const refusalsByCode: bigint[] = [];
  for (let code = 0; code < slots && !r.failed; code++) refusalsByCode.push(r.u64());
  if (!r.done || !version || slots !== REFUSAL_CODE_SLOTS) return fail("stats are corrupt");
  return ok({ ...counters, refusalsByCode });
}
