import { safeReturnTo } from '../../src/oidc/return-to';

const PUBLIC_ORIGIN = 'https://app.example.com';

describe('safeReturnTo', () => {
  it.each([
    ['/', '/'],
    ['/a/b?x=1#h', '/a/b?x=1#h'],
    ['/orders/42', '/orders/42'],
    ['/search?q=a%20b&page=2', '/search?q=a%20b&page=2'],
    ['/a/../b', '/b'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/path?next=https://evil.example', '/path?next=https://evil.example'],
  ])('accepts the local path %j as %j', (candidate, expected) => {
    expect(safeReturnTo(candidate, PUBLIC_ORIGIN)).toBe(expected);
  });

  it.each([
    ['a protocol-relative URL', '//evil.example'],
    ['a protocol-relative URL with a path', '//evil.example/a'],
    ['a backslash after the slash', '/\\evil.example'],
    ['a backslash first', '\\\\evil.example'],
    ['an absolute https URL', 'https://evil.example'],
    ['an absolute URL on our own origin', 'https://app.example.com/a'],
    ['a scheme without slashes', 'http:evil.example'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a data: URL', 'data:text/html,<script>alert(1)</script>'],
    ['an encoded "//" after a slash', '/%2F%2Fevil.example'],
    ['an encoded "/" after a slash', '/%2Fevil.example'],
    ['a lower-case encoded "//"', '/%2f%2fevil.example'],
    ['an encoded "//" without a leading slash', '%2F%2Fevil.example'],
    ['an encoded backslash', '/%5Cevil.example'],
    ['a double-encoded "//"', '/%252F%252Fevil.example'],
    ['a triple-encoded "//"', '/%25252F%25252Fevil.example'],
    ['a double-encoded backslash', '/%255Cevil.example'],
    ['a tab between the slashes', '/\t/evil.example'],
    ['a newline between the slashes', '/\n/evil.example'],
    ['a carriage return between the slashes', '/\r/evil.example'],
    ['a NUL', '/\u0000/evil.example'],
    ['an encoded tab between the slashes', '/%09/evil.example'],
    ['an encoded newline between the slashes', '/%0A/evil.example'],
    ['an encoded NUL', '/%00/evil.example'],
    ['a double-encoded tab', '/%2509/evil.example'],
    ['an invalid percent escape', '/%zz'],
    ['a lone percent sign', '/%'],
    ['an empty string', ''],
    ['a relative path without a slash', 'orders'],
    ['a query only', '?x=1'],
    ['a fragment only', '#h'],
    ['a leading space', ' /orders'],
  ])('falls back to "/" for %s', (_description, candidate) => {
    expect(safeReturnTo(candidate, PUBLIC_ORIGIN)).toBe('/');
  });

  // The doc comment promises that every decoded layer is checked; the loop
  // stops after four decodings without checking the fourth layer.
  it('falls back to "/" for a "//" hidden under four layers of encoding', () => {
    expect(safeReturnTo('/%2525252F%2525252Fevil.example', PUBLIC_ORIGIN)).toBe('/');
  });

  it('accepts a path of 2048 characters', () => {
    const candidate = `/${'a'.repeat(2047)}`;
    expect(safeReturnTo(candidate, PUBLIC_ORIGIN)).toBe(candidate);
  });

  it('falls back to "/" for a path longer than 2048 characters', () => {
    expect(safeReturnTo(`/${'a'.repeat(2048)}`, PUBLIC_ORIGIN)).toBe('/');
  });

  it.each([
    ['an array', ['/orders']],
    ['an object', { path: '/orders' }],
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
  ])('falls back to "/" for %s', (_description, candidate) => {
    expect(safeReturnTo(candidate, PUBLIC_ORIGIN)).toBe('/');
  });

  it('always answers a path that the URL parser keeps on our origin', () => {
    for (const candidate of ['/a/b?x=1#h', '/%2e%2e/%2e%2e/x', '/a/./b', '/;@evil.example']) {
      const answer = safeReturnTo(candidate, PUBLIC_ORIGIN);
      expect(new URL(answer, PUBLIC_ORIGIN).origin).toBe(PUBLIC_ORIGIN);
    }
  });
});
