/**
 * The energy market the benchmarks trade on (bench/energy.ts, bench/market-week.ts), and the
 * orders and metered energy they seed into the energy-trading service's storage before a gate closure.
 */
import { toHex } from "../../services/common/bytes.ts";
import type { MemoryStorage } from "../../services/common/testing.ts";
import { encodeMetered, encodeOrderPage, type MarketConfig, meteredKey, type OrderPage, ordersPageKey } from "../../services/energy-trading/storage.ts";

export const MARKET_START_MS = 1_750_000_000_000;
export const MARKET_INTERVAL_MS = 900_000;
/** Market time per slot: an interval is 3 slots. */
export const MARKET_MS_PER_SLOT = 300_000;
export const MARKET_START_SLOT = 10;

export function benchMarket(mode: MarketConfig["mode"]): MarketConfig {
  return {
    startMs: BigInt(MARKET_START_MS),
    intervalMs: MARKET_INTERVAL_MS,
    startSlot: MARKET_START_SLOT,
    marketMsPerSlot: MARKET_MS_PER_SLOT,
    mode,
    importPriceMicrosPerKwh: 300_000,
    exportPriceMicrosPerKwh: 80_000,
    settlementDelayMs: MARKET_INTERVAL_MS,
  };
}

/**
 * Every household's order for `interval` (seq interval + 1; one line, a bid or an ask at random, 100–2,099 Wh
 * at 80,000–299,999 µ/kWh) and the energy its meter measured in it (half to one and a half times
 * the order's), written into `storage`.
 */
export function seedInterval(storage: MemoryStorage, households: readonly Uint8Array[], interval: number, random: () => number): void {
  const pages = new Map<number, OrderPage>();
  for (const id of households) {
    const bid = random() < 0.5;
    const energyWh = 100 + Math.floor(random() * 2_000);
    const price = 80_000 + Math.floor(random() * 220_000);
    const page = pages.get(id[0]!) ?? new Map();
    page.set(toHex(id), { seq: BigInt(interval + 1), lines: [{ side: bid ? 0 : 1, energyWh, priceMicrosPerKwh: price }] });
    pages.set(id[0]!, page);
    const used = Math.floor(energyWh * (0.5 + random()));
    storage.values.set(toHex(meteredKey(interval, id)), encodeMetered(bid ? { importWh: used, exportWh: 0 } : { importWh: 0, exportWh: used }));
  }
  for (const [p, page] of pages) storage.values.set(toHex(ordersPageKey(interval, p)), encodeOrderPage(page));
}
