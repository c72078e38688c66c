// OIDC Back-Channel Logout against the real test IdP, a real Redis and two
// gateway replicas. The IdP posts its logout tokens to a small loopback
// recorder that keeps a copy and forwards them to the gateway, so a test can
// replay exactly what the IdP sent.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { DependencyUnavailable } from '../../src/errors/app-error';
import { InvalidLogoutToken } from '../../src/errors/app-error';
import { BACKCHANNEL_LOGOUT_EVENT, LogoutTokenVerifier } from '../../src/oidc/logout-token';
import { Browser, loginWithIdp, logoutAtIdp } from '../support/browser';
import { forwarded, logIn, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, type RunningGateway } from '../support/gateway';
import { bffTestClient, TEST_CLIENT_ID, TEST_CLIENT_SECRET } from '../support/idp';
import { reservePort } from '../support/ports';
import { eventually } from '../support/wait';

const OTHER_CLIENT_ID = 'other-app';
const OTHER_CLIENT_SECRET = 'other-app-secret-0123456789abcdef';
const WAIT_MS = 5_000;
const MAX_RECORDED_BODY_BYTES = 64 * 1024;

/** What the IdP posted to a back-channel logout URI, and what the gateway answered. */
interface Delivery {
  readonly client: 'gateway' | 'other-app';
  readonly logoutToken: string;
  readonly claims: Record<string, unknown>;
  /** The gateway's answer; 200 for the other app, which only records. */
  readonly status: number;
  readonly headers: Headers;
}

