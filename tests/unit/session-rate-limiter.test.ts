import { SessionRateLimiter } from '../../src/forwardauth/session-rate-limiter';

const T0 = 1_700_000_000_000;

function takeMany(limiter: SessionRateLimiter, sessionId: string, count: number, now: number): number[] {
  return Array.from({ length: count }, () => limiter.take(sessionId, now));
}

describe('SessionRateLimiter', () => {
  it('lets a burst of requestsPerSecond requests through at once', () => {
    const limiter = new SessionRateLimiter(5);
    expect(takeMany(limiter, 'session-a', 5, T0)).toEqual([0, 0, 0, 0, 0]);
  });

  it('refuses the request after the burst with a Retry-After of one second', () => {
    const limiter = new SessionRateLimiter(5);
    takeMany(limiter, 'session-a', 5, T0);
    expect(limiter.take('session-a', T0)).toBe(1);
  });

  it('keeps refusing while the clock stands still', () => {
    const limiter = new SessionRateLimiter(2);
    takeMany(limiter, 'session-a', 2, T0);
    expect(takeMany(limiter, 'session-a', 3, T0)).toEqual([1, 1, 1]);
  });

  it('refills one token per 1/requestsPerSecond seconds', () => {
    const limiter = new SessionRateLimiter(10);
    takeMany(limiter, 'session-a', 10, T0);
    expect([limiter.take('session-a', T0 + 100), limiter.take('session-a', T0 + 100)]).toEqual([0, 1]);
  });

  it('refills no more than the burst after a long pause', () => {
    const limiter = new SessionRateLimiter(3);
    takeMany(limiter, 'session-a', 3, T0);
    expect(takeMany(limiter, 'session-a', 4, T0 + 60_000)).toEqual([0, 0, 0, 1]);
  });

  it('does not refill before enough time has passed for a whole token', () => {
    const limiter = new SessionRateLimiter(1);
    limiter.take('session-a', T0);
    expect(limiter.take('session-a', T0 + 999)).toBe(1);
  });

  it('lets the request through once a whole second has passed at one request per second', () => {
    const limiter = new SessionRateLimiter(1);
    limiter.take('session-a', T0);
    expect(limiter.take('session-a', T0 + 1000)).toBe(0);
  });

  it('keeps a separate bucket per session', () => {
    const limiter = new SessionRateLimiter(1);
    limiter.take('session-a', T0);
    expect([limiter.take('session-a', T0), limiter.take('session-b', T0)]).toEqual([1, 0]);
  });

  it('answers Retry-After in whole seconds, never less than one', () => {
    const limiter = new SessionRateLimiter(1000);
    takeMany(limiter, 'session-a', 1000, T0);
    expect(limiter.take('session-a', T0)).toBe(1);
  });

  it('forgets every bucket when maxEntries is reached, which only grants a fresh burst', () => {
    const limiter = new SessionRateLimiter(1, 2);
    limiter.take('session-a', T0);
    limiter.take('session-b', T0);
    limiter.take('session-c', T0);
    expect(limiter.take('session-a', T0)).toBe(0);
  });
});
