// One suite for every SessionStore and LoginTransactionStore (oauth2-proxy's
// way): in memory, and RedisSessionStore on a single Redis, a 3-master Cluster
// and through Sentinel. Time passes by moving the store's clock and, for
// Redis, by ageing every key's TTL as much (redis-deployments.ts): no test
// waits for an expiry. Each test starts from an empty store.
import type { SessionData } from 'express-session';
import pino from 'pino';
import { CachedSessionStore } from '../../src/session/cached-session-store';
import { ExpressSessionAdapter } from '../../src/session/express-session-adapter';
import { MemoryLoginTransactionStore, MemorySessionStore } from '../../src/session/memory-session-store';
import {
  ACTIVE_SESSIONS_KEY,
  activeSessionMember,
  IDP_SID_INDEX_PREFIX,
  IDP_SUB_INDEX_PREFIX,
  LOGOUT_JTI_KEY_PREFIX,
  RedisLoginTransactionStore,
  RedisSessionStore,
  SESSION_KEY_PREFIX,
  type RedisGuard,
} from '../../src/session/redis-session-store';
import type { StoredSession } from '../../src/session/session-data';
import { SessionSealer } from '../../src/session/session-sealer';
import type { SessionInvalidations } from '../../src/session/session-invalidations';
import type { ListedSession, LoginTransactionStore, SessionStore } from '../../src/session/session-store';
import { GatewayMetrics } from '../../src/telemetry/metrics';
import { MovableClock } from '../support/gateway';
import {
  ageEveryKey,
  everyKeyAndValue,
  flushEverything,
  keysStartingWith,
  redisCluster,
  redisThroughSentinel,
  standaloneRedis,
  type RedisDeployment,
} from './redis-deployments';
import { PREVIOUS_SECRET, SECRET, sessionId, sessionOf, testIdpShapedSession, withTokens } from './session-values';

const IDLE_TTL_SECONDS = 60;
const IDLE_TTL_MS = IDLE_TTL_SECONDS * 1000;
const HOUR_MS = 3_600_000;

interface StoreUnderTest {
  readonly sessions: SessionStore;
  readonly transactions: LoginTransactionStore;
  readonly clock: MovableClock;
  /** Lets time pass as the store sees it: its clock moves and, in Redis, every key ages as much. */
  passTime(ms: number): Promise<void>;
}

function memoryStore(): StoreUnderTest {
  const clock = new MovableClock();
  return {
    sessions: new MemorySessionStore({ sealer: new SessionSealer([SECRET]), idleTtlSecondsOf: () => IDLE_TTL_SECONDS, clock }),
    transactions: new MemoryLoginTransactionStore(clock),
    clock,
    passTime: async (ms) => clock.advance(ms),
  };
}

const passThrough: RedisGuard = (_operation, command) => command();

/** A RedisSessionStore on `deployment` with its own secrets: another replica's view of the same Redis. */
function redisStoreOn(deployment: RedisDeployment, clock: MovableClock, secrets: readonly string[] = [SECRET]): RedisSessionStore {
  return new RedisSessionStore({ client: deployment.client, guard: passThrough, sealer: new SessionSealer(secrets), idleTtlSecondsOf: () => IDLE_TTL_SECONDS, clock });
}

/** An empty store on `deployment`. */
async function redisStore(deployment: RedisDeployment): Promise<StoreUnderTest> {
  await flushEverything(deployment);
  const clock = new MovableClock();
  return {
    sessions: redisStoreOn(deployment, clock),
    transactions: new RedisLoginTransactionStore(deployment.client, passThrough),
    clock,
    passTime: async (ms) => {
      clock.advance(ms);
      await ageEveryKey(deployment, ms);
    },
  };
}

describe('MemorySessionStore', () => {
  let subject: StoreUnderTest;
  beforeEach(() => {
    subject = memoryStore();
  });

  describe('honours the SessionStore contract', () => sessionStoreContract(() => subject));
});

