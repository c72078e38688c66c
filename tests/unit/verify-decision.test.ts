import type { RouteConfig } from '../../src/config/routes';
import type { BearerTokenCheck } from '../../src/oidc/bearer-token-verifier';
import type { ForwardedRequest } from '../../src/forwardauth/forwarded-request';
import { RouteMatcher } from '../../src/forwardauth/route-matcher';
import {
  decideVerify,
  type VerifyIo,
  type VerifyOutcome,
  type VerifyPolicy,
  type VerifyRequest,
} from '../../src/forwardauth/verify-decision';
import { bindingFor } from '../../src/session/binding';
import type { StoredSession, TokenSet } from '../../src/session/session-data';
import type { FreshnessOutcome } from '../../src/session/session-refresher';

const NOW = 1_800_000_000_000;
const SESSION_ID = 'S'.repeat(43);
const USER_AGENT = 'Mozilla/5.0 test';
const PUBLIC_ORIGIN = 'https://app.example.test';

const ROUTES: RouteConfig[] = [
  { name: 'assets', host: undefined, pathPrefix: '/static', auth: 'public', audience: undefined, authz: 'none' },
  { name: 'orders', host: undefined, pathPrefix: '/api/orders', auth: 'session', audience: undefined, authz: 'none' },
  { name: 'admin', host: undefined, pathPrefix: '/api/admin', auth: 'session', audience: undefined, authz: 'pdp' },
  { name: 'billing', host: undefined, pathPrefix: '/api/billing', auth: 'session', audience: 'billing-api', authz: 'none' },
];

const TOKENS: TokenSet = { accessToken: 'access-1', refreshToken: 'refresh-1', idToken: 'id-1', accessTokenExpiresAt: NOW + 300_000 };
const REFRESHED: TokenSet = { ...TOKENS, accessToken: 'access-2' };

function forwarded(path: string, method = 'GET', isNavigation = false): ForwardedRequest {
  return { method, host: 'app.example.test', uri: path, normalisedPath: path, isNavigation };
}

function request(overrides: Partial<VerifyRequest> = {}): VerifyRequest {
  return {
    isFromTrustedPeer: true,
    forwarded: forwarded('/api/orders/1'),
    csrfHeaders: { csrf: undefined, origin: undefined, fetchSite: undefined },
    sessionId: SESSION_ID,
    userAgent: USER_AGENT,
    clientAddress: () => '203.0.113.7',
    bearerToken: () => undefined,
    ...overrides,
  };
}

function policy(overrides: Partial<VerifyPolicy> = {}): VerifyPolicy {
  return { routes: new RouteMatcher(ROUTES), publicOrigin: PUBLIC_ORIGIN, binding: 'ua', isRateLimited: false, now: () => NOW, ...overrides };
}

function session(overrides: { absoluteExpiresAt?: number; userAgent?: string } = {}): StoredSession {
  return {
    auth: {
      user: { sub: 'alice', email: 'alice@example.test', groups: ['staff'] },
      tokens: TOKENS,
      createdAt: NOW - 60_000,
      absoluteExpiresAt: overrides.absoluteExpiresAt ?? NOW + 3_600_000,
      binding: bindingFor('ua', overrides.userAgent ?? USER_AGENT, undefined),
      idpSessionId: 'idp-sid',
    },
  };
}

/** What the I/O answers in one case; anything not given fails the test when asked for. */
interface World {
  readonly session?: StoredSession | undefined;
  readonly retryAfterSeconds?: number;
  readonly freshness?: FreshnessOutcome;
  readonly isAllowed?: boolean;
  readonly exchanged?: string;
  readonly bearer?: BearerTokenCheck;
}


/** Runs the decision to its end, answering each I/O from `world`; returns the outcome and the I/O asked for, in order. */
function drive(input: VerifyRequest, rules: VerifyPolicy, world: World): { outcome: VerifyOutcome; io: string[]; asked: VerifyIo[] } {
  const decision = decideVerify(input, rules);
  const asked: VerifyIo[] = [];
  let step = decision.next();
  while (!step.done) {
    const io = step.value;
    asked.push(io);
    step = decision.next(answer(io, world));
  }
  return { outcome: step.value, io: asked.map((io) => io.io), asked };
}

