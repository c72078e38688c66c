import 'express-session';

/** Who is logged in, as the SPA and the upstream identity headers see it. */
export interface SessionUser {
  readonly sub: string;
  readonly name?: string;
  readonly email?: string;
  readonly preferredUsername?: string;
  readonly groups: readonly string[];
}

/** The IdP's tokens; only ever stored sealed (see TokenCipher). */
export interface TokenSet {
  readonly accessToken: string;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
  /** Epoch milliseconds. */
  readonly accessTokenExpiresAt: number;
  /** Epoch milliseconds when the access token was obtained; absent in sessions from older versions. */
  readonly accessTokenIssuedAt?: number;
}

/** What a logged-in session holds besides express-session's own `cookie`. */
export interface AuthenticatedSession {
  readonly user: SessionUser;
  /** A sealed TokenSet: a Redis dump alone yields no usable token. */
  readonly tokens: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly absoluteExpiresAt: number;
  /** Hashes of what the session is bound to (SESSION_BINDING). */
  readonly binding: { readonly userAgent?: string; readonly ipPrefix?: string };
  /** The IdP's session id (`sid` claim), for back-channel logout. */
  readonly idpSessionId: string | undefined;
}

declare module 'express-session' {
  interface SessionData {
    auth: AuthenticatedSession;
  }
}

/** A session record as the store keeps it: express-session's format. */
export interface StoredSession {
  cookie: unknown;
  auth?: AuthenticatedSession;
}

/** 256 random bits, base64url: the only shape a session id can have. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export function isWellFormedSessionId(candidate: string): boolean {
  return SESSION_ID.test(candidate);
}

/**
 * Seconds a record may live in the store: the idle timeout, capped by what is
 * left of the absolute lifetime. Idle expiry is the key's TTL itself.
 */
export function sessionTtlSeconds(record: StoredSession, idleTtlSeconds: number, now: number): number {
  const auth = record.auth;
  if (!auth) return idleTtlSeconds;
  const remaining = Math.ceil((auth.absoluteExpiresAt - now) / 1000);
  return Math.min(idleTtlSeconds, remaining);
}
