/**
 * The Wi-Fi routes' backend on a real gateway: registrations through Registrations (batched work
 * items, like `POST /v1/devices`), operator actions through WifiActions (actions.ts), and every
 * read from the wifi-billing service's state at the best block (NodeApi.serviceValue, as the
 * energy adapter reads its market), so a balance or a price is never stale.
 *
 * The router list comes from the ledger index: it holds every device registered through this
 * gateway, by service and id (`devices-by-service`), so routers page by id with a cursor and a
 * bounded scan, as `/v1/devices` does; each router's terms and totals are then read from state.
 * The service's state has no index of its routers (its keys are hashed into the state trie, GP
 * D.2, and cannot be listed), and keeping a second list in the gateway would only copy the index.
 * A router registered through another gateway is not listed here (its id still reads).
 *
 * Before an action or a router registration is submitted, the ids it names are checked against
 * state: an unknown (or deregistered) router is 404 JG_ERR_WIFI_ROUTER, an unknown account 404
 * JG_ERR_WIFI_ACCOUNT, an owner whose balance is below the stake 402 JG_ERR_WIFI_STAKE, so the
 * operator learns at once; the service checks again when it applies them (the state may move in
 * between), and its verdict is the action's status.
 */
import { toHex } from "../../devices/envelope.ts";
import type { NodeApi } from "../../node/api.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import {
  accountKey,
  CAPACITY_BITS_PER_SECOND_DEFAULT,
  CAPACITY_BITS_PER_SECOND_MAX,
  configKey,
  decodeAccount,
  decodeConfig,
  decodeFees,
  decodeRouter,
  decodeStats,
  DEFAULT_CONFIG,
  feesKey,
  PRICE_MICROS_PER_GB_MAX,
  rejectionName,
  type RouterRecord,
  routerKey,
  STAKE_MICROS_MAX,
  statsKey,
  TOPUP_MICROS_MAX,
  WIFI_SERVICE_NAME,
} from "../../services/wifi-billing/types.ts";
import type { IngestService, RouterTerms } from "../ingest-service.ts";
import { createRadiusRouter, removeRadiusRouter } from "../radius/routers.ts";
import type { LedgerReader } from "../ledger/types.ts";
import type { Registrations, RegistrationView } from "../registration.ts";
import { type ActionRequest, WifiActions } from "./actions.ts";
import type { ActionView, RouterRequest, WifiAccountView, WifiBackend, WifiLimits, WifiRouterView, WifiStatsView } from "./backend.ts";

/** The service's bounds, as the routes check them. */
export const wifiLimits: WifiLimits = {
  priceMicrosPerGbMax: PRICE_MICROS_PER_GB_MAX,
  topupMicrosMax: TOPUP_MICROS_MAX,
  stakeMicrosMax: STAKE_MICROS_MAX,
  capacityBitsPerSecondMax: CAPACITY_BITS_PER_SECOND_MAX,
  capacityBitsPerSecondDefault: CAPACITY_BITS_PER_SECOND_DEFAULT,
};

/** Terms of routers whose registration is pending or failed, for their view until state has them: onboarding is rare; the oldest go first past this. */
const REQUESTED_KEPT_MAX = 10_000;

/** RADIUS routers' keys and secrets in the data dir (gateway/radius/routers.ts), given by the stack. */
export interface RadiusKeys {
  create(): { readonly routerId: string; readonly publicKey: Uint8Array; readonly sharedSecret: string };
  remove(routerId: string): void;
}

/** RADIUS routers' files in a data dir (`<data-dir>/radius/<router>.json`, 0600), where the RADIUS listener reads them per request. */
export function radiusKeysIn(dataDir: string): RadiusKeys {
  return { create: () => createRadiusRouter(dataDir), remove: (routerId) => void removeRadiusRouter(dataDir, routerId) };
}

