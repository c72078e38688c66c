import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { AuthorizationInput } from '../../src/authz/authorizer';
import { createAuthorizer } from '../../src/authz/create-authorizer';
import { loadConfig } from '../../src/config/load-config';
import { systemClock } from '../../src/shared/clock';
import { GatewayMetrics } from '../../src/telemetry/metrics';
import { metricValue } from '../support/gateway';

/**
 * OPA itself never sends garbage, so these cases stand a tiny node:http server
 * in for a broken PDP: a proxy in between that answers HTML, a PDP_URL that
 * points at the wrong thing, a policy that returns a string. Every one of
 * them must deny, and none of them is an outage. What happens when no answer
 * comes at all is proven against a real OPA in tests/integration/authz.test.ts.
 */

interface CannedAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

const bobDeletesOrder: AuthorizationInput = {
  subject: { sub: 'bob', groups: ['users', 'admins'], email: 'bob@example.test' },
  resource: 'orders',
  action: 'delete',
  method: 'DELETE',
  path: '/api/orders/42',
};

describe('OpaAuthorizer against a PDP that answers something that is not a decision', () => {
  let server: Server;
  let url: string;
  let answer: CannedAnswer = { status: 200, body: '{"result":false}' };
  const received: Array<{ method: string; path: string; contentType: string; body: string }> = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        received.push({ method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body });
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/data/bff/allow`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    received.length = 0;
  });

  function build() {
    const metrics = new GatewayMetrics({ collectProcessMetrics: false });
    const config = loadConfig({ PDP_URL: url, PDP_TIMEOUT_MS: '2000', PDP_CACHE_TTL_SECONDS: '0' });
    const wiring = createAuthorizer(config, {
      metrics,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      breakerOptions: { errorThresholdPercentage: 50, resetTimeoutMs: 10_000, volumeThreshold: 1 },
    });
    return { ...wiring, metrics };
  }

  it('posts the input document of SPEC section 4, groups sorted, as JSON to PDP_URL', async () => {
    // The control for the cases below: this stand-in can allow, so their denials come from the answer.
    answer = { status: 200, body: '{"result":true}' };
    const { authorizer } = build();
    await expect(authorizer.allows(bobDeletesOrder)).resolves.toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: 'POST', path: '/v1/data/bff/allow', contentType: 'application/json' });
    expect(JSON.parse(received[0]?.body ?? '')).toEqual({
      input: {
        subject: { sub: 'bob', groups: ['admins', 'users'], email: 'bob@example.test' },
        resource: 'orders',
        action: 'delete',
        method: 'DELETE',
        path: '/api/orders/42',
      },
    });
  });

  it.each<[string, CannedAnswer]>([
    ['a body that is not JSON', { status: 200, body: '<html>502 Bad Gateway</html>', headers: { 'content-type': 'text/html' } }],
    ['an empty body', { status: 200, body: '' }],
    ['no content', { status: 204, body: '' }],
    ['JSON null', { status: 200, body: 'null' }],
    ['an array', { status: 200, body: '[true]' }],
    ['no result (an undefined document)', { status: 200, body: '{}' }],
    ['a result of "true" as a string', { status: 200, body: '{"result":"true"}' }],
    ['a result of 1', { status: 200, body: '{"result":1}' }],
    ['a result that is a list', { status: 200, body: '{"result":[true]}' }],
    ['allow as a string', { status: 200, body: '{"result":{"allow":"true"}}' }],
    ['allowed instead of allow', { status: 200, body: '{"result":{"allowed":true}}' }],
    ['allow at the top level', { status: 200, body: '{"allow":true}' }],
    ['an allow inside a 404', { status: 404, body: '{"result":true}' }],
    ['an allow inside a 400', { status: 400, body: '{"result":true}' }],
    ['a redirect to an allowing endpoint', { status: 302, body: '', headers: { location: '/always-allow' } }],
    ['an allow padded past 64 KiB', { status: 200, body: `{"result":true,"pad":"${'x'.repeat(70_000)}"}` }],
  ])('denies %s, counts it as a deny, and stays healthy', async (_case, canned) => {
    answer = canned;
    const { authorizer, metrics } = build();
    await expect(authorizer.allows(bobDeletesOrder)).resolves.toBe(false);
    expect(received).toHaveLength(1);
    const text = await metrics.registry.metrics();
    expect(metricValue(text, 'bff_authz_requests_total', { resource: 'orders', action: 'delete', decision: 'deny' })).toBe(1);
    expect(metricValue(text, 'bff_authz_requests_total', { decision: 'error' })).toBe(0);
    expect(authorizer.status()).toEqual({ configured: true, isHealthy: true, lastError: undefined });
  });

  it('reports up in /ready, with the reason every decision is a deny', async () => {
    answer = { status: 200, body: '{}' };
    const { authorizer, check } = build();
    await authorizer.allows(bobDeletesOrder);
    const result = await check.check();
    expect(check).toMatchObject({ name: 'pdp', decidesReadiness: false });
    expect(result.status).toBe('up');
    expect(result.detail).toMatch(/without "result"/);
  });
});
