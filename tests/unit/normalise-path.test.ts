import { normalisePath } from '../../src/forwardauth/normalise-path';

describe('normalisePath', () => {
  it.each([
    ['/', '/'],
    ['/api/orders', '/api/orders'],
    ['/api/orders/', '/api/orders'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a'],
    ['/a/b/../c', '/a/c'],
    ['/a/../../', undefined],
    ['/a//b///c', '/a/b/c'],
    ['//a', '/a'],
    ['/a;jsessionid=1/b', '/a/b'],
    ['/a/b;x=1', '/a/b'],
    ['/API/Orders', '/api/orders'],
    ['/api/%6Frders', '/api/orders'],
    ['/caf%C3%A9', '/café'],
    ['/a%20b', '/a b'],
  ])('normalises %j to %j', (raw, expected) => {
    expect(normalisePath(raw)).toBe(expected);
  });

  it('treats encoded dot segments as ambiguous: some servers resolve them, the proxy may not', () => {
    expect(normalisePath('/a/%2e%2e/b')).toBeUndefined();
  });

  it('treats upper-case encoded dot segments as ambiguous too', () => {
    expect(normalisePath('/a/%2E/b')).toBeUndefined();
  });

  it('treats "..;x" as ambiguous: a ".." segment to a servlet container, a name to Traefik', () => {
    expect(normalisePath('/a/b/..;x/c')).toBeUndefined();
  });

  it('still drops ";" parameters from ordinary segments', () => {
    expect(normalisePath('/a;jsessionid=1/b')).toBe('/a/b');
  });

  it.each([
    ['double encoding of a dot', '/a/%252e%252e/b'],
    ['double encoding of a letter', '/%2561dmin'],
    ['an encoded slash', '/a%2Fb'],
    ['an encoded slash in lower case', '/a%2fb'],
    ['an encoded backslash', '/a%5cb'],
    ['an encoded backslash in upper case', '/a%5Cb'],
    ['an encoded "#"', '/a%23b'],
    ['an encoded "?"', '/a%3Fb'],
    ['a raw backslash', '/a\\b'],
    ['a raw "#"', '/a#b'],
    ['a raw "?"', '/a?b'],
    ['a NUL character', '/a\u0000b'],
    ['an encoded NUL', '/a%00b'],
    ['a tab', '/a\tb'],
    ['an encoded newline', '/a%0ab'],
    ['an encoded carriage return', '/a%0Db'],
    ['a DEL character', '/a\u007fb'],
    ['".." above the root', '/..'],
    ['".." above the root after a segment', '/a/../..'],
    ['an encoded ".." above the root', '/%2e%2e/admin'],
    ['an invalid percent escape', '/a%zzb'],
    ['a lone percent sign', '/a%'],
    ['a truncated percent escape', '/a%2'],
    ['an invalid UTF-8 sequence', '/a%C3'],
    ['a relative path', 'a/b'],
    ['an empty path', ''],
    ['an absolute URL', 'http://evil/a'],
  ])('returns undefined for %s', (_description, raw) => {
    expect(normalisePath(raw)).toBeUndefined();
  });
});
