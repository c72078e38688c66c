import { createHmac, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JWKS_TIMING } from '../../src/oidc/jwks-cache';
import { Browser } from '../support/browser';
import { CapturedLogs } from '../support/captured-logs';
import { forwarded, startTestEnvironment, type TestEnvironment } from '../support/environment';
import { metricValue, MovableClock, startGateway, TEST_SESSION_SECRET, type RunningGateway } from '../support/gateway';
import { bffTestClient, startTestIdp, type TestIdp, type TestIdpApiClient } from '../support/idp';
import { startKeycloak, type KeycloakServer } from '../support/keycloak';
import { startOpa, type OpaServer } from '../support/opa';

// The first run builds OPA from the Go module proxy (about 2 minutes); later runs reuse the cached binary.
const SETUP_TIMEOUT_MS = 25 * 60_000;

const REPORTING_JOB: TestIdpApiClient = {
  client_id: 'reporting-job',
  client_secret: 'reporting-job-secret-0123456789',
  audience: 'ledger-api',
  claims: { groups: ['staff'], email: 'jobs@corp.example', email_verified: true, preferred_username: 'reporting' },
};
/** Its tokens are for another API. */
const BILLING_JOB: TestIdpApiClient = { client_id: 'billing-job', client_secret: 'billing-job-secret-0123456789', audience: 'billing-api', claims: { groups: ['staff'] } };
/** In `users`: deploy/opa/policy.rego lets it read orders, not delete them. */
const ORDERS_READER: TestIdpApiClient = { client_id: 'orders-reader', client_secret: 'orders-reader-secret-0123456789', audience: 'orders-api', claims: { groups: ['users'] } };

const ROUTES = `
routes:
  - name: ledger
    pathPrefix: /api/ledger
    bearer: true
    bearerAudience: ledger-api
  - name: ledger-staff
    pathPrefix: /api/staff-ledger
    bearer: true
    bearerAudience: ledger-api
    allow:
      groups: [staff]
  - name: ledger-finance
    pathPrefix: /api/finance-ledger
    bearer: true
    bearerAudience: ledger-api
    allow:
      groups: [finance]
      domains: [finance.example]
  - name: orders
    pathPrefix: /api/orders
    bearer: true
    bearerAudience: orders-api
    authz: pdp
  - name: profile
    pathPrefix: /api/profile
`;

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

