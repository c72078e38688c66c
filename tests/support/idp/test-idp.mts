// The test identity provider: oidc-provider 9 in its own process, started by
// tests/support/idp.ts. Node runs this file directly with type stripping, so
// only erasable TypeScript is allowed and only npm packages may be imported
// (type-only imports are erased, so the shapes it shares with idp.ts come from there).
//
// Configuration arrives as JSON in TEST_IDP_CONFIG. Once listening it prints
// exactly one line, `READY <issuer>`, on stdout. Test-only control endpoints
// live under /__test/ on the same port.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Provider, { interactionPolicy } from 'oidc-provider';
import type {
  Adapter,
  AdapterPayload,
  ClientMetadata,
  Configuration,
  KoaContextWithOIDC,
} from 'oidc-provider';
import type { Next } from 'koa';
import type { ClientAssertionSeen, PushedAuthorizationRequestsMode, TestIdpApiClient, TestIdpClient, TestIdpStats } from '../idp.js';
import { errors as oidcErrors } from 'oidc-provider';
import { SignJWT, exportJWK, importJWK, type JWK, type JWTHeaderParameters } from 'jose';

interface TestIdpConfig {
  /** API clients (client_credentials) whose access tokens are JWTs for their `audience`; see "API clients" below. */
  apiClients?: TestIdpApiClient[];
  port: number;
  issuer: string;
  clients: TestIdpClient[];
  accessTokenTtlSeconds: number;
  idTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** RFC 9126: not advertised (default), advertised, or advertised and required. */
  pushedAuthorizationRequests?: PushedAuthorizationRequestsMode;
}

const ROUTES = {
  authorization: '/auth',
  token: '/token',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  userinfo: '/me',
  jwks: '/jwks',
  end_session: '/session/end',
  pushed_authorization_request: '/request',
} as const;

/** The endpoints that authenticate the client, by path, as /__test/stats names them. */
const CLIENT_AUTHENTICATING_ENDPOINTS: Readonly<Record<string, string>> = {
  [ROUTES.token]: 'token',
  [ROUTES.pushed_authorization_request]: 'pushed_authorization_request',
  [ROUTES.revocation]: 'revocation',
  [ROUTES.introspection]: 'introspection',
};

const DEFAULT_ID_TOKEN_TTL_SECONDS = 3600;
const DEFAULT_REFRESH_TOKEN_TTL_SECONDS = 24 * 3600;
// Grants must outlive every refresh token issued from them, or the refresh fails early.
const MIN_GRANT_TTL_SECONDS = 14 * 24 * 3600;
const CONTROL_BODY_LIMIT_BYTES = 16 * 1024;
const MAX_TOKEN_DELAY_MS = 120_000;

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

function fail(message: string): never {
  process.stderr.write(`test-idp: ${message}\n`);
  process.exit(1);
}

function readConfig(): TestIdpConfig {
  const raw = process.env.TEST_IDP_CONFIG;
  if (!raw) fail('TEST_IDP_CONFIG is not set');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    fail(`TEST_IDP_CONFIG is not JSON: ${(err as Error).message}`);
  }
  const config = parsed as Partial<TestIdpConfig>;
  const problems: string[] = [];
  if (!Number.isInteger(config.port) || (config.port ?? 0) <= 0) problems.push('port must be a positive integer');
  if (typeof config.issuer !== 'string') problems.push('issuer must be a string');
  if (!Array.isArray(config.clients) || config.clients.length === 0) problems.push('clients must be a non-empty array');
  for (const key of ['accessTokenTtlSeconds', 'idTokenTtlSeconds', 'refreshTokenTtlSeconds'] as const) {
    const value = config[key];
    // oidc-provider rejects zero, fractions and negatives for every TTL.
    if ((key === 'accessTokenTtlSeconds' || value !== undefined) && !(Number.isSafeInteger(value) && (value ?? 0) > 0)) {
      problems.push(`${key} must be a positive integer`);
    }
  }
  if (![undefined, 'off', 'on', 'required'].includes(config.pushedAuthorizationRequests)) {
    problems.push('pushedAuthorizationRequests must be off, on or required');
  }
  if (problems.length > 0) fail(`invalid TEST_IDP_CONFIG: ${problems.join('; ')}`);
  return config as TestIdpConfig;
}