export interface ServiceBackendDeps {
  readonly registrations: Registrations;
  readonly service: IngestService;
  readonly api: Pick<NodeApi, "bestBlock" | "serviceValue">;
  /** The ledger index: the router list (devices of the service, kind router). Absent: the list is empty. */
  readonly ledger?: Pick<LedgerReader, "devices"> | null;
  /** Absent: `radius: true` onboarding is refused (JG_ERR_HTTP_BODY). */
  readonly radius?: RadiusKeys | null;
  readonly actions?: WifiActions;
}

const text = (n: bigint) => n.toString();

export class ServiceBackend implements WifiBackend {
  readonly limits = wifiLimits;
  readonly actions: WifiActions;
  private readonly requested = new Map<string, RouterTerms>();

  constructor(private readonly deps: ServiceBackendDeps) {
    this.actions =
      deps.actions ??
      new WifiActions({
        api: deps.api,
        service: deps.service,
        submitItem: (item, onEnd) => deps.registrations.submitItem(item, onEnd),
      });
  }

  stop(): void {
    this.actions.stop();
  }

  private async read(key: Uint8Array): Promise<{ readonly value: Uint8Array | null; readonly slot: number }> {
    const best = await this.deps.api.bestBlock();
    return { value: await this.deps.api.serviceValue(best.headerHash, this.deps.service.serviceId, key), slot: best.slot };
  }

  private async accountRecord(id: string) {
    const { value, slot } = await this.read(accountKey(id));
    if (value === null) return null;
    const account = decodeAccount(value);
    if (!account.ok) throw new Error(`${WIFI_SERVICE_NAME} account ${id}: ${account.error}`);
    return { ...account.value, slot };
  }

  private async routerRecord(id: string): Promise<{ readonly router: RouterRecord; readonly slot: number } | null> {
    const { value, slot } = await this.read(routerKey(id));
    if (value === null) return null;
    const router = decodeRouter(value);
    if (!router.ok) throw new Error(`${WIFI_SERVICE_NAME} router ${id}: ${router.error}`);
    return { router: router.value, slot };
  }

  private async register(publicKey: Uint8Array, kind: "client" | "router", router?: RouterTerms): Promise<RegistrationView> {
    const result = await this.deps.registrations.register(publicKey, kind, { service: this.deps.service.name, ...(router === undefined ? {} : { router }) });
    if (!("exists" in result)) return result;
    if (kind === "router" && result.exists.status === "registered")
      throw new JamgateError("JG_ERR_DEVICE_EXISTS", `router ${result.exists.deviceId} is already registered`);
    return result.exists;
  }

  async registerAccount(publicKey: Uint8Array): Promise<RegistrationView> {
    return this.register(publicKey, "client");
  }

  async registerRouter(request: RouterRequest): Promise<{ readonly view: RegistrationView; readonly radius?: { readonly sharedSecret: string } }> {
    const owner = await this.accountRecord(request.owner);
    if (owner === null)
      throw new JamgateError(
        "JG_ERR_WIFI_ACCOUNT",
        `owner ${request.owner} is not an account on ${WIFI_SERVICE_NAME}: register it (POST /v1/wifi/accounts) first`,
      );
    if (owner.balanceMicros < request.stakeMicros)
      throw new JamgateError(
        "JG_ERR_WIFI_STAKE",
        `owner ${request.owner} has ${owner.balanceMicros} micros, below the stake of ${request.stakeMicros}: top it up first`,
      );
    const terms: RouterTerms = {
      owner: request.owner,
      priceMicrosPerGb: request.priceMicrosPerGb,
      stakeMicros: request.stakeMicros,
      capacityBitsPerSecond: request.capacityBitsPerSecond,
      attested: request.attested,
      name: request.name,
    };
    let publicKey = request.publicKey;
    let radius: ReturnType<RadiusKeys["create"]> | null = null;
    if (request.radius) {
      if (this.deps.radius == null)
        throw new JamgateError("JG_ERR_HTTP_BODY", "radius: this gateway keeps no RADIUS routers (it runs without a data dir for them)");
      radius = this.deps.radius.create();
      publicKey = radius.publicKey;
    }
    let view: RegistrationView;
    try {
      view = await this.register(publicKey!, "router", terms);
    } catch (e) {
      // Nothing was submitted: the key and secret made for it go too.
      if (radius !== null) this.deps.radius!.remove(radius.routerId);
      throw e;
    }
    this.requested.delete(view.deviceId);
    this.requested.set(view.deviceId, terms);
    for (const id of this.requested.keys()) {
      if (this.requested.size <= REQUESTED_KEPT_MAX) break;
      this.requested.delete(id);
    }
    return { view, ...(radius === null ? {} : { radius: { sharedSecret: radius.sharedSecret } }) };
  }