// Sentinel first: discovering the master leaves ioredis disconnect timers (2 s) behind, which are
// then over before the file ends instead of holding Jest's exit.
describe.each([
  ['Redis through Sentinel', redisThroughSentinel],
  ['a single Redis', standaloneRedis],
  ['a 3-master Redis Cluster', redisCluster],
])('RedisSessionStore on %s', (_name, start) => {
  let deployment: RedisDeployment;
  let subject: StoreUnderTest;
  beforeAll(async () => {
    deployment = await start();
  });
  afterAll(() => deployment?.stop());
  beforeEach(async () => {
    subject = await redisStore(deployment);
  });

  describe('honours the SessionStore contract', () => sessionStoreContract(() => subject));

  describe('keeps Redis free of tokens and personal data, and small', () => redisOnlyContract(() => ({ subject, deployment })));

  describe('behind the session cache of two replicas (CachedSessionStore)', () => {
    /** No announcements at all: what the list shows must not depend on them. */
    const silent: SessionInvalidations = { announce: async () => undefined, listen: async () => undefined, close: async () => undefined };
    const cachedOn = (store: SessionStore) =>
      new CachedSessionStore(store, silent, { metrics: new GatewayMetrics({ collectProcessMetrics: false }), logger: pino({ level: 'silent' }), clock: subject.clock });

    it("lists what the store holds, never a session this replica still caches but another replica has ended", async () => {
      const thisReplica = cachedOn(subject.sessions);
      const otherReplica = cachedOn(redisStoreOn(deployment, subject.clock));
      await thisReplica.save(sessionId('cached-list-a'), sessionOf('wilma', undefined, subject.clock.now() + HOUR_MS));
      await thisReplica.save(sessionId('cached-list-b'), sessionOf('wilma', undefined, subject.clock.now() + HOUR_MS));
      expect(await thisReplica.get(sessionId('cached-list-a'))).toBeDefined();

      await otherReplica.destroy(sessionId('cached-list-a'));

      // Still in this replica's cache (nothing was announced), yet not listed.
      expect(await thisReplica.get(sessionId('cached-list-a'))).toBeDefined();
      expect(idsOf(await thisReplica.listBySubject('wilma'))).toEqual([sessionId('cached-list-b')]);
    });
  });
});

function idsOf(listed: readonly ListedSession[]): string[] {
  return listed.map((session) => session.sessionId).sort();
}

