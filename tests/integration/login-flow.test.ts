import Redis from 'ioredis';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';

describe('login, verify and logout against a real IdP and Redis', () => {
  let env: TestEnvironment;
  let redis: Redis;

  beforeAll(async () => {
    env = await startTestEnvironment();
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

  it('keeps only sealed tokens in Redis: a dump yields no usable token', async () => {
    const browser = await logIn(env.gateway, 'carol');
    const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/x') });
    const accessToken = (verify.headers.get('authorization') ?? '').replace('Bearer ', '');
    expect(accessToken.length).toBeGreaterThan(10);
    const keys = await redis.keys('bff:sess:*');
    const dump = (await Promise.all(keys.map((key) => redis.get(key)))).join('\n');
    expect(dump).toContain('carol');
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

  it('counts created sessions and verify answers in /metrics', async () => {
    const text = await env.gateway.metricsText();
    expect(metricValue(text, 'bff_sessions_created_total')).toBeGreaterThanOrEqual(4);
    expect(metricValue(text, 'bff_verify_duration_seconds_count', { status: '200' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, 'http_requests_total', { endpoint: '/auth/callback', status: '302' })).toBeGreaterThanOrEqual(4);
  });
});
