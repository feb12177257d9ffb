import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeKpis, type GridPrices, type HouseholdIntervalTruth, type LedgerEntryView, type LedgerReason } from "./kpis.ts";

const GRID: GridPrices = { importPriceMicrosPerKwh: 300_000, exportPriceMicrosPerKwh: 77_777 };

function row(interval: number, loadWh: number, pvWh: number, importWh: number, exportWh: number): HouseholdIntervalTruth {
  return { interval, loadWh, pvWh, importWh, exportWh };
}

function entry(
  interval: number,
  buyer: string,
  seller: string,
  energyWh: number,
  priceMicrosPerKwh: number,
  amountMicros: bigint,
  reason: LedgerReason,
): LedgerEntryView {
  return { interval, buyer, seller, energyWh, priceMicrosPerKwh, amountMicros, reason };
}

/**
 * Household "a" has PV, "b" has none. Interval 0: a produces 1000 Wh, uses 400, sells 500 to b
 * at 0.20/kWh and exports the last 100 to the grid. Interval 1: a is short by 100 Wh, b needs
 * 703 Wh; both import from the grid.
 */
function twoHouseholds() {
  const truth = new Map<string, HouseholdIntervalTruth[]>([
    ["a", [row(0, 400, 1000, 0, 600), row(1, 300, 200, 100, 0)]],
    ["b", [row(0, 500, 0, 500, 0), row(1, 703, 0, 703, 0)]],
  ]);
  const ledger = [
    entry(0, "b", "a", 500, 200_000, 100_000n, "trade"), // 500 × 200_000 / 1000
    entry(0, "grid", "a", 100, 77_777, 7_777n, "grid-export"), // floor(100 × 77_777 / 1000 = 7_777.7)
    entry(1, "a", "grid", 100, 300_000, 30_000n, "grid-import"), // 100 × 300_000 / 1000
    entry(1, "b", "grid", 703, 300_000, 210_900n, "grid-import"), // 703 × 300_000 / 1000
  ];
  const clearingPrices = [
    { interval: 0, priceMicrosPerKwh: 200_000, tradedWh: 500 },
    { interval: 1, priceMicrosPerKwh: null, tradedWh: 0 },
  ];
  return { truth, ledger, grid: GRID, clearingPrices };
}