function sessionStoreContract(subject: () => StoreUnderTest): void {
  const now = () => subject().clock.now();

  describe('sessions', () => {
    it('returns undefined for a session that was never stored', async () => {
      expect(await subject().sessions.get(sessionId('missing'))).toBeUndefined();
    });

    it('returns what was saved, every token and claim intact, as a copy', async () => {
      const saved = sessionOf('alice', 'sid-alice', now() + HOUR_MS);
      await subject().sessions.save(sessionId('roundtrip'), saved);
      const read = await subject().sessions.get(sessionId('roundtrip'));
      expect(read).toEqual(saved);
      expect(read).not.toBe(saved);
    });

    it('replaces what a session id held when it is saved again', async () => {
      await subject().sessions.save(sessionId('replaced'), sessionOf('bob', undefined, now() + HOUR_MS));
      const again = withTokens(sessionOf('bob', undefined, now() + HOUR_MS), { accessToken: 'access-token-after' });
      await subject().sessions.save(sessionId('replaced'), again);
      expect((await subject().sessions.get(sessionId('replaced')))?.auth.tokens.accessToken).toBe('access-token-after');
    });

    it('forgets a session once it has been idle for the idle timeout', async () => {
      await subject().sessions.save(sessionId('idle'), sessionOf('carol', undefined, now() + HOUR_MS));
      await subject().passTime(IDLE_TTL_MS + 1000);
      expect(await subject().sessions.get(sessionId('idle'))).toBeUndefined();
    });

    it('keeps a session that is touched within the idle timeout', async () => {
      const record = sessionOf('dave', undefined, now() + HOUR_MS);
      await subject().sessions.save(sessionId('touched'), record);
      await subject().passTime(IDLE_TTL_MS * 0.75);
      await subject().sessions.touch(sessionId('touched'), record);
      await subject().passTime(IDLE_TTL_MS * 0.75);
      expect(await subject().sessions.get(sessionId('touched'))).toEqual(record);
    });

    it('forgets a session at the end of its absolute lifetime, however recently it was touched', async () => {
      const record = sessionOf('erin', undefined, now() + IDLE_TTL_MS / 2);
      await subject().sessions.save(sessionId('capped'), record);
      await subject().sessions.touch(sessionId('capped'), record);
      await subject().passTime(IDLE_TTL_MS / 2 + 1000);
      expect(await subject().sessions.get(sessionId('capped'))).toBeUndefined();
    });

    it('does not store a session whose absolute lifetime is over', async () => {
      await subject().sessions.save(sessionId('absolute'), sessionOf('frank', undefined, now() - 1000));
      expect(await subject().sessions.get(sessionId('absolute'))).toBeUndefined();
    });

    it('destroys a session, and destroying one that is not there does nothing', async () => {
      await subject().sessions.save(sessionId('destroy'), sessionOf('gina', undefined, now() + HOUR_MS));
      await subject().sessions.destroy(sessionId('destroy'));
      await subject().sessions.destroy(sessionId('never-there'));
      expect(await subject().sessions.get(sessionId('destroy'))).toBeUndefined();
    });

    it('does not bring back a destroyed session when it is touched', async () => {
      const record = sessionOf('hank', undefined, now() + HOUR_MS);
      await subject().sessions.save(sessionId('touch-gone'), record);
      await subject().sessions.destroy(sessionId('touch-gone'));
      await subject().sessions.touch(sessionId('touch-gone'), record);
      expect(await subject().sessions.get(sessionId('touch-gone'))).toBeUndefined();
      expect(await subject().sessions.countActive()).toBe(0);
    });
  });

  describe('the refresh lock', () => {
    it('grants the refresh lock to one holder at a time, and again after release', async () => {
      const first = await subject().sessions.tryLockForRefresh(sessionId('lock'), 5000);
      expect(first).toBeDefined();
      expect(await subject().sessions.tryLockForRefresh(sessionId('lock'), 5000)).toBeUndefined();
      await first!.release();
      const second = await subject().sessions.tryLockForRefresh(sessionId('lock'), 5000);
      expect(second).toBeDefined();
      await second!.release();
    });

    it('keeps the lock while it is renewed, and lets it lapse after its lease once it is not', async () => {
      const lease = await subject().sessions.tryLockForRefresh(sessionId('lapse'), 5000);
      await subject().passTime(3000);
      expect(await lease!.renew()).toBe(true);
      await subject().passTime(3000);
      expect(await subject().sessions.tryLockForRefresh(sessionId('lapse'), 5000)).toBeUndefined();
      await subject().passTime(2500);
      expect(await lease!.renew()).toBe(false);
      const next = await subject().sessions.tryLockForRefresh(sessionId('lapse'), 5000);
      expect(next).toBeDefined();
      await next!.release();
    });

    it('commits a refreshed record while the lease is held, and refuses one after it lapsed', async () => {
      const id = sessionId('commit');
      await subject().sessions.save(id, sessionOf('ivy', 'sid-ivy', now() + HOUR_MS));
      const lease = await subject().sessions.tryLockForRefresh(id, 5000);
      expect(await lease!.commit(withTokens(sessionOf('ivy', 'sid-ivy', now() + HOUR_MS), { accessToken: 'rotated' }))).toBe(true);
      expect((await subject().sessions.get(id))?.auth.tokens.accessToken).toBe('rotated');

      await subject().passTime(6000);
      expect(await lease!.commit(withTokens(sessionOf('ivy', 'sid-ivy', now() + HOUR_MS), { accessToken: 'too-late' }))).toBe(false);
      expect((await subject().sessions.get(id))?.auth.tokens.accessToken).toBe('rotated');
    });

    it('does not bring back a session destroyed while its refresh was in flight', async () => {
      const id = sessionId('refresh-kim');
      await subject().sessions.save(id, sessionOf('kim', 'sid-kim', now() + HOUR_MS));
      const lease = await subject().sessions.tryLockForRefresh(id, 5000);

      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-kim' })).toBe(1);

      expect(await lease!.commit(withTokens(sessionOf('kim', 'sid-kim', now() + HOUR_MS), { accessToken: 'rotated' }))).toBe(false);
      expect(await subject().sessions.get(id)).toBeUndefined();
      await lease!.release();
    });
  });

  describe('the active-sessions count', () => {
    it('counts saved sessions, and not those destroyed or expired', async () => {
      await subject().sessions.save(sessionId('count-a'), sessionOf('lena', undefined, now() + HOUR_MS));
      await subject().sessions.save(sessionId('count-b'), sessionOf('mike', undefined, now() + HOUR_MS));
      expect(await subject().sessions.countActive()).toBe(2);
      await subject().sessions.destroy(sessionId('count-a'));
      expect(await subject().sessions.countActive()).toBe(1);
      await subject().passTime(IDLE_TTL_MS + 1000);
      expect(await subject().sessions.countActive()).toBe(0);
    });

    it('keeps counting a session that a touch kept alive past its first idle timeout', async () => {
      const record = sessionOf('nina', undefined, now() + HOUR_MS);
      await subject().sessions.save(sessionId('count-touched'), record);
      await subject().passTime(IDLE_TTL_MS * 0.75);
      await subject().sessions.touch(sessionId('count-touched'), record);
      await subject().passTime(IDLE_TTL_MS * 0.75);
      expect(await subject().sessions.countActive()).toBe(1);
    });

    it('counts a refreshed session until its new idle timeout', async () => {
      const id = sessionId('count-committed');
      await subject().sessions.save(id, sessionOf('otto', undefined, now() + HOUR_MS));
      await subject().passTime(IDLE_TTL_MS * 0.75);
      const lease = await subject().sessions.tryLockForRefresh(id, 5000);
      await lease!.commit(withTokens(sessionOf('otto', undefined, now() + HOUR_MS), { accessToken: 'rotated' }));
      await lease!.release();
      await subject().passTime(IDLE_TTL_MS * 0.75);
      expect(await subject().sessions.countActive()).toBe(1);
    });
  });

  describe('through express-session (ExpressSessionAdapter)', () => {
    const cookie = { httpOnly: true, secure: false, sameSite: 'lax', path: '/' } as const;
    const call = <T>(operation: (callback: (error?: unknown, value?: T) => void) => void) =>
      new Promise<T | undefined>((resolve, reject) => operation((error, value) => (error ? reject(error) : resolve(value))));

    it('loads what it stored with a browser-session cookie rebuilt from the attributes, and null for an unknown id', async () => {
      const adapter = new ExpressSessionAdapter(subject().sessions, cookie);
      const record = sessionOf('paul', 'sid-paul', now() + HOUR_MS);
      await call((done) => adapter.set(sessionId('express'), { cookie: { originalMaxAge: null }, ...record }, done));

      expect(await call((done) => adapter.get(sessionId('express'), done))).toEqual({ cookie: { ...cookie, originalMaxAge: null, expires: null }, auth: record.auth });
      expect(await call((done) => adapter.get(sessionId('unknown'), done))).toBeNull();
    });

    it('keeps a session in the active count when express-session touches it on an /auth request', async () => {
      const adapter = new ExpressSessionAdapter(subject().sessions, cookie);
      const record = { cookie: { originalMaxAge: null }, ...sessionOf('quinn', undefined, now() + HOUR_MS) };
      await call((done) => adapter.set(sessionId('express-touch'), record, done));
      await subject().passTime(IDLE_TTL_MS * 0.75);
      await call((done) => adapter.touch(sessionId('express-touch'), record, done));
      await subject().passTime(IDLE_TTL_MS * 0.75);
      expect(await subject().sessions.countActive()).toBe(1);
      expect(await subject().sessions.get(sessionId('express-touch'))).toBeDefined();
    });

    it('removes, rather than stores, a session express-session saves without a login', async () => {
      const adapter = new ExpressSessionAdapter(subject().sessions, cookie);
      await subject().sessions.save(sessionId('express-anon'), sessionOf('sven', undefined, now() + HOUR_MS));
      await call((done) => adapter.set(sessionId('express-anon'), { cookie: { originalMaxAge: null } } as SessionData, done));
      expect(await subject().sessions.get(sessionId('express-anon'))).toBeUndefined();
    });

    it('forgets a session destroyed through express-session: a later back-channel logout for it destroys nothing', async () => {
      const adapter = new ExpressSessionAdapter(subject().sessions, cookie);
      await call((done) => adapter.set(sessionId('express-ended'), { cookie: { originalMaxAge: null }, ...sessionOf('rita', 'sid-rita', now() + HOUR_MS) }, done));
      await call((done) => adapter.destroy(sessionId('express-ended'), done));
      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-rita' })).toBe(0);
      expect(await subject().sessions.destroyByIdpSession({ sub: 'rita' })).toBe(0);
      expect(await subject().sessions.countActive()).toBe(0);
    });
  });

  describe("listing a subject's sessions", () => {
    it("lists every live session of the subject with its record, and none of another subject's", async () => {
      const first = sessionOf('xavi', 'sid-xavi-1', now() + HOUR_MS);
      const second = sessionOf('xavi', 'sid-xavi-2', now() + HOUR_MS);
      await subject().sessions.save(sessionId('list-xavi-1'), first);
      await subject().sessions.save(sessionId('list-xavi-2'), second);
      await subject().sessions.save(sessionId('list-yola'), sessionOf('yola', 'sid-yola', now() + HOUR_MS));

      const listed = await subject().sessions.listBySubject('xavi');
      expect(idsOf(listed)).toEqual([sessionId('list-xavi-1'), sessionId('list-xavi-2')].sort());
      expect(listed.find((session) => session.sessionId === sessionId('list-xavi-2'))?.record).toEqual(second);
      expect(await subject().sessions.listBySubject('nobody')).toEqual([]);
    });

    it('gives back the frontend and device label of each record', async () => {
      const base = sessionOf('yves', undefined, now() + HOUR_MS);
      await subject().sessions.save(sessionId('list-yves'), { auth: { ...base.auth, frontend: 'shop', device: 'Firefox 133 on Linux' } });
      const [listed] = await subject().sessions.listBySubject('yves');
      expect(listed?.record.auth).toMatchObject({ frontend: 'shop', device: 'Firefox 133 on Linux' });
    });

    it('leaves out sessions destroyed, ended by back-channel logout, or idle past the idle timeout', async () => {
      await subject().sessions.save(sessionId('list-zoe-kept'), sessionOf('zoe', 'sid-zoe-1', now() + HOUR_MS));
      await subject().sessions.save(sessionId('list-zoe-gone'), sessionOf('zoe', 'sid-zoe-2', now() + HOUR_MS));
      await subject().sessions.save(sessionId('list-zoe-bcl'), sessionOf('zoe', 'sid-zoe-3', now() + HOUR_MS));
      await subject().sessions.save(sessionId('list-zoe-idle'), sessionOf('zoe', 'sid-zoe-4', now() + HOUR_MS));
      await subject().sessions.destroy(sessionId('list-zoe-gone'));
      await subject().sessions.destroyByIdpSession({ sid: 'sid-zoe-3' });
      await subject().passTime(IDLE_TTL_MS / 2);
      await subject().sessions.touch(sessionId('list-zoe-kept'), sessionOf('zoe', 'sid-zoe-1', now() + HOUR_MS));
      await subject().passTime(IDLE_TTL_MS / 2 + 1000);

      expect(idsOf(await subject().sessions.listBySubject('zoe'))).toEqual([sessionId('list-zoe-kept')]);
    });

    it('says when each session was last used: when it was saved, then when it was last touched', async () => {
      const record = sessionOf('abel', undefined, now() + HOUR_MS);
      const savedAt = now();
      await subject().sessions.save(sessionId('list-abel'), record);
      await subject().passTime(10_000);
      expect(Math.abs((await subject().sessions.listBySubject('abel'))[0]!.lastSeenAt - savedAt)).toBeLessThan(1000);

      const touchedAt = now();
      await subject().sessions.touch(sessionId('list-abel'), record);
      await subject().passTime(20_000);
      const [listed] = await subject().sessions.listBySubject('abel');
      expect(Math.abs(listed!.lastSeenAt - touchedAt)).toBeLessThan(1000);
      expect(listed!.lastSeenAt).toBeLessThanOrEqual(now());
    });
  });

  describe('login transactions and logout token ids', () => {
    it('hands out a login transaction exactly once', async () => {
      const transaction = { codeVerifier: 'v', nonce: 'n', returnTo: '/x', browserBinding: 'b', createdAt: now() };
      await subject().transactions.save('state-once', transaction, 600);
      expect(await subject().transactions.take('state-once')).toEqual(transaction);
      expect(await subject().transactions.take('state-once')).toBeUndefined();
    });

    it('keeps concurrent login transactions apart', async () => {
      const base = { codeVerifier: 'v', nonce: 'n', browserBinding: 'b', createdAt: now() };
      await subject().transactions.save('tab-1', { ...base, returnTo: '/one' }, 600);
      await subject().transactions.save('tab-2', { ...base, returnTo: '/two' }, 600);
      expect((await subject().transactions.take('tab-2'))?.returnTo).toBe('/two');
      expect((await subject().transactions.take('tab-1'))?.returnTo).toBe('/one');
    });

    it('expires a login transaction', async () => {
      await subject().transactions.save('state-expiring', { codeVerifier: 'v', nonce: 'n', returnTo: '/', browserBinding: 'b', createdAt: now() }, 600);
      await subject().passTime(601_000);
      expect(await subject().transactions.take('state-expiring')).toBeUndefined();
    });

    it('accepts a logout token id once, on whichever instance sees it first', async () => {
      expect(await subject().transactions.claimLogoutTokenId('jti-once', 600)).toBe(true);
      expect(await subject().transactions.claimLogoutTokenId('jti-once', 600)).toBe(false);
    });

    it('accepts a logout token id again once it was released', async () => {
      expect(await subject().transactions.claimLogoutTokenId('jti-released', 600)).toBe(true);
      await subject().transactions.releaseLogoutTokenId('jti-released');
      expect(await subject().transactions.claimLogoutTokenId('jti-released', 600)).toBe(true);
    });

    it('forgets a logout token id after the time it was claimed for, and not before', async () => {
      expect(await subject().transactions.claimLogoutTokenId('jti-expiring', 600)).toBe(true);
      await subject().passTime(599_000);
      expect(await subject().transactions.claimLogoutTokenId('jti-expiring', 600)).toBe(false);
      await subject().passTime(2000);
      expect(await subject().transactions.claimLogoutTokenId('jti-expiring', 600)).toBe(true);
    });
  });

  describe('back-channel logout', () => {
    it('destroys every session of the IdP session a logout names by sid, and no other', async () => {
      await subject().sessions.save(sessionId('sid-tab-1'), sessionOf('alice', 'sid-alice-laptop', now() + HOUR_MS));
      await subject().sessions.save(sessionId('sid-tab-2'), sessionOf('alice', 'sid-alice-laptop', now() + HOUR_MS));
      await subject().sessions.save(sessionId('sid-phone'), sessionOf('alice', 'sid-alice-phone', now() + HOUR_MS));
      await subject().sessions.save(sessionId('sid-bob'), sessionOf('bob', 'sid-bob', now() + HOUR_MS));

      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-alice-laptop' })).toBe(2);

      expect(await subject().sessions.get(sessionId('sid-tab-1'))).toBeUndefined();
      expect(await subject().sessions.get(sessionId('sid-tab-2'))).toBeUndefined();
      expect(await subject().sessions.get(sessionId('sid-phone'))).toBeDefined();
      expect(await subject().sessions.get(sessionId('sid-bob'))).toBeDefined();
    });

    it('destroys every session of a subject when the logout names only sub', async () => {
      await subject().sessions.save(sessionId('sub-carol-1'), sessionOf('carol', 'sid-carol-1', now() + HOUR_MS));
      await subject().sessions.save(sessionId('sub-carol-2'), sessionOf('carol', undefined, now() + HOUR_MS));
      await subject().sessions.save(sessionId('sub-dan'), sessionOf('dan', 'sid-dan', now() + HOUR_MS));

      expect(await subject().sessions.destroyByIdpSession({ sub: 'carol' })).toBe(2);

      expect(await subject().sessions.get(sessionId('sub-carol-1'))).toBeUndefined();
      expect(await subject().sessions.get(sessionId('sub-carol-2'))).toBeUndefined();
      expect(await subject().sessions.get(sessionId('sub-dan'))).toBeDefined();
    });

    it('with both sid and sub, destroys only the sessions of that IdP session that belong to that subject', async () => {
      await subject().sessions.save(sessionId('both-erin'), sessionOf('erin', 'sid-shared', now() + HOUR_MS));
      await subject().sessions.save(sessionId('both-frank'), sessionOf('frank', 'sid-shared', now() + HOUR_MS));
      await subject().sessions.save(sessionId('both-erin-other'), sessionOf('erin', 'sid-erin-other', now() + HOUR_MS));

      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-shared', sub: 'erin' })).toBe(1);

      expect(await subject().sessions.get(sessionId('both-erin'))).toBeUndefined();
      expect(await subject().sessions.get(sessionId('both-frank'))).toBeDefined();
      expect(await subject().sessions.get(sessionId('both-erin-other'))).toBeDefined();
    });

    it('finds nothing for a logout that names neither sid nor sub, or names nobody it knows', async () => {
      await subject().sessions.save(sessionId('someone'), sessionOf('gina', 'sid-gina', now() + HOUR_MS));
      expect(await subject().sessions.destroyByIdpSession({})).toBe(0);
      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-nobody' })).toBe(0);
      expect(await subject().sessions.destroyByIdpSession({ sub: 'nobody' })).toBe(0);
      expect(await subject().sessions.get(sessionId('someone'))).toBeDefined();
    });

    it('forgets a session ended by the store itself (binding failure, rejected refresh)', async () => {
      const id = sessionId('ended-hank');
      await subject().sessions.save(id, sessionOf('hank', 'sid-hank', now() + HOUR_MS));
      await subject().sessions.destroy(id);

      expect(await subject().sessions.destroyByIdpSession({ sub: 'hank' })).toBe(0);
      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-hank' })).toBe(0);
    });

    it('still finds a session that outlived its first idle timeout by being touched', async () => {
      const id = sessionId('slid-ivy');
      const record = sessionOf('ivy', 'sid-ivy', now() + HOUR_MS);
      await subject().sessions.save(id, record);
      await subject().passTime(IDLE_TTL_MS * 0.75);
      await subject().sessions.touch(id, record);
      await subject().passTime(IDLE_TTL_MS * 0.75);

      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-ivy' })).toBe(1);
      expect(await subject().sessions.get(id)).toBeUndefined();
    });

    it('does not count a session that idled out, whatever its index still lists', async () => {
      await subject().sessions.save(sessionId('idled-jack'), sessionOf('jack', 'sid-jack', now() + HOUR_MS));
      await subject().passTime(IDLE_TTL_MS + 1000);
      expect(await subject().sessions.destroyByIdpSession({ sid: 'sid-jack' })).toBe(0);
    });
  });
}

