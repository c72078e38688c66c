import Redis, { Cluster } from 'ioredis';
import { MemoryLoginTransactionStore, MemorySessionStore } from '../../src/session/memory-session-store';
import {
  ACTIVE_SESSIONS_KEY,
  IDP_SID_INDEX_PREFIX,
  IDP_SUB_INDEX_PREFIX,
  LOGOUT_JTI_KEY_PREFIX,
  RedisLoginTransactionStore,
  RedisSessionStore,
  SESSION_KEY_PREFIX,
  type RedisGuard,
} from '../../src/session/redis-session-store';
import type { StoredSession } from '../../src/session/session-data';
import type { LoginTransactionStore, SessionStore } from '../../src/session/session-store';
import { MovableClock } from '../support/gateway';
import { startRedis, type RedisServer } from '../support/redis';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster';
import { startRedisSentinel, type RedisSentinel } from '../support/redis-sentinel';

const IDLE_TTL_SECONDS = 2;

interface StoreUnderTest {
  readonly sessions: SessionStore;
  readonly transactions: LoginTransactionStore;
  /** Lets time pass as the implementation sees it: the clock for memory, real time for Redis TTLs. */
  passTime(ms: number): Promise<void>;
  /** The Redis behind the store, to check its keys; absent for the memory store. */
  readonly redis?: Redis | Cluster;
}

interface Implementation {
  readonly name: string;
  setUp(): Promise<StoreUnderTest>;
  tearDown(): Promise<void>;
}

function record(sub: string, absoluteExpiresAt: number): StoredSession {
  return {
    cookie: { originalMaxAge: null, httpOnly: true, path: '/' },
    auth: {
      user: { sub, groups: ['users'] },
      tokens: 'v1.sealed',
      createdAt: Date.now(),
      absoluteExpiresAt,
      binding: { userAgent: 'ua-hash' },
      idpSessionId: undefined,
    },
  };
}

/** A logged-in session of `sub` that came from the IdP session `sid`. */
function sessionOf(sub: string, sid: string | undefined, absoluteExpiresAt = Date.now() + 3_600_000): StoredSession {
  const value = record(sub, absoluteExpiresAt);
  return { ...value, auth: { ...value.auth!, idpSessionId: sid } };
}

function write(store: SessionStore, id: string, value: StoredSession): Promise<void> {
  return new Promise((resolve, reject) => store.expressStore.set(id, value as never, (error) => (error ? reject(error) : resolve())));
}

const sessionId = (suffix: string) => `contract-session-id-${suffix}`.padEnd(43, 'x').slice(0, 43);

const memory: Implementation = (() => {
  return {
    name: 'MemorySessionStore',
    async setUp() {
      const clock = new MovableClock();
      return {
        sessions: new MemorySessionStore(IDLE_TTL_SECONDS, clock),
        transactions: new MemoryLoginTransactionStore(clock),
        passTime: async (ms) => clock.advance(ms),
      };
    },
    async tearDown() {},
  };
})();

/** A RedisSessionStore on a real deployment that `start` brings up; time passes for real (Redis TTLs). */
function redisBacked(name: string, start: () => Promise<{ client: Redis | Cluster; stop(): Promise<void> }>): Implementation {
  let deployment: { client: Redis | Cluster; stop(): Promise<void> };
  const passThrough: RedisGuard = (_operation, command) => command();
  return {
    name,
    async setUp() {
      deployment = await start();
      const { client } = deployment;
      if (client.status !== 'ready') {
        await new Promise<void>((resolve, reject) => {
          client.once('ready', resolve);
          client.once('error', reject);
        });
      }
      return {
        sessions: new RedisSessionStore(client, passThrough, IDLE_TTL_SECONDS, { now: () => Date.now() }),
        transactions: new RedisLoginTransactionStore(client, passThrough),
        passTime: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        redis: client,
      };
    },
    async tearDown() {
      deployment.client.disconnect();
      await deployment.stop();
    },
  };
}

const redis = redisBacked('RedisSessionStore', async () => {
  const server: RedisServer = await startRedis();
  return { client: new Redis(server.url), stop: () => server.stop() };
});

const redisCluster = redisBacked('RedisSessionStore on a 3-master Redis Cluster', async () => {
  const cluster: RedisCluster = await startRedisCluster();
  const nodes = cluster.nodeList.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) }));
  return { client: new Cluster(nodes), stop: () => cluster.stop() };
});

