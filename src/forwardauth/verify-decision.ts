import type { AuthorizationInput } from '../authz/authorizer';
import { actionFor } from '../authz/authorizer';
import type { SessionBinding } from '../config/config';
import type { RouteConfig } from '../config/routes';
import { findBindingViolation, type BindingViolation } from '../session/binding';
import type { SessionEndReason } from '../session/session-end';
import type { StoredSession, SessionUser, TokenSet } from '../session/session-data';
import type { FreshnessOutcome } from '../session/session-refresher';
import type { BearerTokenCheck } from '../oidc/bearer-token-verifier';
import { checkAllowRules, type AllowDenialReason } from './allow-rules';
import { findCsrfViolation, type CsrfViolation } from './csrf';
import type { ForwardedRequest, ForwardedRequestProblem } from './forwarded-request';
import type { RouteMatcher } from './route-matcher';

/** Every `error` value a /verify refusal can carry; the documentation's table is checked against it. */
export const VERIFY_ERRORS = [
  'untrusted_proxy',
  'missing_forwarded_headers',
  'malformed_forwarded_headers',
  'ambiguous_path',
  'no_route',
  'csrf',
  'unauthenticated',
  'invalid_token',
  'session_binding',
  'forbidden',
  'rate_limited',
  'dependency_unavailable',
] as const;
export type VerifyError = (typeof VERIFY_ERRORS)[number];

/** What /verify answers; the route maps it to HTTP and to the events and metrics it stands for. */
export type VerifyOutcome =
  | {
      readonly kind: 'allow';
      readonly user: SessionUser | undefined;
      readonly accessToken: string | undefined;
      readonly session?: AllowedSession;
      /** Set when a route's `allow:` rules alone decided (no PDP asked): counted as that route's allow. */
      readonly allowedByRules?: RuleDecision;
    }
  | { readonly kind: 'login'; readonly request: ForwardedRequest }
  | { readonly kind: 'refuse'; readonly status: 400 | 401 | 403; readonly error: VerifyError; readonly because?: RefusalCause }
  | { readonly kind: 'rate_limited'; readonly retryAfterSeconds: number }
  | { readonly kind: 'unavailable'; readonly retryAfterSeconds: number };

/** The session behind an allowed request: the route slides its idle expiry. */
export interface AllowedSession {
  readonly id: string;
  readonly record: StoredSession;
}

/** A policy decision as bff_authz_requests_total labels it. */
export interface RuleDecision {
  readonly route: string;
  readonly action: AuthorizationInput['action'];
}

/** Why a request was refused, for the security event and the metric the route records. */
export type RefusalCause =
  | { readonly kind: 'csrf'; readonly violation: CsrfViolation; readonly route: string }
  | { readonly kind: 'binding'; readonly violation: BindingViolation; readonly sessionId: string; readonly subject: string }
  | {
      readonly kind: 'policy';
      /** Who said no: the route's `allow:` rules (the route counts the deny) or the PDP (which counts its own). */
      readonly decidedBy: 'allow_rules' | 'pdp';
      readonly reason: AllowDenialReason | 'pdp_denied';
      /** Undefined for an API client's bearer token. */
      readonly sessionId: string | undefined;
      readonly subject: string;
      readonly route: string;
      readonly action: AuthorizationInput['action'];
    };

/** The I/O the decision needs next; the route performs it and hands back the result named in each comment. */
export type VerifyIo =
  /** -> StoredSession | undefined: the store opened it, or it is no session */
  | { readonly io: 'read_session'; readonly sessionId: string }
  /** -> void: the one way a session ends (store, caches, metric, event). */
  | { readonly io: 'end_session'; readonly sessionId: string; readonly subject: string; readonly reason: SessionEndReason }
  /** -> seconds to wait, 0 when the request may pass */
  | { readonly io: 'take_rate_limit'; readonly sessionId: string }
  /** -> FreshnessOutcome */
  | { readonly io: 'refresh'; readonly sessionId: string; readonly record: StoredSession; readonly tokens: TokenSet; readonly route: string }
  /** -> boolean: allowed */
  | { readonly io: 'authorize'; readonly input: AuthorizationInput }
  /** -> the token for the audience */
  | { readonly io: 'exchange'; readonly sessionId: string; readonly tokens: TokenSet; readonly audience: string }
  /** -> BearerTokenCheck; rejects when the IdP's keys cannot be had (503). */
  | { readonly io: 'verify_bearer'; readonly token: string; readonly audience: string };

