import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionBinding } from '../config/config';
import { AppError, DependencyUnavailable } from '../errors/app-error';
import type { Authorizer } from '../authz/authorizer';
import { actionFor } from '../authz/authorizer';
import type { EventPublisher } from '../events/security-events';
import { findCsrfViolation } from '../forwardauth/csrf';
import { parseForwardedRequest, type ForwardedRequest } from '../forwardauth/forwarded-request';
import { identityHeaders } from '../forwardauth/identity-headers';
import { upstreamCookie } from '../forwardauth/upstream-cookie';
import type { RouteMatcher } from '../forwardauth/route-matcher';
import type { RouteConfig } from '../config/routes';
import { findBindingViolation } from '../session/binding';
import type { SessionCookie } from '../session/session-cookie';
import type { SessionUser } from '../session/session-data';
import type { SessionRefresher } from '../session/session-refresher';
import type { Clock, SessionStore } from '../session/session-store';
import type { TokenCipher } from '../session/token-cipher';
import type { TouchThrottle } from '../session/touch-throttle';
import type { AudienceTokens } from '../oidc/audience-tokens';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import type { TrustedProxies } from './client-address';
import type { SessionRateLimiter } from '../forwardauth/session-rate-limiter';
import { requestIdFrom } from './request-id';
import { context, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { TRACER_NAME } from '../telemetry/tracer-name';

export interface VerifyDependencies {
  readonly publicOrigin: string;
  readonly binding: SessionBinding;
  readonly routes: RouteMatcher;
  readonly trustedProxies: TrustedProxies;
  readonly cookie: SessionCookie;
  readonly store: SessionStore;
  readonly cipher: TokenCipher;
  readonly refresher: SessionRefresher;
  readonly authorizer: Authorizer;
  readonly touchThrottle: TouchThrottle;
  readonly audienceTokens: AudienceTokens;
  readonly rateLimiter: SessionRateLimiter | undefined;
  readonly metrics: GatewayMetrics;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** Every `error` value a /verify refusal can carry; the README's table is checked against it. */
export const VERIFY_ERRORS = [
  'untrusted_proxy',
  'missing_forwarded_headers',
  'malformed_forwarded_headers',
  'ambiguous_path',
  'no_route',
  'csrf',
  'unauthenticated',
  'session_binding',
  'forbidden',
  'rate_limited',
  'dependency_unavailable',
] as const;
type VerifyError = (typeof VERIFY_ERRORS)[number];

/** What /verify answers; mapped to HTTP in `respond` only. */
type Outcome =
  | { readonly kind: 'allow'; readonly user: SessionUser | undefined; readonly accessToken: string | undefined }
  | { readonly kind: 'login'; readonly request: ForwardedRequest }
  | { readonly kind: 'refuse'; readonly status: 400 | 401 | 403; readonly error: VerifyError }
  | { readonly kind: 'rate_limited'; readonly retryAfterSeconds: number }
  | { readonly kind: 'unavailable'; readonly dependency: string; readonly retryAfterSeconds: number };

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Traefik ForwardAuth. Written against node:http directly (no express-session,
 * no per-request logger) because the proxy calls it before every API request:
 * it reads the signed cookie and the session record itself, writes to the
 * store only to slide the idle expiry once per interval, and fails closed.
 */
export function createVerifyHandler(deps: VerifyDependencies) {
  const tracer = trace.getTracer(TRACER_NAME);
  // Labelled children looked up once per (status, method) instead of hashing label objects per request.
  const series = new Map<string, ReturnType<typeof createSeries>>();
  const createSeries = (status: string, method: string) => ({
    verifyDuration: deps.metrics.verifyDuration.labels({ status }),
    httpDuration: deps.metrics.httpDuration.labels({ method, endpoint: '/verify', status }),
    httpRequests: deps.metrics.httpRequests.labels({ method, endpoint: '/verify', status }),
    otelAttributes: { status },
  });
  const seriesFor = (status: number, method: string) => {
    const key = `${status} ${method}`;
    let found = series.get(key);
    if (!found) series.set(key, (found = createSeries(String(status), method)));
    return found;
  };
  return async function verify(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    // The server span is made here, not by the HTTP instrumentation (which skips /verify): the
    // generic one computes dozens of attributes per request even when the trace is not sampled.
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(`${req.method ?? 'GET'} /verify`, { kind: SpanKind.SERVER, attributes: { 'http.route': '/verify' } }, parent);
    const spanContext = span.spanContext();
    const correlation = ['X-Request-ID', requestId];
    if (isSpanContextValid(spanContext)) correlation.push('X-Trace-ID', spanContext.traceId);
    let outcome: Outcome;
    try {
      // An unsampled span is not made current: Redis and breaker calls then skip building child
      // spans that would be dropped anyway. The trace id still goes out in X-Trace-ID.
      outcome = await (span.isRecording() ? context.with(trace.setSpan(parent, span), () => decide(deps, req, requestId)) : decide(deps, req, requestId));
    } catch (error) {
      outcome = outcomeOfError(deps, error, requestId);
    }
    const status = respondSafely(deps, res, outcome, correlation, requestId);
    if (span.isRecording()) {
      span.setAttributes({ 'http.request.method': req.method ?? 'GET', 'http.response.status_code': status, 'bff.request_id': requestId });
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
    const seconds = (performance.now() - started) / 1000;
    const series = seriesFor(status, req.method ?? 'GET');
    series.verifyDuration.observe(seconds);
    series.httpDuration.observe(seconds);
    series.httpRequests.inc();
    deps.metrics.otel.forwardAuthDuration.record(seconds * 1000, series.otelAttributes);
  };
}

async function decide(deps: VerifyDependencies, req: IncomingMessage, requestId: string): Promise<Outcome> {
  const remoteAddress = req.socket.remoteAddress;
  if (deps.trustedProxies.isRestricted && !deps.trustedProxies.isTrusted(remoteAddress)) {
    return { kind: 'refuse', status: 403, error: 'untrusted_proxy' };
  }
  const request = parseForwardedRequest(req.headers);
  if (typeof request === 'string') return { kind: 'refuse', status: 400, error: request };
  const route = deps.routes.match(request.host, request.normalisedPath);
  if (!route) return { kind: 'refuse', status: 403, error: 'no_route' };
  if (route.auth === 'public') return { kind: 'allow', user: undefined, accessToken: undefined };

  const csrf = findCsrfViolation(
    request.method,
    { csrf: header(req, 'x-csrf'), origin: header(req, 'origin'), fetchSite: header(req, 'sec-fetch-site') },
    deps.publicOrigin,
  );
  const clientAddressOf = () => deps.trustedProxies.clientAddress(header(req, 'x-forwarded-for'), remoteAddress);
  if (csrf) {
    deps.metrics.csrfViolations.inc({ reason: csrf });
    deps.events.publish({ type: 'csrf_violation', severity: 'warning', reason: csrf, requestId, clientAddress: clientAddressOf(), route: route.name });
    return { kind: 'refuse', status: 403, error: 'csrf' };
  }

  // No cookie, no Redis: anonymous traffic costs the store nothing.
  const sessionId = deps.cookie.sessionIdFrom(req.headers.cookie);
  if (!sessionId) return { kind: 'login', request };

  const validationStarted = performance.now();
  const record = await deps.store.get(sessionId);
  const auth = record?.auth;
  if (!record || !auth) return { kind: 'login', request };
  const now = deps.clock.now();
  if (auth.absoluteExpiresAt <= now) {
    await endSession(deps, sessionId, 'absolute_timeout', auth.user.sub);
    return { kind: 'login', request };
  }
  // Only ua+ip binding looks at the address; the others never compute it.
  const clientAddress = deps.binding === 'ua+ip' ? clientAddressOf() : undefined;
  const violation = findBindingViolation(deps.binding, auth.binding, header(req, 'user-agent'), clientAddress);
  if (violation) {
    await endSession(deps, sessionId, 'binding_failure', auth.user.sub);
    deps.metrics.sessionBindingFailed(violation);
    deps.events.publish({ type: 'binding_failure', severity: 'critical', sessionId, subject: auth.user.sub, reason: violation, requestId, clientAddress: clientAddressOf() });
    return { kind: 'refuse', status: 401, error: 'session_binding' };
  }
  if (deps.rateLimiter) {
    const retryAfterSeconds = deps.rateLimiter.take(sessionId, now);
    if (retryAfterSeconds > 0) {
      deps.metrics.rateLimitViolations.inc({ client_id: 'verify_session' });
      return { kind: 'rate_limited', retryAfterSeconds };
    }
  }
  const tokens = deps.cipher.open(auth.tokens);
  if (!tokens) {
    // Sealed with a secret that is no longer configured: the session cannot be used.
    await endSession(deps, sessionId, 'undecryptable', auth.user.sub);
    return { kind: 'login', request };
  }
  deps.metrics.otel.sessionValidationDuration.record(performance.now() - validationStarted);
  const fresh = await deps.refresher.ensureFresh(sessionId, record, tokens, route.name);
  if (fresh.kind === 'ended') return { kind: 'login', request };
  if (fresh.kind === 'unavailable') return { kind: 'unavailable', dependency: 'idp', retryAfterSeconds: fresh.retryAfterSeconds };

  if (route.authz === 'pdp' && !(await isAllowedByPolicy(deps, route, request, auth.user, sessionId, requestId))) {
    return { kind: 'refuse', status: 403, error: 'forbidden' };
  }
  if (deps.touchThrottle.shouldTouch(sessionId, now)) {
    deps.store.touch(sessionId, fresh.record).catch((error: unknown) => {
      deps.logger.warn({ request_id: requestId, err: (error as Error).message }, 'could not slide the session expiry');
    });
  }
  const bearer = route.audience ? await deps.audienceTokens.tokenFor(sessionId, fresh.tokens, route.audience) : fresh.tokens.accessToken;
  return { kind: 'allow', user: auth.user, accessToken: bearer };
}

async function isAllowedByPolicy(
  deps: VerifyDependencies,
  route: RouteConfig,
  request: ForwardedRequest,
  user: SessionUser,
  sessionId: string,
  requestId: string,
): Promise<boolean> {
  const allowed = await deps.authorizer.allows({
    subject: { sub: user.sub, groups: user.groups, email: user.email },
    resource: route.name,
    action: actionFor(request.method),
    method: request.method,
    path: request.normalisedPath,
  });
  if (!allowed) {
    deps.events.publish({ type: 'authz_denied', severity: 'warning', sessionId, subject: user.sub, route: route.name, requestId });
  }
  return allowed;
}

async function endSession(deps: VerifyDependencies, sessionId: string, reason: string, subject: string): Promise<void> {
  await deps.store.destroy(sessionId);
  deps.touchThrottle.forget(sessionId);
  deps.metrics.sessionsDestroyed.inc({ reason });
  deps.events.publish({ type: 'session_destroyed', severity: 'info', sessionId, subject, reason });
}

function outcomeOfError(deps: VerifyDependencies, error: unknown, requestId: string): Outcome {
  if (error instanceof DependencyUnavailable) {
    return { kind: 'unavailable', dependency: error.dependency, retryAfterSeconds: error.retryAfterSeconds ?? 5 };
  }
  if (error instanceof AppError && error.expose && error.status < 500) {
    const status = error.status === 401 ? 401 : error.status === 403 ? 403 : 400;
    return { kind: 'refuse', status, error: status === 401 ? 'unauthenticated' : status === 403 ? 'forbidden' : 'malformed_forwarded_headers' };
  }
  // Unknown failure: never allow. 503 tells the proxy to retry rather than show a broken page forever.
  deps.logger.error({ request_id: requestId, err: error }, 'verify failed unexpectedly');
  return { kind: 'unavailable', dependency: 'gateway', retryAfterSeconds: 1 };
}

/** A value the IdP sent that cannot go into a header (say a token with CR/LF) becomes a 503, not a crash. */
function respondSafely(deps: VerifyDependencies, res: ServerResponse, outcome: Outcome, correlation: string[], requestId: string): number {
  try {
    return respond(deps, res, outcome, correlation);
  } catch (error) {
    deps.logger.error({ request_id: requestId, err: (error as Error).message }, 'verify answer could not be written');
    if (res.headersSent) {
      res.destroy();
      return 500;
    }
    return respond(deps, res, { kind: 'unavailable', dependency: 'gateway', retryAfterSeconds: 1 }, correlation);
  }
}

/**
 * `correlation` is X-Request-ID (and X-Trace-ID) as a flat header list: every
 * answer is written with one writeHead, since mixing setHeader with an array
 * writeHead makes Node merge the two header sets on the hottest path.
 */
function respond(deps: VerifyDependencies, res: ServerResponse, outcome: Outcome, correlation: string[]): number {
  switch (outcome.kind) {
    case 'allow': {
      // The client's cookies without the gateway's own, for the proxy to put in place of the client's Cookie.
      const cookie = upstreamCookie(res.req.headers.cookie, deps.cookie.name);
      res.writeHead(200, identityHeaders(outcome.user, outcome.accessToken, 'Cookie', cookie, ...correlation, 'Cache-Control', 'no-store')).end();
      return 200;
    }
    case 'login':
      if (outcome.request.isNavigation) {
        const location = `${deps.publicOrigin}/auth/login?returnTo=${encodeURIComponent(outcome.request.uri)}`;
        res.writeHead(302, [...correlation, 'Location', location, 'Cache-Control', 'no-store']).end();
        return 302;
      }
      return json(res, 401, { error: 'unauthenticated', login: `${deps.publicOrigin}/auth/login` }, correlation);
    case 'refuse':
      return json(res, outcome.status, { error: outcome.error }, correlation);
    case 'rate_limited':
      return json(res, 429, { error: 'rate_limited' }, [...correlation, 'Retry-After', String(outcome.retryAfterSeconds)]);
    case 'unavailable':
      return json(res, 503, { error: 'dependency_unavailable', dependency: outcome.dependency }, [
        ...correlation,
        'Retry-After',
        String(outcome.retryAfterSeconds),
      ]);
  }
}

function json(res: ServerResponse, status: number, body: object, headers: string[]): number {
  res.writeHead(status, [...headers, 'Content-Type', JSON_TYPE, 'Cache-Control', 'no-store']).end(JSON.stringify(body));
  return status;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
