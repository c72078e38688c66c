import { Agent, request } from 'node:http';
import type { Browser } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, MovableClock, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/idp';
import { startBuiltGateway } from '../support/built-gateway';
import { eventually, waitUntil } from '../support/wait';
import { readTopic, startKafka, type KafkaBroker, type ReceivedMessage, type TopicReader } from '../support/kafka';
import { uuidV7 } from '../../src/shared/uuid-v7';
import { hashSessionId, securityEventSchema, type SecurityEvent } from '../../src/events/security-events';
import { KAFKA_PUBLISHER_DEFAULTS } from '../../src/events/kafka-event-publisher';

const TOPIC = 'bff.security-events.test';
/** KAFKA_BUFFER_SIZE of the gateway under test: small, so overflowing it takes a moment, not 10 000 requests. */
const BUFFER_SIZE = 400;
/** The test IdP issues 300 s access tokens; 250 s later they are inside the 60 s refresh window. */
const INTO_REFRESH_WINDOW_MS = 250_000;
// First run: mvn fetches ~45 MB of jars (bounded at 5 min in tests/support/kafka.ts); later runs start in seconds.
const SETUP_TIMEOUT_MS = 400_000;

/** Anything that answers HTTP like a gateway: the in-process one, or the built one in its own process. */
type GatewayAddress = Pick<RunningGateway, 'url'>;

interface EventsHealth {
  backend: string;
  connected: boolean;
  buffered: number;
  dropped: number;
  lastError?: string;
  lastOutage?: { error: string; startedAt: string; endedAt?: string };
}

function eventOf(message: ReceivedMessage): SecurityEvent {
  return securityEventSchema.parse(JSON.parse(message.value));
}

function sessionHashOf(browser: Browser, env: TestEnvironment): string {
  const cookie = decodeURIComponent(browser.cookie('bff-session', env.gateway.url) ?? '');
  return hashSessionId(cookie.slice(2, 45));
}

async function eventsHealth(gateway: GatewayAddress): Promise<EventsHealth> {
  return (await (await fetch(`${gateway.url}/events/health`)).json()) as EventsHealth;
}

/** Polls /events/health until `isDone` holds; fails with the last answer after `timeoutMs`. */
function waitForEventsHealth(gateway: GatewayAddress, isDone: (health: EventsHealth) => boolean, timeoutMs = 30_000): Promise<EventsHealth> {
  return eventually(() => eventsHealth(gateway), isDone, { what: '/events/health to reach the expected state', timeoutMs, intervalMs: 100 });
}

// Keep-alive connections: the flood test sends ten thousand requests.
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** A POST through the proxy without X-CSRF: 403 and one csrf_violation event carrying `requestId`. Resolves with the status. */
function postWithoutCsrf(gateway: GatewayAddress, requestId: string): Promise<number> {
  const url = new URL(`${gateway.url}/verify`);
  return new Promise((resolve, reject) => {
    const headers = { ...forwarded('/api/orders', 'POST'), 'X-Request-ID': requestId };
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, agent, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy(new Error(`no answer from /verify within 10 s (request ${requestId})`)));
    req.once('error', reject);
    req.end();
  });
}

/** Each line that is not a JSON object, as written. */
function nonJsonLines(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line.length > 0)
    .filter((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return typeof parsed !== 'object' || parsed === null;
      } catch {
        return true;
      }
    });
}

async function kafkaMessages(gateway: RunningGateway, status: string): Promise<number> {
  return metricValue(await gateway.metricsText(), 'bff_kafka_messages_total', { topic: TOPIC, status });
}

