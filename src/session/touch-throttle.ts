/**
 * Remembers when this process last slid a session's idle expiry, so /verify
 * writes to the store at most once per interval per session instead of on
 * every request. Bounded: past `maxEntries` it forgets everything, which
 * only costs one extra touch per session.
 */
export class TouchThrottle {
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  /** True when the caller should touch now; records the touch. */
  shouldTouch(sessionId: string, now: number): boolean {
    const last = this.lastTouched.get(sessionId);
    if (last !== undefined && now - last < this.intervalMs) return false;
    if (this.lastTouched.size >= this.maxEntries) this.lastTouched.clear();
    this.lastTouched.set(sessionId, now);
    return true;
  }

  forget(sessionId: string): void {
    this.lastTouched.delete(sessionId);
  }
}
