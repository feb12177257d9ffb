/**
 * Seeded randomness for the simulation (house style, "Determinism": seeds are injected, so a run
 * replays exactly from its scenario's seed). Nothing here is for keys or anything adversarial.
 *
 * - `Rng`: a sequential stream, mulberry32 (Tommy Ettinger's 32-bit generator, the same one as
 *   `devices/simulate.ts` `seededRandom`), with uniform, integer and normal draws.
 * - `derive(seed, ...labels)`: an independent 32-bit seed per household and purpose, so adding a
 *   household or drawing one more number for one purpose does not shift any other stream.
 * - `hashUniform` / `hashNormal`: random access by integer key (a noise value per 20-minute knot,
 *   say), identical whoever asks first: what makes regional clouds the same for every household.
 */

const UINT32 = 2 ** 32;

/** The murmur3 32-bit finalizer (Appleby, MurmurHash3 `fmix32`): full avalanche of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds one 32-bit word into a running hash (murmur3's block step, then the finalizer). */
function mixWord(h: number, word: number): number {
  let k = Math.imul(word >>> 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return fmix32((Math.imul(h, 5) + 0xe6546b64) >>> 0);
}

/** Folds an integer (|x| < 2^53, possibly negative) into the hash as two words, so large keys do not collide mod 2^32. */
function mixInteger(h: number, x: number): number {
  if (!Number.isSafeInteger(x)) throw new RangeError(`hash key ${x} is not a safe integer`);
  const low = x % UINT32;
  const high = Math.floor(x / UINT32);
  return mixWord(mixWord(h, low), high);
}

/** Folds a text label in, length first (so "ab","c" and "a","bc" differ), then its UTF-16 code units. */
function mixText(h: number, text: string): number {
  h = mixWord(h, text.length ^ 0x5bd1e995);
  for (let i = 0; i < text.length; i++) h = mixWord(h, text.charCodeAt(i));
  return h;
}

/** An independent 32-bit seed for one purpose: `derive(scenario.seed, "household", 3, "pv")`. */
export function derive(seed: number, ...labels: readonly (string | number)[]): number {
  let h = mixInteger(0x9747b28c, seed);
  for (const label of labels) h = typeof label === "string" ? mixText(h, label) : mixInteger(mixWord(h, 0x2545f491), label);
  return h;
}

/** A uniform number in [0, 1) for (seed, keys), by random access. */
export function hashUniform(seed: number, ...keys: readonly number[]): number {
  let h = mixInteger(0x3c6ef372, seed);
  for (const key of keys) h = mixInteger(h, key);
  return h / UINT32;
}

/** A standard normal for (seed, keys), by random access (Box–Muller on two hashed uniforms). */
export function hashNormal(seed: number, ...keys: readonly number[]): number {
  const u1 = 1 - hashUniform(seed, ...keys, 1); // (0, 1]: log is finite
  const u2 = hashUniform(seed, ...keys, 2);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** A sequential seeded stream: mulberry32 underneath, helpers on top. */
export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of resolution (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / UINT32;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** A uniform integer in [a, b], both inclusive (a ≤ b, both safe integers, b − a < 2^32). */
  int(a: number, b: number): number {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a > b || b - a >= UINT32) throw new RangeError(`int(${a}, ${b})`);
    return a + Math.floor(this.next() * (b - a + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A standard normal draw, Box–Muller (Box & Muller 1958), using both values of each pair. */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(0, items.length - 1)]!;
  }
}

/** A stream for one purpose: `rngFor(scenario.seed, "meter", index)`. */
export function rngFor(seed: number, ...labels: readonly (string | number)[]): Rng {
  return new Rng(derive(seed, ...labels));
}
