import { resolve } from 'node:path';
import { startGuarded, type GuardedProcess } from './child-process';
import { withFreePort } from './ports';

/** Client registration at the test IdP (oidc-provider client metadata names). */
export interface TestIdpClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri?: string;
  /**
   * oidc-provider accepts only the registered method for a client.
   * Defaults to `client_secret_basic`; openid-client's `discovery(..., secret)`
   * defaults to `client_secret_post`, so pass `ClientSecretBasic` there or set this.
   */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  /** The client's public keys (JWKs), which private_key_jwt assertions are verified with. */
  jwks?: { keys: Array<Record<string, unknown>> };
  /** The only algorithm the client's assertions may use; unset: any the IdP enables (RS256, PS256, ES256, EdDSA, ...). */
  token_endpoint_auth_signing_alg?: string;
}

/** RFC 9126 at the test IdP: not advertised, advertised, or advertised and required. */
export type PushedAuthorizationRequestsMode = 'off' | 'on' | 'required';

export interface StartTestIdpOptions {
  clients: TestIdpClient[];
  /** Defaults to 300. */
  accessTokenTtlSeconds?: number;
  /** Defaults to 3600 (in the IdP). */
  idTokenTtlSeconds?: number;
  /** Defaults to 86400 (in the IdP). */
  refreshTokenTtlSeconds?: number;
  /** A fixed port, e.g. to restart an IdP where a gateway expects it; defaults to a free one. */
  port?: number;
  /** client_credentials clients whose access tokens are JWTs for their audience (the gateway's `bearer: true` routes). */
  apiClients?: TestIdpApiClient[];
  /** Defaults to `off`: the discovery document then has no pushed_authorization_request_endpoint. */
  pushedAuthorizationRequests?: PushedAuthorizationRequestsMode;
}

