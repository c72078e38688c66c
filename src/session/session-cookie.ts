import { sign, unsign } from 'cookie-signature';
import { LRUCache } from 'lru-cache';
import { isWellFormedSessionId } from './session-data';

/** Longer values are garbage or an attack; express-session's own cookies are ~80 bytes. */
const MAX_COOKIE_VALUE_LENGTH = 512;

/**
 * Reads the session cookie the way express-session writes it
 * (`s:<id>.<hmac>`, URI-encoded), without the middleware: /verify is the hot
 * path and must not build a session object per request.
 */
export class SessionCookie {
  /** Cookie values whose signature was checked, with their session id: one HMAC per cookie, not per request. */
  private readonly verified = new LRUCache<string, string>({ max: 50_000 });

  constructor(
    readonly name: string,
    private readonly secrets: readonly string[],
  ) {}

  /** The session id when the cookie is present, well-formed and signed by a current secret. */
  sessionIdFrom(cookieHeader: string | undefined): string | undefined {
    const raw = findCookie(cookieHeader, this.name);
    if (raw === undefined || raw.length > MAX_COOKIE_VALUE_LENGTH) return undefined;
    return this.verified.get(raw) ?? this.verify(raw);
  }

  private verify(raw: string): string | undefined {
    let value: string;
    try {
      value = raw.includes('%') ? decodeURIComponent(raw) : raw;
    } catch {
      return undefined;
    }
    if (!value.startsWith('s:')) return undefined;
    const signed = value.slice(2);
    for (const secret of this.secrets) {
      const sessionId = unsign(signed, secret);
      if (sessionId === false) continue;
      if (!isWellFormedSessionId(sessionId)) return undefined;
      this.verified.set(raw, sessionId);
      return sessionId;
    }
    return undefined;
  }

  /** The value express-session would set, for tests and tools. */
  valueFor(sessionId: string): string {
    return encodeURIComponent(`s:${sign(sessionId, this.secrets[0] as string)}`);
  }
}

/** First cookie of that name, as browsers send the most specific one first. */
export function findCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const equals = header.indexOf('=', start);
    if (equals !== -1 && equals < end && header.slice(start, equals).trim() === name) {
      return header.slice(equals + 1, end).trim();
    }
    start = end + 1;
  }
  return undefined;
}
