import * as client from 'openid-client';
import { DependencyUnavailable, InvalidLoginResponse, RefreshTokenRejected, TokenExchangeRefused } from '../errors/app-error';
import type { Breaker } from '../resilience/breaker';
import type { SessionUser } from '../session/session-data';
import type { Clock } from '../session/session-store';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import type {
  AuthorizationRequest,
  CallbackChecks,
  ExchangedToken,
  IdentityProvider,
  IdentityProviderStatus,
  LoginResult,
  RefreshedTokens,
} from './identity-provider';
import { readGroups } from './groups-claim';
import { ASYMMETRIC_ALGORITHMS, LogoutTokenVerifier, type LogoutTokenClaims } from './logout-token';

export interface OpenIdProviderOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
  /** OIDC_GROUPS_CLAIM; see `readGroups`. */
  readonly groupsClaim: string | undefined;
  readonly redirectUri: string;
  readonly timeoutMs: number;
  /** Plain-http issuers are only for development and tests. */
  readonly allowHttp: boolean;
  readonly breaker: Breaker;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
}

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** Discovery backoff: 0.5 s doubling to 30 s, so an IdP that comes up late is found quickly. */
const DISCOVERY_BACKOFF_MS = { initial: 500, max: 30_000 };

/**
 * The IdP over openid-client 6. Discovery runs in the background with
 * backoff: an IdP that is down at start-up makes the gateway not ready,
 * never dead. Every call goes through the IdP breaker; protocol refusals
 * (4xx, validation failures) do not count against the IdP.
 */
export class OpenIdIdentityProvider implements IdentityProvider {
  private configuration: client.Configuration | undefined;
  /** Built from the configuration it was made for, so it follows a re-discovery. */
  private logoutTokens: { readonly configuration: client.Configuration; readonly verifier: LogoutTokenVerifier } | undefined;
  private lastError: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private isStopped = false;
  private readonly discovered: Promise<void>;
  private resolveDiscovered: () => void = () => {};

  constructor(private readonly options: OpenIdProviderOptions) {
    this.discovered = new Promise((resolve) => (this.resolveDiscovered = resolve));
  }

  /** Starts discovery in the background (with back-off); the composition root calls it once everything is wired. */
  start(): void {
    void this.discover(DISCOVERY_BACKOFF_MS.initial);
  }

  /** Resolves once metadata is loaded (tests and the dev IdP wait on it). */
  whenReady(): Promise<void> {
    return this.discovered;
  }

  status(): IdentityProviderStatus {
    return { isReady: this.configuration !== undefined, issuer: this.options.issuer, lastError: this.lastError };
  }