interface LogoutRecorder {
  readonly url: string;
  readonly deliveries: Delivery[];
  forwardTo(gatewayUrl: string): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_RECORDED_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function decodePayload(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * The back-channel logout URIs of both clients: `/gateway` forwards to the
 * gateway's endpoint and hands its answer back to the IdP; `/other-app`
 * only records. `/other-app/callback` is where the other app's logins land.
 */
async function startLogoutRecorder(): Promise<LogoutRecorder> {
  const port = await reservePort();
  const url = `http://127.0.0.1:${port.port}`;
  const deliveries: Delivery[] = [];
  let target: string | undefined;
  const server: Server = createServer((req, res) => {
    void handle(req).then(
      ({ status, body }) => res.writeHead(status, { 'content-type': 'text/plain' }).end(body),
      (error: Error) => res.writeHead(500).end(error.message),
    );
  });
  async function handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const path = new URL(req.url ?? '/', url).pathname;
    if (req.method === 'GET' && path === '/other-app/callback') return { status: 200, body: 'signed in to the other app' };
    if (req.method !== 'POST' || (path !== '/gateway' && path !== '/other-app')) return { status: 404, body: 'not found' };
    const raw = await readBody(req);
    const logoutToken = new URLSearchParams(raw).get('logout_token') ?? '';
    if (path === '/other-app') {
      deliveries.push({ client: 'other-app', logoutToken, claims: decodePayload(logoutToken), status: 200, headers: new Headers() });
      return { status: 200, body: '' };
    }
    if (!target) throw new Error('the recorder has no gateway to forward to');
    const answer = await fetch(`${target}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/x-www-form-urlencoded' },
      body: raw,
      signal: AbortSignal.timeout(WAIT_MS),
    });
    deliveries.push({ client: 'gateway', logoutToken, claims: decodePayload(logoutToken), status: answer.status, headers: answer.headers });
    return { status: answer.status, body: await answer.text() };
  }
  await port.handOver(server);
  return {
    url,
    deliveries,
    forwardTo: (gatewayUrl) => (target = gatewayUrl),
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  return (await eventually(probe, (value) => value !== undefined, { what, timeoutMs: WAIT_MS })) as T;
}

function postLogoutToken(gateway: RunningGateway, body: string, contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
  return fetch(`${gateway.url}/auth/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    signal: AbortSignal.timeout(WAIT_MS),
  });
}

const form = (logoutToken: string) => new URLSearchParams({ logout_token: logoutToken }).toString();

function verifyStatus(browser: Browser, gateway: RunningGateway): Promise<number> {
  return browser.request(`${gateway.url}/verify`, { headers: forwarded('/api/orders') }).then((response) => response.status);
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('POST /auth/backchannel-logout with the real IdP, Redis and two replicas', () => {
  let recorder: LogoutRecorder;
  let env: TestEnvironment;
  let replicaA: RunningGateway;
  let replicaB: RunningGateway;
  let metadata: { issuer: string; end_session_endpoint: string; authorization_endpoint: string; token_endpoint: string };

  beforeAll(async () => {
    recorder = await startLogoutRecorder();
    // The IdP's client registration needs the gateway's URL before the gateway exists.
    const port = await reservePort();
    const publicUrl = `http://127.0.0.1:${port.port}`;
    env = await startTestEnvironment({
      env: { PUBLIC_URL: publicUrl },
      gateway: { port },
      idp: {
        clients: [
          bffTestClient({
            redirect_uris: [`${publicUrl}/auth/callback`],
            post_logout_redirect_uris: [`${publicUrl}/`],
            backchannel_logout_uri: `${recorder.url}/gateway`,
          }),
          {
            client_id: OTHER_CLIENT_ID,
            client_secret: OTHER_CLIENT_SECRET,
            redirect_uris: [`${recorder.url}/other-app/callback`],
            post_logout_redirect_uris: [],
            backchannel_logout_uri: `${recorder.url}/other-app`,
          },
        ],
      },
    });
    replicaA = env.gateway;
    replicaB = await env.startReplica();
    recorder.forwardTo(replicaA.url);
    metadata = (await (await fetch(`${env.idp.issuer}/.well-known/openid-configuration`)).json()) as typeof metadata;
  });

  afterAll(async () => {
    await env?.close();
    await recorder?.close();
  });

  /** RP-initiated logout at the IdP (no id_token_hint: the gateway's session must still be there for the IdP to end it). */
  async function logOutAtIdp(browser: Browser, client: Delivery['client'] = 'gateway'): Promise<Delivery> {
    const seen = recorder.deliveries.length;
    await logoutAtIdp(browser, metadata.end_session_endpoint);
    return waitFor(`the IdP's logout token for ${client}`, () => recorder.deliveries.slice(seen).find((delivery) => delivery.client === client));
  }

  /** A login at the IdP as `clientId`, stopped before the redirect back is followed; resolves to the code and its PKCE verifier. */
  async function authorizationCode(clientId: string, redirectUri: string, username: string) {
    const pkce = pkcePair();
    const url = new URL(metadata.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: redirectUri,
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      state: randomUUID(),
      nonce: randomUUID(),
    }).toString();
    // Only the IdP (localhost) may be contacted: the redirect to the callback is recorded, not followed.
    const browser = new Browser({ isAllowedHost: (hostname) => hostname === new URL(env.idp.issuer).hostname });
    const login = await loginWithIdp(browser, url, { username });
    const code = new URL(login.finalUrl).searchParams.get('code');
    if (!code) throw new Error(`no code in ${login.finalUrl}`);
    return { browser, code, verifier: pkce.verifier };
  }

  /** A logout token with the right issuer and audience and a fresh jti; `overrides` changes or (undefined) removes claims. */
  function logoutClaims(overrides: Record<string, unknown> = {}): JWTPayload {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: metadata.issuer,
      aud: TEST_CLIENT_ID,
      iat: now,
      exp: now + 120,
      jti: randomUUID(),
      sub: 'bob',
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      ...overrides,
    };
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
    return claims as JWTPayload;
  }

  it('ends the session of the IdP session that logged out on every replica, and leaves the user\'s other sessions and other users alone', async () => {
    const aliceLaptop = await logIn(replicaA, 'alice');
    const alicePhone = await logIn(replicaA, 'alice');
    const bob = await logIn(replicaA, 'bob');
    for (const browser of [aliceLaptop, alicePhone, bob]) expect(await verifyStatus(browser, replicaB)).toBe(200);
    const before = await replicaA.metricsText();
    const destroyedBefore = metricValue(before, 'bff_sessions_destroyed_total', { reason: 'backchannel_logout' });
    const eventsBefore = metricValue(before, 'bff_security_events_total', { event_type: 'backchannel_logout', severity: 'info' });

    const delivery = await logOutAtIdp(aliceLaptop);

    expect(delivery.status).toBe(200);
    expect(delivery.claims).toMatchObject({ sub: 'alice', aud: TEST_CLIENT_ID, sid: expect.any(String) });
    expect(await verifyStatus(aliceLaptop, replicaB)).toBe(401);
    expect(await verifyStatus(aliceLaptop, replicaA)).toBe(401);
    expect(await verifyStatus(alicePhone, replicaB)).toBe(200);
    expect(await verifyStatus(bob, replicaB)).toBe(200);
    const metrics = await replicaA.metricsText();
    expect(metricValue(metrics, 'bff_sessions_destroyed_total', { reason: 'backchannel_logout' })).toBe(destroyedBefore + 1);
    expect(metricValue(metrics, 'bff_token_validation_total', { token_type: 'logout_token', status: 'valid' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'bff_security_events_total', { event_type: 'backchannel_logout', severity: 'info' })).toBe(eventsBefore + 1);
  });

  it('answers the IdP, which sends no CSRF header, 200 with Cache-Control: no-store and no cookie', async () => {
    const browser = await logIn(replicaA, 'carl');

    const delivery = await logOutAtIdp(browser);

    expect(delivery.status).toBe(200);
    expect(delivery.headers.get('cache-control')).toBe('no-store');
    expect(delivery.headers.get('set-cookie')).toBeNull();
  });

  it('refuses a replayed logout token with 400 on every replica', async () => {
    const dave = await logIn(replicaA, 'dave');
    const delivery = await logOutAtIdp(dave);
    expect(delivery.status).toBe(200);
    const replayedBefore = metricValue(await replicaB.metricsText(), 'bff_token_validation_total', { token_type: 'logout_token', status: 'replayed' });

    const onA = await postLogoutToken(replicaA, form(delivery.logoutToken));
    const onB = await postLogoutToken(replicaB, form(delivery.logoutToken));

    expect(onA.status).toBe(400);
    expect(await onA.json()).toMatchObject({ error: 'invalid_request' });
    expect(onA.headers.get('cache-control')).toBe('no-store');
    expect(onB.status).toBe(400);
    expect(await onB.json()).toMatchObject({ error: 'invalid_request' });
    expect(metricValue(await replicaB.metricsText(), 'bff_token_validation_total', { token_type: 'logout_token', status: 'replayed' })).toBe(replayedBefore + 1);
  });

  describe('refuses with 400 invalid_request, and ends no session', () => {
    let bob: Browser;
    let invalidBefore: number;
    /** Refusals made so far in this block, whatever order its tests ran in; each counts as an invalid logout token. */
    let refusalsSoFar = 0;

    beforeAll(async () => {
      bob = await logIn(replicaA, 'bob');
      invalidBefore = metricValue(await replicaA.metricsText(), 'bff_token_validation_total', { token_type: 'logout_token', status: 'invalid' });
    });

    /** 400 invalid_request, no cookie, and a description that names why (so each case fails for its own reason). */
    async function expectRefused(response: Response, why: RegExp): Promise<void> {
      refusalsSoFar += 1;
      expect(response.status).toBe(400);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('set-cookie')).toBeNull();
      expect(await response.json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(why) });
    }

    it('a request without a logout_token', async () => {
      await expectRefused(await postLogoutToken(replicaA, 'something=else'), /exactly one logout_token/);
    });

    it('a logout token sent as JSON instead of a form', async () => {
      const token = await new SignJWT(logoutClaims()).setProtectedHeader({ alg: 'RS256' }).sign((await generateKeyPair('RS256')).privateKey);
      await expectRefused(await postLogoutToken(replicaA, JSON.stringify({ logout_token: token }), 'application/json'), /exactly one logout_token/);
    });

    it('a form with two logout tokens', async () => {
      await expectRefused(await postLogoutToken(replicaA, 'logout_token=a.b.c&logout_token=d.e.f'), /exactly one logout_token/);
    });

    it('a form larger than 16 KiB', async () => {
      await expectRefused(await postLogoutToken(replicaA, form('x'.repeat(20_000))), /larger than 16kb/);
    });

    it('a malformed token', async () => {
      await expectRefused(await postLogoutToken(replicaA, form('not.a.jwt')), /malformed/);
    });

    it('an unsigned token (alg: none)', async () => {
      await expectRefused(await postLogoutToken(replicaA, form(new UnsecuredJWT(logoutClaims()).encode())), /accepted algorithm/);
    });

    it('a token signed with a key the IdP does not publish', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const token = await new SignJWT(logoutClaims()).setProtectedHeader({ alg: 'RS256', kid: 'attacker-key', typ: 'logout+jwt' }).sign(privateKey);
      await expectRefused(await postLogoutToken(replicaA, form(token)), /key the identity provider publishes/);
    });

    it("a token signed with another key under the IdP's own key id", async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const token = await new SignJWT(logoutClaims()).setProtectedHeader({ alg: 'RS256', kid: 'test-idp-rs256', typ: 'logout+jwt' }).sign(privateKey);
      await expectRefused(await postLogoutToken(replicaA, form(token)), /signature is not valid/);
    });