  async account(id: string): Promise<WifiAccountView | null> {
    const account = await this.accountRecord(id);
    if (account !== null)
      return { account: id, balanceMicros: text(account.balanceMicros), lockedMicros: text(account.lockedMicros), registered: true, slot: account.slot };
    const registration = await this.deps.registrations.view(id);
    if (registration === null || registration.kind !== "client" || (registration.service !== undefined && registration.service !== this.deps.service.name))
      return null;
    return { account: id, balanceMicros: "0", lockedMicros: "0", registered: false };
  }

  async router(id: string): Promise<WifiRouterView | null> {
    const found = await this.routerRecord(id);
    if (found !== null) {
      const { router: r, slot } = found;
      const cooldown = r.status === "active" ? null : r.deregisteredSlot + (await this.stakeCooldownSlots());
      return {
        router: id,
        owner: toHex(r.owner),
        name: r.name,
        priceMicrosPerGb: text(r.priceMicrosPerGb),
        stakeMicros: text(r.stakeMicros),
        capacityBitsPerSecond: text(r.capacityBitsPerSecond),
        attested: r.attested,
        status: r.status,
        registeredSlot: r.registeredSlot,
        deregisteredSlot: r.status === "active" ? null : r.deregisteredSlot,
        stakeReturnSlot: cooldown,
        usage: {
          sessionsStarted: text(r.sessionsStarted),
          openSessions: r.openSessions,
          billedOctets: text(r.billedOctets),
          billedMicros: text(r.billedMicros),
          earnedMicros: text(r.earnedMicros),
          disputedOctets: text(r.disputedOctets),
        },
        slot,
      };
    }
    // Not in state: a registration of this gateway pending or failed, told with the terms it asked for.
    const terms = this.requested.get(id);
    const registration = terms === undefined ? null : await this.deps.registrations.view(id);
    if (terms === undefined || registration === null || registration.status === "registered") return null;
    return {
      router: id,
      owner: terms.owner,
      name: terms.name,
      priceMicrosPerGb: text(terms.priceMicrosPerGb),
      stakeMicros: text(terms.stakeMicros),
      capacityBitsPerSecond: text(terms.capacityBitsPerSecond),
      attested: terms.attested,
      status: registration.status,
      registeredSlot: null,
      deregisteredSlot: null,
      stakeReturnSlot: null,
      usage: { sessionsStarted: "0", openSessions: 0, billedOctets: "0", billedMicros: "0", earnedMicros: "0", disputedOctets: "0" },
      ...(registration.code === undefined ? {} : { code: registration.code }),
      ...(registration.detail === undefined ? {} : { detail: registration.detail }),
    };
  }

  private async stakeCooldownSlots(): Promise<number> {
    const { value } = await this.read(configKey);
    if (value === null) return DEFAULT_CONFIG.stakeCooldownSlots;
    const config = decodeConfig(value);
    return config.ok ? config.value.stakeCooldownSlots : DEFAULT_CONFIG.stakeCooldownSlots;
  }

