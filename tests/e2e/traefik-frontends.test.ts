import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { Browser, loginWithIdp } from '../support/browser';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream';
import { API_CALL, rawRequest } from '../support/forward-auth-proxy-suite';
import { startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { bffTestClient, startTestIdp, type TestIdp } from '../support/idp';
import { reservePort, withFreePort } from '../support/ports';
import { startRedis, type RedisServer } from '../support/redis';
import { makeTestCertificates, type TestCertificates } from '../support/tls';
import { startTraefik, type TraefikProxy } from '../support/traefik';

/**
 * SPEC section 10 behind real Traefik: two SPAs on two hosts, each behind the
 * shipped deploy/traefik/dynamic.yml (one Traefik per host, as BFF_HOST
 * templates it), both calling ForwardAuth on one gateway with FRONTENDS_FILE.
 * The gateway tells them apart by the X-Forwarded-Host Traefik sends.
 */
const CLIENTS = {
  shop: { client_id: 'shop-client', client_secret: 'shop-client-secret-0123456789abcdef' },
  partner: { client_id: 'partner-client', client_secret: 'partner-client-secret-0123456789abcdef' },
} as const;

describe('two frontends on two hosts behind Traefik, one gateway', () => {
  let redis: RedisServer;
  let idp: TestIdp;
  let upstream: EchoUpstream;
  let certificates: TestCertificates;
  let gateway: RunningGateway;
  const proxies: TraefikProxy[] = [];
  let directory: string;
  let shopOrigin: string;
  let partnerOrigin: string;

  beforeAll(async () => {
    const gatewayPort = await reservePort();
    [redis, upstream] = await Promise.all([startRedis(), startEchoUpstream()]);
    certificates = makeTestCertificates();
    const proxyFor = (host: string) =>
      withFreePort((port) =>
        startTraefik({ port, host, gatewayUrl: `http://127.0.0.1:${gatewayPort.port}`, caFile: certificates.caFile, apiUrl: upstream.url }),
      );
    const [shopProxy, partnerProxy] = [await proxyFor('127.0.0.1'), await proxyFor('localhost')] as [TraefikProxy, TraefikProxy];
    proxies.push(shopProxy, partnerProxy);
    shopOrigin = shopProxy.origin;
    partnerOrigin = `http://localhost:${partnerProxy.port}`;
    idp = await startTestIdp({
      clients: [
        bffTestClient({ ...CLIENTS.shop, redirect_uris: [`${shopOrigin}/auth/callback`] }),
        bffTestClient({ ...CLIENTS.partner, redirect_uris: [`${partnerOrigin}/auth/callback`] }),
      ],
    });
    directory = mkdtempSync(join(tmpdir(), 'bff-traefik-frontends-'));
    const file = join(directory, 'frontends.yaml');
    const frontend = (name: keyof typeof CLIENTS, publicUrl: string) => ({
      name,
      publicUrl,
      oidc: { issuer: idp.issuer, clientId: CLIENTS[name].client_id, clientSecret: CLIENTS[name].client_secret },
    });
    writeFileSync(file, toYaml({ frontends: [frontend('shop', shopOrigin), frontend('partner', partnerOrigin)] }));
    gateway = await startGateway({
      port: gatewayPort,
      env: { FRONTENDS_FILE: file, SESSION_SECRET: TEST_SESSION_SECRET, REDIS_URL: redis.url, TRUSTED_PROXIES: '127.0.0.1/32' },
    });
  }, 180_000);

  afterAll(async () => {
    for (const proxy of proxies) await proxy.stop();
    await gateway?.close();
    await Promise.all([idp?.stop(), redis?.stop(), upstream?.close()]);
    certificates?.remove();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  async function loggedIn(origin: string, username: string, cookieName: string): Promise<{ browser: Browser; cookie: string }> {
    const browser = new Browser();
    const login = await loginWithIdp(browser, `${origin}/auth/login?returnTo=%2F`, { username });
    const value = browser.cookie(cookieName, origin);
    if (login.finalUrl !== `${origin}/` || !value) throw new Error(`login through ${origin} ended at ${login.finalUrl} with ${login.response.status}`);
    return { browser, cookie: value };
  }

  const apiCall = (origin: string, browser: Browser, cookie: string) =>
    rawRequest(`${origin}/api/orders`, ['User-Agent', browser.userAgent, ...Object.entries(API_CALL).flat(), 'Cookie', cookie]);

  it("logs in on each host through its own IdP client, and the API behind each host gets that frontend's user and token", async () => {
    const shop = await loggedIn(shopOrigin, 'alice', 'bff-shop');
    const partner = await loggedIn(partnerOrigin, 'carol', 'bff-partner');

    const shopAnswer = await apiCall(shopOrigin, shop.browser, `bff-shop=${shop.cookie}`);
    const partnerAnswer = await apiCall(partnerOrigin, partner.browser, `bff-partner=${partner.cookie}`);
    expect([shopAnswer.status, partnerAnswer.status]).toEqual([200, 200]);
    const seenByShopApi = JSON.parse(shopAnswer.body) as { headers: Record<string, string> };
    const seenByPartnerApi = JSON.parse(partnerAnswer.body) as { headers: Record<string, string> };
    expect(seenByShopApi.headers['x-auth-request-user']).toBe('alice');
    expect(seenByPartnerApi.headers['x-auth-request-user']).toBe('carol');
    expect(seenByShopApi.headers.authorization).toMatch(/^Bearer ./);
    expect(seenByShopApi.headers.cookie ?? '').not.toContain('bff-shop');
  });

  it("refuses a frontend's session replayed through the other host, under either cookie name", async () => {
    const shop = await loggedIn(shopOrigin, 'alice', 'bff-shop');
    const partner = await loggedIn(partnerOrigin, 'carol', 'bff-partner');
    const before = upstream.requests.length;

    const answers = await Promise.all([
      apiCall(partnerOrigin, shop.browser, `bff-partner=${shop.cookie}`),
      apiCall(partnerOrigin, shop.browser, `bff-shop=${shop.cookie}`),
      apiCall(shopOrigin, partner.browser, `bff-shop=${partner.cookie}`),
      apiCall(shopOrigin, partner.browser, `bff-partner=${partner.cookie}`),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([401, 401, 401, 401]);
    expect(upstream.requests.length).toBe(before);
    // Still good where each belongs.
    expect((await apiCall(shopOrigin, shop.browser, `bff-shop=${shop.cookie}`)).status).toBe(200);
  });
});
