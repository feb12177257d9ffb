/**
 * Accumulation (GP 12, ∆+ / ∆* / ∆1, simplified for native services): the block's available
 * reports, after those left over from earlier blocks, are accumulated in order as far as the
 * block's gas G_T goes; the rest wait in the queue. Within a round, each service (ascending id)
 * gets one call with all of its work results in report order; transfers a service makes are
 * deferred to the next round (GP 0.7.1+), where the amount is credited and the destination is
 * called with the transfers as its items. A service whose accumulate throws or runs out of gas
 * changes nothing (its writes and transfers are dropped), as a PVM panic reverts to the
 * checkpoint in the Gray Paper. Services in χ_Z (always-accumulate) are called in round 0 of every
 * block, with their χ_Z gas on top of their items' gas, as GP 12.17 adds it (the free gas does not
 * come out of the reports' budget).
 *
 * Deterministic: no clock (the slot is the time), no randomness, no I/O; iteration orders are
 * sorted; amounts are bigint.
 */
import type { WorkReport } from "@typeberry/lib/block";
import { tryAsTimeSlot } from "@typeberry/lib/block";
import { tryAsU64 } from "@typeberry/lib/numbers";
import type { ChainParams } from "../chain/params.ts";
import { toHex } from "../codec/jam.ts";
import { hash } from "../crypto/hash.ts";
import { GasMeter, gasSchedule, OutOfGas } from "../service-api/gas.ts";
import type { AccumulateHost, AccumulateItem, AccumulateTransferItem, ServiceModule, TransferOutcome } from "../service-api/service.ts";
import { StateComponents } from "../state/components.ts";
import { type Kv, Overlay } from "../state/kv.ts";

/** Finds a service's code by its code hash (native modules loaded by the node). */
export type ServiceResolver = (codeHash: Uint8Array) => ServiceModule | null;

/** Rounds of deferred transfers after the first; transfers still pending after the last are credited without a call. */
const TRANSFER_ROUNDS_MAX = 8;
/** Bounds on one storage write: keeps one accumulate from growing state without limit in one call. */
export const STORAGE_KEY_BYTES_MAX = 1_024;
export const STORAGE_VALUE_BYTES_MAX = 4 * 1024 * 1024;
/** Log lines kept per accumulation call (the rest are counted, not kept). */
const LOG_LINES_MAX = 64;

export interface AccumulateLog {
  readonly serviceId: number;
  readonly message: string;
}

export interface ServiceAccumulation {
  readonly serviceId: number;
  readonly round: number;
  readonly items: number;
  readonly gasUsed: bigint;
  /** null when it succeeded; otherwise why its changes were dropped. */
  readonly failure: string | null;
}

export interface AccumulationOutcome {
  /** Hashes of the packages whose reports were accumulated, in order. */
  readonly accumulatedPackages: Uint8Array[];
  readonly gasUsed: bigint;
  readonly calls: ServiceAccumulation[];
  readonly logs: AccumulateLog[];
}

interface Transfer {
  readonly source: number;
  readonly destination: number;
  readonly amount: bigint;
  readonly gasLimit: bigint;
  readonly memo: Uint8Array;
}

/** The accumulate gas a report asks for: the sum of its results' `g` (GP 11.1.4, the items' accumulate gas limits). */
export function reportGas(report: WorkReport): bigint {
  let gas = 0n;
  for (const r of report.results) gas += r.gas;
  return gas;
}

export function accumulate(kv: Kv, params: ChainParams, resolve: ServiceResolver, newlyAvailable: readonly WorkReport[], slot: number): AccumulationOutcome {
  const state = new StateComponents(kv, params);
  const queue = [...state.accumulationQueue(), ...newlyAvailable];
  let gasBudget = params.accumulateGasPerBlock;
  const selected: WorkReport[] = [];
  while (queue.length > 0 && reportGas(queue[0]!) <= gasBudget) {
    const report = queue.shift()!;
    gasBudget -= reportGas(report);
    selected.push(report);
  }
  state.setAccumulationQueue(queue);

  const calls: ServiceAccumulation[] = [];
  const logs: AccumulateLog[] = [];
  let gasUsed = 0n;

  // Round 0: work results, grouped by service in ascending id, in report and item order.
  const byService = new Map<number, AccumulateItem[]>();
  for (const report of selected) {
    for (const result of report.results) {
      if (result.result.okBlob === null) continue; // the node reports only successful refines
      const items = byService.get(result.serviceId) ?? [];
      items.push({
        kind: "result",
        packageHash: report.workPackageSpec.hash.raw,
        payloadHash: result.payloadHash.raw,
        output: result.result.okBlob.raw,
        gasLimit: result.gas,
        coreIndex: report.coreIndex,
      });
      byService.set(result.serviceId, items);
    }
  }
  const freeGas = new Map<number, bigint>();
  for (const always of state.alwaysAccumulate()) {
    freeGas.set(always.serviceId, always.gas);
    if (!byService.has(always.serviceId)) byService.set(always.serviceId, []);
  }
  let transfers: Transfer[] = [];
  for (const serviceId of [...byService.keys()].sort((a, b) => a - b)) {
    const items = byService.get(serviceId)!;
    const gasLimit = items.reduce((sum, i) => sum + i.gasLimit, freeGas.get(serviceId) ?? 0n);
    const call = accumulateService(kv, params, resolve, serviceId, items, gasLimit, slot, 0, logs);
    calls.push(call.summary);
    gasUsed += call.summary.gasUsed;
    transfers.push(...call.transfers);
  }

  // Later rounds: deferred transfers, credited now and handed to their destinations.
  for (let round = 1; transfers.length > 0; round++) {
    const incoming = new Map<number, AccumulateTransferItem[]>();
    for (const t of transfers) {
      state.updateServiceAccount(t.destination, (a) => ({ balance: tryAsU64(a.balance + t.amount) }));
      const items = incoming.get(t.destination) ?? [];
      items.push({ kind: "transfer", source: t.source, amount: t.amount, memo: t.memo, gasLimit: t.gasLimit });
      incoming.set(t.destination, items);
    }
    transfers = [];
    if (round > TRANSFER_ROUNDS_MAX) break;
    for (const destination of [...incoming.keys()].sort((a, b) => a - b)) {
      const items = incoming.get(destination)!;
      const gasLimit = items.reduce((sum, i) => sum + i.gasLimit, 0n);
      const call = accumulateService(kv, params, resolve, destination, items, gasLimit, slot, round, logs);
      calls.push(call.summary);
      gasUsed += call.summary.gasUsed;
      transfers.push(...call.transfers);
    }
  }

  return { accumulatedPackages: selected.map((r) => r.workPackageSpec.hash.raw), gasUsed, calls, logs };
}