/** What the route knows of the request before any I/O; all of it is computed from the request alone. */
export interface VerifyRequest {
  readonly isFromTrustedPeer: boolean;
  readonly forwarded: ForwardedRequest | ForwardedRequestProblem;
  readonly csrfHeaders: { readonly csrf: string | undefined; readonly origin: string | undefined; readonly fetchSite: string | undefined };
  /** From a cookie whose signature verified; undefined without one. */
  readonly sessionId: string | undefined;
  readonly userAgent: string | undefined;
  /** Only `ua+ip` binding needs the client address, so it is computed only when asked for. */
  readonly clientAddress: () => string | undefined;
  /**
   * The credentials of an `Authorization: Bearer ...` header the client sent
   * (anything after the scheme, unchecked), undefined without one or with
   * another scheme; read only on `bearer: true` routes.
   */
  readonly bearerToken: () => string | undefined;
}

export interface VerifyPolicy {
  readonly routes: RouteMatcher;
  readonly publicOrigin: string;
  readonly binding: SessionBinding;
  readonly isRateLimited: boolean;
  readonly now: () => number;
}

export type VerifyDecision = Generator<VerifyIo, VerifyOutcome, unknown>;

/**
 * The ForwardAuth decision (SPEC section 4) as pure code: it reads nothing
 * and writes nothing itself, it yields the I/O it needs next (session,
 * refresh, PDP, exchange, ending a session, an API client's token) and
 * returns the outcome. Its order is the contract: the cheap refusals first,
 * then an API client's own token (no cookie, no CSRF), then no Redis without
 * a cookie, then the session's own limits, then the IdP, then the policy:
 * `allow:` rules before the PDP, which is not asked when they refuse.
 */
export function* decideVerify(request: VerifyRequest, policy: VerifyPolicy): VerifyDecision {
  if (!request.isFromTrustedPeer) return refuse(403, 'untrusted_proxy');
  const { forwarded } = request;
  if (typeof forwarded === 'string') return refuse(400, forwarded);
  const route = policy.routes.match(forwarded.host, forwarded.normalisedPath);
  if (!route) return refuse(403, 'no_route');
  if (route.auth === 'public') return { kind: 'allow', user: undefined, accessToken: undefined };

  // An API client (not a browser: its token is not sent by itself, so there is no CSRF to check). A valid
  // session cookie takes precedence; without a bearer token the route behaves as any session route.
  if (route.bearer && !request.sessionId) {
    const token = request.bearerToken();
    if (token !== undefined) return yield* decideBearer(route, route.bearer.audience, forwarded, token);
  }

  const csrf = findCsrfViolation(forwarded.method, request.csrfHeaders, policy.publicOrigin);
  if (csrf) return refuse(403, 'csrf', { kind: 'csrf', violation: csrf, route: route.name });

  // No cookie, no Redis: anonymous traffic costs the store nothing.
  const { sessionId } = request;
  if (!sessionId) return { kind: 'login', request: forwarded };
  const record = yield* perform<StoredSession | undefined>({ io: 'read_session', sessionId });
  if (!record) return { kind: 'login', request: forwarded };
  const { auth } = record;

  if (auth.absoluteExpiresAt <= policy.now()) {
    yield* perform<void>({ io: 'end_session', sessionId, subject: auth.user.sub, reason: 'absolute_timeout' });
    return { kind: 'login', request: forwarded };
  }
  const clientAddress = policy.binding === 'ua+ip' ? request.clientAddress() : undefined;
  const violation = findBindingViolation(policy.binding, auth.binding, request.userAgent, clientAddress);
  if (violation) {
    yield* perform<void>({ io: 'end_session', sessionId, subject: auth.user.sub, reason: 'binding_failure' });
    return refuse(401, 'session_binding', { kind: 'binding', violation, sessionId, subject: auth.user.sub });
  }
  if (policy.isRateLimited) {
    const retryAfterSeconds = yield* perform<number>({ io: 'take_rate_limit', sessionId });
    if (retryAfterSeconds > 0) return { kind: 'rate_limited', retryAfterSeconds };
  }
  const fresh = yield* perform<FreshnessOutcome>({ io: 'refresh', sessionId, record, tokens: auth.tokens, route: route.name });
  if (fresh.kind === 'ended') return { kind: 'login', request: forwarded };
  if (fresh.kind === 'unavailable') return { kind: 'unavailable', retryAfterSeconds: fresh.retryAfterSeconds };

  // Most routes have neither rules nor a PDP: the hot path skips the policy step altogether.
  const access = route.allow || route.authz === 'pdp' ? yield* authorize(route, forwarded, auth.user, sessionId) : NO_POLICY;
  if (!access.isAllowed) return access.refusal;
  const accessToken = route.audience
    ? yield* perform<string>({ io: 'exchange', sessionId, tokens: fresh.tokens, audience: route.audience })
    : fresh.tokens.accessToken;
  return withRuleDecision({ kind: 'allow', user: auth.user, accessToken, session: { id: sessionId, record: fresh.record } }, access.allowedByRules);
}

