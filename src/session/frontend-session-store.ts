import { isOfFrontend, type StoredSession } from './session-data';
import type { IdpSessionMatch, ListedSession, ReadFreshness, RefreshLease, SessionStore } from './session-store';

/**
 * The shared store as one frontend sees it: a session belongs to the
 * frontend it was created on (stamped on every write), and another
 * frontend's session reads as no session at all. So a cookie replayed from
 * one frontend to another, on a shared parent domain or with a forged
 * cookie name, opens nothing: the check is on the server's record, not on
 * anything the browser sends.
 */
export class FrontendSessionStore implements SessionStore {
  constructor(
    private readonly store: SessionStore,
    readonly frontend: string,
  ) {}

  async get(sessionId: string, freshness?: ReadFreshness): Promise<StoredSession | undefined> {
    const record = await this.store.get(sessionId, freshness);
    return record && isOfFrontend(record, this) ? record : undefined;
  }

  /** The cache's copy (SESSION_CACHE), when it is this frontend's; undefined sends the caller to `get`, which says "no session" for another's. */
  peek(sessionId: string): StoredSession | undefined {
    const record = this.store.peek?.(sessionId);
    return record && isOfFrontend(record, this) ? record : undefined;
  }

  save(sessionId: string, record: StoredSession): Promise<void> {
    return this.store.save(sessionId, this.stamped(record));
  }

  touch(sessionId: string, record: StoredSession): Promise<void> {
    return this.store.touch(sessionId, record);
  }

  destroy(sessionId: string): Promise<void> {
    return this.store.destroy(sessionId);
  }

  async tryLockForRefresh(sessionId: string, leaseMs: number): Promise<RefreshLease | undefined> {
    const lease = await this.store.tryLockForRefresh(sessionId, leaseMs);
    return lease && { renew: () => lease.renew(), commit: (record) => lease.commit(this.stamped(record)), release: () => lease.release() };
  }

  /** The subject's sessions on this frontend only: a user's list never shows, and never ends, another frontend's. */
  async listBySubject(sub: string): Promise<ListedSession[]> {
    return (await this.store.listBySubject(sub)).filter(({ record }) => isOfFrontend(record, this));
  }

  countActive(): Promise<number> {
    return this.store.countActive();
  }

  /** A logout token from this frontend's IdP client ends this frontend's sessions only: another IdP may use the same `sub`. */
  destroyByIdpSession(match: IdpSessionMatch): Promise<number> {
    return this.store.destroyByIdpSession({ ...match, frontend: this.frontend });
  }

  private stamped(record: StoredSession): StoredSession {
    return record.auth.frontend === this.frontend ? record : { ...record, auth: { ...record.auth, frontend: this.frontend } };
  }
}
