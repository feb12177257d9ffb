/**
 * Work-item payloads of the wifi-billing service, gateway → refine. Binary, little-endian, one
 * canonical form each; encoders (for the gateway) beside the decoders (for refine). Decoders never
 * throw; refine turns their errors into a failed item, because a malformed payload is a gateway
 * bug, not a device's fault. Values the gateway may get wrong from an operator (a price of zero, a
 * stake past the owner's balance) are encoded as given and refused by accumulate with their code,
 * so they are counted like any bad input; `routerTermsProblem` and `wifiActionProblem` let the
 * gateway answer them before submitting.
 *
 * | byte 0 | rest |
 * |---|---|
 * | 0 envelopes | envelope records (services/common/envelope.ts): the routers' `router.usage` envelopes |
 * | 1 registrations | u32 n ⌢ n × (publicKey 32 ⌢ u8 kind ⌢ [router terms when kind = router]) |
 * | 2 actions | u32 n ⌢ n × (actionId 16 ⌢ u8 type ⌢ target 16 ⌢ u64 value) |
 *
 * kind: 0 client (an account), 1 router. Router terms: owner 16 ⌢ u64 priceMicrosPerGb ⌢ u64
 * stakeMicros ⌢ u64 capacityBitsPerSecond ⌢ u8 attested (0|1) ⌢ u8 |name| ⌢ name (UTF-8).
 * Action type: 0 topup (target an account, value amountMicros), 1 setPrice (target a router, value
 * priceMicrosPerGb), 2 deregister (target a router, value 0).
 */
import { fail, fromLowerHex, ok, Reader, type Result, U64_MAX, Writer } from "../common/bytes.ts";
import {
  DEVICE_ID_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  type EnvelopeItemBounds,
  type EnvelopeRecord,
  type EnvelopeRecordView,
  envelopeRecordsBytes,
  ItemKind as CommonItemKind,
  type RawDeviceId,
  readEnvelopeRecords,
  sortEnvelopeRecords,
  W_B,
  writeEnvelopeRecords,
} from "../common/envelope.ts";
import type { RejectionName } from "../common/errors.ts";
import { type DeviceIdInput, rawDeviceId } from "../common/outcome.ts";

/** The name the node derives the code hash from: H("jamgate-native:wifi-billing"). */
export const WIFI_SERVICE_NAME = "wifi-billing";

/** The first byte of a wifi-billing work item: envelopes and registrations as every ingest service, plus operator actions. */
export const WifiItemKind = { envelopes: CommonItemKind.envelopes, registrations: CommonItemKind.registrations, actions: 2 } as const;
export type WifiItemKind = (typeof WifiItemKind)[keyof typeof WifiItemKind];

/** The envelope kind routers send usage in (devices/envelope.ts ENVELOPE_KINDS). */
export const ROUTER_USAGE_KIND = "router.usage";

/** Largest item payload: W_B less 4 KiB for the package's other fields. */
export const ITEM_PAYLOAD_BYTES_MAX = W_B - 4_096;

/**
 * Usage envelopes per item: refine keeps at most one session delta per envelope (the worst case:
 * every envelope of another session), ≤ SESSION_DELTA_BYTES_MAX = 155 bytes; 300 × 155 = 46,500
 * bytes, which with the item's and 64 routers' headers (1,315 bytes) stays inside W_R = 49,152
 * (refine.test.ts checks the worst case). Each envelope costs refine two Ed25519 verifications
 * (router, voucher).
 */
export const ENVELOPES_PER_ITEM_MAX = 300;
/** Routers per envelopes item: each adds a 20-byte header to refine's output (see ENVELOPES_PER_ITEM_MAX). */
export const ENVELOPE_DEVICES_PER_ITEM_MAX = 64;
/** Registrations per item: refine writes at most 16 + 32 + 1 + 74 = 123 bytes per registration (a router with a 32-byte name); 256 × 123 = 31.5 KB < W_R. */
export const REGISTRATIONS_PER_ITEM_MAX = 256;
/** Operator actions per item: 41 output bytes each; 256 × 41 = 10.5 KB < W_R, and an operator's HTTP requests come far slower. */
export const ACTIONS_PER_ITEM_MAX = 256;

