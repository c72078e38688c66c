import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authorizer } from '../authz/authorizer';
import type { SessionBinding } from '../config/config';
import type { EventPublisher } from '../events/security-events';
import { parseForwardedRequest, type ForwardedRequest, type ForwardedRequestProblem } from '../forwardauth/forwarded-request';
import { identityHeaders } from '../forwardauth/identity-headers';
import type { RouteMatcher } from '../forwardauth/route-matcher';
import type { SessionRateLimiter } from '../forwardauth/session-rate-limiter';
import { upstreamCookie } from '../forwardauth/upstream-cookie';
import { decideVerify, type VerifyDecision, type VerifyIo, type VerifyOutcome, type VerifyRequest } from '../forwardauth/verify-decision';
import type { AudienceTokens } from '../oidc/audience-tokens';
import type { BearerTokenCheck, BearerTokenVerifier } from '../oidc/bearer-token-verifier';
import type { SessionCookie } from '../session/session-cookie';
import type { StoredSession } from '../session/session-data';
import type { SessionEnder } from '../session/session-end';
import type { SessionRefresher } from '../session/session-refresher';
import type { SessionStore } from '../session/session-store';
import type { Clock } from '../shared/clock';
import type { TouchThrottle } from '../session/touch-throttle';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { TrustedProxies } from './client-address';
import { AnswerBatch } from './answer-batch';
import { toProblem } from './error-handler';
import type { ObservedRequest, RequestObservation } from './request-observation';

/** X-Forwarded-* as parseForwardedRequest reads them: the original request, or what is wrong with them. */
type ParsedForwardedRequest = ForwardedRequest | ForwardedRequestProblem;

export { VERIFY_ERRORS } from '../forwardauth/verify-decision';

export interface VerifyDependencies {
  readonly publicOrigin: string;
  readonly binding: SessionBinding;
  readonly routes: RouteMatcher;
  readonly trustedProxies: TrustedProxies;
  readonly cookie: SessionCookie;
  readonly store: SessionStore;
  readonly refresher: SessionRefresher;
  readonly authorizer: Authorizer;
  readonly touchThrottle: TouchThrottle;
  readonly audienceTokens: AudienceTokens;
  /** API clients' own JWTs on `bearer: true` routes. */
  readonly bearerTokens: BearerTokenVerifier;
  readonly rateLimiter: SessionRateLimiter | undefined;
  readonly sessionEnder: SessionEnder;
  readonly observation: RequestObservation;
  readonly metrics: GatewayMetrics;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly clock: Clock;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const ENDPOINT = '/verify';

/**
 * Traefik ForwardAuth, answered from node:http ahead of Express because the
 * proxy calls it before every API request. The decision is the pure
 * `decideVerify`; this route performs the I/O it asks for, answers, and
 * records what the answer stands for (metrics, events, the idle-expiry slide).
 */
export function createVerifyHandler(deps: VerifyDependencies) {
  const policy = {
    routes: deps.routes,
    publicOrigin: deps.publicOrigin,
    binding: deps.binding,
    isRateLimited: deps.rateLimiter !== undefined,
    now: () => deps.clock.now(),
  };
  // Labelled children looked up once per status.
  const verifyDurations = new Map<number, ReturnType<GatewayMetrics['verifyDuration']['labels']>>();
  const otelAttributes = new Map<number, { readonly status: string }>();

  const answers = new AnswerBatch(deps.logger);

  /** Everything after the decision: what it stands for, the answer, the span and the metrics. */
  const finish = (req: IncomingMessage, res: ServerResponse, outcome: VerifyOutcome, observed: ObservedRequest, started: number): void => {
    record(deps, req, outcome, observed.requestId);
    const status = respondSafely(deps, res, outcome, observed);
    observed.end(status, ENDPOINT);
    const milliseconds = performance.now() - started;
    let duration = verifyDurations.get(status);
    if (!duration) verifyDurations.set(status, (duration = deps.metrics.verifyDuration.labels({ status: String(status) })));
    duration.observe(milliseconds / 1000);
    let attributes = otelAttributes.get(status);
    if (!attributes) otelAttributes.set(status, (attributes = { status: String(status) }));
    deps.metrics.otel.forwardAuthDuration.record(milliseconds, attributes);
  };

  /**
   * Decides before it returns when the decision needs no I/O that waits (a
   * session in the cache, a token outside its refresh window: the steady
   * state), and answers with the other answers of this turn of the event loop
   * (AnswerBatch); otherwise returns the promise of the answer. `forwarded`:
   * the request's X-Forwarded-* already parsed by whoever picked this handler.
   */
  return function verify(req: IncomingMessage, res: ServerResponse, forwarded?: ParsedForwardedRequest): void | Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    // The gateway's own server span: the generic HTTP instrumentation (which skips /verify) computes dozens of
    // attributes per request even when the trace is not sampled.
    const observed = deps.observation.start(method, req.headers, { isTraced: true, spanName: `${method} ${ENDPOINT}` });
    let outcome: VerifyOutcome | Promise<VerifyOutcome>;
    try {
      outcome = observed.within(() => run(deps, decideVerify(requestFacts(deps, req, forwarded), policy), observed.requestId));
    } catch (error) {
      outcome = outcomeOfError(deps, error, observed.requestId);
    }
    if (!(outcome instanceof Promise)) return answers.defer(res, () => finish(req, res, outcome, observed, started));
    return outcome.then(
      (settled) => finish(req, res, settled, observed, started),
      (error: unknown) => finish(req, res, outcomeOfError(deps, error, observed.requestId), observed, started),
    );
  };
}

