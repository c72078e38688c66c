import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { MovableClock } from '../support/gateway';
import { readTopic, startKafka, type KafkaBroker } from '../support/kafka';
import { startOpa, type OpaServer } from '../support/opa';
import { eventually } from '../support/wait';

/**
 * Fault drills that MEASURE how long the gateway takes to recover, for the
 * failure-mode table in docs/failure-modes.md (`npm run drills`). They are
 * not part of `npm test`: a duration is a figure to report, not a pass/fail
 * threshold on a shared machine. Each drill still checks that recovery
 * happens at all. Results go to bench/results/failure-drills.json.
 */
const RESULTS = join(__dirname, '..', '..', 'bench', 'results');
const measured: Record<string, { readonly recoveryMs: number; readonly note: string }> = {};

function elapsedSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

async function verifyStatus(env: TestEnvironment, browser: Browser, path = '/api/orders/1'): Promise<number> {
  return (await browser.request(`${env.gateway.url}/verify`, { headers: forwarded(path) })).status;
}

async function untilVerifyIs(env: TestEnvironment, browser: Browser, status: number, path?: string): Promise<void> {
  await eventually(() => verifyStatus(env, browser, path), (answer) => answer === status, { what: `/verify to answer ${status}`, timeoutMs: 60_000, intervalMs: 10 });
}

afterAll(() => {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'failure-drills.json'), `${JSON.stringify({ measuredAt: new Date().toISOString(), drills: measured }, null, 2)}\n`);
  for (const [drill, { recoveryMs, note }] of Object.entries(measured)) process.stdout.write(`${drill}: ${recoveryMs} ms (${note})\n`);
});

describe('recovery after Redis faults, with default breaker settings', () => {
  let env: TestEnvironment;
  beforeAll(async () => {
    // Every request reads Redis, so the figures are Redis's; with SESSION_CACHE=on, cached sessions bridge the first second.
    env = await startTestEnvironment({ env: { SESSION_CACHE: 'off' } });
  });
  afterAll(() => env?.close());

  it('measures /verify back to 200 after Redis is killed and restarted', async () => {
    const browser = await logIn(env.gateway, 'alice');
    const admin = new Redis(env.redis.url);
    await admin.save();
    admin.disconnect();
    await env.redis.stop();
    await untilVerifyIs(env, browser, 503);
    for (let call = 0; call < 20; call++) await verifyStatus(env, browser);
    await env.redis.restart();
    const restartedAt = performance.now();
    await untilVerifyIs(env, browser, 200);
    measured.redis_restart = { recoveryMs: elapsedSince(restartedAt), note: 'from redis-server serving again (its data saved before the kill) to the first /verify 200 of the same session' };
  });

  it('measures /verify back to 200 after a hung Redis resumes', async () => {
    const browser = await logIn(env.gateway, 'bob');
    await untilVerifyIs(env, browser, 200);
    env.redis.pause();
    try {
      for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 10 }, () => verifyStatus(env, browser)));
    } finally {
      env.redis.resume();
    }
    const resumedAt = performance.now();
    await untilVerifyIs(env, browser, 200);
    measured.redis_hang = { recoveryMs: elapsedSince(resumedAt), note: 'from SIGCONT to the first /verify 200, with the breaker open' };
  });
});

describe('recovery after the PDP stops', () => {
  let env: TestEnvironment;
  let opa: OpaServer;
  let routesDirectory: string;
  beforeAll(async () => {
    opa = await startOpa();
    routesDirectory = mkdtempSync(join(tmpdir(), 'bff-drill-'));
    writeFileSync(join(routesDirectory, 'routes.yaml'), 'routes:\n  - name: orders\n    pathPrefix: /api/orders\n    authz: pdp\n');
    env = await startTestEnvironment({ env: { ROUTES_FILE: join(routesDirectory, 'routes.yaml'), PDP_URL: opa.decisionUrl, PDP_CACHE_TTL_SECONDS: '0' } });
  }, 25 * 60_000);
  afterAll(async () => {
    await env?.close();
    await opa?.stop();
    rmSync(routesDirectory, { recursive: true, force: true });
  });

  it('measures /verify back to 200 after OPA is stopped and restarted', async () => {
    const browser = await logIn(env.gateway, 'alice');
    await untilVerifyIs(env, browser, 200);
    await opa.stop();
    for (let call = 0; call < 20; call++) await verifyStatus(env, browser);
    await opa.restart();
    const restartedAt = performance.now();
    await untilVerifyIs(env, browser, 200);
    measured.pdp_restart = { recoveryMs: elapsedSince(restartedAt), note: 'from OPA serving again to the first /verify 200 on an authz: pdp route' };
  });
});

describe('recovery after the IdP is down past token expiry', () => {
  let env: TestEnvironment;
  const clock = new MovableClock();
  beforeAll(async () => {
    env = await startTestEnvironment({ gateway: { clock } });
  });
  afterAll(() => env?.close());

  it('measures /verify back to 200 after the token endpoint answers again', async () => {
    const browser = await logIn(env.gateway, 'carol');
    await env.idp.setTokenFailure(503);
    clock.advance(400_000);
    // An outage of a few seconds of steady traffic: the session's back-off grows as it would.
    const outageEndsAt = performance.now() + 5_000;
    while (performance.now() < outageEndsAt) await verifyStatus(env, browser);
    await env.idp.setTokenFailure(null);
    const backAt = performance.now();
    await untilVerifyIs(env, browser, 200);
    measured.idp_outage = { recoveryMs: elapsedSince(backAt), note: 'after a 5 s outage with an expired token: at most the session\'s current back-off (1 s doubling, 30 s cap)' };
  });
});

describe('recovery after Kafka stops', () => {
  let env: TestEnvironment;
  let kafka: KafkaBroker;
  const topic = 'bff.drill-events';
  beforeAll(async () => {
    kafka = await startKafka({ topics: [topic] });
    env = await startTestEnvironment({ env: { KAFKA_BROKERS: kafka.brokers, KAFKA_TOPIC: topic } });
  }, 10 * 60_000);
  afterAll(async () => {
    await env?.close();
    await kafka?.close();
  });

  it('measures buffered security events delivered after Kafka restarts', async () => {
    await kafka.stop();
    for (let login = 0; login < 3; login++) await logIn(env.gateway, `kafka-drill-${login}`);
    const health = () => fetch(`${env.gateway.url}/events/health`).then((response) => response.json() as Promise<{ connected: boolean; buffered: number }>);
    await eventually(health, (state) => state.buffered > 0, { what: 'events to be buffered', timeoutMs: 60_000 });
    await kafka.restart();
    const restartedAt = performance.now();
    await eventually(health, (state) => state.connected && state.buffered === 0, { what: 'the buffer to drain', timeoutMs: 120_000, intervalMs: 20 });
    measured.kafka_restart = { recoveryMs: elapsedSince(restartedAt), note: 'from the broker serving metadata again to an empty buffer; no event lost' };
    const reader = await readTopic(kafka, topic);
    try {
      const isDrillLogin = (message: { readonly value: string }) => {
        const event = JSON.parse(message.value) as { type?: string; subject?: string };
        return event.type === 'login_success' && String(event.subject).startsWith('kafka-drill-');
      };
      const logins = await reader.waitFor(isDrillLogin, 3, 60_000);
      expect(logins).toHaveLength(3);
    } finally {
      await reader.close();
    }
  });
});