/** A router's name: a label for lists and the dashboard, not an identity. */
export const ROUTER_NAME_BYTES_MAX = 32;
/** GB = 10^9 bytes: prices are per decimal gigabyte, as operators quote them (Helium Mobile's $0.50/GB). */
export const OCTETS_PER_GB = 1_000_000_000n;
/** Highest price: 1,000 units per GB (10^9 micros), far above any retail Wi-Fi price; keeps octets × price inside u128 arithmetic that never matters for bigint but bounds a typo's damage. */
export const PRICE_MICROS_PER_GB_MAX = 1_000_000_000n;
/** Highest single top-up: 10^12 micros (a million units); a larger one is an operator's typo, refused rather than credited. */
export const TOPUP_MICROS_MAX = 1_000_000_000_000n;
/** Highest stake: as a top-up (the owner's balance funds it). */
export const STAKE_MICROS_MAX = TOPUP_MICROS_MAX;
/** Highest stated link capacity: 100 Gbit/s, beyond any Wi-Fi or uplink a hotspot has; the capacity check is only as tight as what the owner states. */
export const CAPACITY_BITS_PER_SECOND_MAX = 100_000_000_000n;
/** Capacity when the owner states none: 1 Gbit/s. */
export const CAPACITY_BITS_PER_SECOND_DEFAULT = 1_000_000_000n;

const BOUNDS: EnvelopeItemBounds = { envelopesMax: ENVELOPES_PER_ITEM_MAX, devicesMax: ENVELOPE_DEVICES_PER_ITEM_MAX, payloadBytesMax: ITEM_PAYLOAD_BYTES_MAX };

// ---------------------------------------------------------------------------------------------
// Envelopes item.

/**
 * The envelopes item for these records, sorted by (device id, seq). Throws (a gateway bug) on a
 * malformed signed layout, a repeated (device, seq), or a bound exceeded. Written into the start
 * of `into` when it has room (a view of it is returned), else a new buffer.
 */
export function wifiEnvelopesPayload(records: readonly EnvelopeRecord[], into?: Uint8Array): Uint8Array {
  const sorted = sortEnvelopeRecords(records, BOUNDS, 1);
  const w = new Writer(1 + envelopeRecordsBytes(sorted), into).u8(WifiItemKind.envelopes);
  writeEnvelopeRecords(w, sorted);
  return w.finish();
}

/** Decodes an envelopes item (kind byte included) and checks its order and bounds; never throws. */
export function decodeEnvelopesItem(payload: Uint8Array): Result<EnvelopeRecordView[]> {
  if (payload.length > ITEM_PAYLOAD_BYTES_MAX) return fail(`payload of ${payload.length} bytes > ITEM_PAYLOAD_BYTES_MAX = ${ITEM_PAYLOAD_BYTES_MAX}`);
  const r = new Reader(payload);
  if (r.u8() !== WifiItemKind.envelopes) return fail("not an envelopes item");
  const records = readEnvelopeRecords(r, BOUNDS);
  if (!records.ok) return records;
  if (!r.done) return fail(`${r.remaining} bytes after the last envelope`);
  return ok(records.value);
}

// ---------------------------------------------------------------------------------------------
// Registrations item.

/** What a device is to the service: a client's (or owner's) account, or a router. */
export const WifiDeviceKind = { client: 0, router: 1 } as const;
export type WifiDeviceKind = (typeof WifiDeviceKind)[keyof typeof WifiDeviceKind];
export type WifiDeviceKindName = keyof typeof WifiDeviceKind;

/** What a router's owner states at onboarding (docs/wifi.md, `router onboard`). */
export interface RouterTerms {
  /** The owner's account: its stake comes from this account's balance, its earnings go to it. */
  readonly owner: DeviceIdInput;
  readonly priceMicrosPerGb: bigint;
  readonly stakeMicros: bigint;
  /** Default CAPACITY_BITS_PER_SECOND_DEFAULT. */
  readonly capacityBitsPerSecond?: bigint;
  /** The owner accepts router-attested billing (usage without a client voucher); default false. */
  readonly attested?: boolean;
  /** UTF-8, at most ROUTER_NAME_BYTES_MAX bytes. */
  readonly name: string;
}

/** An account (a Wi-Fi client or a router's owner): a key pair; its id is the device id of the key. */
export interface AccountRegistration {
  readonly publicKey: Uint8Array;
  readonly kind: "client";
}

export interface RouterRegistration {
  readonly publicKey: Uint8Array;
  readonly kind: "router";
  readonly router: RouterTerms;
}

export type WifiRegistration = AccountRegistration | RouterRegistration;

/** Router terms as refine reads them (owner as raw bytes, defaults filled in). */
export interface RouterTermsRecord {
  readonly owner: RawDeviceId;
  readonly priceMicrosPerGb: bigint;
  readonly stakeMicros: bigint;
  readonly capacityBitsPerSecond: bigint;
  readonly attested: boolean;
  readonly name: string;
}

