/**
 * Which core gets a package, from this gateway's packages still holding each core's queue (not
 * yet reported). A core takes one report per block, so a package sent to a core that still holds
 * one waits behind it, and such a queue, once formed, never drains while packing keeps pace with
 * the blocks. Another gateway's packages are not seen here: in a cluster the gateways split the
 * cores (cluster/members.ts) and each packs only for its own (`allowed`); where more gateways than
 * cores share one, each packs for it only in its turn of slots, and for no core in the others'.
 */
export class CoreChoice {
  /** Where the round of the cores goes on from, for ties. */
  private next = 0;

  constructor(
    private readonly coresCount: number,
    private readonly unreportedOn: (core: number) => number,
    /** Of those, the refined ones: waiting on the core for a block to report them. */
    private readonly refinedOn: (core: number) => number,
    /**
     * The cores this gateway may pack for a block at `slot` (null: not known yet), asked at each
     * choice; null or absent: every core; empty: none (another gateway's turn on a shared core).
     */
    private readonly allowed: (slot: number | null) => readonly number[] | null = () => null,
  ) {}

  /** The cores a choice for `slot` is made among: the allowed ones that exist (every core when none of those named exist), or none when none are allowed. */
  private candidates(slot: number | null): number[] {
    const all = Array.from({ length: this.coresCount }, (_, c) => c);
    const allowed = this.allowed(slot);
    if (allowed === null) return all;
    if (allowed.length === 0) return [];
    const existing = allowed.filter((c) => Number.isInteger(c) && c >= 0 && c < this.coresCount);
    return existing.length > 0 ? existing : all;
  }

  /** Whether this gateway may pack for some core for the block at `slot`. */
  mayPack(slot: number | null): boolean {
    return this.candidates(slot).length > 0;
  }

  /**
   * The cores a block-aligned packing packs for, one package each: those holding none of this
   * gateway's unreported packages, or else the least busy one; none when every core it may pack
   * for holds a package already refined and waiting for a block. A package sent then is reported a
   * block after those at the soonest, and the one after it too: where it packs for one core only
   * (a cluster gateway's share), no other core is ever free, and the startup's backlog stayed
   * behind every package for good (packing.test). Waiting a block lets the queue drain. Not in
   * turns on a shared core, where the next packing is s blocks away, not one. When refine takes
   * longer than a slot this packs one package a slot (and a second only for a backlog,
   * backlogPackageEnvelopesMin), refined on one thread; measured, still the better trade: against a
   * package for every core the lead says it would reach in time, p99 receipt 2.72 against 3.37
   * slots at 2,000/s (BENCHMARKS.md §5).
   */
  toPack(slot: number | null = null): number[] {
    const candidates = this.candidates(slot);
    if (candidates.length === 0) return [];
    const free = candidates.filter((c) => this.unreportedOn(c) === 0);
    if (free.length > 0) return free;
    // Waiting costs a block only where the next block is this gateway's too: in turns of s slots on a
    // shared core (cluster/members.ts) it would cost s, and the package queues behind instead.
    const nextIsOurs = slot === null || this.mayPack(slot + 1);
    return nextIsOurs && candidates.every((c) => this.refinedOn(c) > 0) ? [] : [this.leastBusy(slot)!];
  }

  /** The core with the fewest of this gateway's packages waiting to be reported, ties going round the cores in turn; null when it may pack for none at `slot`. */
  leastBusy(slot: number | null = null): number | null {
    const candidates = this.candidates(slot);
    const n = candidates.length;
    if (n === 0) return null;
    const start = candidates.findIndex((c) => c >= this.next % this.coresCount);
    const from = start < 0 ? 0 : start;
    let best = candidates[from]!;
    for (let i = 1; i < n; i++) {
      const core = candidates[(from + i) % n]!;
      if (this.unreportedOn(core) < this.unreportedOn(best)) best = core;
    }
    this.next = best + 1;
    return best;
  }
}
