import { setTimeout as sleep } from 'node:timers/promises';
import { DependencyUnavailable, RefreshTokenRejected } from '../errors/app-error';
import type { EventPublisher } from '../events/security-events';
import type { IdentityProvider } from '../oidc/identity-provider';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { RefreshBackoff } from './refresh-backoff';
import type { StoredSession, TokenSet } from './session-data';
import type { SessionEnder } from './session-end';
import type { RefreshLease, SessionStore } from './session-store';
import type { Clock } from '../shared/clock';

/** Refresh when the access token has less than this left, so upstreams never receive one about to expire. */
export const REFRESH_WINDOW_MS = 60_000;

/** A request waiting on another replica's refresh looks again after this, doubling up to the maximum. */
const WAIT_POLL_INITIAL_MS = 20;
const WAIT_POLL_MAX_MS = 200;

export type FreshnessOutcome =
  | { readonly kind: 'fresh'; readonly record: StoredSession; readonly tokens: TokenSet }
  /** The session is over (refresh token refused, or nothing left to refresh with); it has been destroyed. */
  | { readonly kind: 'ended'; readonly reason: 'invalid_grant' | 'expired' }
  /** The IdP could not refresh and the access token has expired; worth asking again after `retryAfterSeconds`. */
  | { readonly kind: 'unavailable'; readonly retryAfterSeconds: number };

export interface SessionRefresherOptions {
  readonly store: SessionStore;
  /** How a session whose refresh token can no longer be used ends. */
  readonly sessionEnder: SessionEnder;
  readonly identityProvider: IdentityProvider;
  readonly metrics: GatewayMetrics;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly clock: Clock;
  /**
   * Initial life of the cross-replica lock. It is renewed every third of
   * this while the IdP call runs, so a slow IdP never lets the lock lapse
   * and a second replica present the same refresh token.
   */
  readonly leaseMs: number;
  /** How long a request waits for another replica's refresh before giving up. */
  readonly waitBudgetMs: number;
  /** Per-session back-off after failed refreshes; one in process memory by default. */
  readonly backoff?: RefreshBackoff;
}

/**
 * Keeps a session's access token fresh. One refresh per session at a time
 * across all replicas: an in-process single flight in front of a Redis
 * lock. Whoever gets the lock re-reads the session first (another replica
 * may have just refreshed it) and stores the rotated tokens with a commit
 * fenced by the lock.
 *
 * With the IdP failing, a session asks it at most once per back-off
 * interval (src/session/refresh-backoff.ts). The back-off is checked before
 * anything else, whether or not the token has expired: in back-off a valid
 * token is served and an expired one answers "unavailable" with the time
 * left, without taking the lock, publishing an event or writing a log line.
 * Only the first failure of an outage is an event and a warning; the later
 * ones are counted in the metrics.
 */
export class SessionRefresher {
  private readonly inFlight = new Map<string, Promise<FreshnessOutcome>>();
  private readonly backoff: RefreshBackoff;

  constructor(private readonly options: SessionRefresherOptions) {
    this.backoff = options.backoff ?? new RefreshBackoff({ clock: options.clock });
  }

  /**
   * Within 60 s of expiry, or within the last half of the token's life when
   * it lives shorter than two minutes: an IdP issuing 60 s tokens must not
   * see a refresh on every request.
   */
  needsRefresh(tokens: TokenSet): boolean {
    const lifetime = tokens.accessTokenIssuedAt === undefined ? Infinity : tokens.accessTokenExpiresAt - tokens.accessTokenIssuedAt;
    const window = Math.min(REFRESH_WINDOW_MS, lifetime / 2);
    return tokens.accessTokenExpiresAt - this.options.clock.now() <= window;
  }

  isExpired(tokens: TokenSet): boolean {
    return tokens.accessTokenExpiresAt <= this.options.clock.now();
  }

  /**
   * The outcome when it is known without I/O (the token is outside its
   * refresh window), otherwise undefined: then `ensureFresh` decides. /verify
   * asks this first so that a steady request needs no promise.
   */
  freshNow(record: StoredSession, tokens: TokenSet): FreshnessOutcome | undefined {
    return this.needsRefresh(tokens) ? undefined : { kind: 'fresh', record, tokens };
  }

