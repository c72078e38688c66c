import type { AuthorizationInput } from '../../src/authz/authorizer';
import { DecisionCache, decisionKey, normaliseInput, type Decision } from '../../src/authz/decision-cache';

const T0 = 1_700_000_000_000;

class FakeClock {
  constructor(public nowMs = T0) {}
  now(): number {
    return this.nowMs;
  }
}

const aliceDeletesOrder: AuthorizationInput = {
  subject: { sub: 'alice', groups: ['admins', 'users'], email: 'alice@example.test' },
  resource: 'orders',
  action: 'delete',
  method: 'DELETE',
  path: '/api/orders/42',
};

function withSubject(subject: Partial<AuthorizationInput['subject']>): AuthorizationInput {
  return { ...aliceDeletesOrder, subject: { ...aliceDeletesOrder.subject, ...subject } };
}

/** A decide() the test settles by hand, counting its calls. */
function deferredDecision() {
  let calls = 0;
  let settle: { resolve: (decision: Decision) => void; reject: (error: Error) => void } | undefined;
  const decide = () => {
    calls++;
    return new Promise<Decision>((resolve, reject) => {
      settle = { resolve, reject };
    });
  };
  return {
    decide,
    get calls() {
      return calls;
    },
    resolve: (decision: Decision) => settle?.resolve(decision),
    reject: (error: Error) => settle?.reject(error),
  };
}

describe('decisionKey', () => {
  it('is the same for the same input, whatever order the groups came in', () => {
    expect(decisionKey(withSubject({ groups: ['users', 'admins'] }))).toBe(decisionKey(aliceDeletesOrder));
  });

  it.each<[string, AuthorizationInput]>([
    ['another subject', withSubject({ sub: 'bob' })],
    ['fewer groups', withSubject({ groups: ['users'] })],
    ['another group', withSubject({ groups: ['admins', 'auditors'] })],
    ['no groups', withSubject({ groups: [] })],
    ['a repeated group', withSubject({ groups: ['admins', 'users', 'users'] })],
    ['two groups written as one', withSubject({ groups: ['admins,users'] })],
    ['another email', withSubject({ email: 'mallory@example.test' })],
    ['no email', withSubject({ email: undefined })],
    ['an empty email', withSubject({ email: '' })],
    ['another resource', { ...aliceDeletesOrder, resource: 'admin' }],
    ['another action', { ...aliceDeletesOrder, action: 'read' }],
    ['another method for the same action', { ...aliceDeletesOrder, method: 'POST', action: 'write' }],
    ['another method only', { ...aliceDeletesOrder, method: 'PATCH' }],
    ['another path', { ...aliceDeletesOrder, path: '/api/orders/43' }],
    ['a path that differs in case', { ...aliceDeletesOrder, path: '/api/Orders/42' }],
  ])('gives a different key to an input with %s', (_difference, other) => {
    expect(decisionKey(other)).not.toBe(decisionKey(aliceDeletesOrder));
  });

  it('cannot be forged by moving a separator between fields', () => {
    const split = { ...aliceDeletesOrder, subject: { sub: 'alice', groups: ['admins'] }, resource: 'orders' };
    const joined = { ...aliceDeletesOrder, subject: { sub: 'alice","admins', groups: [] }, resource: 'orders' };
    expect(decisionKey(joined)).not.toBe(decisionKey(split));
  });

  it('has a fixed size however long the path is', () => {
    expect(decisionKey({ ...aliceDeletesOrder, path: `/api/orders/${'x'.repeat(8000)}` })).toHaveLength(43);
  });
});

describe('normaliseInput', () => {
  it('sorts a copy of the groups and leaves the caller\'s input untouched', () => {
    const groups = ['users', 'admins'];
    const normalised = normaliseInput(withSubject({ groups }));
    expect(normalised.subject.groups).toEqual(['admins', 'users']);
    expect(groups).toEqual(['users', 'admins']);
  });
});

