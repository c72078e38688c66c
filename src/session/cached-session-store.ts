import { LRUCache } from 'lru-cache';
import type { Clock } from '../shared/clock';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import type { StoredSession } from './session-data';
import { EVERY_SESSION, type SessionInvalidation, type SessionInvalidations } from './session-invalidations';
import type { IdpSessionMatch, ListedSession, ReadFreshness, RefreshLease, SessionStore } from './session-store';

/**
 * How stale a cached session can be on any replica, whatever happens to the
 * invalidation messages: logout, back-channel logout, a binding failure or a
 * refresh on another replica, idle expiry. The messages make it milliseconds
 * in practice; this is the bound when they are lost.
 */
export const SESSION_CACHE_BOUND_MS = 1000;
const MAX_CACHED_SESSIONS = 100_000;

/**
 * SESSION_CACHE=on: recently used sessions kept in process memory, so that a
 * steady /verify needs no Redis round trip. Redis stays the source of truth:
 * every write goes through to it, forgets the entry here and announces the
 * change to every replica (pub/sub), and no entry outlives
 * SESSION_CACHE_BOUND_MS. Reads that decide what to write (the refresher's,
 * under its lock) ask for `fresh` and never see the cache.
 */
export class CachedSessionStore implements SessionStore {
  private readonly cache: LRUCache<string, { readonly record: StoredSession }>;
  /** One store read per session at a time: when a busy session's entry expires, its concurrent requests share the read. */
  private readonly reading = new Map<string, Promise<StoredSession | undefined>>();
  /** Bumped by every change: a read that started before one must not cache what it found. */
  private changes = 0;

  constructor(
    private readonly inner: SessionStore,
    private readonly invalidations: SessionInvalidations,
    private readonly deps: { readonly metrics: GatewayMetrics; readonly logger: Logger; readonly clock: Clock },
  ) {
    // ttlResolution 0: every lookup reads the clock. lru-cache otherwise reuses one reading for a millisecond,
    // and a record could outlive the bound by that much (seen under load in the session cache test).
    this.cache = new LRUCache({ max: MAX_CACHED_SESSIONS, ttl: SESSION_CACHE_BOUND_MS, ttlAutopurge: false, ttlResolution: 0, perf: { now: () => deps.clock.now() } });
  }

  /** Subscribes to the other replicas' announcements; until it resolves, the lifetime bound alone holds. */
  async start(): Promise<void> {
    await this.invalidations.listen(
      (invalidation) => this.forgetAnnounced(invalidation),
      () => this.forget(EVERY_SESSION),
    );
  }

  async close(): Promise<void> {
    await this.invalidations.close();
  }

  /** A hit counts as one; a miss is counted by the `get` that follows it. */
  peek(sessionId: string): StoredSession | undefined {
    const cached = this.cache.get(sessionId);
    if (cached) this.deps.metrics.sessionCacheLookups.hit.inc();
    return cached?.record;
  }

  async get(sessionId: string, freshness: ReadFreshness = 'cached'): Promise<StoredSession | undefined> {
    if (freshness === 'cached') {
      const cached = this.peek(sessionId);
      if (cached) return cached;
      this.deps.metrics.sessionCacheLookups.miss.inc();
      const pending = this.reading.get(sessionId);
      if (pending) return pending;
      const read = this.readThrough(sessionId, freshness).finally(() => this.reading.delete(sessionId));
      this.reading.set(sessionId, read);
      return read;
    }
    return this.readThrough(sessionId, freshness);
  }

  private async readThrough(sessionId: string, freshness: ReadFreshness): Promise<StoredSession | undefined> {
    const changesBefore = this.changes;
    const record = await this.inner.get(sessionId, freshness);
    if (this.changes !== changesBefore) return record;
    if (record) this.cache.set(sessionId, { record });
    else this.cache.delete(sessionId);
    return record;
  }

  async save(sessionId: string, record: StoredSession): Promise<void> {
    await this.inner.save(sessionId, record);
    await this.changed(sessionId);
  }

  /** The record is unchanged: nothing to announce. */
  touch(sessionId: string, record: StoredSession): Promise<void> {
    return this.inner.touch(sessionId, record);
  }

  async destroy(sessionId: string): Promise<void> {
    await this.inner.destroy(sessionId);
    await this.changed(sessionId);
  }

  async tryLockForRefresh(sessionId: string, leaseMs: number): Promise<RefreshLease | undefined> {
    const lease = await this.inner.tryLockForRefresh(sessionId, leaseMs);
    if (!lease) return undefined;
    return {
      renew: () => lease.renew(),
      commit: async (record) => {
        const isCommitted = await lease.commit(record);
        await this.changed(sessionId);
        return isCommitted;
      },
      release: () => lease.release(),
    };
  }

  countActive(): Promise<number> {
    return this.inner.countActive();
  }

  /** The ids it ended are not known here: every replica forgets every cached session. */
  async destroyByIdpSession(match: IdpSessionMatch): Promise<number> {
    const destroyed = await this.inner.destroyByIdpSession(match);
    if (destroyed > 0) await this.changed(EVERY_SESSION);
    return destroyed;
  }

  /**
   * Never from this cache: a list is read when a user looks at their sessions
   * (rarely), and must not show one that another replica has just ended.
   */
  listBySubject(sub: string): Promise<ListedSession[]> {
    return this.inner.listBySubject(sub);
  }

  /** Forgotten here at once; elsewhere as soon as the announcement arrives, and within the bound regardless. */
  private async changed(sessionId: string): Promise<void> {
    this.forget(sessionId);
    await this.invalidations.announce(sessionId).catch((error: unknown) => {
      this.deps.logger.warn({ err: (error as Error).message }, `could not announce a session change; other replicas see it within ${SESSION_CACHE_BOUND_MS} ms`);
    });
  }

  private forgetAnnounced(invalidation: SessionInvalidation): void {
    this.deps.metrics.sessionCacheInvalidationLag.observe(Math.max(0, Date.now() - invalidation.announcedAt) / 1000);
    this.forget(invalidation.sessionId);
  }

  private forget(sessionId: string): void {
    this.changes += 1;
    if (sessionId === EVERY_SESSION) {
      this.cache.clear();
      this.reading.clear();
    } else {
      this.cache.delete(sessionId);
      this.reading.delete(sessionId);
    }
  }
}
