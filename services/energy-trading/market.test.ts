import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  amountMicros,
  bidPriceMicrosPerKwh,
  canonicalBook,
  type Clearing,
  clearInterval,
  type GridPrices,
  MARKET_MODES,
  type MarketMode,
  type Order,
  ORDER_ENERGY_WH_MAX,
  PRICE_MICROS_PER_KWH_MAX,
  type Trade,
} from "./market.ts";

/** Household ids are 32 lowercase hex digits: A = "aaaa…a" etc., in ascending order A < B < … < F. */
const id = (c: string) => c.repeat(32);
const [A, B, C, D, E, F] = ["a", "b", "c", "d", "e", "f"].map(id) as [string, string, string, string, string, string];

/** 0.30 per kWh from the grid, 0.08 per kWh to it. */
const GRID: GridPrices = { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 };

const bid = (household: string, energyWh: number, priceMicrosPerKwh: number): Order => ({ household, side: "bid", energyWh, priceMicrosPerKwh });
const ask = (household: string, energyWh: number, priceMicrosPerKwh: number): Order => ({ household, side: "ask", energyWh, priceMicrosPerKwh });
const trade = (buyer: string, seller: string, energyWh: number, priceMicrosPerKwh: number, amount: bigint): Trade => ({
  buyer,
  seller,
  energyWh,
  priceMicrosPerKwh,
  amountMicros: amount,
});

describe("amountMicros", () => {
  it("is floor(energyWh × price / 1000), exact past 2^53", () => {
    expect(amountMicros(0, 300_000)).toBe(0n);
    expect(amountMicros(1, 999)).toBe(0n); // 0.999 → 0
    expect(amountMicros(1, 1000)).toBe(1n);
    expect(amountMicros(333, 123_457)).toBe(41_111n); // 41,111,181 / 1000 = 41,111.181
    expect(amountMicros(ORDER_ENERGY_WH_MAX, PRICE_MICROS_PER_KWH_MAX)).toBe(10_000_000_000n); // 1e6 × 1e7 / 1e3
    expect(amountMicros(2 ** 52, 10_000_000)).toBe(45_035_996_273_704_960_000n); // 2^52 × 10^4: a float would round it
  });

  it("refuses negative or fractional inputs", () => {
    expect(() => amountMicros(-1, 1)).toThrow(/energy/);
    expect(() => amountMicros(1.5, 1)).toThrow(/energy/);
    expect(() => amountMicros(1, -1)).toThrow(/price/);
  });
});

