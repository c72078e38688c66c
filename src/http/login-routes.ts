import type { CookieOptions, Request, Response } from 'express';
import { AppError, CsrfRejected, InvalidLoginResponse, LoginExpired, Unauthenticated } from '../errors/app-error';
import { findCsrfViolation } from '../forwardauth/csrf';
import { safeReturnTo } from '../oidc/return-to';
import { bindingFor, findBindingViolation } from '../session/binding';
import {
  LOGIN_TRANSACTION_TTL_SECONDS,
  loginBindingOf,
  loginCookieName,
  loginCookiesToEvict,
  newLoginCookieValue,
  pendingLoginCookies,
} from '../session/login-cookies';
import { findCookie } from '../session/session-cookie';
import type { AuthenticatedSession } from '../session/session-data';
import { deviceLabelOf } from '../session/device-label';
import { type AuthRouteDependencies, clientAddressOf, revokeRefreshToken, sessionOps } from './auth-context';

/** Longer values are not ours: a state is 43 characters. */
const MAX_STATE_LENGTH = 512;

function singleQueryValue(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Attributes of a login cookie; `__Host-` names must be Secure, the others are cleared as they were set. */
function loginCookieOptions(name: string, isSecure: boolean): CookieOptions {
  return { httpOnly: true, secure: isSecure || name.startsWith('__Host-'), sameSite: 'lax', path: '/' };
}

/**
 * GET /auth/login: one transaction per attempt, keyed by `state`, and one
 * cookie per transaction binding it to this browser (src/session/login-cookies.ts),
 * so logins started in several tabs at once each complete.
 */
export function createLoginHandler(deps: AuthRouteDependencies) {
  return async (req: Request, res: Response): Promise<void> => {
    const isSecure = deps.config.session.isSecureCookie;
    const { publicOrigin, basePath } = deps.config.server;
    const returnTo = safeReturnTo(singleQueryValue(req.query.returnTo), publicOrigin, `${basePath}/`);
    const authorization = await deps.identityProvider.startLogin();
    const now = deps.clock.now();
    const cookieValue = newLoginCookieValue(now);
    await deps.transactions.save(
      authorization.state,
      {
        codeVerifier: authorization.codeVerifier,
        nonce: authorization.nonce,
        returnTo,
        browserBinding: loginBindingOf(cookieValue),
        createdAt: now,
      },
      LOGIN_TRANSACTION_TTL_SECONDS,
    );
    // Bounded: past the cap the oldest pending logins of this browser give way (their transactions expire on their own).
    for (const name of loginCookiesToEvict(pendingLoginCookies(req.headers.cookie), isSecure)) {
      res.clearCookie(name, loginCookieOptions(name, isSecure));
    }
    const name = loginCookieName(authorization.state, isSecure);
    res.cookie(name, cookieValue, { ...loginCookieOptions(name, isSecure), maxAge: LOGIN_TRANSACTION_TTL_SECONDS * 1000 });
    res.set('Cache-Control', 'no-store').redirect(302, authorization.url);
  };
}

/**
 * GET /auth/callback. The transaction is taken (deleted) before anything is
 * verified, so a replayed callback finds nothing; its cookie is cleared
 * whatever the outcome. The session id is new (regenerate), and the redirect
 * waits for the store to acknowledge it. Other tabs' logins are untouched:
 * each completes in turn, and the last one's session is the browser's.
 */
export function createCallbackHandler(deps: AuthRouteDependencies) {
  return async (req: Request, res: Response): Promise<void> => {
    const clientAddress = clientAddressOf(req, deps.trustedProxies);
    const isSecure = deps.config.session.isSecureCookie;
    // The security event's reason where the error code alone would not say what happened.
    let failureReason: string | undefined;
    try {
      const state = singleQueryValue(req.query.state);
      if (!state || state.length > MAX_STATE_LENGTH) throw new InvalidLoginResponse('the login response has no state');
      const transaction = await deps.transactions.take(state);
      const cookieName = loginCookieName(state, isSecure);
      const cookieValue = findCookie(req.headers.cookie, cookieName);
      if (cookieValue !== undefined) res.clearCookie(cookieName, loginCookieOptions(cookieName, isSecure));
      if (!transaction) {
        throw new LoginExpired();
      }
      if (cookieValue === undefined || loginBindingOf(cookieValue) !== transaction.browserBinding) {
        failureReason = 'browser_mismatch';
        throw new InvalidLoginResponse('this login was started in another browser, or its cookie was lost; start the login again');
      }
      const callbackUrl = new URL(req.originalUrl, deps.config.server.publicOrigin);
      const login = await deps.identityProvider.finishLogin(callbackUrl, {
        expectedState: state,
        expectedNonce: transaction.nonce,
        codeVerifier: transaction.codeVerifier,
      });
      await sessionOps.regenerate(req);
      const now = deps.clock.now();
      const auth: AuthenticatedSession = {
        user: login.user,
        tokens: login.tokens,
        createdAt: now,
        absoluteExpiresAt: now + deps.config.session.absoluteTtlSeconds * 1000,
        binding: bindingFor(deps.config.session.binding, req.get('user-agent'), clientAddress),
        idpSessionId: login.idpSessionId,
        device: deviceLabelOf(req.get('user-agent')),
      };
      req.session.auth = auth;
      await sessionOps.save(req);
      deps.metrics.sessionsCreated.inc({ frontend: deps.config.server.frontend });
      deps.events.publish({ type: 'login_success', severity: 'info', sessionId: req.session.id, subject: login.user.sub, requestId: res.locals.requestId, clientAddress });
      deps.events.publish({ type: 'session_created', severity: 'info', sessionId: req.session.id, subject: login.user.sub });
      res.set('Cache-Control', 'no-store').redirect(302, transaction.returnTo);
    } catch (error) {
      deps.events.publish({
        type: 'login_failure',
        severity: 'warning',
        reason: failureReason ?? (error instanceof AppError ? error.code : 'internal'),
        requestId: res.locals.requestId,
        clientAddress,
      });
      throw error;
    }
  };
}

/** POST /auth/logout: revoke at the IdP when possible, destroy, and hand back the IdP's logout URL. */
export function createLogoutHandler(deps: AuthRouteDependencies) {
  return async (req: Request, res: Response): Promise<void> => {
    const postLogoutRedirectUri = `${deps.config.server.publicOrigin}${deps.config.server.basePath}/`;
    const auth = req.session.auth;
    let logoutUrl = postLogoutRedirectUri;
    if (auth) {
      const { tokens } = auth;
      await revokeRefreshToken(deps, tokens, res.locals.requestId);
      logoutUrl = deps.identityProvider.logoutUrl(tokens.idToken, postLogoutRedirectUri) ?? postLogoutRedirectUri;
      const sessionId = req.session.id;
      const clientAddress = clientAddressOf(req, deps.trustedProxies);
      await deps.sessionEnder.end({ sessionId, subject: auth.user.sub, reason: 'logout', requestId: res.locals.requestId, clientAddress, destroy: () => sessionOps.destroy(req) });
      deps.events.publish({ type: 'logout', severity: 'info', sessionId, subject: auth.user.sub, requestId: res.locals.requestId, clientAddress });
    }
    res.clearCookie(deps.config.session.cookieName, { path: '/', secure: deps.config.session.isSecureCookie, sameSite: 'lax', httpOnly: true });
    res.set('Cache-Control', 'no-store').json({ logoutUrl });
  };
}

/** GET /auth/user: the profile for the SPA; never a token. */
export function createUserHandler(deps: AuthRouteDependencies) {
  return async (req: Request, res: Response): Promise<void> => {
    res.set('Cache-Control', 'no-store');
    const auth = await requireLiveSession(req, res, deps);
    const idleExpiresAt = deps.clock.now() + deps.config.session.idleTtlSeconds * 1000;
    res.json({
      sub: auth.user.sub,
      name: auth.user.name,
      email: auth.user.email,
      preferredUsername: auth.user.preferredUsername,
      groups: auth.user.groups,
      sessionExpiresAt: new Date(Math.min(idleExpiresAt, auth.absoluteExpiresAt)).toISOString(),
    });
  };
}

/**
 * The request's session, when it may still be used: throws Unauthenticated
 * without one, and ends (then throws) one past its absolute lifetime or used
 * from another client than it is bound to (SESSION_BINDING). For the /auth
 * routes that act as the session's user.
 */
export async function requireLiveSession(req: Request, res: Response, deps: AuthRouteDependencies): Promise<AuthenticatedSession> {
  const auth = req.session.auth;
  if (!auth) throw new Unauthenticated();
  const now = deps.clock.now();
  const clientAddress = clientAddressOf(req, deps.trustedProxies);
  const violation = findBindingViolation(deps.config.session.binding, auth.binding, req.get('user-agent'), clientAddress);
  if (auth.absoluteExpiresAt <= now || violation) {
    const sessionId = req.session.id;
    const requestId: string = res.locals.requestId;
    const reason = violation ? 'binding_failure' : 'absolute_timeout';
    await deps.sessionEnder.end({ sessionId, subject: auth.user.sub, reason, requestId, clientAddress, destroy: () => sessionOps.destroy(req) });
    if (violation) {
      deps.metrics.sessionBindingFailed(violation);
      deps.events.publish({ type: 'binding_failure', severity: 'critical', sessionId, subject: auth.user.sub, reason: violation, requestId, clientAddress });
    }
    throw new Unauthenticated(violation ? 'the session was used from another client' : 'the session has expired');
  }
  return auth;
}

/** CSRF for the /auth POST endpoints (SPEC section 5). */
export function createCsrfGuard(deps: AuthRouteDependencies) {
  return (req: Request, _res: Response, next: (error?: unknown) => void): void => {
    const violation = findCsrfViolation(
      req.method,
      { csrf: req.get('x-csrf'), origin: req.get('origin'), fetchSite: req.get('sec-fetch-site') },
      deps.config.server.publicOrigin,
    );
    if (!violation) return next();
    deps.metrics.csrfViolations.inc({ reason: violation });
    deps.events.publish({ type: 'csrf_violation', severity: 'warning', reason: violation, requestId: _res.locals.requestId, clientAddress: clientAddressOf(req, deps.trustedProxies) });
    next(new CsrfRejected(violation));
  };
}

