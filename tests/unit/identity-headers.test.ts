import { validateHeaderName, validateHeaderValue } from 'node:http';
import {
  AUTH_RESPONSE_HEADERS,
  AUTH_RESPONSE_HEADERS_REGEX,
  IDENTITY_HEADERS,
  identityHeaders as flatIdentityHeaders,
} from '../../src/forwardauth/identity-headers';
import type { SessionUser } from '../../src/session/session-data';
import { goCanonicalHeaderKey, spellingsOf } from '../support/header-spellings';

const USER: SessionUser = {
  sub: 'user-123',
  name: 'Ada Lovelace',
  email: 'ada@example.com',
  preferredUsername: 'ada',
  groups: ['admins'],
};

/** The flat [name, value, ...] list as pairs. */
function identityHeaders(...args: Parameters<typeof flatIdentityHeaders>): Array<[string, string]> {
  const flat = flatIdentityHeaders(...args);
  const pairs: Array<[string, string]> = [];
  for (let index = 0; index < flat.length; index += 2) pairs.push([flat[index]!, flat[index + 1]!]);
  return pairs;
}

function asObject(headers: Array<[string, string]>): Record<string, string> {
  return Object.fromEntries(headers);
}

describe('identityHeaders', () => {
  it('sends every identity header and Authorization, empty, on an anonymous allow', () => {
    expect(asObject(identityHeaders(undefined, undefined))).toEqual(Object.fromEntries(['Authorization', ...IDENTITY_HEADERS].map((name) => [name, ''])));
  });

  it('sends every header the proxy copies except Cookie and X-Request-ID, which the route adds', () => {
    const names = identityHeaders(USER, 'token').map(([name]) => name);
    expect(new Set(names)).toEqual(new Set(AUTH_RESPONSE_HEADERS.filter((name) => name !== 'Cookie' && name !== 'X-Request-ID')));
  });

  it('names each header once', () => {
    const names = identityHeaders(USER, 'token').map(([name]) => name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
  });

  it('appends the extra headers it is given after its own', () => {
    expect(flatIdentityHeaders(USER, 'token', 'Cookie', 'a=1', 'X-Request-ID', 'id').slice(-4)).toEqual(['Cookie', 'a=1', 'X-Request-ID', 'id']);
  });

  it('carries the user and the bearer token for a logged-in user', () => {
    expect(asObject(identityHeaders(USER, 'access-token'))).toMatchObject({
      Authorization: 'Bearer access-token',
      'X-Auth-Request-User': 'user-123',
      'X-Auth-Request-Email': 'ada@example.com',
      'X-Auth-Request-Preferred-Username': 'ada',
    });
  });

  it('sends empty values for claims the user does not have', () => {
    const headers = asObject(identityHeaders({ sub: 'user-123', groups: [] }, 'access-token'));
    expect([headers['X-Auth-Request-Email'], headers['X-Auth-Request-Preferred-Username']]).toEqual(['', '']);
  });

  it('only uses header names Node accepts', () => {
    for (const [name] of identityHeaders(USER, 'token')) expect(() => validateHeaderName(name)).not.toThrow();
  });

  it.each([
    ['a CRLF injection', 'ada\r\nSet-Cookie: x=1', 'ada%0D%0ASet-Cookie: x=1'],
    ['a bare newline', 'a\nb', 'a%0Ab'],
    ['a NUL', 'a\u0000b', 'a%00b'],
    ['a tab', 'a\tb', 'a%09b'],
    ['a DEL', 'a\u007fb', 'a%7Fb'],
    ['an accented letter', 'José', 'Jos%C3%A9'],
    ['an emoji', 'a😀', 'a%F0%9F%98%80'],
    ['a CJK name', '山田', '%E5%B1%B1%E7%94%B0'],
  ])('percent-encodes %s in a claim', (_description, claim, expected) => {
    const headers = asObject(identityHeaders({ sub: claim, email: claim, preferredUsername: claim, groups: [] }, 'token'));
    expect([headers['X-Auth-Request-User'], headers['X-Auth-Request-Email'], headers['X-Auth-Request-Preferred-Username']]).toEqual([
      expected,
      expected,
      expected,
    ]);
  });

  it.each(['ada\r\nX-Injected: 1', 'José', '\u0000', 'a😀', '\u2028'])(
    'produces values res.setHeader accepts for a claim of %j',
    (claim) => {
      for (const [name, value] of identityHeaders({ sub: claim, email: claim, preferredUsername: claim, groups: [] }, 'token')) {
        expect(() => validateHeaderValue(name, value)).not.toThrow();
      }
    },
  );

  it('keeps printable ASCII claims as they are, except "%" which is encoded so decoding is exact', () => {
    const printable = Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
    const headers = asObject(identityHeaders({ sub: printable, groups: [] }, 'token'));
    expect(headers['X-Auth-Request-User']).toBe(printable.replace('%', '%25'));
  });
});

/** Go's RE2 `(?i)` prefix as JavaScript's `i` flag; the rest of the expression means the same in both. */
const authResponseHeaders = new RegExp(AUTH_RESPONSE_HEADERS_REGEX.replace(/^\(\?i\)/, ''), 'i');

describe('AUTH_RESPONSE_HEADERS_REGEX (Traefik authResponseHeadersRegex)', () => {
  it('is a case-insensitive RE2 expression anchored at both ends', () => {
    expect(AUTH_RESPONSE_HEADERS_REGEX).toMatch(/^\(\?i\)\^.*\$$/);
  });

  it.each([...IDENTITY_HEADERS, 'Authorization'])('matches every separator and case mix of %s, as Go canonicalises it', (name) => {
    const spellings = spellingsOf(name);
    expect(spellings.length).toBeGreaterThanOrEqual(name === 'Authorization' ? 3 : 27);
    const missed = spellings.filter((spelling) => !authResponseHeaders.test(spelling) || !authResponseHeaders.test(goCanonicalHeaderKey(spelling)));
    expect(missed).toEqual([]);
  });

  it.each(AUTH_RESPONSE_HEADERS)('matches %s, which the gateway answers with', (name) => {
    expect(authResponseHeaders.test(goCanonicalHeaderKey(name))).toBe(true);
  });

  it.each(['X-Auth-Request-Groups', 'x_auth_request_access_token', 'X.Auth.Request.Redirect'])('matches %s of the X-Auth-Request family, which no client may send', (name) => {
    expect(authResponseHeaders.test(name)).toBe(true);
  });

  it.each([
    'Set-Cookie',
    'Cookie2',
    'X-Cookie',
    'Proxy-Authorization',
    'Authorization-Info',
    'X-Auth-Request',
    'X-Auth-Token',
    'X-Authorization',
    'X-Request-Ids',
    'X-Trace-ID',
    'Content-Type',
    'Accept',
    'X-Forwarded-User',
    'XAuthRequestUser',
  ])('leaves %s alone', (name) => {
    expect(authResponseHeaders.test(name)).toBe(false);
  });
});
