/**
 * `jamgate sim energy`: an energy market of N households run end to end. Every household is two
 * real MQTT devices (its smart meter and its trading agent) that register through the gateway's
 * HTTP API, connect to its broker and publish signed envelopes; the gateway batches them into
 * work packages; the embedded JAM node refines and accumulates them into the energy-trading
 * service, which clears an auction per interval and settles it against the meters.
 *
 * The clock is the chain's: the service's market time advances `minutesPerSlot` simulated minutes
 * per slot (GP τ), and the simulator follows the node's best block: each slot, meters publish the
 * readings up to the market time, and agents place orders ORDER_LEAD_INTERVALS intervals ahead.
 * Interval k is cleared when market time reaches its start and settled SETTLEMENT_DELAY_INTERVALS
 * after its end. At the end the ledger is read back from the service's state, KPIs computed and a
 * report written.
 *
 * The parts, one file each: the target and its market (target.ts, clock.ts), the households'
 * devices (devices.ts), counts and progress (progress.ts), the loop (loop.ts, service-state.ts),
 * the results (results.ts, report.ts).
 */
import { join } from "node:path";
import { openRunDir, type RunDir } from "../common/run-dir.ts";
import type { RemoteJamgate } from "../common/target.ts";
import { missesOpening } from "./clock.ts";
import { closeHouseholds, connectHouseholds, makeHouseholds } from "./devices.ts";
import type { Kpis } from "./kpis.ts";
import { runMarket } from "./loop.ts";
import { EnergyProgress, RunCounts } from "./progress.ts";
import { writeReport } from "./report.ts";
import { assembleResults, reportDataOf } from "./results.ts";
import type { Scenario } from "./scenario.ts";
import { openEnergyTarget, type PlacedRun } from "./target.ts";

export { MARKET_START_MS_MIN, MARKET_START_SLOT, marketOf, marketStartSlot, SETTLEMENT_DELAY_INTERVALS } from "./clock.ts";

export interface SimOptions {
  readonly scenario: Scenario;
  /** Slot period of the embedded node. */
  readonly slotMs: number;
  /** Simulated minutes per slot. */
  readonly minutesPerSlot: number;
  /** Report directory; null: no report. */
  readonly out: string | null;
  /** Where the node, gateway and devices keep their files; default a temp dir, removed after. */
  readonly dataDir?: string;
  /** Progress on stderr. */
  readonly progress: boolean;
  /**
   * Run against a running jamgate instead of starting one: its MQTT broker, its node's JIP-2
   * WebSocket, its HTTP API and operator token. The market clock is then the chain's: the
   * scenario starts at the first interval far enough ahead to register and place orders, and
   * its interval length is the market's.
   */
  readonly remote?: RemoteJamgate;
}

export interface SimResult {
  readonly kpis: Kpis;
  readonly blocks: number;
  readonly ledgerEntries: number;
  readonly intervals: number;
  readonly envelopes: number;
  readonly receipts: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly reportFiles: readonly string[];
  readonly wallSeconds: number;
}

/** Runs the scenario on its own stack or on `options.remote`; whatever it opened is closed, and its own temp dir removed, however it ends. */
export async function runEnergySim(options: SimOptions): Promise<SimResult> {
  const started = Date.now();
  const dir = await openRunDir(options.dataDir, "jamgate-sim-");
  try {
    const placed = await openEnergyTarget(options, dir);
    try {
      return await simulate(options, placed, dir, started);
    } finally {
      await placed.target.close();
    }
  } finally {
    dir.close();
  }
}

/** The households on the placed market: connected, run to the last settlement, their results read back and reported. */
async function simulate(options: SimOptions, { target, market, scenario, clock }: PlacedRun, dir: RunDir, started: number): Promise<SimResult> {
  const counts = new RunCounts();
  const progress = new EnergyProgress(options.progress, clock, counts);
  const households = makeHouseholds(scenario, clock);
  try {
    await connectHouseholds(target, households, join(dir.path, "devices"), counts);
    // Too late for the opening is said, rather than reported as a smaller market (a remote market picks its first interval after registration).
    const readySlot = (await target.api.bestBlock()).slot;
    if (options.remote === undefined && missesOpening(readySlot, market))
      throw new Error(
        `the households were connected at slot ${readySlot}, too late for the market opening at slot ${market.startSlot}: the machine is too busy for --slot-ms ${options.slotMs}; try a longer slot`,
      );
    const settled = await runMarket({ target, clock, households, counts, progress, logPath: dir.logPath });
    const blocks = (await target.api.bestBlock()).slot;
    const results = assembleResults(scenario, clock, households, settled);
    const wallSeconds = (Date.now() - started) / 1000;
    const reportFiles =
      options.out === null
        ? []
        : (await writeReport(options.out, reportDataOf(scenario, households, results, { blocks, envelopes: counts.sent, wallSeconds }))).files;
    progress.done();
    const { sent: envelopes, receipts, errors } = counts;
    return {
      kpis: results.kpis,
      blocks,
      ledgerEntries: results.ledger.length,
      intervals: clock.intervals,
      envelopes,
      receipts,
      errors,
      reportFiles,
      wallSeconds,
    };
  } finally {
    progress.stop();
    await closeHouseholds(households);
  }
}