// ---------------------------------------------------------------------------
// Storage: one in-memory store for every model, so /__test/revoke-grants can
// find all grants of an account. oidc-provider's bundled MemoryAdapter is an
// LRU capped at 1000 entries that can evict live tokens under load.

interface StoredEntry {
  payload: AdapterPayload;
  expiresAtMs: number;
}

const GRANTABLE_MODELS = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

class TestStore {
  readonly entries = new Map<string, StoredEntry>();
  readonly keysByGrantId = new Map<string, Set<string>>();
  readonly idBySessionUid = new Map<string, string>();
  readonly idByUserCode = new Map<string, string>();
  // Survives deletion so a refresh error for a revoked or reused token can still be attributed to its user.
  readonly accountIdByRefreshToken = new Map<string, string>();

  get(key: string): AdapterPayload | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= Date.now()) {
      this.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  set(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): void {
    const key = `${model}:${id}`;
    this.delete(key);
    const expiresAtMs = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
    this.entries.set(key, { payload, expiresAtMs });
    if (GRANTABLE_MODELS.has(model) && payload.grantId) {
      let keys = this.keysByGrantId.get(payload.grantId);
      if (!keys) {
        keys = new Set();
        this.keysByGrantId.set(payload.grantId, keys);
      }
      keys.add(key);
    }
    if (model === 'Session' && payload.uid) this.idBySessionUid.set(payload.uid, id);
    if (payload.userCode) this.idByUserCode.set(payload.userCode, id);
    if (model === 'RefreshToken' && payload.accountId) this.accountIdByRefreshToken.set(id, payload.accountId);
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    const { payload } = entry;
    if (payload.grantId) this.keysByGrantId.get(payload.grantId)?.delete(key);
    if (payload.uid) this.idBySessionUid.delete(payload.uid);
    if (payload.userCode) this.idByUserCode.delete(payload.userCode);
  }

  revokeByGrantId(grantId: string): void {
    for (const key of this.keysByGrantId.get(grantId) ?? []) this.delete(key);
    this.keysByGrantId.delete(grantId);
  }

  /** Removes every grant of the account with all its codes and tokens; returns how many grants. */
  revokeAccount(accountId: string): number {
    const grantIds = new Set<string>();
    for (const [key, { payload }] of this.entries) {
      if (payload.accountId !== accountId) continue;
      if (key.startsWith('Grant:')) grantIds.add(key.slice('Grant:'.length));
      else if (payload.grantId) grantIds.add(payload.grantId);
    }
    for (const grantId of grantIds) {
      this.revokeByGrantId(grantId);
      this.delete(`Grant:${grantId}`);
    }
    return grantIds.size;
  }
}

class TestAdapter implements Adapter {
  readonly model: string;
  readonly store: TestStore;

