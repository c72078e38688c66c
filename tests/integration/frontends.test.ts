import { writeFileSync, mkdtempSync, rmSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stringify as toYaml } from 'yaml';
import { Browser, DEFAULT_USER_AGENT, loginWithIdp } from '../support/browser';
import { metricValue, startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { bffTestClient, startTestIdp, type TestIdp } from '../support/idp';
import { reservePort } from '../support/ports';
import { startRedis, type RedisServer } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * SPEC section 10 against real servers: one gateway, Redis and the test IdP
 * (oidc-provider) with one client per frontend. "shop" owns 127.0.0.1,
 * "admin" owns 127.0.0.1/admin, and a reload brings "partner" on localhost.
 */
const CLIENTS = {
  shop: { client_id: 'shop-client', client_secret: 'shop-client-secret-0123456789abcdef' },
  admin: { client_id: 'admin-client', client_secret: 'admin-client-secret-0123456789abcdef' },
  partner: { client_id: 'partner-client', client_secret: 'partner-client-secret-0123456789abcdef' },
} as const;

/** The admin frontend's own idle timeout; the others take SESSION_IDLE_TTL_SECONDS' default, 1800 s. */
const ADMIN_IDLE_TTL_SECONDS = 300;

interface Frontend {
  name: keyof typeof CLIENTS;
  publicUrl: string;
  pathPrefix?: string;
}

describe('several frontends in one gateway (FRONTENDS_FILE)', () => {
  let redisServer: RedisServer;
  let idp: TestIdp;
  let gateway: RunningGateway;
  let directory: string;
  let file: string;
  let port: number;
  let shopUrl: string;
  let partnerUrl: string;

  const entry = (frontend: Frontend) => ({
    name: frontend.name,
    publicUrl: frontend.publicUrl,
    ...(frontend.pathPrefix ? { pathPrefix: frontend.pathPrefix, session: { idleTtlSeconds: ADMIN_IDLE_TTL_SECONDS } } : {}),
    oidc: { issuer: idp.issuer, clientId: CLIENTS[frontend.name].client_id, clientSecret: CLIENTS[frontend.name].client_secret },
  });
  const shop = (): Frontend => ({ name: 'shop', publicUrl: shopUrl });
  const admin = (): Frontend => ({ name: 'admin', publicUrl: shopUrl, pathPrefix: '/admin' });
  const partner = (): Frontend => ({ name: 'partner', publicUrl: partnerUrl });

  /** Replaced in one rename, as an editor or a ConfigMap does: the watcher never reads half a file. */
  const writeFrontends = (content: string) => {
    const temporary = `${file}.tmp`;
    writeFileSync(temporary, content);
    renameSync(temporary, file);
  };
  const frontendsFile = (...frontends: Frontend[]) => toYaml({ frontends: frontends.map(entry) });

  beforeAll(async () => {
    const reserved = await reservePort();
    port = reserved.port;
    shopUrl = `http://127.0.0.1:${port}`;
    partnerUrl = `http://localhost:${port}`;
    redisServer = await startRedis();
    idp = await startTestIdp({
      clients: [
        bffTestClient({ ...CLIENTS.shop, redirect_uris: [`${shopUrl}/auth/callback`], post_logout_redirect_uris: [`${shopUrl}/`] }),
        bffTestClient({ ...CLIENTS.admin, redirect_uris: [`${shopUrl}/admin/auth/callback`], post_logout_redirect_uris: [`${shopUrl}/admin/`] }),
        bffTestClient({ ...CLIENTS.partner, redirect_uris: [`${partnerUrl}/auth/callback`], post_logout_redirect_uris: [`${partnerUrl}/`] }),
      ],
    });
    directory = mkdtempSync(join(tmpdir(), 'bff-frontends-'));
    file = join(directory, 'frontends.yaml');
    writeFrontends(frontendsFile(shop(), admin()));
    gateway = await startGateway({ port: reserved, env: { FRONTENDS_FILE: file, SESSION_SECRET: TEST_SESSION_SECRET, REDIS_URL: redisServer.url } });
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await idp?.stop();
    await redisServer?.stop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  /** Restores the two-frontend file after a test that changed it, whatever the order tests run in. */
  afterEach(async () => {
    writeFrontends(frontendsFile(shop(), admin()));
    await gateway.gateway.reloadFrontends();
  });

  const logInTo = async (frontendUrl: string, username: string): Promise<Browser> => {
    const browser = new Browser();
    const result = await loginWithIdp(browser, `${frontendUrl}/auth/login`, { username });
    expect(result.finalUrl.startsWith(frontendUrl.replace(/\/admin$/, ''))).toBe(true);
    return browser;
  };

  const verify = (browser: Browser | undefined, host: string, uri: string) =>
    (browser ?? new Browser()).request(`${gateway.url}/verify`, {
      headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': host, 'X-Forwarded-Uri': uri, Accept: 'application/json' },
    });

  /** What /verify answers for `uri` on the shop's host with exactly this Cookie header (from the browser that logged in: sessions are bound to its User-Agent). */
  const verifyWithCookie = (cookie: string, uri: string, host = '127.0.0.1') =>
    fetch(`${gateway.url}/verify`, {
      headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': host, 'X-Forwarded-Uri': uri, Accept: 'application/json', Cookie: cookie, 'User-Agent': DEFAULT_USER_AGENT },
    });

  it('logs a user in to each frontend through its own IdP client, with its own cookie', async () => {
    const shopBrowser = await logInTo(shopUrl, 'alice');
    const adminBrowser = await logInTo(`${shopUrl}/admin`, 'bob');
    expect(shopBrowser.cookie('bff-shop', shopUrl)).toBeDefined();
    expect(adminBrowser.cookie('bff-admin', shopUrl)).toBeDefined();

    const shopUser = await shopBrowser.request(`${shopUrl}/auth/user`);
    expect(((await shopUser.json()) as { sub: string }).sub).toBe('alice');
    const adminUser = await adminBrowser.request(`${shopUrl}/admin/auth/user`);
    expect(((await adminUser.json()) as { sub: string }).sub).toBe('bob');
    expect((await verify(shopBrowser, '127.0.0.1', '/api/orders')).status).toBe(200);
    expect((await verify(adminBrowser, '127.0.0.1', '/admin/api/users')).status).toBe(200);
    const metrics = await gateway.metricsText();
    expect(metricValue(metrics, 'bff_sessions_created_total', { frontend: 'shop' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'bff_sessions_created_total', { frontend: 'admin' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'bff_frontends')).toBeGreaterThanOrEqual(2);
  });

  it("refuses one frontend's session on another's routes, under either cookie name", async () => {
    const shopBrowser = await logInTo(shopUrl, 'alice');
    const shopCookie = shopBrowser.cookie('bff-shop', shopUrl) as string;
    const adminBrowser = await logInTo(`${shopUrl}/admin`, 'bob');
    const adminCookie = adminBrowser.cookie('bff-admin', shopUrl) as string;

    // The shop's browser holds only the shop's cookie: the admin frontend's routes want a login.
    expect((await verify(shopBrowser, '127.0.0.1', '/admin/api/users')).status).toBe(401);
    // The shop's session id replayed under the admin's cookie name, and the other way round.
    expect((await verifyWithCookie(`bff-admin=${shopCookie}`, '/admin/api/users')).status).toBe(401);
    expect((await verifyWithCookie(`bff-shop=${adminCookie}`, '/api/orders')).status).toBe(401);
    const replayedUser = await fetch(`${shopUrl}/admin/auth/user`, { headers: { Cookie: `bff-admin=${shopCookie}`, 'User-Agent': DEFAULT_USER_AGENT } });
    expect(replayedUser.status).toBe(401);
    // Each is still good where it belongs.
    expect((await verifyWithCookie(`bff-shop=${shopCookie}`, '/api/orders')).status).toBe(200);
    expect((await verifyWithCookie(`bff-admin=${adminCookie}`, '/admin/api/users')).status).toBe(200);
  });

  it("keeps each frontend's session for its own idle timeout", async () => {
    const redis = new Redis(redisServer.url);
    try {
      const keyOf = (browser: Browser, cookie: string) => `bff:sess:${decodeURIComponent(browser.cookie(cookie, shopUrl) ?? '').slice(2, 45)}`;
      const shopBrowser = await logInTo(shopUrl, 'alice');
      const adminBrowser = await logInTo(`${shopUrl}/admin`, 'bob');
      expect((await verify(adminBrowser, '127.0.0.1', '/admin/api/users')).status).toBe(200);
      const adminTtl = await redis.ttl(keyOf(adminBrowser, 'bff-admin'));
      expect(adminTtl).toBeGreaterThan(ADMIN_IDLE_TTL_SECONDS - 60);
      expect(adminTtl).toBeLessThanOrEqual(ADMIN_IDLE_TTL_SECONDS);
      expect(await redis.ttl(keyOf(shopBrowser, 'bff-shop'))).toBeGreaterThan(1700);
    } finally {
      redis.disconnect();
    }
  });

  it('selects the frontend on the normalised path, so dot segments cannot cross into another', async () => {
    const shopBrowser = await logInTo(shopUrl, 'alice');
    expect((await verify(shopBrowser, '127.0.0.1', '/api/../admin/api/users')).status).toBe(401);
    expect((await verify(shopBrowser, '127.0.0.1', '/ADMIN/api/users')).status).toBe(401);
    expect((await verify(shopBrowser, '127.0.0.1', '/administrator')).status).toBe(200);
  });

  it('answers 403 no_route for a host no frontend serves', async () => {
    const response = await verify(undefined, 'unknown.example.test', '/api/orders');
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: 'no_route' });
  });

  it('adds a frontend on SIGHUP-style reload without dropping sessions, and serves it', async () => {
    const shopBrowser = await logInTo(shopUrl, 'alice');
    writeFrontends(frontendsFile(shop(), admin(), partner()));
    const outcome = await gateway.gateway.reloadFrontends();
    // The file watcher may have applied the same file a moment earlier: then this reload finds it unchanged.
    expect(outcome.result === 'applied' ? outcome : { ...outcome, added: ['partner'] }).toMatchObject({ added: ['partner'], removed: [], changed: [] });

    const partnerBrowser = await logInTo(partnerUrl, 'carol');
    const partnerCookie = `bff-partner=${partnerBrowser.cookie('bff-partner', partnerUrl) as string}`;
    expect((await verifyWithCookie(partnerCookie, '/api/x', 'localhost')).status).toBe(200);
    expect((await verifyWithCookie(partnerCookie, '/api/x', '127.0.0.1')).status).toBe(401);
    expect((await verify(shopBrowser, '127.0.0.1', '/api/orders')).status).toBe(200);
    const ready = (await (await fetch(`${gateway.url}/ready`)).json()) as { checks: { frontends: { detail: string } } };
    expect(ready.checks.frontends.detail).toContain('shop, admin, partner');
  });

  it('reloads by itself when the file changes', async () => {
    const before = metricValue(await gateway.metricsText(), 'bff_config_reloads_total', { result: 'applied' });
    writeFrontends(frontendsFile(shop(), admin(), partner()));
    await eventually(
      async () => (await verify(undefined, 'localhost', '/api/x')).status,
      (status) => status === 401,
      { what: 'the partner frontend to be served after the file changed' },
    );
    expect(metricValue(await gateway.metricsText(), 'bff_config_reloads_total', { result: 'applied' })).toBeGreaterThan(before);
  });

  it('refuses an invalid file whole, says why in /ready and the metrics, and keeps serving the running frontends', async () => {
    const shopBrowser = await logInTo(shopUrl, 'alice');
    const refusedBefore = metricValue(await gateway.metricsText(), 'bff_config_reloads_total', { result: 'refused' });
    writeFrontends(toYaml({ frontends: [entry(shop()), { ...entry(partner()), cookieName: 'bad cookie', pathPrefix: '/a/../b' }] }));
    const malformed = await gateway.gateway.reloadFrontends();
    expect(malformed.result).toBe('refused');
    expect(malformed.problems).toEqual([expect.stringContaining('frontends.1.pathPrefix'), expect.stringContaining('frontends.1.cookieName')]);
    writeFrontends(toYaml({ frontends: [entry(shop()), { ...entry(partner()), name: 'shop' }, { ...entry(admin()), oidc: { clientId: 'x' } }] }));
    const conflicting = await gateway.gateway.reloadFrontends();
    expect(conflicting.result).toBe('refused');
    expect(conflicting.problems).toEqual(
      expect.arrayContaining([expect.stringContaining('the name shop is used twice'), expect.stringMatching(/^frontends\.2 \(admin\): oidc needs clientSecret/)]),
    );
    expect(metricValue(await gateway.metricsText(), 'bff_config_reloads_total', { result: 'refused' })).toBeGreaterThan(refusedBefore);
    const ready = await fetch(`${gateway.url}/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: { frontends: { detail: string } } }).checks.frontends.detail).toContain('reload refused');
    expect((await verify(shopBrowser, '127.0.0.1', '/api/orders')).status).toBe(200);
    expect((await verify(undefined, '127.0.0.1', '/admin/api/users')).status).toBe(401);
  });

  it('answers every /verify during reloads under load, each with the answer of the frontend it names', async () => {
    const shopBrowser = await logInTo(shopUrl, 'alice');
    const cookie = `bff-shop=${shopBrowser.cookie('bff-shop', shopUrl) as string}`;
    const unexpected: string[] = [];
    let requests = 0;
    let isReloading = true;
    const worker = async () => {
      // Bounded: stops after the reloads, or after 20,000 requests whatever happens.
      while ((isReloading || requests < 400) && requests < 20_000) {
        requests += 1;
        const response = await verifyWithCookie(cookie, '/api/orders');
        if (response.status !== 200) unexpected.push(`${response.status} ${await response.text()}`);
        else await response.body?.cancel();
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    for (let round = 0; round < 4; round += 1) {
      writeFrontends(frontendsFile(shop(), admin(), partner()));
      await gateway.gateway.reloadFrontends();
      writeFrontends(frontendsFile(shop(), admin()));
      await gateway.gateway.reloadFrontends();
    }
    isReloading = false;
    await Promise.all(workers);
    expect(unexpected).toEqual([]);
    expect(requests).toBeGreaterThanOrEqual(400);
  });
});
