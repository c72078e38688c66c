import { createHash, randomBytes } from 'node:crypto';

/**
 * The cookies that bind login transactions to the browser that started them.
 *
 * One cookie per transaction, named after a hash of its `state`
 * (`bff-login-<id>`, `__Host-bff-login-<id>` when PUBLIC_URL is https), so
 * logins started in several tabs at once never overwrite each other's
 * binding (oauth2-proxy #611: one shared cookie, last tab wins). The value
 * is a random secret; the transaction stores only its hash.
 *
 * Why `Path=/` and not `Path=/auth/callback`: the `__Host-` prefix (SPEC
 * section 3) requires `Path=/`, and it is what stops a sibling subdomain from
 * planting a login cookie of its own (cookie tossing, hence login CSRF).
 * `/auth/login` must also see the pending cookies to keep their number
 * bounded. The price is a few bytes on other requests while a login is
 * pending; /verify removes them from what the upstream sees.
 */

/** Every login cookie name starts with this (after the optional `__Host-`). */
export const LOGIN_COOKIE_BASE_NAME = 'bff-login';
const HOST_PREFIX = '__Host-';

/** A login must complete within this; afterwards its transaction and its cookie are gone. */
export const LOGIN_TRANSACTION_TTL_SECONDS = 600;

/**
 * Logins one browser may have pending at once. A browser restoring a dozen
 * tabs of the app starts a dozen logins together; past this, `/auth/login`
 * expires the oldest cookies, so a page that loops on it cannot grow the
 * browser's Cookie header (about 100 bytes each) without limit.
 */
export const MAX_PENDING_LOGINS_PER_BROWSER = 16;

/** 96 bits of sha256(state): distinct per transaction, and short, since it rides on every request while pending. */
const ID_LENGTH = 16;
const VALUE_PATTERN = /^([0-9a-z]{1,11})\.[A-Za-z0-9_-]{43}$/;

/**
 * True for the names of the gateway's login cookies, with or without the
 * `__Host-` prefix, including the single `bff-login` cookie of earlier
 * versions: what /verify removes from the Cookie header sent upstream.
 */
export function isLoginCookieName(name: string): boolean {
  const bare = name.startsWith(HOST_PREFIX) ? name.slice(HOST_PREFIX.length) : name;
  return bare === LOGIN_COOKIE_BASE_NAME || bare.startsWith(`${LOGIN_COOKIE_BASE_NAME}-`);
}

/** The cookie that binds the transaction of `state` to this browser. */
export function loginCookieName(state: string, isSecure: boolean): string {
  const id = createHash('sha256').update(state).digest('base64url').slice(0, ID_LENGTH);
  return `${isSecure ? HOST_PREFIX : ''}${LOGIN_COOKIE_BASE_NAME}-${id}`;
}

/** A new cookie value: when it was issued (to evict the oldest first) and 256 random bits. */
export function newLoginCookieValue(nowMs: number): string {
  return `${Math.floor(nowMs / 1000).toString(36)}.${randomBytes(32).toString('base64url')}`;
}

/** What the transaction stores instead of the cookie value. */
export function loginBindingOf(cookieValue: string): string {
  return createHash('sha256').update(cookieValue).digest('base64url');
}

export interface PendingLoginCookie {
  readonly name: string;
  /** Seconds since the epoch; 0 for a value this version did not write (it goes first). */
  readonly issuedAtSeconds: number;
}

/** The gateway's login cookies in a Cookie header, oldest first. */
export function pendingLoginCookies(cookieHeader: string | undefined): PendingLoginCookie[] {
  if (!cookieHeader || !cookieHeader.includes(LOGIN_COOKIE_BASE_NAME)) return [];
  const pending: PendingLoginCookie[] = [];
  const seen = new Set<string>();
  for (const pair of cookieHeader.split(';')) {
    const equals = pair.indexOf('=');
    const name = (equals === -1 ? pair : pair.slice(0, equals)).trim();
    if (!isLoginCookieName(name) || seen.has(name)) continue;
    seen.add(name);
    const match = VALUE_PATTERN.exec(equals === -1 ? '' : pair.slice(equals + 1).trim());
    pending.push({ name, issuedAtSeconds: match ? parseInt(match[1] as string, 36) : 0 });
  }
  return pending.sort((a, b) => a.issuedAtSeconds - b.issuedAtSeconds);
}

/**
 * The cookies to expire before one more is set: those this version cannot
 * use (the old single cookie, a value it did not write, the other scheme's
 * prefix), then the oldest, so that at most `max` remain with the new one.
 */
export function loginCookiesToEvict(pending: readonly PendingLoginCookie[], isSecure: boolean, max = MAX_PENDING_LOGINS_PER_BROWSER): string[] {
  const isUsable = (cookie: PendingLoginCookie) => cookie.issuedAtSeconds > 0 && cookie.name.startsWith(HOST_PREFIX) === isSecure;
  const unusable = pending.filter((cookie) => !isUsable(cookie));
  const usable = pending.filter(isUsable);
  const excess = Math.max(0, usable.length + 1 - max);
  return [...unusable, ...usable.slice(0, excess)].map((cookie) => cookie.name);
}
