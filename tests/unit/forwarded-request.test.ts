import type { IncomingHttpHeaders } from 'node:http';
import { parseForwardedRequest, type ForwardedRequest } from '../../src/forwardauth/forwarded-request';

function forwarded(extra: IncomingHttpHeaders = {}): IncomingHttpHeaders {
  return {
    'x-forwarded-method': 'GET',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'app.example.com',
    'x-forwarded-uri': '/api/orders/1?expand=items',
    ...extra,
  };
}

function parsed(headers: IncomingHttpHeaders): ForwardedRequest {
  const result = parseForwardedRequest(headers);
  if (typeof result === 'string') throw new Error(`expected a request, got ${result}`);
  return result;
}

describe('parseForwardedRequest', () => {
  it('describes a well-formed forwarded request', () => {
    expect(parseForwardedRequest(forwarded())).toEqual({
      method: 'GET',
      host: 'app.example.com',
      uri: '/api/orders/1?expand=items',
      normalisedPath: '/api/orders/1',
      isNavigation: false,
    });
  });

  it.each([
    ['x-forwarded-method'],
    ['x-forwarded-uri'],
  ])('reports missing headers when %s is absent', (name) => {
    const headers = forwarded();
    delete headers[name];
    expect(parseForwardedRequest(headers)).toBe('missing_forwarded_headers');
  });

  it('reports missing headers when none are sent', () => {
    expect(parseForwardedRequest({})).toBe('missing_forwarded_headers');
  });

  it.each([
    ['a lower-case method', { 'x-forwarded-method': 'get' }],
    ['an empty method', { 'x-forwarded-method': '' }],
    ['a method with a space', { 'x-forwarded-method': 'GET X' }],
    ['a method longer than 16 letters', { 'x-forwarded-method': 'A'.repeat(17) }],
    ['a URI that is not a path', { 'x-forwarded-uri': 'https://evil.example/' }],
    ['an empty URI', { 'x-forwarded-uri': '' }],
    ['a URI longer than 8192 characters', { 'x-forwarded-uri': `/${'a'.repeat(8192)}` }],
    ['a host with a path', { 'x-forwarded-host': 'app.example.com/x' }],
    ['a host with an underscore', { 'x-forwarded-host': 'app_example.com' }],
    ['a host with credentials', { 'x-forwarded-host': 'user@app.example.com' }],
    ['an empty host', { 'x-forwarded-host': '' }],
    ['a host with a non-numeric port', { 'x-forwarded-host': 'app.example.com:http' }],
  ])('reports malformed headers for %s', (_description, extra) => {
    expect(parseForwardedRequest(forwarded(extra))).toBe('malformed_forwarded_headers');
  });

  it('strips the port from the host', () => {
    expect(parsed(forwarded({ 'x-forwarded-host': 'app.example.com:8443' })).host).toBe('app.example.com');
  });

  it('lower-cases the host', () => {
    expect(parsed(forwarded({ 'x-forwarded-host': 'App.Example.COM' })).host).toBe('app.example.com');
  });

  it('leaves the host undefined when the proxy does not send one', () => {
    const headers = forwarded();
    delete headers['x-forwarded-host'];
    expect(parsed(headers).host).toBeUndefined();
  });

  describe('a single-valued X-Forwarded-* header with more than one value is malformed (SPEC section 4)', () => {
    // Node joins a header sent twice with ", " (HTTP/1.1 and HTTP/2), so these are what arrives for a repeat.
    it.each([
      ['X-Forwarded-Uri sent twice', { 'x-forwarded-uri': '/admin, /public' }],
      ['X-Forwarded-Uri sent twice, the second empty', { 'x-forwarded-uri': '/public, ' }],
      ['X-Forwarded-Uri sent twice, the first empty', { 'x-forwarded-uri': ', /public' }],
      ['X-Forwarded-Uri sent twice with the same value', { 'x-forwarded-uri': '/public, /public' }],
      ['X-Forwarded-Uri with a tab', { 'x-forwarded-uri': '/public\t/admin' }],
      ['X-Forwarded-Method sent twice', { 'x-forwarded-method': 'GET, POST' }],
      ['X-Forwarded-Method joined without a space', { 'x-forwarded-method': 'GET,POST' }],
      ['X-Forwarded-Host sent twice', { 'x-forwarded-host': 'app.example.com, admin.example.com' }],
      ['X-Forwarded-Host joined without a space', { 'x-forwarded-host': 'app.example.com,admin.example.com' }],
      ['X-Forwarded-Proto sent twice', { 'x-forwarded-proto': 'https, http' }],
      ['X-Forwarded-Proto joined without a space', { 'x-forwarded-proto': 'https,http' }],
      ['X-Forwarded-Port sent twice', { 'x-forwarded-port': '443, 80' }],
      ['X-Forwarded-Server sent twice', { 'x-forwarded-server': 'traefik-a, traefik-b' }],
      ['X-Forwarded-Prefix sent twice', { 'x-forwarded-prefix': '/public, /admin' }],
      ['a header given as an array', { 'x-forwarded-uri': ['/public', '/admin'] as unknown as string }],
      ['an unread header given as an array', { 'x-forwarded-proto': ['https', 'http'] as unknown as string }],
    ])('%s', (_description, extra) => {
      expect(parseForwardedRequest(forwarded(extra))).toBe('malformed_forwarded_headers');
    });

    it('keeps a comma inside one X-Forwarded-Uri: a path or query may hold one', () => {
      expect(parsed(forwarded({ 'x-forwarded-uri': '/api/orders/1,2?ids=3,4' })).normalisedPath).toBe('/api/orders/1,2');
    });

    it('keeps a comma inside one X-Forwarded-Prefix', () => {
      expect(parsed(forwarded({ 'x-forwarded-prefix': '/a,b' })).uri).toBe('/api/orders/1?expand=items');
    });

    it('accepts a list in X-Forwarded-For, which is a list by design', () => {
      expect(parsed(forwarded({ 'x-forwarded-for': '203.0.113.7, 10.0.0.1' })).method).toBe('GET');
    });
  });

  describe('raw non-ASCII bytes in X-Forwarded-Uri', () => {
    /** What Node hands over for `text` sent as UTF-8 bytes: one character per byte. */
    const onTheWire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

    it('are read as UTF-8', () => {
      const request = parsed(forwarded({ 'x-forwarded-uri': onTheWire('/api/café/日本?q=é') }));
      expect([request.uri, request.normalisedPath]).toEqual(['/api/café/日本?q=é', '/api/café/日本']);
    });

    it.each([
      ['fullwidth full stops', '/public/\uff0e\uff0e/admin'],
      ['a fullwidth solidus', '/public\uff0fadmin'],
      ['a fullwidth reverse solidus', '/public\uff3cadmin'],
    ])('holding %s are an ambiguous path', (_description, uri) => {
      expect(parseForwardedRequest(forwarded({ 'x-forwarded-uri': onTheWire(uri) }))).toBe('ambiguous_path');
    });

    it('that are not UTF-8 are malformed', () => {
      expect(parseForwardedRequest(forwarded({ 'x-forwarded-uri': '/caf\u00e9' }))).toBe('malformed_forwarded_headers');
    });

    it('characters that cannot come off the wire are malformed', () => {
      expect(parseForwardedRequest(forwarded({ 'x-forwarded-uri': '/\u65e5' }))).toBe('malformed_forwarded_headers');
    });
  });

  it('keeps the URI exactly as sent, for the return after login', () => {
    expect(parsed(forwarded({ 'x-forwarded-uri': '/API//Orders/?q=%2F#x' })).uri).toBe('/API//Orders/?q=%2F#x');
  });

  it('normalises the path without the query', () => {
    expect(parsed(forwarded({ 'x-forwarded-uri': '/API//Orders/./1;v=2?next=/%2e%2e/admin' })).normalisedPath).toBe('/api/orders/1');
  });

  it('ignores ambiguity in the query string', () => {
    expect(parsed(forwarded({ 'x-forwarded-uri': '/a?x=%zz%2F%00' })).normalisedPath).toBe('/a');
  });

  it.each(['/a%2Fb', '/../admin', '/a%252e%252e/b', '/a%23b', '/a%zz', '/a\\b'])(
    'reports an ambiguous path for %j',
    (uri) => {
      expect(parseForwardedRequest(forwarded({ 'x-forwarded-uri': uri }))).toBe('ambiguous_path');
    },
  );

  describe('navigation', () => {
    it.each([
      ['GET with Sec-Fetch-Mode navigate', 'GET', { 'sec-fetch-mode': 'navigate' }, true],
      ['GET with Sec-Fetch-Mode cors', 'GET', { 'sec-fetch-mode': 'cors' }, false],
      ['GET with Sec-Fetch-Mode cors and Accept text/html', 'GET', { 'sec-fetch-mode': 'cors', accept: 'text/html' }, false],
      ['GET with Sec-Fetch-Mode no-cors', 'GET', { 'sec-fetch-mode': 'no-cors' }, false],
      ['GET with Accept text/html and no Sec-Fetch-Mode', 'GET', { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' }, true],
      ['GET with Accept application/json', 'GET', { accept: 'application/json' }, false],
      ['GET with no Accept and no Sec-Fetch-Mode', 'GET', {}, false],
      ['POST with Sec-Fetch-Mode navigate', 'POST', { 'sec-fetch-mode': 'navigate' }, false],
      ['POST with Accept text/html', 'POST', { accept: 'text/html' }, false],
      ['HEAD with Sec-Fetch-Mode navigate', 'HEAD', { 'sec-fetch-mode': 'navigate' }, false],
    ] as const)('%s is navigation: %j', (_description, method, extra, expected) => {
      expect(parsed(forwarded({ 'x-forwarded-method': method, ...extra })).isNavigation).toBe(expected);
    });
  });
});