/** Everything the decision needs that the request alone tells, without I/O. */
function requestFacts(deps: VerifyDependencies, req: IncomingMessage, forwarded = parseForwardedRequest(req.headers)): VerifyRequest {
  const remoteAddress = req.socket.remoteAddress;
  return {
    isFromTrustedPeer: !deps.trustedProxies.isRestricted || deps.trustedProxies.isTrusted(remoteAddress),
    forwarded,
    csrfHeaders: { csrf: header(req, 'x-csrf'), origin: header(req, 'origin'), fetchSite: header(req, 'sec-fetch-site') },
    sessionId: deps.cookie.sessionIdFrom(req.headers.cookie),
    userAgent: header(req, 'user-agent'),
    clientAddress: () => deps.trustedProxies.clientAddress(header(req, 'x-forwarded-for'), remoteAddress),
    bearerToken: () => bearerCredentials(header(req, 'authorization')),
  };
}

/**
 * The credentials after a `Bearer` scheme (case-insensitive, RFC 9110), left
 * for the verifier to judge; undefined without the header or with another
 * scheme (Basic), which leaves the request to the session rules.
 */
function bearerCredentials(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 6 || authorization.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const rest = authorization.slice(6);
  if (rest !== '' && rest[0] !== ' ' && rest[0] !== '\t') return undefined;
  return rest.trim();
}

/** What `performNow` answers when the I/O has to wait: the decision goes on asynchronously. */
const MUST_WAIT = Symbol('must wait');

/**
 * Drives the decision: each I/O it yields is performed here and its result
 * handed back. As long as every I/O is answered from memory (`performNow`) it
 * runs to the end synchronously; the first one that has to wait hands the
 * rest over to `runAsync`.
 */
function run(deps: VerifyDependencies, decision: VerifyDecision, requestId: string): VerifyOutcome | Promise<VerifyOutcome> {
  let step = decision.next();
  while (!step.done) {
    const answer = performNow(deps, step.value);
    if (answer === MUST_WAIT) return runAsync(deps, decision, step.value, requestId);
    step = decision.next(answer);
  }
  return step.value;
}