/**
 * An API client's own JWT on a `bearer: true` route: checked against the
 * IdP's keys (I/O), then the same policy as a session's user, with the
 * identity from the token's claims. The token itself goes upstream; the
 * route's `audience` exchange is for sessions only.
 */
function* decideBearer(route: RouteConfig, audience: string, request: ForwardedRequest, token: string): VerifyDecision {
  const check = yield* perform<BearerTokenCheck>({ io: 'verify_bearer', token, audience });
  if (check.kind !== 'valid') return refuse(401, 'invalid_token');
  const access = yield* authorize(route, request, check.user, undefined);
  if (!access.isAllowed) return access.refusal;
  return withRuleDecision({ kind: 'allow', user: check.user, accessToken: token }, access.allowedByRules);
}

type AccessCheck =
  | { readonly isAllowed: false; readonly refusal: VerifyOutcome }
  | { readonly isAllowed: true; readonly allowedByRules: RuleDecision | undefined };

const NO_POLICY: AccessCheck = { isAllowed: true, allowedByRules: undefined };

/** The route's `allow:` rules, then its PDP: both must allow, and the PDP is not asked when the rules refuse. */
function* authorize(route: RouteConfig, request: ForwardedRequest, user: SessionUser, sessionId: string | undefined): Generator<VerifyIo, AccessCheck, unknown> {
  const action = actionFor(request.method);
  const denied = (decidedBy: 'allow_rules' | 'pdp', reason: AllowDenialReason | 'pdp_denied'): AccessCheck => ({
    isAllowed: false,
    refusal: refuse(403, 'forbidden', { kind: 'policy', decidedBy, reason, sessionId, subject: user.sub, route: route.name, action }),
  });
  if (route.allow) {
    const verdict = checkAllowRules(route.allow, user);
    if (!verdict.isAllowed) return denied('allow_rules', verdict.reason);
  }
  if (route.authz === 'pdp') {
    const isAllowed = yield* perform<boolean>({ io: 'authorize', input: authorizationInput(route, request, user) });
    return isAllowed ? { isAllowed: true, allowedByRules: undefined } : denied('pdp', 'pdp_denied');
  }
  return { isAllowed: true, allowedByRules: route.allow ? { route: route.name, action } : undefined };
}

function withRuleDecision(outcome: VerifyOutcome & { kind: 'allow' }, allowedByRules: RuleDecision | undefined): VerifyOutcome {
  return allowedByRules ? { ...outcome, allowedByRules } : outcome;
}

function* perform<T>(io: VerifyIo): Generator<VerifyIo, T, unknown> {
  return (yield io) as T;
}

function refuse(status: 400 | 401 | 403, error: VerifyError, because?: RefusalCause): VerifyOutcome {
  return because ? { kind: 'refuse', status, error, because } : { kind: 'refuse', status, error };
}

function authorizationInput(route: RouteConfig, request: ForwardedRequest, user: SessionUser): AuthorizationInput {
  return {
    subject: { sub: user.sub, groups: user.groups, email: user.email },
    resource: route.name,
    action: actionFor(request.method),
    method: request.method,
    path: request.normalisedPath,
  };
}
