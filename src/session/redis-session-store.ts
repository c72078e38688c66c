import { hash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { isOfFrontend, lastSeenAt, sessionTtlSeconds, type StoredSession } from './session-data';
import type { IndexedClaim, SessionSealer } from './session-sealer';
import type { IdpSessionMatch, ListedSession, LoginTransaction, LoginTransactionStore, RefreshLease, SessionStore } from './session-store';
import type { Clock } from '../shared/clock';

export type RedisClient = Redis | Cluster;

/** Runs one Redis command through the breaker and the metrics; built in the composition root. */
export type RedisGuard = <T>(operation: string, command: () => Promise<T>) => Promise<T>;

/** `bff:sess:<id>`: the sealed record (SessionSealer), binary; its TTL is the idle expiry. */
export const SESSION_KEY_PREFIX = 'bff:sess:';
/**
 * Sorted set of live sessions scored by when they expire: counting needs no
 * SCAN. A member is 16 bytes of SHA-256 of the session id rather than the id
 * (43 bytes): at a million sessions that is 24 bytes less per session, and
 * the index is only ever counted, never read back.
 */
export const ACTIVE_SESSIONS_KEY = 'bff:sessions:active';
const ACTIVE_MEMBER_BYTES = 16;

/** The member that stands for a session in ACTIVE_SESSIONS_KEY. */
export function activeSessionMember(sessionId: string): Buffer {
  return hash('sha256', sessionId, 'buffer').subarray(0, ACTIVE_MEMBER_BYTES);
}
const LOGIN_KEY_PREFIX = 'bff:login:';
/**
 * Back-channel logout indexes. They must be readable by IdP session id
 * (`sid`) and by subject (`sub`), yet hold neither: an entry is filed under
 * a keyed digest (HMAC, SessionSealer.indexDigests) of the claim. The first
 * 14 bits of the digest pick one of 16,384 bucket keys per claim
 * (`bff:idp-sid:<4 hex>`, `bff:idp-sub:<4 hex>`); the member is the next 8
 * bytes of the digest followed by the session id, scored by the session's
 * absolute expiry so that every write prunes what can no longer be alive
 * (idle-expired sessions are never destroyed explicitly). Buckets rather than
 * a key per claim value: a key costs Redis about 100 bytes before its first
 * member, and buckets of a few dozen members stay in Redis's compact
 * encoding (listpack) up to about two million sessions. Each bucket is
 * touched by its own single-key command: on Redis Cluster they live in other
 * slots than the sessions.
 */
export const IDP_SID_INDEX_PREFIX = 'bff:idp-sid:';
export const IDP_SUB_INDEX_PREFIX = 'bff:idp-sub:';
const INDEX_BUCKET_BITS = 14;
const INDEX_TAG_BYTES = 8;
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
// KEYS[1] bucket; ARGV: member, the session's absolute expiry (ms), now (ms), key TTL (s). The TTL only ever grows.
const ADD_TO_IDP_INDEX = `redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[3])
redis.call('zadd', KEYS[1], ARGV[2], ARGV[1])
if redis.call('ttl', KEYS[1]) < tonumber(ARGV[4]) then redis.call('expire', KEYS[1], ARGV[4]) end
return 1`;

export interface RedisSessionStoreOptions {
  readonly client: RedisClient;
  readonly guard: RedisGuard;
  readonly sealer: SessionSealer;
  /** The idle timeout of a session: its frontend's (FRONTENDS_FILE), else SESSION_IDLE_TTL_SECONDS. */
  readonly idleTtlSecondsOf: (record: StoredSession) => number;
  readonly clock: Clock;
}

/** One entry of a back-channel logout index, as the store files it. */
interface IndexEntry {
  readonly key: string;
  readonly member: Buffer;
}

/**
 * Sessions in Redis, sealed whole (SessionSealer): `bff:sess:<id>` holds the
 * envelope as a binary string, with the idle expiry as its TTL. Every write,
 * express-session's saves and the refresh commit alike, goes through `write`.
 */
export class RedisSessionStore implements SessionStore {
  private readonly client: RedisClient;
  private readonly guard: RedisGuard;
  private readonly sealer: SessionSealer;
  private readonly idleTtlSecondsOf: (record: StoredSession) => number;
  private readonly clock: Clock;

  constructor(options: RedisSessionStoreOptions) {
    this.client = options.client;
    this.guard = options.guard;
    this.sealer = options.sealer;
    this.idleTtlSecondsOf = options.idleTtlSecondsOf;
    this.clock = options.clock;
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const sealed = await this.guard('get', () => this.client.getBuffer(SESSION_KEY_PREFIX + sessionId));
    return sealed ? this.sealer.open(sessionId, sealed) : undefined;
  }

  async save(sessionId: string, record: StoredSession): Promise<void> {
    const now = this.clock.now();
    // A session past its absolute expiry is not stored at all (and a negative EXPIRE would drop a whole index bucket).
    if (sessionTtlSeconds(record, this.idleTtlSecondsOf(record), now) <= 0) return this.destroy(sessionId);
    // Findable by back-channel logout before it exists: a session the IdP ends can never be missed.
    await this.indexIdpSession(sessionId, record, now);
    await this.write(sessionId, record, (sealed, ttlSeconds) =>
      this.guard('set', async () => (await this.client.set(SESSION_KEY_PREFIX + sessionId, sealed, 'EX', ttlSeconds)) === 'OK'),
    );
  }

  async touch(sessionId: string, record: StoredSession): Promise<void> {
    const now = this.clock.now();
    const ttl = sessionTtlSeconds(record, this.idleTtlSecondsOf(record), now);
    if (ttl <= 0) return this.destroy(sessionId);
    const isAlive = (await this.guard('expire', () => this.client.expire(SESSION_KEY_PREFIX + sessionId, ttl))) === 1;
    // A session destroyed in the meantime must not come back into the active index.
    if (isAlive) await this.markActive(sessionId, now + ttl * 1000);
  }

  async destroy(sessionId: string): Promise<void> {
    // Read first: the record says which index entries list the session.
    const record = await this.get(sessionId).catch(() => undefined);
    await this.guard('del', () => this.client.del(SESSION_KEY_PREFIX + sessionId));
    await this.forget(sessionId, record);
  }

  async countActive(): Promise<number> {
    await this.guard('zremrangebyscore', () => this.client.zremrangebyscore(ACTIVE_SESSIONS_KEY, '-inf', this.clock.now()));
    return this.guard('zcard', () => this.client.zcard(ACTIVE_SESSIONS_KEY));
  }

  async destroyByIdpSession(match: IdpSessionMatch): Promise<number> {
    const claim: IndexedClaim | undefined = match.sid ? 'sid' : match.sub ? 'sub' : undefined;
    if (!claim) return 0;
    const listed = await this.findListed(claim, (claim === 'sid' ? match.sid : match.sub) as string);
    const destroyed = await Promise.all(
      [...listed].map(async ([sessionId, entries]) => {
        const record = await this.get(sessionId);
        const isListedRightly = claim === 'sid' ? record?.auth.idpSessionId === match.sid : record?.auth.user.sub === match.sub;
        if (!record || !isListedRightly) {
          // Expired, destroyed meanwhile, sealed with a retired secret: only the index entry is left to clean.
          await Promise.all(entries.map((entry) => this.removeIndexEntry(entry)));
          return 0;
        }
        // A token naming both: the IdP session's sessions of that subject only.
        if (match.sub !== undefined && record.auth.user.sub !== match.sub) return 0;
        if (!isOfFrontend(record, match)) return 0;
        const deleted = await this.guard('del', () => this.client.del(SESSION_KEY_PREFIX + sessionId));
        await this.forget(sessionId, record);
        return deleted;
      }),
    );
    return destroyed.reduce<number>((sum, count) => sum + count, 0);
  }

  /**
   * The `bff:idp-sub:` index, then each record and its PTTL: last seen is
   * derived from the idle expiry (lastSeenAt), since /verify slides it
   * without rewriting the record. Read-only: an entry whose session is gone
   * is left to the pruning by score (removing it here could race a login
   * whose index entry is written just before its record).
   */
  async listBySubject(sub: string): Promise<ListedSession[]> {
    const listed = await this.findListed('sub', sub);
    const found = await Promise.all(
      [...listed.keys()].map(async (sessionId): Promise<ListedSession | undefined> => {
        const [record, ttlMs] = await Promise.all([this.get(sessionId), this.guard('pttl', () => this.client.pttl(SESSION_KEY_PREFIX + sessionId))]);
        // Idle-expired or destroyed since it was filed, or filed under a colliding digest.
        if (!record || ttlMs < 0 || record.auth.user.sub !== sub) return undefined;
        const now = this.clock.now();
        return { sessionId, record, lastSeenAt: lastSeenAt(record, now + ttlMs, this.idleTtlSecondsOf(record), now) };
      }),
    );
    return found.filter((session) => session !== undefined);
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
      commit: (record) =>
        // The IdP session and subject do not change with a refresh: the back-channel logout entries stand.
        this.write(sessionId, record, async (sealed, ttlSeconds) =>
          (await this.guard('set', () => this.client.eval(SET_IF_HELD, 2, lockKey, sessionKey, holder, sealed, ttlSeconds))) === 1,
        ),
      release: async () => {
        await this.guard('unlock', () => this.client.eval(RELEASE_IF_HELD, 1, lockKey, holder));
      },
    };
  }

  /**
   * The one write path: seals the record and hands the sealed bytes and the
   * TTL to the command that stores them (a plain SET, or the commit fenced by
   * the refresh lock); a stored session is counted as active.
   */
  private async write(sessionId: string, record: StoredSession, store: (sealed: Buffer, ttlSeconds: number) => Promise<boolean>): Promise<boolean> {
    const now = this.clock.now();
    const ttlSeconds = sessionTtlSeconds(record, this.idleTtlSecondsOf(record), now);
    if (ttlSeconds <= 0) return false;
    const isWritten = await store(this.sealer.seal(sessionId, record), ttlSeconds);
    if (isWritten) await this.markActive(sessionId, now + ttlSeconds * 1000);
    return isWritten;
  }

  /** The active index is bookkeeping: a failure to update it never fails the session operation itself. */
  private async markActive(sessionId: string, expiresAt: number): Promise<void> {
    await this.guard('zadd', () => this.client.zadd(ACTIVE_SESSIONS_KEY, expiresAt, activeSessionMember(sessionId))).catch(() => undefined);
  }

  /** Drops a session that is gone from both kinds of index. */
  private async forget(sessionId: string, record: StoredSession | undefined): Promise<void> {
    await this.guard('zrem', () => this.client.zrem(ACTIVE_SESSIONS_KEY, activeSessionMember(sessionId))).catch(() => undefined);
    if (!record) return;
    const entries = this.indexedUnder('sub', record.auth.user.sub, sessionId, 'all');
    if (record.auth.idpSessionId) entries.push(...this.indexedUnder('sid', record.auth.idpSessionId, sessionId, 'all'));
    // Bookkeeping: an entry left behind only costs a lookup at the next back-channel logout, and is pruned by its score.
    await Promise.all(entries.map((entry) => this.removeIndexEntry(entry).catch(() => undefined)));
  }

  /**
   * Unlike the active index, this one must be written: a failure fails the
   * session write, since a session back-channel logout cannot find would
   * outlive the IdP session it came from.
   */
  private async indexIdpSession(sessionId: string, record: StoredSession, now: number): Promise<void> {
    const { auth } = record;
    const keyTtlSeconds = Math.ceil((auth.absoluteExpiresAt - now) / 1000) + IDP_INDEX_TTL_MARGIN_SECONDS;
    const entries = this.indexedUnder('sub', auth.user.sub, sessionId, 'sealing');
    if (auth.idpSessionId) entries.push(...this.indexedUnder('sid', auth.idpSessionId, sessionId, 'sealing'));
    await Promise.all(
      entries.map((entry) =>
        this.guard('idp_index', () => this.client.eval(ADD_TO_IDP_INDEX, 1, entry.key, entry.member, auth.absoluteExpiresAt, now, keyTtlSeconds)),
      ),
    );
  }

  /** The sessions an index lists for a claim value, under every secret's digest, with the entries that list each. */
  private async findListed(claim: IndexedClaim, value: string): Promise<Map<string, IndexEntry[]>> {
    const listed = new Map<string, IndexEntry[]>();
    await Promise.all(
      this.sealer.indexDigests(claim, value).map(async (digest) => {
        const key = bucketKey(claim, digest);
        const tag = digest.subarray(2, 2 + INDEX_TAG_BYTES);
        const members = await this.guard('zrange', () => this.client.zrangeBuffer(key, 0, -1));
        for (const member of members) {
          if (!member.subarray(0, INDEX_TAG_BYTES).equals(tag)) continue;
          const sessionId = member.subarray(INDEX_TAG_BYTES).toString('utf8');
          listed.set(sessionId, [...(listed.get(sessionId) ?? []), { key, member }]);
        }
      }),
    );
    return listed;
  }

  /** Where a session is filed for a claim value: under the sealing secret's digest, or (to remove it) under every one. */
  private indexedUnder(claim: IndexedClaim, value: string, sessionId: string, secrets: 'sealing' | 'all'): IndexEntry[] {
    const digests = this.sealer.indexDigests(claim, value);
    return (secrets === 'sealing' ? digests.slice(0, 1) : digests).map((digest) => ({
      key: bucketKey(claim, digest),
      member: Buffer.concat([digest.subarray(2, 2 + INDEX_TAG_BYTES), Buffer.from(sessionId, 'utf8')]),
    }));
  }

  private async removeIndexEntry(entry: IndexEntry): Promise<void> {
    await this.guard('zrem', () => this.client.zrem(entry.key, entry.member));
  }
}

/** The bucket of a digest: its first INDEX_BUCKET_BITS bits, in hex. */
function bucketKey(claim: IndexedClaim, digest: Buffer): string {
  const bucket = digest.readUInt16BE(0) >> (16 - INDEX_BUCKET_BITS);
  return `${claim === 'sid' ? IDP_SID_INDEX_PREFIX : IDP_SUB_INDEX_PREFIX}${bucket.toString(16).padStart(4, '0')}`;
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