async function runAsync(deps: VerifyDependencies, decision: VerifyDecision, pending: VerifyIo, requestId: string): Promise<VerifyOutcome> {
  let step = decision.next(await perform(deps, pending, requestId));
  while (!step.done) step = decision.next(await perform(deps, step.value, requestId));
  return step.value;
}

/** The answer to an I/O when it is known without waiting: a cached session, a token that needs no refresh, the in-memory rate limit. */
function performNow(deps: VerifyDependencies, io: VerifyIo): unknown {
  switch (io.io) {
    case 'read_session': {
      const validationStarted = performance.now();
      const record = deps.store.peek?.(io.sessionId);
      if (record === undefined) return MUST_WAIT;
      deps.metrics.otel.sessionValidationDuration.record(performance.now() - validationStarted);
      return record;
    }
    case 'take_rate_limit':
      return deps.rateLimiter?.take(io.sessionId, deps.clock.now()) ?? 0;
    case 'refresh':
      return deps.refresher.freshNow(io.record, io.tokens) ?? MUST_WAIT;
    default:
      return MUST_WAIT;
  }
}

async function perform(deps: VerifyDependencies, io: VerifyIo, requestId: string): Promise<unknown> {
  switch (io.io) {
    case 'read_session': {
      const validationStarted = performance.now();
      const record = await deps.store.get(io.sessionId);
      // Opened whole by the store (SessionSealer): a record sealed with no current secret is no session at all.
      deps.metrics.otel.sessionValidationDuration.record(performance.now() - validationStarted);
      return record;
    }
    case 'end_session':
      return deps.sessionEnder.end({ sessionId: io.sessionId, subject: io.subject, reason: io.reason, requestId });
    case 'take_rate_limit':
      return deps.rateLimiter?.take(io.sessionId, deps.clock.now()) ?? 0;
    case 'refresh':
      return deps.refresher.ensureFresh(io.sessionId, io.record, io.tokens, io.route);
    case 'authorize':
      return deps.authorizer.allows(io.input);
    case 'exchange':
      return deps.audienceTokens.tokenFor(io.sessionId, io.tokens, io.audience);
    case 'verify_bearer': {
      const check: BearerTokenCheck = await deps.bearerTokens.verify(io.token, io.audience);
      // status is one of valid, invalid, expired: the label stays bounded.
      deps.metrics.tokenValidation.inc({ token_type: 'access_token', status: check.kind });
      if (check.kind !== 'valid') deps.logger.debug({ request_id: requestId, problem: check.problem }, 'bearer token refused');
      return check;
    }
  }
}

/** What an outcome stands for, besides the answer: metrics, security events, the idle-expiry slide. */
function record(deps: VerifyDependencies, req: IncomingMessage, outcome: VerifyOutcome, requestId: string): void {
  if (outcome.kind === 'allow' && outcome.session) slideIdleExpiry(deps, outcome.session.id, outcome.session.record, requestId);
  // The PDP counts its own decisions; a route's allow rules are counted here, once per request.
  if (outcome.kind === 'allow' && outcome.allowedByRules) {
    deps.metrics.authzRequests.inc({ resource: outcome.allowedByRules.route, action: outcome.allowedByRules.action, decision: 'allow' });
  }
  if (outcome.kind === 'rate_limited') deps.metrics.rateLimitViolations.inc({ client_id: 'verify_session' });
  if (outcome.kind !== 'refuse' || !outcome.because) return;
  const cause = outcome.because;
  const clientAddress = () => deps.trustedProxies.clientAddress(header(req, 'x-forwarded-for'), req.socket.remoteAddress);
  switch (cause.kind) {
    case 'csrf':
      deps.metrics.csrfViolations.inc({ reason: cause.violation });
      deps.events.publish({ type: 'csrf_violation', severity: 'warning', reason: cause.violation, requestId, clientAddress: clientAddress(), route: cause.route });
      return;
    case 'binding':
      deps.metrics.sessionBindingFailed(cause.violation);
      deps.events.publish({ type: 'binding_failure', severity: 'critical', sessionId: cause.sessionId, subject: cause.subject, reason: cause.violation, requestId, clientAddress: clientAddress() });
      return;
    case 'policy':
      if (cause.decidedBy === 'allow_rules') deps.metrics.authzRequests.inc({ resource: cause.route, action: cause.action, decision: 'deny' });
      deps.events.publish({
        type: 'authz_denied',
        severity: 'warning',
        ...(cause.sessionId === undefined ? {} : { sessionId: cause.sessionId }),
        subject: cause.subject,
        route: cause.route,
        reason: cause.reason,
        requestId,
      });
      return;
  }
}

