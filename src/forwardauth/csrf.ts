export type CsrfViolation = 'missing_header' | 'origin_mismatch' | 'cross_site';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const ALLOWED_FETCH_SITES = new Set(['same-origin', 'same-site', 'none']);

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method);
}

/**
 * Unsafe methods need `X-CSRF: 1`, a header a cross-site form cannot send
 * and a cross-site fetch cannot send without a CORS preflight we never
 * approve; Origin and Sec-Fetch-Site, when the browser sends them, must
 * agree that the request is not cross-site.
 */
export function findCsrfViolation(
  method: string,
  headers: { readonly csrf: string | undefined; readonly origin: string | undefined; readonly fetchSite: string | undefined },
  publicOrigin: string,
): CsrfViolation | undefined {
  if (!isUnsafeMethod(method)) return undefined;
  if (headers.csrf !== '1') return 'missing_header';
  if (headers.origin !== undefined && headers.origin !== publicOrigin) return 'origin_mismatch';
  if (headers.fetchSite !== undefined && !ALLOWED_FETCH_SITES.has(headers.fetchSite)) return 'cross_site';
  return undefined;
}
