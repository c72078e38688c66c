/**
 * RATE_LIMIT_VERIFY_RPS: a token bucket per session, in process memory so
 * the hot path writes nothing to Redis. Each replica enforces it on its own
 * share of the traffic; API rate limits as such belong to the proxy.
 */
export class SessionRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>();

  constructor(
    private readonly requestsPerSecond: number,
    private readonly maxEntries = 100_000,
  ) {}

  /** 0 when the request may pass, otherwise the seconds to wait. */
  take(sessionId: string, now: number): number {
    const burst = this.requestsPerSecond;
    let bucket = this.buckets.get(sessionId);
    if (!bucket) {
      if (this.buckets.size >= this.maxEntries) this.buckets.clear();
      bucket = { tokens: burst, updatedAt: now };
      this.buckets.set(sessionId, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.requestsPerSecond);
    bucket.updatedAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.requestsPerSecond));
  }
}
