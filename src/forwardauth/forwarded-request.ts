import type { IncomingHttpHeaders } from 'node:http';
import { normalisePath } from './normalise-path';

/** The original request, as the proxy describes it in X-Forwarded-*. */
export interface ForwardedRequest {
  readonly method: string;
  /** Lower case, without port; undefined when the proxy did not say. */
  readonly host: string | undefined;
  /** Path and query exactly as sent: what the browser returns to after login. */
  readonly uri: string;
  readonly normalisedPath: string;
  /** A top-level browser navigation, which gets a redirect to login instead of a 401. */
  readonly isNavigation: boolean;
}

export type ForwardedRequestProblem = 'missing_forwarded_headers' | 'malformed_forwarded_headers' | 'ambiguous_path';

const METHOD = /^[A-Z]{1,16}$/;
const HOST = /^[a-z0-9.-]{1,253}$/;
const MAX_URI_LENGTH = 8192;

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function parseForwardedRequest(headers: IncomingHttpHeaders): ForwardedRequest | ForwardedRequestProblem {
  const method = single(headers['x-forwarded-method']);
  const uri = single(headers['x-forwarded-uri']);
  if (method === undefined || uri === undefined) return 'missing_forwarded_headers';
  if (!METHOD.test(method) || uri.length > MAX_URI_LENGTH || !uri.startsWith('/')) return 'malformed_forwarded_headers';
  let host: string | undefined;
  const rawHost = single(headers['x-forwarded-host']);
  if (rawHost !== undefined) {
    // "app.example.com." names the same host (the root label); route hosts are written without it.
    host = rawHost.replace(/:\d{1,5}$/, '').replace(/\.$/, '').toLowerCase();
    if (!HOST.test(host)) return 'malformed_forwarded_headers';
  }
  const queryAt = uri.indexOf('?');
  const normalisedPath = normalisePath(queryAt === -1 ? uri : uri.slice(0, queryAt));
  if (normalisedPath === undefined) return 'ambiguous_path';
  return { method, host, uri, normalisedPath, isNavigation: isNavigation(method, headers) };
}

function isNavigation(method: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET') return false;
  const mode = headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  return (headers.accept ?? '').includes('text/html');
}
