import Redis from 'ioredis';
import { Browser, completeIdpLogin, followToIdpLogin, loginWithIdp } from '../support/browser';
import { CapturedLogs } from '../support/captured-logs';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';
import { isLoginCookieName, MAX_PENDING_LOGINS_PER_BROWSER } from '../../src/session/login-cookies';

/** The login cookies a browser holds for the gateway. */
function loginCookiesOf(browser: Browser, url: string) {
  return browser.jar.getCookiesSync(url, { http: true }).filter((cookie) => isLoginCookieName(cookie.key));
}

describe('login, verify and logout against a real IdP and Redis', () => {
  let env: TestEnvironment;
  let redis: Redis;
  const logs = new CapturedLogs();

  beforeAll(async () => {
    // Dozens of logins from one address in a minute: more than the default /auth rate limit allows.
    env = await startTestEnvironment({ env: { RATE_LIMIT_AUTH_PER_MINUTE: '100000' }, gateway: { logger: logs.logger } });
    redis = new Redis(env.redis.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await env.close();
  });

  it('logs in through the IdP pages, returns to the requested path and serves the token to the proxy', async () => {
    const browser = await logIn(env.gateway, 'alice', '/orders/42?tab=2');
    const sessionCookie = browser.cookie('bff-session', env.gateway.url);
    expect(sessionCookie).toMatch(/^s%3A[A-Za-z0-9_-]{43}\./);

    const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(verify.status).toBe(200);
    expect(verify.headers.get('authorization')).toMatch(/^Bearer \S+$/);
    expect(verify.headers.get('x-auth-request-user')).toBe('alice');
    expect(verify.headers.get('x-auth-request-email')).toBe('alice@example.test');
    expect(verify.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const user = await browser.request(`${env.gateway.url}/auth/user`);
    expect(user.status).toBe(200);
    const profile = (await user.json()) as Record<string, unknown>;
    expect(profile).toMatchObject({ sub: 'alice', email: 'alice@example.test' });
    expect(Date.parse(String(profile.sessionExpiresAt))).toBeGreaterThan(Date.now());
    expect(JSON.stringify(profile)).not.toMatch(/token/i);
  });

  it('lands on the returnTo path after the callback', async () => {
    const browser = await logIn(env.gateway, 'bob', '/orders/42?tab=2');
    const page = await browser.navigate(`${env.gateway.url}/auth/login?returnTo=%2Forders%2F42%3Ftab%3D2`);
    expect(page.url).toBe(`${env.gateway.url}/orders/42?tab=2`);
  });

  it('keeps only sealed records in Redis: a dump yields no token and no personal data', async () => {
    const browser = await logIn(env.gateway, 'carol');
    const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/x') });
    const accessToken = (verify.headers.get('authorization') ?? '').replace('Bearer ', '');
    expect(accessToken.length).toBeGreaterThan(10);
    const keys = await redis.keys('bff:sess:*');
    const dump = (await Promise.all(keys.map((key) => redis.get(key)))).join('\n');
    expect(dump).not.toContain('carol');
    expect(dump).not.toContain(accessToken);
  });

  it('logs out with the CSRF header only, revokes, returns the IdP logout URL, and /verify then answers 401', async () => {
    const browser = await logIn(env.gateway, 'dave');
    const sessionId = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '').slice(2, 45);
    expect(await redis.exists(`bff:sess:${sessionId}`)).toBe(1);

    const refused = await browser.request(`${env.gateway.url}/auth/logout`, { method: 'POST' });
    expect(refused.status).toBe(403);

    const logout = await browser.request(`${env.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
    expect(logout.status).toBe(200);
    const { logoutUrl } = (await logout.json()) as { logoutUrl: string };
    const url = new URL(logoutUrl);
    expect(url.origin).toBe(new URL(env.idp.issuer).origin);
    expect(url.searchParams.get('id_token_hint')).toBeTruthy();
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${env.gateway.url}/`);
    expect(await redis.exists(`bff:sess:${sessionId}`)).toBe(0);

    const apiCall = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(apiCall.status).toBe(401);
    const navigation = await browser.request(`${env.gateway.url}/verify`, {
      headers: forwarded('/dashboard?x=1', 'GET', { 'Sec-Fetch-Mode': 'navigate' }),
    });
    expect(navigation.status).toBe(302);
    expect(navigation.headers.get('location')).toBe(`${env.gateway.url}/auth/login?returnTo=%2Fdashboard%3Fx%3D1`);
  });

  it('gives every login a new session id, even in a browser that already had one', async () => {
    const browser = await logIn(env.gateway, 'erin');
    const first = browser.cookie('bff-session', env.gateway.url);
    await browser.navigate(`${env.gateway.url}/auth/login?returnTo=%2F`);
    const second = browser.cookie('bff-session', env.gateway.url);
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
  });

  it('counts active sessions from the session index, not by scanning Redis', async () => {
    await env.gateway.gateway.countActiveSessions();
    const before = metricValue(await env.gateway.metricsText(), 'bff_active_sessions_total');
    const browser = await logIn(env.gateway, 'frank');
    await env.gateway.gateway.countActiveSessions();
    expect(metricValue(await env.gateway.metricsText(), 'bff_active_sessions_total')).toBe(before + 1);
    await browser.request(`${env.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
    await env.gateway.gateway.countActiveSessions();
    const text = await env.gateway.metricsText();
    expect(metricValue(text, 'bff_active_sessions_total')).toBe(before);
    expect(metricValue(text, 'bff_background_tasks_total', { task_type: 'active_sessions_count', status: 'success' })).toBeGreaterThanOrEqual(3);
  });

  it('completes twelve logins started at once in tabs of one browser already signed in at the IdP, with no login failure logged', async () => {
    // Signed in at the IdP, as when a browser restores its tabs: each tab bounces through the IdP straight back to the callback.
    const browser = await logIn(env.gateway, 'grace');
    const from = logs.mark();
    const tabs = Array.from({ length: 12 }, (_, tab) => `/tab/${tab}`);

    const pages = await Promise.all(tabs.map((path) => browser.navigate(`${env.gateway.url}/auth/login?returnTo=${encodeURIComponent(path)}`)));

    expect(pages.map((page) => page.url)).toEqual(tabs.map((path) => `${env.gateway.url}${path}`));
    expect(pages.every((page) => page.hops.some((hop) => hop.startsWith(`${env.gateway.url}/auth/callback`)))).toBe(true);
    expect(logs.events('login_failure', from)).toEqual([]);
    expect(logs.events('login_success', from)).toHaveLength(12);
    expect(loginCookiesOf(browser, env.gateway.url)).toEqual([]);
    const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(verify.status).toBe(200);
    expect(verify.headers.get('x-auth-request-user')).toBe('grace');
  });

  it('completes the logins of twelve tabs that reached the IdP\'s login page together and are finished one after another', async () => {
    const browser = new Browser();
    const from = logs.mark();
    const tabs = Array.from({ length: 12 }, (_, tab) => `/tab/${tab}`);
    const loginPages = await Promise.all(tabs.map((path) => followToIdpLogin(browser, `${env.gateway.url}/auth/login?returnTo=${encodeURIComponent(path)}`)));
    expect(loginCookiesOf(browser, env.gateway.url)).toHaveLength(12);

    const finalUrls: string[] = [];
    for (const page of loginPages) finalUrls.push((await completeIdpLogin(browser, page, { username: 'grace' })).finalUrl);

    expect(finalUrls).toEqual(tabs.map((path) => `${env.gateway.url}${path}`));
    expect(logs.events('login_failure', from)).toEqual([]);
    expect(logs.events('login_success', from)).toHaveLength(12);
    expect(loginCookiesOf(browser, env.gateway.url)).toEqual([]);
  });

  it('completes a tab\'s login after another tab of the browser has logged in, and the later login\'s session is the one kept', async () => {
    const browser = new Browser();
    const first = await followToIdpLogin(browser, `${env.gateway.url}/auth/login?returnTo=%2Ffirst`);
    const second = await followToIdpLogin(browser, `${env.gateway.url}/auth/login?returnTo=%2Fsecond`);
    expect((await completeIdpLogin(browser, first, { username: 'heidi' })).finalUrl).toBe(`${env.gateway.url}/first`);
    const firstSessionId = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '').slice(2, 45);
    const from = logs.mark();

    expect((await completeIdpLogin(browser, second, { username: 'heidi' })).finalUrl).toBe(`${env.gateway.url}/second`);

    expect(logs.events('login_failure', from)).toEqual([]);
    const secondSessionId = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '').slice(2, 45);
    expect(secondSessionId).not.toBe(firstSessionId);
    expect(await redis.exists(`bff:sess:${firstSessionId}`)).toBe(0);
    expect(await redis.exists(`bff:sess:${secondSessionId}`)).toBe(1);
  });

  it('refuses with 400 and a browser_mismatch login failure a callback carried to another browser, which gets no session', async () => {
    const starter = new Browser();
    const started = await starter.request(`${env.gateway.url}/auth/login?returnTo=%2F`);
    // Someone logs in at the IdP with that authorization URL, stopping where the IdP sends the browser back to the gateway.
    const idpOnly = new Browser({ isAllowedHost: (host) => host === 'localhost' });
    const atIdp = await loginWithIdp(idpOnly, started.headers.get('location')!, { username: 'mallory' });
    expect(atIdp.finalUrl).toContain('/auth/callback');
    const other = new Browser();
    const from = logs.mark();

    const answer = await other.request(atIdp.finalUrl);

    expect(answer.status).toBe(400);
    expect(other.cookie('bff-session', env.gateway.url)).toBeUndefined();
    expect(logs.events('login_failure', from)).toEqual([expect.objectContaining({ reason: 'browser_mismatch', severity: 'warning' })]);
    // The transaction was taken before the check: the browser that started it cannot use it now either.
    expect((await starter.request(atIdp.finalUrl)).status).toBe(400);
  });

  it('refuses a login callback used a second time, in the same browser', async () => {
    const browser = new Browser();
    const result = await loginWithIdp(browser, `${env.gateway.url}/auth/login?returnTo=%2F`, { username: 'ivan' });
    const callback = result.hops.find((hop) => hop.startsWith(`${env.gateway.url}/auth/callback`));
    expect(callback).toBeDefined();
    const from = logs.mark();

    const replay = await browser.request(callback!);

    expect(replay.status).toBe(400);
    expect(logs.events('login_failure', from)).toEqual([expect.objectContaining({ reason: 'login_expired' })]);
  });

  it('binds each login with its own HttpOnly cookie that lives as long as the transaction and is cleared by the callback', async () => {
    const browser = new Browser();
    const start = await browser.request(`${env.gateway.url}/auth/login?returnTo=%2F`);
    const setCookies = start.headers.getSetCookie().filter((header) => header.startsWith('bff-login-'));
    expect(setCookies).toHaveLength(1);
    expect(setCookies[0]).toMatch(/^bff-login-[A-Za-z0-9_-]{16}=[0-9a-z]+\.[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const transaction = JSON.parse((await redis.get(`bff:login:${state}`)) ?? '{}') as Record<string, unknown>;
    expect(await redis.ttl(`bff:login:${state}`)).toBeGreaterThan(590);
    // Only a hash of the cookie is stored.
    expect(JSON.stringify(transaction)).not.toContain(setCookies[0]!.split(';')[0]!.split('=')[1]!.split('.')[1]);
  });

  it('keeps a browser from piling up login cookies: past the cap, a new login expires the oldest', async () => {
    const browser = new Browser();
    const started: string[] = [];
    for (let attempt = 0; attempt < MAX_PENDING_LOGINS_PER_BROWSER + 4; attempt += 1) {
      const response = await browser.request(`${env.gateway.url}/auth/login?returnTo=%2F`);
      started.push(new URL(response.headers.get('location')!).searchParams.get('state')!);
      expect(loginCookiesOf(browser, env.gateway.url).length).toBeLessThanOrEqual(MAX_PENDING_LOGINS_PER_BROWSER);
    }
    expect(loginCookiesOf(browser, env.gateway.url)).toHaveLength(MAX_PENDING_LOGINS_PER_BROWSER);
  });

  it('counts a created session, its callback and its verify answers in /metrics', async () => {
    const counts = async () => {
      const text = await env.gateway.metricsText();
      return {
        sessions: metricValue(text, 'bff_sessions_created_total'),
        verified: metricValue(text, 'bff_verify_duration_seconds_count', { status: '200' }),
        callbacks: metricValue(text, 'http_requests_total', { endpoint: '/auth/callback', status: '302' }),
      };
    };
    const before = await counts();
    const browser = await logIn(env.gateway, 'metrics-user');
    for (let call = 0; call < 2; call++) expect((await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(200);
    const after = await counts();
    expect({ sessions: after.sessions - before.sessions, verified: after.verified - before.verified, callbacks: after.callbacks - before.callbacks }).toEqual({
      sessions: 1,
      verified: 2,
      callbacks: 1,
    });
  });
});
