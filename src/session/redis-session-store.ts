import { randomBytes } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import type { Cluster, Redis } from 'ioredis';
import { sessionTtlSeconds, type StoredSession } from './session-data';
import type { Clock, LoginTransaction, LoginTransactionStore, RefreshLease, SessionStore } from './session-store';

export type RedisClient = Redis | Cluster;

/** Runs one Redis command through the breaker and the metrics; built in the composition root. */
export type RedisGuard = <T>(operation: string, command: () => Promise<T>) => Promise<T>;

export const SESSION_KEY_PREFIX = 'bff:sess:';
/** Sorted set of live session ids scored by when they expire: counting needs no SCAN. */
export const ACTIVE_SESSIONS_KEY = 'bff:sessions:active';
const LOGIN_KEY_PREFIX = 'bff:login:';

/**
 * The lock shares the session key's hash slot (the `{...}` tag is the session
 * key itself), so the fenced commit below stays one script on Redis Cluster.
 */
function refreshLockKey(sessionKey: string): string {
  return `{${sessionKey}}:refresh-lock`;
}

const RENEW_IF_HELD = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_IF_HELD = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const SET_IF_HELD = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3]) return 1 else return 0 end`;

/** Sessions in Redis, in connect-redis's format (`bff:sess:<id>` = JSON, TTL = idle expiry). */
export class RedisSessionStore implements SessionStore {
  readonly expressStore: RedisStore;

  constructor(
    private readonly client: RedisClient,
    private readonly guard: RedisGuard,
    private readonly idleTtlSeconds: number,
    private readonly clock: Clock,
  ) {
    const index = (sessionId: string, record: StoredSession) => this.index(sessionId, record);
    const unindex = (sessionId: string) => this.unindex(sessionId);
    this.expressStore = new (class IndexedRedisStore extends RedisStore {
      override async set(sessionId: string, record: SessionData, callback?: (error?: unknown) => void): Promise<void> {
        try {
          await super.set(sessionId, record);
          await index(sessionId, record as unknown as StoredSession);
          callback?.();
        } catch (error) {
          callback?.(error);
        }
      }

      override async destroy(sessionId: string, callback?: (error?: unknown) => void): Promise<void> {
        try {
          await super.destroy(sessionId);
          await unindex(sessionId);
          callback?.();
        } catch (error) {
          callback?.(error);
        }
      }
    })({
      client: guardedClient(client, guard),
      prefix: SESSION_KEY_PREFIX,
      ttl: (record) => sessionTtlSeconds(record as StoredSession, idleTtlSeconds, clock.now()),
    });
  }

  async countActive(): Promise<number> {
    await this.guard('zremrangebyscore', () => this.client.zremrangebyscore(ACTIVE_SESSIONS_KEY, '-inf', this.clock.now()));
    return this.guard('zcard', () => this.client.zcard(ACTIVE_SESSIONS_KEY));
  }

  /** The index is bookkeeping: a failure to update it never fails the session operation itself. */
  private async index(sessionId: string, record: StoredSession): Promise<void> {
    const ttl = sessionTtlSeconds(record, this.idleTtlSeconds, this.clock.now());
    await this.guard('zadd', () => this.client.zadd(ACTIVE_SESSIONS_KEY, this.clock.now() + ttl * 1000, sessionId)).catch(() => undefined);
  }

  private async unindex(sessionId: string): Promise<void> {
    await this.guard('zrem', () => this.client.zrem(ACTIVE_SESSIONS_KEY, sessionId)).catch(() => undefined);
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const record = (await this.expressStore.get(sessionId)) as StoredSession | null | undefined;
    return record ?? undefined;
  }

  async touch(sessionId: string, record: StoredSession): Promise<void> {
    const ttl = sessionTtlSeconds(record, this.idleTtlSeconds, this.clock.now());
    if (ttl <= 0) return this.destroy(sessionId);
    await this.guard('expire', () => this.client.expire(SESSION_KEY_PREFIX + sessionId, ttl));
    await this.index(sessionId, record);
  }

  async destroy(sessionId: string): Promise<void> {
    await this.guard('del', () => this.client.del(SESSION_KEY_PREFIX + sessionId));
    await this.unindex(sessionId);
  }

  async tryLockForRefresh(sessionId: string, leaseMs: number): Promise<RefreshLease | undefined> {
    const sessionKey = SESSION_KEY_PREFIX + sessionId;
    const lockKey = refreshLockKey(sessionKey);
    const holder = randomBytes(16).toString('base64url');
    const acquired = await this.guard('lock', () => this.client.set(lockKey, holder, 'PX', leaseMs, 'NX'));
    if (acquired !== 'OK') return undefined;
    return {
      renew: async () =>
        (await this.guard('lock_renew', () => this.client.eval(RENEW_IF_HELD, 1, lockKey, holder, leaseMs))) === 1,
      commit: async (record) => {
        const ttl = sessionTtlSeconds(record, this.idleTtlSeconds, this.clock.now());
        if (ttl <= 0) return false;
        const written = await this.guard('set', () =>
          this.client.eval(SET_IF_HELD, 2, lockKey, sessionKey, holder, JSON.stringify(record), ttl),
        );
        if (written === 1) await this.index(sessionId, record);
        return written === 1;
      },
      release: async () => {
        await this.guard('unlock', () => this.client.eval(RELEASE_IF_HELD, 1, lockKey, holder));
      },
    };
  }
}

/** Login transactions as `bff:login:<state>` with a TTL; taken with GETDEL so each is used once. */
export class RedisLoginTransactionStore implements LoginTransactionStore {
  constructor(
    private readonly client: RedisClient,
    private readonly guard: RedisGuard,
  ) {}

  async save(state: string, transaction: LoginTransaction, ttlSeconds: number): Promise<void> {
    await this.guard('set', () => this.client.set(LOGIN_KEY_PREFIX + state, JSON.stringify(transaction), 'EX', ttlSeconds));
  }

  async take(state: string): Promise<LoginTransaction | undefined> {
    const raw = await this.guard('getdel', () => this.client.getdel(LOGIN_KEY_PREFIX + state));
    return raw ? (JSON.parse(raw) as LoginTransaction) : undefined;
  }
}

/**
 * The subset of the client connect-redis uses, each command guarded. Being a
 * plain object, connect-redis treats it as ioredis (positional EX arguments).
 */
function guardedClient(client: RedisClient, guard: RedisGuard) {
  return {
    get: (key: string) => guard('get', () => client.get(key)),
    set: (key: string, value: string, ex: 'EX', ttl: number) => guard('set', () => client.set(key, value, ex, ttl)),
    del: (keys: string[]) => guard('del', () => client.del(...keys)),
    expire: (key: string, ttl: number) => guard('expire', () => client.expire(key, ttl)),
    mget: (keys: string[]) => guard('mget', () => client.mget(...keys)),
    scan: (cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', size: number) =>
      guard('scan', () => (client as Redis).scan(cursor, match, pattern, count, size)),
  };
}