    it('a token signed with the client secret (HS256) instead of the IdP key', async () => {
      const token = await new SignJWT(logoutClaims()).setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).sign(new TextEncoder().encode(TEST_CLIENT_SECRET));
      await expectRefused(await postLogoutToken(replicaA, form(token)), /accepted algorithm/);
    });

    it('a genuine logout token of the IdP meant for another client (wrong audience)', async () => {
      const { browser } = await authorizationCodeLogin(OTHER_CLIENT_ID, 'bob');
      const delivery = await logOutAtIdp(browser, 'other-app');
      expect(delivery.claims).toMatchObject({ aud: OTHER_CLIENT_ID, sub: 'bob' });
      await expectRefused(await postLogoutToken(replicaA, form(delivery.logoutToken)), /aud check/);
    });

    it('a genuine ID token of the IdP for the gateway (it carries a nonce and no logout event)', async () => {
      const redirectUri = `${replicaA.url}/auth/callback`;
      const { code, verifier } = await authorizationCode(TEST_CLIENT_ID, redirectUri, 'bob');
      const tokenResponse = await fetch(metadata.token_endpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${TEST_CLIENT_ID}:${TEST_CLIENT_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
      });
      const { id_token: idToken } = (await tokenResponse.json()) as { id_token: string };
      expect(decodePayload(idToken)).toMatchObject({ aud: TEST_CLIENT_ID, sub: 'bob', nonce: expect.any(String) });
      await expectRefused(await postLogoutToken(replicaA, form(idToken)), /events check/);
    });

    it('bob, whom the refused tokens named, is still logged in, and every refusal so far was counted', async () => {
      expect(await verifyStatus(bob, replicaA)).toBe(200);
      const invalidAfter = metricValue(await replicaA.metricsText(), 'bff_token_validation_total', { token_type: 'logout_token', status: 'invalid' });
      expect(invalidAfter).toBe(invalidBefore + refusalsSoFar);
    });

    /** The other client's login, landing on the recorder: the IdP session then lists that client for back-channel logout. */
    async function authorizationCodeLogin(clientId: string, username: string) {
      const pkce = pkcePair();
      const url = new URL(metadata.authorization_endpoint);
      url.search = new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: `${recorder.url}/other-app/callback`,
        code_challenge: pkce.challenge,
        code_challenge_method: 'S256',
        state: randomUUID(),
        nonce: randomUUID(),
      }).toString();
      const browser = new Browser();
      const login = await loginWithIdp(browser, url, { username });
      expect(login.body).toBe('signed in to the other app');
      return { browser };
    }
  });
});

