import type { SessionUser } from '../session/session-data';

/** The identity headers the gateway produces (SPEC section 4). */
export const IDENTITY_HEADERS = ['X-Auth-Request-User', 'X-Auth-Request-Email', 'X-Auth-Request-Preferred-Username'] as const;

/**
 * Every header the proxy copies from a 2xx onto the upstream request: Caddy's
 * `copy_headers`, or Traefik's `authResponseHeaders` for an operator who lists
 * names instead of using AUTH_RESPONSE_HEADERS_REGEX. The gateway sends each
 * of them on every 2xx, empty when it has no value (Caddy 2.6 would otherwise
 * copy its own placeholder text).
 */
export const AUTH_RESPONSE_HEADERS: readonly string[] = ['Authorization', ...IDENTITY_HEADERS, 'Cookie', 'X-Request-ID'];

/**
 * Traefik's `authResponseHeadersRegex` (Go RE2 syntax), as deploy/traefik/dynamic.yml
 * ships it. Traefik deletes every request header whose (Go-canonical) name
 * matches and then copies every matching header of the gateway's answer, so
 * the client's spellings go whatever they are:
 *
 * - `X`, `Auth` and `Request` joined by any of "-", "_" and "." in any case,
 *   then a separator and anything: every spelling of every identity header
 *   (a name list cannot: X-Auth-Request-Preferred-Username alone has 81), and
 *   the rest of the X-Auth-Request family other proxies use, which no client
 *   may send either;
 * - Authorization (the gateway's bearer token or empty), Cookie (the client's
 *   cookies without the gateway's own) and X-Request-ID.
 *
 * Anchored at both ends: Go's MatchString finds a match anywhere in the name.
 */
export const AUTH_RESPONSE_HEADERS_REGEX = '(?i)^(Authorization|Cookie|X-Request-Id|X[-_.]Auth[-_.]Request[-_.].+)$';

/** A user's claims as header values, and the Authorization value of its latest token. */
interface UserHeaderValues {
  readonly sub: string;
  readonly email: string;
  readonly preferredUsername: string;
  accessToken: string | undefined;
  authorization: string;
}

/**
 * Header values by user object: a session served from the cache hands /verify
 * the same user object on every call, so the claims are made header-safe once
 * per record instead of once per request. Weak: they go with the record.
 */
const headerValues = new WeakMap<SessionUser, UserHeaderValues>();

/**
 * The identity headers of an allowed request, all present, empty when there
 * is no value; as the flat [name, value, name, value, ...] list that
 * `writeHead` takes without building a header object; `more` is appended.
 */
export function identityHeaders(user: SessionUser | undefined, accessToken: string | undefined, ...more: string[]): string[] {
  if (!user) return ['Authorization', authorizationValue(accessToken), 'X-Auth-Request-User', '', 'X-Auth-Request-Email', '', 'X-Auth-Request-Preferred-Username', '', ...more];
  let values = headerValues.get(user);
  if (!values) {
    values = { sub: headerSafe(user.sub), email: headerSafe(user.email), preferredUsername: headerSafe(user.preferredUsername), accessToken, authorization: authorizationValue(accessToken) };
    headerValues.set(user, values);
  } else if (values.accessToken !== accessToken) {
    // A refreshed or exchanged token: the user's record is the same object, its token is not.
    values.accessToken = accessToken;
    values.authorization = authorizationValue(accessToken);
  }
  return [
    'Authorization',
    values.authorization,
    'X-Auth-Request-User',
    values.sub,
    'X-Auth-Request-Email',
    values.email,
    'X-Auth-Request-Preferred-Username',
    values.preferredUsername,
    ...more,
  ];
}

function authorizationValue(accessToken: string | undefined): string {
  return accessToken ? `Bearer ${accessToken}` : '';
}

/** Outside printable ASCII, and "%" itself, so that an upstream decoding the value gets back exactly the claim. */
const UNSAFE_IN_HEADER = /[^\x20-\x24\x26-\x7e]/gu;

/** Claims are IdP data: anything outside printable ASCII is percent-encoded, never passed raw into a header. */
function headerSafe(value: string | undefined): string {
  if (!value) return '';
  return value.replace(UNSAFE_IN_HEADER, (character) =>
    Array.from(Buffer.from(character, 'utf8'), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}