describe("computeKpis, hand-computed", () => {
  it("household a: own PV covers most of its demand, exports half its production", () => {
    const a = computeKpis(twoHouseholds()).households.a!;
    expect(a.demandWh).toBe(700); // 400 + 300
    expect(a.productionWh).toBe(1200); // 1000 + 200
    expect(a.meteredImportWh).toBe(100);
    expect(a.meteredExportWh).toBe(600); // 500 to b + 100 to the grid, all left the house
    expect(a.selfSufficiency).toBe(0.8571); // (700 − 100) / 700 = 0.857142…
    expect(a.selfConsumption).toBe(0.5); // (1200 − 600) / 1200
    expect(a.gridImportWh).toBe(100);
    expect(a.gridExportWh).toBe(100);
    expect(a.boughtWh).toBe(0);
    expect(a.soldWh).toBe(500);
    // grid only: −floor(600 × 77_777 / 1000 = 46_666.2) + 100 × 300_000 / 1000 = −46_666 + 30_000
    expect(a.costGridOnlyMicros).toBe(-16_666);
    // market: paid 30_000 (grid import), received 100_000 (trade) + 7_777 (grid export)
    expect(a.costMarketMicros).toBe(-77_777);
    expect(a.savingsMicros).toBe(61_111); // −16_666 − (−77_777)
  });

  it("household b: no PV, so its own ratios are 0; it saves by buying from a below the import price", () => {
    const b = computeKpis(twoHouseholds()).households.b!;
    expect(b.demandWh).toBe(1203); // 500 + 703
    expect(b.productionWh).toBe(0);
    expect(b.selfSufficiency).toBe(0); // (1203 − 1203) / 1203: a's energy is not b's own
    expect(b.selfConsumption).toBe(0); // production 0 → 0 by definition
    expect(b.gridImportWh).toBe(703);
    expect(b.gridExportWh).toBe(0);
    expect(b.boughtWh).toBe(500);
    expect(b.soldWh).toBe(0);
    expect(b.costGridOnlyMicros).toBe(360_900); // 500 × 300 + 703 × 300 = 150_000 + 210_900
    expect(b.costMarketMicros).toBe(310_900); // 100_000 (trade) + 210_900 (grid import)
    expect(b.savingsMicros).toBe(50_000); // 500 Wh × (0.30 − 0.20)/kWh
  });

  it("community: peer trades count as self-consumed, only grid entries leave it", () => {
    const c = computeKpis(twoHouseholds()).community;
    expect(c.demandWh).toBe(1903); // 700 + 1203
    expect(c.productionWh).toBe(1200);
    expect(c.gridImportWh).toBe(803); // ledger entries sold by the grid: 100 + 703
    expect(c.gridExportWh).toBe(100); // ledger entries bought by the grid
    expect(c.tradedWh).toBe(500);
    expect(c.selfSufficiency).toBe(0.578); // (1903 − 803) / 1903 = 0.578034…
    expect(c.selfConsumption).toBe(0.9167); // (1200 − 100) / 1200 = 0.91666…
    expect(c.savingsMicros).toBe(111_111); // 61_111 + 50_000
    expect(c.meanClearingPriceMicrosPerKwh).toBe(200_000); // the only interval that traded
  });

  it("households are keyed in ascending id order", () => {
    const input = twoHouseholds();
    const truth = new Map([...input.truth].reverse());
    expect(Object.keys(computeKpis({ ...input, truth }).households)).toEqual(["a", "b"]);
  });

  it("mean clearing price is volume-weighted over intervals that traded, rounded down", () => {
    const kpis = computeKpis({
      truth: new Map(),
      ledger: [],
      grid: GRID,
      clearingPrices: [
        { interval: 0, priceMicrosPerKwh: 200_000, tradedWh: 500 },
        { interval: 1, priceMicrosPerKwh: 250_002, tradedWh: 250 },
        { interval: 2, priceMicrosPerKwh: null, tradedWh: 0 },
        { interval: 3, priceMicrosPerKwh: 999_999, tradedWh: 0 }, // a price without volume weighs nothing
      ],
    });
    // (200_000 × 500 + 250_002 × 250) / 750 = 162_500_500 / 750 = 216_667.33…
    expect(kpis.community.meanClearingPriceMicrosPerKwh).toBe(216_667);
  });

  it("mean clearing price is null when no interval traded", () => {
    const kpis = computeKpis({ truth: new Map(), ledger: [], grid: GRID, clearingPrices: [{ interval: 0, priceMicrosPerKwh: null, tradedWh: 0 }] });
    expect(kpis.community.meanClearingPriceMicrosPerKwh).toBeNull();
    expect(kpis.community.selfSufficiency).toBe(0); // no demand → 0
    expect(kpis.community.selfConsumption).toBe(0); // no production → 0
  });

  it("clamps the community ratios when ledger energy exceeds modeled energy (meter rounding)", () => {
    const kpis = computeKpis({
      truth: new Map([["a", [row(0, 100, 50, 51, 1)]]]),
      ledger: [entry(0, "a", "grid", 101, 300_000, 30_300n, "grid-import"), entry(0, "grid", "a", 51, 77_777, 3_966n, "grid-export")],
      grid: GRID,
      clearingPrices: [],
    });
    expect(kpis.community.selfSufficiency).toBe(0); // (100 − 101) / 100 = −0.01 → 0
    expect(kpis.community.selfConsumption).toBe(0); // (50 − 51) / 50 = −0.02 → 0
  });

  it("clamps a household's self-sufficiency when its meter imported more than it demanded", () => {
    const kpis = computeKpis({ truth: new Map([["a", [row(0, 100, 0, 150, 0)]]]), ledger: [], grid: GRID, clearingPrices: [] });
    expect(kpis.households.a!.selfSufficiency).toBe(0); // (100 − 150) / 100 → 0
  });

  it("keeps an id like __proto__ as a household key", () => {
    const kpis = computeKpis({ truth: new Map([["__proto__", [row(0, 10, 0, 10, 0)]]]), ledger: [], grid: GRID, clearingPrices: [] });
    expect(Object.keys(kpis.households)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(kpis.households)).toBe(Object.prototype);
  });

  it("rejects a ledger party that is neither the grid nor a modeled household", () => {
    const input = twoHouseholds();
    expect(() => computeKpis({ ...input, ledger: [entry(0, "c", "grid", 1, 300_000, 300n, "grid-import")] })).toThrow(/"c"/);
  });

  it("rejects a household named like the grid", () => {
    expect(() => computeKpis({ truth: new Map([["grid", []]]), ledger: [], grid: GRID, clearingPrices: [] })).toThrow(/reserved/);
  });

  it("rejects non-integer energy", () => {
    expect(() => computeKpis({ truth: new Map([["a", [row(0, 1.5, 0, 0, 0)]]]), ledger: [], grid: GRID, clearingPrices: [] })).toThrow(/loadWh/);
  });

  it("rejects money beyond the safe integer range instead of rounding it", () => {
    const input = twoHouseholds();
    const huge = 2n ** 60n;
    expect(() => computeKpis({ ...input, ledger: [entry(0, "b", "a", 1, 1, huge, "trade")] })).toThrow(/safe integer/);
  });
});

