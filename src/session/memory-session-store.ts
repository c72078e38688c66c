import { LRUCache } from 'lru-cache';
import { isOfFrontend, lastSeenAt, sessionTtlSeconds, type StoredSession } from './session-data';
import type { SessionSealer } from './session-sealer';
import type { IdpSessionMatch, ListedSession, LoginTransaction, LoginTransactionStore, RefreshLease, SessionStore } from './session-store';
import type { Clock } from '../shared/clock';

interface Entry {
  /** Sealed as in Redis (SessionSealer): the same format, rotation and copies, never shared mutable objects. */
  readonly sealed: Buffer;
  readonly expiresAt: number;
}

export interface MemorySessionStoreOptions {
  readonly sealer: SessionSealer;
  /** The idle timeout of a session: its frontend's (FRONTENDS_FILE), else SESSION_IDLE_TTL_SECONDS. */
  readonly idleTtlSecondsOf: (record: StoredSession) => number;
  readonly clock: Clock;
}

/**
 * Sessions in process memory, for development and single-instance trials.
 * Same contract as RedisSessionStore (the contract suite runs against both);
 * it does not span replicas and loses everything on restart.
 */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, Entry>();
  private readonly locks = new Map<string, { holder: number; expiresAt: number }>();
  private readonly sealer: SessionSealer;
  private readonly idleTtlSecondsOf: (record: StoredSession) => number;
  private readonly clock: Clock;
  private nextHolder = 1;

  constructor(options: MemorySessionStoreOptions) {
    this.sealer = options.sealer;
    this.idleTtlSecondsOf = options.idleTtlSecondsOf;
    this.clock = options.clock;
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    return this.read(sessionId);
  }

  async save(sessionId: string, record: StoredSession): Promise<void> {
    this.write(sessionId, record);
  }

  async touch(sessionId: string, record: StoredSession): Promise<void> {
    const entry = this.live(sessionId);
    if (!entry) return;
    const ttl = sessionTtlSeconds(record, this.idleTtlSecondsOf(record), this.clock.now());
    if (ttl <= 0) this.sessions.delete(sessionId);
    else this.sessions.set(sessionId, { sealed: entry.sealed, expiresAt: this.clock.now() + ttl * 1000 });
  }

  async destroy(sessionId: string): Promise<void> {
    this.sessions.delete(sessionId);
  }

  async countActive(): Promise<number> {
    const now = this.clock.now();
    for (const [sessionId, entry] of this.sessions) if (entry.expiresAt <= now) this.sessions.delete(sessionId);
    return this.sessions.size;
  }

  /** A scan of the map: this store is for one process and development-sized numbers of sessions. */
  async destroyByIdpSession(match: IdpSessionMatch): Promise<number> {
    if (!match.sid && !match.sub) return 0;
    let destroyed = 0;
    for (const sessionId of [...this.sessions.keys()]) {
      const auth = this.read(sessionId)?.auth;
      if (!auth) continue;
      if (match.sid && auth.idpSessionId !== match.sid) continue;
      if (match.sub && auth.user.sub !== match.sub) continue;
      if (!isOfFrontend({ auth }, match)) continue;
      this.sessions.delete(sessionId);
      destroyed += 1;
    }
    return destroyed;
  }

  /** A scan of the map, as destroyByIdpSession; last seen derived from the idle expiry, as in Redis. */
  async listBySubject(sub: string): Promise<ListedSession[]> {
    const now = this.clock.now();
    const listed: ListedSession[] = [];
    for (const sessionId of [...this.sessions.keys()]) {
      const entry = this.live(sessionId);
      const record = entry && this.sealer.open(sessionId, entry.sealed);
      if (entry && record?.auth.user.sub === sub) listed.push({ sessionId, record, lastSeenAt: lastSeenAt(record, entry.expiresAt, this.idleTtlSecondsOf(record), now) });
    }
    return listed;
  }

  async tryLockForRefresh(sessionId: string, leaseMs: number): Promise<RefreshLease | undefined> {
    const now = this.clock.now();
    const current = this.locks.get(sessionId);
    if (current && current.expiresAt > now) return undefined;
    const holder = this.nextHolder++;
    this.locks.set(sessionId, { holder, expiresAt: now + leaseMs });
    const isHeld = () => {
      const lock = this.locks.get(sessionId);
      return lock !== undefined && lock.holder === holder && lock.expiresAt > this.clock.now();
    };
    return {
      renew: async () => {
        if (!isHeld()) return false;
        this.locks.set(sessionId, { holder, expiresAt: this.clock.now() + leaseMs });
        return true;
      },
      commit: async (record) => {
        // A session destroyed while its refresh was in flight (logout, back-channel logout) stays destroyed.
        if (!isHeld() || !this.live(sessionId)) return false;
        return this.write(sessionId, record);
      },
      release: async () => {
        if (this.locks.get(sessionId)?.holder === holder) this.locks.delete(sessionId);
      },
    };
  }

  private live(sessionId: string): Entry | undefined {
    const entry = this.sessions.get(sessionId);
    if (!entry) return undefined;
    if (entry.expiresAt > this.clock.now()) return entry;
    this.sessions.delete(sessionId);
    return undefined;
  }

  private read(sessionId: string): StoredSession | undefined {
    const entry = this.live(sessionId);
    return entry && this.sealer.open(sessionId, entry.sealed);
  }

  /** The one write path, for saves and refresh commits alike. */
  private write(sessionId: string, record: StoredSession): boolean {
    const ttl = sessionTtlSeconds(record, this.idleTtlSecondsOf(record), this.clock.now());
    if (ttl <= 0) {
      this.sessions.delete(sessionId);
      return false;
    }
    this.sessions.set(sessionId, { sealed: this.sealer.seal(sessionId, record), expiresAt: this.clock.now() + ttl * 1000 });
    return true;
  }
}

/** Abandoned logins are cheap to create: past this many pending, the least recently saved give way. */
const MAX_PENDING_LOGINS = 100_000;
/**
 * Accepted logout token ids remembered at once. Only the IdP can mint a token
 * that gets this far (its signature is checked first), so this bounds memory
 * without letting anyone else push an id out early.
 */
const MAX_REMEMBERED_LOGOUT_TOKENS = 100_000;

export class MemoryLoginTransactionStore implements LoginTransactionStore {
  private readonly transactions: LRUCache<string, LoginTransaction>;
  private readonly logoutTokenIds: LRUCache<string, true>;

  constructor(clock: Clock) {
    // Expiry follows the injected clock, read on every access (ttlResolution 0), so tests can move time.
    const timing = { perf: clock, ttlResolution: 0 } as const;
    this.transactions = new LRUCache({ max: MAX_PENDING_LOGINS, ...timing });
    this.logoutTokenIds = new LRUCache({ max: MAX_REMEMBERED_LOGOUT_TOKENS, ...timing });
  }

  async save(state: string, transaction: LoginTransaction, ttlSeconds: number): Promise<void> {
    this.transactions.set(state, transaction, { ttl: ttlSeconds * 1000 });
  }

  async take(state: string): Promise<LoginTransaction | undefined> {
    const transaction = this.transactions.get(state);
    this.transactions.delete(state);
    return transaction;
  }

  async claimLogoutTokenId(jti: string, ttlSeconds: number): Promise<boolean> {
    if (this.logoutTokenIds.has(jti)) return false;
    this.logoutTokenIds.set(jti, true, { ttl: Math.max(1, Math.ceil(ttlSeconds)) * 1000 });
    return true;
  }

  async releaseLogoutTokenId(jti: string): Promise<void> {
    this.logoutTokenIds.delete(jti);
  }
}
