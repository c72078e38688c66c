import { MemoryRateLimitStore } from '../../src/session/rate-limit-store';
import type { Clock } from '../../src/shared/clock';

const WINDOW_MS = 60_000;
/** The start of a window: no test straddles a window boundary by accident. */
const WINDOW_START = 1_800_000_000_000 - (1_800_000_000_000 % WINDOW_MS);

/** Time stands still unless a test moves it. */
class StillClock implements Clock {
  private at = WINDOW_START;
  now(): number {
    return this.at;
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

describe('MemoryRateLimitStore', () => {
  it('counts hits of a key within its window and tells how long the window has left', async () => {
    const clock = new StillClock();
    const store = new MemoryRateLimitStore(clock);
    await store.hit('203.0.113.7', WINDOW_MS);
    const second = await store.hit('203.0.113.7', WINDOW_MS);
    expect(second.count).toBe(2);
    expect(second.retryAfterMs).toBeGreaterThan(0);
    expect(second.retryAfterMs).toBeLessThanOrEqual(WINDOW_MS);
  });

  it('starts counting again in the next window', async () => {
    const clock = new StillClock();
    const store = new MemoryRateLimitStore(clock);
    await store.hit('203.0.113.7', WINDOW_MS);
    clock.advance(WINDOW_MS);
    expect((await store.hit('203.0.113.7', WINDOW_MS)).count).toBe(1);
  });

  it('keeps counting a busy key while a flood of new keys passes the limit of keys it tracks', async () => {
    const clock = new StillClock();
    const store = new MemoryRateLimitStore(clock);
    await store.hit('busy-client', WINDOW_MS);
    for (let flood = 0; flood < 120_000; flood++) {
      await store.hit(`flood-${flood}`, WINDOW_MS);
      if (flood % 1000 === 0) await store.hit('busy-client', WINDOW_MS);
    }
    expect((await store.hit('busy-client', WINDOW_MS)).count).toBe(122);
  });
});
