/**
 * Typed views of the state entries the embedded node uses, each encoded as the Gray Paper
 * serializes it (GP D.1, through typeberry's `serialize` descriptors) where the Gray Paper has
 * the component, and named as the node's own where it has not:
 *
 * | key | GP | what |
 * |---|---|---|
 * | C(8)  | κ | active validators (Ed25519 keys used; Bandersnatch and BLS keys zero) |
 * | C(10) | ρ | reports awaiting availability, one per core, with their timeout slot |
 * | C(11) | τ | the slot of the latest block |
 * | C(12) | χ | privileged services: only χ_Z (always-accumulate, with gas) is used; written when genesis names one |
 * | C(14) | (node) | available reports waiting for accumulate gas, in order (GP keeps ω per epoch slot, with dependencies the node does not support) |
 * | C(200)| (node) | keys authorized to submit packages, per service (the simple authorizer's pool) |
 * | C(255, s) | δ | service account info |
 * | C(s, E_4(2^32−1) ⌢ k) | δ storage | service storage |
 */
import { codec } from "@typeberry/lib/codec";
import { tryAsPerValidator, tryAsServiceGas, tryAsServiceId, tryAsTimeSlot, WorkReport } from "@typeberry/lib/block";
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { tryAsU32, tryAsU64 } from "@typeberry/lib/numbers";
import { asOpaqueType } from "@typeberry/lib/utils";
import { AvailabilityAssignment, PrivilegedServices, ServiceAccountInfo, ValidatorData } from "@typeberry/lib/state";
import { serialize, stateKeys } from "@typeberry/lib/state-merkleization";
import type { ChainParams } from "../chain/params.ts";
import { decode, encode, h32 } from "../codec/jam.ts";
import { blake2b } from "../crypto/hash.ts";
import type { ServiceInfo } from "../service-api/service.ts";
import { keyHex, type KeyHex, type Kv, STATE_KEY_BYTES } from "./kv.ts";

const KEY_VALIDATORS = keyHex(serialize.currentValidators.key.raw);
const KEY_PENDING = keyHex(serialize.availabilityAssignment.key.raw);
const KEY_TIMESLOT = keyHex(serialize.timeslot.key.raw);
const KEY_PRIVILEGES = keyHex(serialize.privilegedServices.key.raw);
const KEY_ACCUMULATION_QUEUE = keyHex(serialize.accumulationQueue.key.raw);
/** C(200): not a Gray Paper component (GP uses 1..16 and 255); the simple authorizer's keys. */
const KEY_AUTHORIZERS = (() => {
  const key = new Uint8Array(STATE_KEY_BYTES);
  key[0] = 200;
  return keyHex(key);
})();

/** The node's accumulation queue: available reports not yet accumulated, oldest first. */
const accumulationQueueCodec = codec.sequenceVarLen(WorkReport.Codec);

export interface AuthorizerEntry {
  readonly serviceId: number;
  readonly publicKey: Uint8Array;
}
const authorizersCodec = codec.sequenceVarLen(codec.object({ serviceId: codec.u32, publicKey: codec.bytes(32) }));

export interface PendingReport {
  readonly report: WorkReport;
  /** GP ρ timeout: the slot the report was reported in. */
  readonly reportedSlot: number;
}

/** Per-service storage accounting, as GP 9.3 counts it: 34 bytes overhead per item. */
const STORAGE_ITEM_OVERHEAD_BYTES = 34n;

export class StateComponents {
  constructor(
    private readonly kv: Kv,
    private readonly params: ChainParams,
  ) {}

  timeslot(): number {
    const raw = this.kv.get(KEY_TIMESLOT);
    return raw === null ? 0 : decode(serialize.timeslot.Codec, raw);
  }

  setTimeslot(slot: number): void {
    this.kv.set(KEY_TIMESLOT, encode(serialize.timeslot.Codec, tryAsTimeSlot(slot)));
  }

  /** Ed25519 keys of the active validators, by validator index. */
  validatorKeys(): Uint8Array[] {
    const raw = this.kv.get(KEY_VALIDATORS);
    if (raw === null) throw new Error("state has no validators (κ): not a genesis-initialized state");
    return decode(serialize.currentValidators.Codec, raw, this.params.spec).map((v) => v.ed25519.raw);
  }

