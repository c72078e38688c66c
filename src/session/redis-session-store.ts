import { randomBytes } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import type { Cluster, Redis } from 'ioredis';
import { sessionTtlSeconds, type StoredSession } from './session-data';
import type { Clock, IdpSessionMatch, LoginTransaction, LoginTransactionStore, RefreshLease, SessionStore } from './session-store';

export type RedisClient = Redis | Cluster;

/** Runs one Redis command through the breaker and the metrics; built in the composition root. */
export type RedisGuard = <T>(operation: string, command: () => Promise<T>) => Promise<T>;

export const SESSION_KEY_PREFIX = 'bff:sess:';
/** Sorted set of live session ids scored by when they expire: counting needs no SCAN. */
export const ACTIVE_SESSIONS_KEY = 'bff:sessions:active';
const LOGIN_KEY_PREFIX = 'bff:login:';
/**
 * Back-channel logout indexes: sorted sets of session ids per IdP session
 * (`sid` claim) and per subject, scored by each session's absolute expiry so
 * every write prunes what can no longer be alive (idle-expired sessions are
 * never destroyed explicitly). Each key is touched by its own single-key
 * command: on Redis Cluster they live in other slots than the sessions.
 */
export const IDP_SID_INDEX_PREFIX = 'bff:idp-sid:';
export const IDP_SUB_INDEX_PREFIX = 'bff:idp-sub:';
/** Ids of accepted logout tokens: `SET NX` makes the first delivery win on every replica. */
export const LOGOUT_JTI_KEY_PREFIX = 'bff:logout-jti:';
/** Keeps the index keys a little longer than their longest-lived session, for clock skew between replicas. */
const IDP_INDEX_TTL_MARGIN_SECONDS = 60;

/**
 * The lock shares the session key's hash slot (the `{...}` tag is the session
 * key itself), so the fenced commit below stays one script on Redis Cluster.
 */
function refreshLockKey(sessionKey: string): string {
  return `{${sessionKey}}:refresh-lock`;
}

