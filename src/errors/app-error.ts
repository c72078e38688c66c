/**
 * The one error type the HTTP layer maps to a response. `expose` decides
 * whether `detail` may reach the client; `cause` never does.
 */
export class AppError extends Error {
  readonly expose: boolean;

  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    readonly detail: string,
    options: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    // A 5xx detail says what broke inside (which dependency, which call): the log has it, the client does not.
    this.expose = status < 500;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  readonly retryAfterSeconds: number | undefined;
}

/** Stable codes; the README's error table is checked against this list by a test. */
export const ERROR_CODES = [
  'bad_request',
  'invalid_login_response',
  'login_expired',
  'unauthenticated',
  'csrf',
  'forbidden',
  'not_found',
  'session_not_found',
  'current_session',
  'payload_too_large',
  'rate_limited',
  'dependency_unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class BadRequest extends AppError {
  constructor(detail: string) {
    super('bad_request', 400, detail);
  }
}

/** The login response could not be trusted: bad state, iss, code or ID token. */
export class InvalidLoginResponse extends AppError {
  constructor(detail: string, cause?: unknown) {
    super('invalid_login_response', 400, detail, { cause });
  }
}

export class Unauthenticated extends AppError {
  constructor(detail = 'no valid session') {
    super('unauthenticated', 401, detail);
  }
}

export class CsrfRejected extends AppError {
  constructor(readonly reason: string) {
    super('csrf', 403, `cross-site request refused (${reason})`);
  }
}

/** A dependency (Redis, IdP, PDP) could not answer; the request may be retried. */
export class DependencyUnavailable extends AppError {
  constructor(
    readonly dependency: string,
    cause?: unknown,
    retryAfterSeconds = 5,
  ) {
    super('dependency_unavailable', 503, `${dependency} is unavailable`, { cause, retryAfterSeconds });
  }
}

/** The IdP refused the refresh token (`invalid_grant`): the session is over, the IdP is fine. */
export class RefreshTokenRejected extends AppError {
  constructor(cause?: unknown) {
    super('unauthenticated', 401, 'the session was ended at the identity provider', { cause });
  }
}

/** The IdP would not exchange the session's token for the route's audience. */
export class TokenExchangeRefused extends AppError {
  constructor(audience: string, cause?: unknown) {
    super('forbidden', 403, `no token for audience ${audience} could be obtained for this user`, { cause });
  }
}

/** The login transaction is unknown, used or expired: the browser should start again. */
export class LoginExpired extends AppError {
  constructor() {
    super('login_expired', 400, 'this login link was already used or has expired; start the login again');
  }
}

/** The logout token cannot be trusted; the back-channel logout endpoint answers 400 `invalid_request`. */
export class InvalidLogoutToken extends AppError {
  constructor(detail: string, cause?: unknown) {
    super('bad_request', 400, detail, { cause });
  }
}

export class RateLimited extends AppError {
  constructor(retryAfterSeconds: number) {
    super('rate_limited', 429, 'too many requests, retry later', { retryAfterSeconds });
  }
}

/** DELETE /auth/sessions/{handle}: no session of this user on this frontend has that handle (gone, or never theirs). */
export class SessionNotFound extends AppError {
  constructor() {
    super('session_not_found', 404, 'none of your sessions has this handle; it may have ended already');
  }
}

/** DELETE /auth/sessions/{handle} named the session making the request: that is a logout, which also ends the IdP session. */
export class CurrentSessionRefused extends AppError {
  constructor() {
    super('current_session', 409, 'this is the session you are using: sign out with POST /auth/logout');
  }
}

export class NotFound extends AppError {
  constructor() {
    super('not_found', 404, 'no such endpoint');
  }
}
