import Redis from 'ioredis';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, MovableClock, type RunningGateway } from '../support/gateway';
import { REFRESH_BACKOFF_SCHEDULE } from '../../src/session/refresh-backoff';

/** The test IdP issues 300 s access tokens; 250 s later they are inside the 60 s refresh window. */
const INTO_REFRESH_WINDOW_MS = 250_000;
const LEASE_MS = 400;

async function bearerFrom(browser: Browser, gateway: RunningGateway): Promise<{ status: number; token: string | undefined }> {
  const response = await browser.request(`${gateway.url}/verify`, { headers: forwarded('/api/orders') });
  return { status: response.status, token: response.headers.get('authorization')?.replace('Bearer ', '') };
}

describe('token refresh inside /verify', () => {
  let env: TestEnvironment;
  let replica: RunningGateway;
  let redis: Redis;
  const clock = new MovableClock();

  beforeAll(async () => {
    env = await startTestEnvironment({ gateway: { clock, refreshLeaseMs: LEASE_MS }, env: { BREAKER_RESET_TIMEOUT_MS: '500' } });
    replica = await env.startReplica();
    redis = new Redis(env.redis.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await env.close();
  });
  beforeEach(() => env.idp.reset());

  async function raceTwoUsers(first: string, second: string) {
    const browsers = { [first]: await logIn(env.gateway, first), [second]: await logIn(env.gateway, second) };
    const before = { [first]: (await bearerFrom(browsers[first]!, env.gateway)).token, [second]: (await bearerFrom(browsers[second]!, env.gateway)).token };
    clock.advance(INTO_REFRESH_WINDOW_MS);
    const calls = Array.from({ length: 44 }, (_, index) => {
      const user = index % 2 === 0 ? first : second;
      const gateway = index % 4 < 2 ? env.gateway : replica;
      return bearerFrom(browsers[user]!, gateway).then((answer) => ({ user, ...answer }));
    });
    return { before, answers: await Promise.all(calls) };
  }

  function expectOneRefreshEach(answers: Array<{ user: string; status: number; token: string | undefined }>, before: Record<string, string | undefined>) {
    const tokensByUser = new Map<string, Set<string | undefined>>();
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      tokensByUser.set(answer.user, (tokensByUser.get(answer.user) ?? new Set()).add(answer.token));
    }
    const users = [...tokensByUser.keys()];
    for (const user of users) {
      const tokens = [...tokensByUser.get(user)!];
      expect(tokens).toHaveLength(1);
      expect(tokens[0]).not.toBe(before[user]);
    }
    expect([...tokensByUser.get(users[0]!)!][0]).not.toBe([...tokensByUser.get(users[1]!)!][0]);
  }

  it('refreshes each session exactly once when 44 concurrent calls hit two replicas, and never mixes users', async () => {
    const { before, answers } = await raceTwoUsers('alice', 'bob');
    expectOneRefreshEach(answers, before);
    expect((await env.idp.stats()).refreshGrants).toEqual({ alice: 1, bob: 1 });
  });

  it('still refreshes exactly once when the IdP is slower than the lock lifetime, because the lock is renewed', async () => {
    await env.idp.setTokenDelay(LEASE_MS * 4);
    const { before, answers } = await raceTwoUsers('carol', 'dave');
    expectOneRefreshEach(answers, before);
    expect((await env.idp.stats()).refreshGrants).toEqual({ carol: 1, dave: 1 });
  });

  it('stores the rotated refresh token: a second refresh later works', async () => {
    const browser = await logIn(env.gateway, 'erin');
    clock.advance(INTO_REFRESH_WINDOW_MS);
    const first = await bearerFrom(browser, replica);
    clock.advance(INTO_REFRESH_WINDOW_MS + 300_000);
    const second = await bearerFrom(browser, env.gateway);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.token).not.toBe(first.token);
    expect((await env.idp.stats()).refreshGrants).toEqual({ erin: 2 });
  });

  it('when the refresh token was revoked, verify answers 401 and removes the session', async () => {
    const browser = await logIn(env.gateway, 'frank');
    const sessionId = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '').slice(2, 45);
    await env.idp.revokeGrants('frank');
    clock.advance(INTO_REFRESH_WINDOW_MS);
    expect((await bearerFrom(browser, env.gateway)).status).toBe(401);
    expect(await redis.exists(`bff:sess:${sessionId}`)).toBe(0);
    expect(metricValue(await env.gateway.metricsText(), 'bff_token_refresh_failed_total', { reason: 'invalid_grant' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(await env.gateway.metricsText(), 'bff_sessions_destroyed_total', { reason: 'refresh_rejected' })).toBeGreaterThanOrEqual(1);
  });

  it('with the IdP token endpoint failing, a still-valid token is served and an expired one gives 503; recovery needs no restart', async () => {
    const browser = await logIn(env.gateway, 'grace');
    const original = await bearerFrom(browser, env.gateway);
    await env.idp.setTokenFailure(503);
    clock.advance(INTO_REFRESH_WINDOW_MS);
    const stillValid = await bearerFrom(browser, env.gateway);
    expect(stillValid).toEqual({ status: 200, token: original.token });

    clock.advance(60_000);
    const expired = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(expired.status).toBe(503);
    expect(expired.headers.get('retry-after')).toMatch(/^\d+$/);

    // Back within one back-off interval of the IdP's return, with no restart and no wait on the wall clock.
    await env.idp.setTokenFailure(null);
    clock.advance(REFRESH_BACKOFF_SCHEDULE.maxMs);
    const recovered = await bearerFrom(browser, env.gateway);
    expect(recovered.status).toBe(200);
    expect(recovered.token).not.toBe(original.token);
    expect(metricValue(await env.gateway.metricsText(), 'bff_token_refresh_failed_total', { reason: 'idp_unavailable' })).toBeGreaterThanOrEqual(1);
  });
});
