/**
 * Every spelling under which a client might smuggle in a header that some
 * upstream stack folds onto the real one: each separator position filled with
 * each of "-", "_" and ".", in several casings. Used to prove that no
 * spelling of an identity header reaches the upstream through a proxy.
 */

export const SEPARATORS = ['-', '_', '.'] as const;

/** The casings tried for each separator mix: as written, lower, upper, and alternating letter by letter. */
export const CASINGS: ReadonlyArray<{ readonly name: string; apply(spelling: string): string }> = [
  { name: 'as written', apply: (spelling) => spelling },
  { name: 'lower case', apply: (spelling) => spelling.toLowerCase() },
  { name: 'upper case', apply: (spelling) => spelling.toUpperCase() },
  { name: 'alternating case', apply: alternateCase },
];

/** The 3^n separator mixes of `name` (n = its separators), each as written: 27 for X-Auth-Request-User, 81 for X-Auth-Request-Preferred-Username. */
export function separatorMixesOf(name: string): string[] {
  const parts = name.split(/[-_.]/);
  let mixes = [parts[0]!];
  for (const part of parts.slice(1)) mixes = mixes.flatMap((prefix) => SEPARATORS.map((separator) => `${prefix}${separator}${part}`));
  return mixes;
}

/** Every separator mix of `name` in every casing, without duplicates. */
export function spellingsOf(name: string): string[] {
  return [...new Set(separatorMixesOf(name).flatMap((mix) => CASINGS.map((casing) => casing.apply(mix))))];
}

/**
 * Go's textproto.CanonicalMIMEHeaderKey, the name Traefik matches its
 * authResponseHeadersRegex against: upper case after "-" and at the start,
 * lower case elsewhere; "_" and "." do not start a word. A name with a byte
 * that is not a token character is left as it is.
 */
export function goCanonicalHeaderKey(name: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return name;
  let upper = true;
  let canonical = '';
  for (const character of name) {
    canonical += upper ? character.toUpperCase() : character.toLowerCase();
    upper = character === '-';
  }
  return canonical;
}

function alternateCase(spelling: string): string {
  let index = 0;
  return spelling.replace(/[A-Za-z]/g, (letter) => (index++ % 2 === 0 ? letter.toLowerCase() : letter.toUpperCase()));
}
