import { validateHeaderValue } from 'node:http';
import { parseForwardedRequest } from '../../src/forwardauth/forwarded-request';
import { identityHeaders } from '../../src/forwardauth/identity-headers';
import { normalisePath } from '../../src/forwardauth/normalise-path';
import { TrustedProxies } from '../../src/http/client-address';
import { safeReturnTo } from '../../src/oidc/return-to';
import { loadConfig, ConfigError } from '../../src/config/load-config';

const ORIGIN = 'https://app.example.com';

describe('hostile inputs are read the safe way', () => {
  it.each(['/.//evil.com', '/a/..//evil.com', '/%2e//evil.com', '/x/%2e%2e//evil.com', '/./\\evil.com'])(
    'returnTo %j whose dot segments resolve to a protocol-relative URL falls back to /',
    (candidate) => expect(safeReturnTo(candidate, ORIGIN)).toBe('/'),
  );

  it.each(['/admin/..;/public/x', '/admin/..%3b/public/x', '/admin/%2e%2e/public/x', '/admin/.%2e/public', '/a/.;x/b'])(
    'path %j, read differently by servlet containers and by proxies, is ambiguous',
    (path) => expect(normalisePath(path)).toBeUndefined(),
  );

  it('treats a trailing-dot host as the host itself', () => {
    const request = parseForwardedRequest({ 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/', 'x-forwarded-host': 'App.Example.com.:443' });
    expect(typeof request === 'object' && request.host).toBe('app.example.com');
  });

  it('believes only an IP address from X-Forwarded-For', () => {
    const proxies = new TrustedProxies(undefined);
    expect(proxies.clientAddress('203.0.113.7', '127.0.0.1')).toBe('203.0.113.7');
    expect(proxies.clientAddress(`${'x'.repeat(100)}`, '127.0.0.1')).toBe('127.0.0.1');
    expect(proxies.clientAddress('1.2.3.4, not-an-ip', '127.0.0.1')).toBe('127.0.0.1');
  });

  it('encodes "%" in claims so that a decoding upstream gets the claim back exactly', () => {
    const headers = identityHeaders({ sub: '100%0Aevil', groups: [] }, 'token');
    const user = headers[headers.indexOf('X-Auth-Request-User') + 1]!;
    expect(user).toBe('100%250Aevil');
    expect(decodeURIComponent(user)).toBe('100%0Aevil');
    expect(() => validateHeaderValue('x', user)).not.toThrow();
  });

  it.each(['redis://:p%zz@host:6379', 'redis://host:6379/abc'])('refuses REDIS_URL=%s at start-up with one line', (url) => {
    expect(() => loadConfig({ REDIS_URL: url })).toThrow(ConfigError);
    try {
      loadConfig({ REDIS_URL: url });
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([expect.stringMatching(/^REDIS_URL: /)]);
    }
  });
});
