// OIDC_CLIENT_AUTH_METHOD and pushed authorization requests (RFC 9126)
// against the test IdP (oidc-provider in its own process): each gateway is a
// client registered with one method, and the IdP reports what it received
// at its token, PAR and revocation endpoints.
import { createHash, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, loginWithIdp } from '../support/browser';
import { CapturedLogs, LOG_LEVEL } from '../support/captured-logs';
import { forwarded } from '../support/environment';
import { metricValue, MovableClock, startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { startTestIdp, TEST_CLIENT_SECRET, type PushedAuthorizationRequestsMode, type TestIdp, type TestIdpClient, type TestIdpStats } from '../support/idp';
import { reservePort, type ReservedPort } from '../support/ports';

/** The test IdP issues 300 s access tokens; 250 s later they are inside the 60 s refresh window. */
const INTO_REFRESH_WINDOW_MS = 250_000;

type Method = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/** A client to register: its gateway's port is chosen first, since the IdP registers the callback URL. */
interface PlannedClient {
  readonly clientId: string;
  readonly method: Method;
  readonly port: ReservedPort;
}

/** One gateway registered at the IdP as its own client. */
interface ClientGateway extends PlannedClient {
  readonly clock: MovableClock;
  readonly logs: CapturedLogs;
  readonly gateway: RunningGateway;
}

/** A client's key pair as the gateway's file holds it and the IdP's registration publishes it. */
interface ClientKey {
  readonly file: string;
  readonly publicJwk: JsonWebKey & { kid: string };
}

let directory: string;

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'bff-client-auth-'));
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

/** RFC 7638, computed here independently of the gateway's code. */
function thumbprint(publicJwk: JsonWebKey): string {
  const required: Record<string, string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
  const members = (required[publicJwk.kty!] ?? []).map((name) => [name, publicJwk[name as keyof JsonWebKey]]);
  return createHash('sha256').update(JSON.stringify(Object.fromEntries(members))).digest('base64url');
}

