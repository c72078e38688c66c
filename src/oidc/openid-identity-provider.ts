import * as client from 'openid-client';
import type { ClientAuthentication } from '../config/config';
import { DependencyUnavailable, InvalidLoginResponse, RefreshTokenRejected, TokenExchangeRefused } from '../errors/app-error';
import type { Breaker } from '../resilience/breaker';
import type { SessionUser } from '../session/session-data';
import type { Clock } from '../shared/clock';
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
import type { IssuerKeys } from './bearer-token-verifier';
import { clientAuthenticationOf, describeClientSetup, pushAuthorizationRequest } from './client-authentication';
import { describeLoginFailure, isInvalidGrant, isProtocolRefusal } from './idp-errors';
import { instrumentedIdpFetch } from './idp-fetch';
import { userFromLogin } from './claims-user';
import { ASYMMETRIC_ALGORITHMS, LogoutTokenVerifier, type LogoutTokenClaims } from './logout-token';

export interface OpenIdProviderOptions {
  readonly issuer: string;
  readonly clientId: string;
  /** Used at every endpoint that authenticates the client: token (code, refresh, exchange), pushed authorization requests, revocation. */
  readonly clientAuthentication: ClientAuthentication;
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

  /** The issuer and its key set's address from the loaded metadata, for API clients' bearer tokens; undefined before discovery. */
  issuerKeys(): IssuerKeys | undefined {
    const metadata = this.configuration?.serverMetadata();
    return metadata && { issuer: metadata.issuer, jwksUri: metadata.jwks_uri };
  }

  /**
   * The authorization request. When the IdP advertises a pushed
   * authorization request endpoint (RFC 9126) the parameters go there, over
   * the back channel with the client authenticated, and the browser carries
   * only client_id and the request_uri; otherwise they ride in the URL.
   */
  async startLogin(): Promise<AuthorizationRequest> {
    const configuration = this.requireConfiguration();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const parameters: Record<string, string> = {
      redirect_uri: this.options.redirectUri,
      scope: this.options.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    };
    const metadata = configuration.serverMetadata();
    let url: URL;
    if (metadata.pushed_authorization_request_endpoint) {
      url = await pushAuthorizationRequest(this.options.breaker, this.options.clientAuthentication.method, configuration, parameters);
    } else if (metadata.require_pushed_authorization_requests === true) {
      throw new DependencyUnavailable('idp', new Error(`${metadata.issuer} requires pushed authorization requests but advertises no pushed_authorization_request_endpoint`));
    } else {
      url = client.buildAuthorizationUrl(configuration, parameters);
    }
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
      user: userFromLogin(claims, userInfo, this.options.groupsClaim),
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

  /**
   * Whether the IdP answers at all, for its breaker's probe while open: its
   * discovery document, which every IdP serves and which costs it nothing.
   */
  async answers(): Promise<void> {
    const discovery = `${this.options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const response = await fetch(discovery, { signal: AbortSignal.timeout(this.options.timeoutMs) });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 500) throw new Error(`the identity provider answered HTTP ${response.status}`);
  }

  stop(): void {
    this.isStopped = true;
    clearTimeout(this.retryTimer);
  }

  private async discover(delayMs: number): Promise<void> {
    if (this.isStopped) return;
    try {
      const { metadata, clientAuth } = clientAuthenticationOf(this.options.clientAuthentication);
      const configuration = await client.discovery(
        new URL(this.options.issuer),
        this.options.clientId,
        metadata,
        clientAuth,
        {
          timeout: Math.ceil(this.options.timeoutMs / 1000),
          // Verify ID token signatures against the IdP's JWKS too, not only TLS to the token endpoint (SPEC section 3).
          execute: this.options.allowHttp
            ? [client.allowInsecureRequests, client.enableNonRepudiationChecks]
            : [client.enableNonRepudiationChecks],
          [client.customFetch]: this.idpFetch('discovery'),
        },
      );
      configuration.timeout = Math.ceil(this.options.timeoutMs / 1000);
      configuration[client.customFetch] = this.idpFetch(undefined);
      this.configuration = configuration;
      this.lastError = undefined;
      this.options.logger.info(
        describeClientSetup(this.options.issuer, this.options.clientAuthentication, configuration.serverMetadata()),
        'identity provider metadata loaded',
      );
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
    const fetchKeys = this.idpFetch(undefined);
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

  private idpFetch(fixedEndpoint: string | undefined): client.CustomFetch {
    return instrumentedIdpFetch(this.options.metrics, () => this.configuration?.serverMetadata(), fixedEndpoint);
  }
}