export interface RegistrationRecord {
  readonly publicKey: Uint8Array;
  readonly kind: WifiDeviceKind;
  /** A router's terms; null for an account. */
  readonly router: RouterTermsRecord | null;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Why these router terms would be refused, with the code accumulate would refuse them with
 * (JG_ERR_WIFI_AMOUNT for a price, stake or capacity of zero or past its maximum), or null. The
 * owner's existence and balance are state: only accumulate knows them (JG_ERR_WIFI_ACCOUNT,
 * JG_ERR_WIFI_STAKE).
 */
export function routerTermsProblem(terms: RouterTerms): { readonly code: RejectionName; readonly detail: string } | null {
  const amount = (detail: string) => ({ code: "JG_ERR_WIFI_AMOUNT" as const, detail });
  if (terms.priceMicrosPerGb < 1n || terms.priceMicrosPerGb > PRICE_MICROS_PER_GB_MAX)
    return amount(`price of ${terms.priceMicrosPerGb} micros per GB is not within 1 .. ${PRICE_MICROS_PER_GB_MAX}`);
  if (terms.stakeMicros < 1n || terms.stakeMicros > STAKE_MICROS_MAX)
    return amount(`stake of ${terms.stakeMicros} micros is not within 1 .. ${STAKE_MICROS_MAX}`);
  const capacity = terms.capacityBitsPerSecond ?? CAPACITY_BITS_PER_SECOND_DEFAULT;
  if (capacity < 1n || capacity > CAPACITY_BITS_PER_SECOND_MAX)
    return amount(`capacity of ${capacity} bit/s is not within 1 .. ${CAPACITY_BITS_PER_SECOND_MAX}`);
  const nameBytes = textEncoder.encode(terms.name).length;
  if (nameBytes > ROUTER_NAME_BYTES_MAX)
    return { code: "JG_ERR_WIFI_BODY", detail: `name of ${nameBytes} bytes > ROUTER_NAME_BYTES_MAX = ${ROUTER_NAME_BYTES_MAX}` };
  return null;
}

/** Bytes of one registration in the item. */
function registrationBytes(nameBytes: number | null): number {
  return ED25519_PUBLIC_KEY_BYTES + 1 + (nameBytes === null ? 0 : DEVICE_ID_BYTES + 8 + 8 + 8 + 1 + 1 + nameBytes);
}

/**
 * The registrations item for these records, in the order given. Throws on a caller bug: a key not
 * of 32 bytes, a kind other than router or client, a router without its terms, an owner that is
 * not a device id, an amount outside u64, a name past ROUTER_NAME_BYTES_MAX. Amounts of zero or
 * past their maximum are encoded, and refused by accumulate (JG_ERR_WIFI_AMOUNT).
 */