describe("clearInterval: hand-computed books", () => {
  /**
   * Bids (canonical): A 3000 Wh @ 250,000; B 2000 @ 200,000; C 1000 @ 120,000.
   * Asks (canonical): D 2500 @ 100,000; E 2000 @ 150,000; F 4000 @ 220,000.
   * Two pointers: A×D 2500 (A has 500 left, D done); A×E 500 (A done, E has 1500 left);
   * B×E 1500 (B has 500 left, E done); B 200,000 < F 220,000: stop. C and F do not trade.
   * Matched 4500 Wh; the marginal pair is B 200,000 / E 150,000.
   */
  const book = [bid(A, 3000, 250_000), bid(B, 2000, 200_000), bid(C, 1000, 120_000), ask(D, 2500, 100_000), ask(E, 2000, 150_000), ask(F, 4000, 220_000)];

  it("pay-as-clear: one price, the midpoint of the marginal pair, with partial fills", () => {
    // price = floor((200,000 + 150,000) / 2) = 175,000
    // A×D 2500 Wh: 2500 × 175,000 / 1000 = 437,500; A×E 500: 87,500; B×E 1500: 262,500
    expect(clearInterval(book, "pay-as-clear", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 2500, 175_000, 437_500n), trade(A, E, 500, 175_000, 87_500n), trade(B, E, 1500, 175_000, 262_500n)],
      clearingPriceMicrosPerKwh: 175_000,
      tradedWh: 4500,
    });
  });

  it("pay-as-bid: each match at its bid's price", () => {
    // A×D 2500 @ 250,000 = 625,000; A×E 500 @ 250,000 = 125,000; B×E 1500 @ 200,000 = 300,000
    // mean = (625e6 + 125e6 + 300e6) Wh·micros/kWh / 4500 Wh = 233,333.3… → 233,333
    expect(clearInterval(book, "pay-as-bid", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 2500, 250_000, 625_000n), trade(A, E, 500, 250_000, 125_000n), trade(B, E, 1500, 200_000, 300_000n)],
      clearingPriceMicrosPerKwh: 233_333,
      tradedWh: 4500,
    });
  });

  it("one-sided: every bid at the import price, each match at its ask's price", () => {
    // Bids all @ 300,000, so canonical by household: A 3000, B 2000, C 1000. Asks as before, all ≤ 300,000.
    // A×D 2500 @ 100,000 = 250,000 (A 500 left); A×E 500 @ 150,000 = 75,000 (E 1500 left);
    // B×E 1500 @ 150,000 = 225,000 (B 500 left); B×F 500 @ 220,000 = 110,000; C×F 1000 @ 220,000 = 220,000 (F 2500 left).
    // mean = (250 + 75 + 225 + 110 + 220)e6 / 6000 = 146,666.6… → 146,666
    expect(clearInterval(book, "one-sided", GRID)).toEqual<Clearing>({
      trades: [
        trade(A, D, 2500, 100_000, 250_000n),
        trade(A, E, 500, 150_000, 75_000n),
        trade(B, E, 1500, 150_000, 225_000n),
        trade(B, F, 500, 220_000, 110_000n),
        trade(C, F, 1000, 220_000, 220_000n),
      ],
      clearingPriceMicrosPerKwh: 146_666,
      tradedWh: 6000,
    });
  });

  it("one-sided: asks above the import price do not trade, asks at it do; the bid's own price is ignored", () => {
    // A bids 1000 @ 50,000, priced at 300,000. Asks: D 600 @ 290,000; F 300 @ 300,000; E 1000 @ 310,000.
    // A×D 600 @ 290,000 = 174,000; A×F 300 @ 300,000 = 90,000; A has 100 left but 300,000 < 310,000.
    // mean = (174e6 + 90e6) / 900 = 293,333.3… → 293,333
    const orders = [bid(A, 1000, 50_000), ask(E, 1000, 310_000), ask(F, 300, 300_000), ask(D, 600, 290_000)];
    expect(clearInterval(orders, "one-sided", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 600, 290_000, 174_000n), trade(A, F, 300, 300_000, 90_000n)],
      clearingPriceMicrosPerKwh: 293_333,
      tradedWh: 900,
    });
    // The two-sided modes take the bid at its word: 50,000 < 290,000, nothing trades.
    expect(clearInterval(orders, "pay-as-clear", GRID)).toEqual<Clearing>({ trades: [], clearingPriceMicrosPerKwh: null, tradedWh: 0 });
    expect(clearInterval(orders, "pay-as-bid", GRID)).toEqual<Clearing>({ trades: [], clearingPriceMicrosPerKwh: null, tradedWh: 0 });
  });

  it("a book that does not cross trades nothing and has no price", () => {
    // best bid 100,000 < best ask 120,000
    const orders = [bid(A, 1000, 100_000), bid(B, 500, 90_000), ask(C, 1000, 120_000)];
    const none: Clearing = { trades: [], clearingPriceMicrosPerKwh: null, tradedWh: 0 };
    expect(clearInterval(orders, "pay-as-clear", GRID)).toEqual(none);
    expect(clearInterval(orders, "pay-as-bid", GRID)).toEqual(none);
    // one-sided: A and B both @ 300,000, A first by id; A×C 1000 @ 120,000 = 120,000. B gets nothing.
    expect(clearInterval(orders, "one-sided", GRID)).toEqual<Clearing>({
      trades: [trade(A, C, 1000, 120_000, 120_000n)],
      clearingPriceMicrosPerKwh: 120_000,
      tradedWh: 1000,
    });
  });

  it("an empty book, or one side only, trades nothing", () => {
    const none: Clearing = { trades: [], clearingPriceMicrosPerKwh: null, tradedWh: 0 };
    for (const mode of MARKET_MODES) {
      expect(clearInterval([], mode, GRID)).toEqual(none);
      expect(clearInterval([bid(A, 10, 300_000), bid(B, 10, 0)], mode, GRID)).toEqual(none);
      expect(clearInterval([ask(A, 10, 0)], mode, GRID)).toEqual(none);
    }
  });

  it("breaks price ties by household id ascending, on both sides", () => {
    // Bids B 1000 and A 1000 both @ 200,000 → A first. Asks E 1000 and D 1000 both @ 100,000 → D first.
    // A×D 1000; B×E 1000. pay-as-clear: marginal B 200,000 / E 100,000 → 150,000; 1000 Wh = 150,000 each.
    const orders = [bid(B, 1000, 200_000), ask(E, 1000, 100_000), bid(A, 1000, 200_000), ask(D, 1000, 100_000)];
    expect(clearInterval(orders, "pay-as-clear", GRID).trades).toEqual([trade(A, D, 1000, 150_000, 150_000n), trade(B, E, 1000, 150_000, 150_000n)]);
    // Only 1500 Wh for sale at one price: A (first by id) gets 1000, B the remaining 500 — at B's bid, 200,000.
    const short = [bid(B, 1000, 200_000), bid(A, 1000, 200_000), ask(C, 1500, 100_000)];
    expect(clearInterval(short, "pay-as-bid", GRID)).toEqual<Clearing>({
      trades: [trade(A, C, 1000, 200_000, 200_000n), trade(B, C, 500, 200_000, 100_000n)],
      clearingPriceMicrosPerKwh: 200_000,
      tradedWh: 1500,
    });
  });

  it("puts household before energy in a price tie: the smaller id goes first even with the smaller order", () => {
    // Bids A 500 and B 1500 both @ 200,000 → A, B (by energy it would be B, A). Asks D 300 and E 900 both @ 100,000 → D, E.
    // A×D 300; A×E 200 (A done, E 700 left); B×E 700 (E done, B 800 left unmatched).
    // pay-as-bid, all @ 200,000: 60,000; 40,000; 140,000. Mean 200,000.
    const orders = [bid(B, 1500, 200_000), bid(A, 500, 200_000), ask(E, 900, 100_000), ask(D, 300, 100_000)];
    expect(clearInterval(orders, "pay-as-bid", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 300, 200_000, 60_000n), trade(A, E, 200, 200_000, 40_000n), trade(B, E, 700, 200_000, 140_000n)],
      clearingPriceMicrosPerKwh: 200_000,
      tradedWh: 1200,
    });
    // one-sided: A and B both @ 300,000 whatever they bid; the same order, each at 100,000: 30,000; 20,000; 70,000.
    const oneSided = [bid(B, 1500, 250_000), bid(A, 500, 100_000), ask(E, 900, 100_000), ask(D, 300, 100_000)];
    expect(clearInterval(oneSided, "one-sided", GRID).trades).toEqual([
      trade(A, D, 300, 100_000, 30_000n),
      trade(A, E, 200, 100_000, 20_000n),
      trade(B, E, 700, 100_000, 70_000n),
    ]);
  });

  it("floors the uniform price: floor((200,001 + 100,000) / 2) = 150,000", () => {
    expect(clearInterval([bid(A, 1000, 200_001), ask(D, 1000, 100_000)], "pay-as-clear", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 1000, 150_000, 150_000n)],
      clearingPriceMicrosPerKwh: 150_000,
      tradedWh: 1000,
    });
  });

  it("merges consecutive matches of one buyer and seller at one price, and only those", () => {
    // A has two price steps: 1000 @ 250,000 and 500 @ 200,000; D sells 2000 @ 100,000.
    // Matches: A×D 1000, A×D 500; marginal A 200,000 / D 100,000.
    const orders = [bid(A, 500, 200_000), bid(A, 1000, 250_000), ask(D, 2000, 100_000)];
    // pay-as-clear: both @ 150,000 → one trade of 1500 Wh = 225,000
    expect(clearInterval(orders, "pay-as-clear", GRID).trades).toEqual([trade(A, D, 1500, 150_000, 225_000n)]);
    // pay-as-bid: 1000 @ 250,000 = 250,000 and 500 @ 200,000 = 100,000 stay apart; mean 350e6 / 1500 = 233,333
    expect(clearInterval(orders, "pay-as-bid", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 1000, 250_000, 250_000n), trade(A, D, 500, 200_000, 100_000n)],
      clearingPriceMicrosPerKwh: 233_333,
      tradedWh: 1500,
    });
    // one-sided: both @ D's 100,000 → one trade of 1500 Wh = 150,000
    expect(clearInterval(orders, "one-sided", GRID).trades).toEqual([trade(A, D, 1500, 100_000, 150_000n)]);
  });

  it("computes the amount of a merged trade on its whole energy", () => {
    // A bids 1 Wh twice at 1,999 (one step each of two equal orders); D asks 2 Wh at 1,999.
    // pay-as-bid merges to 2 Wh @ 1,999: floor(3,998 / 1000) = 3, where two 1 Wh trades would be 1 + 1 = 2.
    expect(clearInterval([bid(A, 1, 1_999), bid(A, 1, 1_999), ask(D, 2, 1_999)], "pay-as-bid", GRID).trades).toEqual([trade(A, D, 2, 1_999, 3n)]);
  });

  it("trades at a price of zero", () => {
    expect(clearInterval([bid(A, 100, 0), ask(D, 100, 0)], "pay-as-clear", GRID)).toEqual<Clearing>({
      trades: [trade(A, D, 100, 0, 0n)],
      clearingPriceMicrosPerKwh: 0,
      tradedWh: 100,
    });
  });
});

