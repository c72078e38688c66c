import { MAX_BODY_BYTES } from '../spa-metrics-route';
import { ref, type HeaderObject, type ParameterObject, type PathItem } from './openapi-types';
import { correlationParameters, json, problem, rateLimited, redirect, success, unavailable } from './responses';

const sessionCookie = { sessionCookie: [] };
const noStore = { 'Cache-Control': ref('headers', 'Cache-Control') };

const setCookie = (description: string): HeaderObject => ({ description, required: true, schema: { type: 'string' } });

const csrfParameters: ParameterObject[] = [
  {
    name: 'X-CSRF',
    in: 'header',
    required: true,
    description: 'Must be `1`: a header a cross-site form cannot send (SPEC section 5). Without it: 403 `csrf`.',
    schema: { const: '1' },
  },
  { name: 'Origin', in: 'header', description: 'When the browser sends it, it must equal PUBLIC_URL.', schema: { type: 'string' } },
  {
    name: 'Sec-Fetch-Site',
    in: 'header',
    description: 'When the browser sends it, it must be same-origin, same-site or none.',
    schema: { type: 'string', examples: ['same-origin'] },
  },
];

/** The endpoints of SPEC sections 3 and 6: login, callback, logout, user, back-channel logout and SPA metrics. */
export function browserPaths(): Record<string, PathItem> {
  const limited = { isRateLimited: true, hasErrorPage: true } as const;
  const csrfRefused = problem(403, 'The CSRF check failed: X-CSRF missing, Origin not PUBLIC_URL, or a cross-site Sec-Fetch-Site.', ['csrf'], limited);
  const signedOut = problem(401, 'No session, or it expired or was used from another client.', ['unauthenticated'], limited);
  return {
    '/auth/login': {
      get: {
        operationId: 'login',
        tags: ['browser'],
        summary: "Start a login: redirect to the IdP's authorization endpoint",
        description:
          'Authorization code flow with PKCE (S256), `state` and `nonce`. The login transaction is single-use, expires in 10 minutes and is bound to this browser by a cookie of its own, so logins started in several tabs at once each complete.',
        parameters: [
          {
            name: 'returnTo',
            in: 'query',
            description:
              'Where the browser lands after the login: a same-origin relative path only. Anything else (`//evil`, `/\\evil`, `https://evil`, encoded variants, control characters) falls back to `/`.',
            schema: { type: 'string', examples: ['/orders?page=2'] },
          },
          ...correlationParameters,
        ],
        responses: {
          '302': redirect(
            "To the IdP's authorization endpoint.",
            { description: "The IdP's authorization endpoint with client_id, redirect_uri (PUBLIC_URL/auth/callback), state, nonce and the PKCE challenge.", required: true, schema: { type: 'string', format: 'uri' } },
            { isRateLimited: true, headers: { 'Set-Cookie': setCookie('The login cookie (`bff-login-<id>`, `__Host-` prefixed on https) binding this login to the browser; HttpOnly, SameSite=Lax, 10 minutes.') } },
          ),
          '429': rateLimited(limited),
          '503': unavailable('The IdP (its metadata) or Redis', limited),
        },
      },
    },
    '/auth/callback': {
      get: {
        operationId: 'callback',
        tags: ['browser'],
        summary: 'Finish a login: the IdP redirects the browser here',
        description:
          'Checks state (and the browser that started the login), `iss` (RFC 9207) when the IdP sends it, exchanges the code with the PKCE verifier and verifies the ID token (signature, iss, aud, exp, nonce). Creates a new session (never the id of an earlier one) and redirects only once the store has acknowledged it. Any failure: no session, a 400 and a `login_failure` security event.',
        parameters: [
          { name: 'state', in: 'query', required: true, description: 'The `state` of the login transaction.', schema: { type: 'string', maxLength: 512 } },
          { name: 'code', in: 'query', description: 'The authorization code (absent when the IdP answers with `error`).', schema: { type: 'string' } },
          { name: 'iss', in: 'query', description: "The IdP's issuer (RFC 9207), checked when present.", schema: { type: 'string' } },
          { name: 'error', in: 'query', description: 'An OAuth error from the IdP: the login fails with 400.', schema: { type: 'string' } },
          ...correlationParameters,
        ],
        responses: {
          '302': redirect(
            'Logged in: to the `returnTo` of the login.',
            { description: 'The login\'s returnTo: a same-origin relative path.', required: true, schema: { type: 'string', pattern: '^/' } },
            { isRateLimited: true, headers: { 'Set-Cookie': setCookie('The new session cookie (signed random id; HttpOnly, SameSite=Lax, Path=/, Secure and `__Host-` on https), and the login cookie cleared.') } },
          ),
          '400': problem(400, 'The login response cannot be trusted, or its transaction was used already or expired: start the login again.', ['invalid_login_response', 'login_expired'], limited),
          '429': rateLimited(limited),
          '503': unavailable('The IdP or Redis', limited),
        },
      },
    },
    '/auth/logout': {
      post: {
        operationId: 'logout',
        tags: ['browser'],
        summary: 'Log out: end the session and get the IdP logout URL',
        description:
          'Destroys the session, revokes its refresh token at the IdP when it can (a failed revocation does not keep the session), clears the cookie, and answers where to send the browser for RP-initiated logout at the IdP. Without a session it only clears the cookie.',
        security: [sessionCookie, {}],
        parameters: [...csrfParameters, ...correlationParameters],
        responses: {
          '200': success('Logged out.', json(ref('schemas', 'Logout')), {
            isRateLimited: true,
            headers: { ...noStore, 'Set-Cookie': setCookie('The session cookie, cleared.') },
          }),
          '403': csrfRefused,
          '429': rateLimited(limited),
          '503': unavailable('Redis', limited),
        },
      },
    },
    '/auth/user': {
      get: {
        operationId: 'getUser',
        tags: ['browser'],
        summary: 'Who is logged in',
        description:
          'The profile of the session for the SPA; never a token. A session past its absolute lifetime, or used from another user agent (or IP prefix) than it is bound to (SESSION_BINDING), is destroyed and answers 401.',
        security: [sessionCookie],
        parameters: [...correlationParameters],
        responses: {
          '200': success('The session\'s user.', json(ref('schemas', 'User')), { isRateLimited: true, headers: noStore }),
          '401': signedOut,
          '429': rateLimited(limited),
          '503': unavailable('Redis', limited),
        },
      },
    },
    '/auth/sessions': {
      get: {
        operationId: 'listSessions',
        tags: ['browser'],
        summary: "The user's sessions on this frontend",
        description:
          'Every live session of the signed-in user on this frontend, newest first: when it was created and last used, the device it was created on, and whether it is this one. Checked as /auth/user checks the session (absolute lifetime, binding).',
        security: [sessionCookie],
        parameters: [...correlationParameters],
        responses: {
          '200': success('The sessions.', json(ref('schemas', 'SessionList')), { isRateLimited: true, headers: noStore }),
          '401': signedOut,
          '429': rateLimited(limited),
          '503': unavailable('Redis', limited),
        },
      },
      delete: {
        operationId: 'endOtherSessions',
        tags: ['browser'],
        summary: 'Sign out every other device',
        description:
          "Ends every session of the user on this frontend except this one (`bff_sessions_destroyed_total{reason=\"revoked_by_user\"}`, a `session_destroyed` event each) and revokes their refresh tokens at the IdP when it can.",
        security: [sessionCookie],
        parameters: [...csrfParameters, ...correlationParameters],
        responses: {
          '200': success('The other sessions are ended, on every replica.', json(ref('schemas', 'SessionsEnded')), { isRateLimited: true, headers: noStore }),
          '401': signedOut,
          '403': csrfRefused,
          '429': rateLimited(limited),
          '503': unavailable('Redis', limited),
        },
      },
    },
    '/auth/sessions/{handle}': {
      delete: {
        operationId: 'endSession',
        tags: ['browser'],
        summary: 'Sign out one other device',
        description:
          "Ends one of the user's other sessions on this frontend, named by its handle from GET /auth/sessions, and revokes its refresh token at the IdP when it can. The session making the request is not ended this way (409): that is POST /auth/logout, which also ends the IdP session.",
        security: [sessionCookie],
        parameters: [
          { name: 'handle', in: 'path', required: true, description: 'A handle from GET /auth/sessions.', schema: { type: 'string' } },
          ...csrfParameters,
          ...correlationParameters,
        ],
        responses: {
          '204': success('Ended, on every replica.', undefined, { isRateLimited: true, headers: noStore }),
          '400': problem(400, 'Not a handle (22 base64url characters), or a malformed percent-escape in the path.', ['bad_request'], limited),
          '401': signedOut,
          '403': csrfRefused,
          '404': problem(404, 'None of the user\'s sessions on this frontend has this handle: it ended already, or it is not theirs.', ['session_not_found'], limited),
          '409': problem(409, 'The handle names the session making the request: sign out with POST /auth/logout.', ['current_session'], limited),
          '429': rateLimited(limited),
          '503': unavailable('Redis', limited),
        },
      },
    },
    '/auth/backchannel-logout': {
      post: {
        operationId: 'backchannelLogout',
        tags: ['browser'],
        summary: 'OIDC Back-Channel Logout: the IdP ends sessions',
        description:
          "Called by the IdP's servers, not by browsers: no cookie, no CSRF header, no rate limit. Verifies the logout token (signature by the IdP's keys, iss, aud, iat/exp, `events`, `sid` and/or `sub`, no `nonce`, `jti` not replayed on any replica) and destroys every session of that IdP session or subject on every replica.",
        parameters: [...correlationParameters],
        requestBody: {
          description: 'A form with exactly one `logout_token` (at most 16 KiB).',
          required: true,
          content: { 'application/x-www-form-urlencoded': { schema: ref('schemas', 'BackchannelLogoutRequest') } },
        },
        responses: {
          '200': success('The token was valid; its sessions (if any were left) are destroyed.', undefined, { headers: noStore }),
          '400': success('No single logout_token, an unreadable body, or a token that is invalid or was already used.', json(ref('schemas', 'BackchannelLogoutError')), {
            headers: noStore,
          }),
          '503': unavailable("The IdP's keys or Redis", { hasErrorPage: true }),
        },
      },
    },
    '/api/v1/metrics': {
      post: {
        operationId: 'ingestSpaMetrics',
        tags: ['ingestion'],
        summary: "The SPA's own metrics",
        description:
          'Each accepted event increments `bff_public_metrics_total{event}`. Rejected bodies are published as `ingestion_rejected` security events. Rate limited per client address (RATE_LIMIT_METRICS_PER_MINUTE).',
        parameters: [...correlationParameters],
        requestBody: {
          description: `Events to count; at most ${MAX_BODY_BYTES / 1024} KiB.`,
          required: true,
          content: {
            'application/json': { schema: ref('schemas', 'SpaMetricsRequest') },
            'text/plain': {
              schema: {
                type: 'string',
                description: '`navigator.sendBeacon` sends a string body as text/plain: the same JSON.',
                contentMediaType: 'application/json',
                contentSchema: ref('schemas', 'SpaMetricsRequest'),
              },
            },
          },
        },
        responses: {
          '202': success('Counted.', json(ref('schemas', 'SpaMetricsAccepted')), { isRateLimited: true, headers: noStore }),
          '400': problem(
            400,
            'Malformed JSON, a body outside the schema (the detail names each problem), or attributes that look like personal data or secrets (the detail names the offending keys, never their values).',
            ['bad_request'],
            { isRateLimited: true },
          ),
          '413': problem(413, `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`, ['payload_too_large'], { isRateLimited: true }),
          '429': rateLimited({ isRateLimited: true }),
        },
      },
    },
  };
}
