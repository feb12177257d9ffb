import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { amountMicros, clearInterval, type GridPrices, MARKET_MODES, type Order, ORDER_ENERGY_WH_MAX, PRICE_MICROS_PER_KWH_MAX, type Trade } from "./market.ts";
import { GRID, type IntervalSettlement, type LedgerEntry, type MeteredEnergy, settleInterval } from "./settlement.ts";

const id = (c: string) => c.repeat(32);
const [A, B, C, D, E] = ["a", "b", "c", "d", "e"].map(id) as [string, string, string, string, string];

/** 0.30 per kWh from the grid, 0.08 per kWh to it. */
const PRICES: GridPrices = { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 80_000 };

const trade = (buyer: string, seller: string, energyWh: number, priceMicrosPerKwh: number): Trade => ({
  buyer,
  seller,
  energyWh,
  priceMicrosPerKwh,
  amountMicros: amountMicros(energyWh, priceMicrosPerKwh),
});
const entry = (reason: LedgerEntry["reason"], buyer: string, seller: string, energyWh: number, priceMicrosPerKwh: number, amount: bigint): LedgerEntry => ({
  interval: 7,
  buyer,
  seller,
  energyWh,
  priceMicrosPerKwh,
  amountMicros: amount,
  reason,
});
const metered = (m: Record<string, [importWh: number, exportWh: number]>): Map<string, MeteredEnergy> =>
  new Map(Object.entries(m).map(([h, [importWh, exportWh]]) => [h, { importWh, exportWh }]));

describe("settleInterval: hand-computed", () => {
  it("settles trades at their price and every deviation with the grid, one reason each", () => {
    // Trades: A buys 2000 Wh from D @ 150,000 = 300,000; B buys 1000 from D @ 150,000 = 150,000;
    //         B buys 500 from C @ 150,000 = 75,000.   bought: A 2000, B 1500; sold: D 3000, C 500.
    // Metered (import, export): A (2500, 0), B (400, 100), D (50, 2600), E (0, 1234); C has no reading (0, 0).
    // A: grid-import 2500 − 2000 = 500 @ 300,000 = 150,000 (A pays the grid).
    // B: surplus 1500 − 400 = 1100 @ 80,000 = 88,000 (grid pays B); grid-export 100 − 0 = 100 @ 80,000 = 8,000.
    // C: shortfall 500 − 0 = 500 @ 300,000 = 150,000 (C pays the grid for what it sold but did not feed in).
    // D: grid-import 50 @ 300,000 = 15,000; shortfall 3000 − 2600 = 400 @ 300,000 = 120,000.
    // E: grid-export 1234 @ 80,000 = 98,720.
    const result = settleInterval({
      interval: 7,
      trades: [trade(A, D, 2000, 150_000), trade(B, D, 1000, 150_000), trade(B, C, 500, 150_000)],
      metered: metered({ [E]: [0, 1234], [D]: [50, 2600], [B]: [400, 100], [A]: [2500, 0] }),
      grid: PRICES,
    });
    expect(result.entries).toEqual([
      entry("trade", A, D, 2000, 150_000, 300_000n),
      entry("trade", B, D, 1000, 150_000, 150_000n),
      entry("trade", B, C, 500, 150_000, 75_000n),
      entry("grid-import", A, GRID, 500, 300_000, 150_000n),
      entry("surplus", GRID, B, 1100, 80_000, 88_000n),
      entry("grid-export", GRID, B, 100, 80_000, 8_000n),
      entry("shortfall", C, GRID, 500, 300_000, 150_000n),
      entry("grid-import", D, GRID, 50, 300_000, 15_000n),
      entry("shortfall", D, GRID, 400, 300_000, 120_000n),
      entry("grid-export", GRID, E, 1234, 80_000, 98_720n),
    ]);
    // A: −300,000 − 150,000 = −450,000
    // B: −150,000 − 75,000 + 88,000 + 8,000 = −129,000
    // C: +75,000 − 150,000 = −75,000
    // D: +300,000 + 150,000 − 15,000 − 120,000 = +315,000
    // E: +98,720
    // grid: +150,000 − 88,000 − 8,000 + 150,000 + 15,000 + 120,000 − 98,720 = +240,280   (Σ = 0)
    expect([...result.balanceDeltasMicros]).toEqual([
      [A, -450_000n],
      [B, -129_000n],
      [C, -75_000n],
      [D, 315_000n],
      [E, 98_720n],
      [GRID, 240_280n],
    ]);
  });

  it("writes no entry when metering matches the trades exactly", () => {
    // A bought 1000 and used 1000; D sold 1000 and fed in 1000: only the trade (1000 @ 200,000 = 200,000).
    const result = settleInterval({ interval: 7, trades: [trade(A, D, 1000, 200_000)], metered: metered({ [A]: [1000, 0], [D]: [0, 1000] }), grid: PRICES });
    expect(result.entries).toEqual([entry("trade", A, D, 1000, 200_000, 200_000n)]);
    expect([...result.balanceDeltasMicros]).toEqual([
      [A, -200_000n],
      [D, 200_000n],
      [GRID, 0n],
    ]);
  });

  it("settles a household that both imported and exported in the interval on each side separately", () => {
    // No trades. A imported 700 and exported 300: grid-import 700 @ 300,000 = 210,000; grid-export 300 @ 80,000 = 24,000.
    const result = settleInterval({ interval: 7, trades: [], metered: metered({ [A]: [700, 300] }), grid: PRICES });
    expect(result.entries).toEqual([entry("grid-import", A, GRID, 700, 300_000, 210_000n), entry("grid-export", GRID, A, 300, 80_000, 24_000n)]);
    expect([...result.balanceDeltasMicros]).toEqual([
      [A, -186_000n],
      [GRID, 186_000n],
    ]);
  });

  it("floors each grid amount", () => {
    // 333 Wh @ 123,457 = 41,111.181 → 41,111
    const result = settleInterval({
      interval: 7,
      trades: [],
      metered: metered({ [A]: [333, 0] }),
      grid: { importPriceMicrosPerKwh: 123_457, exportPriceMicrosPerKwh: 0 },
    });
    expect(result.entries).toEqual([entry("grid-import", A, GRID, 333, 123_457, 41_111n)]);
  });

  it("settles nothing for an empty interval", () => {
    const result = settleInterval({ interval: 0, trades: [], metered: new Map(), grid: PRICES });
    expect(result.entries).toEqual([]);
    expect([...result.balanceDeltasMicros]).toEqual([[GRID, 0n]]);
  });

  it("does not depend on the metered map's insertion order", () => {
    const trades = [trade(A, D, 2000, 150_000), trade(B, C, 500, 150_000)];
    const m: Record<string, [number, number]> = { [A]: [2500, 0], [B]: [400, 100], [D]: [50, 2600], [E]: [0, 1234] };
    const forward = settleInterval({ interval: 7, trades, metered: metered(m), grid: PRICES });
    const backward = settleInterval({ interval: 7, trades, metered: new Map([...metered(m)].reverse()), grid: PRICES });
    expect(backward).toEqual(forward);
    expect([...backward.balanceDeltasMicros.keys()]).toEqual([...forward.balanceDeltasMicros.keys()]);
  });
});

