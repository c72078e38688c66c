import { LRUCache } from 'lru-cache';
import { TouchThrottle } from '../../src/session/touch-throttle';

const T0 = 1_700_000_000_000;
const INTERVAL_MS = 60_000;

describe('TouchThrottle', () => {
  it('touches a session it has not seen', () => {
    expect(new TouchThrottle(INTERVAL_MS).shouldTouch('session-a', T0)).toBe(true);
  });

  it('does not touch again within the interval', () => {
    const throttle = new TouchThrottle(INTERVAL_MS);
    throttle.shouldTouch('session-a', T0);
    expect(throttle.shouldTouch('session-a', T0 + INTERVAL_MS - 1)).toBe(false);
  });

  it('touches again once the interval has passed', () => {
    const throttle = new TouchThrottle(INTERVAL_MS);
    throttle.shouldTouch('session-a', T0);
    expect(throttle.shouldTouch('session-a', T0 + INTERVAL_MS)).toBe(true);
  });

  it('counts the interval from the last touch, not the last request', () => {
    const throttle = new TouchThrottle(INTERVAL_MS);
    throttle.shouldTouch('session-a', T0);
    throttle.shouldTouch('session-a', T0 + 30_000);
    expect(throttle.shouldTouch('session-a', T0 + INTERVAL_MS)).toBe(true);
  });

  it('throttles each session on its own', () => {
    const throttle = new TouchThrottle(INTERVAL_MS);
    throttle.shouldTouch('session-a', T0);
    expect([throttle.shouldTouch('session-a', T0 + 1), throttle.shouldTouch('session-b', T0 + 1)]).toEqual([false, true]);
  });

  it('touches a forgotten session at once', () => {
    const throttle = new TouchThrottle(INTERVAL_MS);
    throttle.shouldTouch('session-a', T0);
    throttle.forget('session-a');
    expect(throttle.shouldTouch('session-a', T0 + 1)).toBe(true);
  });

  it('forgets the least recently touched session once maxEntries is reached, which only costs it an extra touch', () => {
    const throttle = new TouchThrottle(INTERVAL_MS, new LRUCache<string, number>({ max: 2 }));
    throttle.shouldTouch('session-a', T0);
    throttle.shouldTouch('session-b', T0);
    throttle.shouldTouch('session-c', T0);
    expect(throttle.shouldTouch('session-a', T0 + 1)).toBe(true);
  });

  it('shares what it remembers with a throttle at another interval (a frontend with its own idle timeout)', () => {
    const throttle = new TouchThrottle(INTERVAL_MS);
    const faster = throttle.withInterval(INTERVAL_MS / 4);
    faster.shouldTouch('session-a', T0);
    expect(faster.shouldTouch('session-a', T0 + INTERVAL_MS / 4 - 1)).toBe(false);
    expect(faster.shouldTouch('session-a', T0 + INTERVAL_MS / 4)).toBe(true);
    throttle.forget('session-a');
    expect(faster.shouldTouch('session-a', T0 + INTERVAL_MS / 4 + 1)).toBe(true);
  });

  it('keeps throttling the sessions it still remembers when a new one pushes the oldest out', () => {
    const throttle = new TouchThrottle(INTERVAL_MS, new LRUCache<string, number>({ max: 2 }));
    throttle.shouldTouch('session-a', T0);
    throttle.shouldTouch('session-b', T0);
    throttle.shouldTouch('session-c', T0);
    expect([throttle.shouldTouch('session-b', T0 + 1), throttle.shouldTouch('session-c', T0 + 1)]).toEqual([false, false]);
  });
});