describe('security events on a real Kafka broker', () => {
  let kafka: KafkaBroker;
  let env: TestEnvironment;
  const clock = new MovableClock();

  beforeAll(async () => {
    kafka = await startKafka({ topics: [TOPIC] });
    env = await startTestEnvironment({
      env: { KAFKA_BROKERS: kafka.brokers, KAFKA_TOPIC: TOPIC, KAFKA_BUFFER_SIZE: String(BUFFER_SIZE), BREAKER_RESET_TIMEOUT_MS: '1000' },
      gateway: { clock },
    });
    await waitForEventsHealth(env.gateway, (health) => health.connected, 15_000);
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => {
    agent.destroy();
    await env?.close();
    await kafka?.close();
  });
  beforeEach(() => env.idp.reset());

  describe('with Kafka up', () => {
    let reader: TopicReader;

    beforeAll(async () => {
      reader = await readTopic(kafka, TOPIC);
    });
    afterAll(async () => {
      await reader?.close();
    });

    it('a login publishes login_success and session_created, keyed by the session hash, each valid against the schema', async () => {
      const browser = await logIn(env.gateway, 'kafka-alice');
      const sessionHash = sessionHashOf(browser, env);

      const messages = await reader.waitFor((message) => message.key === sessionHash, 2);
      const events = messages.map(eventOf);
      expect(events.map((event) => event.type).sort()).toEqual(['login_success', 'session_created']);
      for (const [index, event] of events.entries()) {
        expect(event).toMatchObject({ sessionHash, subject: 'kafka-alice', severity: 'info', service: 'bff-service' });
        expect(messages[index]!.headers['event-type']).toBe(event.type);
      }
      expect(metricValue(await env.gateway.metricsText(), 'bff_security_events_total', { event_type: 'login_success', severity: 'info' })).toBeGreaterThanOrEqual(1);
      // The consumer can see a batch before the producer has its acknowledgement; the count follows the acknowledgement.
      await waitForEventsHealth(env.gateway, (health) => health.buffered === 0);
      expect(await kafkaMessages(env.gateway, 'sent')).toBeGreaterThanOrEqual(2);
    });

    it('a logout publishes logout and session_destroyed for the same session', async () => {
      const browser = await logIn(env.gateway, 'kafka-bob');
      const sessionHash = sessionHashOf(browser, env);
      const logout = await browser.request(`${env.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
      expect(logout.status).toBe(200);

      const events = (await reader.waitFor((message) => message.key === sessionHash, 4)).map(eventOf);
      expect(events.map((event) => event.type)).toEqual(expect.arrayContaining(['logout', 'session_destroyed']));
      expect(events.find((event) => event.type === 'session_destroyed')).toMatchObject({ reason: 'logout', subject: 'kafka-bob' });
    });

    it('a POST through /verify without X-CSRF is refused and publishes csrf_violation, keyed by the event type', async () => {
      const requestId = uuidV7();
      expect(await postWithoutCsrf(env.gateway, requestId)).toBe(403);

      const [message] = await reader.waitFor((candidate) => eventOf(candidate).requestId === requestId);
      expect(message!.key).toBe('csrf_violation');
      expect(eventOf(message!)).toMatchObject({ type: 'csrf_violation', severity: 'warning', reason: 'missing_header', requestId });
    });

    it('a refresh token revoked at the IdP publishes refresh_failure with reason invalid_grant', async () => {
      const browser = await logIn(env.gateway, 'kafka-carol');
      const sessionHash = sessionHashOf(browser, env);
      await env.idp.revokeGrants('kafka-carol');
      clock.advance(INTO_REFRESH_WINDOW_MS);

      const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
      expect(verify.status).toBe(401);
      const events = (await reader.waitFor((message) => message.key === sessionHash && eventOf(message).type === 'refresh_failure')).map(eventOf);
      expect(events[0]).toMatchObject({ type: 'refresh_failure', reason: 'invalid_grant', subject: 'kafka-carol', sessionHash });
    });
  });

  describe('with Kafka down', () => {
    it('/verify answers as usual while events wait in the buffer, and they are delivered once Kafka is back', async () => {
      const browser = await logIn(env.gateway, 'kafka-dave');
      const sentBefore = await kafkaMessages(env.gateway, 'sent');
      // Events an earlier test's overflow dropped stay counted: this test's outage must add none.
      const { dropped: droppedBefore } = await eventsHealth(env.gateway);
      await kafka.stop();

      const requestIds: string[] = [];
      for (let call = 0; call < 30; call += 1) {
        const verify = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
        expect(verify.status).toBe(200);
        if (call % 3 === 0) {
          const requestId = uuidV7();
          requestIds.push(requestId);
          expect(await postWithoutCsrf(env.gateway, requestId)).toBe(403);
        }
      }
      const lateLogin = await logIn(env.gateway, 'kafka-erin');
      const lateSessionHash = sessionHashOf(lateLogin, env);

      const outage = await waitForEventsHealth(env.gateway, (health) => !health.connected && health.buffered >= requestIds.length + 2);
      expect(outage).toMatchObject({ backend: 'kafka', dropped: droppedBefore });
      expect(outage.lastError).toEqual(expect.any(String));
      expect(await kafkaMessages(env.gateway, 'failed')).toBeGreaterThan(0);
      const ready = await fetch(`${env.gateway.url}/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: Record<string, { status: string }> }).checks.kafka!.status).toBe('down');

      // A replica started while the broker is down starts and serves all the same (startReplica waits for /ready).
      const replica = await env.startReplica();
      const replicaRequestId = uuidV7();
      expect(await postWithoutCsrf(replica, replicaRequestId)).toBe(403);
      expect(await eventsHealth(replica)).toMatchObject({ connected: false, buffered: 1 });

      await kafka.restart();
      const recovered = await waitForEventsHealth(env.gateway, (health) => health.connected && health.buffered === 0);
      expect(recovered.dropped).toBe(droppedBefore);
      expect(await kafkaMessages(env.gateway, 'sent')).toBeGreaterThanOrEqual(sentBefore + requestIds.length + 2);
      await waitForEventsHealth(replica, (health) => health.connected && health.buffered === 0);

      const reader = await readTopic(kafka, TOPIC);
      try {
        const expected = new Set([...requestIds, replicaRequestId]);
        const delivered = await reader.waitFor((message) => expected.has(eventOf(message).requestId ?? ''), expected.size);
        expect(new Set(delivered.map((message) => eventOf(message).requestId))).toEqual(expected);
        const login = (await reader.waitFor((message) => message.key === lateSessionHash, 2)).map(eventOf);
        expect(login.map((event) => event.type).sort()).toEqual(['login_success', 'session_created']);
      } finally {
        // The replica is closed by env.close(), which closes every replica it started.
        await reader.close();
      }
    });

    it('more events than the buffer holds: the oldest are dropped and counted, every other one is delivered', async () => {
      const capacity = BUFFER_SIZE;
      // The publisher sends at most half its buffer at a time.
      const batchSize = Math.min(KAFKA_PUBLISHER_DEFAULTS.batchSize, capacity / 2);
      const overflow = 50;
      const droppedBefore = (await eventsHealth(env.gateway)).dropped;
      await kafka.stop();

      // Published in this order, one request after the other per worker; the buffer keeps the newest `capacity`.
      const requestIds = Array.from({ length: capacity + overflow }, () => uuidV7());
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < requestIds.length) {
          expect(await postWithoutCsrf(env.gateway, requestIds[next++]!)).toBe(403);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));

      const full = await waitForEventsHealth(env.gateway, (health) => health.buffered === capacity);
      expect(full.dropped - droppedBefore).toBe(overflow);
      expect(await kafkaMessages(env.gateway, 'dropped')).toBe(full.dropped);

      await kafka.restart();
      await waitForEventsHealth(env.gateway, (health) => health.connected && health.buffered === 0, 60_000);
      const reader = await readTopic(kafka, TOPIC);
      try {
        const ours = new Set(requestIds);
        const delivered = await reader.waitFor((message) => ours.has(eventOf(message).requestId ?? ''), capacity, 60_000);
        const deliveredIds = new Set(delivered.map((message) => eventOf(message).requestId));
        expect(deliveredIds.size).toBe(capacity);
        // What overflow dropped was old: the newest events (all but one batch's worth of the buffer) all arrived.
        const newest = requestIds.slice(-(capacity - batchSize));
        expect(newest.filter((requestId) => !deliveredIds.has(requestId))).toEqual([]);
        expect((await eventsHealth(env.gateway)).dropped - droppedBefore).toBe(overflow);
      } finally {
        await reader.close();
      }
    }, 180_000);

    it('once Kafka is back, /events/health clears lastError and keeps the outage as past, with when it started and ended', async () => {
      await kafka.stop();
      expect(await postWithoutCsrf(env.gateway, uuidV7())).toBe(403);
      const down = await waitForEventsHealth(env.gateway, (health) => !health.connected && health.lastError !== undefined);
      expect(down.lastOutage).toEqual({ error: down.lastError, startedAt: expect.any(String) });

      await kafka.restart();
      const recovered = await waitForEventsHealth(env.gateway, (health) => health.connected && health.buffered === 0, 60_000);
      expect(recovered.lastError).toBeUndefined();
      expect(recovered.lastOutage).toEqual({ error: expect.any(String), startedAt: down.lastOutage!.startedAt, endedAt: expect.any(String) });
      expect(Date.parse(recovered.lastOutage!.endedAt!)).toBeGreaterThanOrEqual(Date.parse(recovered.lastOutage!.startedAt));
      const ready = (await (await fetch(`${env.gateway.url}/ready`)).json()) as { checks: Record<string, { status: string; detail?: string }> };
      expect(ready.checks.kafka).toMatchObject({ status: 'up' });
    }, 120_000);

    it('the built gateway writes only JSON lines to stdout, and no TimeoutNegativeWarning to stderr, while Kafka is stopped and restarted', async () => {
      const built = await startBuiltGateway(() => ({
        OIDC_ISSUER: env.idp.issuer,
        OIDC_CLIENT_ID: TEST_CLIENT_ID,
        OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
        SESSION_SECRET: TEST_SESSION_SECRET,
        REDIS_URL: env.redis.url,
        KAFKA_BROKERS: kafka.brokers,
        KAFKA_TOPIC: TOPIC,
        BREAKER_RESET_TIMEOUT_MS: '1000',
        // Every line the gateway can write, security events included.
        LOG_LEVEL: 'debug',
      }));
      const gateway: GatewayAddress = { url: built.url };
      const { child, exited } = built;
      try {
        await waitUntil(async () => (await eventsHealth(gateway).catch(() => undefined))?.connected === true, {
          timeoutMs: 30_000,
          intervalMs: 100,
          timeoutMessage: () => `the built gateway did not connect to Kafka within 30 s:\n${built.stdout()}\n${built.stderr()}`,
        });
        expect(await postWithoutCsrf(gateway, uuidV7())).toBe(403);
        await waitForEventsHealth(gateway, (health) => health.buffered === 0);

        await kafka.stop();
        for (let call = 0; call < 5; call++) expect(await postWithoutCsrf(gateway, uuidV7())).toBe(403);
        await waitForEventsHealth(gateway, (health) => !health.connected && health.lastError !== undefined);
        await kafka.restart();
        await waitForEventsHealth(gateway, (health) => health.connected && health.buffered === 0 && health.lastError === undefined, 60_000);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);

      expect(nonJsonLines(built.stdout())).toEqual([]);
      expect(built.stderr()).not.toContain('TimeoutNegativeWarning');
      const lines = built
        .stdout()
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as { message: string; process_warning?: { type: string }; known_issue?: string });
      // The log saw the outage and the recovery, so the lines above cover both.
      expect(lines.map((line) => line.message)).toEqual(expect.arrayContaining(['kafka unreachable: security events are buffered until it returns', 'kafka reachable again']));
      // kafkajs's negative timeout (it schedules one as its first connection drains) became a JSON line of its own.
      expect(lines.filter((line) => line.process_warning?.type === 'TimeoutNegativeWarning')).toEqual([
        expect.objectContaining({ level: 'info', known_issue: 'kafkajs#1751' }),
      ]);
    }, 180_000);
  });
});
