import { Store, type SessionData } from 'express-session';
import { sessionTtlSeconds, type StoredSession } from './session-data';
import type { Clock, IdpSessionMatch, LoginTransaction, LoginTransactionStore, RefreshLease, SessionStore } from './session-store';

interface Entry {
  /** Serialised like Redis does, so callers never share mutable objects with the store. */
  readonly json: string;
  readonly expiresAt: number;
}

type Callback<T = unknown> = (error?: unknown, value?: T) => void;

/**
 * Sessions in process memory, for development and single-instance trials.
 * Same contract as RedisSessionStore (the contract suite runs against both);
 * it does not span replicas and loses everything on restart.
 */
export class MemorySessionStore extends Store implements SessionStore {
  private readonly sessions = new Map<string, Entry>();
  private readonly locks = new Map<string, { holder: number; expiresAt: number }>();
  private nextHolder = 1;

  constructor(
    private readonly idleTtlSeconds: number,
    private readonly clock: Clock,
  ) {
    super();
  }

  get expressStore(): Store {
    return this;
  }

  override get(sessionId: string, callback?: Callback<SessionData | null>): any {
    const record = this.read(sessionId);
    if (callback) return callback(null, (record ?? null) as SessionData | null);
    return Promise.resolve(record);
  }

  override set(sessionId: string, record: SessionData, callback?: Callback): void {
    this.write(sessionId, record as unknown as StoredSession);
    callback?.();
  }

  override touch(sessionId: string, record: SessionData | StoredSession, callback?: Callback): any {
    const entry = this.sessions.get(sessionId);
    if (entry) {
      const ttl = sessionTtlSeconds(record as StoredSession, this.idleTtlSeconds, this.clock.now());
      if (ttl <= 0) this.sessions.delete(sessionId);
      else this.sessions.set(sessionId, { json: entry.json, expiresAt: this.clock.now() + ttl * 1000 });
    }
    if (callback) return callback();
    return Promise.resolve();
  }

  override destroy(sessionId: string, callback?: Callback): any {
    this.sessions.delete(sessionId);
    if (callback) return callback();
    return Promise.resolve();
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
      this.sessions.delete(sessionId);
      destroyed += 1;
    }
    return destroyed;
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
        if (!isHeld() || this.read(sessionId) === undefined) return false;
        return this.write(sessionId, record);
      },
      release: async () => {
        if (this.locks.get(sessionId)?.holder === holder) this.locks.delete(sessionId);
      },
    };
  }

  private read(sessionId: string): StoredSession | undefined {
    const entry = this.sessions.get(sessionId);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return JSON.parse(entry.json) as StoredSession;
  }

  private write(sessionId: string, record: StoredSession): boolean {
    const ttl = sessionTtlSeconds(record, this.idleTtlSeconds, this.clock.now());
    if (ttl <= 0) {
      this.sessions.delete(sessionId);
      return false;
    }
    this.sessions.set(sessionId, { json: JSON.stringify(record), expiresAt: this.clock.now() + ttl * 1000 });
    return true;
  }
}

const MAX_PENDING_LOGINS = 100_000;

export class MemoryLoginTransactionStore implements LoginTransactionStore {
  private readonly transactions = new Map<string, { transaction: LoginTransaction; expiresAt: number }>();
  /** Accepted logout token ids and when they may be forgotten. */
  private readonly logoutTokenIds = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  async save(state: string, transaction: LoginTransaction, ttlSeconds: number): Promise<void> {
    this.prune();
    // Abandoned logins are cheap to create: past the cap the oldest give way (Maps iterate in insertion order).
    for (const oldest of this.transactions.keys()) {
      if (this.transactions.size < MAX_PENDING_LOGINS) break;
      this.transactions.delete(oldest);
    }
    this.transactions.set(state, { transaction, expiresAt: this.clock.now() + ttlSeconds * 1000 });
  }

  async take(state: string): Promise<LoginTransaction | undefined> {
    const entry = this.transactions.get(state);
    this.transactions.delete(state);
    if (!entry || entry.expiresAt <= this.clock.now()) return undefined;
    return entry.transaction;
  }

  async claimLogoutTokenId(jti: string, ttlSeconds: number): Promise<boolean> {
    this.prune();
    if (this.logoutTokenIds.has(jti)) return false;
    this.logoutTokenIds.set(jti, this.clock.now() + Math.max(1, Math.ceil(ttlSeconds)) * 1000);
    return true;
  }

  async releaseLogoutTokenId(jti: string): Promise<void> {
    this.logoutTokenIds.delete(jti);
  }

  /** Abandoned logins and remembered logout tokens would otherwise accumulate forever. */
  private prune(): void {
    const now = this.clock.now();
    for (const [state, entry] of this.transactions) if (entry.expiresAt <= now) this.transactions.delete(state);
    for (const [jti, expiresAt] of this.logoutTokenIds) if (expiresAt <= now) this.logoutTokenIds.delete(jti);
  }
}
