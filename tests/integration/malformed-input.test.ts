import { request as httpRequest } from 'node:http';
import { Browser, loginWithIdp } from '../support/browser';
import { forwarded, startTestEnvironment, type TestEnvironment } from '../support/environment';

/** Raw HTTP so that nothing between the test and the gateway cleans the input up. */
function rawRequest(url: string, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: target.hostname, port: target.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

const STACK_TRACE = /\bat .+\.(ts|js):\d+/;

describe('malformed input never gets a 5xx', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await startTestEnvironment();
  });
  afterAll(() => env.close());

  const validForwarded = forwarded('/api/orders');
  const verifyCases: Array<[string, Record<string, string>, number]> = (
  [
    ['an oversized cookie', { ...validForwarded, cookie: `bff-session=${'a'.repeat(7000)}` }, 401],
    ['a garbage cookie', { ...validForwarded, cookie: 'bff-session=%%%%; other' }, 401],
    ['a cookie with a forged signature', { ...validForwarded, cookie: `bff-session=s%3A${'A'.repeat(43)}.forged` }, 401],
    ['a cookie without the s: prefix', { ...validForwarded, cookie: `bff-session=${'A'.repeat(43)}` }, 401],
    ['cookies without values', { ...validForwarded, cookie: ';;=;bff-session;' }, 401],
    ['no X-Forwarded headers at all', {}, 400],
    ['no X-Forwarded-Uri', { 'X-Forwarded-Method': 'GET' }, 400],
    ['a lower-case or odd method', forwarded('/api', 'get;'), 400],
    ['a URI without a leading slash', forwarded('api/orders'), 400],
    ['a URI escaping the root', forwarded('/api/../../etc/passwd'), 400],
    ['a double-encoded dot segment', forwarded('/api/%252e%252e/admin'), 400],
    ['an encoded slash', forwarded('/api%2Forders'), 400],
    ['an invalid percent escape', forwarded('/api/%zz'), 400],
    ['an encoded NUL', forwarded('/api/%00'), 400],
    ['an encoded fragment', forwarded('/api/orders%23x'), 400],
    ['a very long URI', forwarded(`/api/${'x'.repeat(9000)}`), 400],
    ['a host with spaces and a scheme', forwarded('/api', 'GET', { 'X-Forwarded-Host': 'http://evil host' }), 400],
    ['a garbage X-Request-ID', { ...validForwarded, 'X-Request-ID': '<script>' }, 401],
    ['an unsafe method without X-CSRF', forwarded('/api/orders', 'POST'), 403],
    ['an unsafe method from another origin', forwarded('/api/orders', 'DELETE', { 'X-CSRF': '1', Origin: 'https://evil.example' }), 403],
    ['an unsafe method that is cross-site', forwarded('/api/orders', 'PUT', { 'X-CSRF': '1', 'Sec-Fetch-Site': 'cross-site' }), 403],
  ] as Array<[string, Record<string, string>, number]>);

  it.each(verifyCases.map(([name, headers, expected]) => [name, expected, headers] as const))('/verify with %s answers %i', async (_name, expected, headers) => {
    const response = await rawRequest(env.gateway.url, '/verify', headers);
    expect(response.status).toBe(expected);
    expect(response.body).not.toMatch(STACK_TRACE);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  const pathCases: Array<[string, string]> = [
    ['a bare percent in the path', '/auth/%'],
    ['an invalid UTF-8 escape', '/auth/%E0%A4%A'],
    ['a callback without state', '/auth/callback?code=abc'],
    ['a callback with an unknown state', '/auth/callback?code=abc&state=unknown'],
    ['a callback with a repeated state', '/auth/callback?code=abc&state=a&state=b'],
    ['a callback with an IdP error', '/auth/callback?error=access_denied&state=x'],
    ['a callback with a huge state', `/auth/callback?state=${'s'.repeat(4000)}`],
    ['a login with a nested query', '/auth/login?returnTo[a]=b&returnTo[b]=c'],
    ['a user request with a garbage cookie', '/auth/user'],
    ['an unknown endpoint', '/nope/%ff'],
  ];

  it.each(pathCases)('%s gets a clear 4xx or a redirect, not a 5xx', async (_name, path) => {
    const response = await rawRequest(env.gateway.url, path, { cookie: 'bff-session=s%3Agarbage.sig; bff-login=%%' });
    expect(response.status).toBeGreaterThanOrEqual(300);
    expect(response.status).toBeLessThan(500);
    expect(response.body).not.toMatch(STACK_TRACE);
  });

  const hostileReturnTo = ['//evil.example', '/\\evil.example', 'https://evil.example', '/%2F%2Fevil.example', '%2F%2Fevil.example', '/%5Cevil.example', '/\t/evil.example', 'javascript:alert(1)', '/%0d%0aSet-Cookie:x=1'];

  it.each(hostileReturnTo)('a login with returnTo=%j ends on the gateway origin at /', async (returnTo) => {
    const browser = new Browser();
    const result = await loginWithIdp(browser, `${env.gateway.url}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, { username: 'mallory' });
    expect(result.finalUrl).toBe(`${env.gateway.url}/`);
  });

  it('a replayed callback URL is refused: the login transaction is single-use', async () => {
    const browser = new Browser();
    const result = await loginWithIdp(browser, `${env.gateway.url}/auth/login?returnTo=%2F`, { username: 'trent' });
    const callback = result.hops.find((hop) => hop.includes('/auth/callback'));
    expect(callback).toBeDefined();
    const replay = await browser.request(callback!);
    expect(replay.status).toBe(400);
  });

  it('a callback from another browser than the one that started the login is refused, and the session is not created', async () => {
    const attacker = new Browser();
    const started = await attacker.request(`${env.gateway.url}/auth/login?returnTo=%2F`);
    // Log in at the IdP only, stopping where the IdP sends the browser back to the gateway.
    const atIdpOnly = new Browser({ isAllowedHost: (host) => host === 'localhost' });
    const result = await loginWithIdp(atIdpOnly, started.headers.get('location')!, { username: 'attacker' });
    expect(result.finalUrl).toContain('/auth/callback');
    const victim = new Browser();
    const answer = await victim.request(result.finalUrl);
    expect(answer.status).toBe(400);
    expect(victim.cookie('bff-session', env.gateway.url)).toBeUndefined();
  });
});
