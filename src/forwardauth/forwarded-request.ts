import type { IncomingHttpHeaders } from 'node:http';
import { normalisePath } from './normalise-path';

/** The original request, as the proxy describes it in X-Forwarded-*. */
export interface ForwardedRequest {
  readonly method: string;
  /** Lower case, without port; undefined when the proxy did not say. */
  readonly host: string | undefined;
  /**
   * Path and query as sent: what the browser returns to after login. Raw
   * non-ASCII bytes (which Node hands over one character per byte) are read as
   * the UTF-8 they are.
   */
  readonly uri: string;
  readonly normalisedPath: string;
  /** A top-level browser navigation, which gets a redirect to login instead of a 401. */
  readonly isNavigation: boolean;
}

export type ForwardedRequestProblem = 'missing_forwarded_headers' | 'malformed_forwarded_headers' | 'ambiguous_path';

const METHOD = /^[A-Z]{1,16}$/;
const HOST = /^[a-z0-9.-]{1,253}$/;
const MAX_URI_LENGTH = 8192;

/*
 * X-Forwarded-Method, -Proto, -Host, -Uri, -Port, -Server and -Prefix carry
 * exactly one value (X-Forwarded-For is a list by design and is not checked).
 * Node joins a header sent twice with ", " (HTTP/1.1 and HTTP/2 alike), so
 * "sent twice" and "joined with commas" are one shape by the time the gateway
 * sees them; a proxy and an upstream that each read a different one of the
 * values is Authelia CVE-2021-32637. The patterns for method and host refuse
 * a comma or a space, the URI refuses whitespace, and `hasRepeatedValue`
 * covers the ones /verify does not read (the upstream may read them).
 */
/** Everything but visible ASCII: the common URI needs neither of the checks this guards. */
const UNUSUAL_URI_CHARACTER = /[^\x21-\x7e]/;
/** A request target never holds whitespace (RFC 9112 section 3.2), so ", " in one is two values joined. */
const WHITESPACE = /\s/;
const BEYOND_LATIN1 = /[^\x00-\xff]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the proxy's description of the original request from `headers`, as
 * Node delivers them (`req.headers`: duplicates joined with ", ", one
 * character per byte). For an ordinary ASCII URI the checks added for repeats
 * and raw bytes are a few lookups and one scan: it runs on every /verify.
 */
export function parseForwardedRequest(headers: IncomingHttpHeaders): ForwardedRequest | ForwardedRequestProblem {
  const method = headers['x-forwarded-method'];
  let uri = headers['x-forwarded-uri'];
  if (method === undefined || uri === undefined) return 'missing_forwarded_headers';
  // An array only comes from a caller that built the headers itself; Node joins repeats into one string.
  if (typeof method !== 'string' || typeof uri !== 'string' || hasRepeatedValue(headers)) return 'malformed_forwarded_headers';
  if (!METHOD.test(method) || uri.length > MAX_URI_LENGTH || !uri.startsWith('/')) return 'malformed_forwarded_headers';
  if (UNUSUAL_URI_CHARACTER.test(uri)) {
    if (WHITESPACE.test(uri)) return 'malformed_forwarded_headers';
    const decoded = fromWire(uri);
    if (decoded === undefined) return 'malformed_forwarded_headers';
    uri = decoded;
  }
  let host: string | undefined;
  const rawHost = headers['x-forwarded-host'];
  if (rawHost !== undefined) {
    if (typeof rawHost !== 'string') return 'malformed_forwarded_headers';
    // "app.example.com." names the same host (the root label); route hosts are written without it.
    host = rawHost.replace(/:\d{1,5}$/, '').replace(/\.$/, '').toLowerCase();
    if (!HOST.test(host)) return 'malformed_forwarded_headers';
  }
  const queryAt = uri.indexOf('?');
  const normalisedPath = normalisePath(queryAt === -1 ? uri : uri.slice(0, queryAt));
  if (normalisedPath === undefined) return 'ambiguous_path';
  return { method, host, uri, normalisedPath, isNavigation: isNavigation(method, headers) };
}

/**
 * True when an unread single-valued X-Forwarded-* header (proto, port,
 * server, prefix) holds more than one value: sent twice, or comma-joined.
 * Written out rather than looped over a list: this runs on every /verify.
 */
function hasRepeatedValue(headers: IncomingHttpHeaders): boolean {
  return (
    holdsMore(headers['x-forwarded-proto'], ',') ||
    holdsMore(headers['x-forwarded-port'], ',') ||
    holdsMore(headers['x-forwarded-server'], ',') ||
    // A comma is legal inside one prefix (a path); ", " is not, since whitespace never is.
    holdsMore(headers['x-forwarded-prefix'], ', ')
  );
}

function holdsMore(value: string | string[] | undefined, separator: string): boolean {
  return value !== undefined && (typeof value !== 'string' || value.includes(separator));
}

/**
 * The URI as the characters its bytes encode. Node reads header bytes as
 * Latin-1, so raw UTF-8 (a proxy such as Caddy passes the request target on
 * as the client sent it) arrives as one character per byte; undefined when
 * the bytes are not UTF-8, or when a character could not have come off the
 * wire at all.
 */
function fromWire(uri: string): string | undefined {
  if (BEYOND_LATIN1.test(uri)) return undefined;
  try {
    return UTF8.decode(Buffer.from(uri, 'latin1'));
  } catch {
    return undefined;
  }
}

function isNavigation(method: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET') return false;
  const mode = headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  return (headers.accept ?? '').includes('text/html');
}