describe("settleInterval: preconditions (caller bugs throw)", () => {
  const base = { interval: 7, trades: [trade(A, D, 1000, 200_000)], metered: metered({ [A]: [1000, 0] }), grid: PRICES };
  it.each<[string, Partial<Parameters<typeof settleInterval>[0]>]>([
    ["a negative interval", { interval: -1 }],
    ["a fractional interval", { interval: 1.5 }],
    ["a trade whose amount is not its energy at its price", { trades: [{ ...trade(A, D, 1000, 200_000), amountMicros: 200_001n }] }],
    ["a trade with no energy", { trades: [trade(A, D, 0, 200_000)] }],
    ["a trade of a household with itself", { trades: [trade(A, A, 1000, 200_000)] }],
    ["a trade with the grid", { trades: [trade(A, GRID, 1000, 200_000)] }],
    ["a trade price above the maximum", { trades: [trade(A, D, 1, PRICE_MICROS_PER_KWH_MAX + 1)] }],
    ["negative metered energy", { metered: metered({ [A]: [-1, 0] }) }],
    ["fractional metered energy", { metered: metered({ [A]: [0, 0.5] }) }],
    ["a metered id that is not a household", { metered: metered({ [GRID]: [1, 0] }) }],
    ["grid prices out of order", { grid: { importPriceMicrosPerKwh: 1, exportPriceMicrosPerKwh: 2 } }],
  ])("%s", (_, change) => {
    expect(() => settleInterval({ ...base, ...change })).toThrow(/energy (settlement|market)/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: clear a random book, meter random energy, settle.

const hex = (n: number) => n.toString(16).padStart(32, "0");

/** Up to 10 households on one side each with 1–3 steps, plus metered energy for a random subset and for households that did not trade. */
const intervalArb = fc
  .record({
    households: fc.uniqueArray(
      fc.record({
        n: fc.integer({ min: 0, max: 0xffff }),
        side: fc.constantFrom<"bid" | "ask">("bid", "ask"),
        steps: fc.array(
          fc.record({ energyWh: fc.integer({ min: 1, max: ORDER_ENERGY_WH_MAX }), priceMicrosPerKwh: fc.integer({ min: 0, max: PRICE_MICROS_PER_KWH_MAX }) }),
          { minLength: 1, maxLength: 3 },
        ),
        meter: fc.option(fc.record({ importWh: fc.integer({ min: 0, max: 4_000_000 }), exportWh: fc.integer({ min: 0, max: 4_000_000 }) })),
      }),
      { maxLength: 10, selector: (h) => h.n },
    ),
    meterOnly: fc.array(fc.tuple(fc.integer({ min: 0x10000, max: 0x1ffff }), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 })), {
      maxLength: 3,
    }),
    exportPriceMicrosPerKwh: fc.integer({ min: 0, max: PRICE_MICROS_PER_KWH_MAX }),
    importPriceMicrosPerKwh: fc.integer({ min: 0, max: PRICE_MICROS_PER_KWH_MAX }),
    interval: fc.nat(),
  })
  .map((r) => {
    const grid: GridPrices = {
      importPriceMicrosPerKwh: Math.max(r.importPriceMicrosPerKwh, r.exportPriceMicrosPerKwh),
      exportPriceMicrosPerKwh: Math.min(r.importPriceMicrosPerKwh, r.exportPriceMicrosPerKwh),
    };
    const orders = r.households.flatMap((h) => h.steps.map((s): Order => ({ household: hex(h.n), side: h.side, ...s })));
    const meters = new Map<string, MeteredEnergy>();
    for (const h of r.households) if (h.meter !== null) meters.set(hex(h.n), h.meter);
    for (const [n, importWh, exportWh] of r.meterOnly) meters.set(hex(n), { importWh, exportWh });
    return { orders, grid, meters, interval: r.interval };
  });

function sumOf(settlement: IntervalSettlement): bigint {
  let sum = 0n;
  for (const delta of settlement.balanceDeltasMicros.values()) sum += delta;
  return sum;
}

describe("settleInterval: properties", () => {
  it("(2) conserves value: the balance changes of households and grid sum to exactly zero, in every mode", () => {
    fc.assert(
      fc.property(intervalArb, fc.constantFrom(...MARKET_MODES), ({ orders, grid, meters, interval }, mode) => {
        const settlement = settleInterval({ interval, trades: clearInterval(orders, mode, grid).trades, metered: meters, grid });
        expect(sumOf(settlement)).toBe(0n);
        // …and each balance change is what the entries say, recomputed here.
        const deltas = new Map<string, bigint>();
        for (const e of settlement.entries) {
          deltas.set(e.buyer, (deltas.get(e.buyer) ?? 0n) - e.amountMicros);
          deltas.set(e.seller, (deltas.get(e.seller) ?? 0n) + e.amountMicros);
        }
        for (const [party, delta] of settlement.balanceDeltasMicros) expect(delta).toBe(deltas.get(party) ?? 0n);
        for (const party of deltas.keys()) expect(settlement.balanceDeltasMicros.has(party)).toBe(true);
      }),
    );
  });

  it("conserves energy: per household, bought + grid-import − surplus = import and sold + grid-export − shortfall = export", () => {
    fc.assert(
      fc.property(intervalArb, fc.constantFrom(...MARKET_MODES), ({ orders, grid, meters, interval }, mode) => {
        const trades = clearInterval(orders, mode, grid).trades;
        const { entries } = settleInterval({ interval, trades, metered: meters, grid });
        const households = new Set([...meters.keys(), ...trades.flatMap((t) => [t.buyer, t.seller])]);
        const wh = (h: string, reason: LedgerEntry["reason"], role: "buyer" | "seller") =>
          entries.filter((e) => e.reason === reason && e[role] === h).reduce((s, e) => s + e.energyWh, 0);
        for (const h of households) {
          const m = meters.get(h) ?? { importWh: 0, exportWh: 0 };
          expect(wh(h, "trade", "buyer") + wh(h, "grid-import", "buyer") - wh(h, "surplus", "seller")).toBe(m.importWh);
          expect(wh(h, "trade", "seller") + wh(h, "grid-export", "seller") - wh(h, "shortfall", "buyer")).toBe(m.exportWh);
        }
        for (const e of entries) {
          expect(e.interval).toBe(interval);
          expect(e.energyWh).toBeGreaterThan(0);
          expect(e.amountMicros).toBe(amountMicros(e.energyWh, e.priceMicrosPerKwh));
          if (e.reason === "grid-import" || e.reason === "shortfall") expect([e.seller, e.priceMicrosPerKwh]).toEqual([GRID, grid.importPriceMicrosPerKwh]);
          if (e.reason === "grid-export" || e.reason === "surplus") expect([e.buyer, e.priceMicrosPerKwh]).toEqual([GRID, grid.exportPriceMicrosPerKwh]);
        }
        // Trades first, in trade order; then grid entries by household ascending.
        expect(entries.slice(0, trades.length).map((e) => e.reason === "trade")).toEqual(trades.map(() => true));
        const gridParties = entries.slice(trades.length).map((e) => (e.buyer === GRID ? e.seller : e.buyer));
        expect(gridParties).toEqual([...gridParties].sort());
      }),
    );
  });
});
