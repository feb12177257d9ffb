/**
 * Onboarding: a registration is a work item settled in the owning service's state, so the
 * device registry is on the ledger (like AWS IoT fleet provisioning, with the ledger as the
 * registry). The gateway batches registrations per service into packages, submits them,
 * follows them, and caches the result. A fleet is registered in bulk (`registerMany`, `POST
 * /v1/devices/bulk`): thousands of rows a request, checked whole before any is queued, packed
 * into the same packages, and followed as a batch whose progress `bulkStatus` tells.
 *
 * What bounds a registrations package is the service's refine output: a report's results must
 * fit W_R = 49,152 bytes (GP 11.1.4), and telemetry's refine hands each registration on as its
 * key and kind, 33 bytes, so 1,489 fit (services/telemetry/payload.ts REGISTRATIONS_PER_ITEM_MAX;
 * energy-trading's 66-byte outputs: 640; wifi-billing's up to 156: 256). The payload (33 bytes a
 * registration of W_B's 13.8 MB), refine gas (nothing but the payload: ~33 a registration of
 * G_R = 1e9) and accumulate gas (~3,300 each of G_A = 1e7) all allow more. The node takes a
 * package per core per slot, so registering is ~3,000 devices a slot on the tiny chain's 2 cores.
 */
import { randomBytes } from "node:crypto";
import { type BlockDescriptor, codeOf, type NodeApi } from "../node/api.ts";
import type { ChainParams } from "../node/chain/params.ts";
import type { Ed25519KeyPair } from "../node/crypto/ed25519.ts";
import { toHex } from "../node/codec/jam.ts";
import { deviceIdOf } from "../devices/envelope.ts";
import { buildWorkPackage } from "../node/intake/builder.ts";
import type { DeviceKind } from "../devices/protocol/device-kinds.ts";
import { BULK_REGISTRATIONS_MAX, checkRegistrationRow, type RowProblem } from "../devices/protocol/registration-rows.ts";
import type { IngestService, RegisteredDevice, RegistrationRecord, RouterTerms } from "./ingest-service.ts";
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

/**
 * Registrations followed at once (queued, or in a package not yet accumulated): ~7 packages of
 * telemetry's 1,489, what the tiny chain's 2 cores settle in the ~3 slots from submit to
 * accumulate; a burst past this is refused (JG_ERR_QUEUE_FULL) until earlier ones settle.
 */
export const REGISTRATIONS_IN_FLIGHT_MAX = 10_000;
/**
 * Registration packages submitted and not yet accumulated or failed; full batches past it wait in
 * the gateway's queue (within REGISTRATIONS_IN_FLIGHT_MAX). The node takes a package per core per
 * slot and a registration takes ~3 slots from submit to accumulate, so 8 keeps both of the tiny
 * chain's cores busy through a bulk onboarding (2 × 3, and slack), and leaves most of each core's
 * queue of 16 (node/intake/refine-queue.ts PACKAGES_QUEUED_PER_CORE_MAX) to settlement's packages.
 */
export const REGISTRATION_PACKAGES_IN_FLIGHT_MAX = 8;
/** After the node refused a package of bulk registrations because its queues were full (JG_ERR_QUEUE_FULL), the wait before it is submitted again: a slot of the default chain's is 6 s, the tests' 0.1–1 s. */
export const REGISTRATION_RETRY_MS = 1_000;
/**
 * Bulk registrations whose progress is kept for `GET /v1/devices/bulk/{batch}`: REGISTRATIONS_IN_FLIGHT_MAX
 * allows two requests of BULK_REGISTRATIONS_MAX in flight, so 64 is room for many operators and
 * for finished ones to be read back a while. Past it the oldest is forgotten (its status is then
 * JG_ERR_NOT_FOUND, and giving its rows again is safe: registered ones count as such).
 */