  async routers(page: {
    readonly after?: string;
    readonly limit: number;
  }): Promise<{ readonly items: readonly WifiRouterView[]; readonly next: string | null }> {
    const ledger = this.deps.ledger;
    if (ledger == null) return { items: [], next: null };
    const devices = await ledger.devices({
      service: this.deps.service.name,
      kind: "router",
      ...(page.after === undefined ? {} : { after: page.after }),
      limit: page.limit,
    });
    const views = await Promise.all(devices.items.map((d) => this.router(d.id)));
    return { items: views.filter((v): v is WifiRouterView => v !== null), next: devices.next };
  }

  /**
   * The service's counters ("stats") and fees ("fees") read at one best block, so they agree with
   * each other; absent before the service first counted anything, read as zeros. Refusals are
   * counted per code byte (REFUSAL_CODE_SLOTS), and accumulate counts only registry codes
   * (services/common/errors.ts), each named here; codes never refused are left out.
   */
  async stats(): Promise<WifiStatsView> {
    const best = await this.deps.api.bestBlock();
    const [statsValue, feesValue] = await Promise.all(
      [statsKey, feesKey].map((key) => this.deps.api.serviceValue(best.headerHash, this.deps.service.serviceId, key)),
    );
    const zero = {
      sessionsStarted: 0n,
      sessionsStopped: 0n,
      billedOctets: 0n,
      billedMicros: 0n,
      disputedOctets: 0n,
      exhaustedUpdates: 0n,
      envelopesRejected: 0n,
      refusalsByCode: [] as readonly bigint[],
    };
    let stats = zero;
    if (statsValue != null) {
      const decoded = decodeStats(statsValue);
      if (!decoded.ok) throw new Error(`${WIFI_SERVICE_NAME} stats: ${decoded.error}`);
      stats = decoded.value;
    }
    let feesMicros = 0n;
    if (feesValue != null) {
      const decoded = decodeFees(feesValue);
      if (!decoded.ok) throw new Error(`${WIFI_SERVICE_NAME} fees: ${decoded.error}`);
      feesMicros = decoded.value;
    }
    const refusedByCode: Record<string, string> = {};
    stats.refusalsByCode.forEach((count, code) => {
      const name = rejectionName(code);
      if (count > 0n && name !== null) refusedByCode[name] = text(count);
    });
    return {
      slot: best.slot,
      sessionsStarted: text(stats.sessionsStarted),
      sessionsStopped: text(stats.sessionsStopped),
      billedOctets: text(stats.billedOctets),
      billedMicros: text(stats.billedMicros),
      feesMicros: text(feesMicros),
      disputedOctets: text(stats.disputedOctets),
      exhaustedUpdates: text(stats.exhaustedUpdates),
      envelopesRejected: text(stats.envelopesRejected),
      refusedByCode,
    };
  }

  private async activeRouter(id: string): Promise<void> {
    const found = await this.routerRecord(id);
    if (found === null) throw new JamgateError("JG_ERR_WIFI_ROUTER", `no router ${id} on ${WIFI_SERVICE_NAME}`);
    if (found.router.status !== "active") throw new JamgateError("JG_ERR_WIFI_ROUTER", `router ${id} is ${found.router.status}`);
  }

  private submit(request: ActionRequest): ActionView {
    return this.actions.submit(request);
  }

  async setPrice(router: string, priceMicrosPerGb: bigint): Promise<ActionView> {
    await this.activeRouter(router);
    return this.submit({ type: "setPrice", router, priceMicrosPerGb });
  }

  async deregister(router: string): Promise<ActionView> {
    await this.activeRouter(router);
    return this.submit({ type: "deregister", router });
  }

  async topup(account: string, amountMicros: bigint): Promise<ActionView> {
    if ((await this.accountRecord(account)) === null) throw new JamgateError("JG_ERR_WIFI_ACCOUNT", `no account ${account} on ${WIFI_SERVICE_NAME}`);
    return this.submit({ type: "topup", account, amountMicros });
  }

  action(id: string): Promise<ActionView | null> {
    return this.actions.view(id);
  }
}
