/**
 * Onboarding: a registration is a work item settled in the owning service's state, so the
 * device registry is on the ledger (like AWS IoT fleet provisioning, with the ledger as the
 * registry). The gateway submits it, follows it, and caches the result.
 */
import type { NodeApi } from "../node/api.ts";
import type { ChainParams } from "../node/chain/params.ts";
import type { Ed25519KeyPair } from "../node/crypto/ed25519.ts";
import { toHex } from "../node/codec/jam.ts";
import { deviceIdOf } from "../devices/envelope.ts";
import { buildWorkPackage } from "../node/intake/builder.ts";
import type { DeviceKind, IngestService } from "./ingest-service.ts";
import type { DeviceRegistry } from "./registry.ts";

export type RegistrationStatus = "pending" | "registered" | "failed";

export interface RegistrationView {
  readonly deviceId: string;
  readonly kind: DeviceKind;
  readonly status: RegistrationStatus;
  readonly packageHash?: string;
  /** Why it failed: a registry code, and the particulars. */
  readonly code?: string;
  readonly detail?: string;
}

/** Registrations followed at once: onboarding is rare; a burst past this waits for the earlier ones. */
export const REGISTRATIONS_IN_FLIGHT_MAX = 10_000;

export class Registrations {
  private readonly recent = new Map<string, RegistrationView>();
  private nextCore = 0;

  constructor(
    private readonly api: NodeApi,
    private readonly params: ChainParams,
    private readonly signer: Ed25519KeyPair,
    private readonly registry: DeviceRegistry,
    private readonly serviceOfKind: (kind: DeviceKind) => IngestService,
  ) {}

  /** Submits the registration of `publicKey`; resolves once the node has taken the package. */
  async register(publicKey: Uint8Array, kind: DeviceKind): Promise<RegistrationView | { readonly exists: RegistrationView }> {
    const deviceId = deviceIdOf(publicKey);
    const known = await this.registry.lookup(deviceId);
    if (known !== null) return { exists: { deviceId, kind: known.kind, status: "registered" } };
    const inFlight = this.recent.get(deviceId);
    if (inFlight?.status === "pending") return { exists: inFlight };
    if ([...this.recent.values()].filter((r) => r.status === "pending").length >= REGISTRATIONS_IN_FLIGHT_MAX) throw new Error("too many registrations in flight");
    const service = this.serviceOfKind(kind);
    const best = await this.api.bestBlock();
    const stateRoot = await this.api.stateRoot(best.headerHash);
    const pkg = buildWorkPackage(this.params, {
      signer: this.signer,
      anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot },
      items: [{ serviceId: service.serviceId, codeHash: service.codeHash, payload: service.registrationsPayload([{ publicKey, kind }]), refineGasLimit: 10_000_000n, accumulateGasLimit: service.registrationsGas(1) }],
    });
    await this.api.submitWorkPackage(this.nextCore++ % this.params.coresCount, pkg.bytes, []);
    const view: RegistrationView = { deviceId, kind, status: "pending", packageHash: toHex(pkg.hash) };
    this.recent.set(deviceId, view);
    let unsubscribe: (() => void) | undefined;
    let done = false;
    unsubscribe = await this.api.subscribeWorkPackageStatus(pkg.hash, (status) => {
      if (done || (status.kind !== "accumulated" && status.kind !== "failed")) return;
      done = true;
      unsubscribe?.();
      if (status.kind === "failed") {
        this.recent.set(deviceId, { ...view, status: "failed", code: status.code, detail: status.detail });
        return;
      }
      void this.api.serviceValue(status.accumulatedIn.headerHash, service.serviceId, service.deviceKey(deviceId)).then((value) => {
        const device = value === null ? null : service.decodeDevice(value);
        if (device === null || Buffer.compare(device.publicKey, publicKey) !== 0) {
          this.recent.set(deviceId, { ...view, status: "failed", code: "JG_ERR_DEVICE_EXISTS", detail: "the service did not register it (another registration of this id came first)" });
          return;
        }
        this.registry.remember(deviceId, device.publicKey, device.kind, service.serviceId);
        this.recent.set(deviceId, { ...view, status: "registered" });
      });
    });
    if (done) unsubscribe();
    return view;
  }

  /** What is known of a device's registration. */
  async view(deviceId: string): Promise<RegistrationView | null> {
    const recent = this.recent.get(deviceId);
    if (recent !== undefined && recent.status !== "registered") return recent;
    const device = await this.registry.lookup(deviceId);
    return device === null ? (recent ?? null) : { deviceId, kind: device.kind, status: "registered", ...(recent?.packageHash ? { packageHash: recent.packageHash } : {}) };
  }
}
