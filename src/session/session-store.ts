import type { StoredSession } from './session-data';

/**
 * A cross-replica claim on refreshing one session's tokens. Whoever holds it
 * is the only one allowed to present that session's refresh token.
 */
export interface RefreshLease {
  /** Extends the claim while the IdP call is in flight; false when it was lost. */
  renew(): Promise<boolean>;
  /**
   * Writes the refreshed record, through the same sealing and indexing as
   * `save`, only while the claim is still held and the session still exists.
   */
  commit(record: StoredSession): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Server-side sessions, in the gateway's own terms: /verify, the refresher
 * and back-channel logout use it directly, and express-session reaches it
 * through ExpressSessionAdapter (src/session/express-session-adapter.ts).
 * Every implementation keeps records sealed (SessionSealer) and honours the
 * contract suite (tests/contract/session-store.contract.test.ts).
 */
export interface SessionStore {
  /**
   * The session, or undefined: never stored, idle or past its absolute
   * lifetime, destroyed, or sealed with no current secret (earlier formats
   * included), which is as good as gone.
   */
  get(sessionId: string, freshness?: ReadFreshness): Promise<StoredSession | undefined>;
  /**
   * The session when this process holds it in memory right now (SESSION_CACHE),
   * answered without I/O and without a promise, for /verify's hot path;
   * undefined means "not known here", never "no session": ask `get`. Stores
   * without a memory of their own leave it out.
   */
  peek?(sessionId: string): StoredSession | undefined;
  /**
   * Stores the session under its id (new, or in place of what the id held)
   * for the idle timeout, capped by its absolute lifetime; one already past
   * that lifetime is not stored. It is findable by back-channel logout
   * before it exists, and counted as active.
   */
  save(sessionId: string, record: StoredSession): Promise<void>;
  /** Slides the idle expiry, and the active-sessions index with it, without rewriting the record. */
  touch(sessionId: string, record: StoredSession): Promise<void>;
  /** Removes the session and its index entries; nothing happens for one that is not there. */
  destroy(sessionId: string): Promise<void>;
  /** Undefined when another holder (process or replica) has the claim. */
  tryLockForRefresh(sessionId: string, leaseMs: number): Promise<RefreshLease | undefined>;
  /**
   * Sessions alive now, from an index kept as sessions start, slide and end
   * (never a scan of the keyspace); forgets what has expired on the way.
   */
  countActive(): Promise<number>;
  /**
   * OIDC Back-Channel Logout: destroys every session the IdP's logout names,
   * on every replica, and answers how many there were. With `sid`, the
   * sessions of that IdP session (and, when `sub` is given too, of that
   * subject only); with `sub` alone, every session of the subject. Sessions
   * are found through an index kept as they are written and destroyed, never
   * by scanning the keyspace.
   */
  destroyByIdpSession(match: IdpSessionMatch): Promise<number>;
  /**
   * Every live session of a subject (the IdP's `sub`), each with when it was
   * last used: found through the index back-channel logout uses, never by
   * scanning the keyspace, and always read from the store itself (a session
   * another replica has just ended is not listed). In no order.
   */
  listBySubject(sub: string): Promise<ListedSession[]>;
}

/** One of a subject's live sessions, as listBySubject finds it. */
export interface ListedSession {
  readonly sessionId: string;
  readonly record: StoredSession;
  /** Epoch milliseconds, to within the touch interval (lastSeenAt in session-data.ts). */
  readonly lastSeenAt: number;
}

/**
 * `cached` (the default) may answer from a replica's memory (SESSION_CACHE),
 * at most SESSION_CACHE_BOUND_MS old; `fresh` always reads the store: for a
 * read that decides what to write, such as the refresher's under its lock.
 */
export type ReadFreshness = 'cached' | 'fresh';

/** What a logout token names: its `sid` and/or `sub` claims. */
export interface IdpSessionMatch {
  readonly sid?: string;
  readonly sub?: string;
  /** Set: only that frontend's sessions (the logout came from its IdP client). */
  readonly frontend?: string;
}

/** One login attempt, between /auth/login and /auth/callback. */
export interface LoginTransaction {
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
  /** Hash of the browser-binding cookie set by the /auth/login response. */
  readonly browserBinding: string;
  readonly createdAt: number;
}

/**
 * Single-use protocol state: login transactions keyed by `state` (one per
 * attempt, so tabs never clobber each other) and the ids (`jti`) of the
 * back-channel logout tokens already accepted, so none is accepted twice.
 */
export interface LoginTransactionStore {
  save(state: string, transaction: LoginTransaction, ttlSeconds: number): Promise<void>;
  /** Returns and deletes in one step: a transaction can be used once. */
  take(state: string): Promise<LoginTransaction | undefined>;
  /**
   * Records a logout token's `jti` for `ttlSeconds` (at least as long as the
   * token could still pass verification). True the first time, false for a
   * replay, whichever replica saw the token first.
   */
  claimLogoutTokenId(jti: string, ttlSeconds: number): Promise<boolean>;
  /** Forgets a claimed `jti`, so the IdP can deliver that logout again after it failed on our side. */
  releaseLogoutTokenId(jti: string): Promise<void>;
}
