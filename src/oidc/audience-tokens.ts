import type { TokenSet } from '../session/session-data';
import type { Clock } from '../shared/clock';
import { LRUCache } from 'lru-cache';
import type { IdentityProvider } from './identity-provider';

/** An exchanged token is reused until this close to its expiry. */
const REUSE_MARGIN_MS = 60_000;

/**
 * Tokens for routes with an `audience` (RFC 8693 token exchange), kept in
 * process memory per session, audience and source token, so a new access
 * token after a refresh gets a new exchange. Concurrent requests share one
 * exchange. They are not stored in Redis: an exchange is cheap to repeat
 * on another replica, and nothing rotates.
 */
export class AudienceTokens {
  // Least recently used first out: a flood of new sessions cannot wipe every other session's tokens at once.
  private readonly cache = new LRUCache<string, { token: string; expiresAt: number }>({ max: 20_000 });
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly identityProvider: IdentityProvider,
    private readonly clock: Clock,
  ) {}

  tokenFor(sessionId: string, tokens: TokenSet, audience: string): Promise<string> {
    const key = `${sessionId}\u0000${audience}\u0000${tokens.accessTokenExpiresAt}\u0000${tokens.accessToken.slice(-32)}`;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt - this.clock.now() > REUSE_MARGIN_MS) return Promise.resolve(cached.token);
    const running = this.inFlight.get(key);
    if (running) return running;
    const exchange = this.identityProvider
      .exchange(tokens.accessToken, audience)
      .then((exchanged) => {
        this.cache.set(key, { token: exchanged.accessToken, expiresAt: exchanged.expiresAt });
        return exchanged.accessToken;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, exchange);
    return exchange;
  }
}
