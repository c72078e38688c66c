import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { EventPublisher } from '../events/security-events';
import type { IdentityProvider } from '../oidc/identity-provider';
import { InvalidLogoutToken } from '../errors/app-error';
import type { LogoutTokenClaims } from '../oidc/logout-token';
import type { LoginTransactionStore, SessionStore } from '../session/session-store';
import type { Clock } from '../shared/clock';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { clientAddressOf } from './auth-context';
import type { TrustedProxies } from './client-address';

/** The whole form body; a logout token is a few hundred bytes to a few KiB. */
const MAX_BODY = '16kb';
const MAX_LOGOUT_TOKEN_CHARS = 16 * 1024;

export interface BackchannelLogoutDependencies {
  readonly identityProvider: Pick<IdentityProvider, 'verifyLogoutToken'>;
  readonly sessions: Pick<SessionStore, 'destroyByIdpSession'>;
  /** Where accepted `jti`s are remembered across replicas. */
  readonly logoutTokens: Pick<LoginTransactionStore, 'claimLogoutTokenId' | 'releaseLogoutTokenId'>;
  readonly trustedProxies: TrustedProxies;
  readonly metrics: GatewayMetrics;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly clock: Clock;
}

type Rejection = 'missing_logout_token' | 'malformed_body' | 'invalid_logout_token' | 'replayed_logout_token';

/**
 * The route's handlers: form parser, endpoint, and the parser's failures
 * (oversize, bad encoding) turned into the endpoint's own 400, since the
 * specification wants 400 for every request it cannot act on.
 */
export function createBackchannelLogoutRoute(deps: BackchannelLogoutDependencies): Array<RequestHandler | ErrorRequestHandler> {
  const handler = createBackchannelLogoutHandler(deps);
  const bodyErrors: ErrorRequestHandler = (error: unknown, req, res, next) => {
    const status = (error as { status?: unknown } | null)?.status;
    if (typeof status !== 'number' || status < 400 || status >= 500 || res.headersSent) return next(error);
    rejection(deps, req, res)('malformed_body', status === 413 ? `the form body is larger than ${MAX_BODY}` : 'the form body cannot be read');
  };
  return [express.urlencoded({ extended: false, limit: MAX_BODY }), handler, bodyErrors];
}

/**
 * POST /auth/backchannel-logout (OIDC Back-Channel Logout 1.0, section 2.8).
 * Called by the IdP's servers, not by browsers: no CSRF header, no session
 * cookie, no session is created. The steps, in order:
 *
 * 1. read `logout_token` from the form body;
 * 2. verify it (signature, iss, aud, iat/exp, events, sid/sub, no nonce);
 * 3. claim its `jti` in the shared store: a replay is refused on every replica;
 * 4. destroy every session of the named IdP session or subject;
 * 5. answer 200 with `Cache-Control: no-store`.
 *
 * A token that fails 1-3 gets 400 `{ "error": "invalid_request" }` as the
 * specification asks; a dependency that cannot answer (IdP metadata or keys,
 * Redis) gets 503 with Retry-After from the error handler, and the `jti` is
 * released so that a retried delivery still works.
 */
export function createBackchannelLogoutHandler(deps: BackchannelLogoutDependencies) {
  return async (req: Request, res: Response): Promise<void> => {
    res.set('Cache-Control', 'no-store');
    const clientAddress = clientAddressOf(req, deps.trustedProxies);
    const reject = rejection(deps, req, res);

    const logoutToken = logoutTokenFrom(req.body);
    if (!logoutToken) return reject('missing_logout_token', 'the form body must carry exactly one logout_token');

    let claims: LogoutTokenClaims;
    try {
      claims = await deps.identityProvider.verifyLogoutToken(logoutToken);
    } catch (error) {
      if (error instanceof InvalidLogoutToken) return reject('invalid_logout_token', error.detail);
      throw error;
    }

    const rememberSeconds = Math.ceil((claims.acceptableUntil - deps.clock.now()) / 1000);
    if (!(await deps.logoutTokens.claimLogoutTokenId(claims.jti, rememberSeconds))) {
      return reject('replayed_logout_token', 'this logout token was already used');
    }
    deps.metrics.tokenValidation.inc({ token_type: 'logout_token', status: 'valid' });

    let destroyed: number;
    try {
      destroyed = await deps.sessions.destroyByIdpSession({ sid: claims.sid, sub: claims.sub });
    } catch (error) {
      await deps.logoutTokens.releaseLogoutTokenId(claims.jti).catch(() => undefined);
      throw error;
    }
    if (destroyed > 0) deps.metrics.sessionsDestroyed.inc({ reason: 'backchannel_logout' }, destroyed);
    deps.events.publish({
      type: 'backchannel_logout',
      severity: 'info',
      subject: claims.sub,
      reason: destroyed > 0 ? 'sessions_destroyed' : 'no_matching_session',
      requestId: res.locals.requestId,
      clientAddress,
    });
    (res.locals.logger ?? deps.logger).info({ sub: claims.sub, hasSid: claims.sid !== undefined, destroyed }, 'back-channel logout');
    res.status(200).end();
  };
}

/** 400 `invalid_request` (OAuth 2.0 error response, as section 2.8 suggests), counted and published. */
function rejection(deps: BackchannelLogoutDependencies, req: Request, res: Response) {
  return (reason: Rejection, detail: string): void => {
    deps.metrics.tokenValidation.inc({ token_type: 'logout_token', status: reason === 'replayed_logout_token' ? 'replayed' : 'invalid' });
    deps.events.publish({
      type: 'backchannel_logout',
      severity: 'warning',
      reason,
      requestId: res.locals.requestId,
      clientAddress: clientAddressOf(req, deps.trustedProxies),
    });
    (res.locals.logger ?? deps.logger).info({ reason, detail }, 'back-channel logout refused');
    res.status(400).set('Cache-Control', 'no-store').json({ error: 'invalid_request', error_description: detail });
  };
}

/** Exactly one `logout_token` string; a repeated field, an empty one or an oversize one is no token. */
function logoutTokenFrom(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>).logout_token;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LOGOUT_TOKEN_CHARS) return undefined;
  return value;
}
