import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { DependencyUnavailable } from '../errors/app-error';
import type { Clock } from '../shared/clock';

/**
 * Timing of the IdP's key set as /verify uses it for API clients' tokens.
 *
 * - `cooldownMs`: after any fetch (or failed attempt), a token whose `kid` is
 *   not in the set causes no new fetch for this long. A key rotation is
 *   picked up by the first token signed with the new key once the cooldown
 *   has passed; a flood of tokens with made-up `kid`s costs the IdP at most
 *   one request per cooldown, never one per request.
 * - `maxAgeMs`: a set older than this is fetched again in the background; the
 *   request that notices keeps using the set it has, and so does every
 *   request while the IdP cannot be reached (a removed key stops being
 *   accepted within `maxAgeMs` of the IdP publishing its new set).
 */
export const JWKS_TIMING = { cooldownMs: 30_000, maxAgeMs: 10 * 60_000 } as const;

export interface JwksCacheOptions {
  /** Fetches the key set; rejects when it cannot (the caller's error passes through). */
  readonly load: () => Promise<JSONWebKeySet>;
  readonly clock: Clock;
  readonly cooldownMs?: number;
  readonly maxAgeMs?: number;
  /** Told when a background refresh fails (the set in hand stays in use). */
  readonly onBackgroundFailure?: (error: unknown) => void;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/**
 * A remote JWKS kept in process memory, as jose's `createRemoteJWKSet` keeps
 * it, but on the gateway's clock (tests move it past the cooldown) and with
 * the stale set kept while a refresh fails. Concurrent refreshes share one fetch.
 */
export class JwksCache {
  private resolver: KeyResolver | undefined;
  private fetchedAt = 0;
  private lastAttemptAt: number | undefined;
  private pending: Promise<void> | undefined;
  private readonly cooldownMs: number;
  private readonly maxAgeMs: number;

  constructor(private readonly options: JwksCacheOptions) {
    this.cooldownMs = options.cooldownMs ?? JWKS_TIMING.cooldownMs;
    this.maxAgeMs = options.maxAgeMs ?? JWKS_TIMING.maxAgeMs;
  }

  /**
   * The key for a token's protected header, for jose's `jwtVerify`. Rejects
   * with jose's `JWKSNoMatchingKey` when the set (refreshed at most once per
   * cooldown) has no key for it, and with `DependencyUnavailable` when there
   * is no set at all or the refresh for an unknown `kid` fails: whether such
   * a token is good cannot be known, so the caller fails closed.
   */
  async key(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<KeyResolver>>> {
    if (!this.resolver) await this.refresh();
    else if (this.options.clock.now() - this.fetchedAt >= this.maxAgeMs && !this.isCoolingDown()) this.refreshInBackground();
    try {
      return await (this.resolver as KeyResolver)(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // A fetch under way may bring the key (a rotation seen by several requests at once): wait for it, start none.
      if (this.isCoolingDown() && !this.pending) throw error;
    }
    // An unknown kid: the IdP may have rotated its keys since the set was fetched.
    await (this.pending ?? this.refresh());
    return (this.resolver as KeyResolver)(header, token);
  }

  private isCoolingDown(): boolean {
    return this.lastAttemptAt !== undefined && this.options.clock.now() - this.lastAttemptAt < this.cooldownMs;
  }

  private refreshInBackground(): void {
    this.refresh().catch((error: unknown) => this.options.onBackgroundFailure?.(error));
  }

  /** One fetch at a time; callers arriving meanwhile wait for it. */
  private refresh(): Promise<void> {
    this.pending ??= this.fetch().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async fetch(): Promise<void> {
    this.lastAttemptAt = this.options.clock.now();
    let resolver: KeyResolver;
    try {
      // createLocalJWKSet refuses anything that is not a key set: the IdP's fault, not the token's.
      resolver = createLocalJWKSet(await this.options.load());
    } catch (error) {
      throw error instanceof DependencyUnavailable ? error : new DependencyUnavailable('idp', error);
    }
    this.resolver = resolver;
    this.fetchedAt = this.options.clock.now();
  }
}
