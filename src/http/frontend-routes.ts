import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import session from 'express-session';
import type { GatewayDependencies } from '../app';
import { publisherForFrontend } from '../events/security-events';
import { parseForwardedRequest, type ForwardedRequest, type ForwardedRequestProblem } from '../forwardauth/forwarded-request';
import { RouteMatcher } from '../forwardauth/route-matcher';
import type { SessionRateLimiter } from '../forwardauth/session-rate-limiter';
import type { GatewayFrontend } from '../frontends/served-frontends';
import { AudienceTokens } from '../oidc/audience-tokens';
import { ExpressSessionAdapter, type SessionCookieAttributes } from '../session/express-session-adapter';
import { FrontendSessionStore } from '../session/frontend-session-store';
import { SessionCookie } from '../session/session-cookie';
import type { SessionEnder } from '../session/session-end';
import { SessionRefresher } from '../session/session-refresher';
import type { TouchThrottle } from '../session/touch-throttle';
import { createBackchannelLogoutRoute } from './backchannel-logout-route';
import type { TrustedProxies } from './client-address';
import { createCallbackHandler, createCsrfGuard, createLoginHandler, createLogoutHandler, createUserHandler } from './login-routes';
import type { RequestObservation } from './request-observation';
import { createUserSessionsRoutes } from './user-sessions-routes';
import { createVerifyHandler } from './verify-route';

/*
 * One frontend's routes (SPEC section 10): its /verify and its /auth
 * endpoints over its own IdP client, cookie, lifetimes and routes. app.ts
 * builds them for each frontend it serves and picks one per request.
 */

const DEFAULT_REFRESH_LEASE_MS = 3000;
const TOUCH_INTERVAL_MS = 60_000;

/** Per request, the one frontend it belongs to; built once per frontend (and again only when a reload changes it). */
export interface FrontendHandlers {
  readonly verify: ReturnType<typeof createVerifyHandler>;
  readonly routes: express.Router;
}

/** What every frontend's handlers share: state keyed by session id, the observation, the limits. */
export interface SharedParts {
  readonly trustedProxies: TrustedProxies;
  readonly touchThrottle: TouchThrottle;
  readonly sessionEnder: SessionEnder;
  readonly observation: RequestObservation;
  readonly verifyRateLimiter: SessionRateLimiter | undefined;
  readonly authRateLimit: RequestHandler;
}


/** A session's idle expiry slides at most this often: well inside its idle timeout, and at least once a minute. */
export function touchIntervalMs(idleTtlSeconds: number): number {
  return Math.min(TOUCH_INTERVAL_MS, (idleTtlSeconds * 1000) / 4);
}

/** See the PUBLIC_URL comment where it is mounted. */
function assumeHttpsHop(req: Request, _res: Response, next: NextFunction): void {
  req.headers['x-forwarded-proto'] = 'https';
  next();
}

/**
 * The frontend a /verify call is for, from the proxy's X-Forwarded-Host and
 * the normalised X-Forwarded-Uri: the same path the route decision reads, so
 * "/admin/../shop" cannot pick one frontend and reach another's routes. A
 * request whose headers do not parse goes to any frontend, whose decision
 * refuses it with the usual 400.
 */
export function frontendOfForwarded(
  frontends: GatewayDependencies['frontends'],
  req: IncomingMessage,
): { readonly frontend: GatewayFrontend | undefined; readonly forwarded?: ForwardedRequest | ForwardedRequestProblem } {
  const all = frontends.all;
  const only = all[0] as GatewayFrontend;
  if (all.length === 1 && only.config.hosts === undefined && only.config.pathPrefix === '') return { frontend: only };
  // Parsed once: the chosen frontend's /verify decides on this same reading.
  const forwarded = parseForwardedRequest(req.headers);
  if (typeof forwarded === 'string') return { frontend: only, forwarded };
  return { frontend: frontends.select(forwarded.host, forwarded.normalisedPath), forwarded };
}

