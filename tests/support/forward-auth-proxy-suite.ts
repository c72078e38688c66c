import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDENTITY_HEADERS } from '../../src/forwardauth/identity-headers';
import { Browser, loginWithIdp } from './browser';
import { headerValues, type EchoedRequest, type EchoUpstream } from './echo-upstream';
import type { TestEnvironment } from './environment';
import { CASINGS, separatorMixesOf } from './header-spellings';

/**
 * One suite for every proxy the gateway ships a configuration for (Traefik's
 * ForwardAuth, Caddy's forward_auth), run against the real proxy on the
 * repository's own file, as oauth2-proxy runs one session-store suite against
 * every store: what a browser and an API see must not depend on the proxy.
 */

/** A proxy in front of a real gateway (real Redis, real IdP) and an echo upstream as the API. */
export interface ForwardAuthProxyStack {
  /** The proxy's origin: the only address a browser uses; the gateway's PUBLIC_URL. */
  readonly origin: string;
  readonly upstream: EchoUpstream;
  readonly environment: TestEnvironment;
  close(): Promise<void>;
}

/** Starts a stack whose gateway has these extra variables (ROUTES_FILE). */
export type StartForwardAuthProxyStack = (gatewayEnv: Record<string, string>) => Promise<ForwardAuthProxyStack>;

/** The gateway's routes in this suite: one public prefix, everything else under /api needs a session. */
const ROUTES_YAML = ['routes:', '  - name: catalogue', '    pathPrefix: /api/public', '    auth: public', '  - name: api', '    pathPrefix: /api', '    auth: session', ''].join('\n');

