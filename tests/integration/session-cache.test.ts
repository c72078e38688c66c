import Redis from 'ioredis';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, MovableClock, type RunningGateway } from '../support/gateway';
import { eventually } from '../support/wait';
import { SESSION_CACHE_BOUND_MS } from '../../src/session/cached-session-store';
import { SESSION_KEY_PREFIX } from '../../src/session/redis-session-store';

/**
 * SESSION_CACHE=on across two replicas on one real Redis: a steady /verify
 * is answered from memory, and every change that matters reaches the other
 * replica (by announcement at once, by the cache bound when an announcement
 * is lost). The clock of both replicas is the test's, so the bound is shown
 * by moving time, not by waiting for it.
 */
describe('the session cache across replicas', () => {
  let env: TestEnvironment;
  let replica: RunningGateway;
  let redis: Redis;
  const clock = new MovableClock();

  beforeAll(async () => {
    env = await startTestEnvironment({ gateway: { clock }, env: { SESSION_CACHE: 'on' } });
    replica = await env.startReplica();
    redis = new Redis(env.redis.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await env?.close();
  });

  function sessionIdOf(browser: Browser): string {
    const cookie = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '');
    return cookie.slice(2, cookie.lastIndexOf('.'));
  }
  async function verify(gateway: RunningGateway, browser: Browser, headers: Record<string, string> = {}): Promise<Response> {
    return browser.request(`${gateway.url}/verify`, { headers: { ...forwarded('/api/orders'), ...headers } });
  }
  async function sessionReads(gateway: RunningGateway): Promise<number> {
    return metricValue(await gateway.metricsText(), 'bff_redis_operations_total', { operation: 'get' });
  }
  async function invalidationsReceived(gateway: RunningGateway): Promise<number> {
    return metricValue(await gateway.metricsText(), 'bff_session_cache_invalidation_lag_seconds_count');
  }

  it('answers a steady /verify from memory: no Redis read after the first, every later call a cache hit', async () => {
    const browser = await logIn(env.gateway, 'alice');
    expect((await verify(replica, browser)).status).toBe(200);
    const readsBefore = await sessionReads(replica);
    const hitsBefore = metricValue(await replica.metricsText(), 'bff_session_cache_requests_total', { result: 'hit' });
    for (let call = 0; call < 20; call++) expect((await verify(replica, browser)).status).toBe(200);
    expect(await sessionReads(replica)).toBe(readsBefore);
    expect(metricValue(await replica.metricsText(), 'bff_session_cache_requests_total', { result: 'hit' }) - hitsBefore).toBe(20);
  });

  it('when the user logs out on one replica, the other stops serving the session as soon as the announcement arrives', async () => {
    const browser = await logIn(env.gateway, 'bob');
    expect((await verify(replica, browser)).status).toBe(200);
    const announcementsBefore = await invalidationsReceived(replica);
    const logout = await browser.request(`${env.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
    expect(logout.status).toBe(200);
    await eventually(() => invalidationsReceived(replica), (count) => count > announcementsBefore, { what: 'the replica to receive the announcement' });
    expect((await verify(replica, browser)).status).toBe(401);
  });

  it('when a session ends without an announcement, the other replica stops serving it once the bound has passed', async () => {
    const browser = await logIn(env.gateway, 'carol');
    expect((await verify(replica, browser)).status).toBe(200);
    // Removed behind the gateways' backs, as a lost announcement or an expiry in Redis would leave it.
    await redis.del(`${SESSION_KEY_PREFIX}${sessionIdOf(browser)}`);
    expect((await verify(replica, browser)).status).toBe(200);
    clock.advance(SESSION_CACHE_BOUND_MS + 1);
    expect((await verify(replica, browser)).status).toBe(401);
  });

  it('when a session fails its binding on one replica, the other stops serving it', async () => {
    const browser = await logIn(env.gateway, 'dave');
    expect((await verify(replica, browser)).status).toBe(200);
    const announcementsBefore = await invalidationsReceived(replica);
    expect((await verify(env.gateway, browser, { 'user-agent': 'curl/8.0' })).status).toBe(401);
    await eventually(() => invalidationsReceived(replica), (count) => count > announcementsBefore, { what: 'the replica to receive the announcement' });
    expect((await verify(replica, browser)).status).toBe(401);
  });

  it('when one replica refreshes the token, the other serves the new token and the refresh token is presented once', async () => {
    const browser = await logIn(env.gateway, 'erin');
    const before = (await verify(replica, browser)).headers.get('authorization');
    await env.idp.reset();
    // Into the refresh window of the access token (300 s): both replicas would refresh now; one does.
    clock.advance(250_000);
    const announcementsBefore = await invalidationsReceived(replica);
    const refreshed = (await verify(env.gateway, browser)).headers.get('authorization');
    expect(refreshed).not.toBe(before);
    await eventually(() => invalidationsReceived(replica), (count) => count > announcementsBefore, { what: 'the replica to receive the announcement' });
    expect((await verify(replica, browser)).headers.get('authorization')).toBe(refreshed);
    expect((await env.idp.stats()).refreshGrants).toEqual({ erin: 1 });
  });

  it('with Redis hung, a cached session is served for at most the bound, then the answer is 503', async () => {
    const browser = await logIn(env.gateway, 'frank');
    expect((await verify(replica, browser)).status).toBe(200);
    env.redis.pause();
    try {
      expect((await verify(replica, browser)).status).toBe(200);
      clock.advance(SESSION_CACHE_BOUND_MS + 1);
      expect((await verify(replica, browser)).status).toBe(503);
    } finally {
      env.redis.resume();
    }
    await eventually(() => verify(replica, browser).then((response) => response.status), (status) => status === 200, { what: 'the session to be served again' });
  });
});