  /** `service` is the route that needed the token: the label of bff_token_refresh_total. */
  ensureFresh(sessionId: string, record: StoredSession, tokens: TokenSet, service: string): Promise<FreshnessOutcome> {
    const known = this.freshNow(record, tokens);
    if (known) return Promise.resolve(known);
    // Before the single flight and the lock: a session in back-off costs nothing but this lookup.
    const backoffMs = this.backoff.remainingMs(sessionId);
    if (backoffMs > 0) return Promise.resolve(this.fallback(record, tokens, service, backoffMs));
    const running = this.inFlight.get(sessionId);
    if (running) return running;
    const refresh = this.refreshAcrossReplicas(sessionId, service).finally(() => this.inFlight.delete(sessionId));
    this.inFlight.set(sessionId, refresh);
    return refresh;
  }

  private async refreshAcrossReplicas(sessionId: string, service: string): Promise<FreshnessOutcome> {
    const { store, clock } = this.options;
    const deadline = clock.now() + this.options.waitBudgetMs;
    let pollMs = WAIT_POLL_INITIAL_MS;
    let hasWaited = false;
    for (;;) {
      const lease = await store.tryLockForRefresh(sessionId, this.options.leaseMs);
      // After waiting on another replica's attempt, the IdP is not asked again: its outcome is ours.
      if (lease) return this.refreshHolding(sessionId, lease, service, hasWaited);
      hasWaited = true;
      await sleep(pollMs * (0.5 + Math.random() / 2));
      pollMs = Math.min(WAIT_POLL_MAX_MS, pollMs * 2);
      const current = await store.get(sessionId, 'fresh');
      if (!current) return { kind: 'ended', reason: 'invalid_grant' };
      const { tokens } = current.auth;
      if (!this.needsRefresh(tokens)) return this.refreshed(sessionId, current, tokens);
      if (clock.now() >= deadline) return this.adoptFailure(sessionId, current, tokens, service);
    }
  }

