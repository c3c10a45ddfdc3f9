/**
 * Token-bucket rate limiting, one bucket per authenticated key. A bucket holds at most `burst` tokens and refills
 * at `perSecond`; each envelope takes one. Buckets belong to the key, not the connection, so reconnecting does
 * not refill them.
 */
export interface RateConfig {
  /** Sustained envelopes per second. */
  perSecond: number;
  /** Bucket size: how many envelopes may arrive at once after a quiet period. */
  burst: number;
}

export const DEFAULT_RATE: RateConfig = { perSecond: 60, burst: 120 };

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly config: RateConfig,
    now: number,
  ) {
    this.tokens = config.burst;
    this.last = now;
  }

  private refill(now: number): void {
    // A clock that steps back must not mint tokens; it only stops the refill until it catches up.
    if (now > this.last) {
      this.tokens = Math.min(this.config.burst, this.tokens + ((now - this.last) * this.config.perSecond) / 1000);
      this.last = now;
    }
  }

  /** Take one token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** True when the bucket is full again, so forgetting it changes nothing. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.config.burst;
  }
}

/** Buckets by key, forgetting full ones so the map cannot grow with every key that ever logged in. */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(readonly config: RateConfig) {}

  take(key: string, now: number): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.config, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now);
  }

  sweep(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}
