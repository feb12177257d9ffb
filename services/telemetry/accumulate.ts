/**
 * Accumulate of the telemetry service (GP 12, Ψ_A): sequential and stateful. Applies refine
 * outputs in the order the node hands them over (report order, then item order): registrations
 * go into the registry; envelopes settle exactly once through each device's replay window;
 * each package gets an outcome for receipts; service-wide counters are kept under `stats`.
 * Deterministic: state changes depend only on the items, the slot and storage; writes go out in
 * sorted device order, then outcomes in package order.
 */
import { type AccumulateHost, type AccumulateItem, gasSchedule } from "../../node/service-api/index.ts";
import { PackageOutcomes, resultsOf } from "../common/dispatch.ts";
import {
  OUTCOME_FIFO_KEY,
  OUTCOME_FIXED_BYTES,
  type OutcomeBuilder,
  outcomeFifoSlotKey,
  outcomeKey,
  REJECTED_REGISTRATION_BYTES,
  REJECTED_RUN_BYTES,
} from "../common/outcome.ts";
import { Store } from "../common/store.ts";
import { decodeRefineOutput, type EnvelopesOutput, REGISTRATION_KEYS_OUTPUT, type RegistrationKeysOutput, type RegistrationsOutput } from "./output.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, ItemKind, type RawDeviceId } from "./payload.ts";
import { DeviceRegistry } from "./registry.ts";
import { DEVICE_RECORD_BYTES, deviceKey, EMPTY_STATS, STATS_KEY, statsCodec } from "./storage.ts";

const SERVICE = "telemetry";

export function accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void {
  const store = new Store(host, SERVICE);
  const registry = new DeviceRegistry(store);
  const packages = new PackageOutcomes();
  for (const { output, outcome } of resultsOf(SERVICE, items, decodeRefineOutput, packages)) {
    if (output.kind === REGISTRATION_KEYS_OUTPUT) applyRegistrationKeys(output, registry, outcome, host);
    else if (output.kind === ItemKind.registrations) applyRegistrations(output, registry, outcome, host.slot);
    else applyEnvelopes(output, registry, outcome, host.slot);
  }
  if (packages.size === 0) return;
  const stats = store.cell(STATS_KEY, statsCodec, EMPTY_STATS);
  packages.store(host, (outcome) => {
    let rejected = 0n;
    for (const run of outcome.rejectedEnvelopes) rejected += BigInt(run.length);
    const before = stats.get();
    stats.set({
      devicesRegistered: before.devicesRegistered + BigInt(outcome.registrationsSettled),
      envelopesSettled: before.envelopesSettled + BigInt(outcome.envelopesSettled),
      envelopesRejected: before.envelopesRejected + rejected,
    });
  });
  store.flush();
}

function applyRegistrations(output: RegistrationsOutput, registry: DeviceRegistry, outcome: OutcomeBuilder, slot: number): void {
  for (const r of output.registrations) {
    const refused = registry.register(r.deviceId, r.publicKey, r.kind, slot);
    if (refused === null) outcome.settleRegistration();
    else outcome.rejectRegistration(r.deviceId, refused);
  }
}

/** Registrations as refine hands them on now (keys): each device's id is the first 16 bytes of H(key), hashed here (docs/protocol.md, "Identity"). */
function applyRegistrationKeys(output: RegistrationKeysOutput, registry: DeviceRegistry, outcome: OutcomeBuilder, host: AccumulateHost): void {
  for (const r of output.registrations) {
    const deviceId = host.hash(r.publicKey).subarray(0, DEVICE_ID_BYTES) as RawDeviceId;
    const refused = registry.register(deviceId, r.publicKey, r.kind, host.slot);
    if (refused === null) outcome.settleRegistration();
    else outcome.rejectRegistration(deviceId, refused);
  }
}

function applyEnvelopes(output: EnvelopesOutput, registry: DeviceRegistry, outcome: OutcomeBuilder, slot: number): void {
  outcome.commitments.push(output.commitment);
  for (const device of output.devices) {
    for (const r of device.rejected) outcome.rejectEnvelope(device.deviceId, r.seq, r.code);
    for (const run of device.accepted) {
      const end = run.start + BigInt(run.length);
      for (let seq = run.start; seq < end; seq++) {
        const refused = registry.settle(device.deviceId, seq, slot);
        if (refused === null) outcome.settleEnvelope(device.deviceId, seq);
        else outcome.rejectEnvelope(device.deviceId, seq, refused);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Gas: what the gateway sets as a work item's accumulate gas limit (GP 11.1.4 g).

const g = gasSchedule;
const DEVICE_KEY_BYTES = deviceKey(new Uint8Array(16)).length;
const OUTCOME_KEY_BYTES = outcomeKey(new Uint8Array(32)).length;
const FIFO_SLOT_KEY_BYTES = outcomeFifoSlotKey(0).length;
const STATS_BYTES = STATS_KEY.length + statsCodec.fixedBytes!;
const FIFO_COUNTER_BYTES = OUTCOME_FIFO_KEY.length + 8;
/** One device record read and written. */
const GAS_PER_DEVICE =
  2n * g.hostCallBase + g.perByteRead * BigInt(DEVICE_KEY_BYTES + DEVICE_RECORD_BYTES) + g.perByteWritten * BigInt(DEVICE_KEY_BYTES + DEVICE_RECORD_BYTES);
/** The worst an envelope adds to its outcome: a refused run of its own. */
const GAS_PER_ENVELOPE = g.perByteWritten * BigInt(REJECTED_RUN_BYTES);
/** A registration: its key hashed into its device id, its device record, and a refusal entry at worst. */
const GAS_PER_REGISTRATION =
  g.hostCallBase + g.perByteHashed * BigInt(ED25519_PUBLIC_KEY_BYTES) + GAS_PER_DEVICE + g.perByteWritten * BigInt(REJECTED_REGISTRATION_BYTES);
/** Host calls of an item, as if it were alone in its call and its package. */
const GAS_PER_ITEM = gasOf([
  { read: STATS_BYTES },
  { write: STATS_BYTES },
  { read: FIFO_COUNTER_BYTES },
  { write: FIFO_COUNTER_BYTES },
  { read: OUTCOME_KEY_BYTES }, // is there an outcome already?
  { read: FIFO_SLOT_KEY_BYTES + 32 }, // the oldest package
  { write: OUTCOME_KEY_BYTES }, // its outcome deleted
  { write: OUTCOME_KEY_BYTES + OUTCOME_FIXED_BYTES + 32 }, // this one's, with one commitment
  { write: FIFO_SLOT_KEY_BYTES + 32 },
]);

function gasOf(calls: readonly ({ readonly read: number } | { readonly write: number })[]): bigint {
  let gas = 0n;
  for (const call of calls) gas += g.hostCallBase + ("read" in call ? g.perByteRead * BigInt(call.read) : g.perByteWritten * BigInt(call.write));
  return gas;
}

/**
 * An accumulate gas limit that always suffices for an item of this shape (each item's own; the
 * node sums the items of a call): e.g. 1,000 devices × 5 envelopes ≈ 2.6e6, within G_A = 1e7.
 */
export function accumulateGasLimit(shape: { readonly devices?: number; readonly envelopes?: number; readonly registrations?: number }): bigint {
  return (
    GAS_PER_ITEM +
    BigInt(shape.devices ?? 0) * GAS_PER_DEVICE +
    BigInt(shape.envelopes ?? 0) * GAS_PER_ENVELOPE +
    BigInt(shape.registrations ?? 0) * GAS_PER_REGISTRATION
  );
}