export function wifiRegistrationsPayload(
  records: readonly { readonly publicKey: Uint8Array; readonly kind: string; readonly router?: RouterTerms | undefined }[],
): Uint8Array {
  if (records.length > REGISTRATIONS_PER_ITEM_MAX)
    throw new Error(`${records.length} registrations > REGISTRATIONS_PER_ITEM_MAX = ${REGISTRATIONS_PER_ITEM_MAX}`);
  const names: (Uint8Array | null)[] = records.map((record, index) => {
    if (record.publicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new Error(`registration ${index}: public key of ${record.publicKey.length} bytes`);
    if (record.kind === "client") {
      if (record.router !== undefined) throw new Error(`registration ${index}: a client account has no router terms`);
      return null;
    }
    if (record.kind !== "router") throw new Error(`registration ${index}: wifi-billing takes routers and clients, not ${record.kind}`);
    if (record.router === undefined) throw new Error(`registration ${index}: a router needs its terms (owner, price, stake, name)`);
    const name = textEncoder.encode(record.router.name);
    if (name.length > ROUTER_NAME_BYTES_MAX)
      throw new Error(`registration ${index}: name of ${name.length} bytes > ROUTER_NAME_BYTES_MAX = ${ROUTER_NAME_BYTES_MAX}`);
    return name;
  });
  let size = 1 + 4;
  for (const name of names) size += registrationBytes(name === null ? null : name.length);
  const w = new Writer(size).u8(WifiItemKind.registrations).u32(records.length);
  for (const [index, record] of records.entries()) {
    const name = names[index]!;
    w.bytes(record.publicKey).u8(name === null ? WifiDeviceKind.client : WifiDeviceKind.router);
    if (name === null) continue;
    const terms = record.router!;
    w.bytes(rawDeviceId(terms.owner))
      .u64(terms.priceMicrosPerGb)
      .u64(terms.stakeMicros)
      .u64(terms.capacityBitsPerSecond ?? CAPACITY_BITS_PER_SECOND_DEFAULT)
      .u8(terms.attested === true ? 1 : 0)
      .u8(name.length)
      .bytes(name);
  }
  return w.finish();
}

/** Decodes a registrations item (kind byte included); never throws. */
export function decodeRegistrationsItem(payload: Uint8Array): Result<RegistrationRecord[]> {
  const r = new Reader(payload);
  if (r.u8() !== WifiItemKind.registrations) return fail("not a registrations item");
  const count = r.u32();
  if (r.failed) return fail("registrations item truncated");
  if (count > REGISTRATIONS_PER_ITEM_MAX) return fail(`${count} registrations > REGISTRATIONS_PER_ITEM_MAX = ${REGISTRATIONS_PER_ITEM_MAX}`);
  const records: RegistrationRecord[] = [];
  for (let i = 0; i < count; i++) {
    const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES);
    const kind = r.u8();
    if (r.failed) return fail(`registration ${i}: truncated`);
    if (kind === WifiDeviceKind.client) {
      records.push({ publicKey, kind, router: null });
      continue;
    }
    if (kind !== WifiDeviceKind.router) return fail(`registration ${i}: unknown kind ${kind}`);
    const owner = r.bytes(DEVICE_ID_BYTES) as RawDeviceId;
    const priceMicrosPerGb = r.u64();
    const stakeMicros = r.u64();
    const capacityBitsPerSecond = r.u64();
    const attested = r.u8();
    const nameLength = r.u8();
    const nameBytes = r.bytes(nameLength);
    if (r.failed) return fail(`registration ${i}: truncated`);
    if (attested > 1) return fail(`registration ${i}: attested flag ${attested}`);
    if (nameLength > ROUTER_NAME_BYTES_MAX) return fail(`registration ${i}: name of ${nameLength} bytes > ROUTER_NAME_BYTES_MAX = ${ROUTER_NAME_BYTES_MAX}`);
    let name: string;
    try {
      name = textDecoder.decode(nameBytes);
    } catch {
      return fail(`registration ${i}: name is not UTF-8`);
    }
    records.push({ publicKey, kind, router: { owner, priceMicrosPerGb, stakeMicros, capacityBitsPerSecond, attested: attested === 1, name } });
  }
  if (!r.done) return fail(`${r.remaining} bytes after the last registration`);
  return ok(records);
}

// ---------------------------------------------------------------------------------------------
// Actions item.

/** An operator action's type byte. */
export const WifiActionType = { topup: 0, setPrice: 1, deregister: 2 } as const;
export type WifiActionType = (typeof WifiActionType)[keyof typeof WifiActionType];
export type WifiActionTypeName = keyof typeof WifiActionType;

/** An action id: 16 bytes the gateway chooses (random); an action is applied once per id. */
export const ACTION_ID_BYTES = 16;

/**
 * An operator action (a work item kind of its own): credit an account, change a router's price
 * (sessions started after it pay it), or deregister a router (its stake returns to its owner after
 * STAKE_COOLDOWN_SLOTS). Each is applied once per `actionId` (JG_ERR_WIFI_REPLAY after).
 */
export type WifiAction =
  | { readonly actionId: Uint8Array | string; readonly type: "topup"; readonly account: DeviceIdInput; readonly amountMicros: bigint }
  | { readonly actionId: Uint8Array | string; readonly type: "setPrice"; readonly router: DeviceIdInput; readonly priceMicrosPerGb: bigint }
  | { readonly actionId: Uint8Array | string; readonly type: "deregister"; readonly router: DeviceIdInput };

/** An action as refine and accumulate read it. */
export interface ActionRecord {
  readonly actionId: Uint8Array;
  readonly type: WifiActionType;
  /** The account of a top-up, the router of a price change or deregistration. */
  readonly target: RawDeviceId;
  /** amountMicros of a top-up, priceMicrosPerGb of a price change, 0 for a deregistration. */
  readonly value: bigint;
}

export const ACTION_RECORD_BYTES = ACTION_ID_BYTES + 1 + DEVICE_ID_BYTES + 8;

/** 16 bytes of an action id given as bytes or 32 lowercase hex digits; throws otherwise. */
export function rawActionId(id: Uint8Array | string): Uint8Array {
  const bytes = typeof id === "string" ? fromLowerHex(id) : id;
  if (bytes === null || bytes.length !== ACTION_ID_BYTES) throw new Error(`not an action id: ${typeof id === "string" ? id : `${id.length} bytes`}`);
  return bytes;
}

