/**
 * What the Wi-Fi routes (routes.ts) ask of the gateway: registrations on the wifi-billing
 * service, its state read back, and operator actions. The views are JSON (ids as lowercase hex,
 * money as decimal strings of micro-units).
 */
import type { RegistrationView } from "../registration.ts";

/**
 * A router's status: its registration pending or failed (the gateway's), else the service's:
 * active, deregistered (its usage refused, its stake cooling down), stake-returned.
 */
export const ROUTER_STATUSES = ["pending", "failed", "active", "deregistered", "stake-returned"] as const;
export type RouterStatus = (typeof ROUTER_STATUSES)[number];

export const ACTION_KINDS = ["topup", "set-price", "deregister"] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export const ACTION_STATUSES = ["pending", "applied", "refused"] as const;
export type ActionStatus = (typeof ACTION_STATUSES)[number];

/** A router's name: UTF-8, at most this many bytes (the service stores it so). */
export const ROUTER_NAME_BYTES_MAX = 32;

export interface WifiAccountView {
  readonly account: string;
  readonly balanceMicros: string;
  readonly lockedMicros: string;
  readonly registered: boolean;
  readonly slot?: number;
}

export interface WifiRouterView {
  readonly router: string;
  readonly owner: string;
  readonly name: string;
  readonly priceMicrosPerGb: string;
  readonly stakeMicros: string;
  readonly capacityBitsPerSecond: string;
  readonly attested: boolean;
  readonly status: RouterStatus;
  readonly registeredSlot?: number | null;
  readonly deregisteredSlot?: number | null;
  readonly stakeReturnSlot?: number | null;
  readonly usage: WifiRouterUsage;
  readonly slot?: number;
  readonly code?: string;
  readonly detail?: string;
}

/** A router's totals as the service keeps them (decimal strings). */
export interface WifiRouterUsage {
  readonly sessionsStarted: string;
  readonly openSessions: number;
  /** Octets (input + output) billed to clients, what they paid for them (fees included), and what the owner got. */
  readonly billedOctets: string;
  readonly billedMicros: string;
  readonly earnedMicros: string;
  /** Router-attested octets not billed: the owner did not choose attested billing. */
  readonly disputedOctets: string;
}

/**
 * The service's counters at the best block (services/wifi-billing/types.ts decodeStats, and the
 * fees collected, decodeFees), decimal strings: sessions started and stopped, octets (input +
 * output) billed and what clients paid for them (fees included), the protocol's fees, router-attested
 * octets disputed (not billed), usage updates a balance could not pay in full, envelopes refused,
 * and every refusal (of envelopes, registrations and operator actions) by its registry code.
 */
export interface WifiStatsView {
  readonly slot: number;
  readonly sessionsStarted: string;
  readonly sessionsStopped: string;
  readonly billedOctets: string;
  readonly billedMicros: string;
  readonly feesMicros: string;
  readonly disputedOctets: string;
  readonly exhaustedUpdates: string;
  readonly envelopesRejected: string;
  /** Codes never refused are left out: `{ "JG_ERR_WIFI_VOUCHER_SIGNATURE": "3" }`. */
  readonly refusedByCode: Readonly<Record<string, string>>;
}

export interface ActionView {
  readonly action: string;
  readonly kind: ActionKind;
  readonly status: ActionStatus;
  readonly packageHash?: string;
  readonly slot?: number;
  readonly code?: string;
  readonly detail?: string;
}

/** A router onboarding request, checked by the route: amounts in range, name within its bytes. */
export interface RouterRequest {
  /** null: the gateway makes the key (with `radius`). */
  readonly publicKey: Uint8Array | null;
  readonly owner: string;
  readonly name: string;
  readonly priceMicrosPerGb: bigint;
  readonly stakeMicros: bigint;
  readonly capacityBitsPerSecond: bigint;
  readonly attested: boolean;
  readonly radius: boolean;
}

/** The bounds the routes check amounts against (the service's, from its types.ts). */
export interface WifiLimits {
  readonly priceMicrosPerGbMax: bigint;
  readonly topupMicrosMax: bigint;
  readonly stakeMicrosMax: bigint;
  readonly capacityBitsPerSecondMax: bigint;
  readonly capacityBitsPerSecondDefault: bigint;
}

export interface WifiBackend {
  readonly limits: WifiLimits;
  /** Throws RegistrationError (queue full) or a JamgateError. */
  registerAccount(publicKey: Uint8Array): Promise<RegistrationView>;
  /** Throws JG_ERR_WIFI_ACCOUNT for an owner not on the service, JG_ERR_DEVICE_EXISTS for a router already registered. */
  registerRouter(request: RouterRequest): Promise<{ readonly view: RegistrationView; readonly radius?: { readonly sharedSecret: string } }>;
  /** null: neither on the service nor pending here. */
  account(id: string): Promise<WifiAccountView | null>;
  router(id: string): Promise<WifiRouterView | null>;
  routers(page: { readonly after?: string; readonly limit: number }): Promise<{ readonly items: readonly WifiRouterView[]; readonly next: string | null }>;
  /** The service's counters and fees, both read at one block (zeros before the service has counted anything). */
  stats(): Promise<WifiStatsView>;
  /** Each throws JG_ERR_WIFI_ROUTER / JG_ERR_WIFI_ACCOUNT for an unknown id, JG_ERR_QUEUE_FULL past the actions in flight. */
  setPrice(router: string, priceMicrosPerGb: bigint): Promise<ActionView>;
  deregister(router: string): Promise<ActionView>;
  topup(account: string, amountMicros: bigint): Promise<ActionView>;
  /** An action by id: from the gateway's memory while it follows it, else from the service's state (a verdict stays there for ACTIONS_KEPT actions); null when neither knows it. */
  action(id: string): ActionView | null | Promise<ActionView | null>;
}
