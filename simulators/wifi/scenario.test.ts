import { describe, expect, it } from "vitest";
import { ATTESTED_STAKE_FACTOR, CLIENTS_MAX, generatePopulation, ownerCount, radiusRouterCount, ROUTERS_MAX, STAKE_MICROS } from "./scenario.ts";

describe("generatePopulation", () => {
  it("marks the last fifth of the routers RADIUS (at least two of three or more), the first half of those attested, and no native router attested", () => {
    expect([1, 2, 3, 4, 10, 20].map(radiusRouterCount)).toEqual([0, 1, 2, 2, 2, 4]);
    const p = generatePopulation({ routers: 20, clients: 50, seed: 1 });
    expect(p.routers.map((r) => r.transport)).toEqual([...Array(16).fill("mqtt"), ...Array(4).fill("radius")]);
    expect(p.routers.map((r) => r.attested)).toEqual([...Array(16).fill(false), true, true, false, false]);
    expect(p.routers.filter((r) => r.attested).every((r) => r.stakeMicros === STAKE_MICROS * ATTESTED_STAKE_FACTOR)).toBe(true);
    expect(p.routers.filter((r) => !r.attested).every((r) => r.stakeMicros === STAKE_MICROS)).toBe(true);
  });

  it("gives owners exactly their routers' stakes, one owner per two routers", () => {
    const p = generatePopulation({ routers: 5, clients: 3, seed: 2 });
    expect(p.owners).toHaveLength(ownerCount(5));
    expect(p.owners).toHaveLength(3);
    for (const o of p.owners) expect(o.topupMicros).toBe(p.routers.filter((r) => r.owner === o.index).reduce((s, r) => s + r.stakeMicros, 0));
    expect(new Set(p.routers.map((r) => r.owner)).size).toBe(3);
  });

  it("draws prices on a 1,000-micro grid within bounds and gives each client one to three distinct routers, its home first", () => {
    const p = generatePopulation({ routers: 7, clients: 40, seed: 3 });
    for (const r of p.routers) {
      expect(r.priceMicrosPerGb % 1000).toBe(0);
      expect(r.priceMicrosPerGb).toBeGreaterThanOrEqual(200_000);
      expect(r.priceMicrosPerGb).toBeLessThanOrEqual(2_000_000);
      expect(Buffer.byteLength(r.name)).toBeLessThanOrEqual(32);
    }
    for (const c of p.clients) {
      expect(c.routers[0]).toBe(c.index % 7);
      expect(new Set(c.routers).size).toBe(c.routers.length);
      expect(c.routers.length).toBeGreaterThanOrEqual(1);
      expect(c.routers.length).toBeLessThanOrEqual(3);
    }
  });

  it("replays exactly from its seed, and another seed draws other prices", () => {
    const a = generatePopulation({ routers: 6, clients: 10, seed: 9 });
    expect(generatePopulation({ routers: 6, clients: 10, seed: 9 })).toEqual(a);
    expect(generatePopulation({ routers: 6, clients: 10, seed: 10 }).routers.map((r) => r.priceMicrosPerGb)).not.toEqual(
      a.routers.map((r) => r.priceMicrosPerGb),
    );
  });

  it("refuses counts out of bounds", () => {
    expect(() => generatePopulation({ routers: 0, clients: 1, seed: 1 })).toThrow(/routers/);
    expect(() => generatePopulation({ routers: ROUTERS_MAX + 1, clients: 1, seed: 1 })).toThrow(/routers/);
    expect(() => generatePopulation({ routers: 1, clients: CLIENTS_MAX + 1, seed: 1 })).toThrow(/clients/);
    expect(() => generatePopulation({ routers: 1, clients: 1.5, seed: 1 })).toThrow(/clients/);
  });
});