  async startLogin(): Promise<AuthorizationRequest> {
    const configuration = this.requireConfiguration();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.options.redirectUri,
      scope: this.options.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, nonce, codeVerifier };
  }

  async finishLogin(callbackUrl: URL, checks: CallbackChecks): Promise<LoginResult> {
    const configuration = this.requireConfiguration();
    const started = performance.now();
    const tokens = await this.call('authorization_code', () =>
      client.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.expectedState,
        expectedNonce: checks.expectedNonce,
        idTokenExpected: true,
      }),
    ).catch((error: unknown) => {
      if (!isProtocolRefusal(error)) throw error;
      this.options.metrics.tokenValidation.inc({ token_type: 'id_token', status: 'invalid' });
      throw new InvalidLoginResponse(describeLoginFailure(error), error);
    });
    const claims = tokens.claims();
    if (!claims) throw new InvalidLoginResponse('the identity provider returned no ID token');
    this.options.metrics.tokenValidation.inc({ token_type: 'id_token', status: 'valid' });
    const userInfo = await this.fetchUserInfo(configuration, tokens.access_token, claims.sub);
    this.options.metrics.oauthFlowDuration.observe({ flow_type: 'authorization_code' }, (performance.now() - started) / 1000);
    return {
      tokens: {
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        idToken: tokens.id_token,
        accessTokenExpiresAt: this.expiresAt(tokens.expiresIn()),
        accessTokenIssuedAt: this.options.clock.now(),
      },
      user: toSessionUser({ ...claims, ...userInfo, sub: claims.sub }, this.options.groupsClaim),
      idpSessionId: typeof claims.sid === 'string' ? claims.sid : undefined,
    };
  }

  async refresh(refreshToken: string): Promise<RefreshedTokens> {
    const configuration = this.requireConfiguration();
    const started = performance.now();
    try {
      const tokens = await this.call('refresh_token', () => client.refreshTokenGrant(configuration, refreshToken));
      return {
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        idToken: tokens.id_token,
        accessTokenExpiresAt: this.expiresAt(tokens.expiresIn()),
        accessTokenIssuedAt: this.options.clock.now(),
      };
    } catch (error) {
      if (isInvalidGrant(error)) throw new RefreshTokenRejected(error);
      throw error instanceof DependencyUnavailable ? error : new DependencyUnavailable('idp', error);
    } finally {
      this.options.metrics.oauthFlowDuration.observe({ flow_type: 'refresh_token' }, (performance.now() - started) / 1000);
    }
  }

  async exchange(subjectToken: string, audience: string): Promise<ExchangedToken> {
    const configuration = this.requireConfiguration();
    try {
      const tokens = await this.call('token_exchange', () =>
        client.genericGrantRequest(configuration, TOKEN_EXCHANGE_GRANT, {
          subject_token: subjectToken,
          subject_token_type: ACCESS_TOKEN_TYPE,
          requested_token_type: ACCESS_TOKEN_TYPE,
          audience,
        }),
      );
      return { accessToken: tokens.access_token, expiresAt: this.expiresAt(tokens.expiresIn()) };
    } catch (error) {
      if (isProtocolRefusal(error)) throw new TokenExchangeRefused(audience, error);
      throw error instanceof DependencyUnavailable ? error : new DependencyUnavailable('idp', error);
    }
  }

  async revoke(token: string, tokenTypeHint: 'refresh_token' | 'access_token'): Promise<void> {
    const configuration = this.requireConfiguration();
    if (!configuration.serverMetadata().revocation_endpoint) return;
    await this.options.breaker.run(() => client.tokenRevocation(configuration, token, { token_type_hint: tokenTypeHint }));
  }

  logoutUrl(idTokenHint: string | undefined, postLogoutRedirectUri: string): string | undefined {
    const configuration = this.configuration;
    if (!configuration?.serverMetadata().end_session_endpoint) return undefined;
    return client.buildEndSessionUrl(configuration, {
      post_logout_redirect_uri: postLogoutRedirectUri,
      client_id: this.options.clientId,
      ...(idTokenHint ? { id_token_hint: idTokenHint } : {}),
    }).href;
  }

  async verifyLogoutToken(logoutToken: string): Promise<LogoutTokenClaims> {
    return this.logoutTokenVerifier(this.requireConfiguration()).verify(logoutToken);
  }

  stop(): void {
    this.isStopped = true;
    clearTimeout(this.retryTimer);
  }

  private async discover(delayMs: number): Promise<void> {
    if (this.isStopped) return;
    try {
      const configuration = await client.discovery(
        new URL(this.options.issuer),
        this.options.clientId,
        { client_secret: this.options.clientSecret },
        client.ClientSecretBasic(this.options.clientSecret),
        {
          timeout: Math.ceil(this.options.timeoutMs / 1000),
          // Verify ID token signatures against the IdP's JWKS too, not only TLS to the token endpoint (SPEC section 3).
          execute: this.options.allowHttp
            ? [client.allowInsecureRequests, client.enableNonRepudiationChecks]
            : [client.enableNonRepudiationChecks],
          [client.customFetch]: this.instrumentedFetch('discovery'),
        },
      );
      configuration.timeout = Math.ceil(this.options.timeoutMs / 1000);
      configuration[client.customFetch] = this.instrumentedFetch(undefined);
      this.configuration = configuration;
      this.lastError = undefined;
      this.options.logger.info({ issuer: this.options.issuer }, 'identity provider metadata loaded');
      this.resolveDiscovered();
    } catch (error) {
      this.lastError = (error as Error).message;
      this.options.logger.warn(
        { issuer: this.options.issuer, err: this.lastError, retryInMs: delayMs },
        'identity provider discovery failed; retrying',
      );
      this.retryTimer = setTimeout(() => void this.discover(Math.min(delayMs * 2, DISCOVERY_BACKOFF_MS.max)), delayMs);
      this.retryTimer.unref();
    }
  }

  private requireConfiguration(): client.Configuration {
    if (!this.configuration) {
      throw new DependencyUnavailable('idp', new Error(`metadata of ${this.options.issuer} not loaded yet: ${this.lastError ?? 'discovery pending'}`));
    }
    return this.configuration;
  }

  private logoutTokenVerifier(configuration: client.Configuration): LogoutTokenVerifier {
    if (this.logoutTokens?.configuration === configuration) return this.logoutTokens.verifier;
    const metadata = configuration.serverMetadata();
    if (!metadata.jwks_uri) {
      throw new DependencyUnavailable('idp', new Error(`${metadata.issuer} publishes no jwks_uri: logout tokens cannot be verified`));
    }
    // What the IdP says it signs ID tokens (and so logout tokens) with, asymmetric only.
    const advertised = metadata.id_token_signing_alg_values_supported ?? [];
    const algorithms = ASYMMETRIC_ALGORITHMS.filter((alg) => advertised.includes(alg));
    const fetchKeys = this.instrumentedFetch(undefined);
    const verifier = new LogoutTokenVerifier({
      issuer: metadata.issuer,
      jwksUri: metadata.jwks_uri,
      clientId: this.options.clientId,
      algorithms: algorithms.length > 0 ? algorithms : undefined,
      timeoutMs: this.options.timeoutMs,
      fetch: (url, init) => {
        const headers: Record<string, string> = {};
        init.headers.forEach((value, name) => (headers[name] = value));
        return this.options.breaker.run(() => fetchKeys(url, { method: init.method, redirect: init.redirect, signal: init.signal, headers, body: undefined }));
      },
      clock: this.options.clock,
    });
    this.logoutTokens = { configuration, verifier };
    return verifier;
  }

  /** A grant through the breaker, counted in bff_token_exchange_total. */
  private async call<T>(grantType: string, grant: () => Promise<T>): Promise<T> {
    try {
      const result = await this.options.breaker.run(grant);
      this.options.metrics.tokenExchange.inc({ grant_type: grantType, status: 'success' });
      return result;
    } catch (error) {
      this.options.metrics.tokenExchange.inc({ grant_type: grantType, status: 'failure' });
      throw error;
    }
  }

  private async fetchUserInfo(configuration: client.Configuration, accessToken: string, sub: string): Promise<Record<string, unknown>> {
    if (!configuration.serverMetadata().userinfo_endpoint) return {};
    try {
      return await this.options.breaker.run(() => client.fetchUserInfo(configuration, accessToken, sub));
    } catch (error) {
      // The ID token already identifies the user; missing profile claims are not worth a failed login.
      this.options.logger.warn({ err: (error as Error).message }, 'userinfo request failed; using ID token claims only');
      return {};
    }
  }

  private expiresAt(expiresInSeconds: number | undefined): number {
    // Without expires_in, assume a short life so the token is refreshed rather than trusted for long.
    return this.options.clock.now() + (expiresInSeconds ?? 300) * 1000;
  }

  /** Every IdP request counted and timed by endpoint, whatever openid-client call made it. */
  private instrumentedFetch(fixedEndpoint: string | undefined): client.CustomFetch {
    return async (url, init) => {
      const endpoint = fixedEndpoint ?? this.endpointName(url);
      const started = performance.now();
      try {
        const response = await fetch(url, init as RequestInit);
        this.options.metrics.idpRequests.inc({ endpoint, status: String(response.status) });
        return response;
      } catch (error) {
        this.options.metrics.idpRequests.inc({ endpoint, status: 'error' });
        throw error;
      } finally {
        this.options.metrics.idpLatency.observe({ endpoint }, (performance.now() - started) / 1000);
      }
    };
  }

  private endpointName(url: string): string {
    const metadata = this.configuration?.serverMetadata();
    if (!metadata) return 'discovery';
    const path = url.split('?')[0];
    const endpoints: Array<[string, string | undefined]> = [
      ['token', metadata.token_endpoint],
      ['userinfo', metadata.userinfo_endpoint],
      ['revocation', metadata.revocation_endpoint],
      ['introspection', metadata.introspection_endpoint],
      ['jwks', metadata.jwks_uri],
    ];
    return endpoints.find(([, endpointUrl]) => endpointUrl === path)?.[0] ?? 'other';
  }
}