describe("clearInterval: preconditions (caller bugs throw)", () => {
  const ok = [bid(A, 1000, 200_000), ask(D, 1000, 100_000)];
  it.each<[string, Order]>([
    ["zero energy", bid(B, 0, 1)],
    ["negative energy", ask(E, -5, 1)],
    ["fractional energy", bid(B, 1.5, 1)],
    ["energy above the maximum", bid(B, ORDER_ENERGY_WH_MAX + 1, 1)],
    ["negative price", ask(E, 1, -1)],
    ["fractional price", ask(E, 1, 0.5)],
    ["price above the maximum", bid(B, 1, PRICE_MICROS_PER_KWH_MAX + 1)],
    ["NaN price", bid(B, 1, Number.NaN)],
    ["a household on both sides", ask(A, 1, 1)],
    ["a malformed household id", bid("grid", 1, 1)],
    ["an upper-case household id", bid("A".repeat(32), 1, 1)],
    ["an unknown side", { household: B, side: "buy" as "bid", energyWh: 1, priceMicrosPerKwh: 1 }],
  ])("%s", (_, order) => {
    for (const mode of MARKET_MODES) expect(() => clearInterval([...ok, order], mode, GRID)).toThrow(/energy market/);
  });

  it("accepts the bounds themselves", () => {
    expect(() => clearInterval([bid(B, ORDER_ENERGY_WH_MAX, PRICE_MICROS_PER_KWH_MAX), ask(E, 1, 0)], "pay-as-clear", GRID)).not.toThrow();
  });

  it("refuses grid prices out of order or range, and an unknown mode", () => {
    expect(() => clearInterval(ok, "pay-as-clear", { importPriceMicrosPerKwh: 80_000, exportPriceMicrosPerKwh: 300_000 })).toThrow(/export price/);
    expect(() => clearInterval(ok, "pay-as-clear", { importPriceMicrosPerKwh: PRICE_MICROS_PER_KWH_MAX + 1, exportPriceMicrosPerKwh: 0 })).toThrow(
      /grid prices/,
    );
    expect(() => clearInterval(ok, "pay-as-clear", { importPriceMicrosPerKwh: 1, exportPriceMicrosPerKwh: -1 })).toThrow(/grid prices/);
    expect(() => clearInterval(ok, "pay-what-you-like" as MarketMode, GRID)).toThrow(/mode/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random books.

/** Random books: up to 12 households, each on one side with 1–3 price steps; prices often tie. */
const bookArb = fc
  .record({
    households: fc.uniqueArray(
      fc.record({
        id: fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16).padStart(32, "0")),
        side: fc.constantFrom<"bid" | "ask">("bid", "ask"),
        steps: fc.array(
          fc.record({
            energyWh: fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: ORDER_ENERGY_WH_MAX })),
            priceMicrosPerKwh: fc.oneof(
              fc.integer({ min: 0, max: 16 }).map((k) => k * 25_000),
              fc.integer({ min: 0, max: PRICE_MICROS_PER_KWH_MAX }),
            ),
          }),
          { minLength: 1, maxLength: 3 },
        ),
      }),
      { maxLength: 12, selector: (h) => h.id },
    ),
    exportPriceMicrosPerKwh: fc.integer({ min: 0, max: 400_000 }),
    spreadMicrosPerKwh: fc.oneof(fc.integer({ min: 0, max: 400_000 }), fc.constant(0)),
  })
  .map(({ households, exportPriceMicrosPerKwh, spreadMicrosPerKwh }) => ({
    orders: households.flatMap((h) => h.steps.map((s): Order => ({ household: h.id, side: h.side, ...s }))),
    grid: { importPriceMicrosPerKwh: exportPriceMicrosPerKwh + spreadMicrosPerKwh, exportPriceMicrosPerKwh },
  }));

