import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { AuthorizationInput } from '../../src/authz/authorizer';
import { createAuthorizer } from '../../src/authz/create-authorizer';
import { loadConfig } from '../../src/config/load-config';
import { DependencyUnavailable } from '../../src/errors/app-error';
import { systemClock } from '../../src/shared/clock';
import { GatewayMetrics } from '../../src/telemetry/metrics';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue } from '../support/gateway';
import { runOpaTests, startOpa, type OpaServer } from '../support/opa';
import { eventually } from '../support/wait';

// The first run builds OPA from the Go module proxy (about 2 minutes); later runs reuse the cached binary.
const SETUP_TIMEOUT_MS = 25 * 60_000;
const PDP_TIMEOUT_MS = 300;
const BREAKER_RESET_TIMEOUT_MS = 1000;

const ROUTES = `
routes:
  - name: orders
    pathPrefix: /api/orders
    authz: pdp
  - name: admin
    pathPrefix: /api/admin
    authz: pdp
  - name: reports
    pathPrefix: /api/reports
    authz: pdp
  - name: profile
    pathPrefix: /api/profile
    authz: none
`;

interface VerifyAnswer {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly user: string | null;
  readonly authorization: string | null;
  readonly body: string;
}

async function verify(env: TestEnvironment, browser: Browser, path: string, method = 'GET'): Promise<VerifyAnswer> {
  const csrf: Record<string, string> = method === 'GET' || method === 'HEAD' ? {} : { 'X-CSRF': '1' };
  const response = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded(path, method, csrf) });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    user: response.headers.get('x-auth-request-user'),
    authorization: response.headers.get('authorization'),
    body: await response.text(),
  };
}


