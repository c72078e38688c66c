import Redis from 'ioredis';
import type { Browser } from '../support/browser';
import { CapturedLogs, LOG_LEVEL } from '../support/captured-logs';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, MovableClock, type RunningGateway } from '../support/gateway';
import { waitUntil } from '../support/wait';
import { nominalBackoffMs, REFRESH_BACKOFF_SCHEDULE } from '../../src/session/refresh-backoff';

/** The test IdP issues 300 s access tokens. */
const ACCESS_TOKEN_TTL_MS = 300_000;
const PAST_EXPIRY_MS = ACCESS_TOKEN_TTL_MS + 1_000;
/** Inside the 60 s refresh window, still valid. */
const INTO_REFRESH_WINDOW_MS = 250_000;
const HAMMER_REQUESTS = 500;
const HAMMER_CONCURRENCY = 20;

interface Answer {
  readonly status: number;
  readonly token: string | undefined;
  readonly retryAfter: string | null;
}

async function verify(browser: Browser, gateway: RunningGateway): Promise<Answer> {
  const response = await browser.request(`${gateway.url}/verify`, { headers: forwarded('/api/orders') });
  await response.body?.cancel();
  return { status: response.status, token: response.headers.get('authorization')?.replace('Bearer ', ''), retryAfter: response.headers.get('retry-after') };
}

/**
 * The most attempts one replica can make at a session's refresh in
 * `elapsedMs`: one at once, then one after each back-off, each back-off at
 * least half its nominal interval.
 */
function maxAttemptsWithin(elapsedMs: number): number {
  let attempts = 1;
  let at = 0;
  for (let failures = 1; ; failures += 1) {
    at += nominalBackoffMs(failures) / 2;
    if (at > elapsedMs) return attempts;
    attempts += 1;
  }
}