const RENEW_IF_HELD = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_IF_HELD = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
// XX: a session destroyed while its refresh was in flight (logout, back-channel logout) is not brought back.
const SET_IF_HELD = `if redis.call('get', KEYS[1]) == ARGV[1] then if redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3], 'XX') then return 1 end end return 0`;
// KEYS[1] index; ARGV: session id, its absolute expiry (ms), now (ms), key TTL (s). The TTL only ever grows.
const ADD_TO_IDP_INDEX = `redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[3])
redis.call('zadd', KEYS[1], ARGV[2], ARGV[1])
if redis.call('ttl', KEYS[1]) < tonumber(ARGV[4]) then redis.call('expire', KEYS[1], ARGV[4]) end
return 1`;

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
    const indexIdpSession = (sessionId: string, record: StoredSession) => this.indexIdpSession(sessionId, record);
    const unindexIdpSession = (sessionId: string, record: StoredSession | undefined) => this.unindexIdpSession(sessionId, record);
    this.expressStore = new (class IndexedRedisStore extends RedisStore {
      override async set(sessionId: string, record: SessionData, callback?: (error?: unknown) => void): Promise<void> {
        try {
          // Findable by back-channel logout before it exists: a session the IdP ends can never be missed.
          await indexIdpSession(sessionId, record as unknown as StoredSession);
          await super.set(sessionId, record);
          await index(sessionId, record as unknown as StoredSession);
          callback?.();
        } catch (error) {
          callback?.(error);
        }
      }

      override async destroy(sessionId: string, callback?: (error?: unknown) => void): Promise<void> {
        try {
          // Read first: the record says which IdP indexes list the session.
          const record = (await super.get(sessionId).catch(() => undefined)) as StoredSession | null | undefined;
          await super.destroy(sessionId);
          await unindex(sessionId);
          await unindexIdpSession(sessionId, record ?? undefined);
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

  /**
   * Unlike the active index, this one must be written: a failure fails the
   * session write, since a session back-channel logout cannot find would
   * outlive the IdP session it came from.
   */
  private async indexIdpSession(sessionId: string, record: StoredSession): Promise<void> {
    const auth = record.auth;
    const now = this.clock.now();
    // A session past its absolute expiry is not stored at all (and a negative EXPIRE would drop the whole index).
    if (!auth || auth.absoluteExpiresAt <= now) return;
    const keyTtlSeconds = Math.ceil((auth.absoluteExpiresAt - now) / 1000) + IDP_INDEX_TTL_MARGIN_SECONDS;
    await Promise.all(
      idpIndexKeys(auth.idpSessionId, auth.user.sub).map((key) =>
        this.guard('idp_index', () => this.client.eval(ADD_TO_IDP_INDEX, 1, key, sessionId, auth.absoluteExpiresAt, now, keyTtlSeconds)),
      ),
    );
  }

  /** Bookkeeping: a member left behind only costs a lookup at the next back-channel logout, and is pruned by its score. */
  private async unindexIdpSession(sessionId: string, record: StoredSession | undefined): Promise<void> {
    const auth = record?.auth;
    if (!auth) return;
    await Promise.all(
      idpIndexKeys(auth.idpSessionId, auth.user.sub).map((key) =>
        this.guard('zrem', () => this.client.zrem(key, sessionId)).catch(() => undefined),
      ),
    );
  }

  async destroyByIdpSession(match: IdpSessionMatch): Promise<number> {
    const indexKey = match.sid ? IDP_SID_INDEX_PREFIX + match.sid : match.sub ? IDP_SUB_INDEX_PREFIX + match.sub : undefined;
    if (!indexKey) return 0;
    const sessionIds = await this.guard('zrange', () => this.client.zrange(indexKey, 0, -1));
    const destroyed = await Promise.all(
      sessionIds.map(async (sessionId) => {
        const record = await this.get(sessionId);
        const isListedRightly = match.sid ? record?.auth?.idpSessionId === match.sid : record?.auth?.user.sub === match.sub;
        if (!record?.auth || !isListedRightly) {
          // Expired, destroyed meanwhile, or not this index's: only the index entry is left to clean.
          await this.guard('zrem', () => this.client.zrem(indexKey, sessionId)).catch(() => undefined);
          return 0;
        }
        // A token naming both: the IdP session's sessions of that subject only.
        if (match.sub !== undefined && record.auth.user.sub !== match.sub) return 0;
        const deleted = await this.guard('del', () => this.client.del(SESSION_KEY_PREFIX + sessionId));
        await this.unindex(sessionId);
        await this.unindexIdpSession(sessionId, record);
        return deleted;
      }),
    );
    return destroyed.reduce<number>((sum, count) => sum + count, 0);
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const record = (await this.expressStore.get(sessionId)) as StoredSession | null | undefined;
    return record ?? undefined;
  }

  async touch(sessionId: string, record: StoredSession): Promise<void> {
    const ttl = sessionTtlSeconds(record, this.idleTtlSeconds, this.clock.now());
    if (ttl <= 0) return this.destroy(sessionId);
    const isAlive = (await this.guard('expire', () => this.client.expire(SESSION_KEY_PREFIX + sessionId, ttl))) === 1;
    // A session destroyed in the meantime must not come back into the active index.
    if (isAlive) await this.index(sessionId, record);
  }

  async destroy(sessionId: string): Promise<void> {
    const record = await this.get(sessionId).catch(() => undefined);
    await this.guard('del', () => this.client.del(SESSION_KEY_PREFIX + sessionId));
    await this.unindex(sessionId);
    await this.unindexIdpSession(sessionId, record);
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

  async claimLogoutTokenId(jti: string, ttlSeconds: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    return (await this.guard('set', () => this.client.set(LOGOUT_JTI_KEY_PREFIX + jti, '1', 'EX', ttl, 'NX'))) === 'OK';
  }

  async releaseLogoutTokenId(jti: string): Promise<void> {
    await this.guard('del', () => this.client.del(LOGOUT_JTI_KEY_PREFIX + jti));
  }
}

function idpIndexKeys(sid: string | undefined, sub: string): string[] {
  return sid ? [IDP_SID_INDEX_PREFIX + sid, IDP_SUB_INDEX_PREFIX + sub] : [IDP_SUB_INDEX_PREFIX + sub];
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