describe('authorization at /verify through a real OPA serving deploy/opa/policy.rego', () => {
  let opa: OpaServer;
  let env: TestEnvironment;
  let routesDirectory: string;
  let alice: Browser;
  let bob: Browser;

  beforeAll(async () => {
    opa = await startOpa();
    routesDirectory = mkdtempSync(join(tmpdir(), 'bff-authz-'));
    const routesFile = join(routesDirectory, 'routes.yaml');
    writeFileSync(routesFile, ROUTES);
    env = await startTestEnvironment({
      env: {
        ROUTES_FILE: routesFile,
        PDP_URL: opa.decisionUrl,
        PDP_TIMEOUT_MS: String(PDP_TIMEOUT_MS),
        // Long enough that a decision made early in a test is still cached when the test looks for it.
        PDP_CACHE_TTL_SECONDS: '60',
        BREAKER_VOLUME_THRESHOLD: '3',
        BREAKER_ERROR_THRESHOLD_PERCENT: '50',
        BREAKER_RESET_TIMEOUT_MS: String(BREAKER_RESET_TIMEOUT_MS),
      },
    });
    alice = await logIn(env.gateway, 'alice');
    bob = await logIn(env.gateway, 'bob');
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await env?.close();
    await opa?.stop();
    if (routesDirectory) rmSync(routesDirectory, { recursive: true, force: true });
  });

  // Whatever an earlier test did to OPA, each starts with it serving and the gateway's breaker closed.
  beforeEach(async () => {
    await opa.ensureServing();
    await eventually(async () => metricValue(await env.gateway.metricsText(), 'circuit_breaker_status', { service: 'pdp' }), (status) => status === 0, {
      what: 'the pdp breaker to close',
      timeoutMs: 15_000,
    });
  });

  /** Real PDP calls made for `resource` so far (the latency histogram observes only those, not cache hits). */
  async function pdpCalls(resource: string): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'bff_authz_latency_seconds_count', { resource });
  }

  it('lets alice, an admin, delete an order: 200 with her identity and a bearer token', async () => {
    const answer = await verify(env, alice, '/api/orders/1', 'DELETE');
    expect(answer.status).toBe(200);
    expect(answer.user).toBe('alice');
    expect(answer.authorization).toMatch(/^Bearer \S+$/);
  });

  it('lets bob, in users only, read an order but answers 403 forbidden when he deletes it', async () => {
    expect((await verify(env, bob, '/api/orders/2')).status).toBe(200);
    const deletion = await verify(env, bob, '/api/orders/2', 'DELETE');
    expect(deletion.status).toBe(403);
    expect(JSON.parse(deletion.body)).toEqual({ error: 'forbidden' });
    expect(deletion.authorization).toBeNull();
  });

  it('refuses bob the admin resource, even to read it, and lets alice in', async () => {
    expect((await verify(env, bob, '/api/admin/users')).status).toBe(403);
    expect((await verify(env, alice, '/api/admin/users')).status).toBe(200);
  });

  it('denies a resource the policy does not name, even to an admin', async () => {
    expect((await verify(env, alice, '/api/reports/2026')).status).toBe(403);
  });

  it('does not ask the PDP for a route with authz: none', async () => {
    const before = await env.gateway.metricsText();
    expect((await verify(env, bob, '/api/profile')).status).toBe(200);
    const after = await env.gateway.metricsText();
    expect(metricValue(after, 'bff_authz_requests_total')).toBe(metricValue(before, 'bff_authz_requests_total'));
    expect(metricValue(after, 'bff_authz_requests_total', { resource: 'profile' })).toBe(0);
  });

  it('never lets a decision cached for alice answer for bob, nor bob\'s for alice', async () => {
    expect((await verify(env, alice, '/api/orders/3', 'DELETE')).status).toBe(200);
    const callsAfterAlice = await pdpCalls('orders');
    // The cache is live: alice's repeat is answered without the PDP...
    expect((await verify(env, alice, '/api/orders/3', 'DELETE')).status).toBe(200);
    expect(await pdpCalls('orders')).toBe(callsAfterAlice);
    // ...yet bob, on the same resource, action, method and path, gets his own decision.
    expect((await verify(env, bob, '/api/orders/3', 'DELETE')).status).toBe(403);
    expect(await pdpCalls('orders')).toBe(callsAfterAlice + 1);

    expect((await verify(env, bob, '/api/orders/4', 'DELETE')).status).toBe(403);
    expect((await verify(env, alice, '/api/orders/4', 'DELETE')).status).toBe(200);
  });

  it('asks the PDP once for concurrent identical requests', async () => {
    const before = await pdpCalls('orders');
    const answers = await Promise.all(Array.from({ length: 8 }, () => verify(env, alice, '/api/orders/concurrent')));
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(200));
    expect(await pdpCalls('orders')).toBe(before + 1);
  });

  it('counts decisions by resource, action and decision, and PDP latency per resource, in /metrics', async () => {
    const series = async () => {
      const text = await env.gateway.metricsText();
      return {
        deleteAllowed: metricValue(text, 'bff_authz_requests_total', { resource: 'orders', action: 'delete', decision: 'allow' }),
        deleteDenied: metricValue(text, 'bff_authz_requests_total', { resource: 'orders', action: 'delete', decision: 'deny' }),
        adminDenied: metricValue(text, 'bff_authz_requests_total', { resource: 'admin', action: 'read', decision: 'deny' }),
        errors: metricValue(text, 'bff_authz_requests_total', { decision: 'error' }),
        adminCalls: metricValue(text, 'bff_authz_latency_seconds_count', { resource: 'admin' }),
      };
    };
    const before = await series();
    const tag = randomUUID();
    for (let order = 0; order < 3; order++) {
      expect((await verify(env, alice, `/api/orders/count-${tag}-${order}`, 'DELETE')).status).toBe(200);
      expect((await verify(env, bob, `/api/orders/count-${tag}-${order}`, 'DELETE')).status).toBe(403);
    }
    expect((await verify(env, bob, `/api/admin/count-${tag}`)).status).toBe(403);
    const after = await series();
    expect({
      deleteAllowed: after.deleteAllowed - before.deleteAllowed,
      deleteDenied: after.deleteDenied - before.deleteDenied,
      adminDenied: after.adminDenied - before.adminDenied,
      errors: after.errors - before.errors,
      adminCalls: after.adminCalls - before.adminCalls,
    }).toEqual({ deleteAllowed: 3, deleteDenied: 3, adminDenied: 1, errors: 0, adminCalls: 1 });
  });

  it('reports the PDP in /ready without letting it decide readiness', async () => {
    expect((await verify(env, alice, `/api/orders/ready-${randomUUID()}`)).status).toBe(200);
    const response = await fetch(`${env.gateway.url}/ready`);
    const body = (await response.json()) as { checks: Record<string, { status: string }> };
    expect(response.status).toBe(200);
    expect(body.checks.pdp?.status).toBe('up');
  });

  it('passes the example policy\'s own opa test cases', async () => {
    const { exitCode, output } = await runOpaTests();
    expect(output).not.toMatch(/FAIL|ERROR/);
    expect(output).toMatch(/PASS: (\d+)\/\1/);
    expect(exitCode).toBe(0);
  });

  it('answers 503 with Retry-After within the PDP timeout while OPA hangs, and allows again once it resumes', async () => {
    opa.pause();
    try {
      const answer = await verify(env, alice, '/api/orders/hang', 'DELETE');
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toMatch(/^\d+$/);
      expect(JSON.parse(answer.body)).toEqual({ error: 'dependency_unavailable' });
    } finally {
      opa.resume();
    }
    const recovered = await eventually(() => verify(env, alice, '/api/orders/hang', 'DELETE'), (answer) => answer.status !== 503, { what: 'the PDP breaker to let calls through again' });
    expect(recovered.status).toBe(200);
  });

  it('fails closed with OPA stopped (503 with Retry-After, the pdp breaker open, /ready 200 with pdp down, logins working) and decides again once it is back', async () => {
    // Decided while OPA runs, so cached: during the outage it answers for alice and this exact request only.
    expect((await verify(env, alice, '/api/orders/cached')).status).toBe(200);
    await opa.stop();

    let breakerStatus = 0;
    let text = '';
    for (let call = 0; call < 60 && breakerStatus !== 2; call++) {
      const answer = await verify(env, bob, `/api/orders/outage-${call}`);
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toMatch(/^\d+$/);
      text = await (await fetch(`${env.gateway.url}/metrics`)).text();
      breakerStatus = metricValue(text, 'circuit_breaker_status', { service: 'pdp' });
    }
    expect(breakerStatus).toBe(2);
    expect(metricValue(text, 'circuit_breaks_total', { service: 'pdp' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'bff_authz_requests_total', { resource: 'orders', action: 'read', decision: 'error' })).toBeGreaterThanOrEqual(1);

    expect((await verify(env, alice, '/api/orders/cached')).status).toBe(200);
    expect((await verify(env, bob, '/api/orders/cached')).status).toBe(503);
    expect((await verify(env, alice, '/api/orders/not-cached')).status).toBe(503);

    const ready = await fetch(`${env.gateway.url}/ready`);
    const readiness = (await ready.json()) as { checks: Record<string, { status: string; detail?: string }> };
    expect(ready.status).toBe(200);
    expect(readiness.checks.pdp?.status).toBe('down');
    expect(readiness.checks.pdp?.detail).toMatch(/ECONNREFUSED|circuit breaker open/);

    const carol = await logIn(env.gateway, 'carol');
    expect((await verify(env, carol, '/api/profile')).status).toBe(200);
    expect((await verify(env, carol, '/api/orders/carol')).status).toBe(503);

    // Back: the breaker's probe closes it, and decisions are made again.
    await opa.restart();
    const recovered = await eventually(() => verify(env, bob, '/api/orders/after-outage', 'DELETE'), (answer) => answer.status !== 503, { what: 'the PDP to answer again' });
    expect(recovered.status).toBe(403);
    expect((await verify(env, alice, '/api/orders/after-outage', 'DELETE')).status).toBe(200);
    expect(metricValue(await env.gateway.metricsText(), 'circuit_breaker_status', { service: 'pdp' })).toBe(0);
    const recoveredReadiness = (await (await fetch(`${env.gateway.url}/ready`)).json()) as { checks: Record<string, { status: string }> };
    expect(recoveredReadiness.checks.pdp?.status).toBe('up');
  });
});

