import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/**
 * A /verify request written byte for byte: header lines exactly as given (a
 * header twice, raw UTF-8), which no HTTP client library would send as is.
 */
function verifyOverSocket(url: string, headerLines: readonly string[]): Promise<{ status: number; error: string | undefined }> {
  const target = new URL(url);
  const head = ['GET /verify HTTP/1.1', `Host: ${target.host}`, 'Connection: close', ...headerLines, '', ''].join('\r\n');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(target.port), target.hostname, () => socket.end(Buffer.from(head, 'utf8')));
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      // The JSON body, whether sent with Content-Length or in one chunk.
      const json = /\{.*\}/s.exec(text.slice(text.indexOf('\r\n\r\n') + 4))?.[0];
      const error = json === undefined ? undefined : (JSON.parse(json) as { error?: string }).error;
      resolve({ status: Number(text.split(' ', 2)[1]), error });
    });
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
    ['a list of sessions with a garbage cookie', '/auth/sessions'],
    ['a session handle with an invalid UTF-8 escape', '/auth/sessions/%E0%A4%A'],
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

describe('/verify reads each X-Forwarded-* header and path one way only, as the upstream would', () => {
  let env: TestEnvironment;
  const ROUTES = `
routes:
  - name: assets
    pathPrefix: /public
    auth: public
  - name: everything
    pathPrefix: /
`;
  const others = ['X-Forwarded-Method: GET', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: app.example.test'];

  beforeAll(async () => {
    const routesFile = join(mkdtempSync(join(tmpdir(), 'bff-routes-')), 'routes.yaml');
    writeFileSync(routesFile, ROUTES);
    env = await startTestEnvironment({ withRedis: false, env: { ROUTES_FILE: routesFile } });
  });
  afterAll(() => env.close());

  it.each([
    ['a public path', 200, '/public/app.js'],
    ['a path that needs a session', 401, '/admin/users'],
  ])('as a baseline, %s answers %i', async (_description, status, uri) => {
    expect((await verifyOverSocket(env.gateway.url, [...others, `X-Forwarded-Uri: ${uri}`])).status).toBe(status);
  });

  it.each([
    ['X-Forwarded-Uri sent twice, public first', ['X-Forwarded-Uri: /public/app.js', 'X-Forwarded-Uri: /admin/users', ...others]],
    ['X-Forwarded-Uri sent twice, public last', ['X-Forwarded-Uri: /admin/users', 'X-Forwarded-Uri: /public/app.js', ...others]],
    ['X-Forwarded-Uri as two values joined with a comma', ['X-Forwarded-Uri: /public/app.js, /admin/users', ...others]],
    ['X-Forwarded-Uri sent twice, the second empty', ['X-Forwarded-Uri: /public/app.js', 'X-Forwarded-Uri:', ...others]],
    ['X-Forwarded-Method sent twice', ['X-Forwarded-Uri: /public/app.js', 'X-Forwarded-Method: GET', ...others]],
    ['X-Forwarded-Host sent twice', ['X-Forwarded-Uri: /public/app.js', ...others, 'X-Forwarded-Host: admin.example.test']],
    ['X-Forwarded-Proto sent twice', ['X-Forwarded-Uri: /public/app.js', ...others, 'X-Forwarded-Proto: http']],
    ['X-Forwarded-Port sent twice', ['X-Forwarded-Uri: /public/app.js', ...others, 'X-Forwarded-Port: 443', 'X-Forwarded-Port: 8443']],
    ['X-Forwarded-Prefix sent twice', ['X-Forwarded-Uri: /public/app.js', ...others, 'X-Forwarded-Prefix: /public', 'X-Forwarded-Prefix: /admin']],
    ['X-Forwarded-Host as two values joined with a comma', ['X-Forwarded-Uri: /public/app.js', 'X-Forwarded-Method: GET', 'X-Forwarded-Host: app.example.test,admin.example.test']],
  ])('%s is malformed: 400', async (_description, lines) => {
    expect(await verifyOverSocket(env.gateway.url, lines)).toEqual({ status: 400, error: 'malformed_forwarded_headers' });
  });

  it('a list in X-Forwarded-For is not a repeat: it is a list by design', async () => {
    const lines = [...others, 'X-Forwarded-Uri: /public/app.js', 'X-Forwarded-For: 203.0.113.7, 10.0.0.1', 'X-Forwarded-For: 10.0.0.2'];
    expect((await verifyOverSocket(env.gateway.url, lines)).status).toBe(200);
  });

  it.each([
    ['fullwidth full stops, percent-encoded', '/public/%EF%BC%8E%EF%BC%8E/admin/users'],
    ['fullwidth full stops, raw UTF-8', '/public/\uff0e\uff0e/admin/users'],
    ['a one-dot leader pair, raw UTF-8', '/public/\u2024\u2024/admin/users'],
    ['a two-dot leader, percent-encoded', '/public/%E2%80%A5/admin/users'],
    ['a fullwidth solidus, raw UTF-8', '/public/..\uff0fadmin/users'],
    ['a fullwidth reverse solidus, percent-encoded', '/public/..%EF%BC%BCadmin/users'],
    ['a small reverse solidus, raw UTF-8', '/public/..\ufe68admin/users'],
    ['fullwidth letters spelling a route segment', '/\uff41\uff44\uff4d\uff49\uff4e/users'],
    ['a soft hyphen inside a route segment', '/pub%C2%ADlic/app.js'],
  ])('a path with %s is ambiguous: 400', async (_description, uri) => {
    expect(await verifyOverSocket(env.gateway.url, [...others, `X-Forwarded-Uri: ${uri}`])).toEqual({ status: 400, error: 'ambiguous_path' });
  });

  it.each([
    ['an accented letter, percent-encoded, under a public prefix', 200, '/public/caf%C3%A9.css'],
    ['Japanese, raw UTF-8, under a public prefix', 200, '/public/日本/app.js'],
    ['Japanese, percent-encoded, under a public prefix', 200, '/public/%E6%97%A5%E6%9C%AC'],
    ['an accented letter, raw UTF-8, elsewhere', 401, '/café/menu'],
    ['Japanese, raw UTF-8, elsewhere', 401, '/api/日本'],
  ])('an ordinary non-ASCII path (%s) still routes: %i', async (_description, status, uri) => {
    expect((await verifyOverSocket(env.gateway.url, [...others, `X-Forwarded-Uri: ${uri}`])).status).toBe(status);
  });
});