/** At most once per interval per session, in the background: the answer never waits on it. */
function slideIdleExpiry(deps: VerifyDependencies, sessionId: string, sessionRecord: StoredSession, requestId: string): void {
  if (!deps.touchThrottle.shouldTouch(sessionId, deps.clock.now())) return;
  deps.store.touch(sessionId, sessionRecord).catch((error: unknown) => {
    deps.logger.warn({ request_id: requestId, err: (error as Error).message }, 'could not slide the session expiry');
  });
}

/** The error mapping of the Express routes (`toProblem`), in /verify's terms; whatever it cannot place is a 503, never an allow. */
function outcomeOfError(deps: VerifyDependencies, error: unknown, requestId: string): VerifyOutcome {
  const problem = toProblem(error);
  if (problem.status === 401) return { kind: 'refuse', status: 401, error: 'unauthenticated' };
  if (problem.status === 403) return { kind: 'refuse', status: 403, error: 'forbidden' };
  if (problem.status === 503) return { kind: 'unavailable', retryAfterSeconds: problem.retryAfterSeconds ?? 5 };
  deps.logger.error({ request_id: requestId, err: error }, 'verify failed unexpectedly');
  // A 503 tells the proxy to retry rather than show a broken page forever.
  return { kind: 'unavailable', retryAfterSeconds: 1 };
}

/** A value the IdP sent that cannot go into a header (say a token with CR/LF) becomes a 503, not a crash. */
function respondSafely(deps: VerifyDependencies, res: ServerResponse, outcome: VerifyOutcome, observed: ObservedRequest): number {
  try {
    return respond(deps, res, outcome, observed.correlationHeaders);
  } catch (error) {
    deps.logger.error({ request_id: observed.requestId, err: (error as Error).message }, 'verify answer could not be written');
    if (res.headersSent) {
      res.destroy();
      return 500;
    }
    return respond(deps, res, { kind: 'unavailable', retryAfterSeconds: 1 }, observed.correlationHeaders);
  }
}

/**
 * Every answer is written with one writeHead of a flat header list: mixing
 * setHeader with an array writeHead makes Node merge the two header sets on
 * the hottest path.
 */
function respond(deps: VerifyDependencies, res: ServerResponse, outcome: VerifyOutcome, correlation: readonly string[]): number {
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
      // RFC 6750 section 3: the client learns that its token, not its session, was refused.
      if (outcome.error === 'invalid_token') return json(res, 401, { error: 'invalid_token' }, [...correlation, 'WWW-Authenticate', 'Bearer error="invalid_token"']);
      return json(res, outcome.status, { error: outcome.error }, correlation);
    case 'rate_limited':
      return json(res, 429, { error: 'rate_limited' }, [...correlation, 'Retry-After', String(outcome.retryAfterSeconds)]);
    case 'unavailable':
      return json(res, 503, { error: 'dependency_unavailable' }, [...correlation, 'Retry-After', String(outcome.retryAfterSeconds)]);
  }
}

function json(res: ServerResponse, status: number, body: object, headers: readonly string[]): number {
  res.writeHead(status, [...headers, 'Content-Type', JSON_TYPE, 'Cache-Control', 'no-store']).end(JSON.stringify(body));
  return status;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