describe('LogoutTokenVerifier against a JWKS served on loopback', () => {
  const ISSUER = 'https://idp.example.test';
  const CLIENT_ID = 'bff';
  let server: Server;
  let jwksUrl: string;
  let brokenJwksUrl: string;
  let signingKey: CryptoKey;
  let verifier: LogoutTokenVerifier;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    signingKey = pair.privateKey;
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] });
    const port = await reservePort();
    server = createServer((req, res) => {
      if (req.url === '/jwks') res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
      else res.writeHead(500).end('broken');
    });
    await port.handOver(server);
    jwksUrl = `http://127.0.0.1:${port.port}/jwks`;
    brokenJwksUrl = `http://127.0.0.1:${port.port}/broken`;
    verifier = new LogoutTokenVerifier({ issuer: ISSUER, jwksUri: jwksUrl, clientId: CLIENT_ID, timeoutMs: 2000, clock: { now: () => Date.now() } });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function claims(overrides: Record<string, unknown> = {}): JWTPayload {
    const now = Math.floor(Date.now() / 1000);
    const all: Record<string, unknown> = {
      iss: ISSUER,
      aud: CLIENT_ID,
      iat: now,
      exp: now + 120,
      jti: randomUUID(),
      sid: 'sid-1',
      sub: 'alice',
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      ...overrides,
    };
    for (const [name, value] of Object.entries(all)) if (value === undefined) delete all[name];
    return all as JWTPayload;
  }

  function sign(payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'logout+jwt', ...header }).sign(signingKey);
  }

  it('accepts a well-formed logout token and says how long its jti must be remembered', async () => {
    const payload = claims();
    const verified = await verifier.verify(await sign(payload));
    expect(verified).toMatchObject({ issuer: ISSUER, jti: payload.jti, sid: 'sid-1', sub: 'alice' });
    // Until exp, plus the clock tolerance.
    expect(verified.acceptableUntil).toBe(((payload.exp as number) + 60) * 1000);
  });

  it('accepts a token without typ, with only a sid, and without exp', async () => {
    const payload = claims({ sub: undefined, exp: undefined });
    const verified = await verifier.verify(await sign(payload, { typ: undefined }));
    expect(verified).toMatchObject({ sid: 'sid-1', sub: undefined });
    expect(verified.acceptableUntil).toBe(((payload.iat as number) + 600 + 60) * 1000);
  });

  const now = () => Math.floor(Date.now() / 1000);
  // Objects, not arrays: a row shorter than the test function's parameter list would make Jest pass `done`.
  it.each<{ problem: string; overrides: () => Record<string, unknown>; header?: Record<string, unknown> }>([
    { problem: 'a nonce', overrides: () => ({ nonce: 'n-1' }) },
    { problem: 'no events claim', overrides: () => ({ events: undefined }) },
    { problem: 'events without the back-channel logout event', overrides: () => ({ events: { 'https://example.test/other-event': {} } }) },
    { problem: 'the logout event as a string instead of an object', overrides: () => ({ events: { [BACKCHANNEL_LOGOUT_EVENT]: 'yes' } }) },
    { problem: 'neither sid nor sub', overrides: () => ({ sid: undefined, sub: undefined }) },
    { problem: 'an empty sid', overrides: () => ({ sid: '' }) },
    { problem: 'no jti', overrides: () => ({ jti: undefined }) },
    { problem: 'another issuer', overrides: () => ({ iss: 'https://evil.example.test' }) },
    { problem: 'another audience', overrides: () => ({ aud: 'another-client' }) },
    { problem: 'an iat in the future', overrides: () => ({ iat: now() + 600, exp: now() + 720 }) },
    { problem: 'an iat too long ago', overrides: () => ({ iat: now() - 3600, exp: undefined }) },
    { problem: 'an exp in the past', overrides: () => ({ iat: now() - 300, exp: now() - 180 }) },
    { problem: 'the type of an access token', overrides: () => ({}), header: { typ: 'at+jwt' } },
    { problem: 'the type of a security event token', overrides: () => ({}), header: { typ: 'secevent+jwt' } },
  ])('refuses a token with $problem', async ({ overrides, header }) => {
    await expect(verifier.verify(await sign(claims(overrides()), header))).rejects.toBeInstanceOf(InvalidLogoutToken);
  });

  it('refuses an unsigned token and a token signed with a secret', async () => {
    await expect(verifier.verify(new UnsecuredJWT(claims()).encode())).rejects.toBeInstanceOf(InvalidLogoutToken);
    const hmac = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode('a-shared-secret-of-32-characters!'));
    await expect(verifier.verify(hmac)).rejects.toBeInstanceOf(InvalidLogoutToken);
  });

  it('reports the IdP as unavailable, not the token as invalid, when the keys cannot be fetched', async () => {
    const blind = new LogoutTokenVerifier({ issuer: ISSUER, jwksUri: brokenJwksUrl, clientId: CLIENT_ID, timeoutMs: 2000, clock: { now: () => Date.now() } });
    await expect(blind.verify(await sign(claims()))).rejects.toBeInstanceOf(DependencyUnavailable);
  });
});
