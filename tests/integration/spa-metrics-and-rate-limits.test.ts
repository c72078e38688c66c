import { startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, type RunningGateway } from '../support/gateway';

function postMetrics(gateway: RunningGateway, body: unknown, contentType = 'application/json') {
  return fetch(`${gateway.url}/api/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('SPA metrics ingestion', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await startTestEnvironment({ env: { PUBLIC_METRICS_EVENTS: 'page_view,web_vital_lcp,js_error' } });
  });
  afterAll(() => env.close());

  it('accepts allow-listed events and counts each in bff_public_metrics_total', async () => {
    const response = await postMetrics(env.gateway, {
      events: [{ event: 'page_view', attributes: { route: '/orders' } }, { event: 'web_vital_lcp', value: 1834.5 }, { event: 'page_view' }],
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 3 });
    const text = await env.gateway.metricsText();
    expect(metricValue(text, 'bff_public_metrics_total', { event: 'page_view' })).toBe(2);
    expect(metricValue(text, 'bff_public_metrics_total', { event: 'web_vital_lcp' })).toBe(1);
  });

  it('accepts a sendBeacon body sent as text/plain', async () => {
    expect((await postMetrics(env.gateway, JSON.stringify({ events: [{ event: 'js_error' }] }), 'text/plain;charset=UTF-8')).status).toBe(202);
  });

  const refused: Array<[string, unknown, string]> = [
    ['an event name outside the allow-list', { events: [{ event: 'credit_score' }] }, 'events.0.event'],
    ['more than 50 events', { events: Array.from({ length: 51 }, () => ({ event: 'page_view' })) }, 'at most 50'],
    ['no events', { events: [] }, 'events'],
    ['an unknown top-level field', { events: [{ event: 'page_view' }], user: 'x' }, 'user'],
    ['a non-finite value', { events: [{ event: 'page_view', value: 'NaN' }] }, 'value'],
    ['an attribute key naming an email', { events: [{ event: 'page_view', attributes: { email: 'x' } }] }, 'events[0].attributes.email'],
    ['an attribute key naming a token', { events: [{ event: 'page_view', attributes: { accessToken: 'x' } }] }, 'events[0].attributes.accessToken'],
    ['a value shaped like an email', { events: [{ event: 'page_view', attributes: { note: 'mail me: ada@example.com' } }] }, 'events[0].attributes.note'],
    ['a value shaped like a JWT', { events: [{ event: 'js_error', attributes: { detail: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl' } }] }, 'events[0].attributes.detail'],
    ['a value shaped like a card number', { events: [{ event: 'page_view' }, { event: 'page_view', attributes: { ref: '4111 1111 1111 1111' } }] }, 'events[1].attributes.ref'],
  ];

  it.each(refused)('refuses %s with a 400 that names the problem', async (_name, body, named) => {
    const response = await postMetrics(env.gateway, body);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toContain(named);
  });

  /** Written as JSON text: an object literal with "__proto__" would set a prototype instead of sending the key. */
  const personalData: Array<[string, string, string[]]> = [
    ['a "__proto__" attribute holding an email', '{"events":[{"event":"page_view","attributes":{"__proto__":{"email":"ada@example.com"}}}]}', ['events[0].attributes.__proto__', 'events[0].attributes.__proto__.email']],
    ['a "__proto__" attribute', '{"events":[{"event":"page_view","attributes":{"route":"/","__proto__":"x"}}]}', ['events[0].attributes.__proto__']],
    ['a "constructor" attribute', '{"events":[{"event":"page_view","attributes":{"constructor":"x"}}]}', ['events[0].attributes.constructor']],
    ['a "prototype" key beside an event', '{"events":[{"event":"page_view","prototype":{}}]}', ['events[0].prototype']],
    ['a percent-encoded email', '{"events":[{"event":"page_view","attributes":{"note":"ada%40example.com"}}]}', ['events[0].attributes.note']],
    ['an email percent-encoded twice', '{"events":[{"event":"page_view","attributes":{"note":"ada%2540example.com"}}]}', ['events[0].attributes.note']],
    ['an email with a fullwidth at sign', '{"events":[{"event":"page_view","attributes":{"note":"ada＠example.com"}}]}', ['events[0].attributes.note']],
    ['a card number written with dots', '{"events":[{"event":"page_view","attributes":{"ref":"4111.1111.1111.1111"}}]}', ['events[0].attributes.ref']],
    ['a card number written with underscores', '{"events":[{"event":"page_view","attributes":{"ref":"4111_1111_1111_1111"}}]}', ['events[0].attributes.ref']],
    ['a card number sent as a number', '{"events":[{"event":"page_view","attributes":{"ref":4111111111111111}}]}', ['events[0].attributes.ref']],
    ['a percent-encoded key naming an email', '{"events":[{"event":"page_view","attributes":{"e%6Dail":"x"}}]}', ['events[0].attributes.e%6Dail']],
    [
      'personal data in the second of two events',
      '{"events":[{"event":"page_view","attributes":{"route":"/a"}},{"event":"page_view","attributes":{"password":"x","ref":"4111-1111-1111-1111"}}]}',
      ['events[1].attributes.password', 'events[1].attributes.ref'],
    ],
  ];

  it.each(personalData)(
    'refuses %s: 400 naming the offending keys, no metric counted, one ingestion_rejected security event',
    async (_name, body, offendingKeys) => {
      const before = await env.gateway.metricsText();
      const response = await postMetrics(env.gateway, body);
      expect(response.status).toBe(400);
      const detail = ((await response.json()) as { detail: string }).detail;
      for (const key of offendingKeys) expect(detail).toContain(key);
      expect(detail).not.toContain('example.com');
      const after = await env.gateway.metricsText();
      expect(metricValue(after, 'bff_public_metrics_total')).toBe(metricValue(before, 'bff_public_metrics_total'));
      const rejected = (text: string) => metricValue(text, 'bff_security_events_total', { event_type: 'ingestion_rejected', severity: 'warning' });
      expect(rejected(after)).toBe(rejected(before) + 1);
    },
  );

  it('refuses a body over 16 KiB with 413 and malformed JSON with 400', async () => {
    const huge = { events: [{ event: 'page_view', attributes: Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, 'v'.repeat(250)])) }] };
    expect((await postMetrics(env.gateway, huge)).status).toBe(413);
    expect((await postMetrics(env.gateway, '{"events": [')).status).toBe(400);
  });

  it('publishes every rejected ingestion as a security event', async () => {
    const rejectedEvents = async () => metricValue(await env.gateway.metricsText(), 'bff_security_events_total', { event_type: 'ingestion_rejected' });
    const before = await rejectedEvents();
    for (const [, body] of refused) expect((await postMetrics(env.gateway, body)).status).toBe(400);
    expect((await rejectedEvents()) - before).toBe(refused.length);
  });
});

describe('rate limits per client address, shared by replicas through Redis', () => {
  let env: TestEnvironment;
  let replica: RunningGateway;

  beforeAll(async () => {
    env = await startTestEnvironment({ env: { RATE_LIMIT_METRICS_PER_MINUTE: '3', RATE_LIMIT_AUTH_PER_MINUTE: '5' } });
    replica = await env.startReplica();
  });
  afterAll(() => env.close());

  it('answers 429 with Retry-After once the replicas together saw more than the limit', async () => {
    const body = { events: [{ event: 'page_view' }] };
    const statuses = [];
    for (const gateway of [env.gateway, replica, env.gateway, replica]) statuses.push((await postMetrics(gateway, body)).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
    const limited = await postMetrics(env.gateway, body);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(metricValue(await env.gateway.metricsText(), 'bff_rate_limit_violations_total', { client_id: 'spa_metrics' })).toBeGreaterThanOrEqual(1);
  });

  it('limits the /auth endpoints separately', async () => {
    const statuses = [];
    for (let call = 0; call < 6; call++) statuses.push((await fetch(`${env.gateway.url}/auth/user`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });
});