  constructor(model: string, store: TestStore) {
    this.model = model;
    this.store = store;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    this.store.set(this.model, id, structuredClone(payload), expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const payload = this.store.get(`${this.model}:${id}`);
    // A copy, so the provider never mutates stored state behind the adapter's back.
    return payload ? structuredClone(payload) : undefined;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.store.idBySessionUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.store.idByUserCode.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id: string): Promise<void> {
    const payload = this.store.get(`${this.model}:${id}`);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(`${this.model}:${id}`);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.store.revokeByGrantId(grantId);
  }
}

// ---------------------------------------------------------------------------
// Accounts: any login name is an account.

function groupsOf(accountId: string): string[] {
  return accountId === 'alice' ? ['admins', 'users'] : ['users'];
}

function displayNameOf(accountId: string): string {
  return accountId.length === 0 ? accountId : accountId[0]!.toUpperCase() + accountId.slice(1);
}

// ---------------------------------------------------------------------------
// Test switches and counters.

// The counters as tests/support/idp.ts reads them from GET /__test/stats.
type Stats = TestIdpStats;

function emptyStats(): Stats {
  return {
    refreshGrants: {},
    refreshErrors: {},
    codeGrants: 0,
    tokenRequests: 0,
    injectedFailures: 0,
    tokenExchanges: {},
    clientAuthentications: {},
    lastClientAssertion: null,
    pushedAuthorizationRequests: 0,
    authorizationRequests: { pushed: 0, plain: 0 },
  };
}

/** An error the token or PAR endpoint answers instead of the provider. */
interface InjectedFailure {
  status: number;
  error: string;
}

const switches: {
  tokenDelayMs: number;
  tokenFailure: InjectedFailure | null;
  parFailure: InjectedFailure | null;
} = {
  tokenDelayMs: 0,
  tokenFailure: null,
  parFailure: null,
};
let stats = emptyStats();

function increment(counter: Record<string, number>, key: string): void {
  counter[key] = (counter[key] ?? 0) + 1;
}

/** The body of POST /__test/token-failure or /__test/par-failure: `{ status, error? }` sets a failure, `{ status: null }` clears it. */
function injectedFailureFrom(body: Record<string, unknown>): { failure: InjectedFailure | null } | undefined {
  const { status, error } = body;
  if (status === null) return { failure: null };
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) return undefined;
  return { failure: { status, error: typeof error === 'string' ? error : defaultErrorFor(status) } };
}

function defaultErrorFor(status: number): string {
  if (status === 503 || status === 429) return 'temporarily_unavailable';
  if (status >= 500) return 'server_error';
  if (status === 401) return 'invalid_client';
  return 'invalid_request';
}

/** `METHOD /path` and the JSON body of a /__test/ request, answered JSON; undefined once a bad body was answered 400. */
async function controlRequestOf(ctx: KoaContextWithOIDC): Promise<{ route: string; body: Record<string, unknown> } | undefined> {
  let body: Record<string, unknown>;
  try {
    body = ctx.method === 'POST' ? await readJson(ctx.req) : {};
  } catch (err) {
    ctx.status = 400;
    ctx.body = { error: (err as Error).message };
    return undefined;
  }
  ctx.type = 'json';
  return { route: `${ctx.method} ${ctx.path}`, body };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > CONTROL_BODY_LIMIT_BYTES) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('body must be a JSON object');
  return parsed as Record<string, unknown>;
}

const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

