const MAX_LENGTH = 2048;
const MAX_DECODING_DEPTH = 4;
const CONTROL_OR_BACKSLASH = /[\u0000-\u001f\u007f\\]/;

/**
 * Accepts only a same-origin relative path; anything else becomes `fallback`
 * (the frontend's own root: "/", or its path prefix).
 *
 * URL parsing alone is not enough: browsers treat "/\evil" and "//evil" as
 * protocol-relative, strip tabs and newlines before parsing, and a value may
 * be percent-encoded more than once before it reaches us. So every decoded
 * layer is checked for those shapes before the parser gets a say.
 */
export function safeReturnTo(candidate: unknown, publicOrigin: string, fallback = '/'): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > MAX_LENGTH) return fallback;
  let layer = candidate;
  for (let depth = 0; ; depth++) {
    if (!layer.startsWith('/') || layer.startsWith('//') || CONTROL_OR_BACKSLASH.test(layer)) return fallback;
    let decoded: string;
    try {
      decoded = decodeURIComponent(layer);
    } catch {
      return fallback;
    }
    if (decoded === layer) break;
    // Still changing after this many decodings: nobody legitimate encodes a return path like that.
    if (depth === MAX_DECODING_DEPTH) return fallback;
    layer = decoded;
  }
  let resolved: URL;
  try {
    resolved = new URL(candidate, publicOrigin);
  } catch {
    return fallback;
  }
  if (resolved.origin !== publicOrigin) return fallback;
  const result = `${resolved.pathname}${resolved.search}${resolved.hash}`;
  // Dot segments resolve only now ("/.//evil" becomes "//evil"): the result gets the same checks.
  return result.startsWith('//') || result.startsWith('/\\') ? fallback : result;
}
