/**
 * The wifi-billing service's storage (GP 9.2, a service account's storage dictionary): keys and
 * compact binary values, with pure decoders that the gateway and the ledger view use to read them
 * through the node's `serviceValue` (JIP-2). Each value's layout is one codec descriptor
 * (services/common/codec.ts) that encodes, decodes and sizes it. Integers little-endian; every
 * value starts with a format version byte; money in micro-units (u64), octets as u64, seconds u32.
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
import { ascii, concatBytes, Writer } from "../common/bytes.ts";
import { d, decode, type Descriptor, encode } from "../common/codec.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, type RawDeviceId } from "../common/envelope.ts";
import { type RejectionName, rejectionName } from "../common/errors.ts";
import { type DeviceIdInput, rawDeviceId } from "../common/outcome.ts";
import type { Result } from "../common/result.ts";
import type { ReplayWindow } from "../common/window.ts";
import { ACTION_ID_BYTES, type ActionRecord, rawActionId, ROUTER_NAME_BYTES_MAX, WifiActionType, WifiDeviceKind } from "./payload.ts";

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
export const sessionKey = (router: DeviceIdInput, session: Uint8Array | string): Uint8Array =>
  concatBytes([SESSION_PREFIX, rawDeviceId(router), rawSessionId(session)]);
export const closedSlotKey = (slot: number): Uint8Array => concatBytes([CLOSED_PREFIX, u32Bytes(slot)]);
export const actionsSlotKey = (slot: number): Uint8Array => concatBytes([ACTIONS_PREFIX, u32Bytes(slot)]);
export const actionKey = (actionId: Uint8Array | string): Uint8Array => concatBytes([ACTION_PREFIX, rawActionId(actionId)]);
export const cooldownEntryKey = (n: bigint): Uint8Array => concatBytes([COOLDOWN_PREFIX, u64Bytes(n)]);
/** The ledger entries accumulated in the block of `slot`. */
export const ledgerKey = (slot: number): Uint8Array => concatBytes([LEDGER_PREFIX, u32Bytes(slot)]);

const raw16 = d.map(
  d.bytes(DEVICE_ID_BYTES),
  (b) => b as RawDeviceId,
  (id: RawDeviceId) => id as Uint8Array,
  "id16",
);
const hash32 = d.bytes(32);

/** A stored value: format version byte, then `desc`. */
function stored<T>(name: string, desc: Descriptor<T>): Descriptor<T> {
  return d.versioned(STORAGE_FORMAT_VERSION, desc, name);
}

function decoder<T>(desc: Descriptor<T>): (bytes: Uint8Array) => Result<T> {
  return (bytes) => decode(desc, bytes);
}