export const BULK_BATCHES_KEPT_MAX = 64;
/** Failed registrations listed in a bulk batch's status, and bad rows in a JG_ERR_DEVICE_ROWS answer; the count says how many there were. */
export const BULK_PROBLEMS_LISTED_MAX = 100;
/** Registry lookups a bulk request has waiting on the node at once: the node thread bounds every caller's calls together (node/thread/host.ts NODE_THREAD_CALLS_PENDING_MAX = 10,000). */
const LOOKUPS_AT_ONCE = 64;
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

/** A bad row of a bulk registration: its index in the request, and why (its own code). */
export interface RowError extends RowProblem {
  readonly index: number;
}

/** A bulk registration refused for its bad rows (JG_ERR_DEVICE_ROWS): nothing of it was queued. */
export class BulkRowsError extends Error {
  readonly code = "JG_ERR_DEVICE_ROWS";
  constructor(
    /** The first BULK_PROBLEMS_LISTED_MAX bad rows, by index. */
    readonly rows: readonly RowError[],
    /** How many rows were bad. */
    readonly count: number,
    total: number,
  ) {
    super(`${count} of ${total} rows cannot be registered (row ${rows[0]?.index ?? "?"}: ${rows[0]?.code ?? "?"}: ${rows[0]?.message ?? "?"}); none was`);
  }
}

/** What `registerMany` answers: the batch to follow, and how its rows stood. */
export interface BulkAnswer {
  /** 32 hex digits: `GET /v1/devices/bulk/{batch}`. */
  readonly batch: string;
  readonly rows: number;
  /** Rows queued by this request. */
  readonly queued: number;
  /** Rows already registered (counted as registered in the batch). */
  readonly alreadyRegistered: number;
  /** Rows already pending from an earlier request (followed by the batch too). */
  readonly alreadyPending: number;
}

/** A failed registration of a bulk batch. */
export interface BulkFailure {
  readonly deviceId: string;
  readonly code: string;
  readonly detail: string;
}

/** A bulk batch's progress (`GET /v1/devices/bulk/{batch}`): every row is registered, pending or failed. */
export interface BulkStatus {
  readonly batch: string;
  readonly rows: number;
  readonly registered: number;
  /** Of `registered`, those that were registered before the request. */
  readonly alreadyRegistered: number;
  readonly pending: number;
  readonly failed: number;
  /** The packages that carried the batch's rows so far, by hash (one may carry other requests' rows too). */
  readonly packages: readonly string[];
  /** The first BULK_PROBLEMS_LISTED_MAX failures. */
  readonly failures: readonly BulkFailure[];
  readonly startedAtMs: number;
  /** When its last row ended (registered or failed), else null. */
  readonly finishedAtMs: number | null;
}

/** One bulk request's rows as they end, for its status. */
class BulkBatch {
  registered = 0;
  alreadyRegistered = 0;
  failed = 0;
  pending = 0;
  finishedAtMs: number | null = null;
  readonly packages = new Set<string>();
  readonly failures: BulkFailure[] = [];

  constructor(
    readonly id: string,
    readonly rows: number,
    readonly startedAtMs: number,
  ) {}

  /** A pending row of the batch ended as `view` says (registered or failed). */
  end(view: RegistrationView, nowMs: number): void {
    this.pending--;
    if (view.status === "registered") this.registered++;
    else {
      this.failed++;
      if (this.failures.length < BULK_PROBLEMS_LISTED_MAX)
        this.failures.push({ deviceId: view.deviceId, code: view.code ?? "JG_ERR_DEVICE_UNREGISTERED", detail: view.detail ?? "" });
    }
    if (this.pending === 0) this.finishedAtMs = nowMs;
  }

  status(): BulkStatus {
    return {
      batch: this.id,
      rows: this.rows,
      registered: this.registered,
      alreadyRegistered: this.alreadyRegistered,
      pending: this.pending,
      failed: this.failed,
      packages: [...this.packages],
      failures: this.failures.slice(),
      startedAtMs: this.startedAtMs,
      finishedAtMs: this.finishedAtMs,
    };
  }
}

