/**
 * Token buckets by key (an IP address, a device id): connect floods are refused early, in
 * aedes' preConnect, before any signature is checked.
 */
export interface BucketLimit {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Bucket size: the burst allowed. */
  readonly burst: number;
}

/** Keys tracked at once; past it the table is cleared (everyone gets a fresh bucket), bounding memory under a spray of addresses. */
const KEYS_MAX = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly limit: BucketLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a token for `key`; false if it has none left. */
  take(key: string): boolean {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= KEYS_MAX) this.buckets.clear();
      b = { tokens: this.limit.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
