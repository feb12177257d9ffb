import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../../devices/simulate.ts";
import { derive, hashNormal, hashUniform, Rng, rngFor } from "./random.ts";

describe("Rng", () => {
  it("replays exactly from its seed", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const draws = (r: Rng) => [r.next(), r.uniform(3, 5), r.int(-2, 2), r.normal(), r.normal(), r.chance(0.5)];
    expect(draws(a)).toEqual(draws(b));
    expect(new Rng(43).next()).not.toBe(new Rng(42).next());
  });

  it("is the same mulberry32 as devices/simulate.ts", () => {
    const reference = seededRandom(1234);
    const r = new Rng(1234);
    for (let i = 0; i < 10; i++) expect(r.next()).toBe(reference());
  });

  it("int(a, b) covers both ends and nothing outside", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 0, max: 5 }), fc.nat(), (a, width, seed) => {
        const r = new Rng(seed);
        const seen = new Set<number>();
        for (let i = 0; i < 200; i++) {
          const v = r.int(a, a + width);
          expect(v).toBeGreaterThanOrEqual(a);
          expect(v).toBeLessThanOrEqual(a + width);
          seen.add(v);
        }
        expect(seen.size).toBe(width + 1);
      }),
      { numRuns: 50 },
    );
    expect(() => new Rng(1).int(2, 1)).toThrow(RangeError);
  });

  it("normal() has mean 0 and variance 1", () => {
    const r = new Rng(7);
    let sum = 0;
    let squares = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      sum += z;
      squares += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.02);
  });
});

describe("derive and hashes", () => {
  it("gives a different stream per label and the same for the same labels", () => {
    expect(derive(1, "household", 3)).toBe(derive(1, "household", 3));
    const seeds = new Set([
      derive(1, "household", 3),
      derive(1, "household", 4),
      derive(2, "household", 3),
      derive(1, "meter", 3),
      derive(1, "household", "3"),
      derive(1, "ab", "c"),
      derive(1, "a", "bc"),
    ]);
    expect(seeds.size).toBe(7);
    expect(rngFor(5, "x").next()).toBe(new Rng(derive(5, "x")).next());
  });

  it("random access is order-independent and roughly uniform / normal", () => {
    const forward = [0, 1, 2, 3].map((k) => hashUniform(9, k));
    const backward = [3, 2, 1, 0].map((k) => hashUniform(9, k)).reverse();
    expect(forward).toEqual(backward);
    let sum = 0;
    let squares = 0;
    let outside = 0;
    const n = 50_000;
    for (let k = 0; k < n; k++) {
      const u = hashUniform(11, k);
      if (u < 0 || u >= 1) outside++;
      sum += u;
      const z = hashNormal(11, k);
      squares += z * z;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.03);
    // Keys beyond 2^32 do not wrap onto small ones.
    expect(hashUniform(1, 2 ** 32 + 5)).not.toBe(hashUniform(1, 5));
  });
});
