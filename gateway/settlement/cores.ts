/**
 * Which core gets a package, from this gateway's packages still holding each core's queue (not
 * yet reported). A core takes one report per block, so a package sent to a core that still holds
 * one waits behind it, and such a queue, once formed, never drains while packing keeps pace with
 * the blocks.
 */
export class CoreChoice {
  /** Where the round of the cores goes on from, for ties. */
  private next = 0;

  constructor(
    private readonly coresCount: number,
    private readonly unreportedOn: (core: number) => number,
  ) {}

  /**
   * The cores a block-aligned packing packs for, one package each: those holding none of this
   * gateway's unreported packages, or else the least busy one. When refine takes longer than a
   * slot this packs one package a slot (and a second only for a backlog, backlogPackageEnvelopesMin),
   * refined on one thread; measured, still the better trade: against a package for every core the
   * lead says it would reach in time, p99 receipt 2.72 against 3.37 slots at 2,000/s (BENCHMARKS.md §5).
   */
  toPack(): number[] {
    const free = Array.from({ length: this.coresCount }, (_, c) => c).filter((c) => this.unreportedOn(c) === 0);
    return free.length > 0 ? free : [this.leastBusy()];
  }

  /** The core with the fewest of this gateway's packages waiting to be reported; ties go round the cores in turn. */
  leastBusy(): number {
    const cores = this.coresCount;
    let best = this.next % cores;
    for (let i = 1; i < cores; i++) {
      const core = (this.next + i) % cores;
      if (this.unreportedOn(core) < this.unreportedOn(best)) best = core;
    }
    this.next = best + 1;
    return best;
  }
}
