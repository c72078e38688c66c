import Redis from 'ioredis';
import { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, MovableClock, startGateway, TEST_SESSION_SECRET } from '../support/gateway';
import { bffTestClient, startTestIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/idp';
import { reservePort } from '../support/ports';
import { eventually } from '../support/wait';

describe('session protections', () => {
  let env: TestEnvironment;
  let redis: Redis;
  const clock = new MovableClock();

  beforeAll(async () => {
    env = await startTestEnvironment({ gateway: { clock }, env: { SESSION_ABSOLUTE_TTL_SECONDS: '3600', SESSION_IDLE_TTL_SECONDS: '1800' } });
    redis = new Redis(env.redis.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await env.close();
  });

  function sessionKeyOf(browser: Browser): string {
    return `bff:sess:${decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '').slice(2, 45)}`;
  }

  it('when a session is used from another user agent, verify answers 401, destroys it and counts the failure', async () => {
    const browser = await logIn(env.gateway, 'alice');
    const stolenCookie = `bff-session=${browser.cookie('bff-session', env.gateway.url)}`;
    const thief = await fetch(`${env.gateway.url}/verify`, { headers: { ...forwarded('/api/orders'), cookie: stolenCookie, 'user-agent': 'curl/8.0' } });
    expect(thief.status).toBe(401);
    expect(await thief.json()).toEqual({ error: 'session_binding' });
    expect(await redis.exists(sessionKeyOf(browser))).toBe(0);
    expect(metricValue(await env.gateway.metricsText(), 'bff_session_binding_failures_total', { reason: 'user_agent' })).toBe(1);
    expect((await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(401);
  });

  it('after the absolute lifetime, even an active session must log in again', async () => {
    const browser = await logIn(env.gateway, 'bob');
    expect((await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(200);
    clock.advance(3601_000);
    expect((await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(401);
    expect(await redis.exists(sessionKeyOf(browser))).toBe(0);
  });

  it('slides the idle expiry from /verify without rewriting the session on every call', async () => {
    const browser = await logIn(env.gateway, 'carol');
    const before = metricValue(await env.gateway.metricsText(), 'bff_redis_operations_total', { operation: 'expire' });
    for (let call = 0; call < 10; call++) await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    const after = metricValue(await env.gateway.metricsText(), 'bff_redis_operations_total', { operation: 'expire' });
    expect(after - before).toBeLessThanOrEqual(1);
    expect(metricValue(await env.gateway.metricsText(), 'bff_redis_operations_total', { operation: 'set' })).toBeGreaterThan(0);
    expect(await redis.ttl(sessionKeyOf(browser))).toBeGreaterThan(1700);
  });

  it('keeps a well-formed X-Request-ID and replaces anything else', async () => {
    const incoming = '0190a3d2-7c4e-7b1a-9f3e-1234567890ab';
    const kept = await fetch(`${env.gateway.url}/verify`, { headers: { ...forwarded('/api/x'), 'X-Request-ID': incoming } });
    expect(kept.headers.get('x-request-id')).toBe(incoming);
    const replaced = await fetch(`${env.gateway.url}/health`, { headers: { 'X-Request-ID': 'drop table' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('answers /health without touching a dependency', async () => {
    const response = await fetch(`${env.gateway.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'healthy', service: 'bff-service', version: expect.any(String), timestamp: expect.any(String) });
  });

  it('reports each dependency in /ready', async () => {
    const response = await fetch(`${env.gateway.url}/ready`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; checks: Record<string, { status: string; latencyMs?: number }> };
    expect(body.status).toBe('ready');
    expect(body.checks.redis).toMatchObject({ status: 'up', latencyMs: expect.any(Number) });
    expect(body.checks.idp?.status).toBe('up');
    expect(Object.keys(body.checks).sort()).toEqual(['frontends', 'idp', 'kafka', 'pdp', 'redis']);
  });
});

describe('TRUSTED_PROXIES', () => {
  it('refuses /verify from a caller outside the trusted ranges and serves one inside them', async () => {
    const outside = await startTestEnvironment({ withRedis: false, env: { TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8' } });
    try {
      const response = await fetch(`${outside.gateway.url}/verify`, { headers: forwarded('/api/orders') });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: 'untrusted_proxy' });
    } finally {
      await outside.close();
    }
    const inside = await startTestEnvironment({ withRedis: false, env: { TRUSTED_PROXIES: '127.0.0.0/8' } });
    try {
      const browser = await logIn(inside.gateway, 'dave');
      expect((await browser.request(`${inside.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status).toBe(200);
    } finally {
      await inside.close();
    }
  });
});

describe('an IdP that is down at start-up', () => {
  it('makes the gateway not ready instead of dead, and ready once the IdP comes up', async () => {
    const gatewayPort = await reservePort();
    // Held (closing every connection, as a down IdP would) until the IdP process binds it.
    const idpPort = await reservePort();
    const publicUrl = `http://127.0.0.1:${gatewayPort.port}`;
    const gatewayStarting = startGateway({
      port: gatewayPort,
      env: { OIDC_ISSUER: `http://localhost:${idpPort.port}`, OIDC_CLIENT_ID: TEST_CLIENT_ID, OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET, SESSION_SECRET: TEST_SESSION_SECRET },
    });
    // startGateway waits for discovery, so probe the port while it waits.
    const notReady = await eventually(() => fetch(`${publicUrl}/ready`).then((response) => response.status, () => 0), (status) => status !== 0, {
      what: 'the gateway to listen',
    });
    expect(notReady).toBe(503);
    const login = await fetch(`${publicUrl}/auth/login`, { redirect: 'manual' });
    expect(login.status).toBe(503);
    expect(login.headers.get('retry-after')).toMatch(/^\d+$/);

    await idpPort.release();
    const idp = await startTestIdp({ port: idpPort.port, clients: [bffTestClient({ redirect_uris: [`${publicUrl}/auth/callback`] })] });
    const gateway = await gatewayStarting;
    try {
      expect((await fetch(`${gateway.url}/ready`)).status).toBe(200);
      const browser = await logIn(gateway, 'erin');
      expect((await browser.request(`${gateway.url}/auth/user`)).status).toBe(200);
    } finally {
      await gateway.close();
      await idp.stop();
    }
  });
});
