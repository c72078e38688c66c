import Redis from 'ioredis';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';
import { waitUntil } from '../support/wait';

/**
 * Fault drills against a real Redis under steady traffic, with a breaker
 * reset timeout of a minute: recovery within the test's bounds can only come
 * from the breaker's own probe, and an opening can only come from the
 * failures seen since the fault, not from the rolling window (which the
 * warm-up fills with successes, as production traffic does).
 */
describe('Redis faults under steady /verify traffic', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    // Every request reaches Redis here; how the session cache bridges an outage is tests/integration/session-cache.test.ts's.
    env = await startTestEnvironment({ env: { REDIS_COMMAND_TIMEOUT_MS: '300', BREAKER_RESET_TIMEOUT_MS: '60000', SESSION_CACHE: 'off' } });
  });
  afterAll(() => env?.close());

  async function verify(browser: Browser): Promise<number> {
    return (await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') })).status;
  }
  async function readiness(): Promise<{ status: number; redis: string | undefined }> {
    const response = await fetch(`${env.gateway.url}/ready`);
    const body = (await response.json()) as { checks: Record<string, { status: string }> };
    return { status: response.status, redis: body.checks.redis?.status };
  }
  async function redisErrors(): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'bff_redis_operations_total', { status: 'error' });
  }
  async function warmUp(browser: Browser): Promise<void> {
    for (let call = 0; call < 200; call++) expect(await verify(browser)).toBe(200);
  }
  async function breakerStatus(): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'circuit_breaker_status', { service: 'redis' });
  }
  async function untilBreakerClosed(): Promise<void> {
    await waitUntil(async () => (await breakerStatus()) === 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
      timeoutMessage: () => 'the Redis breaker did not close',
    });
  }

  it('when Redis hangs, the breaker opens after a few timed-out commands and every later request gets a 503 without waiting on Redis', async () => {
    await untilBreakerClosed();
    const browser = await logIn(env.gateway, 'alice');
    await warmUp(browser);
    const errorsBefore = await redisErrors();
    env.redis.pause();
    try {
      const answers: number[] = [];
      for (let wave = 0; wave < 10; wave++) answers.push(...(await Promise.all(Array.from({ length: 10 }, () => verify(browser)))));
      expect(answers.every((status) => status === 503)).toBe(true);
      // Each timed-out command is one error; once the breaker is open, requests are refused before they reach Redis.
      expect((await redisErrors()) - errorsBefore).toBeLessThanOrEqual(20);
      expect(await readiness()).toEqual({ status: 503, redis: 'down' });
    } finally {
      env.redis.resume();
    }
  });

  it('when a hung Redis resumes, /ready and /verify come back together, long before the breaker reset timeout', async () => {
    await untilBreakerClosed();
    const browser = await logIn(env.gateway, 'bob');
    env.redis.pause();
    try {
      for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 10 }, () => verify(browser)));
      expect(await breakerStatus()).toBe(2);
      expect(await readiness()).toEqual({ status: 503, redis: 'down' });
    } finally {
      env.redis.resume();
    }
    await waitUntil(async () => (await readiness()).status === 200, { timeoutMs: 20_000, intervalMs: 50, timeoutMessage: () => '/ready did not return to 200' });
    expect(await verify(browser)).toBe(200);
  });

  it('when Redis is killed and restarted, /verify serves the same session again long before the breaker reset timeout', async () => {
    await untilBreakerClosed();
    const browser = await logIn(env.gateway, 'carol');
    const admin = new Redis(env.redis.url);
    await admin.save();
    admin.disconnect();
    await warmUp(browser);
    await env.redis.stop();
    for (let wave = 0; wave < 3; wave++) {
      for (const status of await Promise.all(Array.from({ length: 10 }, () => verify(browser)))) expect(status).toBe(503);
    }
    expect(await breakerStatus()).toBe(2);
    expect(await readiness()).toEqual({ status: 503, redis: 'down' });
    await env.redis.restart();
    await waitUntil(async () => (await verify(browser)) === 200, { timeoutMs: 20_000, intervalMs: 50, timeoutMessage: () => '/verify did not return to 200' });
    expect((await readiness()).status).toBe(200);
  });
});