interface Waiting {
  readonly record: RegistrationRecord;
  readonly deviceId: string;
  /** The single path's answer (`register`): resolved once the package is submitted, rejected if the submission fails. */
  readonly answer: { resolve(view: RegistrationView): void; reject(error: unknown): void } | null;
  /** The bulk batches that follow this registration (a row given again by a later request joins its batch too). */
  readonly batches: BulkBatch[];
}

/** What a service is asked to register for a device. */
function recordOf(publicKey: Uint8Array, kind: DeviceKind, options: { readonly household?: string; readonly router?: RouterTerms }): RegistrationRecord {
  return {
    publicKey,
    kind,
    ...(options.household === undefined ? {} : { household: options.household }),
    ...(options.router === undefined ? {} : { router: options.router }),
  };
}

/** `fn` over `items`, at most `limit` at once, in order of start. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class Registrations {
  private readonly recent = new Map<string, RegistrationView>();
  private readonly queues = new Map<IngestService, Waiting[]>();
  /** Registrations queued or in a package not yet ended, by device id. */
  private readonly inFlight = new Map<string, Waiting>();
  private readonly batches = new Map<string, BulkBatch>();
  private pending = 0;
  private packagesInFlight = 0;
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
    private readonly now: () => number = Date.now,
  ) {}

  /** Registrations queued or in a package not yet ended. */
  get inFlightCount(): number {
    return this.pending;
  }

  /**
   * Queues the registration of `publicKey`; resolves once the node has taken the package that
   * carries it (with other registrations of the same service that came within REGISTRATION_BATCH_MS).
   */
  async register(publicKey: Uint8Array, kind: DeviceKind, options: RegisterOptions = {}): Promise<RegistrationView | { readonly exists: RegistrationView }> {
    const deviceId = deviceIdOf(publicKey);
    const service = this.serviceFor(kind, options.service);
    if (service === null)
      throw new RegistrationError("JG_ERR_DEVICE_KIND", `no service ${options.service ?? ""} takes devices of kind ${kind}`.replace("  ", " "));
    const record = recordOf(publicKey, kind, options);
    const problem = service.checkRegistration?.(record);
    if (problem) throw new RegistrationError("JG_ERR_HTTP_BODY", problem);
    const known = await this.registry.lookup(deviceId);
    if (known !== null) return { exists: { deviceId, kind: known.kind, status: "registered" } };
    const inFlight = this.recent.get(deviceId);
    if (inFlight?.status === "pending") return { exists: inFlight };
    if (this.pending >= REGISTRATIONS_IN_FLIGHT_MAX) throw new RegistrationError("JG_ERR_QUEUE_FULL", `${this.pending} registrations in flight`);
    return new Promise<RegistrationView>((resolve, reject) => this.enqueue(service, { record, deviceId, answer: { resolve, reject }, batches: [] }));
  }

  /**
   * Registers many devices at once (`POST /v1/devices/bulk`, `jamgate device register --from`):
   * `rows` as the request gave them (devices/protocol/registration-rows.ts). Every row is checked
   * first: its shape, a service that takes its kind, the service's own check, its `deviceId`
   * against its key, and no device twice; one bad row refuses the whole request (BulkRowsError,
   * JG_ERR_DEVICE_ROWS, listing the bad rows) and nothing is queued. A device already registered
   * or already pending is not a bad row: the batch counts it so. Past REGISTRATIONS_IN_FLIGHT_MAX
   * the whole request is refused (JG_ERR_QUEUE_FULL) and nothing is queued. Otherwise every other
   * row is queued at once, packed with other registrations of its service, and followed as a
   * batch: resolves, before any package is submitted, with the batch's id for `bulkStatus`.
   */
  async registerMany(rows: readonly unknown[]): Promise<BulkAnswer> {
    if (rows.length > BULK_REGISTRATIONS_MAX)
      throw new RegistrationError("JG_ERR_HTTP_BODY", `${rows.length} rows > BULK_REGISTRATIONS_MAX = ${BULK_REGISTRATIONS_MAX}`);
    const problems: RowError[] = [];
    let bad = 0;
    const refuse = (index: number, problem: RowProblem) => {
      bad++;
      if (problems.length < BULK_PROBLEMS_LISTED_MAX) problems.push({ index, ...problem });
    };
    const checked: { record: RegistrationRecord; deviceId: string; service: IngestService }[] = [];
    const firstRow = new Map<string, number>();
    for (const [index, value] of rows.entries()) {
      const shape = checkRegistrationRow(value);
      if (!shape.ok) {
        refuse(index, shape.problem);
        continue;
      }
      const row = shape.row;
      const service = this.serviceFor(row.kind, row.service);
      if (service === null) {
        refuse(index, { code: "JG_ERR_DEVICE_KIND", message: `no service ${row.service ?? ""} takes devices of kind ${row.kind}`.replace("  ", " ") });
        continue;
      }
      const publicKey = Uint8Array.from(Buffer.from(row.publicKey, "hex"));
      const deviceId = deviceIdOf(publicKey);
      if (row.deviceId !== undefined && row.deviceId !== deviceId) {
        refuse(index, { code: "JG_ERR_DEVICE_ROW", message: `deviceId ${row.deviceId} is not its key's (${deviceId})` });
        continue;
      }
      const earlier = firstRow.get(deviceId);
      if (earlier !== undefined) {
        refuse(index, { code: "JG_ERR_DEVICE_ROW", message: `device ${deviceId} is also row ${earlier}` });
        continue;
      }
      firstRow.set(deviceId, index);
      const record = recordOf(publicKey, row.kind, row);
      const problem = service.checkRegistration?.(record);
      if (problem) {
        refuse(index, { code: "JG_ERR_DEVICE_ROW", message: problem });
        continue;
      }
      checked.push({ record, deviceId, service });
    }
    if (bad > 0) throw new BulkRowsError(problems, bad, rows.length);

    // Which rows are registered already: the registry's cache, else the ledger (a few lookups at once).
    const registered = new Uint8Array(checked.length);
    await eachLimited(checked, LOOKUPS_AT_ONCE, async (row, i) => {
      if (!this.inFlight.has(row.deviceId) && (await this.registry.lookup(row.deviceId)) !== null) registered[i] = 1;
    });
    // From here to the end nothing awaits: the capacity check and the queueing are one step.
    let fresh = 0;
    for (const [i, row] of checked.entries()) if (registered[i] === 0 && !this.inFlight.has(row.deviceId)) fresh++;
    if (this.pending + fresh > REGISTRATIONS_IN_FLIGHT_MAX)
      throw new RegistrationError(
        "JG_ERR_QUEUE_FULL",
        `${this.pending} registrations in flight and ${fresh} more asked for; at most ${REGISTRATIONS_IN_FLIGHT_MAX} (REGISTRATIONS_IN_FLIGHT_MAX): retry once some are registered`,
      );
    const batch = new BulkBatch(randomBytes(16).toString("hex"), rows.length, this.now());
    this.keep(batch);
    let queued = 0;
    let alreadyPending = 0;
    for (const [i, row] of checked.entries()) {
      const waiting = this.inFlight.get(row.deviceId);
      batch.pending++;
      if (registered[i] === 1) {
        batch.end({ deviceId: row.deviceId, kind: row.record.kind, status: "registered" }, this.now());
        batch.alreadyRegistered++;
      } else if (waiting !== undefined) {
        waiting.batches.push(batch);
        const hash = this.recent.get(row.deviceId)?.packageHash;
        if (hash !== undefined) batch.packages.add(hash);
        alreadyPending++;
      } else {
        this.enqueue(row.service, { record: row.record, deviceId: row.deviceId, answer: null, batches: [batch] });
        queued++;
      }
    }
    if (batch.pending === 0) batch.finishedAtMs = this.now();
    return { batch: batch.id, rows: rows.length, queued, alreadyRegistered: batch.alreadyRegistered, alreadyPending };
  }

  /** A bulk batch's progress, or null when the gateway does not know it (never made here, or forgotten: BULK_BATCHES_KEPT_MAX). */
  bulkStatus(batch: string): BulkStatus | null {
    return this.batches.get(batch)?.status() ?? null;
  }

  private keep(batch: BulkBatch): void {
    this.batches.set(batch.id, batch);
    // The oldest finished one first; if none has finished, the oldest.
    while (this.batches.size > BULK_BATCHES_KEPT_MAX) {
      let drop: string | undefined;
      for (const [id, b] of this.batches)
        if (b.pending === 0) {
          drop = id;
          break;
        }
      this.batches.delete(drop ?? this.batches.keys().next().value!);
    }
  }

  /** Queues `w` with its service's registrations: a package goes at once when full, else after REGISTRATION_BATCH_MS. */
  private enqueue(service: IngestService, w: Waiting): void {
    this.pending++;
    this.inFlight.set(w.deviceId, w);
    this.recent.set(w.deviceId, { deviceId: w.deviceId, kind: w.record.kind, service: service.name, status: "pending" });
    const queue = this.queues.get(service) ?? [];
    queue.push(w);
    this.queues.set(service, queue);
    if (queue.length >= service.registrationsPerPackageMax) void this.flush(service);
    else this.timer ??= setTimeout(() => this.flushAll(), REGISTRATION_BATCH_MS);
  }

  /** `w`'s registration ended (registered or failed): its view is kept for `view`, its batches are told. */
  private end(w: Waiting, view: RegistrationView): void {
    this.recent.set(w.deviceId, view);
    if (this.inFlight.get(w.deviceId) === w) this.inFlight.delete(w.deviceId);
    for (const batch of w.batches) batch.end(view, this.now());
  }

  private flushAll(): void {
    this.timer = null;
    for (const service of [...this.queues.keys()]) void this.flush(service);
  }

  private async flush(service: IngestService): Promise<void> {
    // Past the bound the queue waits; a package that ends calls flushAll.
    if (this.packagesInFlight >= REGISTRATION_PACKAGES_IN_FLIGHT_MAX) return;
    const queue = this.queues.get(service) ?? [];
    const batch = queue.splice(0, service.registrationsPerPackageMax);
    if (queue.length === 0) this.queues.delete(service);
    else this.timer ??= setTimeout(() => this.flushAll(), 0);
    if (batch.length === 0) return;
    this.packagesInFlight++;
    try {
      const payload = service.registrationsPayload(batch.map((w) => w.record));
      const pkg = await this.submitPackage(service, "registrations", payload, service.registrationsGas(batch.length), batch.length);
      const packageHash = toHex(pkg.hash);
      for (const w of batch) {
        const view: RegistrationView = { deviceId: w.deviceId, kind: w.record.kind, service: service.name, status: "pending", packageHash };
        this.recent.set(w.deviceId, view);
        for (const b of w.batches) b.packages.add(packageHash);
        w.answer?.resolve(view);
      }
      this.follow(pkg.hash, service, batch);
    } catch (error) {
      this.packagesInFlight--;
      const code = codeOf(error);
      // Bulk rows wait out a node whose queues are full and go again; a single registration's caller is answered with the refusal.
      const again = code === "JG_ERR_QUEUE_FULL" ? batch.filter((w) => w.answer === null) : [];
      if (again.length > 0) {
        setTimeout(() => {
          this.queues.set(service, [...again, ...(this.queues.get(service) ?? [])]);
          this.flushAll();
        }, REGISTRATION_RETRY_MS).unref();
      }
      for (const w of batch) {
        if (again.includes(w)) continue;
        this.pending--;
        this.logger?.warn(
          { deviceId: w.deviceId, kind: w.record.kind, service: service.name, code: code ?? undefined, detail: String(error) },
          "device registration refused",
        );
        if (w.answer !== null) {
          this.recent.delete(w.deviceId);
          if (this.inFlight.get(w.deviceId) === w) this.inFlight.delete(w.deviceId);
          for (const b of w.batches)
            b.end({ deviceId: w.deviceId, kind: w.record.kind, status: "failed", code: code ?? "JG_ERR_RPC_INTERNAL", detail: String(error) }, this.now());
          w.answer.reject(error);
        } else {
          this.end(w, {
            deviceId: w.deviceId,
            kind: w.record.kind,
            service: service.name,
            status: "failed",
            code: code ?? "JG_ERR_RPC_INTERNAL",
            detail: String(error),
          });
        }
      }
      if (again.length === 0 && this.queues.size > 0) this.flushAll();
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

  /**
   * Follows a registrations package to its end and ends each of its registrations. Accumulated:
   * the package's outcome names the registrations its service refused; one it did not refuse is
   * stored as given, and one refused (or every one, when the outcome cannot be read) is read back
   * from the service's state, a few at once: a device already registered with the same key is
   * registered, whoever registered it. Failed: each fails with the node's code.
   */
  private follow(packageHash: Uint8Array, service: IngestService, batch: readonly Waiting[]): void {
    let unsubscribe: (() => void) | undefined;
    let done = false;
    const settle = (update: (w: Waiting, view: RegistrationView) => Promise<RegistrationView> | RegistrationView, after?: () => void) => {
      void eachLimited(batch, LOOKUPS_AT_ONCE, async (w) => {
        const view = this.recent.get(w.deviceId) ?? { deviceId: w.deviceId, kind: w.record.kind, service: service.name, status: "pending" as const };
        let next: RegistrationView;
        try {
          next = await update(w, view);
        } catch (error) {
          next = {
            ...view,
            status: "failed",
            code: codeOf(error) ?? "JG_ERR_RPC_INTERNAL",
            detail: `its registration could not be read back: ${String(error)}`,
          };
        }
        this.end(w, next);
      }).finally(() => {
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
        this.packagesInFlight--;
        if (this.queues.size > 0) this.flushAll();
        if (status.kind === "failed")
          return settle((w, view) => {
            this.logger?.warn(
              { deviceId: w.deviceId, kind: w.record.kind, service: service.name, code: status.code, detail: status.detail },
              "device registration refused",
            );
            return { ...view, status: "failed", code: status.code, detail: status.detail };
          });
        const block = status.accumulatedIn;
        const outcome = this.api
          .serviceValue(block.headerHash, service.serviceId, service.outcomeKey(packageHash))
          .then((v) => (v === null ? null : (service.decodeRegistrationOutcome?.(v) ?? null)))
          .catch(() => null);
        let registered = 0;
        settle(
          async (w, view) => {
            const verdicts = await outcome;
            const refused = verdicts === null ? null : verdicts(w.deviceId);
            let device: RegisteredDevice | null;
            if (verdicts !== null && refused === null) device = { publicKey: w.record.publicKey, kind: w.record.kind, settledHighestSeq: -1 };
            else {
              const value = await this.api.serviceValue(block.headerHash, service.serviceId, service.deviceKey(w.deviceId));
              device = value === null ? null : service.decodeDevice(value);
            }
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
              registeredSlot: block.slot,
            });
            registered++;
            this.logger?.info(
              { deviceId: w.deviceId, kind: device.kind, service: service.name, slot: block.slot, package: toHex(packageHash) },
              "device registered",
            );
            return { ...view, status: "registered" };
          },
          () => {
            const settled = {
              hash: packageHash,
              serviceId: service.serviceId,
              kind: "registrations" as const,
              block,
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
