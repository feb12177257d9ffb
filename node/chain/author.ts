/**
 * Block authoring: one block per slot, one at a time. Each block is built (the validators'
 * assurances, guarantees of the refined reports whose cores are free, the seal), imported
 * through the state-transition function (stf.ts, as replay imports it), its packages' statuses
 * moved (status.ts), persisted (the block, its state changes and those statuses in one LMDB
 * transaction) and then announced (status and block subscribers, the log line).
 */
import { type Block, WorkReport } from "@typeberry/lib/block";
import { setTimeout as sleep } from "node:timers/promises";
import { codedError, type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import type { BlockDescriptor, Unsubscribe } from "../api.ts";
import type { Availability } from "../availability/availability.ts";
import { encode, toHex } from "../codec/jam.ts";
import type { Ed25519KeyPair } from "../crypto/ed25519.ts";
import { guarantee, reportHash } from "../guarantor/guarantee.ts";
import type { RefineQueue } from "../intake/refine-queue.ts";
import type { NodeLogger } from "../log.ts";
import { StateComponents } from "../state/components.ts";
import { type BlockStatusChanges, type PackageStatuses, SUBSCRIBERS_MAX } from "../status.ts";
import type { Store } from "../storage/store.ts";
import { encodeBlock, headerHash, makeExtrinsic, sealBlock } from "./block.ts";
import type { ChainHead } from "./head.ts";
import type { ChainParams } from "./params.ts";
import type { LoadedServices } from "./services.ts";
import { applyBlock, type BlockOutcome, coresFreedBy } from "./stf.ts";

export interface BlockAuthorDeps {
  readonly params: ChainParams;
  readonly validators: readonly Ed25519KeyPair[];
  readonly head: ChainHead;
  readonly store: Store;
  readonly services: LoadedServices;
  readonly availability: Availability;
  readonly refineQueue: RefineQueue;
  readonly statuses: PackageStatuses;
  readonly count: (code: ErrorCode) => void;
  readonly log: NodeLogger;
}

/** A block as authored: sealed, not yet imported. */
interface BuiltBlock {
  readonly slot: number;
  readonly parentHash: Uint8Array;
  readonly block: Block;
}

/** A block imported into the head's state, not yet stored. */
interface ImportedBlock extends BuiltBlock {
  readonly hash: Uint8Array;
  readonly stateRoot: Uint8Array;
  readonly outcome: BlockOutcome;
  /** performance.now() before import: the log line's importMs runs from here to the block's announcement. */
  readonly startedMs: number;
}

/** What the block changes off the state: its packages' statuses, and the reports it includes (by hash, GP-encoded). */
interface BlockEffects {
  readonly statuses: BlockStatusChanges;
  readonly reports: Map<string, Uint8Array>;
}

export class BlockAuthor {
  private readonly subscribers = new Set<(b: BlockDescriptor) => void>();
  private authoring: Promise<unknown> = Promise.resolve();
  private running = false;
  /** Cuts the wait for the next slot short on stop (a 6 s slot made Ctrl-C wait up to 6 s). */
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(private readonly deps: BlockAuthorDeps) {}

  /** Authors a block every `slotMs` until stop(). */
  run(slotMs: number): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      let next = Date.now() + slotMs;
      while (this.running) {
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait, undefined, { signal: this.stopping.signal }).catch(() => undefined);
        if (!this.running) break;
        await this.produce();
        next = Math.max(next + slotMs, Date.now());
      }
    })();
  }

  /** Ends the slot loop and waits for the block being authored, if any. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    await this.loop;
    await this.authoring;
  }

  /** Authors, imports and persists the next block. Serialized: one block at a time. */
  produce(): Promise<BlockDescriptor> {
    const next = this.authoring.then(() => this.author());
    this.authoring = next.catch(() => undefined);
    return next;
  }

  subscribe(onBlock: (block: BlockDescriptor) => void): Unsubscribe {
    if (this.subscribers.size >= SUBSCRIBERS_MAX) throw new JamgateError("JG_ERR_RPC_LIMIT", `the node has ${SUBSCRIBERS_MAX} block subscribers`);
    const subscriber = (b: BlockDescriptor) => onBlock(b);
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  private author(): BlockDescriptor {
    const built = this.build();
    const imported = this.import(built);
    const effects = this.effects(imported);
    this.persist(imported, effects);
    return this.announce(imported, effects);
  }

  /** The next slot's block: each validator assures the engaged cores whose chunk it holds; each free core gets its next refined report. */
  private build(): BuiltBlock {
    const { params, head, availability, validators, refineQueue } = this.deps;
    const slot = head.best.slot + 1;
    const parentHash = head.best.hash;
    const assurances = availability.assurances(new StateComponents(head.state, params).pending(), parentHash);
    const assured = new Map<number, number>();
    for (const a of assurances)
      for (let core = 0; core < params.coresCount; core++) if (a.bitfield.isSet(core)) assured.set(core, (assured.get(core) ?? 0) + 1);
    const free = coresFreedBy(params, head.state, assured, slot);
    const guarantees = [];
    for (let core = 0; core < params.coresCount; core++) {
      const ready = free[core] ? refineQueue.takeReady(core) : undefined;
      if (ready !== undefined) guarantees.push(guarantee(params, validators, ready.report, slot));
    }
    const author = slot % params.validatorsCount;
    const block = sealBlock(
      params,
      { parentHash, priorStateRoot: head.best.stateRoot, slot, authorIndex: author },
      makeExtrinsic(guarantees, assurances),
      validators[author]!,
    );
    return { slot, parentHash, block };
  }

  /** Applies the block to the head's state; a block the node authored that does not import is a bug. */
  private import(built: BuiltBlock): ImportedBlock {
    const { params, head, services } = this.deps;
    const startedMs = performance.now();
    const result = applyBlock(head.state, params, services.resolve, built.block, built.parentHash, head.best.stateRoot);
    if (!result.ok) throw new Error(`the node authored a block it cannot import: ${result.error}`);
    return { ...built, hash: headerHash(params, built.block.header), stateRoot: head.state.root(), outcome: result.value, startedMs };
  }

  /** Each package the block reports, makes available, accumulates or times out moves on; the reports it includes are kept by hash. */
  private effects({ slot, hash, outcome }: ImportedBlock): BlockEffects {
    const { params, statuses: all } = this.deps;
    const block = { hash: toHex(hash), slot };
    const statuses = all.forBlock();
    const reports = new Map<string, Uint8Array>();
    for (const r of outcome.reported) {
      const rHash = toHex(reportHash(params, r));
      reports.set(rHash, encode(WorkReport.Codec, r, params.spec));
      statuses.move(r.workPackageSpec.hash.raw, { kind: "reported", reportHash: rHash, block });
    }
    for (const r of outcome.available) statuses.move(r.workPackageSpec.hash.raw, { kind: "available", block });
    for (const p of outcome.accumulation.accumulatedPackages) statuses.move(p, { kind: "accumulated", block });
    for (const r of outcome.timedOut) {
      this.deps.count("JG_ERR_REPORT_TIMEOUT");
      const error = codedError("JG_ERR_REPORT_TIMEOUT", `not available within U = ${params.availabilityTimeoutSlots} slots`);
      statuses.move(r.workPackageSpec.hash.raw, { kind: "failed", error });
    }
    return { statuses, reports };
  }

  /** Stores the block with everything it changes in one transaction, makes it the best, and drops what it made unneeded. */
  private persist(imported: ImportedBlock, { statuses, reports }: BlockEffects): void {
    const { params, store, head, availability } = this.deps;
    const { slot, hash, stateRoot, outcome } = imported;
    store.writeBlock({
      block: { slot, hash, encoded: encodeBlock(params, imported.block), stateRoot },
      stateChanges: outcome.changes,
      packages: [...statuses.records.values()],
      reports,
    });
    head.advance({ slot, hash, stateRoot }, outcome.previous);
    // Reported bundles live on as chunks: the whole bundle was kept only to refine again after a restart.
    for (const r of outcome.reported) store.removeBundle(toHex(r.workPackageSpec.hash.raw));
    availability.prune(slot);
  }

  /** Tells status subscribers, logs the block (and its services' log lines), then tells block subscribers. */
  private announce({ slot, hash, stateRoot, outcome, startedMs }: ImportedBlock, { statuses }: BlockEffects): BlockDescriptor {
    this.deps.statuses.blockWritten(statuses);
    const failed = outcome.accumulation.calls.filter((c) => c.failure !== null);
    this.deps.log.info(
      {
        slot,
        hash: toHex(hash),
        reports: {
          guaranteed: outcome.reported.length,
          available: outcome.available.length,
          accumulated: outcome.accumulation.accumulatedPackages.length,
          timedOut: outcome.timedOut.length,
        },
        gasUsed: outcome.accumulation.gasUsed.toString(),
        stateRoot: toHex(stateRoot),
        importMs: Math.round(performance.now() - startedMs),
        ...(failed.length > 0 ? { failedAccumulations: failed.map((f) => ({ service: f.serviceId, failure: f.failure })) } : {}),
      },
      "block",
    );
    for (const line of outcome.accumulation.logs) this.deps.log.info({ slot, service: line.serviceId }, line.message);
    const descriptor = { headerHash: hash, slot };
    for (const subscriber of this.subscribers) subscriber(descriptor);
    return descriptor;
  }
}
