import { isLoginCookieName, LOGIN_COOKIE_BASE_NAME } from '../session/login-cookies';

/**
 * The names the gateway's session cookie has (src/config/load-config.ts): with
 * the `__Host-` prefix an https PUBLIC_URL gives it, and without. Both are
 * removed whichever scheme is configured, so a cookie left over from before a
 * switch to https (or back) does not reach the upstream either; so is every
 * login-transaction cookie (`isLoginCookieName`: `bff-login-<id>`, either prefix).
 */
export const SESSION_COOKIE_NAMES: readonly string[] = ['bff-session', '__Host-bff-session'];

/**
 * The `Cookie` header the upstream gets (SPEC section 4, Duende BFF advisory
 * GHSA-vvg7-p7jw-8qr3): the request's cookies without the gateway's own, so a
 * session id or a login binding never leaves the gateway and the proxy it
 * trusts. `sessionCookieName` is the configured session cookie, removed
 * besides SESSION_COOKIE_NAMES and the login cookies.
 *
 * - A header holding no cookie under those names is returned as it is, byte for byte.
 * - Otherwise every cookie under one of those names goes, however often it
 *   appears; a name is compared the way the gateway finds its session cookie
 *   (`findCookie`: the text before the first "=", trimmed, case-sensitive), so
 *   nothing the gateway would read as its session survives. A segment without
 *   "=" counts as a name.
 * - The other cookies keep their order and their bytes; only the whitespace
 *   around each is dropped, empty segments go, and they are joined with "; "
 *   as user agents send them (RFC 6265 section 5.4).
 * - Nothing left, or no header: "" (the proxy copies an empty header, which
 *   replaces the client's).
 *
 * Runs on every allowed /verify, so the common case (no gateway cookie, or
 * only a few cookies) is a handful of `indexOf` scans and no regular expression.
 */
export function upstreamCookie(header: string | undefined, sessionCookieName: string): string {
  if (!header) return '';
  if (!mentionsGatewayCookie(header, sessionCookieName)) return header;
  let kept = '';
  let isRemoved = false;
  let start = 0;
  while (start <= header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const pair = trimOws(header, start, end);
    if (pair !== '') {
      if (isGatewayCookie(pair, sessionCookieName)) isRemoved = true;
      else kept = kept === '' ? pair : `${kept}; ${pair}`;
    }
    start = end + 1;
  }
  // A name that only appeared inside a value: nothing to remove, the header goes on untouched.
  return isRemoved ? kept : header;
}

/** Every gateway cookie name contains one of these. */
function mentionsGatewayCookie(header: string, sessionCookieName: string): boolean {
  return header.includes(sessionCookieName) || header.includes(LOGIN_COOKIE_BASE_NAME) || header.includes('bff-session');
}

function isGatewayCookie(pair: string, sessionCookieName: string): boolean {
  const equals = pair.indexOf('=');
  // String.prototype.trim, as findCookie does: a name padded with any whitespace is still the session cookie to the gateway.
  const name = (equals === -1 ? pair : pair.slice(0, equals)).trim();
  return name === sessionCookieName || SESSION_COOKIE_NAMES.includes(name) || isLoginCookieName(name);
}

/** The segment between `start` and `end` without surrounding spaces and tabs (HTTP's OWS); other bytes are the cookie's own. */
function trimOws(header: string, start: number, end: number): string {
  while (start < end && isOws(header.charCodeAt(start))) start += 1;
  while (end > start && isOws(header.charCodeAt(end - 1))) end -= 1;
  return header.slice(start, end);
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
