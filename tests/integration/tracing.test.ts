import type { ChildProcess } from 'node:child_process';
import { Browser, loginWithIdp } from '../support/browser';
import { forwarded } from '../support/environment';
import { TEST_SESSION_SECRET } from '../support/gateway';
import { bffTestClient, startTestIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { startBuiltGateway, type BuiltGateway } from '../support/built-gateway';
import { startRedis, type RedisServer } from '../support/redis';
import { eventually, waitUntil } from '../support/wait';

const SERVER = 2;
const ACCESS_TOKEN_TTL_SECONDS = 4;

/** The value `probe` finds, once it finds one. */
async function found<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  return (await eventually(probe, (value) => value !== undefined, { what, timeoutMs })) as T;
}

/**
 * Instrumentation patches modules as they load, which Jest's module registry
 * bypasses: so this suite runs the built gateway as its own process, as
 * production does, and receives its OTLP export.
 */
describe('OpenTelemetry traces of the running gateway', () => {
  let redis: RedisServer;
  let idp: TestIdp;
  let receiver: OtlpReceiver;
  let gateway: ChildProcess;
  let origin: string;
  let built: BuiltGateway;

  beforeAll(async () => {
    redis = await startRedis();
    receiver = await startOtlpReceiver();
    built = await startBuiltGateway(async (url) => {
      origin = url;
      // The IdP registers the gateway's redirect URI, so a start on another port needs an IdP of its own.
      await idp?.stop();
      // 4 s tokens enter their refresh window (the last half of a short life) 2 s after they are issued.
      idp = await startTestIdp({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS, clients: [bffTestClient({ redirect_uris: [`${origin}/auth/callback`] })] });
      return {
        OIDC_ISSUER: idp.issuer,
        OIDC_CLIENT_ID: TEST_CLIENT_ID,
        OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
        SESSION_SECRET: TEST_SESSION_SECRET,
        REDIS_URL: redis.url,
        OTLP_ENDPOINT: receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_METRIC_EXPORT_INTERVAL: '500',
        ENVIRONMENT: 'staging',
        BFF_VERSION: '9.9.9-test',
        LOG_LEVEL: 'debug',
      };
    });
    gateway = built.child;
    await found(() => logLines().find((line) => line.message === 'identity provider metadata loaded'), 'the gateway to start');
  });

  /** The gateway's JSON log lines so far, from its whole stdout. */
  function logLines(): Array<Record<string, unknown>> {
    return built
      .stdout()
      .split('\n')
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return []; // not a JSON log line (or the last, unfinished one)
        }
      });
  }

  afterAll(async () => {
    gateway?.kill('SIGKILL');
    await receiver?.close();
    await idp?.stop();
    await redis?.stop();
  });

  it('one /verify that refreshes is one trace: server span, breaker spans, Redis spans and the IdP token call, joined to its logs', async () => {
    const browser = new Browser();
    await loginWithIdp(browser, `${origin}/auth/login`, { username: 'alice' });
    // The condition is the token's age: past half of its life it is refreshed (src/session/refresh-window).
    const refreshableAt = Date.now() + (ACCESS_TOKEN_TTL_SECONDS * 1000) / 2 + 100;
    await waitUntil(() => Date.now() >= refreshableAt, { timeoutMs: ACCESS_TOKEN_TTL_SECONDS * 1000, intervalMs: 50, timeoutMessage: 'the token never reached its refresh window' });
    await idp.reset();

    const response = await browser.request(`${origin}/verify`, { headers: forwarded('/api/orders') });
    expect(response.status).toBe(200);
    expect((await idp.stats()).refreshGrants).toEqual({ alice: 1 });
    const traceId = response.headers.get('x-trace-id');
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);

    const spans = await found(() => {
      const inTrace = receiver.spans.filter((span) => span.traceId === traceId);
      return inTrace.some((span) => span.kind === SERVER) && inTrace.some((span) => span.name === 'breaker idp') ? inTrace : undefined;
    }, 'the spans of the /verify trace');
    const byName = (name: string) => spans.filter((span: ReceivedSpan) => span.name === name);

    const server = byName('GET /verify')[0];
    expect(server).toBeDefined();
    expect(server!.kind).toBe(SERVER);
    expect(server!.resource).toMatchObject({ 'service.name': 'bff-service', 'service.version': '9.9.9-test', 'deployment.environment': 'staging' });
    expect(byName('breaker redis').length).toBeGreaterThanOrEqual(2);
    expect(byName('breaker idp')).toHaveLength(1);
    expect(byName('breaker idp')[0]!.attributes['breaker.state']).toBe('closed');
    const redisSpans = spans.filter((span) => span.attributes['db.system'] === 'redis' || span.attributes['db.system.name'] === 'redis');
    expect(redisSpans.length).toBeGreaterThanOrEqual(2);
    const tokenCall = spans.find((span) => String(span.attributes['url.full'] ?? '').startsWith(`${idp.issuer}/token`));
    expect(tokenCall).toBeDefined();

    const refreshLog = await found(() => logLines().find((line) => line.message === 'access token refreshed' && line.trace_id === traceId), 'the refresh log line');
    expect(refreshLog.span_id).toMatch(/^[0-9a-f]{16}$/);

    // The same refreshing /verify fed the OTLP metrics of the catalogue.
    const otlpMetrics = ['bff_forwardauth_duration_ms', 'bff_session_validation_duration_ms', 'bff_token_refresh_duration_ms', 'bff_auth_requests_total'];
    await found(() => (otlpMetrics.every((name) => receiver.metricNames.has(name)) ? true : undefined), 'the OTLP metrics of the catalogue', 20_000);
  });

  it('marks a 5xx server span as an error', async () => {
    await redis.stop();
    try {
      const browser = new Browser();
      const response = await browser.request(`${origin}/auth/login`);
      expect(response.status).toBe(503);
      const traceId = response.headers.get('x-trace-id');
      const server = await found(() => receiver.spans.find((span) => span.traceId === traceId && span.kind === SERVER), 'the failed request span');
      expect(server.name).toBe('GET /auth/login');
      expect(server.status?.code).toBe(2);
    } finally {
      await redis.restart();
      // The next test starts with a gateway that reaches Redis again.
      await found(async () => ((await fetch(`${origin}/ready`)).status === 200 ? true : undefined), 'the gateway to be ready again');
    }
  });
});