  setValidatorKeys(keys: readonly Uint8Array[]): void {
    const validators = keys.map((key) =>
      ValidatorData.create({
        ed25519: h32(key),
        bandersnatch: Bytes.zero(32).asOpaque(),
        bls: Bytes.zero(144).asOpaque(),
        metadata: Bytes.zero(128),
      }),
    );
    this.kv.set(KEY_VALIDATORS, encode(serialize.currentValidators.Codec, tryAsPerValidator(validators, this.params.spec), this.params.spec));
  }

  /** ρ: per core, the report waiting for availability, or null. */
  pending(): (PendingReport | null)[] {
    const raw = this.kv.get(KEY_PENDING);
    if (raw === null) return new Array<PendingReport | null>(this.params.coresCount).fill(null);
    return decode(serialize.availabilityAssignment.Codec, raw, this.params.spec).map((a) =>
      a === null ? null : { report: a.workReport, reportedSlot: a.timeout },
    );
  }

  setPending(pending: readonly (PendingReport | null)[]): void {
    const assignments = pending.map((p) =>
      p === null ? null : AvailabilityAssignment.create({ workReport: p.report, timeout: tryAsTimeSlot(p.reportedSlot) }),
    );
    // typeberry's per-core array type is a branded array.
    this.kv.set(KEY_PENDING, encode(serialize.availabilityAssignment.Codec, assignments as never, this.params.spec));
  }

  /** χ_Z (GP 0.7.2 §9.4): services accumulated in every block, with the gas each gets; ascending id. */
  alwaysAccumulate(): { readonly serviceId: number; readonly gas: bigint }[] {
    const raw = this.kv.get(KEY_PRIVILEGES);
    if (raw === null) return [];
    const privileges = decode(serialize.privilegedServices.Codec, raw, this.params.spec);
    return [...privileges.autoAccumulateServices]
      .map(([serviceId, gas]) => ({ serviceId: Number(serviceId), gas: BigInt(gas) }))
      .sort((a, b) => a.serviceId - b.serviceId);
  }

  /** Sets χ_Z; the other privileges (manager, assigners, delegator, registrar) are service 0, which the node does not use. */
  setAlwaysAccumulate(services: readonly { readonly serviceId: number; readonly gas: bigint }[]): void {
    const privileges = PrivilegedServices.create({
      manager: tryAsServiceId(0),
      delegator: tryAsServiceId(0),
      registrar: tryAsServiceId(0),
      // typeberry's per-core array type is a branded array.
      assigners: new Array(this.params.coresCount).fill(tryAsServiceId(0)) as never,
      autoAccumulateServices: new Map(services.map((s) => [tryAsServiceId(s.serviceId), tryAsServiceGas(s.gas)])),
    });
    this.kv.set(KEY_PRIVILEGES, encode(serialize.privilegedServices.Codec, privileges, this.params.spec));
  }

  accumulationQueue(): WorkReport[] {
    const raw = this.kv.get(KEY_ACCUMULATION_QUEUE);
    return raw === null ? [] : (decode(accumulationQueueCodec, raw, this.params.spec) as WorkReport[]);
  }

  setAccumulationQueue(reports: readonly WorkReport[]): void {
    this.kv.set(KEY_ACCUMULATION_QUEUE, reports.length === 0 ? null : encode(accumulationQueueCodec, [...reports], this.params.spec));
  }

  authorizers(): AuthorizerEntry[] {
    const raw = this.kv.get(KEY_AUTHORIZERS);
    return raw === null ? [] : decode(authorizersCodec, raw).map((a) => ({ serviceId: a.serviceId, publicKey: a.publicKey.raw }));
  }

  setAuthorizers(entries: readonly AuthorizerEntry[]): void {
    const sorted = [...entries].sort((a, b) => a.serviceId - b.serviceId || Buffer.compare(a.publicKey, b.publicKey));
    this.kv.set(
      KEY_AUTHORIZERS,
      encode(
        authorizersCodec,
        sorted.map((a) => ({ serviceId: tryAsU32(a.serviceId), publicKey: Bytes.fromBlob(a.publicKey, 32) })),
      ),
    );
  }

  isAuthorized(serviceId: number, publicKey: Uint8Array): boolean {
    return this.authorizers().some((a) => a.serviceId === serviceId && Buffer.compare(a.publicKey, publicKey) === 0);
  }

