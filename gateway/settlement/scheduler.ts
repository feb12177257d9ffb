/**
 * When to pack: the one timer that starts a packing, aligned to the node's blocks. It follows
 * the blocks (the block clock) and refine's recent pack → refined times (the lead), and packs
 * just in time for the next block once it knows both; every batch deadline before that (or with
 * packing "deadline"); at once for a full package; after a retry's backoff when told so.
 */
import type { NodeApi } from "../../node/api.ts";
import { settlementLimits } from "./limits.ts";

/** When the last block arrived here (performance.now() scale), its slot, and the slot period: the block clock packing aligns to. */
export interface BlockClock {
  readonly lastBlockAt: number;
  readonly lastSlot: number;
  readonly slotMs: number;
}

export interface PackSchedulerDeps {
  readonly api: Pick<NodeApi, "parameters" | "subscribeBestBlock">;
  /** "aligned" (the default): pack once per slot, just in time for the next block; "deadline": every batchDeadlineMs. */
  readonly packing?: "aligned" | "deadline";
  /** Wait before packing when not aligned to a block (ms). */
  readonly batchDeadlineMs: number;
  /** Whether some service has a full package pending: it is packed at once. */
  fullPending(): boolean;
  /** Starts a packing; `aligned`: the one for the next block. */
  pack(aligned: boolean): void;
  readonly logger?: { warn(o: object, m: string): void };
}

export class PackScheduler {
  private clock: BlockClock | null = null;
  private unsubscribeBlocks: (() => void) | null = null;
  /** The block-aligned packing time (performance.now() scale) last packed at. */
  private packedFor: number | null = null;
  /** Pack → refined times (ms) of the latest packages, at most settlementLimits.refineSamples. */
  private readonly refineMs: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly deps: PackSchedulerDeps) {}

  /** Schedules a packing and starts following the node's blocks. */
  start(): void {
    this.stopped = false;
    this.schedule();
    void this.followBlocks();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.unsubscribeBlocks?.();
    this.unsubscribeBlocks = null;
  }

  /** Sets the timer for the next packing unless one is set: after `delayMs` if given, else as packDelay says. */
  schedule(delayMs?: number): void {
    if (this.stopped || this.timer !== null) return;
    const { delayMs: delay, alignedTo } = delayMs === undefined ? this.packDelay() : { delayMs, alignedTo: null };
    this.timer = setTimeout(() => {
      this.timer = null;
      if (alignedTo !== null) this.packedFor = alignedTo;
      this.deps.pack(alignedTo !== null);
    }, delay);
  }

  /** Replaces the timer: the next packing comes after `delayMs` (a failed package's backoff). */
  reschedule(delayMs: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.schedule(delayMs);
  }

  /** A package's pack → refined time (ms): the lead is the slowest of the latest few. */
  sampleRefine(ms: number): void {
    this.refineMs.push(ms);
    if (this.refineMs.length > settlementLimits.refineSamples) this.refineMs.shift();
  }

  /** The lead for a slot of `slotMs`: how long before the next block packing starts; null before any package was refined. */
  leadMs(slotMs: number): number | null {
    return leadMs(this.refineMs, slotMs);
  }

  /** The slot of the block a packing started at `now` is for (targetSlot); null before the first block is seen. */
  targetSlot(now: number = performance.now()): number | null {
    const clock = this.clock;
    return clock === null ? null : targetSlot(clock, this.leadMs(clock.slotMs) ?? 0, now);
  }

  /** Follows the node's blocks, so packing can align to them (see packDelay). */
  private async followBlocks(): Promise<void> {
    try {
      const slotMs = (await this.deps.api.parameters()).slot_period_sec! * 1000;
      if (!(slotMs > 0)) throw new Error(`slot period ${slotMs} ms`);
      const unsubscribe = await this.deps.api.subscribeBestBlock((block) => {
        this.clock = { lastBlockAt: performance.now(), lastSlot: block.slot, slotMs };
      });
      if (this.stopped) unsubscribe();
      else this.unsubscribeBlocks = unsubscribe;
    } catch (e) {
      this.deps.logger?.warn({ err: String(e) }, "cannot follow the node's blocks: packing every batch deadline instead");
    }
  }

  /**
   * How long to wait before packing. A package is guaranteed in the first block after it is
   * refined, and each core takes one package per block, so packing earlier than "next block −
   * refine time" makes nothing settle sooner: it only makes smaller packages, and the cores'
   * one-per-block capacity is counted in packages. So, once the block clock and refine's recent
   * times are known, packing waits for the last moment that still makes the next block (less a
   * margin), and then packs what is pending into one package per free core. A full package goes
   * at once. Before the clock and a refine time are known, it packs every batch deadline.
   */
  private packDelay(): { readonly delayMs: number; readonly alignedTo: number | null } {
    if (this.deps.fullPending()) return { delayMs: 0, alignedTo: null };
    const clock = this.clock;
    const lead = clock === null ? null : this.leadMs(clock.slotMs);
    if (this.deps.packing === "deadline" || clock === null || lead === null) return { delayMs: this.deps.batchDeadlineMs, alignedTo: null };
    const now = performance.now();
    const packAt = nextPackAt(clock, lead, this.packedFor, now);
    return { delayMs: Math.max(0, packAt - now), alignedTo: packAt };
  }
}

/** The slowest of `refineMs` (pack → refined times) plus the margin (leadMarginMs, at most leadMarginSlotShareMax of a slot), or null for none. */
export function leadMs(refineMs: readonly number[], slotMs: number): number | null {
  const margin = Math.min(settlementLimits.leadMarginMs, slotMs * settlementLimits.leadMarginSlotShareMax);
  return refineMs.length === 0 ? null : Math.max(...refineMs) + margin;
}

/**
 * The time (performance.now() scale) to pack for a block: the next block's time less the lead.
 * The one after once that is more than half the lead behind `now`, or once `packedFor`, the last
 * aligned packing, was for it (what came since waits for the next block's packing).
 */
export function nextPackAt(clock: BlockClock, leadMs: number, packedFor: number | null, now: number): number {
  // Refine slower than a slot: pack as each block arrives. Packing more often would only make
  // more, smaller packages for the same blocks (measured: packing every deadline then, p50 receipt
  // ~3.4 slots against ~2.5 at 2,000/s; BENCHMARKS.md §5).
  const lead = Math.min(leadMs, clock.slotMs);
  let packAt = clock.lastBlockAt + clock.slotMs - lead;
  const late = now - (packAt + lead / 2);
  if (late > 0) packAt += Math.ceil(late / clock.slotMs) * clock.slotMs;
  if (packedFor !== null && Math.abs(packedFor - packAt) < clock.slotMs / 2) packAt += clock.slotMs;
  return packAt;
}

/**
 * The slot of the block a packing started at `now` is for: the next block's, or a later one's once
 * the packing is more than half the lead behind that block's packing time (nextPackAt's rule).
 */
export function targetSlot(clock: BlockClock, leadMs: number, now: number): number {
  const lead = Math.min(leadMs, clock.slotMs);
  return clock.lastSlot + Math.max(1, Math.ceil((now + lead / 2 - clock.lastBlockAt) / clock.slotMs));
}