/** A PEM (PKCS#8) key file; the kid the IdP knows is the thumbprint. */
function pemKey(name: string, pair: { privateKey: KeyObject; publicKey: KeyObject }): ClientKey {
  const file = join(directory, `${name}.pem`);
  writeFileSync(file, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const publicJwk = pair.publicKey.export({ format: 'jwk' });
  return { file, publicJwk: { ...publicJwk, kid: thumbprint(publicJwk) } };
}

/** A JWK key file with a kid of its own. */
function jwkKey(name: string, pair: { privateKey: KeyObject; publicKey: KeyObject }, kid: string): ClientKey {
  const file = join(directory, `${name}.jwk.json`);
  writeFileSync(file, JSON.stringify({ ...pair.privateKey.export({ format: 'jwk' }), kid }), { mode: 0o600 });
  return { file, publicJwk: { ...pair.publicKey.export({ format: 'jwk' }), kid } };
}

async function planClient(clientId: string, method: Method): Promise<PlannedClient> {
  return { clientId, method, port: await reservePort() };
}

function registration(client: PlannedClient, extra: Partial<TestIdpClient> = {}): TestIdpClient {
  const origin = `http://127.0.0.1:${client.port.port}`;
  return {
    client_id: client.clientId,
    client_secret: TEST_CLIENT_SECRET,
    redirect_uris: [`${origin}/auth/callback`],
    post_logout_redirect_uris: [`${origin}/`],
    token_endpoint_auth_method: client.method,
    ...extra,
  };
}

/** The gateway of a planned client, with in-memory sessions, its own clock and its log captured. */
async function startClientGateway(client: PlannedClient, idp: TestIdp, env: Record<string, string>): Promise<ClientGateway> {
  const clock = new MovableClock();
  const logs = new CapturedLogs();
  const gateway = await startGateway({
    port: client.port,
    clock,
    logger: logs.logger,
    env: { OIDC_ISSUER: idp.issuer, OIDC_CLIENT_ID: client.clientId, OIDC_CLIENT_AUTH_METHOD: client.method, SESSION_SECRET: TEST_SESSION_SECRET, ...env },
  });
  return { ...client, clock, logs, gateway };
}

async function logIn(gateway: RunningGateway, username: string): Promise<{ browser: Browser; hops: string[] }> {
  const browser = new Browser();
  const result = await loginWithIdp(browser, `${gateway.url}/auth/login?returnTo=%2F`, { username });
  if (result.finalUrl !== `${gateway.url}/` || !browser.cookie(gateway.config.session.cookieName, gateway.url)) {
    throw new Error(`the login of ${username} did not end at the gateway with a session: ${result.response.status} at ${result.finalUrl}`);
  }
  return { browser, hops: result.hops };
}

/** The first URL of a login that went to the IdP's authorization endpoint. */
function authorizationRedirect(hops: string[], idp: TestIdp): URL {
  const hop = hops.map((url) => new URL(url)).find((url) => url.origin === new URL(idp.issuer).origin && url.pathname === '/auth');
  if (!hop) throw new Error(`no authorization request among the hops:\n${hops.join('\n')}`);
  return hop;
}

async function bearerOf(browser: Browser, gateway: RunningGateway): Promise<{ status: number; token: string | undefined }> {
  const response = await browser.request(`${gateway.url}/verify`, { headers: forwarded('/api/orders') });
  await response.body?.cancel();
  return { status: response.status, token: response.headers.get('authorization')?.replace(/^Bearer /, '') };
}

function delta(after: Record<string, number>, before: Record<string, number>, key: string): number {
  return (after[key] ?? 0) - (before[key] ?? 0);
}

/** How many requests at `endpoint` used each method between two stats. */
function methodsAt(after: TestIdpStats, before: TestIdpStats, endpoint: string): Record<string, number> {
  const used: Record<string, number> = {};
  for (const key of Object.keys(after.clientAuthentications)) {
    const [at, method] = key.split(' ');
    const count = delta(after.clientAuthentications, before.clientAuthentications, key);
    if (at === endpoint && count > 0) used[method!] = count;
  }
  return used;
}

describe('client authentication at the token and revocation endpoints', () => {
  let idp: TestIdp;
  const clients: Record<string, ClientGateway> = {};
  const keys: Record<string, ClientKey> = {};
  const jwks = (key: ClientKey) => ({ jwks: { keys: [key.publicJwk as Record<string, unknown>] } });

  beforeAll(async () => {
    const planned = {
      post: await planClient('bff-post', 'client_secret_post'),
      rsaPem: await planClient('bff-rsa-pem', 'private_key_jwt'),
      ecJwk: await planClient('bff-ec-jwk', 'private_key_jwt'),
      rsaPss: await planClient('bff-rsa-ps256', 'private_key_jwt'),
      ed25519: await planClient('bff-ed25519', 'private_key_jwt'),
    };
    keys.rsaPem = pemKey('rsa', generateKeyPairSync('rsa', { modulusLength: 2048 }));
    keys.ecJwk = jwkKey('ec', generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'bff-ec-2026');
    keys.rsaPss = pemKey('rsa-pss', generateKeyPairSync('rsa', { modulusLength: 2048 }));
    keys.ed25519 = pemKey('ed25519', generateKeyPairSync('ed25519'));
    idp = await startTestIdp({
      clients: [
        registration(planned.post),
        registration(planned.rsaPem, jwks(keys.rsaPem)),
        registration(planned.ecJwk, jwks(keys.ecJwk)),
        // The IdP accepts only PS256 from this client: an RS256 assertion would be refused.
        registration(planned.rsaPss, { ...jwks(keys.rsaPss), token_endpoint_auth_signing_alg: 'PS256' }),
        registration(planned.ed25519, jwks(keys.ed25519)),
      ],
    });
    clients.post = await startClientGateway(planned.post, idp, { OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET });
    clients.rsaPem = await startClientGateway(planned.rsaPem, idp, { OIDC_CLIENT_PRIVATE_KEY_FILE: keys.rsaPem.file });
    clients.ecJwk = await startClientGateway(planned.ecJwk, idp, { OIDC_CLIENT_PRIVATE_KEY_FILE: keys.ecJwk.file });
    clients.rsaPss = await startClientGateway(planned.rsaPss, idp, { OIDC_CLIENT_PRIVATE_KEY_FILE: keys.rsaPss.file, OIDC_CLIENT_PRIVATE_KEY_ALG: 'PS256' });
    clients.ed25519 = await startClientGateway(planned.ed25519, idp, { OIDC_CLIENT_PRIVATE_KEY_FILE: keys.ed25519.file });
  });

  afterAll(async () => {
    for (const client of Object.values(clients)) await client.gateway?.close().catch(() => undefined);
    await idp?.stop();
  });

  /** Login, a refresh inside /verify, and a logout that revokes: each authenticated with the client's method. */
  async function loginRefreshLogout(client: ClientGateway, username: string) {
    const before = await idp.stats();
    const { browser } = await logIn(client.gateway, username);
    const first = await bearerOf(browser, client.gateway);
    const afterLogin = await idp.stats();

    client.clock.advance(INTO_REFRESH_WINDOW_MS);
    const refreshed = await bearerOf(browser, client.gateway);
    const afterRefresh = await idp.stats();

    const logout = await browser.request(`${client.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
    await logout.body?.cancel();
    const afterLogout = await idp.stats();
    const user = await browser.request(`${client.gateway.url}/auth/user`);
    await user.body?.cancel();

    return {
      statuses: { first: first.status, refreshed: refreshed.status, logout: logout.status, userAfterLogout: user.status },
      isTokenRenewed: refreshed.token !== undefined && refreshed.token !== first.token,
      codeGrants: afterLogin.codeGrants - before.codeGrants,
      refreshGrants: delta(afterRefresh.refreshGrants, afterLogin.refreshGrants, username),
      methods: {
        login: methodsAt(afterLogin, before, 'token'),
        refresh: methodsAt(afterRefresh, afterLogin, 'token'),
        revocation: methodsAt(afterLogout, afterRefresh, 'revocation'),
      },
      lastAssertion: afterLogout.lastClientAssertion,
    };
  }

  it('logs in, refreshes and logs out with client_secret_post: the secret travels in the body, never as Basic', async () => {
    const result = await loginRefreshLogout(clients.post!, 'post-user');

    expect(result.statuses).toEqual({ first: 200, refreshed: 200, logout: 200, userAfterLogout: 401 });
    expect(result.isTokenRenewed).toBe(true);
    expect([result.codeGrants, result.refreshGrants]).toEqual([1, 1]);
    expect(result.methods).toEqual({
      login: { client_secret_post: 1 },
      refresh: { client_secret_post: 1 },
      revocation: { client_secret_post: 1 },
    });
  });

  it.each<[string, string, string, () => string]>([
    ['an RSA PEM key', 'rsaPem', 'RS256', () => keys.rsaPem!.publicJwk.kid],
    ['an EC JWK file', 'ecJwk', 'ES256', () => 'bff-ec-2026'],
    ['an RSA key with OIDC_CLIENT_PRIVATE_KEY_ALG=PS256', 'rsaPss', 'PS256', () => keys.rsaPss!.publicJwk.kid],
    ['an Ed25519 PEM key', 'ed25519', 'EdDSA', () => keys.ed25519!.publicJwk.kid],
  ])('logs in, refreshes and logs out with private_key_jwt and %s: the IdP sees a signed client assertion every time', async (_key, name, alg, kid) => {
    const client = clients[name]!;
    const result = await loginRefreshLogout(client, `${name}-user`);

    expect(result.statuses).toEqual({ first: 200, refreshed: 200, logout: 200, userAfterLogout: 401 });
    expect(result.isTokenRenewed).toBe(true);
    expect([result.codeGrants, result.refreshGrants]).toEqual([1, 1]);
    expect(result.methods).toEqual({ login: { private_key_jwt: 1 }, refresh: { private_key_jwt: 1 }, revocation: { private_key_jwt: 1 } });
    expect(result.lastAssertion).toMatchObject({
      endpoint: 'revocation',
      header: { alg, kid: kid() },
      claims: { iss: client.clientId, sub: client.clientId, aud: idp.issuer },
    });
  });

  it('logs at start-up the method and the public JWK set to register at the IdP, with the kid and alg the assertions carry', () => {
    const loaded = (client: ClientGateway) => client.logs.records.find((record) => record.msg === 'identity provider metadata loaded');

    expect(loaded(clients.rsaPem!)).toMatchObject({
      clientAuthMethod: 'private_key_jwt',
      publicJwks: { keys: [{ ...keys.rsaPem!.publicJwk, alg: 'RS256', use: 'sig' }] },
      pushedAuthorizationRequests: 'not advertised',
    });
    expect(JSON.stringify(loaded(clients.rsaPem!))).not.toMatch(/"(d|p|q|dp|dq|qi)":/);
    expect(loaded(clients.post!)).toMatchObject({ clientAuthMethod: 'client_secret_post' });
    expect(loaded(clients.post!)).not.toHaveProperty('publicJwks');
  });

  it('keeps the authorization parameters in the browser\'s URL when the IdP advertises no PAR endpoint', async () => {
    const before = await idp.stats();

    const { hops } = await logIn(clients.rsaPem!.gateway, 'plain-url-user');
    const redirect = authorizationRedirect(hops, idp);
    const after = await idp.stats();

    expect(redirect.searchParams.get('code_challenge_method')).toBe('S256');
    expect(redirect.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(redirect.searchParams.has('state')).toBe(true);
    expect(redirect.searchParams.has('request_uri')).toBe(false);
    expect(after.authorizationRequests.plain - before.authorizationRequests.plain).toBe(1);
    expect(after.authorizationRequests.pushed - before.authorizationRequests.pushed).toBe(0);
    expect(after.pushedAuthorizationRequests - before.pushedAuthorizationRequests).toBe(0);
  });
});

describe('pushed authorization requests (RFC 9126)', () => {
  async function startParIdp(mode: PushedAuthorizationRequestsMode, clients: TestIdpClient[]): Promise<TestIdp> {
    const idp = await startTestIdp({ clients, pushedAuthorizationRequests: mode });
    const metadata = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(metadata.pushed_authorization_request_endpoint).toBe(`${idp.issuer}/request`);
    expect(metadata.require_pushed_authorization_requests ?? false).toBe(mode === 'required');
    return idp;
  }

  describe('advertised by the IdP', () => {
    let idp: TestIdp;
    const clients: ClientGateway[] = [];

    beforeAll(async () => {
      const signed = await planClient('bff-par-signed', 'private_key_jwt');
      const misconfigured = await planClient('bff-par-wrong-key', 'private_key_jwt');
      const key = pemKey('par-es256', generateKeyPairSync('ec', { namedCurve: 'P-256' }));
      const unknownKey = pemKey('par-unknown', generateKeyPairSync('ec', { namedCurve: 'P-256' }));
      const jwks = { jwks: { keys: [key.publicJwk as Record<string, unknown>] } };
      // Both registered with the same key; the second gateway holds another.
      idp = await startParIdp('on', [registration(signed, jwks), registration(misconfigured, jwks)]);
      clients.push(await startClientGateway(signed, idp, { OIDC_CLIENT_PRIVATE_KEY_FILE: key.file }));
      clients.push(await startClientGateway(misconfigured, idp, { OIDC_CLIENT_PRIVATE_KEY_FILE: unknownKey.file }));
    });

    afterAll(async () => {
      for (const client of clients) await client.gateway.close().catch(() => undefined);
      await idp?.stop();
    });

    beforeEach(() => idp.reset());

    it('pushes the authorization request: the browser\'s redirect carries only client_id and request_uri, and the login completes', async () => {
      const client = clients[0]!;

      const { browser, hops } = await logIn(client.gateway, 'par-user');
      const redirect = authorizationRedirect(hops, idp);
      const stats = await idp.stats();

      expect([...redirect.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      expect(redirect.searchParams.get('client_id')).toBe(client.clientId);
      expect(redirect.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
      expect(redirect.href).not.toMatch(/code_challenge|state=|nonce=|scope=/);
      expect(stats.pushedAuthorizationRequests).toBe(1);
      expect(stats.authorizationRequests).toEqual({ pushed: 1, plain: 0 });
      expect((await bearerOf(browser, client.gateway)).status).toBe(200);
      expect(metricValue(await client.gateway.metricsText(), 'bff_idp_requests_total', { endpoint: 'par', status: '201' })).toBeGreaterThanOrEqual(1);
    });

    it('authenticates the pushed request like the token request: the PAR endpoint sees the client assertion', async () => {
      const client = clients[0]!;

      await logIn(client.gateway, 'par-signed-user');
      const stats = await idp.stats();

      expect(stats.clientAuthentications).toMatchObject({ 'pushed_authorization_request private_key_jwt': 1, 'token private_key_jwt': 1 });
      expect(Object.keys(stats.clientAuthentications).filter((key) => !key.endsWith(' private_key_jwt'))).toEqual([]);
    });

    it('refreshes and logs out a session that was started through PAR', async () => {
      const client = clients[0]!;
      const { browser } = await logIn(client.gateway, 'par-refresh-user');
      const first = await bearerOf(browser, client.gateway);

      client.clock.advance(INTO_REFRESH_WINDOW_MS);
      const refreshed = await bearerOf(browser, client.gateway);
      const logout = await browser.request(`${client.gateway.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
      await logout.body?.cancel();
      const stats = await idp.stats();

      expect([first.status, refreshed.status, logout.status]).toEqual([200, 200, 200]);
      expect(refreshed.token).not.toBe(first.token);
      expect(stats.refreshGrants['par-refresh-user']).toBe(1);
      expect(stats.clientAuthentications['revocation private_key_jwt']).toBe(1);
    });

    it('answers 503 with Retry-After, not 500, while the PAR endpoint fails, and logs in again once it answers', async () => {
      const client = clients[0]!;
      await idp.setParFailure(503);

      const refused = await fetch(`${client.gateway.url}/auth/login?returnTo=%2F`, { redirect: 'manual', headers: { accept: 'application/json' } });
      const problem = (await refused.json()) as Record<string, unknown>;
      await idp.setParFailure(null);

      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.headers.getSetCookie().filter((cookie) => cookie.startsWith('bff-login-'))).toEqual([]);
      expect(problem).toMatchObject({ title: 'dependency_unavailable', status: 503 });
      await logIn(client.gateway, 'par-after-outage-user');
    });

    it('answers 503, not 500, when the IdP refuses the pushed request (a key it does not know), logs why, and keeps the IdP breaker closed', async () => {
      const client = clients[1]!;
      const from = client.logs.mark();

      const refused = await fetch(`${client.gateway.url}/auth/login?returnTo=%2F`, { redirect: 'manual', headers: { accept: 'application/json' } });
      await refused.body?.cancel();

      expect(refused.status).toBe(503);
      expect(refused.headers.get('location')).toBeNull();
      const logged = JSON.stringify(client.logs.linesAtLeast(LOG_LEVEL.error, from));
      expect(logged).toContain('the identity provider refused the pushed authorization request (invalid_client)');
      expect(logged).toContain('OIDC_CLIENT_AUTH_METHOD (private_key_jwt)');
      expect(metricValue(await client.gateway.metricsText(), 'circuit_breaker_status', { service: 'idp' })).toBe(0);
      expect((await idp.stats()).clientAuthentications['pushed_authorization_request private_key_jwt']).toBe(1);
    });
  });

  describe('required by the IdP', () => {
    let idp: TestIdp;
    let client: ClientGateway;

    beforeAll(async () => {
      const planned = await planClient('bff-par-required', 'client_secret_basic');
      idp = await startParIdp('required', [registration(planned)]);
      client = await startClientGateway(planned, idp, { OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET });
    });

    afterAll(async () => {
      await client?.gateway?.close().catch(() => undefined);
      await idp?.stop();
    });

    it('logs in through PAR (authenticated with client_secret_basic) where the IdP refuses an authorization request in the URL', async () => {
      const plain = new URL(`${idp.issuer}/auth`);
      for (const [name, value] of Object.entries({
        client_id: client.clientId,
        response_type: 'code',
        redirect_uri: `${client.gateway.url}/auth/callback`,
        scope: 'openid',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      })) {
        plain.searchParams.set(name, value);
      }
      const refusedPlain = await fetch(plain, { redirect: 'manual' });
      await refusedPlain.body?.cancel();
      const before = await idp.stats();

      const { hops } = await logIn(client.gateway, 'par-required-user');
      const after = await idp.stats();

      expect(refusedPlain.headers.get('location') ?? '').toContain('error=invalid_request');
      expect([...authorizationRedirect(hops, idp).searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      expect(delta(after.clientAuthentications, before.clientAuthentications, 'pushed_authorization_request client_secret_basic')).toBe(1);
      expect(after.pushedAuthorizationRequests - before.pushedAuthorizationRequests).toBe(1);
    });
  });
});
