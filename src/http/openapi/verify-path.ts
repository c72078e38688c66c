import { AUTH_RESPONSE_HEADERS } from '../../forwardauth/identity-headers';
import { ref, type HeaderObject, type ParameterObject, type PathItem, type Reference, type ResponseObject } from './openapi-types';
import { correlationParameters, withCorrelation } from './responses';
import { VERIFY_ERRORS_BY_STATUS } from './schemas';

/** What each header of an allowed request carries; every one is sent on every 200, empty when there is no value. */
const IDENTITY_HEADER_DESCRIPTIONS: Record<string, string> = {
  Authorization:
    "`Bearer <token>`: the session's access token, the token exchanged (RFC 8693) for the route's `audience`, or an API client's own token on a `bearer: true` route; empty on a `public` route.",
  'X-Auth-Request-User': 'The `sub` claim.',
  'X-Auth-Request-Email': 'The `email` claim.',
  'X-Auth-Request-Preferred-Username': 'The `preferred_username` claim.',
  Cookie: "The client's Cookie header without the gateway's own session and login cookies (the proxy puts it in place of the client's).",
};

const HEADER_PATTERNS: Record<string, string> = {
  Authorization: '^(Bearer [!-~]+)?$',
};

function identityHeader(name: string): HeaderObject | Reference {
  if (name === 'X-Request-ID') return ref('headers', 'X-Request-ID');
  return {
    description: `${IDENTITY_HEADER_DESCRIPTIONS[name] ?? 'Copied onto the upstream request.'} Claims outside printable ASCII (and "%") are percent-encoded.`,
    required: true,
    schema: { type: 'string', ...(HEADER_PATTERNS[name] ? { pattern: HEADER_PATTERNS[name] } : {}) },
  };
}

const forwardedHeader = (name: string, description: string, schema: Record<string, unknown>, required = false): ParameterObject => ({
  name,
  in: 'header',
  description,
  ...(required ? { required } : {}),
  schema,
});

/** One value only: a header sent twice or joined with commas is malformed (400), the proxy and the upstream might read different ones. */
const SINGLE_VALUE = 'One value: sent twice or joined with commas is a 400.';

const verifyParameters: ParameterObject[] = [
  forwardedHeader('X-Forwarded-Method', `The original method. ${SINGLE_VALUE}`, { type: 'string', pattern: '^[A-Z]{1,16}$' }, true),
  forwardedHeader(
    'X-Forwarded-Uri',
    `The original path and query, as sent. Route matching runs on its normalised path (percent-decoding, dot segments, \`;\` parameters, repeated slashes, case); an ambiguous path is refused. ${SINGLE_VALUE}`,
    { type: 'string', pattern: '^/', maxLength: 8192 },
    true,
  ),
  forwardedHeader('X-Forwarded-Host', `The original host (a port and a trailing dot are ignored); routes are matched on it. ${SINGLE_VALUE}`, { type: 'string' }),
  forwardedHeader('X-Forwarded-Proto', `The original scheme. ${SINGLE_VALUE}`, { type: 'string', examples: ['https'] }),
  forwardedHeader('X-Forwarded-Port', SINGLE_VALUE, { type: 'string' }),
  forwardedHeader('X-Forwarded-Server', SINGLE_VALUE, { type: 'string' }),
  forwardedHeader('X-Forwarded-Prefix', SINGLE_VALUE, { type: 'string' }),
  forwardedHeader(
    'X-Forwarded-For',
    'The client address chain: its right-most entry is the client, believed only from a TRUSTED_PROXIES address (and only when it is an IP address). Used for ua+ip binding and events.',
    { type: 'string' },
  ),
  forwardedHeader('X-CSRF', 'Must be `1` when the original method is unsafe (POST, PUT, PATCH, DELETE, ...) on a session route; otherwise 403 `csrf`.', { const: '1' }),
  forwardedHeader('Origin', 'The browser\'s; when present on an unsafe method it must equal PUBLIC_URL.', { type: 'string' }),
  forwardedHeader('Sec-Fetch-Site', "The browser's; when present on an unsafe method it must be same-origin, same-site or none.", { type: 'string' }),
  forwardedHeader(
    'Sec-Fetch-Mode',
    '`navigate` on a GET marks a browser navigation: without a session it is redirected to login (302) instead of answered 401. Without Sec-Fetch-Mode, an Accept header naming text/html does the same.',
    { type: 'string' },
  ),
  forwardedHeader('User-Agent', 'The browser\'s; a session bound to another user agent (SESSION_BINDING) is destroyed: 401 `session_binding`.', { type: 'string' }),
];