  serviceAccount(serviceId: number): ServiceAccountInfo | null {
    const raw = this.kv.get(serviceInfoKey(serviceId));
    return raw === null ? null : decode(serialize.serviceData(tryAsServiceId(serviceId)).Codec, raw);
  }

  setServiceAccount(serviceId: number, info: ServiceAccountInfo): void {
    this.kv.set(serviceInfoKey(serviceId), encode(serialize.serviceData(tryAsServiceId(serviceId)).Codec, info));
  }

  serviceInfo(serviceId: number): ServiceInfo | null {
    const account = this.serviceAccount(serviceId);
    if (account === null) return null;
    return {
      id: serviceId,
      codeHash: account.codeHash.raw,
      balance: account.balance,
      storageItems: account.storageUtilisationCount,
      storageBytes: account.storageUtilisationBytes,
    };
  }

  createService(serviceId: number, codeHash: Uint8Array, balance: bigint, slot: number): void {
    this.setServiceAccount(
      serviceId,
      ServiceAccountInfo.create({
        codeHash: h32(codeHash),
        balance: tryAsU64(balance),
        accumulateMinGas: tryAsServiceGas(0),
        onTransferMinGas: tryAsServiceGas(0),
        storageUtilisationBytes: tryAsU64(0),
        gratisStorage: tryAsU64(0),
        storageUtilisationCount: tryAsU32(0),
        created: tryAsTimeSlot(slot),
        lastAccumulation: tryAsTimeSlot(0),
        parentService: tryAsServiceId(0),
      }),
    );
  }

  updateServiceAccount(serviceId: number, update: (info: ServiceAccountInfo) => Partial<ServiceAccountInfo>): void {
    const account = this.serviceAccount(serviceId);
    if (account === null) throw new Error(`service ${serviceId} does not exist`);
    this.setServiceAccount(serviceId, ServiceAccountInfo.create({ ...account, ...update(account) }));
  }

  storageGet(serviceId: number, key: Uint8Array): Uint8Array | null {
    return this.kv.get(storageKey(serviceId, key));
  }

  /** Writes a storage value and keeps the account's item and byte counts (GP 9.3 a_i, a_o). */
  storageSet(serviceId: number, key: Uint8Array, value: Uint8Array | null): void {
    const stateKey = storageKey(serviceId, key);
    const previous = this.kv.get(stateKey);
    const footprint = (v: Uint8Array | null) => (v === null ? 0n : STORAGE_ITEM_OVERHEAD_BYTES + BigInt(key.length + v.length));
    const deltaItems = (value === null ? 0 : 1) - (previous === null ? 0 : 1);
    const deltaBytes = footprint(value) - footprint(previous);
    this.kv.set(stateKey, value);
    if (deltaItems !== 0 || deltaBytes !== 0n) {
      this.updateServiceAccount(serviceId, (a) => ({
        storageUtilisationCount: tryAsU32(a.storageUtilisationCount + deltaItems),
        storageUtilisationBytes: tryAsU64(a.storageUtilisationBytes + deltaBytes),
      }));
    }
  }
}

export function serviceInfoKey(serviceId: number): KeyHex {
  return keyHex(stateKeys.serviceInfo(tryAsServiceId(serviceId)).raw);
}

export function storageKey(serviceId: number, key: Uint8Array): KeyHex {
  return keyHex(stateKeys.serviceStorage(blake2b, tryAsServiceId(serviceId), asOpaqueType(BytesBlob.blobFrom(key))).raw);
}

/**
 * Service ids present in a state, from the keys of their account entries (C(255, s): byte 0 is
 * 255, the id's bytes at 1, 3, 5, 7, zeros elsewhere). Sorted ascending.
 */
export function serviceIds(keys: Iterable<KeyHex>): number[] {
  const ids: number[] = [];
  for (const key of keys) {
    if (!key.startsWith("ff")) continue;
    const raw = Buffer.from(key, "hex");
    if (raw[2] !== 0 || raw[4] !== 0 || raw[6] !== 0 || raw.subarray(8).some((b) => b !== 0)) continue;
    ids.push(raw[1]! + raw[3]! * 2 ** 8 + raw[5]! * 2 ** 16 + raw[7]! * 2 ** 24);
  }
  return ids.sort((a, b) => a - b);
}
