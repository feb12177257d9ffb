/**
 * Settlement's limits, all in one place: each says what it bounds and why, and which part applies
 * it; the runs behind the figures are in BENCHMARKS.md §5. One object, read where each limit is
 * applied, so a what-if run of bench/gateway.ts can change one for the whole settlement.
 */
export const settlementLimits = {
  /**
   * Bytes of envelope records per package (signed bytes, key, length and signature): W_B less room for the package
   * header and the item's other fields (batcher.ts).
   */
  packageEnvelopeBytesMax: 13_000_000,
  /**
   * Devices per package, whatever the service (batcher.ts): each service's adapter sets its own from what its refine
   * output takes per device in W_R (IngestService.packageDevicesMax: telemetry 1,405, energy 256, wifi 64); this
   * bounds them all. A settled package tells each of its devices at once (a receipt message each): 2,048 stay well
   * within the 5,000 notices the gateway hands aedes at a time.
   */
  packageDevicesMax: 2_048,
  /** Envelopes per package: bounds refine's verification time (~13,000 signatures ≈ 1.9 s on one core here; batcher.ts). */
  packageEnvelopesMax: 12_000,
  /**
   * Packages submitted and not yet reported, so holding their core's queue (in-flight.ts): two per core of the tiny
   * chain, one refining and one ready for the next block. More, smaller packages only queue on the node: p99 receipt
   * 4.99 slots with 8, 2.94 with 4, at 300 envelopes/s (BENCHMARKS.md §5).
   */
  packagesUnreportedMax: 4,
  /**
   * Packages submitted and not yet settled (in-flight.ts): the unreported ones plus those reported and waiting a block
   * to be accumulated and receipted (a block's worth per core, twice). Bounds the envelopes held in flight (≤ 8 × 12,000).
   */
  packagesInFlightMax: 8,
  /**
   * Added to the slowest recent pack → refined time to make the lead (scheduler.ts). A package refined too late waits
   * a whole slot more, so it is wide: at 5,000/s, 100 ms let about one package in 20 miss its block by 7–57 ms and
   * p99 receipt was 3.28–3.53 slots; with 300 ms, 2.75–3.07 (BENCHMARKS.md §5).
   */
  leadMarginMs: 300,
  /**
   * The margin is at most this share of a slot (scheduler.ts): with a short slot (a 300 ms devnet, the tests) a fixed
   * 300 ms would be the whole slot, and packing before the block's reports free the cores finds them busy.
   */
  leadMarginSlotShareMax: 0.3,
  /** Recent packages whose pack → refined time sets the lead: a few slots' worth (scheduler.ts). */
  refineSamples: 8,
  /**
   * Envelopes per item at least when a package is split into items for the refine threads (builder.ts): smaller
   * items gain little, and each has its own header, output and accumulate gas. Unsplit, a ~3,000-envelope package
   * took 0.8–1.3 s to refine on one thread while the other idled, and missed its block (BENCHMARKS.md §5).
   */
  envelopesPerItemMin: 1_000,
  /**
   * Envelopes left after an aligned packing's packages for the free cores that make one more, for a core that
   * already holds one (batcher.ts packsAnother): else a package refined late kept its core busy, one package went a
   * block, and the backlog grew; with it, p99 receipt 3.85–4.50 against 4.37–4.94 slots at 4,000/s (BENCHMARKS.md §5).
   * A smaller rest waits for the next block's packing rather than take a core's report for little.
   */
  backlogPackageEnvelopesMin: 1_000,
  /** Retry delay after a failed package, a refused status subscription or a failed outcome read, doubling up to the max (retryDelayMs). */
  retryDelayMs: { initial: 500, max: 30_000 },
  /**
   * How long stop() waits for packings and settlements under way (an outcome read, the receipts, the
   * log's and the ledger's writes) before the gateway closes the log and the ledger under them; one
   * cut short is settled again from the log at the next start.
   */
  stopDrainMs: 5_000,
  /**
   * Settled packages kept in the log until the broker has published their receipts and errors (told.ts), so a gateway
   * killed meanwhile tells them again at its next start. They wait only while the cluster's Redis is away or a
   * session write is slow: 1,024 is ~8 minutes of a fleet's two packages a second, and a quarter of the outcomes a
   * service keeps for a restart to read (OUTCOMES_KEPT_MAX, 4,096). Past it the oldest is forgotten without waiting:
   * its notices stay queued in memory, lost only if the gateway is killed before they are published.
   */
  untoldPackagesMax: 1_024,
} as const;

/** The wait before try `attempt` + 1 (from 0): settlementLimits.retryDelayMs.initial, doubling up to its max. */
export function retryDelayMs(attempt: number): number {
  return Math.min(settlementLimits.retryDelayMs.max, settlementLimits.retryDelayMs.initial * 2 ** Math.min(attempt, 16));
}
