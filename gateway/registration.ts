/**
 * Onboarding: a registration is a work item settled in the owning service's state, so the
 * device registry is on the ledger (like AWS IoT fleet provisioning, with the ledger as the
 * registry). The gateway batches registrations per service into packages, submits them,
 * follows them, and caches the result.
 */
import { type BlockDescriptor, codeOf, type NodeApi } from "../node/api.ts";
import type { ChainParams } from "../node/chain/params.ts";
import type { Ed25519KeyPair } from "../node/crypto/ed25519.ts";
import { toHex } from "../node/codec/jam.ts";
import { deviceIdOf } from "../devices/envelope.ts";
import { buildWorkPackage } from "../node/intake/builder.ts";
import type { DeviceKind } from "../devices/protocol/device-kinds.ts";
import type { IngestService, RegistrationRecord, RouterTerms } from "./ingest-service.ts";
import type { LedgerSink } from "./ledger/sink.ts";
import { registrationsRefineGas } from "./refine-gas.ts";
import type { DeviceRegistry } from "./registry.ts";

export type RegistrationStatus = "pending" | "registered" | "failed";

export interface RegistrationView {
  readonly deviceId: string;
  readonly kind: DeviceKind;
  /** The service the device settles on. */
  readonly service?: string;
  readonly status: RegistrationStatus;
  readonly packageHash?: string;
  /** Why it failed: a registry code, and the particulars. */
  readonly code?: string;
  readonly detail?: string;
}

export interface RegisterOptions {
  /** The service to register with (by name); default: the one that owns the kind. */
  readonly service?: string;
  /** For an energy agent: the household (its meter's device id) it trades for. */
  readonly household?: string;
  /** For a Wi-Fi router: its terms on wifi-billing. */
  readonly router?: RouterTerms;
}

/** A work item other than registrations and envelopes (wifi-billing's operator actions), submitted as a package of its own. */
export interface ItemSubmission {
  readonly service: IngestService;
  readonly kind: "actions";
  readonly payload: Uint8Array;
  readonly accumulateGasLimit: bigint;
  /** Entries it carries (actions), for the ledger's package record and the refine gas declared. */
  readonly count: number;
}

/** How a submitted item ended: accumulated in a block, or failed with the node's code. */
export type ItemEnd =
  | { readonly kind: "accumulated"; readonly block: BlockDescriptor }
  | { readonly kind: "failed"; readonly code: string; readonly detail: string };

/** Registrations followed at once: onboarding is rare; a burst past this is refused until earlier ones settle. */
export const REGISTRATIONS_IN_FLIGHT_MAX = 10_000;
/** Finished registrations remembered for `view` (their package hash, or why they failed); older ones are read from the registry. */
const RECENT_KEPT_MAX = 2 * REGISTRATIONS_IN_FLIGHT_MAX;
/**
 * How long a registration waits for others to share its package. The node takes two packages a
 * slot, so one package per device would take ~5,000 s for 10,000 devices; batched, 11 packages.
 */
export const REGISTRATION_BATCH_MS = 50;

/** The lines registration writes: a device registered (info), a registration refused with its code (warn). */
export interface RegistrationLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}

/** A refusal of a registration request, with its registry code. */
export class RegistrationError extends Error {
  constructor(
    readonly code: "JG_ERR_DEVICE_KIND" | "JG_ERR_HTTP_BODY" | "JG_ERR_QUEUE_FULL",
    message: string,
  ) {
    super(message);
  }
}

interface Waiting {
  readonly record: RegistrationRecord;
  readonly deviceId: string;
  resolve(view: RegistrationView): void;
  reject(error: unknown): void;
}

export class Registrations {
  private readonly recent = new Map<string, RegistrationView>();
  private readonly queues = new Map<IngestService, Waiting[]>();
  private pending = 0;
  private timer: NodeJS.Timeout | null = null;
  private nextCore = 0;

