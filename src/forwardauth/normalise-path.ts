const CONTROL = /[\u0000-\u001f\u007f]/;
const STILL_ENCODED = /%[0-9a-f]{2}/i;
const ENCODED_SEPARATOR = /%(2f|5c)/i;
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
  if (ENCODED_SEPARATOR.test(rawPath)) return undefined;
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