function decodeJwtPart(part: string | undefined): Record<string, unknown> {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
    return decoded !== null && typeof decoded === 'object' ? (decoded as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Which method the request used, read from what it carried (the body as oidc-provider parsed it). */
function recordClientAuthentication(ctx: KoaContextWithOIDC, endpoint: string): void {
  const body = (ctx.oidc?.body ?? {}) as Record<string, unknown>;
  let method = 'none';
  if (body.client_assertion_type === JWT_BEARER_ASSERTION && typeof body.client_assertion === 'string') {
    const [header, claims] = body.client_assertion.split('.');
    const seen = { endpoint, header: decodeJwtPart(header), claims: decodeJwtPart(claims) };
    method = String(seen.header.alg ?? '').startsWith('HS') ? 'client_secret_jwt' : 'private_key_jwt';
    stats.lastClientAssertion = seen;
  } else if (/^basic /i.test(ctx.get('authorization'))) {
    method = 'client_secret_basic';
  } else if (typeof body.client_secret === 'string') {
    method = 'client_secret_post';
  }
  increment(stats.clientAuthentications, `${endpoint} ${method}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// offline_access. Following OIDC Core 11, oidc-provider strips offline_access
// from every authorization request whose prompt lacks `consent`, and then issues
// no refresh token and binds the tokens to the IdP browser session. Relying
// parties (like the gateway) rarely send prompt=consent, so this prompt, run
// before login and consent, puts offline_access back when the request asked for
// it. The consent prompt then asks for it once and the grant records it.

function requestedScope(ctx: KoaContextWithOIDC): unknown {
  return ctx.method === 'POST' ? (ctx.oidc.body as Record<string, unknown> | undefined)?.scope : ctx.query.scope;
}

const keepOfflineAccess = new interactionPolicy.Prompt(
  { name: 'keep_offline_access', requestable: false },
  new interactionPolicy.Check('offline_access_requested', 'offline_access was requested without prompt=consent', (ctx) => {
    const { oidc } = ctx;
    const { params } = oidc;
    const raw = requestedScope(ctx);
    if (
      params &&
      oidc.route === 'authorization' &&
      typeof raw === 'string' &&
      raw.split(' ').includes('offline_access') &&
      // prompt=none cannot show the consent page that granting offline_access may need.
      !oidc.prompts.has('none') &&
      oidc.client?.grantTypeAllowed('refresh_token') &&
      String(params.response_type ?? '').includes('code')
    ) {
      const scopes = new Set(String(params.scope ?? '').split(' ').filter(Boolean));
      scopes.add('offline_access');
      params.scope = [...scopes].join(' ');
    }
    return interactionPolicy.Check.NO_NEED_TO_PROMPT;
  }),
);

function interactionPolicyWithOfflineAccess(): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  policy.add(keepOfflineAccess, 0);
  return policy;
}

// ---------------------------------------------------------------------------

const config = readConfig();
const store = new TestStore();

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const refreshTokenTtlSeconds = config.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL_SECONDS;

const clients: ClientMetadata[] = config.clients.map((client) => ({
  client_id: client.client_id,
  client_secret: client.client_secret,
  redirect_uris: client.redirect_uris,
  post_logout_redirect_uris: client.post_logout_redirect_uris,
  response_types: ['code'],
  grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT],
  token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
  ...(client.jwks ? { jwks: client.jwks } : {}),
  ...(client.token_endpoint_auth_signing_alg
    ? { token_endpoint_auth_signing_alg: client.token_endpoint_auth_signing_alg as ClientMetadata['token_endpoint_auth_signing_alg'] }
    : {}),
  ...(client.backchannel_logout_uri
    ? { backchannel_logout_uri: client.backchannel_logout_uri, backchannel_logout_session_required: true }
    : {}),
}));

const configuration: Configuration = {
  adapter: (model: string) => new TestAdapter(model, store),
  clients,
  jwks: { keys: [{ ...signingKey, kid: 'test-idp-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  routes: ROUTES,
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({
      sub: id,
      name: displayNameOf(id),
      email: `${id}@example.test`,
      email_verified: true,
      preferred_username: id,
      groups: groupsOf(id),
    }),
  }),
  // groups rides along with profile so a relying party gets it without asking for a custom scope.
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'groups'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  // Put the scope's claims into the ID token too, so a relying party need not call userinfo.
  conformIdTokenClaims: false,
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
  responseTypes: ['code'],
  pkce: { required: () => true },
  interactions: { policy: interactionPolicyWithOfflineAccess() },
  // Refresh tokens for every client allowed the grant, with or without offline_access
  // (e.g. after prompt=none); without it they die with the IdP session, as usual.
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // A re-presented rotated token is "already used": oidc-provider then revokes the whole grant.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: config.accessTokenTtlSeconds,
    AuthorizationCode: 60,
    IdToken: config.idTokenTtlSeconds ?? DEFAULT_ID_TOKEN_TTL_SECONDS,
    RefreshToken: refreshTokenTtlSeconds,
    Grant: Math.max(MIN_GRANT_TTL_SECONDS, refreshTokenTtlSeconds),
    Interaction: 600,
    Session: 24 * 3600,
  },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    // oidc-provider advertises PAR by default; the test IdP does only when asked, so logins keep their parameters in the URL.
    pushedAuthorizationRequests: {
      enabled: (config.pushedAuthorizationRequests ?? 'off') !== 'off',
      requirePushedAuthorizationRequests: config.pushedAuthorizationRequests === 'required',
    },
  },
  // oidc-provider 9 refuses outgoing requests to special-use addresses (loopback included) as
  // SSRF protection, which would stop every back-channel logout to a gateway on 127.0.0.1.
  // This provider only ever talks to servers the test run started on loopback.
  fetch: (url, options) => {
    const { dispatcher: _ssrfGuard, ...rest } = options as RequestInit & { dispatcher?: unknown };
    return globalThis.fetch(url, rest);
  },
};

// ---------------------------------------------------------------------------
// API clients, for the gateway's `bearer: true` routes. Each is a
// client_credentials client whose access tokens are RS256 JWTs (typ at+jwt,
// the provider's own key) with `aud` = its audience and its extra claims. The
// audience is asked for through a resource indicator (RFC 8707) that
// oidc-provider requires as an absolute URI; a client that names none gets
// its own. Only these clients get JWTs: every other token stays opaque.
//
// Control endpoints under /__test/api/: extra signing keys (published in the
// JWKS beside the provider's, or not), a signer for crafted tokens, how many
// times the JWKS was fetched, and claims that replace an account's defaults
// (an unverified email, an address with two "@", other groups) for the
// gateway's `allow:` rules.


const apiClients = config.apiClients ?? [];
const apiClientById = new Map(apiClients.map((client) => [client.client_id, client]));
const apiResourceFor = (audience: string) => `urn:test-idp:audience:${encodeURIComponent(audience)}`;
const PROVIDER_KID = 'test-idp-rs256';

if (apiClients.length > 0) {
  clients.push(
    ...apiClients.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: [],
      response_types: [],
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic' as const,
    })),
  );
  configuration.features = {
    ...configuration.features,
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        const apiClient = apiClientById.get(client.clientId);
        return apiClient ? apiResourceFor(apiClient.audience) : undefined;
      },
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        const apiClient = apiClientById.get(client.clientId);
        if (!apiClient || resourceIndicator !== apiResourceFor(apiClient.audience)) throw new oidcErrors.InvalidTarget();
        return {
          scope: 'api',
          audience: apiClient.audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: config.accessTokenTtlSeconds,
          jwt: { sign: { alg: 'RS256', kid: PROVIDER_KID } },
        };
      },
    },
  };
  configuration.extraTokenClaims = async (_ctx, token) =>
    token.kind === 'ClientCredentials' ? apiClientById.get(token.clientId ?? '')?.claims : undefined;
}

/** Claims that replace an account's defaults, by account id (POST /__test/api/account-claims). */
const accountClaims = new Map<string, Record<string, unknown>>();
const defaultFindAccount = configuration.findAccount;
if (defaultFindAccount) {
  configuration.findAccount = async (ctx, id, token) => {
    const account = await defaultFindAccount(ctx, id, token);
    const replaced = accountClaims.get(id);
    if (!account || !replaced) return account;
    return { ...account, claims: async (use, scope, claims, rejected) => ({ ...(await account.claims(use, scope, claims, rejected)), ...replaced, sub: id }) };
  };
}

/** Private keys the tests sign with, by kid: the provider's own, and those made by POST /__test/api/keys. */
const testSigningKeys = new Map<string, JWK>([[PROVIDER_KID, { ...signingKey, kid: PROVIDER_KID, alg: 'RS256' } as JWK]]);
/** Public keys served in the JWKS beside the provider's. */
const publishedTestKeys: JWK[] = [];
let jwksRequests = 0;

async function handleApiControl(ctx: KoaContextWithOIDC): Promise<void> {
  const request = await controlRequestOf(ctx);
  if (!request) return;
  const { route, body } = request;
  switch (route) {
    case 'GET /__test/api/jwks-requests':
      ctx.body = { jwksRequests };
      return;
    case 'POST /__test/api/account-claims': {
      const { sub, claims } = body;
      if (typeof sub !== 'string' || sub === '' || claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
        ctx.status = 400;
        ctx.body = { error: 'sub (a non-empty string) and claims (an object) are required' };
        return;
      }
      accountClaims.set(sub, claims as Record<string, unknown>);
      ctx.body = { sub, claims };
      return;
    }
    case 'POST /__test/api/keys': {
      // A new RS256 key; `publish: false` keeps it out of the JWKS (a key the gateway can never find).
      const kid = `test-key-${randomBytes(6).toString('hex')}`;
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      testSigningKeys.set(kid, { ...(await exportJWK(privateKey)), kid, alg: 'RS256' });
      if (body.publish !== false) publishedTestKeys.push({ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' });
      ctx.body = { kid };
      return;
    }
    case 'POST /__test/api/sign': {
      // Signs `claims` as they are (no defaults): the tests decide iss, aud, exp, nbf and the rest.
      const { claims, kid = PROVIDER_KID, header = {} } = body as { claims?: unknown; kid?: unknown; header?: unknown };
      const key = typeof kid === 'string' ? testSigningKeys.get(kid) : undefined;
      if (!key || claims === null || typeof claims !== 'object' || header === null || typeof header !== 'object') {
        ctx.status = 400;
        ctx.body = { error: 'claims (an object), header (an object) and a known kid are required' };
        return;
      }
      const token = await new SignJWT(claims as Record<string, unknown>)
        .setProtectedHeader({ typ: 'at+jwt', ...(header as JWTHeaderParameters), alg: 'RS256', kid: kid as string })
        .sign(await importJWK(key, 'RS256'));
      ctx.body = { token };
      return;
    }
    default:
      ctx.status = 404;
      ctx.body = { error: `no test control endpoint ${route}` };
  }
}

const provider = new Provider(config.issuer, configuration);

// Ahead of the other middleware: it owns /__test/api/ and sees every JWKS request.
provider.use(async (ctx: KoaContextWithOIDC, next: Next) => {
  if (ctx.path.startsWith('/__test/api/')) {
    await handleApiControl(ctx);
    return;
  }
  if (ctx.method === 'GET' && ctx.path === ROUTES.jwks) {
    jwksRequests += 1;
    await next();
    const served = ctx.body as { keys?: unknown[] } | undefined;
    if (ctx.status === 200 && Array.isArray(served?.keys) && publishedTestKeys.length > 0) ctx.body = { keys: [...served.keys, ...publishedTestKeys] };
    return;
  }
  await next();
});

// RFC 8693 token exchange, which oidc-provider leaves to the deployment: an access token of this
// IdP is exchanged for one meant for `audience`. Exchanged tokens are remembered so that tests can
// ask (GET /__test/exchanged?token=) whom and which audience a token the gateway forwarded is for.
const exchangedTokens = new Map<string, { sub: string; audience: string }>();
provider.registerGrantType(
  TOKEN_EXCHANGE_GRANT,
  async (ctx) => {
    const params = ctx.oidc.params as Record<string, unknown>;
    const audience = params.audience;
    const subjectToken = typeof params.subject_token === 'string' ? await ctx.oidc.provider.AccessToken.find(params.subject_token) : undefined;
    if (params.subject_token_type !== 'urn:ietf:params:oauth:token-type:access_token' || typeof audience !== 'string' || audience === '') {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'subject_token_type access_token and an audience are required' };
      return;
    }
    if (!subjectToken || subjectToken.isExpired || subjectToken.clientId !== ctx.oidc.client.clientId) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'the subject token is not valid' };
      return;
    }
    const token = `exchanged-${randomBytes(24).toString('base64url')}`;
    exchangedTokens.set(token, { sub: subjectToken.accountId, audience });
    increment(stats.tokenExchanges, `${subjectToken.accountId} ${audience}`);
    ctx.set('cache-control', 'no-store');
    ctx.body = {
      access_token: token,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: config.accessTokenTtlSeconds,
    };
  },
  ['subject_token', 'subject_token_type', 'audience', 'requested_token_type', 'resource'],
);

provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
  const grantType = ctx.oidc.params?.grant_type;
  if (grantType === 'authorization_code') stats.codeGrants += 1;
  if (grantType === 'refresh_token') increment(stats.refreshGrants, ctx.oidc.entities.Account?.accountId ?? 'unknown');
});

provider.on('grant.error', (ctx: KoaContextWithOIDC) => {
  if (ctx.oidc.params?.grant_type !== 'refresh_token') return;
  const presented = ctx.oidc.params.refresh_token;
  const sub =
    ctx.oidc.entities.RefreshToken?.accountId ??
    (typeof presented === 'string' ? store.accountIdByRefreshToken.get(presented) : undefined) ??
    'unknown';
  increment(stats.refreshErrors, sub);
});

provider.on('server_error', (_ctx: KoaContextWithOIDC, err: Error) => {
  process.stderr.write(`test-idp: server_error: ${err.stack ?? err.message}\n`);
});

async function handleControl(ctx: KoaContextWithOIDC): Promise<void> {
  const request = await controlRequestOf(ctx);
  if (!request) return;
  const { route, body } = request;
  switch (route) {
    case 'GET /__test/stats':
      ctx.body = stats;
      return;
    case 'GET /__test/exchanged': {
      const token = ctx.query.token;
      ctx.body = (typeof token === 'string' && exchangedTokens.get(token)) || {};
      return;
    }
    case 'POST /__test/token-delay': {
      const ms = body.ms;
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_TOKEN_DELAY_MS) {
        ctx.status = 400;
        ctx.body = { error: `ms must be an integer from 0 to ${MAX_TOKEN_DELAY_MS}` };
        return;
      }
      switches.tokenDelayMs = ms;
      ctx.body = { tokenDelayMs: ms };
      return;
    }
    case 'POST /__test/token-failure':
    case 'POST /__test/par-failure': {
      const injected = injectedFailureFrom(body);
      if (!injected) {
        ctx.status = 400;
        ctx.body = { error: 'status must be an HTTP error status (400-599) or null' };
        return;
      }
      if (route === 'POST /__test/token-failure') {
        switches.tokenFailure = injected.failure;
        ctx.body = { tokenFailure: injected.failure };
      } else {
        switches.parFailure = injected.failure;
        ctx.body = { parFailure: injected.failure };
      }
      return;
    }
    case 'POST /__test/revoke-grants': {
      const { sub } = body;
      if (typeof sub !== 'string' || sub.length === 0) {
        ctx.status = 400;
        ctx.body = { error: 'sub must be a non-empty string' };
        return;
      }
      ctx.body = { revokedGrants: store.revokeAccount(sub) };
      return;
    }
    case 'POST /__test/reset':
      switches.tokenDelayMs = 0;
      switches.tokenFailure = null;
      switches.parFailure = null;
      stats = emptyStats();
      ctx.body = { reset: true };
      return;
    default:
      ctx.status = 404;
      ctx.body = { error: `no test control endpoint ${route}` };
  }
}

provider.use(async (ctx: KoaContextWithOIDC, next: Next) => {
  if (ctx.path.startsWith('/__test/')) {
    await handleControl(ctx);
    return;
  }
  if (ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
    if (typeof ctx.query.request_uri === 'string') stats.authorizationRequests.pushed += 1;
    else stats.authorizationRequests.plain += 1;
  }
  if (ctx.method === 'POST' && ctx.path === ROUTES.pushed_authorization_request && switches.parFailure) {
    ctx.status = switches.parFailure.status;
    ctx.set('cache-control', 'no-store');
    ctx.body = { error: switches.parFailure.error, error_description: 'injected by the test IdP' };
    return;
  }
  if (ctx.method === 'POST' && ctx.path === ROUTES.token) {
    stats.tokenRequests += 1;
    if (switches.tokenDelayMs > 0) await sleep(switches.tokenDelayMs);
    const failure = switches.tokenFailure;
    if (failure) {
      stats.injectedFailures += 1;
      ctx.status = failure.status;
      ctx.set('cache-control', 'no-store');
      ctx.body = { error: failure.error, error_description: 'injected by the test IdP' };
      return;
    }
  }
  const authenticatingEndpoint = ctx.method === 'POST' ? CLIENT_AUTHENTICATING_ENDPOINTS[ctx.path] : undefined;
  if (!authenticatingEndpoint) {
    await next();
    return;
  }
  try {
    await next();
  } finally {
    recordClientAuthentication(ctx, authenticatingEndpoint);
    if (authenticatingEndpoint === 'pushed_authorization_request' && ctx.status === 201) stats.pushedAuthorizationRequests += 1;
  }
});

// The parent owns this process: when its end of stdin closes (it exited or was killed), go too.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`READY ${config.issuer}\n`);
});
server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${config.port}: ${err.message}`));
