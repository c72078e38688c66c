import { DEFAULT_FRONTEND } from '../config/config';
/** Who is logged in, as the SPA and the upstream identity headers see it. */
export interface SessionUser {
  readonly sub: string;
  readonly name?: string;
  readonly email?: string;
  /** The IdP's `email_verified`: only a verified email counts for a route's `allow:` emails and domains. */
  readonly emailVerified?: boolean;
  readonly preferredUsername?: string;
  readonly groups: readonly string[];
}

/** The IdP's tokens. In clear only in process memory: at rest they are sealed with the rest of the record (SessionSealer). */
export interface TokenSet {
  readonly accessToken: string;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
  /** Epoch milliseconds. */
  readonly accessTokenExpiresAt: number;
  /** Epoch milliseconds when the access token was obtained. */
  readonly accessTokenIssuedAt?: number;
}

/** Hashes of what the session is bound to (SESSION_BINDING), never the values. */
export interface SessionBindingHashes {
  readonly userAgent?: string;
  readonly ipPrefix?: string;
}

/** A logged-in session: what `req.session.auth` holds on the /auth routes. */
export interface AuthenticatedSession {
  readonly user: SessionUser;
  readonly tokens: TokenSet;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly absoluteExpiresAt: number;
  readonly binding: SessionBindingHashes;
  /** The IdP's session id (`sid` claim), for back-channel logout. */
  readonly idpSessionId: string | undefined;
  /**
   * The frontend (FRONTENDS_FILE) the session was created on: its cookie opens
   * that frontend's routes only. Absent on records written before frontends
   * existed: those belong to DEFAULT_FRONTEND.
   */
  readonly frontend?: string;
  /**
   * A short label of the device the session was created on ("Firefox 133 on
   * Linux", src/session/device-label.ts), for the user's list of their
   * sessions; never the User-Agent itself. Absent on records written before
   * it existed, and when the User-Agent said nothing recognisable.
   */
  readonly device?: string;
}

export { DEFAULT_FRONTEND };

/**
 * What a SessionStore keeps under a session id: the gateway's own format,
 * sealed whole at rest. express-session's `cookie` is not part of it (the
 * adapter rebuilds it, src/session/express-session-adapter.ts).
 */
export interface StoredSession {
  readonly auth: AuthenticatedSession;
}

/** Whether a session belongs to the frontend a match names (any, when it names none). */
export function isOfFrontend(record: StoredSession, match: { readonly frontend?: string }): boolean {
  return match.frontend === undefined || (record.auth.frontend ?? DEFAULT_FRONTEND) === match.frontend;
}

/** 256 random bits, base64url: the only shape a session id can have. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export function isWellFormedSessionId(candidate: string): boolean {
  return SESSION_ID.test(candidate);
}

/**
 * When a session was last used, from when its record expires: every use
 * that slides the idle expiry (a save, a touch) sets it to that moment plus
 * the idle timeout, so the last such use is the expiry minus the idle
 * timeout. Derived rather than stored, because /verify slides the expiry
 * without rewriting the record (src/session/touch-throttle.ts), and storing
 * a time would mean a record write on the hot path. Two consequences: it is
 * as precise as the touch interval (a minute, or a quarter of the idle
 * timeout), and once the absolute lifetime caps the expiry it says the
 * earliest the last use can have been. Never before creation, never after now.
 */
export function lastSeenAt(record: StoredSession, expiresAt: number, idleTtlSeconds: number, now: number): number {
  return Math.min(now, Math.max(record.auth.createdAt, expiresAt - idleTtlSeconds * 1000));
}

/**
 * Seconds a record may live in the store: the idle timeout, capped by what is
 * left of the absolute lifetime. Idle expiry is the key's TTL itself.
 */
export function sessionTtlSeconds(record: StoredSession, idleTtlSeconds: number, now: number): number {
  const remaining = Math.ceil((record.auth.absoluteExpiresAt - now) / 1000);
  return Math.min(idleTtlSeconds, remaining);
}
