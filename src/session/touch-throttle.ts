import { LRUCache } from 'lru-cache';

/** Sessions one replica remembers touching; past it the least recently touched are forgotten. */
const DEFAULT_MAX_ENTRIES = 100_000;

/**
 * Remembers when this process last slid a session's idle expiry, so /verify
 * writes to the store at most once per interval per session instead of on
 * every request. Bounded: past `maxEntries` the least recently touched
 * sessions are forgotten, which costs each of them one extra touch and
 * nothing else.
 */
export class TouchThrottle {
  constructor(
    private readonly intervalMs: number,
    private readonly lastTouched = new LRUCache<string, number>({ max: DEFAULT_MAX_ENTRIES }),
  ) {}

  /** The same memory of touches at another interval: for a frontend with its own idle timeout. */
  withInterval(intervalMs: number): TouchThrottle {
    return new TouchThrottle(intervalMs, this.lastTouched);
  }

  /** True when the caller should touch now; records the touch. */
  shouldTouch(sessionId: string, now: number): boolean {
    const last = this.lastTouched.get(sessionId);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.lastTouched.set(sessionId, now);
    return true;
  }

  forget(sessionId: string): void {
    this.lastTouched.delete(sessionId);
  }
}
