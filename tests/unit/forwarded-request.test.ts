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

  it('uses the first value when a header arrives as an array', () => {
    const request = parsed(forwarded({ 'x-forwarded-uri': ['/first', '/second'] as unknown as string }));
    expect(request.uri).toBe('/first');
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
