import Redis from 'ioredis';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';
import { eventually } from '../support/wait';

describe('/verify and /ready through a Redis outage', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    // Every request reaches Redis here; how the session cache bridges an outage is tests/integration/session-cache.test.ts's.
    env = await startTestEnvironment({ env: { REDIS_COMMAND_TIMEOUT_MS: '300', BREAKER_RESET_TIMEOUT_MS: '500', SESSION_CACHE: 'off' } });
  });
  afterAll(() => env.close());

  async function verifyStatus(browser: Awaited<ReturnType<typeof logIn>>) {
    const response = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    return { status: response.status, retryAfter: response.headers.get('retry-after'), setCookie: response.headers.get('set-cookie') };
  }

  async function readyStatus() {
    const response = await fetch(`${env.gateway.url}/ready`);
    return { status: response.status, body: (await response.json()) as { checks: Record<string, { status: string }> } };
  }

  it('answers 503 with Retry-After while Redis is killed, keeps the cookie, and serves the same session after Redis returns', async () => {
    const browser = await logIn(env.gateway, 'alice');
    expect((await verifyStatus(browser)).status).toBe(200);
    const admin = new Redis(env.redis.url);
    await admin.save();
    admin.disconnect();
    await env.redis.stop();

    // Keep calling until the breaker has seen enough failures to open (bounded): every answer meanwhile is a 503.
    for (let call = 0; call < 60; call++) {
      const answer = await verifyStatus(browser);
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toMatch(/^\d+$/);
      expect(answer.setCookie).toBeNull();
      if (call >= 8 && metricValue(await env.gateway.metricsText(), 'circuit_breaks_total', { service: 'redis' }) >= 1) break;
    }
    const notReady = await readyStatus();
    expect(notReady.status).toBe(503);
    expect(notReady.body.checks.redis?.status).toBe('down');
    const text = await env.gateway.metricsText();
    expect(metricValue(text, 'bff_redis_operations_total', { operation: 'get', status: 'error' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'circuit_breaks_total', { service: 'redis' })).toBeGreaterThanOrEqual(1);

    await env.redis.restart();
    expect((await eventually(readyStatus, (ready) => ready.status === 200, { what: '/ready to answer 200' })).status).toBe(200);
    expect((await eventually(() => verifyStatus(browser), (answer) => answer.status === 200, { what: '/verify to answer 200' })).status).toBe(200);
    // The breaker closed again by itself: a half-open probe succeeded.
    expect(metricValue(await env.gateway.metricsText(), 'circuit_breaker_status', { service: 'redis' })).toBe(0);
  });

  it('answers 503 when Redis hangs instead of waiting on it, and recovers when it resumes', async () => {
    const browser = await logIn(env.gateway, 'bob');
    env.redis.pause();
    try {
      const answers = await Promise.all(Array.from({ length: 6 }, () => verifyStatus(browser)));
      for (const answer of answers) expect(answer.status).toBe(503);
    } finally {
      env.redis.resume();
    }
    expect((await eventually(() => verifyStatus(browser), (answer) => answer.status === 200, { what: '/verify to answer 200' })).status).toBe(200);
  });

  it('never touches Redis for a request without a session cookie', async () => {
    // Session reads are what a cookie would cost; other counters may still move from earlier tests' background touches.
    const before = metricValue(await env.gateway.metricsText(), 'bff_redis_operations_total', { operation: 'get' });
    for (let call = 0; call < 5; call++) {
      const response = await fetch(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
      expect(response.status).toBe(401);
    }
    expect(metricValue(await env.gateway.metricsText(), 'bff_redis_operations_total', { operation: 'get' })).toBe(before);
  });
});
