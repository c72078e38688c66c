import { backoffDelayMs, nominalBackoffMs, RefreshBackoff, REFRESH_BACKOFF_SCHEDULE } from '../../src/session/refresh-backoff';
import { MovableClock } from '../support/gateway';

const SCHEDULE = { initialMs: 1_000, maxMs: 30_000 };

describe('the refresh back-off schedule', () => {
  it('doubles from one second with each failure and stops growing at thirty seconds', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((failures) => nominalBackoffMs(failures, SCHEDULE))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });

  it('is the schedule the gateway uses', () => {
    expect(REFRESH_BACKOFF_SCHEDULE).toEqual(SCHEDULE);
  });

  it.each([1, 3, 6, 1_000])('after %i failures waits between half the nominal interval and all of it', (failures) => {
    const nominal = nominalBackoffMs(failures, SCHEDULE);
    expect(backoffDelayMs(failures, SCHEDULE, () => 0)).toBe(nominal / 2);
    expect(backoffDelayMs(failures, SCHEDULE, () => 0.999_999)).toBeLessThanOrEqual(nominal);
    expect(backoffDelayMs(failures, SCHEDULE, () => 0.999_999)).toBeGreaterThan(nominal * 0.99);
  });

  it('spreads sessions that failed together over the interval instead of bringing them back at once', () => {
    const delays = new Set([0, 0.25, 0.5, 0.75].map((random) => backoffDelayMs(4, SCHEDULE, () => random)));
    expect(delays.size).toBe(4);
  });
});

describe('the per-session refresh back-off', () => {
  function build(random = () => 1 - Number.EPSILON) {
    const clock = new MovableClock();
    return { clock, backoff: new RefreshBackoff({ clock, schedule: SCHEDULE, random }) };
  }

  it('lets a session that never failed ask the IdP at once', () => {
    const { backoff } = build();
    expect(backoff.remainingMs('s1')).toBe(0);
  });

  it('after a failure makes the session wait for its interval, and lets it ask again once the interval has passed', () => {
    const { clock, backoff } = build();
    const state = backoff.recordFailure('s1');
    expect(state.failures).toBe(1);
    expect(backoff.remainingMs('s1')).toBeGreaterThan(900);
    expect(backoff.remainingMs('s1')).toBeLessThanOrEqual(1_000);
    clock.advance(1_000);
    expect(backoff.remainingMs('s1')).toBe(0);
  });

  it('keeps each session to its own back-off', () => {
    const { backoff } = build();
    backoff.recordFailure('s1');
    expect(backoff.remainingMs('s2')).toBe(0);
  });

  it('grows the wait while the failures of one outage follow each other', () => {
    const { clock, backoff } = build();
    const failures: number[] = [];
    for (let attempt = 0; attempt < 4; attempt += 1) {
      failures.push(backoff.recordFailure('s1').failures);
      clock.advance(backoff.remainingMs('s1'));
    }
    expect(failures).toEqual([1, 2, 3, 4]);
    backoff.recordFailure('s1');
    expect(backoff.remainingMs('s1')).toBeGreaterThan(15_000);
  });

  it('starts a new outage, counted from one, when the last failure is long past', () => {
    const { clock, backoff } = build();
    backoff.recordFailure('s1');
    backoff.recordFailure('s1');
    clock.advance(10 * 60_000);
    expect(backoff.recordFailure('s1').failures).toBe(1);
  });

  it('forgets the failures after a success and reports how many the outage had', () => {
    const { clock, backoff } = build();
    backoff.recordFailure('s1');
    clock.advance(backoff.remainingMs('s1'));
    backoff.recordFailure('s1');
    clock.advance(backoff.remainingMs('s1'));
    expect(backoff.recordSuccess('s1')).toBe(2);
    expect(backoff.remainingMs('s1')).toBe(0);
    expect(backoff.recordSuccess('s1')).toBe(0);
    expect(backoff.recordFailure('s1').failures).toBe(1);
  });

  it('remembers a bounded number of sessions, forgetting the least recently used first', () => {
    const clock = new MovableClock();
    const backoff = new RefreshBackoff({ clock, schedule: SCHEDULE, maxSessions: 2 });
    backoff.recordFailure('s1');
    backoff.recordFailure('s2');
    backoff.recordFailure('s3');
    expect(backoff.remainingMs('s1')).toBe(0);
    expect(backoff.remainingMs('s2')).toBeGreaterThan(0);
    expect(backoff.remainingMs('s3')).toBeGreaterThan(0);
  });
});