describe('the PDP client against a real OPA', () => {
  let opa: OpaServer;
  let brokenOpa: OpaServer;
  let brokenPolicyDirectory: string;

  const carolDeletesOrder = (groups: string[]): AuthorizationInput => ({
    subject: { sub: 'carol', groups, email: 'carol@example.test' },
    resource: 'orders',
    action: 'delete',
    method: 'DELETE',
    path: '/api/orders/7',
  });

  beforeAll(async () => {
    opa = await startOpa();
    brokenPolicyDirectory = mkdtempSync(join(tmpdir(), 'bff-opa-broken-'));
    const brokenPolicy = join(brokenPolicyDirectory, 'broken.rego');
    // Two complete rules that both match: OPA answers 500 eval_conflict_error, a policy that cannot decide.
    writeFileSync(brokenPolicy, 'package bff\n\nallow := true if input.subject.sub != ""\n\nallow := false if input.subject.sub != ""\n');
    brokenOpa = await startOpa({ files: [brokenPolicy] });
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await opa?.stop();
    await brokenOpa?.stop();
    if (brokenPolicyDirectory) rmSync(brokenPolicyDirectory, { recursive: true, force: true });
  });

  function build(pdpUrl: string) {
    const metrics = new GatewayMetrics({ collectProcessMetrics: false });
    const config = loadConfig({ PDP_URL: pdpUrl, PDP_TIMEOUT_MS: '1000', PDP_CACHE_TTL_SECONDS: '60' });
    const wiring = createAuthorizer(config, {
      metrics,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      breakerOptions: { errorThresholdPercentage: 50, resetTimeoutMs: 10_000, volumeThreshold: 5 },
    });
    return { ...wiring, pdpCalls: async () => metricValue(await metrics.registry.metrics(), 'bff_authz_latency_seconds_count') };
  }

  it('never lets a decision cached for one set of groups answer for another set of the same subject', async () => {
    const { authorizer, pdpCalls } = build(opa.decisionUrl);
    expect(await authorizer.allows(carolDeletesOrder(['admins']))).toBe(true);
    expect(await authorizer.allows(carolDeletesOrder(['users']))).toBe(false);
    expect(await authorizer.allows(carolDeletesOrder(['users', 'admins']))).toBe(true);
    expect(await pdpCalls()).toBe(3);
    // Same subject and groups as the first call: now answered from the cache.
    expect(await authorizer.allows(carolDeletesOrder(['admins']))).toBe(true);
    expect(await authorizer.allows(carolDeletesOrder(['admins', 'users']))).toBe(true);
    expect(await pdpCalls()).toBe(3);
  });

  it('allows on the package document\'s { "result": { "allow": true } } as well as on { "result": true }', async () => {
    const { authorizer } = build(`${opa.url}/v1/data/bff`);
    expect(await authorizer.allows(carolDeletesOrder(['admins']))).toBe(true);
    expect(await authorizer.allows(carolDeletesOrder(['users']))).toBe(false);
  });

  it('denies everything when PDP_URL names a rule the policy does not define, and says so in /ready', async () => {
    const { authorizer, check } = build(`${opa.url}/v1/data/bff/alow`);
    expect(await authorizer.allows(carolDeletesOrder(['admins']))).toBe(false);
    const result = await check.check();
    expect(result.status).toBe('up');
    expect(result.detail).toMatch(/without "result"/);
  });

  it('treats a policy that fails to evaluate (HTTP 500) as no answer: DependencyUnavailable, counted as error, never cached', async () => {
    const { authorizer, check, pdpCalls } = build(brokenOpa.decisionUrl);
    await expect(authorizer.allows(carolDeletesOrder(['admins']))).rejects.toBeInstanceOf(DependencyUnavailable);
    await expect(authorizer.allows(carolDeletesOrder(['admins']))).rejects.toMatchObject({ status: 503, dependency: 'pdp' });
    expect(await pdpCalls()).toBe(2);
    expect(authorizer.status()).toMatchObject({ isHealthy: false, lastError: 'the PDP answered HTTP 500' });
    expect((await check.check()).status).toBe('down');
  });
});
