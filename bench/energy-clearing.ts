/**
 * Clearing and settling one market interval of the energy-trading service
 * (services/energy-trading/market.ts and settlement.ts), in each market mode, for 100, 1,000 and
 * 10,000 households.
 *
 *   node --import tsx bench/energy-clearing.ts [--runs 7] [--warmups 2] [--seed 1]
 *
 * Each book is seeded pseudo-random (devices/simulate.ts seededRandom, mulberry32): about half the households buy and half sell,
 * each with 1–3 price steps of 100–5,000 Wh at prices between the grid export and import prices;
 * every household has a seeded meter reading (50–150 % of its ordered energy on its own side, a
 * little on the other). Per size and mode, on the main thread: `clearInterval` alone, and
 * `clearInterval` + `settleInterval` (the work accumulate does for one interval, without storage),
 * each `--warmups` uncounted runs then `--runs` timed runs (process.hrtime.bigint); the table
 * shows the median and the max. Every settled run is checked: the balance changes sum to 0.
 */
import { seededRandom } from "../devices/simulate.ts";
import { clearInterval, type GridPrices, MARKET_MODES, type Order } from "../services/energy-trading/market.ts";
import { type MeteredEnergy, settleInterval } from "../services/energy-trading/settlement.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, max, median, table } from "./lib/stats.ts";

const flags = parseFlags("bench/energy-clearing.ts", "Clearing and settling one market interval of the energy-trading service, in each market mode.", {
  runs: { kind: "number", default: 7, help: "timed runs per size and mode" },
  warmups: { kind: "number", default: 2, help: "uncounted runs before them" },
  seed: { kind: "number", default: 1, help: "seed of the pseudo-random order books" },
});
const RUNS = flags.runs;
const WARMUPS = flags.warmups;
const SEED = flags.seed;
const SIZES = [100, 1_000, 10_000];
/** 0.30 per kWh from the grid, 0.08 per kWh to it. */
const GRID: GridPrices = { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 };

interface Interval {
  readonly orders: readonly Order[];
  readonly metered: ReadonlyMap<string, MeteredEnergy>;
}

function randomInterval(households: number, seed: number): Interval {
  const rng = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1)); // inclusive
  const u32hex = () =>
    Math.floor(rng() * 2 ** 32)
      .toString(16)
      .padStart(8, "0");
  const orders: Order[] = [];
  const metered = new Map<string, MeteredEnergy>();
  const ids = new Set<string>();
  while (ids.size < households) ids.add(u32hex() + u32hex() + u32hex() + u32hex());
  for (const household of ids) {
    const side = rng() < 0.5 ? "bid" : "ask";
    let orderedWh = 0;
    for (let s = int(1, 3); s > 0; s--) {
      const energyWh = int(100, 5_000);
      orderedWh += energyWh;
      orders.push({ household, side, energyWh, priceMicrosPerKwh: int(GRID.exportPriceMicrosPerKwh, GRID.importPriceMicrosPerKwh) });
    }
    const ownWh = Math.floor((orderedWh * int(50, 150)) / 100);
    const otherWh = int(0, 300);
    metered.set(household, side === "bid" ? { importWh: ownWh, exportWh: otherWh } : { importWh: otherWh, exportWh: ownWh });
  }
  return { orders, metered };
}

function timeMs(f: () => void): number {
  const start = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function measure(f: () => void): number[] {
  for (let i = 0; i < WARMUPS; i++) f();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(timeMs(f));
  return times;
}

const m = machine();
console.log(`energy clearing: node ${m.node}, ${m.cpus} cpus (${m.cpuModel}), ${RUNS} runs after ${WARMUPS} warm-ups, seed ${SEED}`);
const rows: string[][] = [];
for (const households of SIZES) {
  const { orders, metered } = randomInterval(households, SEED + households);
  for (const mode of MARKET_MODES) {
    const clearing = clearInterval(orders, mode, GRID);
    const clearMs = measure(() => {
      clearInterval(orders, mode, GRID);
    });
    let entries = 0;
    const settleMs = measure(() => {
      const trades = clearInterval(orders, mode, GRID).trades;
      const settlement = settleInterval({ interval: 0, trades, metered, grid: GRID });
      let sum = 0n;
      for (const delta of settlement.balanceDeltasMicros.values()) sum += delta;
      if (sum !== 0n) throw new Error(`value not conserved: ${sum}`);
      entries = settlement.entries.length;
    });
    rows.push([
      fmt(households),
      mode,
      fmt(orders.length),
      fmt(clearing.trades.length),
      fmt(clearing.tradedWh / 1000, 1),
      fmt(median(clearMs), 2),
      fmt(max(clearMs), 2),
      fmt(entries),
      fmt(median(settleMs), 2),
      fmt(max(settleMs), 2),
    ]);
  }
}
console.log(
  table(
    [
      "households",
      "mode",
      "orders",
      "trades",
      "traded kWh",
      "clear median ms",
      "clear max ms",
      "ledger entries",
      "clear+settle median ms",
      "clear+settle max ms",
    ],
    rows,
  ),
);