describe('DecisionCache', () => {
  const cacheWith = (ttlSeconds: number, clock = new FakeClock(), maxEntries = 100) => ({
    cache: new DecisionCache({ ttlSeconds, maxEntries, clock }),
    clock,
  });

  it('answers a repeated input from the cache within the TTL', async () => {
    const { cache, clock } = cacheWith(5);
    const decide = jest.fn(async (): Promise<Decision> => 'allow');
    await cache.getOrDecide('k', decide);
    clock.nowMs += 4_999;
    expect(await cache.getOrDecide('k', decide)).toBe('allow');
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('asks again once the TTL has passed', async () => {
    const { cache, clock } = cacheWith(5);
    const answers: Decision[] = ['allow', 'deny'];
    const decide = jest.fn(async () => answers.shift() ?? 'deny');
    await cache.getOrDecide('k', decide);
    clock.nowMs += 5_000;
    expect(await cache.getOrDecide('k', decide)).toBe('deny');
    expect(decide).toHaveBeenCalledTimes(2);
  });

  it('caches denials as well as allows', async () => {
    const { cache } = cacheWith(5);
    const decide = jest.fn(async (): Promise<Decision> => 'deny');
    await cache.getOrDecide('k', decide);
    expect(await cache.getOrDecide('k', decide)).toBe('deny');
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('keeps nothing when the TTL is 0', async () => {
    const { cache } = cacheWith(0);
    const decide = jest.fn(async (): Promise<Decision> => 'allow');
    await cache.getOrDecide('k', decide);
    await cache.getOrDecide('k', decide);
    expect(decide).toHaveBeenCalledTimes(2);
    expect(cache.size).toBe(0);
  });

  it('lets concurrent identical misses share one call', async () => {
    const { cache } = cacheWith(5);
    const pdp = deferredDecision();
    const answers = Array.from({ length: 5 }, () => cache.getOrDecide('k', pdp.decide));
    pdp.resolve('allow');
    expect(await Promise.all(answers)).toEqual(['allow', 'allow', 'allow', 'allow', 'allow']);
    expect(pdp.calls).toBe(1);
  });

  it('shares an in-flight call even with caching off, and asks again afterwards', async () => {
    const { cache } = cacheWith(0);
    const pdp = deferredDecision();
    const answers = [cache.getOrDecide('k', pdp.decide), cache.getOrDecide('k', pdp.decide)];
    pdp.resolve('deny');
    expect(await Promise.all(answers)).toEqual(['deny', 'deny']);
    const later = cache.getOrDecide('k', pdp.decide);
    pdp.resolve('allow');
    expect(await later).toBe('allow');
    expect(pdp.calls).toBe(2);
  });

  it('never shares a call between different keys', async () => {
    const { cache } = cacheWith(5);
    const decide = jest.fn(async (): Promise<Decision> => 'allow');
    await Promise.all([cache.getOrDecide('alice', decide), cache.getOrDecide('bob', decide)]);
    expect(decide).toHaveBeenCalledTimes(2);
  });

  it('rejects every waiter of a failed call and caches nothing, so the next request asks again', async () => {
    const { cache } = cacheWith(5);
    const pdp = deferredDecision();
    const answers = [cache.getOrDecide('k', pdp.decide), cache.getOrDecide('k', pdp.decide)];
    pdp.reject(new Error('connection refused'));
    for (const answer of answers) await expect(answer).rejects.toThrow('connection refused');
    expect(cache.size).toBe(0);
    const retry = jest.fn(async (): Promise<Decision> => 'allow');
    expect(await cache.getOrDecide('k', retry)).toBe('allow');
    expect(retry).toHaveBeenCalledTimes(1);
  });

  it('holds at most maxEntries, evicting the oldest', async () => {
    const { cache } = cacheWith(60, new FakeClock(), 3);
    for (const key of ['a', 'b', 'c', 'd']) await cache.getOrDecide(key, async () => 'allow');
    expect(cache.size).toBe(3);
    const decide = jest.fn(async (): Promise<Decision> => 'deny');
    expect(await cache.getOrDecide('d', decide)).toBe('allow');
    expect(await cache.getOrDecide('a', decide)).toBe('deny');
    expect(decide).toHaveBeenCalledTimes(1);
  });

  it('drops an entry when the clock goes backwards rather than keeping it past its TTL', async () => {
    const { cache, clock } = cacheWith(5);
    await cache.getOrDecide('k', async () => 'allow');
    clock.nowMs -= 60_000;
    const decide = jest.fn(async (): Promise<Decision> => 'deny');
    expect(await cache.getOrDecide('k', decide)).toBe('deny');
  });
});
