import { validateHeaderName, validateHeaderValue } from 'node:http';
import { AUTH_RESPONSE_HEADERS, SPOOFABLE_VARIANTS, identityHeaders as flatIdentityHeaders } from '../../src/forwardauth/identity-headers';
import type { SessionUser } from '../../src/session/session-data';

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
  it('sends every identity header, empty, on an anonymous allow', () => {
    const headers = asObject(identityHeaders(undefined, undefined));
    expect(headers).toEqual(
      Object.fromEntries(AUTH_RESPONSE_HEADERS.filter((name) => name !== 'X-Request-ID').map((name) => [name, ''])),
    );
  });

  it('covers every authResponseHeaders entry except X-Request-ID, which the route sets', () => {
    const names = identityHeaders(USER, 'token').map(([name]) => name);
    expect(new Set(names)).toEqual(new Set(AUTH_RESPONSE_HEADERS.filter((name) => name !== 'X-Request-ID')));
  });

  it('names each header once', () => {
    const names = identityHeaders(USER, 'token').map(([name]) => name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
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

  it.each([
    'X_Auth_Request_User',
    'X.Auth.Request.User',
    'X_Auth_Request_Email',
    'X.Auth.Request.Email',
    'X_Auth_Request_Preferred_Username',
    'X.Auth.Request.Preferred.Username',
  ])('sends the spoofable variant %s, empty, even for a logged-in user', (variant) => {
    const headers = asObject(identityHeaders(USER, 'access-token'));
    expect(headers[variant]).toBe('');
  });

  it('lists both the all-dashes and the suffix-only "_" and "." spellings as spoofable', () => {
    expect(SPOOFABLE_VARIANTS).toHaveLength(12);
    expect(SPOOFABLE_VARIANTS).toEqual(expect.arrayContaining(['X_Auth_Request_User', 'X-Auth-Request_User', 'X-Auth-Request.Preferred.Username']));
  });

  it('lists the spoofable variants among the authResponseHeaders', () => {
    expect(AUTH_RESPONSE_HEADERS).toEqual(expect.arrayContaining([...SPOOFABLE_VARIANTS, 'Authorization', 'X-Request-ID']));
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
