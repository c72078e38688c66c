import { LRUCache } from 'lru-cache';
import type { RedisClient, RedisGuard } from './redis-session-store';
import type { Clock } from '../shared/clock';

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

/** Windows tracked at once (client addresses); past it the least recently hit are forgotten, never all of them. */
const MAX_TRACKED_KEYS = 100_000;

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows: LRUCache<string, { count: number; readonly resetAt: number }>;

  constructor(private readonly clock: Clock) {
    // Expiry follows the injected clock, read on every access (ttlResolution 0), so tests can move time.
    this.windows = new LRUCache({ max: MAX_TRACKED_KEYS, perf: clock, ttlResolution: 0 });
  }

  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const now = this.clock.now();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      window = { count: 0, resetAt: (Math.floor(now / windowMs) + 1) * windowMs };
      this.windows.set(key, window, { ttl: window.resetAt - now });
    }
    window.count += 1;
    return { count: window.count, retryAfterMs: window.resetAt - now };
  }
}
