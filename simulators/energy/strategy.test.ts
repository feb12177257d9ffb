import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GridPrices } from "./scenario.ts";
import { FORECAST_QUOTE_OFFSET, makeStrategy, type OrderIntent, type Side } from "./strategy.ts";

const GRID: GridPrices = { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 };

describe("zi (ZI-C)", () => {
  it("quotes integers within [export, import] on both sides, for any grid", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 10_000_000 }), fc.nat(), (a, b, seed) => {
        const grid = { importPriceMicrosPerKwh: Math.max(a, b), exportPriceMicrosPerKwh: Math.min(a, b) };
        const s = makeStrategy("zi", seed);
        for (let i = 0; i < 20; i++) {
          for (const side of ["bid", "ask"] as const) {
            const p = s.price(side, grid, i);
            expect(Number.isInteger(p)).toBe(true);
            expect(p).toBeGreaterThanOrEqual(grid.exportPriceMicrosPerKwh);
            expect(p).toBeLessThanOrEqual(grid.importPriceMicrosPerKwh);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("spreads over the whole band (uniform, not a constant)", () => {
    const s = makeStrategy("zi", 3);
    const prices = Array.from({ length: 2000 }, (_, i) => s.price("bid", GRID, i));
    expect(Math.min(...prices)).toBeLessThan(90_000);
    expect(Math.max(...prices)).toBeGreaterThan(290_000);
    const mean = prices.reduce((x, y) => x + y) / prices.length;
    expect(Math.abs(mean - 190_000)).toBeLessThan(6_000);
  });
});

describe("explicit ranges", () => {
  it("is exactly `from` when from = to", () => {
    const s = makeStrategy({ bidMicrosPerKwh: [250_000, 250_000], askMicrosPerKwh: [150_000, 150_000] }, 1);
    for (let i = 0; i < 10; i++) {
      expect(s.price("bid", GRID, i)).toBe(250_000);
      expect(s.price("ask", GRID, i)).toBe(150_000);
    }
  });

  it("draws integers within [from, to], even outside the grid band, and replays from its seed", () => {
    const spec = { bidMicrosPerKwh: [10, 20], askMicrosPerKwh: [400_000, 400_003] } as const;
    const a = makeStrategy(spec, 9);
    const b = makeStrategy(spec, 9);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const bid = a.price("bid", GRID, i);
      expect(bid).toBe(b.price("bid", GRID, i));
      expect(bid).toBeGreaterThanOrEqual(10);
      expect(bid).toBeLessThanOrEqual(20);
      const ask = a.price("ask", GRID, i);
      b.price("ask", GRID, i);
      expect(ask).toBeGreaterThanOrEqual(400_000);
      expect(ask).toBeLessThanOrEqual(400_003);
      seen.add(ask);
    }
    expect(seen.size).toBe(4);
  });
});

describe("zip (Cliff 1997)", () => {
  /** One round: quote, then the market's answer; returns the quotes before and after. */
  function round(seed: number, side: Side, outcome: (quote: number) => { clearing: number | null; tradedWh: number }): [number, number] {
    const s = makeStrategy("zip", seed);
    const before = s.price(side, GRID, 0);
    const intent: OrderIntent = { side, energyWh: 100, priceMicrosPerKwh: before };
    const { clearing, tradedWh } = outcome(before);
    s.learn({ interval: 0, clearingPriceMicrosPerKwh: clearing, myTradedWh: tradedWh }, intent);
    return [before, s.price(side, GRID, 1)];
  }

  it("starts within its limits: buyers below the import price, sellers above feed-in", () => {
    for (let seed = 0; seed < 50; seed++) {
      const s = makeStrategy("zip", seed);
      const bid = s.price("bid", GRID, 0);
      const ask = s.price("ask", GRID, 0);
      // Initial margins 5–35 %: bid in import × [0.65, 0.95], ask in export × [1.05, 1.35].
      expect(bid).toBeGreaterThanOrEqual(0.65 * 300_000 - 1);
      expect(bid).toBeLessThanOrEqual(0.95 * 300_000 + 1);
      expect(ask).toBeGreaterThanOrEqual(1.05 * 80_000 - 1);
      expect(ask).toBeLessThanOrEqual(1.35 * 80_000 + 1);
    }
  });

  it("a seller that traded raises its margin (quotes higher)", () => {
    for (let seed = 0; seed < 20; seed++) {
      const [before, after] = round(seed, "ask", (quote) => ({ clearing: quote + 20_000, tradedWh: 100 }));
      expect(after).toBeGreaterThan(before);
    }
  });

  it("a buyer that traded raises its margin (bids lower)", () => {
    for (let seed = 0; seed < 20; seed++) {
      const [before, after] = round(seed, "bid", (quote) => ({ clearing: quote - 20_000, tradedWh: 100 }));
      expect(after).toBeLessThan(before);
    }
  });

  it("a buyer that did not trade while the market cleared above its bid lowers its margin (bids higher)", () => {
    for (let seed = 0; seed < 20; seed++) {
      const [before, after] = round(seed, "bid", (quote) => ({ clearing: Math.min(299_000, quote + 30_000), tradedWh: 0 }));
      expect(after).toBeGreaterThan(before);
      expect(after).toBeLessThanOrEqual(300_000);
    }
  });

  it("a seller that did not trade while the market cleared below its ask lowers its margin, never below feed-in", () => {
    let lowered = 0;
    for (let seed = 0; seed < 20; seed++) {
      const [before, after] = round(seed, "ask", (quote) => ({ clearing: quote - 3_000, tradedWh: 0 }));
      expect(after).toBeLessThanOrEqual(before);
      expect(after).toBeGreaterThanOrEqual(80_000);
      if (after < before) lowered++;
    }
    // A margin that would drop below 0 is not taken (Cliff 1997): only sellers with room move.
    expect(lowered).toBeGreaterThanOrEqual(10);
  });

  it("with nothing cleared, buyers bid up and sellers ask down; without an order nothing changes", () => {
    for (let seed = 0; seed < 20; seed++) {
      const [bidBefore, bidAfter] = round(seed, "bid", () => ({ clearing: null, tradedWh: 0 }));
      expect(bidAfter).toBeGreaterThan(bidBefore);
      const s = makeStrategy("zip", seed);
      const before = s.price("bid", GRID, 0);
      s.learn({ interval: 0, clearingPriceMicrosPerKwh: 200_000, myTradedWh: 0 }, null);
      expect(s.price("bid", GRID, 1)).toBe(before);
    }
  });

  it("converges toward a stable clearing price from both sides", () => {
    const buyer = makeStrategy("zip", 1);
    const seller = makeStrategy("zip", 2);
    let bid = 0;
    let ask = 0;
    for (let k = 0; k < 300; k++) {
      bid = buyer.price("bid", GRID, k);
      ask = seller.price("ask", GRID, k);
      const clearing = bid >= ask ? Math.floor((bid + ask) / 2) : null;
      const traded = clearing === null ? 0 : 100;
      buyer.learn({ interval: k, clearingPriceMicrosPerKwh: clearing, myTradedWh: traded }, { side: "bid", energyWh: 100, priceMicrosPerKwh: bid });
      seller.learn({ interval: k, clearingPriceMicrosPerKwh: clearing, myTradedWh: traded }, { side: "ask", energyWh: 100, priceMicrosPerKwh: ask });
    }
    // Both stay within the band and close to each other.
    for (const p of [bid, ask]) {
      expect(p).toBeGreaterThanOrEqual(80_000);
      expect(p).toBeLessThanOrEqual(300_000);
    }
    expect(Math.abs(bid - ask)).toBeLessThan(40_000);
  });
});

describe("forecast", () => {
  const offset = FORECAST_QUOTE_OFFSET * (300_000 - 80_000);

  it("quotes around the grid midpoint before any clearing, on its own side", () => {
    const s = makeStrategy("forecast", 1, { intervalsPerDay: 4 });
    expect(s.price("bid", GRID, 0)).toBe(190_000 + offset);
    expect(s.price("ask", GRID, 0)).toBe(190_000 - offset);
  });

  it("predicts by time-of-day slot, falling back to the mean of all clearing prices", () => {
    const s = makeStrategy("forecast", 1, { intervalsPerDay: 4 });
    s.learn({ interval: 1, clearingPriceMicrosPerKwh: 120_000, myTradedWh: 0 }, null);
    expect(s.price("ask", GRID, 5)).toBe(120_000 - offset); // slot 1 again
    expect(s.price("ask", GRID, 6)).toBe(120_000 - offset); // slot 2: unseen, mean of all
    s.learn({ interval: 2, clearingPriceMicrosPerKwh: 200_000, myTradedWh: 0 }, null);
    expect(s.price("bid", GRID, 7)).toBe(160_000 + offset); // slot 3: mean of 120,000 and 200,000
    s.learn({ interval: 5, clearingPriceMicrosPerKwh: 220_000, myTradedWh: 0 }, null);
    expect(s.price("bid", GRID, 9)).toBe(Math.round(0.7 * 120_000 + 0.3 * 220_000 + offset)); // slot 1, smoothed
    s.learn({ interval: 3, clearingPriceMicrosPerKwh: null, myTradedWh: 0 }, null);
    expect(s.price("bid", GRID, 7)).toBe(Math.round((120_000 + 200_000 + 220_000) / 3 + offset)); // nothing learnt from no price
  });

  it("stays within the grid band", () => {
    const s = makeStrategy("forecast", 1, { intervalsPerDay: 4 });
    s.learn({ interval: 0, clearingPriceMicrosPerKwh: 299_000, myTradedWh: 0 }, null);
    s.learn({ interval: 1, clearingPriceMicrosPerKwh: 81_000, myTradedWh: 0 }, null);
    expect(s.price("bid", GRID, 0)).toBe(300_000);
    expect(s.price("ask", GRID, 1)).toBe(80_000);
  });
});
