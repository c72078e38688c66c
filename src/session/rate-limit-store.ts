import type { RedisClient, RedisGuard } from './redis-session-store';
import type { Clock } from './session-store';

export interface RateLimitHit {
  /** Requests counted in the current window, this one included. */
  readonly count: number;
  /** Milliseconds until the window ends. */
  readonly retryAfterMs: number;
}

/** Fixed-window request counters shared by every replica (SPEC section 5). */
export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<RateLimitHit>;
}

const INCREMENT_IN_WINDOW = `local count = redis.call('incr', KEYS[1])
if count == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return {count, redis.call('pttl', KEYS[1])}`;

/** `bff:rl:<key>:<window>` counters; one script per hit, so the counter and its expiry never disagree. */
export class RedisRateLimitStore implements RateLimitStore {
  constructor(
    private readonly client: RedisClient,
    private readonly guard: RedisGuard,
    private readonly clock: Clock,
  ) {}

  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const window = Math.floor(this.clock.now() / windowMs);
    const [count, ttl] = (await this.guard('ratelimit', () =>
      this.client.eval(INCREMENT_IN_WINDOW, 1, `bff:rl:${key}:${window}`, windowMs),
    )) as [number, number];
    return { count, retryAfterMs: Math.max(ttl, 0) };
  }
}

const MAX_TRACKED_KEYS = 100_000;

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(private readonly clock: Clock) {}

  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const now = this.clock.now();
    if (this.windows.size > MAX_TRACKED_KEYS) this.prune(now);
    // Still full of live windows (many addresses at once): forgetting them errs towards letting requests in.
    if (this.windows.size > MAX_TRACKED_KEYS) this.windows.clear();
    const current = this.windows.get(key);
    const window = current && current.resetAt > now ? current : { count: 0, resetAt: (Math.floor(now / windowMs) + 1) * windowMs };
    window.count += 1;
    this.windows.set(key, window);
    return { count: window.count, retryAfterMs: window.resetAt - now };
  }

  private prune(now: number): void {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }
}
