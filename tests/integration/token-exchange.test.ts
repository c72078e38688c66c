import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';

const ROUTES = `
routes:
  - name: orders
    pathPrefix: /api/orders
    audience: orders-api
  - name: everything
    pathPrefix: /
`;

describe('routes with an audience get an RFC 8693 exchanged token', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    const routesFile = join(mkdtempSync(join(tmpdir(), 'bff-routes-')), 'routes.yaml');
    writeFileSync(routesFile, ROUTES);
    env = await startTestEnvironment({ withRedis: false, env: { ROUTES_FILE: routesFile } });
  });
  afterAll(() => env.close());
  beforeEach(() => env.idp.reset());

  it('forwards a token for the audience, exchanged once and reused, and the session token elsewhere', async () => {
    const browser = await logIn(env.gateway, 'alice');
    const bearer = async (uri: string) => {
      const response = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded(uri) });
      expect(response.status).toBe(200);
      return (response.headers.get('authorization') ?? '').replace('Bearer ', '');
    };
    const forOrders = await bearer('/api/orders/42');
    const again = await bearer('/api/orders/43');
    const elsewhere = await bearer('/api/catalogue');

    expect(await env.idp.exchangedToken(forOrders)).toEqual({ sub: 'alice', audience: 'orders-api' });
    expect(again).toBe(forOrders);
    expect(elsewhere).not.toBe(forOrders);
    expect(await env.idp.exchangedToken(elsewhere)).toEqual({});
    expect((await env.idp.stats()).tokenExchanges).toEqual({ 'alice orders-api': 1 });
  });

  it('answers 403 when the IdP refuses the exchange and 503 when it cannot answer', async () => {
    const browser = await logIn(env.gateway, 'bob');
    await env.idp.setTokenFailure(400, 'invalid_target');
    const refused = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(refused.status).toBe(403);

    await env.idp.setTokenFailure(503);
    const unavailable = await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/orders') });
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get('retry-after')).toMatch(/^\d+$/);

    await env.idp.setTokenFailure(null);
    expect((await browser.request(`${env.gateway.url}/verify`, { headers: forwarded('/api/catalogue') })).status).toBe(200);
  });
});