/** 4xx answers and failed validations: the request was refused, the IdP itself is healthy. */
export function isProtocolRefusal(error: unknown): boolean {
  if (error instanceof client.ResponseBodyError) return error.status < 500;
  if (error instanceof client.AuthorizationResponseError) return true;
  // openid-client reads error bodies of 4xx only: a 5xx arrives as a non-conform response carrying the Response.
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof Response && cause.status >= 500) return false;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('OAUTH_') && code !== 'OAUTH_RESPONSE_IS_NOT_JSON';
}

export function isInvalidGrant(error: unknown): boolean {
  return error instanceof client.ResponseBodyError && error.error === 'invalid_grant';
}

/**
 * What the sign-in page may say. OAuth error codes are shown when they look
 * like one; openid-client's own message (which quotes the response it
 * rejected) stays in the error's cause, for the log.
 */
function describeLoginFailure(error: unknown): string {
  const code = (error as { error?: unknown } | null)?.error;
  const oauthCode = typeof code === 'string' && /^[a-z_]{1,64}$/.test(code) ? code : 'an error';
  if (error instanceof client.AuthorizationResponseError) return `the identity provider answered ${oauthCode}`;
  if (error instanceof client.ResponseBodyError) return `the identity provider refused the code (${oauthCode})`;
  return 'the login response failed validation';
}

function toSessionUser(claims: Record<string, unknown>, groupsClaim: string | undefined): SessionUser {
  const text = (value: unknown) => (typeof value === 'string' && value.length > 0 ? value : undefined);
  const groups = readGroups(claims, groupsClaim);
  return {
    sub: String(claims.sub),
    name: text(claims.name),
    email: text(claims.email),
    preferredUsername: text(claims.preferred_username),
    groups,
  };
}
