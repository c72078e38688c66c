import { Store, type CookieOptions, type SessionData } from 'express-session';
import type { AuthenticatedSession } from './session-data';
import type { SessionStore } from './session-store';

declare module 'express-session' {
  interface SessionData {
    auth: AuthenticatedSession;
  }
}

/**
 * The attributes of the session cookie, as given to express-session. Browser
 * sessions only (no `maxAge`, no `expires`): the idle and absolute expiry
 * live in the store, and so the cookie is rebuilt from these alone.
 */
export type SessionCookieAttributes = Pick<CookieOptions, 'httpOnly' | 'secure' | 'sameSite' | 'path' | 'domain'>;

type Callback = (error?: unknown) => void;

/**
 * express-session's Store over the gateway's SessionStore, so the /auth
 * routes and /verify read and write one format through one code path.
 *
 * It behaves as connect-redis 8 does towards express-session: `get` answers
 * null for a missing session, `set` stores for the idle timeout capped by
 * the absolute lifetime (and removes a session whose lifetime is over),
 * `touch` slides the expiry without rewriting the record, `destroy` removes.
 * It differs where the gateway needs it to: `touch` also keeps the
 * active-sessions index in step, every write keeps the back-channel logout
 * indexes, and records are sealed whole (SessionSealer) rather than kept as
 * JSON, which connect-redis's string serializer cannot carry without base64
 * (a third more bytes per session) and whose writes the refresh lock cannot
 * fence. express-session's `cookie` is not stored: it is the same for every
 * session (a browser-session cookie with the attributes above), so it is
 * rebuilt on every load.
 */
export class ExpressSessionAdapter extends Store {
  constructor(
    private readonly sessions: SessionStore,
    private readonly cookie: SessionCookieAttributes,
  ) {
    super();
  }

  override get(sessionId: string, callback: (error: unknown, session?: SessionData | null) => void): void {
    this.sessions.get(sessionId).then(
      (record) => callback(null, record ? { cookie: { ...this.cookie, originalMaxAge: null, expires: null }, auth: record.auth } : null),
      (error: unknown) => callback(error),
    );
  }

  /** A session without a login holds nothing the gateway keeps: it is removed rather than stored. */
  override set(sessionId: string, session: SessionData, callback?: Callback): void {
    settle(session.auth ? this.sessions.save(sessionId, { auth: session.auth }) : this.sessions.destroy(sessionId), callback);
  }

  override touch(sessionId: string, session: SessionData, callback?: Callback): void {
    settle(session.auth ? this.sessions.touch(sessionId, { auth: session.auth }) : Promise.resolve(), callback);
  }

  override destroy(sessionId: string, callback?: Callback): void {
    settle(this.sessions.destroy(sessionId), callback);
  }
}

function settle(operation: Promise<void>, callback: Callback | undefined): void {
  operation.then(
    () => callback?.(),
    (error: unknown) => callback?.(error),
  );
}
