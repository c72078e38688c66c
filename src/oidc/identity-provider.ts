import type { SessionUser, TokenSet } from '../session/session-data';
import type { LogoutTokenClaims } from './logout-token';

/** What /auth/login needs to send the browser to the IdP. */
export interface AuthorizationRequest {
  readonly url: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** The security inputs of a callback: explicit arguments, never ambient state. */
export interface CallbackChecks {
  readonly expectedState: string;
  readonly expectedNonce: string;
  readonly codeVerifier: string;
}

export interface LoginResult {
  readonly tokens: TokenSet;
  readonly user: SessionUser;
  /** The IdP's `sid` claim, when it sends one. */
  readonly idpSessionId: string | undefined;
}

/** A refresh grant's answer; the IdP may or may not rotate the refresh token or send a new ID token. */
export interface RefreshedTokens {
  readonly accessToken: string;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
  readonly accessTokenExpiresAt: number;
  readonly accessTokenIssuedAt: number;
}

export interface ExchangedToken {
  readonly accessToken: string;
  readonly expiresAt: number;
}

export interface IdentityProviderStatus {
  readonly isReady: boolean;
  readonly issuer: string;
  readonly lastError: string | undefined;
}

/**
 * The IdP as the gateway uses it. Errors come out typed: `RefreshTokenRejected`
 * when the IdP refuses a refresh token, `InvalidLoginResponse` when a callback
 * cannot be trusted, `DependencyUnavailable` when the IdP cannot answer.
 */
export interface IdentityProvider {
  status(): IdentityProviderStatus;
  startLogin(): Promise<AuthorizationRequest>;
  finishLogin(callbackUrl: URL, checks: CallbackChecks): Promise<LoginResult>;
  refresh(refreshToken: string): Promise<RefreshedTokens>;
  revoke(token: string, tokenTypeHint: 'refresh_token' | 'access_token'): Promise<void>;
  /** RFC 8693: the session's access token exchanged for one meant for `audience`. */
  exchange(subjectToken: string, audience: string): Promise<ExchangedToken>;
  /** RP-initiated logout URL, or undefined when the IdP has no end_session_endpoint. */
  logoutUrl(idTokenHint: string | undefined, postLogoutRedirectUri: string): string | undefined;
  /**
   * OIDC Back-Channel Logout: the claims of a logout token the IdP posted,
   * verified against its metadata and published keys (see LogoutTokenVerifier).
   * Rejects with `InvalidLogoutToken` for a bad token and `DependencyUnavailable`
   * while the metadata or keys cannot be loaded. Replay is the caller's to check.
   */
  verifyLogoutToken(logoutToken: string): Promise<LogoutTokenClaims>;
  stop(): void;
}