/** A client assertion (private_key_jwt) as the IdP received it: decoded, not verified. */
export interface ClientAssertionSeen {
  /** `token`, `pushed_authorization_request`, `revocation` or `introspection`. */
  endpoint: string;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

export interface TestIdpStats {
  /** Successful refresh_token grants per sub. */
  refreshGrants: Record<string, number>;
  /** Failed refresh_token grants per sub, or `unknown` when the token could not be tied to one. */
  refreshErrors: Record<string, number>;
  /** Successful authorization_code grants. */
  codeGrants: number;
  /** Every POST that reached the token endpoint, injected failures included. */
  tokenRequests: number;
  /** Token requests answered by `setTokenFailure` instead of the provider. */
  injectedFailures: number;
  /** RFC 8693 token exchanges per "sub audience". */
  tokenExchanges: Record<string, number>;
  /**
   * How clients authenticated, per "endpoint method": e.g. `token private_key_jwt`,
   * `pushed_authorization_request client_secret_post`, `revocation client_secret_basic`
   * (`none` when no credential came). Counted whether or not the IdP accepted it.
   */
  clientAuthentications: Record<string, number>;
  /** The last client assertion presented at any endpoint. */
  lastClientAssertion: ClientAssertionSeen | null;
  /** Pushed authorization requests the IdP accepted (201). */
  pushedAuthorizationRequests: number;
  /** Requests reaching the authorization endpoint by `request_uri` (pushed) or with their parameters in the URL (plain). */
  authorizationRequests: { pushed: number; plain: number };
}

/** The test IdP (oidc-provider 9) running in its own process. */
export interface TestIdp {
  /** `http://localhost:PORT` */
  readonly issuer: string;
  readonly port: number;
  /** Delays every token endpoint request by `ms` before it is answered; 0 turns it off. */
  setTokenDelay(ms: number): Promise<void>;
  /**
   * Makes the token endpoint answer `status` with an OAuth error body
   * (503 gives `temporarily_unavailable`); `null` restores normal answers.
   */
  setTokenFailure(status: number | null, error?: string): Promise<void>;
  /** Makes the pushed authorization request endpoint answer `status` with an OAuth error body; `null` restores it. */
  setParFailure(status: number | null, error?: string): Promise<void>;
  stats(): Promise<TestIdpStats>;
  /** Whom and which audience a token from an RFC 8693 exchange is for (empty when it is not one). */
  exchangedToken(token: string): Promise<{ sub?: string; audience?: string }>;
  /** Revokes every grant, code and token of `sub`; resolves to the number of grants revoked. */
  revokeGrants(sub: string): Promise<number>;
  /** Clears counters, delay and failures. Grants and sessions stay. */
  reset(): Promise<void>;
  /** A client_credentials access token (an RS256 JWT for the client's audience) from the token endpoint. */
  clientCredentialsToken(client: Pick<TestIdpApiClient, 'client_id' | 'client_secret'>): Promise<string>;
  /** A new RS256 signing key of the IdP; published in its JWKS unless `publish` is false. Resolves to its kid. */
  addSigningKey(options?: { publish?: boolean }): Promise<string>;
  /** `claims` exactly as given, signed RS256 with the IdP's key (or the key `kid` from addSigningKey); header typ at+jwt unless `header` says otherwise. */
  signToken(claims: Record<string, unknown>, options?: { kid?: string; header?: Record<string, unknown> }): Promise<string>;
  /**
   * Replaces the default claims of the account `sub` (any login name is an
   * account: email `<sub>@example.test`, verified, groups `users`, `admins`
   * for alice) in its ID tokens and userinfo from its next login on.
   */
  setAccountClaims(sub: string, claims: Record<string, unknown>): Promise<void>;
  /** GET requests the JWKS endpoint has answered since the IdP started. */
  jwksRequests(): Promise<number>;
  /** Kills the process and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

export const TEST_CLIENT_ID = 'bff-test';
export const TEST_CLIENT_SECRET = 'bff-test-secret-0123456789abcdef';

/** An API client at the test IdP: client_credentials only; its tokens carry `aud` = `audience` and `claims`. */
export interface TestIdpApiClient {
  client_id: string;
  client_secret: string;
  audience: string;
  claims?: Record<string, unknown>;
}

/** The canonical gateway client, with overrides. */
export function bffTestClient(overrides: Partial<TestIdpClient> & Pick<TestIdpClient, 'redirect_uris'>): TestIdpClient {
  return {
    client_id: TEST_CLIENT_ID,
    client_secret: TEST_CLIENT_SECRET,
    post_logout_redirect_uris: [],
    ...overrides,
  };
}

const REPO_ROOT = resolve(__dirname, '..', '..');
const IDP_SCRIPT = resolve(__dirname, 'idp', 'test-idp.mts');
// Importing oidc-provider and generating an RSA key takes about a second; the rest is CI margin.
const READY_TIMEOUT_MS = 20_000;
// READY is looked for in the output this often.
const READY_POLL_INTERVAL_MS = 20;
const CONTROL_TIMEOUT_MS = 10_000;
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 300;

/** The test IdP script runs on Node's type stripping, which needs Node 24 (the `node` dev dependency). */
function nodeBinary(): string {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 24 ? process.execPath : resolve(REPO_ROOT, 'node_modules', '.bin', 'node');
}

/** Starts the test IdP and resolves once it printed `READY`. */
export async function startTestIdp(options: StartTestIdpOptions): Promise<TestIdp> {
  return options.port === undefined ? withFreePort((port) => spawnIdp(port, options)) : spawnIdp(options.port, options);
}

async function spawnIdp(port: number, options: StartTestIdpOptions): Promise<TestIdp> {
  const issuer = `http://localhost:${port}`;
  const config = {
    port,
    issuer,
    clients: options.clients,
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
    idTokenTtlSeconds: options.idTokenTtlSeconds,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds,
    pushedAuthorizationRequests: options.pushedAuthorizationRequests,
    apiClients: options.apiClients,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_IDP_CONFIG: JSON.stringify(config) };
  // Jest's --experimental-vm-modules is meant for the test process, not for the IdP.
  delete env.NODE_OPTIONS;

  const server = await startGuarded(nodeBinary(), ['--disable-warning=ExperimentalWarning', IDP_SCRIPT], {
    cwd: REPO_ROOT,
    env,
    // stdin stays open and unused: the IdP also exits when it closes.
    stdin: 'pipe',
    name: `test IdP on port ${port}`,
    readiness: 'print READY',
    // The IdP prints exactly one line on stdout, `READY <issuer>`, once it listens; its stderr lines are `test-idp: ...`.
    isReady: (idp) => idp.output().split('\n').some((line) => line.trim() === `READY ${issuer}`),
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: READY_POLL_INTERVAL_MS,
    outputLabel: 'test IdP',
    portInUse: /EADDRINUSE|cannot listen/,
  });
  return new TestIdpProcess(issuer, port, server);
}

class TestIdpProcess implements TestIdp {
  readonly issuer: string;
  readonly port: number;
  private server: GuardedProcess | undefined;
  private readonly controlBase: string;

