import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { Browser, DEFAULT_USER_AGENT, loginWithIdp } from '../support/browser';
import { startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { bffTestClient, startTestIdp, type TestIdp } from '../support/idp';
import { KEYCLOAK_REALM_FILE, logInThroughKeycloak, startKeycloak, type KeycloakServer } from '../support/keycloak';
import { reservePort } from '../support/ports';
import { startRedis, type RedisServer } from '../support/redis';
import { eventually } from '../support/wait';

/**
 * SPEC section 10 with two different IdPs: "staff" logs in through Keycloak
 * (the shipped realm's `bff-gateway` client) on localhost, "shop" through
 * oidc-provider on 127.0.0.1, both in one gateway on one Redis.
 */
const REALM_EXPORT = JSON.parse(readFileSync(KEYCLOAK_REALM_FILE, 'utf8')) as { realm: string; clients: Array<{ clientId: string; secret: string }> };
const REALM = REALM_EXPORT.realm;
const KEYCLOAK_CLIENT = REALM_EXPORT.clients.find((client) => client.clientId === 'bff-gateway')!;
const SHOP_CLIENT = { client_id: 'shop-client', client_secret: 'shop-client-secret-0123456789abcdef' };
const KEYCLOAK_START_TIMEOUT_MS = 300_000;

describe('two frontends on two IdPs, one of them Keycloak', () => {
  let keycloak: KeycloakServer;
  let idp: TestIdp;
  let redis: RedisServer;
  let gateway: RunningGateway;
  let directory: string;
  let shopUrl: string;
  let staffUrl: string;

  beforeAll(async () => {
    const reserved = await reservePort();
    const port = reserved.port;
    shopUrl = `http://127.0.0.1:${port}`;
    staffUrl = `http://localhost:${port}`;
    [keycloak, idp, redis] = await Promise.all([
      startKeycloak(),
      startTestIdp({ clients: [bffTestClient({ ...SHOP_CLIENT, redirect_uris: [`${shopUrl}/auth/callback`] })] }),
      startRedis(),
    ]);
    await keycloak.admin.updateClient(REALM, KEYCLOAK_CLIENT.clientId, (client) => ({
      ...client,
      rootUrl: staffUrl,
      redirectUris: [`${staffUrl}/auth/callback`],
      attributes: { ...client.attributes, 'post.logout.redirect.uris': `${staffUrl}/`, 'backchannel.logout.url': `${staffUrl}/auth/backchannel-logout` },
    }));
    directory = mkdtempSync(join(tmpdir(), 'bff-keycloak-frontends-'));
    const file = join(directory, 'frontends.yaml');
    writeFileSync(
      file,
      toYaml({
        frontends: [
          { name: 'shop', publicUrl: shopUrl, oidc: { issuer: idp.issuer, clientId: SHOP_CLIENT.client_id, clientSecret: SHOP_CLIENT.client_secret } },
          {
            name: 'staff',
            publicUrl: staffUrl,
            oidc: { issuer: keycloak.issuer(REALM), clientId: KEYCLOAK_CLIENT.clientId, clientSecret: KEYCLOAK_CLIENT.secret, groupsClaim: 'realm_access.roles' },
          },
        ],
      }),
    );
    gateway = await startGateway({ port: reserved, env: { FRONTENDS_FILE: file, SESSION_SECRET: TEST_SESSION_SECRET, REDIS_URL: redis.url } });
  }, KEYCLOAK_START_TIMEOUT_MS);

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([keycloak?.stop(), idp?.stop(), redis?.stop()]);
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  async function staffMember(): Promise<{ id: string; username: string; password: string }> {
    const username = `staff-${randomUUID().slice(0, 8)}`;
    const password = `${username}-password`;
    const user = await keycloak.admin.createUser(REALM, {
      username,
      password,
      email: `${username}@example.test`,
      firstName: 'Staff',
      lastName: 'Member',
      realmRoles: [`default-roles-${REALM}`, 'app-user'],
    });
    return { id: user.id, username, password };
  }

  const verify = (cookie: string, host: string) =>
    fetch(`${gateway.url}/verify`, {
      headers: {
        'X-Forwarded-Method': 'GET',
        'X-Forwarded-Proto': 'http',
        'X-Forwarded-Host': host,
        'X-Forwarded-Uri': '/api/things',
        Accept: 'application/json',
        Cookie: cookie,
        'User-Agent': DEFAULT_USER_AGENT,
      },
    });

  it('logs in through each frontend’s own IdP, and never lets one frontend’s session open the other', async () => {
    const member = await staffMember();
    const staffBrowser = new Browser();
    const landed = await logInThroughKeycloak(staffBrowser, `${staffUrl}/auth/login`, member);
    expect(landed.url.startsWith(staffUrl)).toBe(true);
    const staffCookie = staffBrowser.cookie('bff-staff', staffUrl) as string;
    const shopBrowser = new Browser();
    await loginWithIdp(shopBrowser, `${shopUrl}/auth/login`, { username: 'alice' });
    const shopCookie = shopBrowser.cookie('bff-shop', shopUrl) as string;

    const staffAnswer = await verify(`bff-staff=${staffCookie}`, 'localhost');
    expect(staffAnswer.status).toBe(200);
    expect(staffAnswer.headers.get('x-auth-request-user')).toBe(member.id);
    expect(staffAnswer.headers.get('authorization')).toMatch(/^Bearer ey/);
    expect((await verify(`bff-shop=${shopCookie}`, '127.0.0.1')).status).toBe(200);

    expect((await verify(`bff-shop=${staffCookie}`, '127.0.0.1')).status).toBe(401);
    expect((await verify(`bff-staff=${shopCookie}`, 'localhost')).status).toBe(401);
    expect((await verify(`bff-staff=${staffCookie}`, '127.0.0.1')).status).toBe(401);
  });

  it('ends a staff session when a Keycloak admin signs the user out, and only on the frontend whose client got the logout', async () => {
    const member = await staffMember();
    const staffBrowser = new Browser();
    await logInThroughKeycloak(staffBrowser, `${staffUrl}/auth/login`, member);
    const staffCookie = `bff-staff=${staffBrowser.cookie('bff-staff', staffUrl) as string}`;
    const shopBrowser = new Browser();
    await loginWithIdp(shopBrowser, `${shopUrl}/auth/login`, { username: 'bob' });
    const shopCookie = `bff-shop=${shopBrowser.cookie('bff-shop', shopUrl) as string}`;
    expect((await verify(staffCookie, 'localhost')).status).toBe(200);

    await keycloak.admin.logoutUser(REALM, member.id);

    await eventually(
      async () => (await verify(staffCookie, 'localhost')).status,
      (status) => status === 401,
      { what: 'the staff session to end after the Keycloak admin logout', timeoutMs: 10_000, intervalMs: 100 },
    );
    expect((await verify(shopCookie, '127.0.0.1')).status).toBe(200);
  });
});
