/**
 * The block state-transition function of the embedded node (GP 4.1, Υ(σ, B) = σ'), in Gray Paper
 * order for the parts it has: header checks, assurances (ρ‡, GP 11.2), timeouts, guarantees
 * (ρ', GP 11.4), accumulation of what became available (GP 12), then τ' = slot.
 *
 * Pure function of (state, block): the same blocks give the same state root on any machine.
 * It works on an overlay; a block that fails a check changes nothing.
 */
import type { Block, WorkReport } from "@typeberry/lib/block";
import type { ChainParams } from "./params.ts";
import { bytesEqual, toHex } from "../codec/jam.ts";
import { accumulate, type AccumulationOutcome, type ServiceResolver } from "../accumulate/accumulate.ts";
import { checkAssuranceSignature, isAvailable } from "../availability/assurance.ts";
import { checkGuarantee, reportHash } from "../guarantor/guarantee.ts";
import { StateComponents } from "../state/components.ts";
import { type Kv, Overlay } from "../state/kv.ts";
import { checkSeal, extrinsicHash } from "./block.ts";
import { err, ok, type Result } from "../../devices/protocol/errors.ts";

export interface BlockOutcome {
  /** Reports included by this block's guarantees. */
  readonly reported: WorkReport[];
  /** Reports that became available in this block. */
  readonly available: WorkReport[];
  /** Reports dropped because they were not available within U slots. */
  readonly timedOut: WorkReport[];
  readonly accumulation: AccumulationOutcome;
  /** Changes to state entries (null = removed), to persist with the block. */
  readonly changes: Map<string, Uint8Array | null>;
  /** The values those entries had before the block (null = absent): an undo log. */
  readonly previous: Map<string, Uint8Array | null>;
}

/** Cores free after this block's assurances and timeouts, for an author choosing guarantees. */
export function coresFreedBy(params: ChainParams, kv: Kv, assured: ReadonlyMap<number, number>, slot: number): boolean[] {
  const pending = new StateComponents(kv, params).pending();
  return pending.map((p, core) => p === null || isAvailable(params, assured.get(core) ?? 0) || slot >= p.reportedSlot + params.availabilityTimeoutSlots);
}

/**
 * Applies `block` to `state` (through an overlay). `parentHash` and `priorStateRoot` are the
 * chain's view of the parent; the caller computed them from the same state.
 */
export function applyBlock(
  state: Kv,
  params: ChainParams,
  resolve: ServiceResolver,
  block: Block,
  parentHash: Uint8Array,
  priorStateRoot: Uint8Array,
): Result<BlockOutcome, string> {
  const overlay = new Overlay(state);
  const s = new StateComponents(overlay, params);
  const header = block.header;
  const slot = header.timeSlotIndex;
  const validatorKeys = s.validatorKeys();

  if (slot <= s.timeslot()) return err(`slot ${slot} is not after the state's slot ${s.timeslot()}`);
  if (!bytesEqual(header.parentHeaderHash.raw, parentHash)) return err("parent hash is not the best block's hash");
  if (!bytesEqual(header.priorStateRoot.raw, priorStateRoot)) return err("prior state root does not match the parent's posterior state");
  const author = slot % params.validatorsCount;
  if (header.bandersnatchBlockAuthorIndex !== author) return err(`author ${header.bandersnatchBlockAuthorIndex} is not slot ${slot}'s author ${author}`);
  if (!checkSeal(params, header, validatorKeys[author]!)) return err("bad seal");
  if (!bytesEqual(header.extrinsicHash.raw, extrinsicHash(params, block.extrinsic))) return err("extrinsic hash does not match the extrinsic");
  const ex = block.extrinsic;
  if (ex.tickets.length > 0 || ex.preimages.length > 0 || ex.disputes.verdicts.length > 0 || ex.disputes.culprits.length > 0 || ex.disputes.faults.length > 0) {
    return err("tickets, preimages and disputes are not supported by the embedded node");
  }

  // Assurances (GP 11.2): anchored on the parent, sorted by validator, signed, only for engaged cores.
  const pending = s.pending();
  const assured = new Map<number, number>();
  let previousValidator = -1;
  for (const a of ex.assurances) {
    if (!bytesEqual(a.anchor.raw, parentHash)) return err(`assurance by ${a.validatorIndex} is not anchored on the parent`);
    if (a.validatorIndex <= previousValidator) return err("assurances not sorted by validator index");
    previousValidator = a.validatorIndex;
    if (!checkAssuranceSignature(validatorKeys, a)) return err(`bad assurance signature from validator ${a.validatorIndex}`);
    for (let core = 0; core < params.coresCount; core++) {
      if (!a.bitfield.isSet(core)) continue;
      if (pending[core] === null) return err(`validator ${a.validatorIndex} assures core ${core}, which has no pending report`);
      assured.set(core, (assured.get(core) ?? 0) + 1);
    }
  }
  const available: WorkReport[] = [];
  const timedOut: WorkReport[] = [];
  for (let core = 0; core < params.coresCount; core++) {
    const p = pending[core];
    if (p === null || p === undefined) continue;
    if (isAvailable(params, assured.get(core) ?? 0)) {
      available.push(p.report);
      pending[core] = null;
    } else if (slot >= p.reportedSlot + params.availabilityTimeoutSlots) {
      timedOut.push(p.report);
      pending[core] = null;
    }
  }

  // Guarantees (GP 11.4): sorted by core, core free, valid credentials, known services, W_R.
  const queued = new Set(s.accumulationQueue().map((r) => toHex(r.workPackageSpec.hash.raw)));
  for (const p of pending) if (p !== null) queued.add(toHex(p.report.workPackageSpec.hash.raw));
  const reported: WorkReport[] = [];
  let previousCore = -1;
  for (const g of ex.guarantees) {
    const core = g.report.coreIndex;
    if (core <= previousCore) return err("guarantees not sorted by core");
    previousCore = core;
    if (core >= params.coresCount) return err(`guarantee for core ${core}, which does not exist`);
    if (pending[core] !== null) return err(`core ${core} is still engaged`);
    if (g.slot > slot || Math.floor(g.slot / params.rotationPeriod) < Math.floor(slot / params.rotationPeriod) - 1)
      return err(`guarantee slot ${g.slot} is outside the current or previous rotation`);
    const problem = checkGuarantee(params, validatorKeys, g);
    if (problem !== null) return err(`guarantee for core ${core}: ${problem}`);
    let resultBytes = g.report.authorizationOutput.length;
    for (const r of g.report.results) {
      const account = s.serviceAccount(r.serviceId);
      if (account === null || !bytesEqual(account.codeHash.raw, r.codeHash.raw))
        return err(`report names service ${r.serviceId} with a code hash it does not have`);
      resultBytes += r.result.okBlob?.length ?? 0;
    }
    if (resultBytes > params.maxReportResultsBytes) return err(`report results of ${resultBytes} bytes exceed W_R`);
    const packageHex = toHex(g.report.workPackageSpec.hash.raw);
    if (queued.has(packageHex)) return err(`package ${packageHex} is already reported`);
    queued.add(packageHex);
    pending[core] = { report: g.report, reportedSlot: slot };
    reported.push(g.report);
  }
  s.setPending(pending);

  const accumulation = accumulate(overlay, params, resolve, available, slot);
  s.setTimeslot(slot);
  const changes = new Map(overlay.changes);
  const previous = new Map([...changes.keys()].map((key) => [key, state.get(key)] as const));
  overlay.commit();
  return ok({ reported, available, timedOut, accumulation, changes, previous });
}

export { reportHash };