function answer(io: VerifyIo, world: World): unknown {
  const given = <T>(value: T | undefined, what: string): T => {
    if (value === undefined && !(what === 'session' && 'session' in world)) throw new Error(`the decision asked for ${what}, which this case does not expect`);
    return value as T;
  };
  switch (io.io) {
    case 'read_session':
      return given(world.session, 'session');
    case 'end_session':
      return undefined;
    case 'take_rate_limit':
      return given(world.retryAfterSeconds, 'a rate-limit token');
    case 'refresh':
      return given(world.freshness, 'a refresh');
    case 'authorize':
      return given(world.isAllowed, 'a policy decision');
    case 'exchange':
      return given(world.exchanged, 'a token exchange');
    case 'verify_bearer':
      return given(world.bearer, 'a bearer token check');
  }
}

const fresh = (record = session(), tokens = TOKENS): FreshnessOutcome => ({ kind: 'fresh', record, tokens });
const HAPPY: World = { session: session(), freshness: fresh() };

describe('the /verify decision', () => {
  describe('before any I/O', () => {
    it('refuses a caller outside TRUSTED_PROXIES with 403 untrusted_proxy', () => {
      expect(drive(request({ isFromTrustedPeer: false }), policy(), {})).toEqual({ outcome: { kind: 'refuse', status: 403, error: 'untrusted_proxy' }, io: [], asked: [] });
    });

    it.each(['missing_forwarded_headers', 'malformed_forwarded_headers', 'ambiguous_path'] as const)('answers a request the proxy sent as %s with 400 and that error', (problem) => {
      expect(drive(request({ forwarded: problem }), policy(), {}).outcome).toEqual({ kind: 'refuse', status: 400, error: problem });
    });

    it('refuses a path no route covers with 403 no_route', () => {
      expect(drive(request({ forwarded: forwarded('/elsewhere') }), policy(), {}).outcome).toEqual({ kind: 'refuse', status: 403, error: 'no_route' });
    });

    it('allows a public route without a session and without touching the store', () => {
      expect(drive(request({ forwarded: forwarded('/static/app.js'), sessionId: undefined }), policy(), {})).toMatchObject({
        outcome: { kind: 'allow', user: undefined, accessToken: undefined },
        io: [],
      });
    });

    it('allows a public route even for an unsafe method without the CSRF header', () => {
      expect(drive(request({ forwarded: forwarded('/static/upload', 'POST') }), policy(), {}).outcome.kind).toBe('allow');
    });

    it.each([
      ['missing_header', { csrf: undefined, origin: undefined, fetchSite: undefined }],
      ['origin_mismatch', { csrf: '1', origin: 'https://evil.example', fetchSite: undefined }],
      ['cross_site', { csrf: '1', origin: undefined, fetchSite: 'cross-site' }],
    ] as const)('refuses an unsafe method with a CSRF %s with 403 csrf, before reading the session', (violation, csrfHeaders) => {
      const { outcome, io } = drive(request({ forwarded: forwarded('/api/orders/1', 'POST'), csrfHeaders }), policy(), {});
      expect(outcome).toEqual({ kind: 'refuse', status: 403, error: 'csrf', because: { kind: 'csrf', violation, route: 'orders' } });
      expect(io).toEqual([]);
    });

    it('lets an unsafe method with X-CSRF: 1 and a same-origin Origin through to the session', () => {
      const csrfHeaders = { csrf: '1', origin: PUBLIC_ORIGIN, fetchSite: 'same-origin' };
      expect(drive(request({ forwarded: forwarded('/api/orders/1', 'DELETE'), csrfHeaders }), policy(), HAPPY).outcome.kind).toBe('allow');
    });

    it('sends a request without a session cookie to login without touching the store', () => {
      const navigation = forwarded('/api/orders/1', 'GET', true);
      expect(drive(request({ sessionId: undefined, forwarded: navigation }), policy(), {})).toEqual({ outcome: { kind: 'login', request: navigation }, io: [], asked: [] });
    });
  });

  describe('with the session read', () => {
    it('sends a cookie whose session is gone to login', () => {
      expect(drive(request(), policy(), { session: undefined })).toMatchObject({ outcome: { kind: 'login' }, io: ['read_session'] });
    });

    it('ends a session past its absolute lifetime and sends the user to login', () => {
      const { outcome, asked } = drive(request(), policy(), { session: session({ absoluteExpiresAt: NOW }) });
      expect(outcome.kind).toBe('login');
      expect(asked).toEqual([
        { io: 'read_session', sessionId: SESSION_ID },
        { io: 'end_session', sessionId: SESSION_ID, subject: 'alice', reason: 'absolute_timeout' },
      ]);
    });

    it('ends a session used from another user agent and answers 401 session_binding, before any refresh', () => {
      const { outcome, io } = drive(request({ userAgent: 'curl/8.0' }), policy(), { session: session() });
      expect(outcome).toEqual({
        kind: 'refuse',
        status: 401,
        error: 'session_binding',
        because: { kind: 'binding', violation: 'user_agent', sessionId: SESSION_ID, subject: 'alice' },
      });
      expect(io).toEqual(['read_session', 'end_session']);
    });

    it('does not compare user agents when SESSION_BINDING is off', () => {
      expect(drive(request({ userAgent: 'curl/8.0' }), policy({ binding: 'off' }), HAPPY).outcome.kind).toBe('allow');
    });

    it('asks for the client address only with ua+ip binding', () => {
      let isAsked = false;
      const clientAddress = () => {
        isAsked = true;
        return '203.0.113.7';
      };
      drive(request({ clientAddress }), policy(), HAPPY);
      expect(isAsked).toBe(false);
      drive(request({ clientAddress }), policy({ binding: 'ua+ip' }), HAPPY);
      expect(isAsked).toBe(true);
    });

    it('answers 429 with the wait when the per-session limit is spent, and takes no token when the limit is off', () => {
      expect(drive(request(), policy({ isRateLimited: true }), { ...HAPPY, retryAfterSeconds: 2 }).outcome).toEqual({ kind: 'rate_limited', retryAfterSeconds: 2 });
      expect(drive(request(), policy({ isRateLimited: true }), { ...HAPPY, retryAfterSeconds: 0 }).outcome.kind).toBe('allow');
      expect(drive(request(), policy(), HAPPY).io).not.toContain('take_rate_limit');
    });

  });

  describe('after the refresh', () => {
    it('sends the user to login when the refresh ended the session', () => {
      expect(drive(request(), policy(), { session: session(), freshness: { kind: 'ended', reason: 'invalid_grant' } }).outcome.kind).toBe('login');
    });

    it('answers unavailable with the back-off left when the IdP cannot refresh an expired token', () => {
      expect(drive(request(), policy(), { session: session(), freshness: { kind: 'unavailable', retryAfterSeconds: 7 } }).outcome).toEqual({
        kind: 'unavailable',
        retryAfterSeconds: 7,
      });
    });

    it('allows with the refreshed token and hands back the session to slide', () => {
      const record = session();
      const { outcome, io } = drive(request(), policy(), { session: record, freshness: fresh(record, REFRESHED) });
      expect(outcome).toEqual({ kind: 'allow', user: record.auth?.user, accessToken: 'access-2', session: { id: SESSION_ID, record } });
      expect(io).toEqual(['read_session', 'refresh']);
    });

    it('asks the PDP on an authz: pdp route with the subject, resource, action, method and path', () => {
      const { asked, outcome } = drive(request({ forwarded: forwarded('/api/admin/users', 'DELETE'), csrfHeaders: { csrf: '1', origin: undefined, fetchSite: undefined } }), policy(), {
        ...HAPPY,
        isAllowed: true,
      });
      expect(outcome.kind).toBe('allow');
      expect(asked.find((io) => io.io === 'authorize')).toEqual({
        io: 'authorize',
        input: { subject: { sub: 'alice', groups: ['staff'], email: 'alice@example.test' }, resource: 'admin', action: 'delete', method: 'DELETE', path: '/api/admin/users' },
      });
    });

    it('refuses 403 forbidden when the PDP denies, with the cause for the authz_denied event', () => {
      expect(drive(request({ forwarded: forwarded('/api/admin/users') }), policy(), { ...HAPPY, isAllowed: false }).outcome).toEqual({
        kind: 'refuse',
        status: 403,
        error: 'forbidden',
        because: { kind: 'policy', decidedBy: 'pdp', reason: 'pdp_denied', sessionId: SESSION_ID, subject: 'alice', route: 'admin', action: 'read' },
      });
    });

    it('never asks the PDP on an authz: none route', () => {
      expect(drive(request(), policy(), HAPPY).io).not.toContain('authorize');
    });

    it('exchanges the token for the route audience and allows with the exchanged token', () => {
      const { outcome, asked } = drive(request({ forwarded: forwarded('/api/billing/invoices') }), policy(), { ...HAPPY, exchanged: 'billing-token' });
      expect(asked.at(-1)).toEqual({ io: 'exchange', sessionId: SESSION_ID, tokens: TOKENS, audience: 'billing-api' });
      expect(outcome).toMatchObject({ kind: 'allow', accessToken: 'billing-token' });
    });

    it('asks the PDP before exchanging, and never exchanges for a denied request', () => {
      const routes = new RouteMatcher([{ name: 'ledger', host: undefined, pathPrefix: '/api/ledger', auth: 'session', audience: 'ledger-api', authz: 'pdp' }]);
      expect(drive(request({ forwarded: forwarded('/api/ledger') }), policy({ routes }), { ...HAPPY, isAllowed: false }).io).toEqual(['read_session', 'refresh', 'authorize']);
    });
  });

  describe('with allow rules on the route', () => {
    const ONLY_STAFF = { groups: ['staff'], emails: [], domains: [] };

    function withRoute(overrides: Partial<RouteConfig>): VerifyPolicy {
      return policy({ routes: new RouteMatcher([{ name: 'reports', host: undefined, pathPrefix: '/api/reports', auth: 'session', audience: undefined, authz: 'none', ...overrides }]) });
    }

    it('allows a user in a listed group without a PDP, and hands the route the allow to count', () => {
      const { outcome, io } = drive(request({ forwarded: forwarded('/api/reports/1') }), withRoute({ allow: ONLY_STAFF }), HAPPY);
      expect(outcome).toMatchObject({ kind: 'allow', user: { sub: 'alice' }, accessToken: 'access-1', allowedByRules: { route: 'reports', action: 'read' } });
      expect(io).toEqual(['read_session', 'refresh']);
    });

    it('refuses 403 forbidden a user the rules do not name, with the reason for the authz_denied event', () => {
      const rules = withRoute({ allow: { groups: ['finance'], emails: [], domains: [] } });
      expect(drive(request({ forwarded: forwarded('/api/reports/1', 'DELETE'), csrfHeaders: { csrf: '1', origin: undefined, fetchSite: undefined } }), rules, HAPPY).outcome).toEqual({
        kind: 'refuse',
        status: 403,
        error: 'forbidden',
        because: { kind: 'policy', decidedBy: 'allow_rules', reason: 'no_matching_rule', sessionId: SESSION_ID, subject: 'alice', route: 'reports', action: 'delete' },
      });
    });

    it('refuses a listed email the IdP has not verified, saying so', () => {
      const record = session();
      const unverified: StoredSession = { ...record, auth: { ...record.auth!, user: { sub: 'alice', email: 'alice@example.test', emailVerified: false, groups: [] } } };
      const { outcome } = drive(request({ forwarded: forwarded('/api/reports/1') }), withRoute({ allow: { groups: [], emails: ['alice@example.test'], domains: [] } }), {
        session: unverified,
        freshness: fresh(unverified),
      });
      expect(outcome).toMatchObject({ kind: 'refuse', status: 403, because: { decidedBy: 'allow_rules', reason: 'email_not_verified' } });
    });

    it('with authz: pdp too, never asks the PDP nor exchanges when the rules refuse', () => {
      const rules = withRoute({ allow: { groups: ['finance'], emails: [], domains: [] }, authz: 'pdp', audience: 'reports-api' });
      const { outcome, io } = drive(request({ forwarded: forwarded('/api/reports/1') }), rules, HAPPY);
      expect(outcome).toMatchObject({ kind: 'refuse', status: 403, error: 'forbidden' });
      expect(io).toEqual(['read_session', 'refresh']);
    });

    it('with authz: pdp too, asks the PDP once the rules allow, and its deny refuses', () => {
      const { outcome, io } = drive(request({ forwarded: forwarded('/api/reports/1') }), withRoute({ allow: ONLY_STAFF, authz: 'pdp' }), { ...HAPPY, isAllowed: false });
      expect(io).toEqual(['read_session', 'refresh', 'authorize']);
      expect(outcome).toMatchObject({ kind: 'refuse', status: 403, because: { decidedBy: 'pdp', reason: 'pdp_denied' } });
    });

    it('with authz: pdp too, allows when both allow and leaves the count to the PDP', () => {
      const { outcome } = drive(request({ forwarded: forwarded('/api/reports/1') }), withRoute({ allow: ONLY_STAFF, authz: 'pdp' }), { ...HAPPY, isAllowed: true });
      expect(outcome.kind).toBe('allow');
      expect(outcome).not.toHaveProperty('allowedByRules');
    });

    it('sends the user to login rather than refusing when the refresh ended the session', () => {
      const rules = withRoute({ allow: { groups: ['finance'], emails: [], domains: [] } });
      expect(drive(request({ forwarded: forwarded('/api/reports/1') }), rules, { session: session(), freshness: { kind: 'ended', reason: 'invalid_grant' } }).outcome.kind).toBe('login');
    });

    it('hands back no rule decision on a route without allow rules', () => {
      expect(drive(request(), policy(), HAPPY).outcome).not.toHaveProperty('allowedByRules');
    });
  });

  describe('on a bearer: true route', () => {
    const TOKEN = 'header.payload.signature';
    const CLIENT: BearerTokenCheck = { kind: 'valid', user: { sub: 'reporting-job', email: 'jobs@example.test', emailVerified: true, groups: ['staff'] } };

    function bearerRoute(overrides: Partial<RouteConfig> = {}): VerifyPolicy {
      const route: RouteConfig = { name: 'ledger', host: undefined, pathPrefix: '/api/ledger', auth: 'session', audience: undefined, authz: 'none', bearer: { audience: 'ledger-api' }, ...overrides };
      return policy({ routes: new RouteMatcher([route, ...ROUTES]) });
    }
    const client = (overrides: Partial<VerifyRequest> = {}) => request({ forwarded: forwarded('/api/ledger/1'), sessionId: undefined, bearerToken: () => TOKEN, ...overrides });

    it('checks the token for the route audience without reading a session, and allows with the token itself and its identity', () => {
      const { outcome, asked } = drive(client(), bearerRoute(), { bearer: CLIENT });
      expect(asked).toEqual([{ io: 'verify_bearer', token: TOKEN, audience: 'ledger-api' }]);
      expect(outcome).toEqual({ kind: 'allow', user: CLIENT.kind === 'valid' && CLIENT.user, accessToken: TOKEN });
    });

    it('needs no CSRF header for an unsafe method: an API client is not a browser', () => {
      expect(drive(client({ forwarded: forwarded('/api/ledger/1', 'POST') }), bearerRoute(), { bearer: CLIENT }).outcome.kind).toBe('allow');
    });

    it.each([
      ['invalid', { kind: 'invalid', problem: 'bad signature' }],
      ['expired', { kind: 'expired', problem: 'expired' }],
    ] as const)('answers 401 invalid_token for an %s token, without asking anything else', (_kind, check) => {
      const { outcome, io } = drive(client(), bearerRoute({ authz: 'pdp', audience: 'ledger-upstream' }), { bearer: check });
      expect(outcome).toEqual({ kind: 'refuse', status: 401, error: 'invalid_token' });
      expect(io).toEqual(['verify_bearer']);
    });

    it('follows the session when a session cookie came too, and never looks at the token', () => {
      let isRead = false;
      const bearerToken = () => {
        isRead = true;
        return TOKEN;
      };
      const { outcome, io } = drive(client({ sessionId: SESSION_ID, bearerToken }), bearerRoute(), HAPPY);
      expect(outcome).toMatchObject({ kind: 'allow', accessToken: 'access-1' });
      expect(io).toEqual(['read_session', 'refresh']);
      expect(isRead).toBe(false);
    });

    it('behaves as a session route without a token: login, and the CSRF check for an unsafe method', () => {
      expect(drive(client({ bearerToken: () => undefined }), bearerRoute(), {})).toMatchObject({ outcome: { kind: 'login' }, io: [] });
      expect(drive(client({ bearerToken: () => undefined, forwarded: forwarded('/api/ledger/1', 'POST') }), bearerRoute(), {}).outcome).toMatchObject({ kind: 'refuse', error: 'csrf' });
    });

    it('never reads or checks a bearer token on a route without bearer: true', () => {
      let isRead = false;
      const bearerToken = () => {
        isRead = true;
        return TOKEN;
      };
      expect(drive(request({ sessionId: undefined, bearerToken }), policy(), {})).toMatchObject({ outcome: { kind: 'login' }, io: [] });
      expect(isRead).toBe(false);
    });

    it('applies the allow rules to the token\'s claims: a refusal names no session and asks no PDP', () => {
      const rules = bearerRoute({ allow: { groups: ['finance'], emails: [], domains: [] }, authz: 'pdp' });
      const { outcome, io } = drive(client(), rules, { bearer: CLIENT });
      expect(io).toEqual(['verify_bearer']);
      expect(outcome).toEqual({
        kind: 'refuse',
        status: 403,
        error: 'forbidden',
        because: { kind: 'policy', decidedBy: 'allow_rules', reason: 'no_matching_rule', sessionId: undefined, subject: 'reporting-job', route: 'ledger', action: 'read' },
      });
    });

    it('allows by the token\'s verified email domain and hands the route the allow to count', () => {
      const { outcome } = drive(client(), bearerRoute({ allow: { groups: [], emails: [], domains: ['example.test'] } }), { bearer: CLIENT });
      expect(outcome).toMatchObject({ kind: 'allow', accessToken: TOKEN, allowedByRules: { route: 'ledger', action: 'read' } });
    });

    it('asks the PDP with the token\'s subject and groups, and its deny refuses', () => {
      const { outcome, asked } = drive(client(), bearerRoute({ authz: 'pdp' }), { bearer: CLIENT, isAllowed: false });
      expect(asked.at(-1)).toEqual({
        io: 'authorize',
        input: { subject: { sub: 'reporting-job', groups: ['staff'], email: 'jobs@example.test' }, resource: 'ledger', action: 'read', method: 'GET', path: '/api/ledger/1' },
      });
      expect(outcome).toMatchObject({ kind: 'refuse', status: 403, because: { decidedBy: 'pdp', sessionId: undefined } });
    });

    it('forwards the token itself even on a route with a token-exchange audience (the exchange is for sessions)', () => {
      const { outcome, io } = drive(client(), bearerRoute({ audience: 'ledger-upstream' }), { bearer: CLIENT });
      expect(io).toEqual(['verify_bearer']);
      expect(outcome).toMatchObject({ kind: 'allow', accessToken: TOKEN });
    });
  });
});
