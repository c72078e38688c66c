const CONTROL = /[\u0000-\u001f\u007f]/;
const STILL_ENCODED = /%[0-9a-f]{2}/i;
const ENCODED_SEPARATOR = /%(2f|5c)/i;
const ENCODED_DOT = /%2e/i;
/** Letters, digits, "/", "-", "_", "~" and dots that cannot form a dot segment. */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*)*\/?$/;

/**
 * The path a route decision is made on, or undefined when the path is
 * ambiguous: different servers could read it differently, so it is denied
 * rather than guessed (double encoding, encoded separators, backslashes,
 * "#"/"?" hidden in encoding, control characters, ".." above the root).
 * Dot segments resolve, repeated slashes collapse, ";" parameters drop
 * (as servlet containers do) and the result is lower case.
 */
export function normalisePath(rawPath: string): string | undefined {
  // Most API paths need none of the work below: nothing encoded, no dot segments, no parameters.
  if (rawPath.startsWith('/') && PLAIN_PATH.test(rawPath) && !rawPath.includes('//')) {
    const lower = rawPath.toLowerCase();
    return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
  }
  if (!rawPath.startsWith('/') || rawPath.includes('\\') || rawPath.includes('#') || CONTROL.test(rawPath)) return undefined;
  // An encoded separator or dot is read as a separator or dot segment by some servers and not by
  // others; the proxy routes on one reading, so the gateway cannot safely pick either.
  if (ENCODED_SEPARATOR.test(rawPath) || ENCODED_DOT.test(rawPath)) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (STILL_ENCODED.test(decoded) || CONTROL.test(decoded) || /[\\#?]/.test(decoded)) return undefined;
  const segments: string[] = [];
  for (const rawSegment of decoded.split('/')) {
    const segment = rawSegment.split(';', 1)[0] as string;
    // "..;x" is a dot segment to a servlet container and a plain name to Traefik, Go or nginx.
    if ((segment === '.' || segment === '..') && segment !== rawSegment) return undefined;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) return undefined;
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  return `/${segments.join('/')}`.toLowerCase();
}