  constructor(
    /** The node: also what the Wi-Fi routes read the service's state through (wifi/gateway-backend.ts). */
    readonly api: NodeApi,
    private readonly params: ChainParams,
    private readonly signer: Ed25519KeyPair,
    private readonly registry: DeviceRegistry,
    /** The service a device of this kind registers with (optionally named); null when there is none. */
    readonly serviceFor: (kind: DeviceKind, service?: string) => IngestService | null,
    /** The ledger index (ledger/index.ts): told of registration packages and of each device registered. Optional. */
    private readonly ledger?: Pick<LedgerSink, "packageSubmitted" | "packageStatus" | "packageSettled" | "deviceRegistered">,
    /** A line per device registered and per registration refused once submitted (gateway/README.md, "Logs"). Optional. */
    private readonly logger?: RegistrationLogger,
  ) {}

  /**
   * Queues the registration of `publicKey`; resolves once the node has taken the package that
   * carries it (with other registrations of the same service that came within REGISTRATION_BATCH_MS).
   */
  async register(publicKey: Uint8Array, kind: DeviceKind, options: RegisterOptions = {}): Promise<RegistrationView | { readonly exists: RegistrationView }> {
    const deviceId = deviceIdOf(publicKey);
    const service = this.serviceFor(kind, options.service);
    if (service === null)
      throw new RegistrationError("JG_ERR_DEVICE_KIND", `no service ${options.service ?? ""} takes devices of kind ${kind}`.replace("  ", " "));
    const record: RegistrationRecord = {
      publicKey,
      kind,
      ...(options.household === undefined ? {} : { household: options.household }),
      ...(options.router === undefined ? {} : { router: options.router }),
    };
    const problem = service.checkRegistration?.(record);
    if (problem) throw new RegistrationError("JG_ERR_HTTP_BODY", problem);
    const known = await this.registry.lookup(deviceId);
    if (known !== null) return { exists: { deviceId, kind: known.kind, status: "registered" } };
    const inFlight = this.recent.get(deviceId);
    if (inFlight?.status === "pending") return { exists: inFlight };
    if (this.pending >= REGISTRATIONS_IN_FLIGHT_MAX) throw new RegistrationError("JG_ERR_QUEUE_FULL", `${this.pending} registrations in flight`);
    this.pending++;
    const placeholder: RegistrationView = { deviceId, kind, service: service.name, status: "pending" };
    this.recent.set(deviceId, placeholder);
    return new Promise<RegistrationView>((resolve, reject) => {
      const queue = this.queues.get(service) ?? [];
      queue.push({ record, deviceId, resolve, reject });
      this.queues.set(service, queue);
      if (queue.length >= service.registrationsPerPackageMax) void this.flush(service);
      else this.timer ??= setTimeout(() => this.flushAll(), REGISTRATION_BATCH_MS);
    });
  }

  private flushAll(): void {
    this.timer = null;
    for (const service of [...this.queues.keys()]) void this.flush(service);
  }

  private async flush(service: IngestService): Promise<void> {
    const queue = this.queues.get(service) ?? [];
    const batch = queue.splice(0, service.registrationsPerPackageMax);
    if (queue.length === 0) this.queues.delete(service);
    else this.timer ??= setTimeout(() => this.flushAll(), 0);
    if (batch.length === 0) return;
    try {
      const payload = service.registrationsPayload(batch.map((w) => w.record));
      const pkg = await this.submitPackage(service, "registrations", payload, service.registrationsGas(batch.length), batch.length);
      const packageHash = toHex(pkg.hash);
      for (const w of batch) {
        const view: RegistrationView = { deviceId: w.deviceId, kind: w.record.kind, service: service.name, status: "pending", packageHash };
        this.recent.set(w.deviceId, view);
        w.resolve(view);
      }
      this.follow(pkg.hash, service, batch);
    } catch (error) {
      this.pending -= batch.length;
      const code = codeOf(error);
      for (const w of batch) {
        this.recent.delete(w.deviceId);
        this.logger?.warn(
          { deviceId: w.deviceId, kind: w.record.kind, service: service.name, code: code ?? undefined, detail: String(error) },
          "device registration refused",
        );
        w.reject(error);
      }
    }
  }