function refusal(status: keyof typeof VERIFY_ERRORS_BY_STATUS, description: string, headers: Record<string, HeaderObject | Reference> = {}): ResponseObject {
  return {
    description,
    headers: withCorrelation({ 'Cache-Control': ref('headers', 'Cache-Control'), ...headers }),
    content: {
      'application/json': {
        schema: { allOf: [ref('schemas', 'VerifyRefusal'), { type: 'object', properties: { error: { enum: [...VERIFY_ERRORS_BY_STATUS[status]] } } }] },
      },
    },
  };
}

const retryAfter = { 'Retry-After': ref('headers', 'Retry-After') };

/** SPEC section 4: ForwardAuth, answered from node:http ahead of Express. */
export function verifyPath(): Record<string, PathItem> {
  return {
    '/verify': {
      get: {
        operationId: 'verify',
        tags: ['forwardauth'],
        summary: 'ForwardAuth: may this request go upstream, and as whom?',
        description: [
          "Called by the proxy (Traefik's ForwardAuth, Caddy's forward_auth) before every request it proxies, at the gateway's own address rather than PUBLIC_URL, with the browser's headers and the original request in X-Forwarded-*. The route file (ROUTES_FILE) maps host and path prefix to a named upstream: `auth: public` needs nothing, `auth: session` a session, checked against the route's `allow:` rules and its PDP (`authz: pdp`); a `bearer: true` route also takes an API client's own `Authorization: Bearer <JWT>` instead of a session.",
          '',
          'Fails closed: a dependency that cannot answer gives 503, never 200. Without a session cookie Redis is not touched. The access token is refreshed here when it is near expiry (once per session across replicas). When TRUSTED_PROXIES is set, other callers get 403 `untrusted_proxy`.',
          '',
          "The proxy must copy the 200's headers onto the upstream request and delete every client-sent spelling of them first (the shipped Traefik configuration uses authResponseHeadersRegex).",
        ].join('\n'),
        security: [{ sessionCookie: [] }, { bearerToken: [] }, {}],
        parameters: [...verifyParameters, ...correlationParameters],
        responses: {
          '200': {
            description: 'Allowed. No body; the headers are for the upstream request.',
            headers: {
              ...Object.fromEntries(AUTH_RESPONSE_HEADERS.map((name) => [name, identityHeader(name)])),
              'X-Trace-ID': ref('headers', 'X-Trace-ID'),
              'Cache-Control': ref('headers', 'Cache-Control'),
            },
          },
          '302': {
            description: 'No or expired session on a browser navigation (GET with Sec-Fetch-Mode: navigate, or Accept naming text/html): to the login, returning to the original URI. No body.',
            headers: withCorrelation({
              Location: {
                description: 'PUBLIC_URL/auth/login?returnTo=<the original X-Forwarded-Uri, percent-encoded>',
                required: true,
                schema: { type: 'string', format: 'uri', pattern: '/auth/login\\?returnTo=' },
              },
              'Cache-Control': ref('headers', 'Cache-Control'),
            }),
          },
          '400': refusal(400, 'Malformed X-Forwarded-* headers: missing, repeated or comma-joined, not a method, a URI that is not a path, or an ambiguous path.'),
          '401': refusal(
            401,
            "No or expired session on a request that is not a navigation (`unauthenticated`, with `login`), a session used from another client than it is bound to (`session_binding`: the session is destroyed), or, on a `bearer: true` route, an API client's token that is invalid, expired or for another audience (`invalid_token`, with WWW-Authenticate).",
            {
              'WWW-Authenticate': {
                description: 'With `invalid_token` only (RFC 6750 section 3).',
                schema: { const: 'Bearer error="invalid_token"' },
              },
            },
          ),
          '403': refusal(
            403,
            "Refused: a caller outside TRUSTED_PROXIES (`untrusted_proxy`), no route for the host and path (`no_route`), a failed CSRF check (`csrf`), or the route's `allow:` rules, the PDP or the IdP (no token for the route's audience) said no (`forbidden`).",
          ),
          '429': refusal(429, 'This session is over RATE_LIMIT_VERIFY_RPS (kept in process memory; off by default).', retryAfter),
          '503': refusal(503, "Redis, the IdP (an expired token could not be refreshed, or its keys for an API client's token could not be had) or the PDP could not answer: fail closed, never 200. Which one is in the log, not in the answer. The session cookie is kept.", retryAfter),
        },
      },
    },
  };
}
