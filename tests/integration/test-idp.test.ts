// Proves the test support code: the test IdP process, the simulated browser
// and the throwaway Redis, against a tiny relying party driven by openid-client.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import Redis from 'ioredis';
import * as client from 'openid-client';
import {
  Browser,
  completeIdpLogin,
  followToIdpLogin,
  loginWithIdp,
  logoutAtIdp,
} from '../support/browser';
import { bffTestClient, startTestIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type TestIdp } from '../support/idp';
import { reservePort } from '../support/ports';
import { startRedis } from '../support/redis';
import { eventually } from '../support/wait';

interface RelyingParty {
  readonly origin: string;
  readonly callbackUrl: string;
  readonly loggedOutUrl: string;
  readonly backchannelUrl: string;
  readonly callbacks: string[];
  readonly logoutTokens: string[];
  close(): Promise<void>;
}

/** A tiny node:http "gateway" that records what the IdP sends it. */
async function startRelyingParty(): Promise<RelyingParty> {
  const port = await reservePort();
  const origin = `http://127.0.0.1:${port.port}`;
  const callbacks: string[] = [];
  const logoutTokens: string[] = [];
  const server: Server = createServer((req, res) => {
    void handle(req).then(
      ({ status, body }) => res.writeHead(status, { 'content-type': 'text/plain' }).end(body),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  async function handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/cb') {
      callbacks.push(url.href);
      return { status: 200, body: 'callback received' };
    }
    if (url.pathname === '/backchannel' && req.method === 'POST') {
      let raw = '';
      for await (const chunk of req) raw += (chunk as Buffer).toString('utf8');
      const token = new URLSearchParams(raw).get('logout_token');
      if (token) logoutTokens.push(token);
      return { status: 200, body: '' };
    }
    if (url.pathname === '/logged-out') return { status: 200, body: 'logged out' };
    return { status: 404, body: 'not found' };
  }
  await port.handOver(server);
  return {
    origin,
    callbackUrl: `${origin}/cb`,
    loggedOutUrl: `${origin}/logged-out`,
    backchannelUrl: `${origin}/backchannel`,
    callbacks,
    logoutTokens,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function decodeJwtPayload(jwt: string): Record<string, unknown> {
  const payload = jwt.split('.')[1];
  if (payload === undefined) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('the test IdP', () => {
  let rp: RelyingParty;
  let idp: TestIdp;
  let oidc: client.Configuration;

  beforeAll(async () => {
    rp = await startRelyingParty();
    idp = await startTestIdp({
      clients: [
        bffTestClient({
          redirect_uris: [rp.callbackUrl],
          post_logout_redirect_uris: [rp.loggedOutUrl],
          backchannel_logout_uri: rp.backchannelUrl,
        }),
      ],
      accessTokenTtlSeconds: 120,
    });
    oidc = await client.discovery(
      new URL(idp.issuer),
      TEST_CLIENT_ID,
      undefined,
      client.ClientSecretBasic(TEST_CLIENT_SECRET),
      { execute: [client.allowInsecureRequests] },
    );
  });

  afterAll(async () => {
    await idp?.stop();
    await rp?.close();
  });

  beforeEach(async () => {
    await idp.reset();
  });

  interface LoginOutcome {
    browser: Browser;
    tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    callbackUrl: URL;
    prompts: string[];
  }

  async function login(
    username: string,
    { browser = new Browser(), prompt }: { browser?: Browser; prompt?: string } = {},
  ): Promise<LoginOutcome> {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const authorizationUrl = client.buildAuthorizationUrl(oidc, {
      redirect_uri: rp.callbackUrl,
      scope: 'openid profile email offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(prompt === undefined ? {} : { prompt }),
    });
    const result = await loginWithIdp(browser, authorizationUrl, { username });
    expect(result.response.status).toBe(200);
    const callbackUrl = new URL(result.finalUrl);
    const tokens = await client.authorizationCodeGrant(oidc, callbackUrl, {
      pkceCodeVerifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    return { browser, tokens, callbackUrl, prompts: result.prompts };
  }

  function refreshTokenOf(outcome: { tokens: client.TokenEndpointResponse }): string {
    const token = outcome.tokens.refresh_token;
    if (token === undefined) throw new Error('no refresh token was issued');
    return token;
  }

  it('completes a code + PKCE login through the devInteractions pages and issues a refresh token', async () => {
    const { tokens, callbackUrl, prompts } = await login('alice');

    expect(prompts).toEqual(['login', 'consent']);
    expect(callbackUrl.origin + callbackUrl.pathname).toBe(rp.callbackUrl);
    expect(callbackUrl.searchParams.get('iss')).toBe(idp.issuer);
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    expect(tokens.expires_in).toBe(120);
    expect(tokens.claims()).toMatchObject({
      iss: idp.issuer,
      aud: TEST_CLIENT_ID,
      sub: 'alice',
      name: 'Alice',
      email: 'alice@example.test',
      preferred_username: 'alice',
      groups: ['admins', 'users'],
      sid: expect.any(String),
    });
    expect((await idp.stats()).codeGrants).toBe(1);
  });

  it('gives accounts other than alice only the users group', async () => {
    const { tokens } = await login('bob');

    expect(tokens.claims()).toMatchObject({ sub: 'bob', groups: ['users'] });
  });

  it('reuses the IdP session for a second login in the same browser without showing any page', async () => {
    const first = await login('carol');
    const second = await login('carol', { browser: first.browser });

    expect(second.prompts).toEqual([]);
    expect(second.tokens.claims()?.sub).toBe('carol');
  });

  it('keeps offline_access when the request says prompt=login instead of prompt=consent', async () => {
    const { tokens, prompts } = await login('dave', { prompt: 'login' });

    expect(prompts).toEqual(['login', 'consent']);
    expect(tokens.scope?.split(' ')).toContain('offline_access');
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  it('issues a refresh token to the client even when offline_access was not requested', async () => {
    const browser = new Browser();
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(oidc, {
      redirect_uri: rp.callbackUrl,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    const result = await loginWithIdp(browser, authorizationUrl, { username: 'dora' });

    const tokens = await client.authorizationCodeGrant(oidc, new URL(result.finalUrl), {
      pkceCodeVerifier,
      expectedState: state,
    });

    expect(tokens.scope).toBe('openid');
    expect(tokens.refresh_token).toEqual(expect.any(String));
  });

  it('lets a login started in one browser stop at the IdP login page and be finished later', async () => {
    const browser = new Browser();
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(oidc, {
      redirect_uri: rp.callbackUrl,
      scope: 'openid offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state,
    });

    const page = await followToIdpLogin(browser, authorizationUrl);
    expect(page.url.startsWith(`${idp.issuer}/interaction/`)).toBe(true);
    expect(page.form.fields).toMatchObject({ prompt: 'login', login: '', password: '' });

    const result = await completeIdpLogin(browser, page, { username: 'erin' });
    const tokens = await client.authorizationCodeGrant(oidc, new URL(result.finalUrl), {
      pkceCodeVerifier,
      expectedState: state,
    });
    expect(tokens.claims()?.sub).toBe('erin');
  });

  it('refreshes, rotates the refresh token and counts the refresh for the user', async () => {
    const outcome = await login('frank');
    const first = refreshTokenOf(outcome);

    const refreshed = await client.refreshTokenGrant(oidc, first);

    expect(refreshed.access_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(first);
    expect((await idp.stats()).refreshGrants).toEqual({ frank: 1 });
  });

  it('rejects a re-presented rotated refresh token with invalid_grant and then revokes the whole grant', async () => {
    const outcome = await login('grace');
    const first = refreshTokenOf(outcome);
    const rotated = (await client.refreshTokenGrant(oidc, first)).refresh_token;
    if (rotated === undefined) throw new Error('no rotated refresh token');

    await expect(client.refreshTokenGrant(oidc, first)).rejects.toMatchObject({ error: 'invalid_grant', status: 400 });
    // oidc-provider treats the reuse as theft: the token that replaced it dies with the grant.
    await expect(client.refreshTokenGrant(oidc, rotated)).rejects.toMatchObject({ error: 'invalid_grant' });

    const stats = await idp.stats();
    expect(stats.refreshGrants).toEqual({ grace: 1 });
    expect(stats.refreshErrors).toEqual({ grace: 2 });
  });

  it('delays every token request while token-delay is set', async () => {
    const outcome = await login('heidi');
    await idp.setTokenDelay(800);

    const startedAt = performance.now();
    const refreshed = await client.refreshTokenGrant(oidc, refreshTokenOf(outcome));
    const delayedMs = performance.now() - startedAt;

    await idp.setTokenDelay(0);
    const undelayedStartedAt = performance.now();
    await client.refreshTokenGrant(oidc, refreshed.refresh_token ?? '');
    const undelayedMs = performance.now() - undelayedStartedAt;

    expect(delayedMs).toBeGreaterThanOrEqual(780);
    expect(undelayedMs).toBeLessThan(700);
  });

  it('answers the injected status with an OAuth error body while token-failure is set, and recovers', async () => {
    const outcome = await login('ivan');
    const refreshToken = refreshTokenOf(outcome);
    await idp.setTokenFailure(503);

    // openid-client reads OAuth error bodies of 4xx answers only; a 5xx is a ClientError holding the Response.
    const failure: unknown = await client.refreshTokenGrant(oidc, refreshToken).catch((err: unknown) => err);
    expect(failure).toMatchObject({ code: 'OAUTH_RESPONSE_IS_NOT_CONFORM' });
    const failedResponse = (failure as { cause: Response }).cause;
    expect(failedResponse.status).toBe(503);
    expect(await failedResponse.json()).toMatchObject({ error: 'temporarily_unavailable' });

    await idp.setTokenFailure(400, 'invalid_grant');
    await expect(client.refreshTokenGrant(oidc, refreshToken)).rejects.toMatchObject({
      status: 400,
      error: 'invalid_grant',
    });

    await idp.setTokenFailure(null);
    // The injected failures never reached oidc-provider, so the same refresh token is still good.
    await expect(client.refreshTokenGrant(oidc, refreshToken)).resolves.toMatchObject({ token_type: 'bearer' });

    const stats = await idp.stats();
    expect(stats.injectedFailures).toBe(2);
    expect(stats.tokenRequests).toBe(1 + 3);
    expect(stats.refreshGrants).toEqual({ ivan: 1 });
    expect(stats.refreshErrors).toEqual({});
  });

  it('makes the current refresh token fail with invalid_grant after revoke-grants', async () => {
    const outcome = await login('judy');
    const other = await login('mallory');

    expect(await idp.revokeGrants('judy')).toBe(1);

    await expect(client.refreshTokenGrant(oidc, refreshTokenOf(outcome))).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    await expect(client.refreshTokenGrant(oidc, refreshTokenOf(other))).resolves.toMatchObject({
      token_type: 'bearer',
    });
    expect((await idp.stats()).refreshErrors).toEqual({ judy: 1 });
  });

  it('revokes a refresh token at the revocation endpoint', async () => {
    const outcome = await login('ken');
    const refreshToken = refreshTokenOf(outcome);

    await client.tokenRevocation(oidc, refreshToken);

    await expect(client.refreshTokenGrant(oidc, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('runs RP-initiated logout and sends a back-channel logout token to the client on loopback', async () => {
    const outcome = await login('leo');
    const idToken = outcome.tokens.id_token ?? '';
    const sid = outcome.tokens.claims()?.sid;
    const logoutUrl = client.buildEndSessionUrl(oidc, {
      id_token_hint: idToken,
      post_logout_redirect_uri: rp.loggedOutUrl,
      state: 'after-logout',
    });
    const tokensBefore = rp.logoutTokens.length;

    const result = await logoutAtIdp(outcome.browser, logoutUrl);

    expect(result.url).toBe(`${rp.loggedOutUrl}?state=after-logout`);
    expect(result.body).toBe('logged out');
    const logoutToken = rp.logoutTokens.slice(tokensBefore).at(-1);
    expect(logoutToken).toBeDefined();
    expect(decodeJwtPayload(logoutToken ?? '')).toMatchObject({
      iss: idp.issuer,
      aud: TEST_CLIENT_ID,
      sub: 'leo',
      sid,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    });
    // offline_access makes the grant outlive the IdP session: revoking is the relying party's job.
    await expect(client.refreshTokenGrant(oidc, refreshTokenOf(outcome))).resolves.toMatchObject({
      token_type: 'bearer',
    });
    // The IdP session is gone: the next login shows the login page again.
    expect((await login('leo', { browser: outcome.browser })).prompts).toContain('login');
  });
});

describe('the simulated browser', () => {
  let server: Server;
  let origin: string;

  beforeAll(async () => {
    const port = await reservePort();
    origin = `http://127.0.0.1:${port.port}`;
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', origin);
      switch (url.pathname) {
        case '/set':
          res.setHeader('set-cookie', ['root=1; Path=/', 'scoped=2; Path=/app', 'gone=3; Path=/']);
          res.end('set');
          return;
        case '/expire':
          res.setHeader('set-cookie', ['gone=; Path=/; Max-Age=0', 'root=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
          res.end('expired');
          return;
        case '/echo':
        case '/app/echo':
          res.end(req.headers.cookie ?? '');
          return;
        case '/post-redirect':
          res.writeHead(302, { location: '/echo-method' }).end();
          return;
        case '/echo-method':
          res.end(`${req.method} ${req.headers['sec-fetch-mode'] ?? ''}`);
          return;
        case '/loop':
          res.writeHead(302, { location: '/loop' }).end();
          return;
        case '/away':
          res.writeHead(302, { location: 'https://example.com/elsewhere' }).end();
          return;
        default:
          res.writeHead(404).end();
      }
    });
    await port.handOver(server);
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends cookies by path and forgets cookies deleted with Max-Age=0 or a past Expires', async () => {
    const browser = new Browser();
    await browser.request(`${origin}/set`);

    expect(await (await browser.request(`${origin}/echo`)).text()).toBe('root=1; gone=3');
    expect(await (await browser.request(`${origin}/app/echo`)).text()).toBe('scoped=2; root=1; gone=3');

    await browser.request(`${origin}/expire`);
    expect(browser.cookie('gone', origin)).toBeUndefined();
    expect(browser.cookie('root', origin)).toBeUndefined();
    expect(browser.cookie('scoped', `${origin}/app/x`)).toBe('2');
  });

  it('matches host-only cookies by hostname whatever the port, like browsers', async () => {
    const browser = new Browser();
    await browser.request(`${origin}/set`);

    expect(browser.cookie('root', 'http://127.0.0.1:1/')).toBe('1');
    expect(browser.cookie('root', 'http://localhost:1/')).toBeUndefined();
  });

  it('turns a POST into a GET after a 302 and records each hop', async () => {
    const browser = new Browser();

    const result = await browser.navigate(`${origin}/post-redirect`, { method: 'POST', body: 'a=1' });

    expect(result.body).toBe('GET navigate');
    expect(result.hops).toEqual([`${origin}/post-redirect`, `${origin}/echo-method`]);
  });

  it('gives up after 20 redirects', async () => {
    await expect(new Browser().navigate(`${origin}/loop`)).rejects.toThrow('more than 20 redirects');
  });

  it('does not follow a redirect off loopback and reports where it would have gone', async () => {
    const result = await new Browser().navigate(`${origin}/away`);

    expect(result.response.status).toBe(302);
    expect(result.stoppedAt).toBe('https://example.com/elsewhere');
  });
});

describe('startRedis', () => {
  it('stops the server and restarts it empty on the same port', async () => {
    const redis = await startRedis();
    const connection = new Redis(redis.port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
    });
    try {
      await connection.connect();
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      await connection.set('greeting', 'hello');
      expect(await connection.get('greeting')).toBe('hello');

      await redis.stop();
      await expect(connection.ping()).rejects.toThrow();

      await redis.restart();
      // ioredis reconnects by itself once the port answers again.
      const reply = await eventually(() => connection.ping().catch(() => undefined), (answer) => answer !== undefined, {
        what: 'ioredis to reconnect and answer PING',
        timeoutMs: 5_000,
      });
      expect(reply).toBe('PONG');
      expect(await connection.get('greeting')).toBeNull();
    } finally {
      connection.disconnect();
      await redis.stop();
    }
  });
});
