// The gateway against a real Keycloak 26 (SPEC section 9): the realm the
// repository ships (deploy/keycloak/realm.json) imported at start, logins
// through Keycloak's own login form, sessions in a real Redis. The client's
// URLs in the realm name the compose deployment; once the gateway's port is
// known they are pointed at it through the admin API, as an operator would.
//
// Each test gets its own gateway and clock. A clock shared across tests
// drifts forward with every refresh test, and Keycloak's logout tokens expire
// two minutes after they are issued: once the drift passed the tolerance, a
// back-channel logout was refused as expired, depending on which tests ran
// before it.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SessionCookie } from '../../src/session/session-cookie';
import type { TokenSet } from '../../src/session/session-data';
import { Browser } from '../support/browser';
import { forwarded } from '../support/environment';
import { metricValue, MovableClock, startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import {
  describeKeycloakPage,
  findKeycloakLoginForm,
  KEYCLOAK_JWT_CLIENT,
  KEYCLOAK_REALM_FILE,
  logInThroughKeycloak,
  startKeycloak,
  type KeycloakClient,
  type KeycloakCredentials,
  type KeycloakServer,
  type KeycloakUser,
} from '../support/keycloak';
import { startRedis, type RedisServer } from '../support/redis';
import { waitUntil } from '../support/wait';

/** What the shipped realm says, read from the file so that what is shipped is what is proven. */
interface RealmExport {
  realm: string;
  accessTokenLifespan: number;
  clients: Array<{ clientId: string; secret: string }>;
  users: Array<{ username: string; credentials: Array<{ value: string }> }>;
}
const REALM_EXPORT = JSON.parse(readFileSync(KEYCLOAK_REALM_FILE, 'utf8')) as RealmExport;
const REALM = REALM_EXPORT.realm;
const CLIENT = REALM_EXPORT.clients.find((client) => client.clientId === 'bff-gateway')!;
/** Past the first half of an access token's life: the gateway refreshes tokens shorter than two minutes then. */
const INTO_REFRESH_WINDOW_MS = (REALM_EXPORT.accessTokenLifespan / 2 + 1) * 1000;
/** How long a logout at Keycloak may take to reach the gateway; it normally takes milliseconds. */
const BACKCHANNEL_WAIT_MS = 10_000;
const KEYCLOAK_START_TIMEOUT_MS = 300_000;

function realmUser(username: string): KeycloakCredentials {
  const user = REALM_EXPORT.users.find((candidate) => candidate.username === username);
  if (!user?.credentials[0]) throw new Error(`${KEYCLOAK_REALM_FILE} has no user ${username} with a password`);
  return { username, password: user.credentials[0].value };
}

/** The client's URLs for a gateway at `publicUrl`: what docs/keycloak.md tells operators to set. */
function pointedAt(client: KeycloakClient, publicUrl: string): KeycloakClient {
  return {
    ...client,
    rootUrl: publicUrl,
    redirectUris: [`${publicUrl}/auth/callback`],
    attributes: {
      ...client.attributes,
      'post.logout.redirect.uris': `${publicUrl}/`,
      'backchannel.logout.url': `${publicUrl}/auth/backchannel-logout`,
    },
  };
}

describe('the gateway against Keycloak', () => {
  let keycloak: KeycloakServer;
  let redis: RedisServer;
  let gatewayEnv: Record<string, string>;
  /** The test's own gateway, the one Keycloak's `bff-gateway` client points at (back-channel logout included), and its clock. */
  let gateway: RunningGateway;
  let clock: MovableClock;
  /** Every gateway the test started, closed after it. */
  let started: RunningGateway[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    keycloak = await startKeycloak();
    gatewayEnv = {
      OIDC_ISSUER: keycloak.issuer(REALM),
      OIDC_CLIENT_ID: CLIENT.clientId,
      OIDC_CLIENT_SECRET: CLIENT.secret,
      OIDC_GROUPS_CLAIM: 'realm_access.roles',
      SESSION_SECRET: TEST_SESSION_SECRET,
      REDIS_URL: redis.url,
    };
  }, KEYCLOAK_START_TIMEOUT_MS);

  beforeEach(async () => {
    clock = new MovableClock();
    gateway = await startOwnGateway({ clock, env: gatewayEnv });
    await keycloak.admin.updateClient(REALM, CLIENT.clientId, (client) => pointedAt(client, gateway.url));
  });

  afterEach(async () => {
    const closing = started;
    started = [];
    for (const running of closing) await running.close().catch(() => undefined);
  });

  afterAll(async () => {
    await keycloak?.stop();
    await redis?.stop();
  });

  async function startOwnGateway(options: Parameters<typeof startGateway>[0]): Promise<RunningGateway> {
    const running = await startGateway(options);
    started.push(running);
    return running;
  }

  /** A gateway with other settings, also allowed to log in through the client (its callback URL added). */
  async function startAnotherGateway(env: Record<string, string>): Promise<RunningGateway> {
    const other = await startOwnGateway({ env: { ...gatewayEnv, ...env } });
    await keycloak.admin.updateClient(REALM, CLIENT.clientId, (client) => ({
      ...client,
      redirectUris: [...((client.redirectUris as string[] | undefined) ?? []), `${other.url}/auth/callback`],
    }));
    return other;
  }

  /** A user of its own, for a test that ends or disables sessions: in the staff group, with the default roles. */
  async function createUser(purpose: string): Promise<KeycloakUser & KeycloakCredentials> {
    const username = `${purpose}-${randomUUID().slice(0, 8)}`;
    const password = `${username}-password`;
    const user = await keycloak.admin.createUser(REALM, {
      username,
      password,
      email: `${username}@example.test`,
      firstName: 'Test',
      lastName: purpose,
      groups: ['/staff'],
      realmRoles: [`default-roles-${REALM}`, 'app-user'],
    });
    return { ...user, password };
  }

  async function logIn(credentials: KeycloakCredentials, target: RunningGateway = gateway): Promise<Browser> {
    const browser = new Browser();
    const landed = await logInThroughKeycloak(browser, `${target.url}/auth/login?returnTo=%2F`, credentials);
    if (landed.url !== `${target.url}/` || !browser.cookie(target.config.session.cookieName, target.url)) {
      throw new Error(`the login of ${credentials.username} did not end at the gateway with a session: ${describeKeycloakPage(landed)}`);
    }
    return browser;
  }

  async function userOf(browser: Browser, target: RunningGateway = gateway): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await browser.request(`${target.url}/auth/user`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function verify(browser: Browser): Promise<{ status: number; headers: Headers; bearer: string | undefined }> {
    const response = await browser.request(`${gateway.url}/verify`, { headers: forwarded('/api/orders') });
    await response.body?.cancel();
    return { status: response.status, headers: response.headers, bearer: response.headers.get('authorization')?.replace(/^Bearer /, '') };
  }

  /** The tokens as the gateway keeps them at rest in Redis, read through its store (which unseals the record). */
  async function storedTokens(browser: Browser): Promise<TokenSet | undefined> {
    const cookieName = gateway.config.session.cookieName;
    const sessionId = new SessionCookie(cookieName, [TEST_SESSION_SECRET]).sessionIdFrom(`${cookieName}=${browser.cookie(cookieName, gateway.url) ?? ''}`);
    if (!sessionId) return undefined;
    const record = await gateway.gateway.dependencies.sessions.get(sessionId);
    return record?.auth.tokens;
  }

  /** A refresh grant sent to Keycloak directly, as the gateway's client. */
  async function refreshAtKeycloak(refreshToken: string): Promise<{ status: number; error: unknown }> {
    const response = await fetch(`${keycloak.issuer(REALM)}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${CLIENT.clientId}:${CLIENT.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    const body = (await response.json()) as { error?: unknown };
    return { status: response.status, error: body.error };
  }

  function jwtPayload(jwt: string): Record<string, unknown> {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  }

  /**
   * Keycloak tells a stale refresh token by comparing its `iat` with the last
   * rotation in whole seconds: a token replaced within the second it was
   * issued in still passes. A refresh that should make it stale waits for the
   * next second first.
   */
  async function untilNextSecondAfterIssue(jwt: string): Promise<void> {
    const issuedAt = Number(jwtPayload(jwt).iat);
    await waitUntil(() => Math.floor(Date.now() / 1000) > issuedAt, {
      timeoutMs: 5_000,
      intervalMs: 50,
      timeoutMessage: `the clock did not pass the second ${issuedAt} a refresh token was issued in`,
    });
  }

  async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricValue(await gateway.metricsText(), name, labels);
  }

  it('logs a user in through Keycloak\'s login form, and /auth/user shows sub, name, email and the realm roles from realm_access.roles', async () => {
    const alice = await keycloak.admin.findUser(REALM, 'alice');
    const browser = await logIn(realmUser('alice'));

    const { status, body } = await userOf(browser);

    expect(status).toBe(200);
    expect(body).toMatchObject({ sub: alice.id, name: 'Alice Liddell', email: 'alice@example.test', preferredUsername: 'alice' });
    expect(body.groups).toEqual(expect.arrayContaining(['app-admin', 'app-user']));
    expect(body.groups).not.toContain('staff');
    expect(JSON.stringify(body)).not.toMatch(/eyJ/);
  });

  it('reads Keycloak group memberships instead when OIDC_GROUPS_CLAIM is groups', async () => {
    const byGroups = await startAnotherGateway({ OIDC_GROUPS_CLAIM: 'groups' });
    const browser = await logIn(realmUser('alice'), byGroups);

    const { status, body } = await userOf(browser, byGroups);

    expect(status).toBe(200);
    expect(body.groups).toEqual(['staff']);
  });

  it('hands the upstream a bearer token that Keycloak\'s userinfo endpoint accepts for the same user', async () => {
    const alice = await keycloak.admin.findUser(REALM, 'alice');
    const browser = await logIn(realmUser('alice'));

    const { status, headers, bearer } = await verify(browser);
    const userinfo = await fetch(`${keycloak.issuer(REALM)}/protocol/openid-connect/userinfo`, { headers: { authorization: `Bearer ${bearer}` } });

    expect(status).toBe(200);
    expect(headers.get('x-auth-request-user')).toBe(alice.id);
    expect(headers.get('x-auth-request-email')).toBe('alice@example.test');
    expect(userinfo.status).toBe(200);
    expect(await userinfo.json()).toMatchObject({ sub: alice.id, preferred_username: 'alice' });
  });

  it('refreshes with rotation: Keycloak refuses the old refresh token afterwards and the session keeps working', async () => {
    const browser = await logIn(realmUser('bob'));
    const before = await storedTokens(browser);
    expect(before?.refreshToken).toBeDefined();
    await untilNextSecondAfterIssue(before!.refreshToken!);

    clock.advance(INTO_REFRESH_WINDOW_MS);
    const refreshed = await verify(browser);
    const after = await storedTokens(browser);

    expect(refreshed.status).toBe(200);
    expect(after?.accessToken).not.toBe(before?.accessToken);
    expect(refreshed.bearer).toBe(after?.accessToken);
    expect(after?.refreshToken).toBeDefined();
    expect(after?.refreshToken).not.toBe(before?.refreshToken);

    clock.advance(INTO_REFRESH_WINDOW_MS);
    const again = await verify(browser);
    expect(again.status).toBe(200);
    expect(again.bearer).not.toBe(refreshed.bearer);
    expect((await storedTokens(browser))?.refreshToken).not.toBe(after?.refreshToken);
    expect((await userOf(browser)).status).toBe(200);

    expect(await refreshAtKeycloak(before!.refreshToken!)).toEqual({ status: 400, error: 'invalid_grant' });
  });

  it('ends the session at its next refresh once a replayed old refresh token has made Keycloak revoke the client session', async () => {
    const person = await createUser('replay');
    const browser = await logIn(person);
    const stolen = (await storedTokens(browser))!.refreshToken!;
    await untilNextSecondAfterIssue(stolen);
    clock.advance(INTO_REFRESH_WINDOW_MS);
    expect((await verify(browser)).status).toBe(200);

    // Refresh-token reuse detection: the replay is refused, and Keycloak drops the gateway's client session with it.
    expect(await refreshAtKeycloak(stolen)).toEqual({ status: 400, error: 'invalid_grant' });
    clock.advance(INTO_REFRESH_WINDOW_MS);

    expect((await verify(browser)).status).toBe(401);
    expect((await userOf(browser)).status).toBe(401);
  });

  it('logs out at Keycloak too: the logout URL ends the Keycloak session, and the next login shows the form again', async () => {
    const person = await createUser('logout');
    const browser = await logIn(person);
    // While the Keycloak session lives, a second login is answered by single sign-on, without the form.
    const sso = await browser.navigate(`${gateway.url}/auth/login?returnTo=%2F`);
    expect(findKeycloakLoginForm(sso)).toBeUndefined();
    expect(sso.url).toBe(`${gateway.url}/`);
    expect(await keycloak.admin.userSessions(REALM, person.id)).toHaveLength(1);

    const logout = await browser.request(`${gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
    const { logoutUrl } = (await logout.json()) as { logoutUrl: string };
    const endSession = new URL(logoutUrl);
    expect(logout.status).toBe(200);
    expect(`${endSession.origin}${endSession.pathname}`).toBe(`${keycloak.issuer(REALM)}/protocol/openid-connect/logout`);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${gateway.url}/`);
    expect(endSession.searchParams.get('id_token_hint')).toBeTruthy();

    const landed = await browser.navigate(logoutUrl);

    expect(landed.url).toBe(`${gateway.url}/`);
    expect((await userOf(browser)).status).toBe(401);
    expect(await keycloak.admin.userSessions(REALM, person.id)).toEqual([]);
    expect(findKeycloakLoginForm(await browser.navigate(`${gateway.url}/auth/login?returnTo=%2F`))).toBeDefined();
  });

  it('removes the gateway session within seconds when an admin logs the user out in Keycloak (back-channel logout)', async () => {
    const person = await createUser('admin-logout');
    const browser = await logIn(person);
    expect((await userOf(browser)).status).toBe(200);
    const destroyedBefore = await metric('bff_sessions_destroyed_total', { reason: 'backchannel_logout' });

    await keycloak.admin.logoutUser(REALM, person.id);

    let lastStatus = 0;
    await waitUntil(async () => (lastStatus = (await userOf(browser)).status) === 401, {
      timeoutMs: BACKCHANNEL_WAIT_MS,
      intervalMs: 100,
      timeoutMessage: () => `/auth/user still answered ${lastStatus} ${BACKCHANNEL_WAIT_MS} ms after the admin logout\n${keycloak.output().slice(-2000)}`,
    });
    expect(await metric('bff_sessions_destroyed_total', { reason: 'backchannel_logout' })).toBe(destroyedBefore + 1);
    expect((await verify(browser)).status).toBe(401);
  });

  it('ends only the browser whose Keycloak session ended: back-channel logout matches the sid, not every session of the user', async () => {
    const person = await createUser('two-browsers');
    const [ended, kept] = [await logIn(person), await logIn(person)];
    const endedSid = jwtPayload((await storedTokens(ended))!.idToken!).sid;
    expect(await keycloak.admin.userSessions(REALM, person.id)).toHaveLength(2);

    await keycloak.admin.request('DELETE', `/${REALM}/sessions/${String(endedSid)}`);

    await waitUntil(async () => (await userOf(ended)).status === 401, {
      timeoutMs: BACKCHANNEL_WAIT_MS,
      intervalMs: 100,
      timeoutMessage: `the ended browser's session outlived its Keycloak session by ${BACKCHANNEL_WAIT_MS} ms`,
    });
    expect((await userOf(kept)).status).toBe(200);
    clock.advance(INTO_REFRESH_WINDOW_MS);
    expect((await verify(kept)).status).toBe(200);
  });

  it('answers 401, not 503, at the next refresh of a user disabled in Keycloak, and removes the session', async () => {
    const person = await createUser('disabled');
    const browser = await logIn(person);
    expect((await verify(browser)).status).toBe(200);
    const rejectedBefore = await metric('bff_token_refresh_failed_total', { reason: 'invalid_grant' });
    const unavailableBefore = await metric('bff_token_refresh_failed_total', { reason: 'idp_unavailable' });

    await keycloak.admin.updateUser(REALM, person.id, { enabled: false });
    clock.advance(INTO_REFRESH_WINDOW_MS);
    const answer = await verify(browser);

    expect(answer.status).toBe(401);
    expect(await storedTokens(browser)).toBeUndefined();
    expect((await userOf(browser)).status).toBe(401);
    expect(await metric('bff_token_refresh_failed_total', { reason: 'invalid_grant' })).toBe(rejectedBefore + 1);
    expect(await metric('bff_token_refresh_failed_total', { reason: 'idp_unavailable' })).toBe(unavailableBefore);
    expect(await metric('circuit_breaker_status', { service: 'idp' })).toBe(0);
  });

  it('logs in a user without the offline_access role with the default scopes, and keeps an online (SSO) session', async () => {
    const carol = await keycloak.admin.findUser(REALM, 'carol');
    expect(await keycloak.admin.effectiveRealmRoles(REALM, carol.id)).not.toContain('offline_access');

    const browser = await logIn(realmUser('carol'));
    const tokens = await storedTokens(browser);

    expect((await userOf(browser)).body).toMatchObject({ sub: carol.id, preferredUsername: 'carol' });
    expect((await verify(browser)).status).toBe(200);
    expect(jwtPayload(tokens!.refreshToken!).typ).toBe('Refresh');
    expect(await keycloak.admin.userSessions(REALM, carol.id)).not.toEqual([]);
  });

  it('locks a user without the offline_access role out when offline_access is requested, which is why it is not a default scope', async () => {
    const withOffline = await startAnotherGateway({ OIDC_SCOPES: 'openid profile email offline_access' });
    const browser = new Browser();

    const page = await browser.navigate(`${withOffline.url}/auth/login?returnTo=%2F`);
    const form = findKeycloakLoginForm(page);
    expect(form).toBeDefined();
    const landed = await browser.submitForm(form!, { ...form!.fields, ...realmUser('carol') }, page.url);

    expect(landed.url.startsWith(`${withOffline.url}/auth/callback?`)).toBe(true);
    expect(landed.response.status).toBe(400);
    expect(landed.body).toContain('not_allowed');
    expect(browser.cookie(withOffline.config.session.cookieName, withOffline.url)).toBeUndefined();
  });

  describe('with private_key_jwt and pushed authorization requests (client bff-gateway-jwt)', () => {
    let jwtClock: MovableClock;
    let jwtGateway: RunningGateway;
    /** "Require pushed authorization requests" as the shipped realm sets it, restored after each test that changes it. */
    let shippedRequirePar: string | undefined;

    beforeAll(async () => {
      shippedRequirePar = (await keycloak.admin.findClient(REALM, KEYCLOAK_JWT_CLIENT.clientId)).attributes?.['require.pushed.authorization.requests'];
    });

    beforeEach(async () => {
      const { OIDC_CLIENT_SECRET: _secret, ...withoutSecret } = gatewayEnv;
      jwtClock = new MovableClock();
      jwtGateway = await startOwnGateway({
        clock: jwtClock,
        env: {
          ...withoutSecret,
          OIDC_CLIENT_ID: KEYCLOAK_JWT_CLIENT.clientId,
          OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt',
          OIDC_CLIENT_PRIVATE_KEY_FILE: KEYCLOAK_JWT_CLIENT.privateKeyFile,
        },
      });
      await keycloak.admin.updateClient(REALM, KEYCLOAK_JWT_CLIENT.clientId, (client) => pointedAt(client, jwtGateway.url));
    });

    afterEach(() => setRequirePar(shippedRequirePar));

    async function setRequirePar(value: string | undefined): Promise<void> {
      await keycloak.admin.updateClient(REALM, KEYCLOAK_JWT_CLIENT.clientId, (client) => ({
        ...client,
        attributes: { ...client.attributes, 'require.pushed.authorization.requests': value ?? 'false' },
      }));
    }

    async function verifyAt(browser: Browser): Promise<{ status: number; bearer: string | undefined }> {
      const response = await browser.request(`${jwtGateway.url}/verify`, { headers: forwarded('/api/orders') });
      await response.body?.cancel();
      return { status: response.status, bearer: response.headers.get('authorization')?.replace(/^Bearer /, '') };
    }

    it('ships the client with the Signed JWT authenticator, an ES256 public key, and PAR required', async () => {
      const client = await keycloak.admin.findClient(REALM, KEYCLOAK_JWT_CLIENT.clientId);

      expect(client.clientAuthenticatorType).toBe('client-jwt');
      expect(client.attributes).toMatchObject({ 'use.jwks.string': 'true', 'token.endpoint.auth.signing.alg': 'ES256', 'require.pushed.authorization.requests': 'true' });
      expect(jwtGateway.config.oidc).toMatchObject({ clientAuthentication: { method: 'private_key_jwt', privateKey: { algorithm: 'ES256' } } });
      const shippedKid = (JSON.parse(client.attributes!['jwks.string']!) as { keys: Array<{ kid: string }> }).keys[0]!.kid;
      expect(jwtGateway.config.oidc).toMatchObject({ clientAuthentication: { privateKey: { kid: shippedKid } } });
    });

    it.each([
      ['requires', 'true'],
      ['does not require', 'false'],
    ])('logs in when the client %s PAR, pushing the request: the browser goes to Keycloak with only client_id and request_uri', async (_requires, requirePar) => {
      await setRequirePar(requirePar);
      const person = await createUser('jwt-login');
      const browser = new Browser();

      const landed = await logInThroughKeycloak(browser, `${jwtGateway.url}/auth/login?returnTo=%2F`, person);
      const authorization = landed.hops.map((hop) => new URL(hop)).find((url) => url.pathname.endsWith('/protocol/openid-connect/auth'));
      const user = await browser.request(`${jwtGateway.url}/auth/user`);

      expect(landed.url).toBe(`${jwtGateway.url}/`);
      expect([...(authorization?.searchParams.keys() ?? [])].sort()).toEqual(['client_id', 'request_uri']);
      expect(user.status).toBe(200);
      expect(await user.json()).toMatchObject({ sub: person.id, preferredUsername: person.username });
    });

    it('is refused by Keycloak when the same client sends its authorization request in the URL instead', async () => {
      await setRequirePar('true');
      const plain = new URL(`${keycloak.issuer(REALM)}/protocol/openid-connect/auth`);
      for (const [name, value] of Object.entries({
        client_id: KEYCLOAK_JWT_CLIENT.clientId,
        response_type: 'code',
        redirect_uri: `${jwtGateway.url}/auth/callback`,
        scope: 'openid',
        state: 'a-state-value-of-enough-length',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      })) {
        plain.searchParams.set(name, value);
      }

      const page = await new Browser().navigate(plain);

      expect(findKeycloakLoginForm(page)).toBeUndefined();
      expect(`${page.stoppedAt ?? page.url} ${page.body}`).toMatch(/invalid_request|Pushed Authorization Request/i);
    });

    it('refreshes and logs out with signed client assertions: a new access token for the client, and the revocation ends the Keycloak session', async () => {
      const person = await createUser('jwt-refresh');
      const browser = new Browser();
      await logInThroughKeycloak(browser, `${jwtGateway.url}/auth/login?returnTo=%2F`, person);
      const first = await verifyAt(browser);
      expect(await keycloak.admin.userSessions(REALM, person.id)).toHaveLength(1);

      jwtClock.advance(INTO_REFRESH_WINDOW_MS);
      const refreshed = await verifyAt(browser);
      const logout = await browser.request(`${jwtGateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
      await logout.body?.cancel();

      expect([first.status, refreshed.status, logout.status]).toEqual([200, 200, 200]);
      expect(refreshed.bearer).not.toBe(first.bearer);
      expect(jwtPayload(refreshed.bearer!).azp).toBe(KEYCLOAK_JWT_CLIENT.clientId);
      expect(await keycloak.admin.userSessions(REALM, person.id)).toEqual([]);
    });
  });
});