const idsArb = fc.uniqueArray(fc.stringMatching(/^h[0-9]{1,3}$/), { minLength: 1, maxLength: 6 });
const whArb = fc.integer({ min: 0, max: 20_000 });
const priceArb = fc.integer({ min: 0, max: 1_000_000 });

/** Truth rows per household over `intervals` intervals: load and PV, the meter measuring the net flow. */
function truthArb(ids: readonly string[], intervals: number) {
  const rows = fc
    .array(fc.tuple(whArb, whArb), { minLength: intervals, maxLength: intervals })
    .map((pairs) => pairs.map(([loadWh, pvWh], interval) => row(interval, loadWh, pvWh, Math.max(0, loadWh - pvWh), Math.max(0, pvWh - loadWh))));
  return fc.tuple(...ids.map(() => rows)).map((all) => new Map(ids.map((id, i) => [id, all[i]!])));
}

describe("computeKpis, properties", () => {
  it("with no trades and a ledger that settles metered energy with the grid, savings are 0 and grid energy is the metered energy", () => {
    fc.assert(
      fc.property(
        idsArb.chain((ids) =>
          fc.tuple(
            fc.constant(ids),
            fc.integer({ min: 1, max: 8 }).chain((n) => truthArb(ids, n)),
          ),
        ),
        priceArb,
        priceArb,
        ([, truth], importPrice, exportPrice) => {
          const grid = { importPriceMicrosPerKwh: importPrice, exportPriceMicrosPerKwh: exportPrice };
          const ledger: LedgerEntryView[] = [];
          let importWh = 0;
          let exportWh = 0;
          for (const [id, rows] of truth) {
            for (const r of rows) {
              importWh += r.importWh;
              exportWh += r.exportWh;
              // Rounded down per entry, as a settlement in micros does.
              if (r.importWh > 0)
                ledger.push(entry(r.interval, id, "grid", r.importWh, importPrice, (BigInt(r.importWh) * BigInt(importPrice)) / 1000n, "grid-import"));
              if (r.exportWh > 0)
                ledger.push(entry(r.interval, "grid", id, r.exportWh, exportPrice, (BigInt(r.exportWh) * BigInt(exportPrice)) / 1000n, "grid-export"));
            }
          }
          const kpis = computeKpis({ truth, ledger, grid, clearingPrices: [] });
          expect(kpis.community.savingsMicros).toBe(0);
          for (const h of Object.values(kpis.households)) expect(h.savingsMicros).toBe(0);
          expect(kpis.community.gridImportWh).toBe(importWh);
          expect(kpis.community.gridExportWh).toBe(exportWh);
          expect(kpis.community.tradedWh).toBe(0);
          expect(kpis.community.meanClearingPriceMicrosPerKwh).toBeNull();
          // Without trades every kWh crossing a house's meter crosses the community boundary too.
          expect(kpis.community.gridImportWh).toBe(Object.values(kpis.households).reduce((s, h) => s + h.meteredImportWh, 0));
        },
      ),
    );
  });

  const anyLedgerInput = idsArb.chain((ids) =>
    fc.record({
      truth: fc.array(fc.tuple(whArb, whArb, whArb, whArb), { minLength: ids.length, maxLength: ids.length * 4 }).map((rows) => {
        // Arbitrary, even physically inconsistent, meter readings.
        const truth = new Map<string, HouseholdIntervalTruth[]>(ids.map((id) => [id, []]));
        rows.forEach(([l, p, i, e], k) => {
          truth.get(ids[k % ids.length]!)!.push(row(Math.floor(k / ids.length), l, p, i, e));
        });
        return truth;
      }),
      ledger: fc.array(
        fc
          .record({
            buyer: fc.constantFrom("grid", ...ids),
            seller: fc.constantFrom("grid", ...ids),
            energyWh: whArb,
            price: priceArb,
            reason: fc.constantFrom<LedgerReason>("trade", "grid-import", "grid-export", "shortfall", "surplus"),
          })
          .filter((e) => e.buyer !== e.seller)
          .map((e) => entry(0, e.buyer, e.seller, e.energyWh, e.price, (BigInt(e.energyWh) * BigInt(e.price)) / 1000n, e.reason)),
        { maxLength: 30 },
      ),
      grid: fc.record({ importPriceMicrosPerKwh: priceArb, exportPriceMicrosPerKwh: priceArb }),
      clearingPrices: fc.array(fc.record({ interval: fc.nat(100), priceMicrosPerKwh: fc.option(priceArb), tradedWh: whArb }), { maxLength: 8 }),
    }),
  );

  const isRatio = (r: number) => r >= 0 && r <= 1 && Math.abs(r * 10_000 - Math.round(r * 10_000)) < 1e-6;

  it("ratios are within [0, 1] with at most 4 decimals, whatever the ledger and meters say", () => {
    fc.assert(
      fc.property(anyLedgerInput, (input) => {
        const kpis = computeKpis(input);
        expect(isRatio(kpis.community.selfSufficiency)).toBe(true);
        expect(isRatio(kpis.community.selfConsumption)).toBe(true);
        for (const h of Object.values(kpis.households)) {
          expect(isRatio(h.selfSufficiency)).toBe(true);
          expect(isRatio(h.selfConsumption)).toBe(true);
        }
      }),
    );
  });

  it("community savings are the sum of household savings and do not depend on ledger order", () => {
    fc.assert(
      fc.property(anyLedgerInput, fc.integer(), (input, shift) => {
        const kpis = computeKpis(input);
        const savings = Object.values(kpis.households).reduce((s, h) => s + h.savingsMicros, 0);
        expect(kpis.community.savingsMicros).toBe(savings);
        for (const h of Object.values(kpis.households)) expect(h.savingsMicros).toBe(h.costGridOnlyMicros - h.costMarketMicros);
        const k = input.ledger.length === 0 ? 0 : Math.abs(shift) % input.ledger.length;
        const rotated = [...input.ledger.slice(k), ...input.ledger.slice(0, k)].reverse();
        expect(computeKpis({ ...input, ledger: rotated })).toEqual(kpis);
      }),
    );
  });
});