function encoder<T>(desc: Descriptor<T>): (value: T) => Uint8Array {
  return (value) => encode(desc, value);
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

/** The share of billed amounts kept as protocol fee: 50,000 ppm = 5 %, floor. */
export const PROTOCOL_FEE_PPM = 50_000;
/** Slots from deregistration to stake return: 600 slots = 1 hour at 6 s, time for a dispute of the router's last usage to be seen. */
export const STAKE_COOLDOWN_SLOTS = 600;
export const DEFAULT_CONFIG: WifiConfig = { protocolFeePpm: PROTOCOL_FEE_PPM, stakeCooldownSlots: STAKE_COOLDOWN_SLOTS };
export const PPM = 1_000_000;

/** u8 version ⌢ u32 protocolFeePpm (≤ 10^6) ⌢ u32 stakeCooldownSlots. */
export const configDesc: Descriptor<WifiConfig> = stored(
  "wifi config",
  d.checked(d.object({ protocolFeePpm: d.u32, stakeCooldownSlots: d.u32 }), (c) => (c.protocolFeePpm > PPM ? `fee of ${c.protocolFeePpm} ppm > ${PPM}` : null)),
);
export const encodeConfig = encoder(configDesc);
export const decodeConfig = decoder(configDesc);

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

/** u8 version ⌢ publicKey 32 ⌢ u8 kind ⌢ u32 registeredSlot ⌢ u8 has-seq ⌢ u64 highestSeq (0 when none) ⌢ u64 bitmap ⌢ u64 envelopesSettled. */
export const deviceRecordDesc: Descriptor<DeviceRecord> = stored(
  "device record",
  d.map(
    d.object({
      publicKey: d.bytes(ED25519_PUBLIC_KEY_BYTES),
      kind: d.oneOf([WifiDeviceKind.client, WifiDeviceKind.router]),
      registeredSlot: d.u32,
      highestSeq: d.optionalFixed(d.u64, 0n),
      bitmap: d.u64,
      envelopesSettled: d.u64,
    }),
    (x) => ({
      publicKey: x.publicKey,
      kind: x.kind,
      registeredSlot: x.registeredSlot,
      window: { highestSeq: x.highestSeq, bitmap: x.bitmap },
      envelopesSettled: x.envelopesSettled,
    }),
    (r) => ({
      publicKey: r.publicKey,
      kind: r.kind,
      registeredSlot: r.registeredSlot,
      highestSeq: r.window.highestSeq,
      bitmap: r.window.bitmap,
      envelopesSettled: r.envelopesSettled,
    }),
  ),
);
export const DEVICE_RECORD_BYTES = deviceRecordDesc.fixedBytes!;
export const encodeDeviceRecord = encoder(deviceRecordDesc);
export const decodeDeviceRecord = decoder(deviceRecordDesc);

/** A device record as the gateway's registry reads it (gateway/ingest-service.ts RegisteredDevice), or null if it does not decode. */
export function decodeDevice(
  value: Uint8Array,
): { readonly publicKey: Uint8Array; readonly kind: WifiDeviceKindName; readonly settledHighestSeq: number } | null {
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

/** u8 version ⌢ u64 balanceMicros ⌢ u64 lockedMicros ⌢ u32 registeredSlot. */
export const accountDesc: Descriptor<AccountRecord> = stored("account", d.object({ balanceMicros: d.u64, lockedMicros: d.u64, registeredSlot: d.u32 }));
export const encodeAccount = encoder(accountDesc);
export const decodeAccount = decoder(accountDesc);

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

/**
 * u8 version ⌢ owner 16 ⌢ u64 priceMicrosPerGb ⌢ u64 stakeMicros ⌢ u64 capacityBitsPerSecond ⌢ u8
 * attested ⌢ u8 status ⌢ u32 registeredSlot ⌢ u32 deregisteredSlot ⌢ u32 openSessions ⌢ u64
 * sessionsStarted ⌢ u64 billedOctets ⌢ u64 billedMicros ⌢ u64 earnedMicros ⌢ u64 disputedOctets ⌢
 * u8 |name| ⌢ name (UTF-8).
 */
export const routerDesc: Descriptor<RouterRecord> = stored(
  "router record",
  d.object({
    owner: raw16,
    priceMicrosPerGb: d.u64,
    stakeMicros: d.u64,
    capacityBitsPerSecond: d.u64,
    attested: d.bool,
    status: d.enumeration(ROUTER_STATUSES),
    registeredSlot: d.u32,
    deregisteredSlot: d.u32,
    openSessions: d.u32,
    sessionsStarted: d.u64,
    billedOctets: d.u64,
    billedMicros: d.u64,
    earnedMicros: d.u64,
    disputedOctets: d.u64,
    name: d.text("u8", ROUTER_NAME_BYTES_MAX),
  }),
);
export const encodeRouter = encoder(routerDesc);
export const decodeRouter = decoder(routerDesc);

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
  /** Micros billed for the session so far (≤ charged(input + output)): less when the balance ran out or usage was disputed. */
  readonly billedMicros: bigint;
  readonly stopped: boolean;
  /** The client's balance could not pay for all of it at some update (the router was told to disconnect). */
  readonly exhausted: boolean;
  /** Acct-Terminate-Cause of the Stop (RFC 2866 §5.10); 0 while open. */
  readonly terminateCause: number;
  readonly startSlot: number;
  readonly lastSlot: number;
}

const SESSION_STOPPED = 1;
const SESSION_EXHAUSTED = 2;

/**
 * u8 version ⌢ client 16 ⌢ u64 priceMicrosPerGb ⌢ lastVoucherHash 32 ⌢ u64 inputOctets ⌢ u64
 * outputOctets ⌢ u32 seconds ⌢ u64 billedMicros ⌢ u8 flags (1 stopped, 2 exhausted) ⌢ u32
 * terminateCause ⌢ u32 startSlot ⌢ u32 lastSlot.
 */
export const sessionDesc: Descriptor<SessionRecord> = stored(
  "session record",
  d.map(
    d.object({
      client: raw16,
      priceMicrosPerGb: d.u64,
      lastVoucherHash: hash32,
      inputOctets: d.u64,
      outputOctets: d.u64,
      seconds: d.u32,
      billedMicros: d.u64,
      flags: d.checked(d.u8, (f) => (f > (SESSION_STOPPED | SESSION_EXHAUSTED) ? `session flags ${f}` : null)),
      terminateCause: d.u32,
      startSlot: d.u32,
      lastSlot: d.u32,
    }),
    ({ flags, ...x }) => ({ ...x, stopped: (flags & SESSION_STOPPED) !== 0, exhausted: (flags & SESSION_EXHAUSTED) !== 0 }),
    ({ stopped, exhausted, ...x }) => ({ ...x, flags: (stopped ? SESSION_STOPPED : 0) | (exhausted ? SESSION_EXHAUSTED : 0) }),
  ),
);
export const SESSION_RECORD_BYTES = sessionDesc.fixedBytes!;
export const encodeSession = encoder(sessionDesc);
export const decodeSession = decoder(sessionDesc);

// ---------------------------------------------------------------------------------------------
// Rings and queues.

/** u8 version ⌢ u64: how many entries a ring ("closed", "actions") has taken. */
export const countDesc: Descriptor<bigint> = stored("ring counter", d.u64);

export interface ClosedEntry {
  readonly router: RawDeviceId;
  readonly session: Uint8Array;
}

/** A stopped session in the "closed" ring: u8 version ⌢ router 16 ⌢ session 16. */
export const closedEntryDesc: Descriptor<ClosedEntry> = stored("closed-session entry", d.object({ router: raw16, session: d.bytes(SESSION_ID_BYTES) }));

/** An action id in the "actions" ring: u8 version ⌢ actionId 16. */
export const actionRingEntryDesc: Descriptor<Uint8Array> = stored("action ring entry", d.bytes(ACTION_ID_BYTES));

/** The "cooldown" queue: entries head … tail − 1 are waiting. */
export interface CooldownQueue {
  readonly head: bigint;
  readonly tail: bigint;
}

/** u8 version ⌢ u64 head ⌢ u64 tail. */
export const cooldownQueueDesc: Descriptor<CooldownQueue> = stored(
  "cool-down queue",
  d.checked(d.object({ head: d.u64, tail: d.u64 }), (q) => (q.head > q.tail ? `head ${q.head} past tail ${q.tail}` : null)),
);
export const EMPTY_COOLDOWN_QUEUE: CooldownQueue = { head: 0n, tail: 0n };

export interface CooldownEntry {
  readonly router: RawDeviceId;
  /** The first slot at which the stake returns. */
  readonly dueSlot: number;
}

/** u8 version ⌢ router 16 ⌢ u32 dueSlot. */
export const cooldownEntryDesc: Descriptor<CooldownEntry> = stored("cool-down entry", d.object({ router: raw16, dueSlot: d.u32 }));

/** u8 version ⌢ u32: the lowest slot whose ledger entries may still be in state. */
export const progressDesc: Descriptor<number> = stored("progress", d.u32);

// ---------------------------------------------------------------------------------------------
// Actions.

/** An applied or refused action: what it was, when, and its verdict. */
export interface StoredAction {
  readonly action: ActionRecord;
  readonly slot: number;
  /** The refusal's code byte (services/common/errors.ts), or 0 when applied. */
  readonly code: number;
}

/** u8 version ⌢ actionId 16 ⌢ u8 type ⌢ target 16 ⌢ u64 value ⌢ u32 slot ⌢ u8 code (0 applied). */
export const storedActionDesc: Descriptor<StoredAction> = stored(
  "stored action",
  d.map(
    d.object({
      actionId: d.bytes(ACTION_ID_BYTES),
      type: d.oneOf([WifiActionType.topup, WifiActionType.setPrice, WifiActionType.deregister]),
      target: raw16,
      value: d.u64,
      slot: d.u32,
      code: d.u8,
    }),
    ({ slot, code, ...action }) => ({ action, slot, code }),
    ({ action, slot, code }) => ({ ...action, slot, code }),
  ),
);
export const encodeStoredAction = encoder(storedActionDesc);
export const decodeStoredAction = decoder(storedActionDesc);

/**
 * An action's verdict as the gateway reports it (`GET /v1/wifi/actions/:id`) from the value under
 * actionKey(id): applied, or refused with its code; null if the value does not decode. No value
 * means the action was not accumulated (pending), or was evicted from the ring long ago.
 */
export function decodeActionVerdict(
  value: Uint8Array,
): { readonly status: "applied" | "refused"; readonly code: RejectionName | null; readonly slot: number } | null {
  const s = decodeStoredAction(value);
  if (!s.ok) return null;
  if (s.value.code === 0) return { status: "applied", code: null, slot: s.value.slot };
  return { status: "refused", code: rejectionName(s.value.code), slot: s.value.slot };
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

/** u8 reason ⌢ session 16 ⌢ router 16 ⌢ client 16 ⌢ u64 in ⌢ u64 out ⌢ u64 price ⌢ u64 amount ⌢ u64 fee ⌢ u8 attested. */
export const ledgerEntryDesc: Descriptor<LedgerEntry> = d.object(
  {
    reason: d.enumeration(LEDGER_REASONS),
    session: d.bytes(SESSION_ID_BYTES),
    router: raw16,
    client: raw16,
    inputOctets: d.u64,
    outputOctets: d.u64,
    priceMicrosPerGb: d.u64,
    amountMicros: d.u64,
    feeMicros: d.u64,
    attested: d.bool,
  },
  "ledger entry",
);
export const LEDGER_ENTRY_BYTES = ledgerEntryDesc.fixedBytes!;
/** Entries one slot's value may hold when read: far more than a block's gas lets accumulate write (a decode bound, not a policy). */
export const LEDGER_ENTRIES_PER_SLOT_MAX = 1_000_000;
/** u8 version ⌢ u32 n ⌢ n × entry. */
export const ledgerDesc: Descriptor<LedgerEntry[]> = stored("ledger entries", d.array(ledgerEntryDesc, "u32", LEDGER_ENTRIES_PER_SLOT_MAX));
export const encodeLedgerEntries = encoder(ledgerDesc);
export const decodeLedgerEntries = decoder(ledgerDesc);

// ---------------------------------------------------------------------------------------------
// Fees and counters.

/** u8 version ⌢ u64 micros. */
export const microsDesc: Descriptor<bigint> = stored("amount", d.u64);
export const encodeMicros = encoder(microsDesc);
export const decodeMicros = decoder(microsDesc);
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

/** u8 version ⌢ the counters as u64, in WifiStats's order ⌢ u8 32 ⌢ 32 × u64 refusals by code. */
export const statsDesc: Descriptor<WifiStats> = stored(
  "stats",
  d.object({
    accountsRegistered: d.u64,
    routersRegistered: d.u64,
    routersDeregistered: d.u64,
    stakesReturned: d.u64,
    envelopesSettled: d.u64,
    envelopesRejected: d.u64,
    registrationsRejected: d.u64,
    actionsApplied: d.u64,
    actionsRejected: d.u64,
    sessionsStarted: d.u64,
    sessionsStopped: d.u64,
    billedOctets: d.u64,
    billedMicros: d.u64,
    disputedOctets: d.u64,
    exhaustedUpdates: d.u64,
    toppedUpMicros: d.u64,
    ledgerEntries: d.u64,
    refusalsByCode: d.checked(d.array(d.u64, "u8", REFUSAL_CODE_SLOTS), (a) =>
      a.length === REFUSAL_CODE_SLOTS ? null : `${a.length} refusal counters, not ${REFUSAL_CODE_SLOTS}`,
    ),
  }),
);

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
export const encodeStats = encoder(statsDesc);
export const decodeStats = decoder(statsDesc);