const redisSentinel = redisBacked('RedisSessionStore through Redis Sentinel', async () => {
  const sentinel: RedisSentinel = await startRedisSentinel();
  const [host, port] = sentinel.sentinelAddress.split(':');
  return { client: new Redis({ sentinels: [{ host: host!, port: Number(port) }], name: sentinel.masterName }), stop: () => sentinel.stop() };
});

describe.each([memory, redis, redisCluster, redisSentinel])('$name honours the SessionStore contract', (implementation) => {
  let subject: StoreUnderTest;
  beforeAll(async () => {
    subject = await implementation.setUp();
  });
  afterAll(() => implementation.tearDown());

  it('returns undefined for a session that was never stored', async () => {
    expect(await subject.sessions.get(sessionId('missing'))).toBeUndefined();
  });

  it('returns what express-session stored, as a copy', async () => {
    const value = record('alice', Date.now() + 3_600_000);
    await write(subject.sessions, sessionId('roundtrip'), value);
    const read = await subject.sessions.get(sessionId('roundtrip'));
    expect(read).toEqual(value);
    expect(read).not.toBe(value);
  });

  it('forgets a session once it has been idle for the idle timeout', async () => {
    await write(subject.sessions, sessionId('idle'), record('bob', Date.now() + 3_600_000));
    await subject.passTime(3100);
    expect(await subject.sessions.get(sessionId('idle'))).toBeUndefined();
  });

  it('keeps a session that is touched within the idle timeout', async () => {
    const value = record('carol', Date.now() + 3_600_000);
    await write(subject.sessions, sessionId('touched'), value);
    await subject.passTime(1200);
    await subject.sessions.touch(sessionId('touched'), value);
    await subject.passTime(1200);
    expect(await subject.sessions.get(sessionId('touched'))).toBeDefined();
  });

  it('does not store a session whose absolute lifetime is over', async () => {
    await write(subject.sessions, sessionId('absolute'), record('dave', Date.now() - 1000));
    expect(await subject.sessions.get(sessionId('absolute'))).toBeUndefined();
  });

  it('destroys a session', async () => {
    await write(subject.sessions, sessionId('destroy'), record('erin', Date.now() + 3_600_000));
    await subject.sessions.destroy(sessionId('destroy'));
    expect(await subject.sessions.get(sessionId('destroy'))).toBeUndefined();
  });

  it('grants the refresh lock to one holder at a time, and again after release', async () => {
    const first = await subject.sessions.tryLockForRefresh(sessionId('lock'), 5000);
    expect(first).toBeDefined();
    expect(await subject.sessions.tryLockForRefresh(sessionId('lock'), 5000)).toBeUndefined();
    await first!.release();
    const second = await subject.sessions.tryLockForRefresh(sessionId('lock'), 5000);
    expect(second).toBeDefined();
    await second!.release();
  });

  it('lets the lock lapse after its lease unless renewed', async () => {
    const lease = await subject.sessions.tryLockForRefresh(sessionId('lapse'), 1000);
    await subject.passTime(600);
    expect(await lease!.renew()).toBe(true);
    await subject.passTime(600);
    expect(await subject.sessions.tryLockForRefresh(sessionId('lapse'), 1000)).toBeUndefined();
    await subject.passTime(1000);
    expect(await lease!.renew()).toBe(false);
    const next = await subject.sessions.tryLockForRefresh(sessionId('lapse'), 1000);
    expect(next).toBeDefined();
    await next!.release();
  });

  it('commits a refreshed record only while the lease is held', async () => {
    const id = sessionId('commit');
    await write(subject.sessions, id, record('frank', Date.now() + 3_600_000));
    const lease = await subject.sessions.tryLockForRefresh(id, 500);
    const refreshed = record('frank', Date.now() + 3_600_000);
    (refreshed.auth as { tokens: string }).tokens = 'v1.rotated';
    expect(await lease!.commit(refreshed)).toBe(true);
    expect((await subject.sessions.get(id))?.auth?.tokens).toBe('v1.rotated');

    await subject.passTime(900);
    const late = record('frank', Date.now() + 3_600_000);
    (late.auth as { tokens: string }).tokens = 'v1.too-late';
    expect(await lease!.commit(late)).toBe(false);
    expect((await subject.sessions.get(id))?.auth?.tokens).toBe('v1.rotated');
  });

  it('counts live sessions from its index: created ones count, destroyed and expired ones do not', async () => {
    const before = await subject.sessions.countActive();
    await write(subject.sessions, sessionId('count-a'), record('gina', Date.now() + 3_600_000));
    await write(subject.sessions, sessionId('count-b'), record('hank', Date.now() + 3_600_000));
    expect(await subject.sessions.countActive()).toBe(before + 2);
    await subject.sessions.destroy(sessionId('count-a'));
    expect(await subject.sessions.countActive()).toBe(before + 1);
    await subject.passTime(3100);
    expect(await subject.sessions.countActive()).toBe(0);
  });

  it('hands out a login transaction exactly once', async () => {
    const transaction = { codeVerifier: 'v', nonce: 'n', returnTo: '/x', browserBinding: 'b', createdAt: Date.now() };
    await subject.transactions.save('state-once', transaction, 600);
    expect(await subject.transactions.take('state-once')).toEqual(transaction);
    expect(await subject.transactions.take('state-once')).toBeUndefined();
  });

  it('keeps concurrent login transactions apart', async () => {
    const base = { codeVerifier: 'v', nonce: 'n', browserBinding: 'b', createdAt: Date.now() };
    await subject.transactions.save('tab-1', { ...base, returnTo: '/one' }, 600);
    await subject.transactions.save('tab-2', { ...base, returnTo: '/two' }, 600);
    expect((await subject.transactions.take('tab-2'))?.returnTo).toBe('/two');
    expect((await subject.transactions.take('tab-1'))?.returnTo).toBe('/one');
  });

  it('expires a login transaction', async () => {
    await subject.transactions.save('state-expiring', { codeVerifier: 'v', nonce: 'n', returnTo: '/', browserBinding: 'b', createdAt: Date.now() }, 1);
    await subject.passTime(2100);
    expect(await subject.transactions.take('state-expiring')).toBeUndefined();
  });

  describe('back-channel logout', () => {
    it('destroys every session of the IdP session a logout names by sid, and no other', async () => {
      await write(subject.sessions, sessionId('sid-tab-1'), sessionOf('alice', 'sid-alice-laptop'));
      await write(subject.sessions, sessionId('sid-tab-2'), sessionOf('alice', 'sid-alice-laptop'));
      await write(subject.sessions, sessionId('sid-phone'), sessionOf('alice', 'sid-alice-phone'));
      await write(subject.sessions, sessionId('sid-bob'), sessionOf('bob', 'sid-bob'));

      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-alice-laptop' })).toBe(2);

      expect(await subject.sessions.get(sessionId('sid-tab-1'))).toBeUndefined();
      expect(await subject.sessions.get(sessionId('sid-tab-2'))).toBeUndefined();
      expect(await subject.sessions.get(sessionId('sid-phone'))).toBeDefined();
      expect(await subject.sessions.get(sessionId('sid-bob'))).toBeDefined();
    });

    it('destroys every session of a subject when the logout names only sub', async () => {
      await write(subject.sessions, sessionId('sub-carol-1'), sessionOf('carol', 'sid-carol-1'));
      await write(subject.sessions, sessionId('sub-carol-2'), sessionOf('carol', undefined));
      await write(subject.sessions, sessionId('sub-dan'), sessionOf('dan', 'sid-dan'));

      expect(await subject.sessions.destroyByIdpSession({ sub: 'carol' })).toBe(2);

      expect(await subject.sessions.get(sessionId('sub-carol-1'))).toBeUndefined();
      expect(await subject.sessions.get(sessionId('sub-carol-2'))).toBeUndefined();
      expect(await subject.sessions.get(sessionId('sub-dan'))).toBeDefined();
    });

    it('with both sid and sub, destroys only the sessions of that IdP session that belong to that subject', async () => {
      await write(subject.sessions, sessionId('both-erin'), sessionOf('erin', 'sid-shared'));
      await write(subject.sessions, sessionId('both-frank'), sessionOf('frank', 'sid-shared'));
      await write(subject.sessions, sessionId('both-erin-other'), sessionOf('erin', 'sid-erin-other'));

      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-shared', sub: 'erin' })).toBe(1);

      expect(await subject.sessions.get(sessionId('both-erin'))).toBeUndefined();
      expect(await subject.sessions.get(sessionId('both-frank'))).toBeDefined();
      expect(await subject.sessions.get(sessionId('both-erin-other'))).toBeDefined();
    });

    it('finds nothing for a logout that names neither sid nor sub, or names nobody it knows', async () => {
      expect(await subject.sessions.destroyByIdpSession({})).toBe(0);
      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-nobody' })).toBe(0);
      expect(await subject.sessions.destroyByIdpSession({ sub: 'nobody' })).toBe(0);
    });

    it('forgets a session ended through express-session: a later logout for it destroys nothing', async () => {
      const id = sessionId('ended-gina');
      await write(subject.sessions, id, sessionOf('gina', 'sid-gina'));
      await new Promise<void>((resolve, reject) => subject.sessions.expressStore.destroy(id, (error) => (error ? reject(error) : resolve())));

      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-gina' })).toBe(0);
      expect(await subject.sessions.destroyByIdpSession({ sub: 'gina' })).toBe(0);
      if (subject.redis) {
        expect(await subject.redis.exists(`${IDP_SID_INDEX_PREFIX}sid-gina`)).toBe(0);
        expect(await subject.redis.exists(`${IDP_SUB_INDEX_PREFIX}gina`)).toBe(0);
      }
    });

    it('forgets a session ended by the store itself (binding failure, rejected refresh)', async () => {
      const id = sessionId('ended-hank');
      await write(subject.sessions, id, sessionOf('hank', 'sid-hank'));
      await subject.sessions.destroy(id);

      expect(await subject.sessions.destroyByIdpSession({ sub: 'hank' })).toBe(0);
      if (subject.redis) expect(await subject.redis.exists(`${IDP_SUB_INDEX_PREFIX}hank`)).toBe(0);
    });

    it('still finds a session that outlived its first idle timeout by being touched', async () => {
      const id = sessionId('slid-ivy');
      const value = sessionOf('ivy', 'sid-ivy');
      await write(subject.sessions, id, value);
      await subject.passTime(1200);
      await subject.sessions.touch(id, value);
      await subject.passTime(1200);

      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-ivy' })).toBe(1);
      expect(await subject.sessions.get(id)).toBeUndefined();
    });

    it('keeps its IdP indexes in Redis at least as long as the sessions they list, and removes every key it destroys', async () => {
      const redis = subject.redis;
      if (!redis) return;
      const id = sessionId('keys-jack');
      await write(subject.sessions, id, sessionOf('jack', 'sid-jack'));
      const sessionTtl = await redis.ttl(SESSION_KEY_PREFIX + id);
      expect(sessionTtl).toBeGreaterThan(0);
      expect(await redis.ttl(`${IDP_SID_INDEX_PREFIX}sid-jack`)).toBeGreaterThanOrEqual(sessionTtl);
      expect(await redis.ttl(`${IDP_SUB_INDEX_PREFIX}jack`)).toBeGreaterThanOrEqual(sessionTtl);

      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-jack' })).toBe(1);

      expect(await redis.exists(SESSION_KEY_PREFIX + id)).toBe(0);
      expect(await redis.zscore(ACTIVE_SESSIONS_KEY, id)).toBeNull();
      expect(await redis.exists(`${IDP_SID_INDEX_PREFIX}sid-jack`)).toBe(0);
      expect(await redis.exists(`${IDP_SUB_INDEX_PREFIX}jack`)).toBe(0);
    });

    it('does not bring back a session destroyed while its refresh was in flight', async () => {
      const id = sessionId('refresh-kim');
      await write(subject.sessions, id, sessionOf('kim', 'sid-kim'));
      const lease = await subject.sessions.tryLockForRefresh(id, 5000);

      expect(await subject.sessions.destroyByIdpSession({ sid: 'sid-kim' })).toBe(1);
      const refreshed = sessionOf('kim', 'sid-kim');
      (refreshed.auth as { tokens: string }).tokens = 'v1.rotated';

      expect(await lease!.commit(refreshed)).toBe(false);
      expect(await subject.sessions.get(id)).toBeUndefined();
      await lease!.release();
    });

    it('accepts a logout token id once, on whichever instance sees it first', async () => {
      expect(await subject.transactions.claimLogoutTokenId('jti-once', 600)).toBe(true);
      expect(await subject.transactions.claimLogoutTokenId('jti-once', 600)).toBe(false);
      if (subject.redis) expect(await subject.redis.ttl(`${LOGOUT_JTI_KEY_PREFIX}jti-once`)).toBeGreaterThan(590);
    });

    it('accepts a logout token id again once it was released', async () => {
      expect(await subject.transactions.claimLogoutTokenId('jti-released', 600)).toBe(true);
      await subject.transactions.releaseLogoutTokenId('jti-released');
      expect(await subject.transactions.claimLogoutTokenId('jti-released', 600)).toBe(true);
    });

    it('forgets a logout token id after the time it was claimed for', async () => {
      expect(await subject.transactions.claimLogoutTokenId('jti-expiring', 1)).toBe(true);
      await subject.passTime(2100);
      expect(await subject.transactions.claimLogoutTokenId('jti-expiring', 1)).toBe(true);
    });
  });
});