/** What a SPA's fetch() sends: not a navigation, so no login redirect. */
export const API_CALL = { accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin', 'sec-fetch-dest': 'empty' };
const NAVIGATION = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', 'sec-fetch-dest': 'document' };

/** The value every forged header carries: it must never reach the API. */
const FORGED = 'mallory';

/** A response as the client saw it. */
interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One request with header lines exactly as given (names in their case, a
 * name repeated as often as it appears), which fetch and Headers would fold
 * into lower case, and with the path exactly as written (URL parsing would
 * resolve its dot segments): the proxy must be shown what a hostile client sends.
 */
export function rawRequest(url: string, rawHeaders: readonly string[], init: { method?: string; body?: string; localAddress?: string } = {}): Promise<Answer> {
  const [, origin = '', path = '/'] = /^(https?:\/\/[^/]+)(\/.*)?$/.exec(url) ?? [];
  const { hostname, port, host } = new URL(origin);
  return new Promise((resolve, reject) => {
    // With headers as a list, node:http adds no Host of its own.
    const headers = rawHeaders.some((name, index) => index % 2 === 0 && name.toLowerCase() === 'host') ? [...rawHeaders] : ['Host', host, ...rawHeaders];
    if (init.body !== undefined) headers.push('Content-Length', String(Buffer.byteLength(init.body)));
    const localAddress = init.localAddress ?? nextClientAddress();
    const options = { hostname, port, path, method: init.method ?? 'GET', headers, localAddress, agent: false, signal: AbortSignal.timeout(30_000) };
    const request = httpRequest(options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(init.body);
  });
}

let clientCount = 0;

/**
 * A loopback address of its own for each request (127.0.1.0/24 onwards): to
 * the proxy's per-IP rate limit (deploy/traefik/dynamic.yml) every request of
 * the suite is another client, as the browsers and scripts it stands for
 * would be. A test of the limit itself passes one address.
 */
function nextClientAddress(): string {
  clientCount += 1;
  return `127.0.${1 + Math.floor(clientCount / 250)}.${1 + (clientCount % 250)}`;
}

function flat(headers: Record<string, string>): string[] {
  return Object.entries(headers).flat();
}

/** `name=value` of the cookie `browser` holds for `origin` under a name `name` matches. */
function cookiePair(browser: Browser, origin: string, name: string | RegExp): string {
  const found = browser.jar.getCookiesSync(origin, { http: true }).find((cookie) => (typeof name === 'string' ? cookie.key === name : name.test(cookie.key)));
  if (!found) throw new Error(`the browser holds no cookie ${String(name)} for ${origin}`);
  return `${found.key}=${found.value}`;
}

/**
 * An API call of `browser` as a flat header list: its user agent (the session
 * is bound to it) and its session cookie alone (the jar would add the test
 * IdP's cookies, which share the loopback host name); `extra` goes last.
 */
function browserHeaders(stack: ForwardAuthProxyStack, browser: Browser, extra: Record<string, string> = {}): string[] {
  const session = cookiePair(browser, stack.origin, stack.environment.gateway.config.session.cookieName);
  return flat({ 'User-Agent': browser.userAgent, ...API_CALL, Cookie: session, ...extra });
}

function echoed(answer: Answer): EchoedRequest {
  if (answer.status !== 200 || !String(answer.headers['content-type']).startsWith('application/json')) {
    throw new Error(`expected the echo upstream's answer, got ${answer.status}: ${answer.body.slice(0, 300)}`);
  }
  return JSON.parse(answer.body) as EchoedRequest;
}

/** Every header line at the API that carries a forged value, as "name: value". */
function forgeriesIn(seen: EchoedRequest): string[] {
  return seen.rawHeaders.filter(([, value]) => value.includes(FORGED)).map(([name, value]) => `${name}: ${value}`);
}

/** Non-empty Cookie values the API received (an empty header means none). */
function cookiesAt(seen: EchoedRequest): string[] {
  return headerValues(seen, 'Cookie').filter((value) => value !== '');
}

/** One request per (header, casing): every separator mix of that header in that casing, each carrying FORGED. */
const SPELLING_BATCHES = ['Authorization', ...IDENTITY_HEADERS].flatMap((name) =>
  CASINGS.map((casing) => ({ title: `${name}, ${casing.name}`, names: separatorMixesOf(name).map((mix) => casing.apply(mix)) })),
);

/**
 * Paths that try to reach the session-only /api/orders while looking like
 * the public /api/public to one of proxy, gateway or API: none may reach the
 * API without a session.
 */
const PATH_TRICKS = [
  '/api/public/../orders',
  '/api/public/%2e%2e/orders',
  '/api/public/%2E%2E/orders',
  '/api/public/.%2e/orders',
  '/api/public/..%2forders',
  '/api/public/%2e%2e%2forders',
  '/api/public/..;/orders',
  '/api/public;/../orders',
  '/api/public/%252e%252e/orders',
  '/api/public/..%5corders',
  '/api/public/%5c..%5corders',
  '/api/public/%c0%ae%c0%ae/orders',
  '/api/public/%ef%bc%8e%ef%bc%8e/orders',
  '/api/public/%e2%80%a5/orders',
  '/api/public//../orders',
  '/api/public/./../orders',
  '/API/PUBLIC/../orders',
  '/api/public%23/../orders',
  '/api/public%3f/../orders',
  '/api/public/x/../../orders',
  '/api/public/%2e/../../orders',
];

/**
 * The end-to-end contract of a ForwardAuth proxy in front of the gateway.
 * `start` builds the stack; the caller's file adds what is particular to its proxy.
 */
/** The proxy, the gateway, the IdP and Redis, on a loaded CI machine: Traefik alone may take a minute there. */
const STACK_START_TIMEOUT_MS = 180_000;

export function describeForwardAuthProxy(title: string, start: StartForwardAuthProxyStack, more?: (stack: () => ForwardAuthProxyStack) => void): void {
  describe(title, () => {
    let routesDirectory: string;
    let stack: ForwardAuthProxyStack;
    let alice: Browser;

    beforeAll(async () => {
      routesDirectory = mkdtempSync(join(tmpdir(), 'bff-routes-'));
      const routesFile = join(routesDirectory, 'routes.yaml');
      writeFileSync(routesFile, ROUTES_YAML);
      stack = await start({ ROUTES_FILE: routesFile });
      alice = await loggedInBrowser(stack, 'alice');
    }, STACK_START_TIMEOUT_MS);
    afterAll(async () => {
      await stack?.close();
      rmSync(routesDirectory, { recursive: true, force: true });
    });

    const api = (path: string) => `${stack.origin}${path}`;
    const upstreamUntouched = async (act: () => Promise<void>) => {
      const before = stack.upstream.requests.length;
      await act();
      expect(stack.upstream.requests.slice(before).map((request) => request.path)).toEqual([]);
    };

    describe('logging in and out', () => {
      it('logs in through the proxy: the session cookie is set for the proxy origin', () => {
        expect(alice.cookie(stack.environment.gateway.config.session.cookieName, stack.origin)).toEqual(expect.any(String));
      });

      it('logs out through the proxy with X-CSRF, after which the API answers 401', async () => {
        const carol = await loggedInBrowser(stack, 'carol');
        expect((await carol.request(api('/api/orders'), { headers: API_CALL })).status).toBe(200);
        const logout = await carol.request(api('/auth/logout'), { method: 'POST', headers: { ...API_CALL, origin: stack.origin, 'x-csrf': '1' } });
        expect(logout.status).toBe(200);
        expect(await logout.json()).toEqual({ logoutUrl: expect.stringContaining(new URL(stack.environment.idp.issuer).origin) });
        expect((await carol.request(api('/api/orders'), { headers: API_CALL })).status).toBe(401);
      });

      it('after the login redirect of a navigation, lands the browser on the API page it asked for', async () => {
        const result = await loginWithIdp(new Browser(), api('/api/orders?status=open'), { username: 'bob' });
        expect(result.finalUrl).toBe(api('/api/orders?status=open'));
        const seen = JSON.parse(result.body) as EchoedRequest;
        expect(seen.path).toBe('/api/orders?status=open');
        expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['bob']);
      });
    });

    describe('API calls', () => {
      it('reach the API with the bearer token, every identity header and a request id', async () => {
        const seen = echoed(await rawRequest(api('/api/orders'), browserHeaders(stack, alice)));
        expect(seen).toMatchObject({ method: 'GET', path: '/api/orders' });
        expect(headerValues(seen, 'Authorization')).toEqual([expect.stringMatching(/^Bearer [A-Za-z0-9._~+/=-]{20,}$/)]);
        expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['alice']);
        expect(headerValues(seen, 'X-Auth-Request-Email')).toEqual(['alice@example.test']);
        expect(headerValues(seen, 'X-Auth-Request-Preferred-Username')).toEqual(['alice']);
        expect(headerValues(seen, 'X-Request-ID')).toEqual([expect.stringMatching(/^[0-9a-f-]{36}$/)]);
        // Caddy 2.6 puts the literal placeholder in when a copied header is missing from the gateway's answer.
        expect(JSON.stringify(seen.rawHeaders)).not.toContain('{http.reverse_proxy');
      });

      it('pass the query string on', async () => {
        const seen = echoed(await rawRequest(api('/api/orders?status=open&sort=-date'), browserHeaders(stack, alice)));
        expect(seen.path).toBe('/api/orders?status=open&sort=-date');
      });

      it('without a session get the gateway 401 as JSON, and the API never sees them', async () => {
        await upstreamUntouched(async () => {
          const answer = await rawRequest(api('/api/orders'), flat(API_CALL));
          expect(answer.status).toBe(401);
          expect(JSON.parse(answer.body)).toEqual({ error: 'unauthenticated', login: `${stack.origin}/auth/login` });
        });
      });

      it('a navigation without a session gets a 302 to the login at PUBLIC_URL, with the path and query', async () => {
        await upstreamUntouched(async () => {
          const answer = await rawRequest(api('/api/orders?status=open&page=2'), flat(NAVIGATION));
          expect(answer.status).toBe(302);
          expect(answer.headers.location).toBe(`${stack.origin}/auth/login?returnTo=${encodeURIComponent('/api/orders?status=open&page=2')}`);
        });
      });

      it('a POST without X-CSRF gets 403 before it reaches the API', async () => {
        await upstreamUntouched(async () => {
          const answer = await rawRequest(api('/api/orders'), browserHeaders(stack, alice, { Origin: stack.origin, 'Content-Type': 'application/json' }), {
            method: 'POST',
            body: '{"item":"book"}',
          });
          expect(answer.status).toBe(403);
          expect(JSON.parse(answer.body)).toEqual({ error: 'csrf' });
        });
      });

      it('a same-origin POST with X-CSRF reaches the API with its body', async () => {
        const answer = await rawRequest(
          api('/api/orders'),
          browserHeaders(stack, alice, { Origin: stack.origin, 'X-CSRF': '1', 'Content-Type': 'application/json' }),
          { method: 'POST', body: '{"item":"book"}' },
        );
        expect(echoed(answer)).toMatchObject({ method: 'POST', path: '/api/orders', body: '{"item":"book"}' });
      });

      it('a public route reaches the API without a session, with the identity headers empty', async () => {
        const seen = echoed(await rawRequest(api('/api/public/items'), flat(API_CALL)));
        expect(seen.path).toBe('/api/public/items');
        for (const name of ['Authorization', ...IDENTITY_HEADERS]) expect(headerValues(seen, name).filter((value) => value !== '')).toEqual([]);
      });

      it('/verify is not exposed through the proxy', async () => {
        const answer = await rawRequest(api('/verify'), browserHeaders(stack, alice, { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders' }));
        expect(answer.status).toBe(404);
        expect(answer.headers['x-auth-request-user']).toBeUndefined();
      });
    });

    describe('X-Forwarded-* sent by the client', () => {
      const forgedForwarding = { 'X-Forwarded-Uri': '/api/public/x', 'X-Forwarded-Method': 'GET', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.66' };

      it('cannot make a session-only path public', async () => {
        await upstreamUntouched(async () => {
          expect((await rawRequest(api('/api/orders'), flat({ ...API_CALL, ...forgedForwarding }))).status).toBe(401);
        });
      });

      it('cannot turn a POST into a GET that skips the CSRF check', async () => {
        await upstreamUntouched(async () => {
          const answer = await rawRequest(api('/api/orders'), browserHeaders(stack, alice, forgedForwarding), { method: 'POST', body: '{}' });
          expect(answer.status).toBe(403);
        });
      });

      it('cannot move the login redirect to another host or path', async () => {
        const answer = await rawRequest(api('/api/orders?x=1'), flat({ ...NAVIGATION, ...forgedForwarding }));
        expect(answer.status).toBe(302);
        expect(answer.headers.location).toBe(`${stack.origin}/auth/login?returnTo=${encodeURIComponent('/api/orders?x=1')}`);
      });

      it('do not reach the API as the client wrote them', async () => {
        const seen = echoed(await rawRequest(api('/api/orders'), browserHeaders(stack, alice, forgedForwarding)));
        expect(JSON.stringify(headerValues(seen, 'X-Forwarded-For'))).not.toContain('203.0.113.66');
        expect(headerValues(seen, 'X-Forwarded-Host')).not.toContain('evil.example');
        expect(headerValues(seen, 'X-Forwarded-Uri')).not.toContain('/api/public/x');
      });
    });

    describe('path tricks', () => {
      it.each(PATH_TRICKS)('%s without a session never reaches the API', async (path) => {
        await upstreamUntouched(async () => {
          const answer = await rawRequest(`${stack.origin}${path}`, flat(API_CALL));
          expect([400, 401, 403, 404]).toContain(answer.status);
        });
      });
    });

    describe('identity headers spelled by the client', () => {
      it.each(SPELLING_BATCHES)('with a session, no spelling of $title reaches the API', async ({ names }) => {
        const forged = names.flatMap((name) => [name, FORGED]);
        const seen = echoed(await rawRequest(api('/api/orders'), [...browserHeaders(stack, alice), ...forged]));
        expect(forgeriesIn(seen)).toEqual([]);
        expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['alice']);
        expect(headerValues(seen, 'Authorization')).toEqual([expect.stringMatching(/^Bearer /)]);
      });

      it.each(SPELLING_BATCHES)('on a public route without a session, no spelling of $title reaches the API', async ({ names }) => {
        const forged = names.flatMap((name) => [name, FORGED]);
        const seen = echoed(await rawRequest(api('/api/public/items'), [...flat(API_CALL), ...forged]));
        expect(forgeriesIn(seen)).toEqual([]);
      });

      it.each(SPELLING_BATCHES)('without a session on a session-only route, no spelling of $title gets further than the 401', async ({ names }) => {
        const forged = names.flatMap((name) => [name, FORGED]);
        await upstreamUntouched(async () => {
          expect((await rawRequest(api('/api/orders'), [...flat(API_CALL), ...forged])).status).toBe(401);
        });
      });
    });

    describe("the gateway's cookies", () => {
      it('the session and login cookies never reach the API; the others arrive unchanged, in order', async () => {
        const browser = await loggedInBrowser(stack, 'dave');
        // A login started and not finished leaves the login-transaction cookie in the browser.
        await browser.request(api('/auth/login?returnTo=%2F'), { headers: NAVIGATION });
        const session = cookiePair(browser, stack.origin, stack.environment.gateway.config.session.cookieName);
        const login = cookiePair(browser, stack.origin, /^(__Host-)?bff-login(-.+)?$/);
        const cookie = ['theme=dark', session, 'lang=en-GB', login, 'ab="x y"', 'empty='].join('; ');
        const seen = echoed(await rawRequest(api('/api/orders'), flat({ 'User-Agent': browser.userAgent, ...API_CALL, Cookie: cookie })));
        expect(headerValues(seen, 'X-Auth-Request-User')).toEqual(['dave']);
        expect(cookiesAt(seen)).toEqual(['theme=dark; lang=en-GB; ab="x y"; empty=']);
      });

      it('a Cookie header holding only the gateway cookies arrives as none', async () => {
        const seen = echoed(await rawRequest(api('/api/orders'), browserHeaders(stack, alice)));
        expect(cookiesAt(seen)).toEqual([]);
      });

      it('a cookie whose value names the session cookie is kept as it is', async () => {
        const name = stack.environment.gateway.config.session.cookieName;
        const seen = echoed(await rawRequest(api('/api/orders'), browserHeaders(stack, alice, { Cookie: `next=${name}=x; ${cookiePair(alice, stack.origin, name)}` })));
        expect(cookiesAt(seen)).toEqual([`next=${name}=x`]);
      });

      it('on a public route, a stale or forged session cookie does not reach the API either', async () => {
        const name = stack.environment.gateway.config.session.cookieName;
        const seen = echoed(await rawRequest(api('/api/public/items'), flat({ ...API_CALL, Cookie: `a=1; ${name}=s%3Aforged.sig; b=2` })));
        expect(cookiesAt(seen)).toEqual(['a=1; b=2']);
      });
    });

    more?.(() => stack);
  });
}

/** A browser logged in through the proxy; fails with what it saw when the login does not end at the app with a session. */
export async function loggedInBrowser(stack: ForwardAuthProxyStack, username: string): Promise<Browser> {
  const browser = new Browser();
  const login = await loginWithIdp(browser, `${stack.origin}/auth/login?returnTo=%2F`, { username });
  if (login.finalUrl !== `${stack.origin}/` || !browser.cookie(stack.environment.gateway.config.session.cookieName, stack.origin)) {
    throw new Error(`login through the proxy ended at ${login.finalUrl} with ${login.response.status}: ${login.body.slice(0, 300)}`);
  }
  return browser;
}
