/**
 * The run on the chain's clock: at each best block the meters publish their readings up to the
 * market time, the agents learn the intervals that are over and order ORDER_LEAD_INTERVALS ahead,
 * and every interval settled since the last block is read from the service's state and fed back
 * to the agents. Ends when the scenario's last interval is settled.
 */
import { ORDER_LEAD_INTERVALS } from "./agent.ts";
import type { DeviceClient } from "../../devices/client.ts";
import { AGENT_ORDER_KIND, METER_READING_KIND } from "../../services/energy-trading/types.ts";
import type { SimClock } from "./clock.ts";
import type { Household } from "./devices.ts";
import type { EnergyProgress, RunCounts } from "./progress.ts";
import { partyHex, readMarketProgress, readSettledInterval, type SettledInterval } from "./service-state.ts";
import type { EnergyTarget } from "./target.ts";

/** The simulation gives up when the chain has not settled the last interval this long after it should have (slots). */
const SETTLE_GRACE_SLOTS = 60;

export interface MarketRun {
  readonly target: EnergyTarget;
  readonly clock: SimClock;
  readonly households: readonly Household[];
  readonly counts: RunCounts;
  readonly progress: EnergyProgress;
  /** Named when the chain falls behind. */
  readonly logPath: string;
}

/** Runs the scenario's intervals to their settlement; returns each as settled, by the scenario's interval. */
export async function runMarket(run: MarketRun): Promise<SettledInterval[]> {
  const { target, clock, households, counts, progress } = run;
  const api = target.api;
  const settled: SettledInterval[] = [];
  let slot = (await api.bestBlock()).slot;
  const wake = waiter();
  const unsubscribe = await api.subscribeBestBlock((block) => {
    slot = block.slot;
    wake.notify();
  });
  try {
    while (settled.length < clock.intervals) {
      await wake.next();
      const nowMs = clock.marketTime(slot);
      if (slot > clock.lastSlot + SETTLE_GRACE_SLOTS)
        throw new Error(`the chain has not settled interval ${settled.length} by slot ${slot}; see ${run.logPath}`);
      publishReadings(households, clock, nowMs, counts);
      placeOrders(households, clock, nowMs, counts);
      const best = await api.bestBlock();
      const { nextSettle } = await readMarketProgress(api, target.service.id, best.headerHash);
      while (settled.length < Math.min(nextSettle - clock.firstInterval, clock.intervals)) {
        const k = settled.length;
        const interval = await readSettledInterval(api, target.service.id, best.headerHash, clock.firstInterval + k);
        settled.push(interval);
        feedBack(households, k, interval);
      }
      progress.update(settled.length, slot, nowMs);
    }
  } finally {
    unsubscribe();
  }
  return settled;
}

/** Meters: the readings up to `nowMs` (whole reading periods), one envelope each; agents learn each interval's truth once it is over. */
function publishReadings(households: readonly Household[], clock: SimClock, nowMs: number, counts: RunCounts): void {
  const { startMs, endMs, intervalMs, intervals, readingMs } = clock;
  const upTo = Math.min(endMs, startMs + Math.floor((nowMs - startMs) / readingMs) * readingMs);
  if (upTo <= startMs) return;
  for (const h of households) {
    const readings = h.model.advance(upTo);
    if (readings.length > 0) send(h.meter!, METER_READING_KIND, readings, counts);
    while (h.observed < intervals && startMs + (h.observed + 1) * intervalMs <= upTo) {
      const e = h.model.intervalEnergy(h.observed);
      if (e !== undefined) h.agent.observe(h.observed, e.importWh - e.exportWh);
      h.observed++;
    }
  }
}

/** Agents: orders for the intervals whose gate closes within ORDER_LEAD_INTERVALS of `nowMs`. */
function placeOrders(households: readonly Household[], clock: SimClock, nowMs: number, counts: RunCounts): void {
  for (const h of households) {
    while (h.ordered < clock.intervals && clock.startMs + (h.ordered - ORDER_LEAD_INTERVALS) * clock.intervalMs <= nowMs) {
      const orders = h.agent.ordersFor(h.ordered);
      if (orders.length > 0) send(h.trader!, AGENT_ORDER_KIND, { interval: clock.firstInterval + h.ordered, orders }, counts);
      h.ordered++;
    }
  }
}

/** Market results: each agent learns interval `k`'s clearing price and the energy its household traded in it. */
function feedBack(households: readonly Household[], k: number, { summary, entries }: SettledInterval): void {
  for (const h of households) {
    let tradedWh = 0;
    for (const e of entries)
      if (e.reason === "trade" && (partyHex(e.buyer) === h.meterKey.deviceId || partyHex(e.seller) === h.meterKey.deviceId)) tradedWh += e.energyWh;
    h.agent.learn({ interval: k, clearingPriceMicrosPerKwh: summary?.clearingPriceMicrosPerKwh ?? null, myTradedWh: tradedWh });
  }
}

/** Sends one envelope; counts it sent, or refused by its code. */
function send(client: DeviceClient, kind: typeof METER_READING_KIND | typeof AGENT_ORDER_KIND, body: unknown, counts: RunCounts): void {
  const result = client.send(kind, body);
  if (result.ok) counts.sent++;
  else counts.refused(result.error.code);
}

/** Wakes a loop on each notification (coalescing those that came while it worked). */
function waiter() {
  let pending = false;
  let resolve: (() => void) | null = null;
  return {
    notify() {
      pending = true;
      resolve?.();
      resolve = null;
    },
    next(): Promise<void> {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((r) => {
        resolve = () => {
          pending = false;
          r();
        };
      });
    },
  };
}
