/**
 * What an energy simulation counts while it runs (envelopes sent, receipts, refusals by code) and
 * its progress bar on stderr: settled intervals of the scenario's, the slot, the market time.
 */
import type { MultiBar, SingleBar } from "cli-progress";
import { progressBars } from "../common/progress.ts";
import type { SimClock } from "./clock.ts";

export class RunCounts {
  /** Envelopes the devices sent. */
  sent = 0;
  /** Receipts they got: envelopes settled on the chain. */
  receipts = 0;
  /** Envelopes refused, by registry code (told to the device, or refused by its client before sending). */
  readonly errors: Record<string, number> = {};

  refused(code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  get refusedTotal(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }
}

/** The bar: "setup" until the first block is seen, "opening" before the scenario's first interval, "trading" after, "done". */
export class EnergyProgress {
  private readonly bars: MultiBar | null;
  private readonly bar: SingleBar | undefined;

  constructor(
    enabled: boolean,
    private readonly clock: SimClock,
    private readonly counts: RunCounts,
  ) {
    this.bars = progressBars(enabled, "{phase} [{bar}] {value}/{total} | slot {slot} | {time} | envelopes {sent} | receipts {receipts} | errors {errors}");
    this.bar = this.bars?.create(clock.intervals, 0, { phase: "setup   ", slot: 0, time: "", sent: 0, receipts: 0, errors: 0 });
  }

  /** `settled` intervals of the scenario's are settled at `slot`, whose market time is `nowMs`. */
  update(settled: number, slot: number, nowMs: number): void {
    const { startMs, endMs } = this.clock;
    this.bar?.update(settled, {
      phase: nowMs < startMs ? "opening " : "trading ",
      slot,
      time: new Date(Math.max(startMs, Math.min(nowMs, endMs))).toISOString().slice(0, 16).replace("T", " "),
      sent: this.counts.sent,
      receipts: this.counts.receipts,
      errors: this.counts.refusedTotal,
    });
  }

  done(): void {
    this.bar?.update(this.clock.intervals, { phase: "done    " });
  }

  stop(): void {
    this.bars?.stop();
  }
}
