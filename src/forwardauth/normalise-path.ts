/** C0 controls, DEL and C1 controls. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const STILL_ENCODED = /%[0-9a-f]{2}/i;
const ENCODED_SEPARATOR = /%(2f|5c)/i;
const ENCODED_DOT = /%2e/i;
/** Letters, digits, "/", "-", "_", "~" and dots that cannot form a dot segment. */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*)*\/?$/;
const NON_ASCII = /[^\x00-\x7f]/;
const ASCII_ONLY = /^[\x00-\x7f]*$/;
/**
 * Characters that NFKC keeps but NFKC_Casefold (IDNA and other "normalising"
 * code) deletes: "/adm\u00ADin" is "/admin" there. Deleted here as well, so
 * that a segment they alone keep from being ASCII is caught like any other
 * look-alike, while an emoji with a variation selector still routes.
 */
const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * The path a route decision is made on, or undefined when the path is
 * ambiguous: different servers could read it differently, so it is denied
 * rather than guessed (double encoding, encoded separators, backslashes,
 * "#"/"?" hidden in encoding, control characters, ".." above the root,
 * look-alike characters; see `compatibilityForm`).
 * Dot segments resolve, repeated slashes collapse, ";" parameters drop
 * (as servlet containers do) and the result is NFKC and lower case.
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
  const literal = decoded.split('/');
  let folded = literal;
  if (NON_ASCII.test(decoded)) {
    const compatible = compatibilityForm(decoded);
    if (compatible === undefined) return undefined;
    folded = compatible.split('/');
  }
  const segments: string[] = [];
  for (let index = 0; index < folded.length; index++) {
    const rawSegment = folded[index] as string;
    const segment = rawSegment.split(';', 1)[0] as string;
    // "..;x" is a dot segment to a servlet container and a plain name to Traefik, Go or nginx.
    if ((segment === '.' || segment === '..') && segment !== rawSegment) return undefined;
    // Route prefixes are ASCII: a segment that only NFKC makes ASCII ("ａｄｍｉｎ", "ﬁle", "\u212Aey",
    // "adm\u00ADin") would match a different route for an upstream that normalises Unicode than for one that does not.
    if (folded !== literal && ASCII_ONLY.test(segment) && !ASCII_ONLY.test((literal[index] as string).split(';', 1)[0] as string)) return undefined;
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

/**
 * `decoded` as a server that normalises Unicode reads it (NFKC, lower case,
 * default-ignorable characters deleted), or undefined when that reading has
 * path syntax the literal one has not: NFKC makes "．" (U+FF0E) into ".",
 * "／" (U+FF0F) into "/", "＼" (U+FF3C) and "﹨" (U+FE68) into "\", "‥"
 * (U+2025) into "..", "％" into the "%" of a new escape, and so on for "?",
 * "#" and ";". Canonical composition never consumes one of these ASCII
 * characters, so counting them before and after is exact.
 */
function compatibilityForm(decoded: string): string | undefined {
  const compatible = decoded.normalize('NFKC').toLowerCase().replace(DEFAULT_IGNORABLE, '');
  return countPathSyntax(compatible) === countPathSyntax(decoded) ? compatible : undefined;
}

/** ".", "/", "\", "%", "?", "#" and ";": the characters whose meaning `normalisePath` depends on. */
function countPathSyntax(text: string): number {
  let count = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x2e || code === 0x2f || code === 0x5c || code === 0x25 || code === 0x3f || code === 0x23 || code === 0x3b) count++;
  }
  return count;
}