describe('API clients with their own bearer tokens, through the real gateway and test IdP', () => {
  let opa: OpaServer;
  let env: TestEnvironment;
  let foreignIdp: TestIdp;
  let routesDirectory: string;
  const clock = new MovableClock();
  const logs = new CapturedLogs();

  beforeAll(async () => {
    opa = await startOpa();
    routesDirectory = mkdtempSync(join(tmpdir(), 'bff-bearer-'));
    const routesFile = join(routesDirectory, 'routes.yaml');
    writeFileSync(routesFile, ROUTES);
    env = await startTestEnvironment({
      env: { ROUTES_FILE: routesFile, PDP_URL: opa.decisionUrl, PDP_CACHE_TTL_SECONDS: '0' },
      idp: { apiClients: [REPORTING_JOB, BILLING_JOB, ORDERS_READER] },
      gateway: { clock, logger: logs.logger },
    });
    // Another issuer with the same API client and audience: its tokens are real, just not from the gateway's IdP.
    foreignIdp = await startTestIdp({ clients: [bffTestClient({ redirect_uris: ['http://127.0.0.1:9/auth/callback'] })], apiClients: [REPORTING_JOB] });
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await env?.close();
    await foreignIdp?.stop();
    await opa?.stop();
    if (routesDirectory) rmSync(routesDirectory, { recursive: true, force: true });
  });

  async function verify(path: string, authorization: string | undefined, method = 'GET', extra: Record<string, string> = {}): Promise<Answer> {
    const headers = forwarded(path, method, { ...extra, ...(authorization === undefined ? {} : { Authorization: authorization }) });
    // A Browser without cookies speaks plain node:http: fetch would add a Sec-Fetch-Mode of its own.
    const response = await new Browser().request(`${env.gateway.url}/verify`, { headers });
    return { status: response.status, headers: response.headers, body: await response.text() };
  }

  const withToken = (path: string, token: string, method = 'GET') => verify(path, `Bearer ${token}`, method);

  async function validations(status: string): Promise<number> {
    return metricValue(await env.gateway.metricsText(), 'bff_token_validation_total', { token_type: 'access_token', status });
  }

  /** Claims as the IdP would sign them for the ledger, at the gateway's time. */
  function ledgerClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const now = Math.floor(clock.now() / 1000);
    return { iss: env.idp.issuer, aud: 'ledger-api', sub: 'crafted-client', iat: now, exp: now + 300, ...overrides };
  }

  function expectInvalidToken(answer: Answer): void {
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body)).toEqual({ error: 'invalid_token' });
    expect(answer.headers.get('authorization')).toBeNull();
  }

  describe('a token from the IdP for the route audience', () => {
    it('is accepted: 200, the token itself upstream, identity headers from its claims', async () => {
      const token = await env.idp.clientCredentialsToken(REPORTING_JOB);
      const answer = await withToken('/api/ledger/entries', token);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('authorization')).toBe(`Bearer ${token}`);
      expect(answer.headers.get('x-auth-request-user')).toBe('reporting-job');
      expect(answer.headers.get('x-auth-request-email')).toBe('jobs@corp.example');
      expect(answer.headers.get('x-auth-request-preferred-username')).toBe('reporting');
    });

    it('needs no X-CSRF header for an unsafe method, and hands the proxy the client\'s cookies', async () => {
      const token = await env.idp.clientCredentialsToken(REPORTING_JOB);
      const answer = await verify('/api/ledger/entries', `Bearer ${token}`, 'POST', { Cookie: 'theme=dark' });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cookie')).toBe('theme=dark');
    });

    it('is counted as a valid access token', async () => {
      const before = await validations('valid');
      await withToken('/api/ledger/entries', await env.idp.clientCredentialsToken(REPORTING_JOB));
      expect(await validations('valid')).toBe(before + 1);
    });

    it('accepts the scheme in any case', async () => {
      const token = await env.idp.clientCredentialsToken(REPORTING_JOB);
      expect((await verify('/api/ledger/entries', `bearer ${token}`)).status).toBe(200);
    });
  });

  describe('tokens that are refused with 401 invalid_token', () => {
    it('an expired token, counted as expired', async () => {
      const now = Math.floor(clock.now() / 1000);
      const token = await env.idp.signToken(ledgerClaims({ iat: now - 600, exp: now - 120 }));
      const before = await validations('expired');
      expectInvalidToken(await withToken('/api/ledger/entries', token));
      expect(await validations('expired')).toBe(before + 1);
    });

    it('a token for another audience, counted as invalid', async () => {
      const token = await env.idp.clientCredentialsToken(BILLING_JOB);
      const before = await validations('invalid');
      expectInvalidToken(await withToken('/api/ledger/entries', token));
      expect(await validations('invalid')).toBe(before + 1);
    });

    it('a real token from another IdP', async () => {
      expectInvalidToken(await withToken('/api/ledger/entries', await foreignIdp.clientCredentialsToken(REPORTING_JOB)));
    });

    it('a token signed with the IdP\'s own key that names another issuer', async () => {
      expectInvalidToken(await withToken('/api/ledger/entries', await env.idp.signToken(ledgerClaims({ iss: foreignIdp.issuer }))));
    });

    it('an unsigned token (alg none)', async () => {
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      expectInvalidToken(await withToken('/api/ledger/entries', `${part({ alg: 'none', typ: 'at+jwt' })}.${part(ledgerClaims())}.`));
    });

    it('an HS256 token keyed with the IdP\'s public key', async () => {
      const jwks = (await (await fetch(`${env.idp.issuer}/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
      const publicPem = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const signingInput = `${part({ alg: 'HS256', typ: 'at+jwt', kid: jwks.keys[0]?.kid })}.${part(ledgerClaims())}`;
      expectInvalidToken(await withToken('/api/ledger/entries', `${signingInput}.${createHmac('sha256', publicPem).update(signingInput).digest('base64url')}`));
    });

    it('a token whose signature was tampered with', async () => {
      const token = await env.idp.clientCredentialsToken(REPORTING_JOB);
      const [header, , signature] = token.split('.');
      const payload = Buffer.from(JSON.stringify(ledgerClaims({ sub: 'admin' }))).toString('base64url');
      expectInvalidToken(await withToken('/api/ledger/entries', `${header}.${payload}.${signature}`));
    });

    it('a value that is not a JWT', async () => {
      expectInvalidToken(await withToken('/api/ledger/entries', 'opaque-access-token'));
    });
  });

  describe('the IdP\'s key set', () => {
    /** Makes sure the gateway holds the key set (fetched once in this environment's life at most). */
    async function warmUp(): Promise<void> {
      expect((await withToken('/api/ledger/entries', await env.idp.clientCredentialsToken(REPORTING_JOB))).status).toBe(200);
    }

    it('is not fetched per request', async () => {
      await warmUp();
      const token = await env.idp.clientCredentialsToken(REPORTING_JOB);
      const before = await env.idp.jwksRequests();
      for (let request = 0; request < 20; request++) expect((await withToken('/api/ledger/entries', token)).status).toBe(200);
      expect(await env.idp.jwksRequests()).toBe(before);
    });

    it('is fetched again, once, when a token signed with a newly published key arrives after the cooldown', async () => {
      await warmUp();
      const kid = await env.idp.addSigningKey();
      clock.advance(JWKS_TIMING.cooldownMs);
      const before = await env.idp.jwksRequests();
      expect((await withToken('/api/ledger/entries', await env.idp.signToken(ledgerClaims(), { kid }))).status).toBe(200);
      expect((await withToken('/api/ledger/entries', await env.idp.signToken(ledgerClaims({ jti: 'again' }), { kid }))).status).toBe(200);
      expect(await env.idp.jwksRequests()).toBe(before + 1);
    });

    it('is fetched at most once for a burst of tokens with a kid the IdP never published', async () => {
      await warmUp();
      const kid = await env.idp.addSigningKey({ publish: false });
      clock.advance(JWKS_TIMING.cooldownMs);
      const before = await env.idp.jwksRequests();
      const tokens = await Promise.all(Array.from({ length: 5 }, (_, index) => env.idp.signToken(ledgerClaims({ jti: String(index) }), { kid })));
      for (const token of tokens) expectInvalidToken(await withToken('/api/ledger/entries', token));
      expect(await env.idp.jwksRequests()).toBe(before + 1);
    });
  });

  describe('policy on the token\'s claims', () => {
    it('lets a client through allow rules by the groups in its token', async () => {
      expect((await withToken('/api/staff-ledger/entries', await env.idp.clientCredentialsToken(REPORTING_JOB))).status).toBe(200);
    });

    it('refuses a client the allow rules do not name: 403 forbidden and an authz_denied event without a session', async () => {
      const mark = logs.mark();
      const answer = await withToken('/api/finance-ledger/entries', await env.idp.clientCredentialsToken(REPORTING_JOB));
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body)).toEqual({ error: 'forbidden' });
      const events = logs.events('authz_denied', mark);
      expect(events).toEqual([expect.objectContaining({ subject: 'reporting-job', route: 'ledger-finance', reason: 'no_matching_rule' })]);
      expect(events[0]).not.toHaveProperty('sessionHash');
    });

    it('asks the PDP with the token\'s groups: OPA lets a reader read orders and refuses it a delete', async () => {
      await opa.ensureServing();
      const token = await env.idp.clientCredentialsToken(ORDERS_READER);
      expect((await withToken('/api/orders/1', token)).status).toBe(200);
      expect((await withToken('/api/orders/1', token, 'DELETE')).status).toBe(403);
    });
  });

  describe('requests without a bearer token', () => {
    it('on a bearer route without a token or cookie: 401 unauthenticated as for any session route, 302 for a navigation', async () => {
      const api = await verify('/api/ledger/entries', undefined);
      expect(api.status).toBe(401);
      expect(JSON.parse(api.body)).toMatchObject({ error: 'unauthenticated' });
      expect(api.headers.get('www-authenticate')).toBeNull();
      const navigation = await verify('/api/ledger/entries', undefined, 'GET', { 'Sec-Fetch-Mode': 'navigate' });
      expect(navigation.status).toBe(302);
    });

    it('with another scheme (Basic): treated as no token', async () => {
      const answer = await verify('/api/ledger/entries', `Basic ${Buffer.from('reporting-job:secret').toString('base64')}`);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'unauthenticated' });
    });

    it('a valid token on a route without bearer: true is ignored: 401 unauthenticated, the token is not checked', async () => {
      const token = await env.idp.clientCredentialsToken(REPORTING_JOB);
      const before = { valid: await validations('valid'), invalid: await validations('invalid') };
      const answer = await withToken('/api/profile/me', token);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'unauthenticated' });
      expect({ valid: await validations('valid'), invalid: await validations('invalid') }).toEqual(before);
    });
  });
});

/**
 * A realm of API clients for Keycloak: `ledger-job` gets `ledger-api` into
 * its tokens' `aud` through an audience mapper, as docs/authorization.md
 * tells operators to set up; `other-job` has no such mapper. Their service
 * accounts hold realm roles, read through OIDC_GROUPS_CLAIM=realm_access.roles.
 */
const KEYCLOAK_REALM = 'api-clients';
const LEDGER_JOB = { clientId: 'ledger-job', secret: 'ledger-job-secret-0123456789abcdef' };
const OTHER_JOB = { clientId: 'other-job', secret: 'other-job-secret-0123456789abcdef' };
const KEYCLOAK_START_TIMEOUT_MS = 300_000;

function serviceAccountClient(client: { clientId: string; secret: string }, audience: string | undefined): Record<string, unknown> {
  return {
    clientId: client.clientId,
    enabled: true,
    protocol: 'openid-connect',
    publicClient: false,
    clientAuthenticatorType: 'client-secret',
    secret: client.secret,
    standardFlowEnabled: false,
    directAccessGrantsEnabled: false,
    serviceAccountsEnabled: true,
    protocolMappers: audience
      ? [
          {
            name: `${audience} audience`,
            protocol: 'openid-connect',
            protocolMapper: 'oidc-audience-mapper',
            config: { 'included.custom.audience': audience, 'access.token.claim': 'true', 'id.token.claim': 'false', 'introspection.token.claim': 'true' },
          },
        ]
      : [],
  };
}

const API_CLIENTS_REALM = {
  realm: KEYCLOAK_REALM,
  enabled: true,
  sslRequired: 'none',
  accessTokenLifespan: 300,
  roles: { realm: [{ name: 'ledger-staff' }] },
  clients: [serviceAccountClient(LEDGER_JOB, 'ledger-api'), serviceAccountClient(OTHER_JOB, undefined)],
  users: [
    { username: `service-account-${LEDGER_JOB.clientId}`, enabled: true, serviceAccountClientId: LEDGER_JOB.clientId, realmRoles: ['ledger-staff'] },
    { username: `service-account-${OTHER_JOB.clientId}`, enabled: true, serviceAccountClientId: OTHER_JOB.clientId, realmRoles: ['ledger-staff'] },
  ],
};

const KEYCLOAK_ROUTES = `
routes:
  - name: ledger
    pathPrefix: /api/ledger
    bearer: true
    bearerAudience: ledger-api
    allow:
      groups: [ledger-staff]
`;

describe('API clients with client-credentials tokens from a real Keycloak', () => {
  let keycloak: KeycloakServer;
  let gateway: RunningGateway;
  let directory: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'bff-bearer-keycloak-'));
    const realmFile = join(directory, 'api-clients-realm.json');
    writeFileSync(realmFile, JSON.stringify(API_CLIENTS_REALM));
    const routesFile = join(directory, 'routes.yaml');
    writeFileSync(routesFile, KEYCLOAK_ROUTES);
    keycloak = await startKeycloak({ realmFiles: [realmFile] });
    gateway = await startGateway({
      env: {
        OIDC_ISSUER: keycloak.issuer(KEYCLOAK_REALM),
        OIDC_CLIENT_ID: LEDGER_JOB.clientId,
        OIDC_CLIENT_SECRET: LEDGER_JOB.secret,
        OIDC_GROUPS_CLAIM: 'realm_access.roles',
        SESSION_SECRET: TEST_SESSION_SECRET,
        ROUTES_FILE: routesFile,
      },
    });
  }, KEYCLOAK_START_TIMEOUT_MS);

  afterAll(async () => {
    await gateway?.close();
    await keycloak?.stop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  async function clientCredentialsToken(client: { clientId: string; secret: string }): Promise<string> {
    const response = await fetch(`${keycloak.issuer(KEYCLOAK_REALM)}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.secret }),
    });
    const body = (await response.json()) as { access_token?: string };
    if (!response.ok || !body.access_token) throw new Error(`Keycloak client_credentials for ${client.clientId} answered ${response.status}: ${JSON.stringify(body)}`);
    return body.access_token;
  }

  async function verify(token: string): Promise<{ status: number; headers: Headers }> {
    const response = await new Browser().request(`${gateway.url}/verify`, { headers: forwarded('/api/ledger/entries', 'GET', { Authorization: `Bearer ${token}` }) });
    await response.text();
    return { status: response.status, headers: response.headers };
  }

  it('accepts a token whose audience mapper names the route audience: 200, the token upstream, the service account as the user', async () => {
    const token = await clientCredentialsToken(LEDGER_JOB);
    const answer = await verify(token);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('authorization')).toBe(`Bearer ${token}`);
    expect(answer.headers.get('x-auth-request-user')).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers.get('x-auth-request-preferred-username')).toBe(`service-account-${LEDGER_JOB.clientId}`);
  });

  it('refuses a token of a client without the audience mapper with 401 invalid_token', async () => {
    const answer = await verify(await clientCredentialsToken(OTHER_JOB));
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });
});