  constructor(issuer: string, port: number, server: GuardedProcess) {
    this.issuer = issuer;
    this.port = port;
    this.server = server;
    this.controlBase = `http://127.0.0.1:${port}/__test`;
  }

  async setTokenDelay(ms: number): Promise<void> {
    await this.control('POST', 'token-delay', { ms });
  }

  async setTokenFailure(status: number | null, error?: string): Promise<void> {
    await this.control('POST', 'token-failure', error === undefined ? { status } : { status, error });
  }

  async setParFailure(status: number | null, error?: string): Promise<void> {
    await this.control('POST', 'par-failure', error === undefined ? { status } : { status, error });
  }

  async stats(): Promise<TestIdpStats> {
    return (await this.control('GET', 'stats')) as TestIdpStats;
  }

  async exchangedToken(token: string): Promise<{ sub?: string; audience?: string }> {
    return (await this.control('GET', `exchanged?token=${encodeURIComponent(token)}`)) as { sub?: string; audience?: string };
  }

  async revokeGrants(sub: string): Promise<number> {
    const answer = (await this.control('POST', 'revoke-grants', { sub })) as { revokedGrants: number };
    return answer.revokedGrants;
  }

  async reset(): Promise<void> {
    await this.control('POST', 'reset', {});
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }

  async clientCredentialsToken(client: Pick<TestIdpApiClient, 'client_id' | 'client_secret'>): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${this.port}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
      signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`test IdP client_credentials for ${client.client_id} answered ${response.status}: ${text}`);
    return (JSON.parse(text) as { access_token: string }).access_token;
  }

  async addSigningKey(options: { publish?: boolean } = {}): Promise<string> {
    return ((await this.control('POST', 'api/keys', { publish: options.publish ?? true })) as { kid: string }).kid;
  }

  async signToken(claims: Record<string, unknown>, options: { kid?: string; header?: Record<string, unknown> } = {}): Promise<string> {
    return ((await this.control('POST', 'api/sign', { claims, ...options })) as { token: string }).token;
  }

  async setAccountClaims(sub: string, claims: Record<string, unknown>): Promise<void> {
    await this.control('POST', 'api/account-claims', { sub, claims });
  }

  async jwksRequests(): Promise<number> {
    return ((await this.control('GET', 'api/jwks-requests')) as { jwksRequests: number }).jwksRequests;
  }

  private async control(method: 'GET' | 'POST', name: string, body?: unknown): Promise<unknown> {
    if (!this.server) throw new Error(`test IdP ${this.issuer} is stopped`);
    const response = await fetch(`${this.controlBase}/${name}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`test IdP ${method} /__test/${name} answered ${response.status}: ${text}`);
    return JSON.parse(text) as unknown;
  }
}
