import type { Request, Response } from 'express';
import { BadRequest, CurrentSessionRefused, SessionNotFound } from '../errors/app-error';
import { isWellFormedHandle, SessionHandles } from '../session/session-handle';
import type { ListedSession, SessionStore } from '../session/session-store';
import { type AuthRouteDependencies, clientAddressOf, revokeRefreshToken } from './auth-context';
import { requireLiveSession } from './login-routes';

export interface UserSessionsDependencies extends AuthRouteDependencies {
  /** This frontend's view of the store (FrontendSessionStore): it lists this frontend's sessions only. */
  readonly sessions: SessionStore;
  /** SESSION_SECRET: the handles are keyed digests under a key derived from the first. */
  readonly sessionSecrets: readonly string[];
}

/** One entry of GET /auth/sessions: what a user needs to recognise a session, and nothing that opens it. */
export interface SessionView {
  readonly handle: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  /** "Firefox 133 on Linux"; null when the browser said nothing recognisable (or the session predates labels). */
  readonly device: string | null;
  readonly current: boolean;
}

/**
 * The user's sessions as the list shows them, newest first. The current
 * session was last seen now, whatever its idle expiry says.
 */
export function sessionViews(
  listed: readonly ListedSession[],
  options: { readonly currentSessionId: string; readonly handleOf: (sessionId: string) => string; readonly now: number },
): SessionView[] {
  return [...listed]
    .sort((a, b) => b.record.auth.createdAt - a.record.auth.createdAt || a.sessionId.localeCompare(b.sessionId))
    .map(({ sessionId, record, lastSeenAt }) => {
      const current = sessionId === options.currentSessionId;
      return {
        handle: options.handleOf(sessionId),
        createdAt: new Date(record.auth.createdAt).toISOString(),
        lastSeenAt: new Date(current ? options.now : lastSeenAt).toISOString(),
        device: record.auth.device ?? null,
        current,
      };
    });
}

/**
 * A user's own sessions on this frontend (issue 10): GET /auth/sessions lists
 * them, DELETE /auth/sessions/{handle} ends one of the others, DELETE
 * /auth/sessions ends all the others ("sign out my other devices"). Only
 * sessions of the requesting session's subject and frontend are ever seen or
 * ended; the DELETEs sit behind the CSRF guard of POST /auth/logout. The
 * current session is not ended here: that is POST /auth/logout, which also
 * hands back the IdP's logout URL.
 */
export function createUserSessionsRoutes(deps: UserSessionsDependencies) {
  const handles = new SessionHandles(deps.sessionSecrets);

  const ownSessions = (sub: string): Promise<ListedSession[]> => deps.sessions.listBySubject(sub);

  /** Ends another session of the user as a logout would, without the IdP logout (that device's IdP session is its own). */
  async function end(req: Request, res: Response, session: ListedSession): Promise<void> {
    const requestId: string | undefined = res.locals.requestId;
    await deps.sessionEnder.end({
      sessionId: session.sessionId,
      subject: session.record.auth.user.sub,
      reason: 'revoked_by_user',
      requestId,
      clientAddress: clientAddressOf(req, deps.trustedProxies),
    });
    // After the session is gone: a slow or unreachable IdP does not keep it alive.
    await revokeRefreshToken(deps, session.record.auth.tokens, requestId);
  }

  return {
    /** GET /auth/sessions */
    list: async (req: Request, res: Response): Promise<void> => {
      res.set('Cache-Control', 'no-store');
      const auth = await requireLiveSession(req, res, deps);
      const sessions = sessionViews(await ownSessions(auth.user.sub), {
        currentSessionId: req.session.id,
        handleOf: (sessionId) => handles.handleOf(sessionId),
        now: deps.clock.now(),
      });
      res.json({ sessions });
    },

    /** DELETE /auth/sessions/{handle} */
    endOne: async (req: Request<{ handle: string }>, res: Response): Promise<void> => {
      res.set('Cache-Control', 'no-store');
      const auth = await requireLiveSession(req, res, deps);
      const { handle } = req.params;
      if (!isWellFormedHandle(handle)) throw new BadRequest('not a session handle: use one from GET /auth/sessions');
      const session = (await ownSessions(auth.user.sub)).find(({ sessionId }) => handles.handleOf(sessionId) === handle);
      if (!session) throw new SessionNotFound();
      if (session.sessionId === req.session.id) throw new CurrentSessionRefused();
      await end(req, res, session);
      res.status(204).end();
    },

    /** DELETE /auth/sessions: every session of the user on this frontend but the current one. */
    endOthers: async (req: Request, res: Response): Promise<void> => {
      res.set('Cache-Control', 'no-store');
      const auth = await requireLiveSession(req, res, deps);
      const others = (await ownSessions(auth.user.sub)).filter(({ sessionId }) => sessionId !== req.session.id);
      await Promise.all(others.map((session) => end(req, res, session)));
      res.json({ ended: others.length });
    },
  };
}
