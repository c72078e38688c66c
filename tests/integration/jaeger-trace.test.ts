import { join } from 'node:path';
import { Browser, loginWithIdp } from '../support/browser';
import { answersWithStatus, startGuarded, type GuardedProcess } from '../support/child-process';
import { forwarded } from '../support/environment';
import { TEST_SESSION_SECRET } from '../support/gateway';
import { bffTestClient, startTestIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp';
import { startJaeger, type JaegerServer, type JaegerSpan } from '../support/jaeger';
import { withFreePort } from '../support/ports';
import { startRedis, type RedisServer } from '../support/redis';
import { waitUntil } from '../support/wait';

const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');
// The gateway starts in about a second; loading the IdP's metadata and connecting to Redis follow.
const GATEWAY_READY_TIMEOUT_MS = 30_000;
// A 2 s access token enters its refresh window (the last half of a short life) 1 s after it was issued.
const ACCESS_TOKEN_TTL_SECONDS = 2;
const REFRESH_TIMEOUT_MS = 15_000;
// The gateway's span processor exports every 100 ms here (OTEL_BSP_SCHEDULE_DELAY); the rest is margin.
const TRACE_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 100;

type LogLine = Record<string, unknown>;

/**
 * The built gateway (dist/main.js) as its own process, exporting OTLP to a
 * real Jaeger: instrumentation patches modules as they load, which Jest's
 * module registry bypasses, so the traces come from the process production runs.
 */
describe('a refreshing /verify as one trace in Jaeger', () => {
  let redis: RedisServer;
  let idp: TestIdp;
  let jaeger: JaegerServer;
  let gateway: GuardedProcess;
  let origin: string;
  const logLines: LogLine[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    jaeger = await startJaeger();
    ({ gateway, origin } = await withFreePort(async (port) => {
      const gatewayOrigin = `http://127.0.0.1:${port}`;
      // The client's redirect URI names the gateway's port: a retry on another port needs a new IdP.
      await idp?.stop();
      idp = await startTestIdp({
        accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
        clients: [bffTestClient({ redirect_uris: [`${gatewayOrigin}/auth/callback`] })],
      });
      const started = await startGuarded(process.execPath, [MAIN], {
        env: {
          PATH: process.env.PATH ?? '',
          PORT: String(port),
          PUBLIC_URL: gatewayOrigin,
          OIDC_ISSUER: idp.issuer,
          OIDC_CLIENT_ID: TEST_CLIENT_ID,
          OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
          SESSION_SECRET: TEST_SESSION_SECRET,
          REDIS_URL: redis.url,
          OTLP_ENDPOINT: jaeger.otlpEndpoint,
          OTEL_BSP_SCHEDULE_DELAY: '100',
          ENVIRONMENT: 'staging',
          BFF_VERSION: '9.9.9-test',
          // The refresh is logged at debug.
          LOG_LEVEL: 'debug',
        },
        name: `the gateway (dist/main.js) on ${gatewayOrigin}`,
        readiness: 'answer /ready with 200',
        isReady: () => answersWithStatus(`${gatewayOrigin}/ready`, 200, 1_000),
        readyTimeoutMs: GATEWAY_READY_TIMEOUT_MS,
        pollIntervalMs: POLL_INTERVAL_MS,
        outputLabel: 'gateway',
        portInUse: /EADDRINUSE/,
        outputTailChars: 64_000,
      });
      return { gateway: started, origin: gatewayOrigin };
    }));
    collectJsonLines(gateway, logLines);
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    await jaeger?.stop();
    await idp?.stop();
    await redis?.stop();
  });

  it('shows GET /verify over the breaker spans over the Redis and IdP token calls, under the trace id of X-Trace-ID and of its log lines', async () => {
    const browser = new Browser();
    await loginWithIdp(browser, `${origin}/auth/login`, { username: 'alice' });

    // /verify until one of them refreshes the access token: the first after the token entered its refresh window.
    let refreshing: Response | undefined;
    await waitUntil(
      async () => {
        const before = (await idp.stats()).refreshGrants.alice ?? 0;
        const response = await browser.request(`${origin}/verify`, { headers: forwarded('/api/orders') });
        if (response.status !== 200) throw new Error(`/verify answered ${response.status}: ${await response.text()}`);
        if (((await idp.stats()).refreshGrants.alice ?? 0) > before) refreshing = response;
        return refreshing !== undefined;
      },
      { timeoutMs: REFRESH_TIMEOUT_MS, intervalMs: POLL_INTERVAL_MS, timeoutMessage: `no /verify refreshed alice's access token within ${REFRESH_TIMEOUT_MS} ms` },
    );
    const traceId = refreshing!.headers.get('x-trace-id');
    const requestId = refreshing!.headers.get('x-request-id');
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);

    const tokenUrl = `${idp.issuer}/token`;
    let spans: JaegerSpan[] = [];
    await waitUntil(
      async () => {
        spans = await jaeger.trace(traceId!);
        const names = new Set(spans.map((span) => span.name));
        return ['GET /verify', 'breaker redis', 'breaker idp'].every((name) => names.has(name)) && spans.some((span) => isCallTo(span, tokenUrl)) && spans.some(isRedisCall);
      },
      {
        timeoutMs: TRACE_TIMEOUT_MS,
        intervalMs: POLL_INTERVAL_MS,
        timeoutMessage: () => `Jaeger has not got the whole trace ${traceId} within ${TRACE_TIMEOUT_MS} ms; it has: ${spans.map((span) => span.name).join(', ') || 'nothing'}`,
      },
    );

    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const parentOf = (span: JaegerSpan): string | undefined => byId.get(span.parentSpanId)?.name;

    // One trace, rooted at the server span of the request.
    const server = spans.find((span) => span.name === 'GET /verify')!;
    expect(server.kind).toBe('SPAN_KIND_SERVER');
    expect(server.parentSpanId).toBe('');
    expect(server.resource).toMatchObject({ 'service.name': 'bff-service', 'service.version': '9.9.9-test', 'deployment.environment': 'staging' });
    expect(spans.every((span) => span.traceId === traceId)).toBe(true);

    // The breaker spans hang from the server span; every Redis command and the IdP's token call hang from a breaker span.
    const breakers = spans.filter((span) => span.name.startsWith('breaker '));
    expect(breakers.map(parentOf)).toEqual(breakers.map(() => 'GET /verify'));
    const idpBreakers = breakers.filter((span) => span.name === 'breaker idp');
    expect(idpBreakers).toHaveLength(1);
    expect(idpBreakers[0]!.attributes['breaker.state']).toBe('closed');
    const redisCalls = spans.filter(isRedisCall);
    expect(redisCalls.map(parentOf)).toEqual(redisCalls.map(() => 'breaker redis'));
    expect(redisCalls.length).toBe(breakers.filter((span) => span.name === 'breaker redis').length);
    const tokenCall = spans.find((span) => isCallTo(span, tokenUrl))!;
    expect(tokenCall.kind).toBe('SPAN_KIND_CLIENT');
    expect(parentOf(tokenCall)).toBe('breaker idp');

    // The log lines of that request carry the same trace id, the refresh among them.
    let lines: LogLine[] = [];
    await waitUntil(
      () => {
        lines = logLines.filter((line) => line.trace_id === traceId || line.request_id === requestId);
        return lines.some((line) => line.message === 'access token refreshed');
      },
      { timeoutMs: TRACE_TIMEOUT_MS, intervalMs: POLL_INTERVAL_MS, timeoutMessage: () => `no "access token refreshed" log line in trace ${traceId}; saw ${JSON.stringify(lines)}` },
    );
    expect(lines.map((line) => line.trace_id)).toEqual(lines.map(() => traceId));
    // The refresh line names the span it was written in, and that span is in Jaeger's trace.
    const refreshLine = lines.find((line) => line.message === 'access token refreshed')!;
    expect(byId.has(String(refreshLine.span_id))).toBe(true);
  });
});

function isRedisCall(span: JaegerSpan): boolean {
  return span.attributes['db.system'] === 'redis' || span.attributes['db.system.name'] === 'redis';
}

/** An outgoing HTTP call (undici or http instrumentation) to `url`. */
function isCallTo(span: JaegerSpan, url: string): boolean {
  return String(span.attributes['url.full'] ?? span.attributes['http.url'] ?? '').startsWith(url);
}

/** Every JSON line the process writes on stdout from now on. */
function collectJsonLines(process: GuardedProcess, into: LogLine[]): void {
  let pending = '';
  process.child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        into.push(JSON.parse(line) as LogLine);
      } catch {
        // not a JSON log line
      }
    }
  });
}