function accumulateService(
  kv: Kv,
  params: ChainParams,
  resolve: ServiceResolver,
  serviceId: number,
  items: readonly AccumulateItem[],
  gasLimit: bigint,
  slot: number,
  round: number,
  logs: AccumulateLog[],
): { summary: ServiceAccumulation; transfers: Transfer[] } {
  const overlay = new Overlay(kv);
  const state = new StateComponents(overlay, params);
  const account = state.serviceAccount(serviceId);
  const service = account === null ? null : resolve(account.codeHash.raw);
  if (service === null) {
    const failure = account === null ? "no such service" : `no code for code hash ${toHex(account.codeHash.raw)}`;
    return { summary: { serviceId, round, items: items.length, gasUsed: 0n, failure }, transfers: [] };
  }
  const gas = new GasMeter(gasLimit);
  const transfers: Transfer[] = [];
  const callLogs: AccumulateLog[] = [];
  let droppedLogLines = 0;
  const host: AccumulateHost = {
    serviceId,
    slot,
    gas,
    read(key) {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteRead * BigInt(key.length));
      const value = state.storageGet(serviceId, key);
      if (value !== null) gas.charge(gasSchedule.perByteRead * BigInt(value.length));
      return value === null ? null : value.slice();
    },
    write(key, value) {
      if (key.length > STORAGE_KEY_BYTES_MAX) throw new Error(`storage key of ${key.length} bytes > ${STORAGE_KEY_BYTES_MAX}`);
      if (value !== null && value.length > STORAGE_VALUE_BYTES_MAX) throw new Error(`storage value of ${value.length} bytes > ${STORAGE_VALUE_BYTES_MAX}`);
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteWritten * BigInt(key.length + (value?.length ?? 0)));
      state.storageSet(serviceId, key.slice(), value === null ? null : value.slice());
    },
    info(id = serviceId) {
      gas.charge(gasSchedule.hostCallBase);
      return state.serviceInfo(id);
    },
    transfer(destination, amount, transferGas, memo): TransferOutcome {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.transferBase + BigInt(memo.length));
      if (amount < 0n) throw new Error(`negative transfer amount ${amount}`);
      if (state.serviceAccount(destination) === null) return "unknown-destination";
      const source = state.serviceAccount(serviceId)!;
      if (source.balance < amount) return "insufficient-balance";
      if (transferGas > gas.remaining) return "low-gas";
      gas.charge(transferGas); // the destination's gas is paid from the sender's (GP 12.2)
      state.updateServiceAccount(serviceId, (a) => ({ balance: tryAsU64(a.balance - amount) }));
      transfers.push({ source: serviceId, destination, amount, gasLimit: transferGas, memo: memo.slice() });
      return "ok";
    },
    log(message) {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteLogged * BigInt(message.length));
      if (callLogs.length < LOG_LINES_MAX) callLogs.push({ serviceId, message });
      else droppedLogLines++;
    },
    hash(data) {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteHashed * BigInt(data.length));
      return hash(data);
    },
  };
  let failure: string | null = null;
  try {
    service.accumulate(items, host);
  } catch (e) {
    failure = e instanceof OutOfGas ? `out of gas at ${gasLimit}` : `accumulate threw: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (droppedLogLines > 0) callLogs.push({ serviceId, message: `(${droppedLogLines} more log lines dropped)` });
  logs.push(...callLogs);
  if (failure !== null) {
    return { summary: { serviceId, round, items: items.length, gasUsed: gas.used, failure }, transfers: [] };
  }
  state.updateServiceAccount(serviceId, () => ({ lastAccumulation: tryAsTimeSlot(slot) }));
  overlay.commit();
  return { summary: { serviceId, round, items: items.length, gasUsed: gas.used, failure: null }, transfers };
}