/** One frontend's /verify and /auth routes, over its own IdP client, cookie, lifetimes and routes. */
export function frontendHandlers(deps: GatewayDependencies, shared: SharedParts, frontend: GatewayFrontend): FrontendHandlers {
  const { metrics, logger, clock } = deps;
  const config = frontend.view;
  const { identityProvider } = frontend;
  const events = publisherForFrontend(deps.events, config.frontendsFile === undefined ? undefined : frontend.config.name);
  const sessions = new FrontendSessionStore(deps.sessions, frontend.config.name);
  const leaseMs = deps.refreshLeaseMs ?? DEFAULT_REFRESH_LEASE_MS;
  const refresher = new SessionRefresher({
    store: sessions,
    sessionEnder: shared.sessionEnder,
    identityProvider,
    metrics,
    events,
    logger,
    clock,
    leaseMs,
    waitBudgetMs: config.oidc.timeoutMs + leaseMs + 1000,
  });
  const verify = createVerifyHandler({
    publicOrigin: config.server.publicOrigin,
    binding: config.session.binding,
    routes: new RouteMatcher(config.routes),
    trustedProxies: shared.trustedProxies,
    cookie: new SessionCookie(config.session.cookieName, deps.sessionSecrets),
    store: sessions,
    refresher,
    authorizer: deps.authorizer,
    audienceTokens: new AudienceTokens(identityProvider, clock),
    bearerTokens: frontend.bearerTokens,
    touchThrottle: shared.touchThrottle.withInterval(touchIntervalMs(config.session.idleTtlSeconds)),
    sessionEnder: shared.sessionEnder,
    observation: shared.observation,
    rateLimiter: shared.verifyRateLimiter,
    metrics,
    events,
    logger,
    clock,
  });
  const authDeps = {
    config,
    sessionEnder: shared.sessionEnder,
    identityProvider,
    transactions: deps.transactions,
    trustedProxies: shared.trustedProxies,
    metrics,
    events,
    logger,
    clock,
  };
  const auth = `${frontend.config.pathPrefix}/auth`;
  const routes = express.Router();
  // Every /auth route is registered with its full path, so its template ("/auth/login") is known
  // even after an error has unwound the handlers (metrics and span names use it).
  // Back-channel logout comes from the IdP's servers, not browsers: it is not limited per client address.
  routes.use(auth, (req, res, next) => (req.path === '/backchannel-logout' ? next() : shared.authRateLimit(req, res, next)));
  // Server-to-server from the IdP: no CSRF header (no browser involved), and registered before
  // express-session so that it never reads, creates or touches a cookie session.
  routes.post(
    `${auth}/backchannel-logout`,
    createBackchannelLogoutRoute({
      identityProvider,
      sessions,
      logoutTokens: deps.transactions,
      trustedProxies: shared.trustedProxies,
      metrics,
      events,
      logger,
      clock,
    }),
  );
  // The cookie follows PUBLIC_URL, the origin the browser sees: a TLS-terminating proxy that does not
  // say X-Forwarded-Proto: https would otherwise make express-session drop the Secure cookie silently.
  if (config.session.isSecureCookie) routes.use(auth, assumeHttpsHop);
  const sessionCookie: SessionCookieAttributes = { httpOnly: true, secure: config.session.isSecureCookie, sameSite: 'lax', path: '/' };
  routes.use(
    auth,
    session({
      name: config.session.cookieName,
      secret: [...deps.sessionSecrets],
      store: new ExpressSessionAdapter(sessions, sessionCookie),
      resave: false,
      saveUninitialized: false,
      rolling: false,
      unset: 'destroy',
      proxy: config.session.isSecureCookie,
      genid: () => randomBytes(32).toString('base64url'),
      cookie: sessionCookie,
    }),
  );
  routes.get(`${auth}/login`, createLoginHandler(authDeps));
  routes.get(`${auth}/callback`, createCallbackHandler(authDeps));
  routes.post(`${auth}/logout`, createCsrfGuard(authDeps), createLogoutHandler(authDeps));
  routes.get(`${auth}/user`, createUserHandler(authDeps));
  const userSessions = createUserSessionsRoutes({ ...authDeps, sessions, sessionSecrets: deps.sessionSecrets });
  routes.get(`${auth}/sessions`, userSessions.list);
  routes.delete(`${auth}/sessions`, createCsrfGuard(authDeps), userSessions.endOthers);
  routes.delete(`${auth}/sessions/:handle`, createCsrfGuard(authDeps), userSessions.endOne);
  return { verify, routes };
}
