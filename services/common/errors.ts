/**
 * Why a record was refused, as one byte in refine outputs and outcomes. The names are the
 * registry's codes (docs/errors.md), so the gateway can forward them to the device unchanged
 * on `devices/{id}/down/errors`. Refusals are values, never exceptions (house style, errors 2);
 * malformed payloads are the gateway's bugs and make refine throw instead.
 */
export const REJECTION_CODES = {
  /** refine: the signature does not verify with the record's public key. */
  JG_ERR_ENVELOPE_SIGNATURE: 1,
  /** refine: the envelope's device id is not the first 16 bytes of H(public key). */
  JG_ERR_ENVELOPE_DEVICE: 2,
  /** accumulate: (device, seq) was settled already, or is older than the replay window. */
  JG_ERR_ENVELOPE_REPLAY: 3,
  /** accumulate: no registration for the device. */
  JG_ERR_DEVICE_UNREGISTERED: 4,
  /** accumulate: a registration for a device that is registered already. */
  JG_ERR_DEVICE_EXISTS: 5,
  /** energy-trading: the envelope's kind is not one the service settles, or not the one its device is registered for. */
  JG_ERR_ENERGY_KIND: 6,
  /** energy-trading refine: the body is not the kind's CBOR (integers only), or its readings do not increase in time. */
  JG_ERR_ENERGY_BODY: 7,
  /** energy-trading: a meter's counters go backwards (within the package or against its last settled reading). */
  JG_ERR_ENERGY_COUNTER: 8,
  /** energy-trading accumulate: an order for an interval already cleared (late readings roll forward instead). */
  JG_ERR_ENERGY_INTERVAL_CLOSED: 9,
  /** energy-trading accumulate: readings ahead of the market clock, or an order beyond the order horizon. */
  JG_ERR_ENERGY_INTERVAL_FAR: 10,
  /** energy-trading refine: an order with no or absurd energy or price, too many lines, or both sides at once. */
  JG_ERR_ENERGY_ORDER: 11,
  /** energy-trading accumulate: the item was built for another market clock than the service's (a misconfigured gateway). */
  JG_ERR_ENERGY_CLOCK: 12,
  /** energy-trading accumulate: an agent's registration names a household that is not a registered meter. */
  JG_ERR_ENERGY_HOUSEHOLD: 13,
  /** energy-trading accumulate: the market has as many households as it clears within its gas (HOUSEHOLDS_MAX). */
  JG_ERR_ENERGY_FULL: 14,
  /** energy-trading: a meter's energy between two readings is more than METER_POWER_W_MAX delivers in the time between them. */
  JG_ERR_ENERGY_POWER: 15,
  /** wifi-billing: a router.usage body is not the usage CBOR map (session, client, status, counters, seconds, voucher), or a field is out of range; or a router sent an envelope of another kind */
  JG_ERR_WIFI_BODY: 16,
  /** wifi-billing: the client's voucher signature does not verify over the update's router, session, cumulative octets, seconds and previous voucher hash */
  JG_ERR_WIFI_VOUCHER_SIGNATURE: 17,
  /** wifi-billing: the voucher's previous-voucher hash is not the session's last voucher: a replayed, reordered or forked voucher; nothing of it is billed */
  JG_ERR_WIFI_VOUCHER_CHAIN: 18,
  /** wifi-billing: a session's octet or second counters go backwards, or wrap wrongly (octets falling without Acct-Gigawords rising) */
  JG_ERR_WIFI_COUNTER: 19,
  /** wifi-billing: a session's octets exceed the router's stated link capacity times the session's seconds (plus one second: Acct-Session-Time is truncated) */
  JG_ERR_WIFI_CAPACITY: 20,
  /** wifi-billing: usage or a change for a router that is not registered, or is deregistered */
  JG_ERR_WIFI_ROUTER: 21,
  /** wifi-billing: usage names a client account that is not registered, or a voucher key that is not the account's */
  JG_ERR_WIFI_CLIENT: 22,
  /** wifi-billing: a session update out of its life cycle: an interim or stop for no open session, a start for one already open or beyond the router's open-session bound, or any update for a stopped session */
  JG_ERR_WIFI_SESSION: 23,
  /** wifi-billing: a top-up, price, stake or capacity of zero, negative or past its maximum */
  JG_ERR_WIFI_AMOUNT: 24,
  /** wifi-billing: the owner account's balance is below the router's stake */
  JG_ERR_WIFI_STAKE: 25,
  /** wifi-billing: a top-up, balance or owner for an account that is not registered on the wifi-billing service */
  JG_ERR_WIFI_ACCOUNT: 26,
  /** wifi-billing: an operator action (top-up, price change, deregistration) already applied */
  JG_ERR_WIFI_REPLAY: 27,
} as const;

export type RejectionName = keyof typeof REJECTION_CODES;
export type RejectionCode = (typeof REJECTION_CODES)[RejectionName];

const NAMES = new Map<number, RejectionName>(Object.entries(REJECTION_CODES).map(([name, code]) => [code, name as RejectionName]));

export function isRejectionCode(code: number): code is RejectionCode {
  return NAMES.has(code);
}

/** The registry name of a code byte, or null for a byte that is not a code. */
export function rejectionName(code: number): RejectionName | null {
  return NAMES.get(code) ?? null;
}