/** What only Redis can show: the bytes at rest, the keys, their lifetimes and their size. */
function redisOnlyContract(context: () => { subject: StoreUnderTest; deployment: RedisDeployment }): void {
  const now = () => context().subject.clock.now();

  /** The master holding `key` (on a Cluster, one of three; the others answer MOVED). */
  async function holderOf(key: string) {
    for (const master of context().deployment.masters()) if ((await master.exists(key).catch(() => 0)) === 1) return master;
    throw new Error(`no master holds ${key}`);
  }

  it('keeps no token, profile claim, binding hash or IdP session id in clear anywhere in Redis, not even in DUMP output', async () => {
    const { subject, deployment } = context();
    const record = sessionOf('zoe-9f1c', 'sid-zoe-77ad', now() + HOUR_MS);
    await subject.sessions.save(sessionId('private'), record);
    const lease = await subject.sessions.tryLockForRefresh(sessionId('private'), 5000);
    const refreshed = withTokens(record, { refreshToken: 'rotated-refresh-token-5c2e' });
    await lease!.commit(refreshed);
    await lease!.release();

    const { user, tokens, binding } = refreshed.auth;
    const jwtParts = [tokens.accessToken, tokens.idToken!].flatMap((token) => token.split('.'));
    const needles = [
      user.sub,
      user.email!,
      user.name!,
      ...user.groups,
      'sid-zoe-77ad',
      binding.userAgent!,
      tokens.accessToken,
      tokens.refreshToken!,
      tokens.idToken!,
      ...jwtParts,
      // The parts decoded, as a compact encoding might keep them: claims as JSON, the signature's raw bytes.
      ...jwtParts.map((part) => Buffer.from(part, 'base64url')),
    ].map((needle) => (typeof needle === 'string' ? Buffer.from(needle) : needle));

    const stored = await everyKeyAndValue(deployment);
    expect(stored.map(({ key }) => key)).toEqual(expect.arrayContaining([SESSION_KEY_PREFIX + sessionId('private'), ACTIVE_SESSIONS_KEY]));
    const found = stored.flatMap(({ key, bytes }) =>
      needles.filter((needle) => Buffer.from(key).includes(needle) || bytes.some((value) => value.includes(needle))).map((needle) => `${needle.toString('utf8').slice(0, 40)} in ${key}`),
    );
    expect(found).toEqual([]);
  });

  it('files back-channel logout entries under keyed digests: the same sid and sub under another secret are filed elsewhere', async () => {
    const { subject, deployment } = context();
    await subject.sessions.save(sessionId('keyed-now'), sessionOf('yuri', 'sid-yuri', now() + HOUR_MS));
    await redisStoreOn(deployment, subject.clock, [PREVIOUS_SECRET]).save(sessionId('keyed-before'), sessionOf('yuri', 'sid-yuri', now() + HOUR_MS));

    for (const prefix of [IDP_SID_INDEX_PREFIX, IDP_SUB_INDEX_PREFIX]) {
      const keys = await keysStartingWith(deployment, prefix);
      const members = (await Promise.all(keys.map(async (key) => (await holderOf(key)).zrangeBuffer(key, 0, -1)))).flat();
      expect(members).toHaveLength(2);
      // Member = 8 bytes of the claim's digest, then the session id: the digests of the two secrets differ.
      const digests = new Set(members.map((member) => member.subarray(0, 8).toString('hex')));
      expect(digests.size).toBe(2);
      for (const key of keys) expect(key).not.toMatch(/yuri/);
      for (const member of members) expect(member.toString('latin1')).not.toMatch(/yuri/);
    }
  });

  it('during a secret rotation, opens and finds what the previous secret sealed, seals what it writes with the new one, and without the old secret treats the old sessions as gone', async () => {
    const { subject, deployment } = context();
    const before = redisStoreOn(deployment, subject.clock, [PREVIOUS_SECRET]);
    const rotating = redisStoreOn(deployment, subject.clock, [SECRET, PREVIOUS_SECRET]);
    const after = redisStoreOn(deployment, subject.clock, [SECRET]);
    const old = sessionOf('uma', 'sid-uma-old', now() + HOUR_MS);
    const fresh = sessionOf('uma', 'sid-uma-new', now() + HOUR_MS);
    await before.save(sessionId('rotation-old'), old);
    await rotating.save(sessionId('rotation-new'), fresh);

    expect(await rotating.get(sessionId('rotation-old'))).toEqual(old);
    expect(await after.get(sessionId('rotation-new'))).toEqual(fresh);
    expect(await before.get(sessionId('rotation-new'))).toBeUndefined();
    expect(await after.get(sessionId('rotation-old'))).toBeUndefined();
    expect(await rotating.destroyByIdpSession({ sub: 'uma' })).toBe(2);
  });

  it('treats a record in the connect-redis JSON of earlier versions as no session, so its user logs in again', async () => {
    const { subject, deployment } = context();
    const earlier = { cookie: { originalMaxAge: null, httpOnly: true, path: '/' }, auth: { ...sessionOf('vera', undefined, now() + HOUR_MS).auth, tokens: 'v1.AbCdEfGh.sealed.tokens' } };
    await deployment.client.set(SESSION_KEY_PREFIX + sessionId('earlier'), JSON.stringify(earlier), 'EX', IDLE_TTL_SECONDS);
    expect(await subject.sessions.get(sessionId('earlier'))).toBeUndefined();
  });

  it('does not open a record copied under another session id', async () => {
    const { subject, deployment } = context();
    await subject.sessions.save(sessionId('victim'), sessionOf('walt', undefined, now() + HOUR_MS));
    const sealed = await deployment.client.getBuffer(SESSION_KEY_PREFIX + sessionId('victim'));
    await deployment.client.set(SESSION_KEY_PREFIX + sessionId('attacker'), sealed!, 'EX', IDLE_TTL_SECONDS);
    expect(await subject.sessions.get(sessionId('attacker'))).toBeUndefined();
    expect(await subject.sessions.get(sessionId('victim'))).toBeDefined();
  });

  it('keeps a session of the test IdP\'s shape within 900 bytes of Redis memory for its record, leaving its index entries room within 1.2 KiB', async () => {
    const { subject } = context();
    const key = SESSION_KEY_PREFIX + sessionId('compact');
    await subject.sessions.save(sessionId('compact'), testIdpShapedSession('xena-0c7d5e1a', 'sid-3f9a1c7e-5b2d', now()));
    // bench/session-memory.mjs measures the whole (record and indexes) at a thousand and a million sessions.
    expect(Number(await (await holderOf(key)).memory('USAGE', key))).toBeLessThanOrEqual(900);
  });

  it('keeps its IdP index buckets at least as long as the sessions they list, and removes every entry it destroys', async () => {
    const { subject, deployment } = context();
    const id = sessionId('keys-jack');
    await subject.sessions.save(id, sessionOf('jack', 'sid-jack', now() + HOUR_MS));
    const sessionTtl = await (await holderOf(SESSION_KEY_PREFIX + id)).ttl(SESSION_KEY_PREFIX + id);
    const buckets = [...(await keysStartingWith(deployment, IDP_SID_INDEX_PREFIX)), ...(await keysStartingWith(deployment, IDP_SUB_INDEX_PREFIX))];
    expect(sessionTtl).toBeGreaterThan(0);
    expect(await deployment.client.zscore(ACTIVE_SESSIONS_KEY, activeSessionMember(id))).not.toBeNull();
    expect(buckets).toHaveLength(2);
    for (const bucket of buckets) expect(await (await holderOf(bucket)).ttl(bucket)).toBeGreaterThanOrEqual(sessionTtl);

    expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-jack' })).toBe(1);

    expect(await keysStartingWith(deployment, SESSION_KEY_PREFIX)).toEqual([]);
    expect(await deployment.client.zcard(ACTIVE_SESSIONS_KEY)).toBe(0);
    expect(await keysStartingWith(deployment, 'bff:idp-')).toEqual([]);
  });

  it('removes the index entries of a session the store destroys itself', async () => {
    const { subject, deployment } = context();
    const id = sessionId('ended-kurt');
    await subject.sessions.save(id, sessionOf('kurt', 'sid-kurt', now() + HOUR_MS));
    await subject.sessions.destroy(id);

    expect(await deployment.client.zcard(ACTIVE_SESSIONS_KEY)).toBe(0);
    expect(await keysStartingWith(deployment, 'bff:idp-')).toEqual([]);
  });

  it('keeps an accepted logout token id in Redis for the time it was claimed for', async () => {
    const { subject, deployment } = context();
    await subject.transactions.claimLogoutTokenId('jti-kept', 600);
    const key = `${LOGOUT_JTI_KEY_PREFIX}jti-kept`;
    expect(await (await holderOf(key)).ttl(key)).toBeGreaterThan(590);
  });
}