export function actionRecordOf(action: WifiAction): ActionRecord {
  const actionId = rawActionId(action.actionId);
  switch (action.type) {
    case "topup":
      return { actionId, type: WifiActionType.topup, target: rawDeviceId(action.account), value: action.amountMicros };
    case "setPrice":
      return { actionId, type: WifiActionType.setPrice, target: rawDeviceId(action.router), value: action.priceMicrosPerGb };
    case "deregister":
      return { actionId, type: WifiActionType.deregister, target: rawDeviceId(action.router), value: 0n };
    default:
      throw new Error(`unknown action type ${String((action as { type: unknown }).type)}`);
  }
}

/**
 * Why accumulate would refuse this action whatever the state (JG_ERR_WIFI_AMOUNT: a top-up of
 * zero or past TOPUP_MICROS_MAX, a price of zero or past PRICE_MICROS_PER_GB_MAX), or null.
 */
export function wifiActionProblem(action: WifiAction): { readonly code: RejectionName; readonly detail: string } | null {
  if (action.type === "topup" && (action.amountMicros < 1n || action.amountMicros > TOPUP_MICROS_MAX)) {
    return { code: "JG_ERR_WIFI_AMOUNT", detail: `top-up of ${action.amountMicros} micros is not within 1 .. ${TOPUP_MICROS_MAX}` };
  }
  if (action.type === "setPrice" && (action.priceMicrosPerGb < 1n || action.priceMicrosPerGb > PRICE_MICROS_PER_GB_MAX)) {
    return { code: "JG_ERR_WIFI_AMOUNT", detail: `price of ${action.priceMicrosPerGb} micros per GB is not within 1 .. ${PRICE_MICROS_PER_GB_MAX}` };
  }
  return null;
}

/**
 * The actions item, in the order given (accumulate applies them in that order). Throws on a caller
 * bug: an id or target of the wrong length, an amount outside u64. Zero or too large amounts are
 * encoded and refused by accumulate (JG_ERR_WIFI_AMOUNT).
 */
export function wifiActionsPayload(actions: readonly WifiAction[]): Uint8Array {
  if (actions.length > ACTIONS_PER_ITEM_MAX) throw new Error(`${actions.length} actions > ACTIONS_PER_ITEM_MAX = ${ACTIONS_PER_ITEM_MAX}`);
  const w = new Writer(1 + 4 + ACTION_RECORD_BYTES * actions.length).u8(WifiItemKind.actions).u32(actions.length);
  for (const action of actions) {
    const record = actionRecordOf(action);
    if (record.value < 0n || record.value > U64_MAX) throw new RangeError(`action value ${record.value} is not a u64`);
    w.bytes(record.actionId).u8(record.type).bytes(record.target).u64(record.value);
  }
  return w.finish();
}

/** Reads `count` action records (after a count); the caller checks what follows. Never throws. */
export function readActionRecords(r: Reader, count: number): Result<ActionRecord[]> {
  if (count > ACTIONS_PER_ITEM_MAX) return fail(`${count} actions > ACTIONS_PER_ITEM_MAX = ${ACTIONS_PER_ITEM_MAX}`);
  const actions: ActionRecord[] = [];
  for (let i = 0; i < count; i++) {
    const actionId = r.bytes(ACTION_ID_BYTES).slice();
    const type = r.u8();
    const target = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
    const value = r.u64();
    if (r.failed) return fail(`action ${i}: truncated`);
    if (type !== WifiActionType.topup && type !== WifiActionType.setPrice && type !== WifiActionType.deregister)
      return fail(`action ${i}: unknown type ${type}`);
    if (type === WifiActionType.deregister && value !== 0n) return fail(`action ${i}: a deregistration carries no value`);
    actions.push({ actionId, type, target, value });
  }
  return ok(actions);
}

/** Decodes an actions item (kind byte included); never throws. */
export function decodeActionsItem(payload: Uint8Array): Result<ActionRecord[]> {
  const r = new Reader(payload);
  if (r.u8() !== WifiItemKind.actions) return fail("not an actions item");
  const count = r.u32();
  if (r.failed) return fail("actions item truncated");
  const actions = readActionRecords(r, count);
  if (!actions.ok) return actions;
  if (!r.done) return fail(`${r.remaining} bytes after the last action`);
  return actions;
}

/** The type name of an action type byte. */
export function actionTypeName(type: WifiActionType): WifiActionTypeName {
  return type === WifiActionType.topup ? "topup" : type === WifiActionType.setPrice ? "setPrice" : "deregister";
}