  /**
   * Builds a package of one item of `service`, anchored on the best block, and submits it to the
   * next core in turn; the ledger index is told. The refine gas declared is a registrations
   * item's (refine-gas.ts): the payload handed over and a hash of 32 bytes per entry, what
   * refine of a small item does, or the service's own (telemetry's refine hashes nothing).
   */
  private async submitPackage(
    service: IngestService,
    kind: "registrations" | "actions",
    payload: Uint8Array,
    accumulateGasLimit: bigint,
    count: number,
  ): Promise<{ readonly hash: Uint8Array }> {
    const best = await this.api.bestBlock();
    const stateRoot = await this.api.stateRoot(best.headerHash);
    const pkg = buildWorkPackage(this.params, {
      signer: this.signer,
      anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot },
      items: [
        {
          serviceId: service.serviceId,
          codeHash: service.codeHash,
          payload,
          // What refine will charge, with a margin (refine-gas.ts): the node's watchdog bounds a refine by its declared gas.
          refineGasLimit: ((kind === "registrations" ? service.registrationsRefineGas : undefined) ?? registrationsRefineGas)(
            { payloadBytes: payload.length, registrations: count },
            this.params.refineGasPerPackage,
          ),
          accumulateGasLimit,
        },
      ],
    });
    const core = this.nextCore++ % this.params.coresCount;
    const submittedAtMs = Date.now();
    await this.api.submitWorkPackage(core, pkg.bytes, []);
    this.ledger?.packageSubmitted({ hash: pkg.hash, serviceId: service.serviceId, kind, items: count, bytes: pkg.bytes.length, core, submittedAtMs });
    return pkg;
  }

  /**
   * Submits another kind of work item as a package of its own (wifi-billing's operator actions:
   * wifi/actions.ts) and follows it: `onEnd` is called once, when the node has accumulated or
   * failed it, and resolves with how many of its entries the service applied and refused, for
   * the ledger's package record. Resolves with the package hash once the node has taken it.
   */
  async submitItem(item: ItemSubmission, onEnd: (end: ItemEnd) => Promise<{ readonly applied: number; readonly refused: number }>): Promise<Uint8Array> {
    const pkg = await this.submitPackage(item.service, item.kind, item.payload, item.accumulateGasLimit, item.count);
    let unsubscribe: (() => void) | undefined;
    let done = false;
    void this.api
      .subscribeWorkPackageStatus(pkg.hash, (status) => {
        this.ledger?.packageStatus(pkg.hash, status, Date.now());
        if (done || (status.kind !== "accumulated" && status.kind !== "failed")) return;
        done = true;
        unsubscribe?.();
        const end: ItemEnd =
          status.kind === "failed" ? { kind: "failed", code: status.code, detail: status.detail } : { kind: "accumulated", block: status.accumulatedIn };
        void onEnd(end).then(
          (counts) => {
            if (end.kind !== "accumulated") return;
            const settled = {
              hash: pkg.hash,
              serviceId: item.service.serviceId,
              kind: item.kind,
              block: end.block,
              receipts: [],
              settled: counts.applied,
              refused: counts.refused,
              settledAtMs: Date.now(),
            };
            this.ledger?.packageSettled(settled).catch(() => undefined);
          },
          () => undefined,
        );
      })
      .then((u) => {
        unsubscribe = u;
        if (done) u();
      });
    return pkg.hash;
  }

  private follow(packageHash: Uint8Array, service: IngestService, batch: readonly Waiting[]): void {
    let unsubscribe: (() => void) | undefined;
    let done = false;
    const settle = (update: (w: Waiting, view: RegistrationView) => Promise<RegistrationView> | RegistrationView, after?: () => void) => {
      void Promise.all(
        batch.map(async (w) => {
          const view = this.recent.get(w.deviceId)!;
          this.recent.set(w.deviceId, await update(w, view));
        }),
      ).finally(() => {
        after?.();
        this.pending -= batch.length;
        for (const [id, view] of this.recent) {
          if (this.recent.size <= RECENT_KEPT_MAX) break;
          if (view.status !== "pending") this.recent.delete(id);
        }
      });
    };
    void this.api
      .subscribeWorkPackageStatus(packageHash, (status) => {
        this.ledger?.packageStatus(packageHash, status, Date.now());
        if (done || (status.kind !== "accumulated" && status.kind !== "failed")) return;
        done = true;
        unsubscribe?.();
        if (status.kind === "failed")
          return settle((w, view) => {
            this.logger?.warn(
              { deviceId: w.deviceId, kind: w.record.kind, service: service.name, code: status.code, detail: status.detail },
              "device registration refused",
            );
            return { ...view, status: "failed", code: status.code, detail: status.detail };
          });
        const outcome = this.api
          .serviceValue(status.accumulatedIn.headerHash, service.serviceId, service.outcomeKey(packageHash))
          .then((v) => (v === null ? null : (service.decodeRegistrationOutcome?.(v) ?? null)));
        let registered = 0;
        settle(
          async (w, view) => {
            const refused = (await outcome)?.(w.deviceId) ?? null;
            const value = await this.api.serviceValue(status.accumulatedIn.headerHash, service.serviceId, service.deviceKey(w.deviceId));
            const device = value === null ? null : service.decodeDevice(value);
            if (device === null || Buffer.compare(device.publicKey, w.record.publicKey) !== 0) {
              const failed = {
                ...view,
                status: "failed" as const,
                code: refused ?? "JG_ERR_DEVICE_EXISTS",
                detail:
                  refused === null ? "the service did not register it (another registration of this id came first)" : `refused by service ${service.name}`,
              };
              this.logger?.warn(
                { deviceId: w.deviceId, kind: w.record.kind, service: service.name, code: failed.code, detail: failed.detail },
                "device registration refused",
              );
              return failed;
            }
            this.registry.remember(w.deviceId, device.publicKey, device.kind, service.serviceId, device.settledHighestSeq);
            this.ledger?.deviceRegistered({
              deviceId: w.deviceId,
              publicKey: device.publicKey,
              kind: device.kind,
              serviceId: service.serviceId,
              ...(w.record.household === undefined ? {} : { household: w.record.household }),
              registeredSlot: status.accumulatedIn.slot,
            });
            registered++;
            this.logger?.info(
              { deviceId: w.deviceId, kind: device.kind, service: service.name, slot: status.accumulatedIn.slot, package: toHex(packageHash) },
              "device registered",
            );
            return { ...view, status: "registered" };
          },
          () => {
            const settled = {
              hash: packageHash,
              serviceId: service.serviceId,
              kind: "registrations" as const,
              block: status.accumulatedIn,
              receipts: [],
              settled: registered,
              refused: batch.length - registered,
              settledAtMs: Date.now(),
            };
            // The index logs what it cannot write; the registration stands whatever the index does.
            this.ledger?.packageSettled(settled).catch(() => undefined);
          },
        );
      })
      .then((u) => {
        unsubscribe = u;
        if (done) u();
      });
  }

  /** What is known of a device's registration. */
  async view(deviceId: string): Promise<RegistrationView | null> {
    const recent = this.recent.get(deviceId);
    if (recent !== undefined && recent.status !== "registered") return recent;
    const device = await this.registry.lookup(deviceId);
    return device === null
      ? (recent ?? null)
      : {
          deviceId,
          kind: device.kind,
          status: "registered",
          ...(recent?.service ? { service: recent.service } : {}),
          ...(recent?.packageHash ? { packageHash: recent.packageHash } : {}),
        };
  }
}