  /**
   * Holding the lock. `hasWaited`: this request waited for another holder,
   * which released the lock without storing fresh tokens (its IdP call
   * failed, or it died): that counts as this session's attempt, and the IdP
   * is not asked a second time in a row.
   */
  private async refreshHolding(sessionId: string, lease: RefreshLease, service: string, hasWaited: boolean): Promise<FreshnessOutcome> {
    const { store, metrics, clock } = this.options;
    let current: StoredSession | undefined;
    let tokens: TokenSet | undefined;
    try {
      current = await store.get(sessionId, 'fresh');
      tokens = current?.auth.tokens;
      if (!current || !tokens) return await this.end(sessionId, current, 'expired');
      if (!this.needsRefresh(tokens)) return this.refreshed(sessionId, current, tokens);
      if (!tokens.refreshToken) {
        if (!this.isExpired(tokens)) return { kind: 'fresh', record: current, tokens };
        return await this.end(sessionId, current, 'expired');
      }
      if (hasWaited) return this.adoptFailure(sessionId, current, tokens, service);
      const started = performance.now();
      const refreshed = await this.whileRenewing(lease, () => this.options.identityProvider.refresh(tokens!.refreshToken!));
      const next: TokenSet = {
        accessToken: refreshed.accessToken,
        refreshToken: refreshed.refreshToken ?? tokens.refreshToken,
        idToken: refreshed.idToken ?? tokens.idToken,
        accessTokenExpiresAt: refreshed.accessTokenExpiresAt,
        accessTokenIssuedAt: refreshed.accessTokenIssuedAt,
      };
      const updated: StoredSession = { ...current, auth: { ...current.auth, tokens: next } };
      if (!(await lease.commit(updated))) return await this.afterLostCommit(sessionId, next);
      metrics.tokenRefresh.inc({ service, status: 'success' });
      metrics.tokenRefreshSuccess.inc({ user_id: metrics.userLabel(current.auth.user.sub) });
      const durationMs = performance.now() - started;
      metrics.otel.tokenRefreshDuration.record(durationMs, { outcome: 'success' });
      this.options.logger.debug({ durationMs, at: clock.now() }, 'access token refreshed');
      return this.refreshed(sessionId, updated, next);
    } catch (error) {
      // The store failing is not the IdP failing: no refresh failure, no back-off, the caller answers 503 (redis).
      if (error instanceof DependencyUnavailable && error.dependency === 'redis') throw error;
      metrics.tokenRefresh.inc({ service, status: 'failure' });
      if (error instanceof RefreshTokenRejected) return await this.end(sessionId, current, 'invalid_grant');
      metrics.tokenRefreshFailed.inc({ reason: 'idp_unavailable' });
      const backoff = this.backoff.recordFailure(sessionId);
      const retryInMs = backoff.retryAt - clock.now();
      if (backoff.failures === 1) {
        this.options.events.publish({ type: 'refresh_failure', severity: 'warning', sessionId, subject: current?.auth.user.sub, reason: 'idp_unavailable' });
        this.options.logger.warn(
          { err: (error as Error).message, retryInMs },
          'token refresh failed; serving the current token while it is valid, and asking the IdP again after a back-off',
        );
      } else {
        this.options.logger.debug({ err: (error as Error).message, failures: backoff.failures, retryInMs }, 'token refresh failed again');
      }
      return current && tokens ? this.fallback(current, tokens, service, retryInMs) : unavailable(retryInMs);
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  /** Fresh tokens, by this request or another: the session's back-off, if any, is over. */
  private refreshed(sessionId: string, record: StoredSession, tokens: TokenSet): FreshnessOutcome {
    const failures = this.backoff.recordSuccess(sessionId);
    if (failures > 0) this.options.logger.info({ failures }, 'token refresh works again after failed attempts');
    return { kind: 'fresh', record, tokens };
  }

  /** Another holder's attempt ended without fresh tokens: back off as if this one had failed, silently (the holder reported it). */
  private adoptFailure(sessionId: string, record: StoredSession, tokens: TokenSet, service: string): FreshnessOutcome {
    const backoff = this.backoff.recordFailure(sessionId);
    return this.fallback(record, tokens, service, backoff.retryAt - this.options.clock.now());
  }

  /**
   * The commit was refused: the session was destroyed meanwhile (logout,
   * back-channel logout), or the lease lapsed. The store decides what holds.
   */
  private async afterLostCommit(sessionId: string, refreshed: TokenSet): Promise<FreshnessOutcome> {
    const stored = await this.options.store.get(sessionId, 'fresh');
    const tokens = stored?.auth.tokens;
    if (!stored || !tokens) {
      // Ended while we refreshed: the refresh token we were just given must not outlive it.
      if (refreshed.refreshToken) await this.options.identityProvider.revoke(refreshed.refreshToken, 'refresh_token').catch(() => undefined);
      return { kind: 'ended', reason: 'expired' };
    }
    this.options.logger.warn('refresh lease lost before the rotated tokens were stored; using what the store holds');
    return this.isExpired(tokens) ? unavailable(0) : { kind: 'fresh', record: stored, tokens };
  }

  /** The IdP is down or busy: a still-valid token keeps being served, an expired one cannot be until `retryInMs` has passed. */
  private fallback(record: StoredSession, tokens: TokenSet, service: string, retryInMs: number): FreshnessOutcome {
    if (!this.isExpired(tokens)) return { kind: 'fresh', record, tokens };
    this.options.metrics.tokenExpiry.inc({ service });
    return unavailable(retryInMs);
  }

  private async end(sessionId: string, record: StoredSession | undefined, reason: 'invalid_grant' | 'expired'): Promise<FreshnessOutcome> {
    const { metrics, events, sessionEnder } = this.options;
    metrics.tokenRefreshFailed.inc({ reason });
    const subject = record?.auth.user.sub;
    events.publish({ type: 'refresh_failure', severity: 'warning', sessionId, subject, reason });
    await sessionEnder.end({ sessionId, subject, reason: reason === 'invalid_grant' ? 'refresh_rejected' : 'expired' });
    this.options.logger.info({ reason, sub: subject }, 'session ended: the refresh token can no longer be used');
    return { kind: 'ended', reason };
  }

  private async whileRenewing<T>(lease: RefreshLease, call: () => Promise<T>): Promise<T> {
    const renewal = setInterval(() => void lease.renew().catch(() => undefined), Math.max(50, Math.floor(this.options.leaseMs / 3)));
    try {
      return await call();
    } finally {
      clearInterval(renewal);
    }
  }
}

/** Retry-After is in whole seconds, and at least one. */
function unavailable(retryInMs: number): FreshnessOutcome {
  return { kind: 'unavailable', retryAfterSeconds: Math.max(1, Math.ceil(retryInMs / 1000)) };
}
