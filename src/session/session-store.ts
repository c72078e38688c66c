import type { Store } from 'express-session';
import type { StoredSession } from './session-data';

/** Milliseconds since the epoch; injected so tests can move time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * A cross-replica claim on refreshing one session's tokens. Whoever holds it
 * is the only one allowed to present that session's refresh token.
 */
export interface RefreshLease {
  /** Extends the claim while the IdP call is in flight; false when it was lost. */
  renew(): Promise<boolean>;
  /** Writes the refreshed record in one step, only while the claim is still held. */
  commit(record: StoredSession): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Server-side sessions. The browser routes use `expressStore` through
 * express-session; /verify reads the same records, in the same format,
 * straight from the store without the middleware.
 */
export interface SessionStore {
  readonly expressStore: Store;
  get(sessionId: string): Promise<StoredSession | undefined>;
  /** Slides the idle expiry without rewriting the record. */
  touch(sessionId: string, record: StoredSession): Promise<void>;
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
}

/** What a logout token names: its `sid` and/or `sub` claims. */
export interface IdpSessionMatch {
  readonly sid?: string;
  readonly sub?: string;
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