const modeArb = fc.constantFrom(...MARKET_MODES);

/** Σ energyWh per household over a list of (household, energyWh). */
function volumes(pairs: Iterable<readonly [string, number]>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [h, wh] of pairs) out.set(h, (out.get(h) ?? 0) + wh);
  return out;
}

describe("clearInterval: properties", () => {
  it("(1) does not depend on the order the orders come in", () => {
    fc.assert(
      fc.property(
        bookArb.chain((b) => fc.tuple(fc.constant(b), fc.shuffledSubarray(b.orders, { minLength: b.orders.length, maxLength: b.orders.length }))),
        modeArb,
        ([{ orders, grid }, shuffled], mode) => {
          const expected = clearInterval(orders, mode, grid);
          expect(clearInterval(shuffled, mode, grid)).toEqual(expected);
          expect(clearInterval([...orders].reverse(), mode, grid)).toEqual(expected);
        },
      ),
    );
  });

  it("(3) prices each mode by its rule, and reports the traded energy and clearing price", () => {
    fc.assert(
      fc.property(bookArb, modeArb, ({ orders, grid }, mode) => {
        const { trades, clearingPriceMicrosPerKwh, tradedWh } = clearInterval(orders, mode, grid);
        const bidsOf = (h: string) => orders.filter((o) => o.household === h && o.side === "bid");
        const asksOf = (h: string) => orders.filter((o) => o.household === h && o.side === "ask");
        let value = 0n;
        for (const t of trades) {
          expect(t.amountMicros).toBe(amountMicros(t.energyWh, t.priceMicrosPerKwh));
          value += BigInt(t.energyWh) * BigInt(t.priceMicrosPerKwh);
        }
        expect(tradedWh).toBe(trades.reduce((s, t) => s + t.energyWh, 0));
        if (trades.length === 0) {
          expect(clearingPriceMicrosPerKwh).toBeNull();
          return;
        }
        for (let k = 1; k < trades.length; k++) {
          const [p, t] = [trades[k - 1]!, trades[k]!];
          expect(p.buyer === t.buyer && p.seller === t.seller && p.priceMicrosPerKwh === t.priceMicrosPerKwh).toBe(false); // merged
        }
        const byBuyerAtPrice = volumes(trades.map((t) => [`${t.buyer}@${t.priceMicrosPerKwh}`, t.energyWh]));
        const bySellerAtPrice = volumes(trades.map((t) => [`${t.seller}@${t.priceMicrosPerKwh}`, t.energyWh]));
        if (mode === "pay-as-clear") {
          const price = clearingPriceMicrosPerKwh!;
          for (const t of trades) expect(t.priceMicrosPerKwh).toBe(price);
          // Matched bids ≥ price ≥ matched asks: each buyer's energy is covered by its bids at or above
          // the price, each seller's by its asks at or below it.
          for (const t of trades) {
            const boughtWh = trades.filter((u) => u.buyer === t.buyer).reduce((s, u) => s + u.energyWh, 0);
            const soldWh = trades.filter((u) => u.seller === t.seller).reduce((s, u) => s + u.energyWh, 0);
            expect(
              bidsOf(t.buyer)
                .filter((o) => o.priceMicrosPerKwh >= price)
                .reduce((s, o) => s + o.energyWh, 0),
            ).toBeGreaterThanOrEqual(boughtWh);
            expect(
              asksOf(t.seller)
                .filter((o) => o.priceMicrosPerKwh <= price)
                .reduce((s, o) => s + o.energyWh, 0),
            ).toBeGreaterThanOrEqual(soldWh);
          }
        } else {
          expect(clearingPriceMicrosPerKwh).toBe(Number(value / BigInt(tradedWh)));
          if (mode === "pay-as-bid") {
            // Each trade at one of the buyer's bid prices, with enough of that bid; the seller had that much at or below it.
            for (const [key, wh] of byBuyerAtPrice) {
              const [h, p] = key.split("@") as [string, string];
              expect(
                bidsOf(h)
                  .filter((o) => o.priceMicrosPerKwh === Number(p))
                  .reduce((s, o) => s + o.energyWh, 0),
              ).toBeGreaterThanOrEqual(wh);
            }
            for (const t of trades) {
              const soldAtOrBelowWh = trades
                .filter((u) => u.seller === t.seller && u.priceMicrosPerKwh <= t.priceMicrosPerKwh)
                .reduce((s, u) => s + u.energyWh, 0);
              expect(
                asksOf(t.seller)
                  .filter((o) => o.priceMicrosPerKwh <= t.priceMicrosPerKwh)
                  .reduce((s, o) => s + o.energyWh, 0),
              ).toBeGreaterThanOrEqual(soldAtOrBelowWh);
            }
          } else {
            // one-sided: each trade at one of the seller's ask prices (with enough of that ask), never above the import price.
            for (const t of trades) expect(t.priceMicrosPerKwh).toBeLessThanOrEqual(grid.importPriceMicrosPerKwh);
            for (const [key, wh] of bySellerAtPrice) {
              const [h, p] = key.split("@") as [string, string];
              expect(
                asksOf(h)
                  .filter((o) => o.priceMicrosPerKwh === Number(p))
                  .reduce((s, o) => s + o.energyWh, 0),
              ).toBeGreaterThanOrEqual(wh);
            }
          }
        }
      }),
    );
  });

  it("(4) never trades more than a household's orders on that side, nor on the other side", () => {
    fc.assert(
      fc.property(bookArb, modeArb, ({ orders, grid }, mode) => {
        const { trades } = clearInterval(orders, mode, grid);
        const bidWh = volumes(orders.filter((o) => o.side === "bid").map((o) => [o.household, o.energyWh]));
        const askWh = volumes(orders.filter((o) => o.side === "ask").map((o) => [o.household, o.energyWh]));
        for (const [h, wh] of volumes(trades.map((t) => [t.buyer, t.energyWh]))) expect(wh).toBeLessThanOrEqual(bidWh.get(h) ?? 0);
        for (const [h, wh] of volumes(trades.map((t) => [t.seller, t.energyWh]))) expect(wh).toBeLessThanOrEqual(askWh.get(h) ?? 0);
        for (const t of trades) expect(t.energyWh).toBeGreaterThan(0);
      }),
    );
  });

  it("(5) leaves no trade possible: best unmatched bid < best unmatched ask, or a side is exhausted", () => {
    fc.assert(
      fc.property(bookArb, modeArb, ({ orders, grid }, mode) => {
        const { trades } = clearInterval(orders, mode, grid);
        const book = canonicalBook(orders, mode, grid);
        const bids = book.bids.map((o) => ({ ...o, priceMicrosPerKwh: bidPriceMicrosPerKwh(o, mode, grid) })); // as matched: one-sided bids at the import price
        const asks = book.asks;
        // A household's own orders fill in its canonical order (best price first): take its traded energy off the top.
        const left = (side: readonly { household: string; energyWh: number; priceMicrosPerKwh: number }[], traded: Map<string, number>) => {
          const rest = new Map(traded);
          const prices: number[] = [];
          for (const o of side) {
            const take = Math.min(o.energyWh, rest.get(o.household) ?? 0);
            rest.set(o.household, (rest.get(o.household) ?? 0) - take);
            if (o.energyWh > take) prices.push(o.priceMicrosPerKwh);
          }
          for (const wh of rest.values()) expect(wh).toBe(0); // every traded Wh came from an order
          return prices;
        };
        const bidsLeft = left(bids, volumes(trades.map((t) => [t.buyer, t.energyWh])));
        const asksLeft = left(asks, volumes(trades.map((t) => [t.seller, t.energyWh])));
        if (bidsLeft.length > 0 && asksLeft.length > 0) expect(Math.max(...bidsLeft)).toBeLessThan(Math.min(...asksLeft));
      }),
    );
  });
});