describe('token refresh while the IdP is down', () => {
  let env: TestEnvironment;
  let replica: RunningGateway;
  let monitor: Redis;
  let redis: Redis;
  /** Every Redis command touching a refresh lock, as MONITOR saw it. */
  const lockCommands: string[] = [];
  /** ECHO markers MONITOR has seen: what was sent before one has been seen too. */
  const markersSeen = new Set<string>();
  const logs = new CapturedLogs();
  const clock = new MovableClock();

  beforeAll(async () => {
    // The IdP's breaker (open after five failures in a row) is the dependency-wide guard; a short reset
    // lets each test start with it closed, whatever the tests before it made the IdP fail.
    env = await startTestEnvironment({ gateway: { clock, logger: logs.logger }, env: { BREAKER_RESET_TIMEOUT_MS: '100' } });
    replica = await env.startReplica();
    redis = new Redis(env.redis.url);
    monitor = await redis.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // What a script runs is shown too: only the commands clients sent count.
      if (source.includes('lua')) return;
      if (args[0]?.toLowerCase() === 'echo' && args[1]) markersSeen.add(args[1]);
      if (args.some((arg) => arg.includes(':refresh-lock'))) lockCommands.push(args.join(' '));
    });
  });
  afterAll(async () => {
    monitor?.disconnect();
    redis?.disconnect();
    await env.close();
  });
  beforeEach(async () => {
    await env.idp.reset();
    await untilIdpBreakerLetsCallsThrough();
  });

  /** Until neither gateway's IdP breaker is open (half-open lets the next call through). */
  async function untilIdpBreakerLetsCallsThrough() {
    const isOpen = async (gateway: RunningGateway) => metricValue(await gateway.metricsText(), 'circuit_breaker_status', { service: 'idp' }) === 2;
    await waitUntil(async () => !(await isOpen(env.gateway)) && !(await isOpen(replica)), {
      timeoutMs: 5_000,
      intervalMs: 20,
      timeoutMessage: 'the IdP breaker stayed open for 5 s',
    });
  }

  /** Refresh attempts that failed for want of the IdP (its answer, or its open breaker), on both gateways. */
  async function failedAttempts() {
    const count = async (gateway: RunningGateway) => metricValue(await gateway.metricsText(), 'bff_token_refresh_failed_total', { reason: 'idp_unavailable' });
    return (await count(env.gateway)) + (await count(replica));
  }

  /** `requests` calls for one session, `HAMMER_CONCURRENCY` at a time, spread over `gateways`; and how long they took. */
  async function hammer(browser: Browser, gateways: readonly RunningGateway[], requests = HAMMER_REQUESTS) {
    const started = performance.now();
    const answers: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: HAMMER_CONCURRENCY }, async () => {
        while (next < requests) {
          const index = next;
          next += 1;
          answers.push(await verify(browser, gateways[index % gateways.length]!));
        }
      }),
    );
    return { answers, elapsedMs: performance.now() - started };
  }

  /** Where the counters stand: pass it to `costsSince`. */
  async function mark() {
    return { logs: logs.mark(), lockCommands: lockCommands.length, idpTokenRequests: (await env.idp.stats()).tokenRequests, failedAttempts: await failedAttempts() };
  }

  /** What happened since `mark`: IdP token requests, lock commands, refresh_failure events and warning lines. */
  async function costsSince(since: Awaited<ReturnType<typeof mark>>) {
    // MONITOR lines arrive on their own connection: once it has seen this marker, it has seen every command sent before.
    const marker = `costs-${performance.now()}`;
    await redis.echo(marker);
    await waitUntil(() => markersSeen.has(marker), { timeoutMs: 5_000, intervalMs: 10, timeoutMessage: 'MONITOR did not see the marker in 5 s' });
    return {
      idpTokenRequests: (await env.idp.stats()).tokenRequests - since.idpTokenRequests,
      attempts: (await failedAttempts()) - since.failedAttempts,
      lockCommands: lockCommands.length - since.lockCommands,
      refreshFailureEvents: logs.events('refresh_failure', since.logs).length,
      warnings: logs.linesAtLeast(LOG_LEVEL.warn, since.logs).length,
    };
  }

  it('with the token expired, 500 requests of one session make one IdP attempt per back-off interval, one event and one warning, and all get 503 with Retry-After', async () => {
    const browser = await logIn(env.gateway, 'alice');
    await env.idp.setTokenFailure(503);
    clock.advance(PAST_EXPIRY_MS);
    const before = await mark();

    const { answers, elapsedMs } = await hammer(browser, [env.gateway]);

    const costs = await costsSince(before);
    const attempts = maxAttemptsWithin(elapsedMs);
    expect(answers.filter((answer) => answer.status !== 503)).toEqual([]);
    for (const answer of answers) {
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(answer.retryAfter)).toBeLessThanOrEqual(REFRESH_BACKOFF_SCHEDULE.maxMs / 1000);
    }
    expect(costs.attempts).toBeGreaterThanOrEqual(1);
    expect(costs.attempts).toBeLessThanOrEqual(attempts);
    // An attempt the IdP's open breaker stopped reaches nothing: the breaker is the guard for the whole IdP.
    expect(costs.idpTokenRequests).toBeLessThanOrEqual(costs.attempts);
    // Per attempt: the lock taken (SET NX) and released (one script); nothing while backing off.
    expect(costs.lockCommands).toBeLessThanOrEqual(2 * costs.attempts);
    // The first failure of the outage: one refresh_failure event, and one warning besides the event's own line.
    expect(costs.refreshFailureEvents).toBe(1);
    expect(costs.warnings).toBe(2);
  });

  it('with the token expired, 500 requests of one session on two replicas cost each replica at most one IdP attempt per back-off interval', async () => {
    const browser = await logIn(env.gateway, 'bob');
    await env.idp.setTokenFailure(503);
    clock.advance(PAST_EXPIRY_MS);
    const before = await mark();

    const { answers, elapsedMs } = await hammer(browser, [env.gateway, replica]);

    const costs = await costsSince(before);
    const attempts = 2 * maxAttemptsWithin(elapsedMs);
    expect(answers.filter((answer) => answer.status !== 503)).toEqual([]);
    expect(costs.attempts).toBeLessThanOrEqual(attempts);
    expect(costs.idpTokenRequests).toBeLessThanOrEqual(costs.attempts);
    // A replica that waited on the other's attempt adopts its failure; each polls the lock a few times while it waits.
    expect(costs.lockCommands).toBeLessThanOrEqual(12 * attempts);
    expect(costs.refreshFailureEvents).toBeGreaterThanOrEqual(1);
    expect(costs.refreshFailureEvents).toBeLessThanOrEqual(2);
    expect(costs.warnings).toBeLessThanOrEqual(2 * costs.refreshFailureEvents);
  });

  it('with the token still valid, it is served to every request while the IdP is asked once per back-off interval', async () => {
    const browser = await logIn(env.gateway, 'carol');
    const original = await verify(browser, env.gateway);
    await env.idp.setTokenFailure(503);
    clock.advance(INTO_REFRESH_WINDOW_MS);
    const before = await mark();

    const { answers, elapsedMs } = await hammer(browser, [env.gateway]);

    const costs = await costsSince(before);
    expect(new Set(answers.map((answer) => `${answer.status} ${answer.token}`))).toEqual(new Set([`200 ${original.token}`]));
    expect(costs.attempts).toBeGreaterThanOrEqual(1);
    expect(costs.attempts).toBeLessThanOrEqual(maxAttemptsWithin(elapsedMs));
    expect(costs.idpTokenRequests).toBeLessThanOrEqual(costs.attempts);
    expect(costs.refreshFailureEvents).toBe(1);
  });

  it('waits longer after each failed attempt, up to thirty seconds, and Retry-After says how long is left', async () => {
    const browser = await logIn(env.gateway, 'dave');
    await env.idp.setTokenFailure(503);
    clock.advance(PAST_EXPIRY_MS);
    const before = await mark();
    const retryAfters: number[] = [];

    for (let failures = 1; failures <= 7; failures += 1) {
      const answer = await verify(browser, env.gateway);
      expect(answer.status).toBe(503);
      const retryAfter = Number(answer.retryAfter);
      expect(retryAfter).toBeLessThanOrEqual(Math.ceil(nominalBackoffMs(failures) / 1000));
      expect(retryAfter).toBeGreaterThanOrEqual(Math.floor(nominalBackoffMs(failures) / 2000));
      retryAfters.push(retryAfter);
      // Asking again before the back-off has passed changes nothing.
      const early = await verify(browser, env.gateway);
      expect(Number(early.retryAfter)).toBeLessThanOrEqual(retryAfter);
      clock.advance(retryAfter * 1000);
    }

    const costs = await costsSince(before);
    expect(costs.attempts).toBe(7);
    expect(costs.idpTokenRequests).toBeLessThanOrEqual(7);
    expect(retryAfters[6]).toBeGreaterThanOrEqual(REFRESH_BACKOFF_SCHEDULE.maxMs / 2000);
  });

  it('once the IdP is back, a session whose token expired during the outage works again within one back-off interval', async () => {
    const browser = await logIn(env.gateway, 'erin');
    const original = await verify(browser, env.gateway);
    await env.idp.setTokenFailure(503);
    clock.advance(PAST_EXPIRY_MS);
    await hammer(browser, [env.gateway, replica], 100);
    await env.idp.setTokenFailure(null);
    await untilIdpBreakerLetsCallsThrough();
    const before = await mark();

    clock.advance(REFRESH_BACKOFF_SCHEDULE.maxMs);
    const recovered = await verify(browser, env.gateway);
    const onReplica = await verify(browser, replica);

    expect(recovered.status).toBe(200);
    expect(recovered.token).not.toBe(original.token);
    expect(onReplica).toEqual(recovered);
    expect((await env.idp.stats()).refreshGrants).toEqual({ erin: 1 });
    expect(logs.linesAtLeast(LOG_LEVEL.info, before.logs).map((record) => record.msg)).toContain('token refresh works again after failed attempts');
  });
});
