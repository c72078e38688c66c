/**
 * Finds personal data, secrets and prototype-reaching keys in a parsed JSON
 * body (SPEC section 6), before any schema sees it: a schema's own records
 * silently drop an own `__proto__` key (zod does), and with it whatever the
 * key held.
 *
 * Every key and string is read the way a person or a downstream decoder would
 * read it: percent-decoded until it stops changing, then NFKC ("＠" is "@",
 * "４" is "4"), then lower case. A value is then looked at with and without
 * its whitespace, and card numbers with any separators between the digits.
 */

export type SensitiveDataReason = 'prototype_key' | 'sensitive_key' | 'sensitive_value';

export interface SensitiveDataFinding {
  /** Where, as `events[0].attributes.email`; a key that itself looks like data is shown by position only. */
  readonly path: string;
  readonly reason: SensitiveDataReason;
}

/** Keys that reach an object's prototype when assigned. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Found anywhere in a key once separators are removed ("userEmail", "refresh_token", "Set-Cookie"). */
const SENSITIVE_KEY_PARTS = [
  'email',
  'password',
  'passwd',
  'passphrase',
  'token',
  'authorization',
  'authorisation',
  'cookie',
  'secret',
  'creditcard',
  'cardnumber',
  'ccnumber',
  'socialsecurity',
  'apikey',
  'privatekey',
];
/** Too short to look for inside other words ("classname" holds "ssn"): whole words, or the whole key. */
const SENSITIVE_KEY_WORDS = new Set(['ssn', 'pan', 'pwd', 'pin', 'cvv', 'cvc', 'cvv2', 'mail', 'jwt', 'bearer', 'iban']);

const EMAIL = /[\p{L}\p{N}._%+-]+@(?:[\p{L}\p{N}-]+\.)+(\p{L}{2,})/gu;
/** "icon@2x.png" is an asset name, not an address: endings that are file types, not top-level domains. */
const FILE_TYPES = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'avif', 'ico', 'js', 'mjs', 'css', 'map', 'html', 'json', 'woff', 'woff2', 'ttf']);
/** A JOSE compact serialisation: a base64url JSON header ("eyJ" is `{"`), then two dots (JWS) or more (JWE). */
const JWT = /eyJ[A-Za-z0-9_-]{8,}={0,2}\.[A-Za-z0-9_-]*={0,2}\./;
const BEARER = /\bbearer\s+[A-Za-z0-9._~+/-]{16,}/i;
/** Digits with separators between them: up to three of anything that is neither a letter nor a digit. */
const DIGITS_WITH_SEPARATORS = /[0-9](?:[^\p{L}\p{N}]{0,3}[0-9])*/gu;
const SEPARATORS = /[^0-9]+/;
const WHITESPACE = /\s+/gu;
const PERCENT_ESCAPES = /(?:%[0-9a-f]{2})+/gi;
const PERCENT_ESCAPE = /%[0-9a-f]{2}/i;
/** Decodings of one text before it counts as obfuscated: nobody legitimate encodes a value this often. */
const MAX_DECODINGS = 8;
const MIN_CARD_DIGITS = 13;
const MAX_CARD_DIGITS = 19;

/** Every prototype key, sensitive key and sensitive value in `body`, in document order. */
export function findSensitiveData(body: unknown): SensitiveDataFinding[] {
  const findings: SensitiveDataFinding[] = [];
  visit(body, '', false, findings);
  return findings;
}

function visit(value: unknown, path: string, isInAttributes: boolean, findings: SensitiveDataFinding[]): void {
  if (typeof value === 'string') {
    if (isSensitiveValue(value)) findings.push({ path: path || 'body', reason: 'sensitive_value' });
    return;
  }
  // A number is a measurement in `value`; in attributes it may be a card number sent as a number.
  if (typeof value === 'number') {
    if (isInAttributes && Number.isInteger(value) && isSensitiveValue(String(value))) findings.push({ path, reason: 'sensitive_value' });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => visit(item, `${path}[${index}]`, isInAttributes, findings));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  // Own entries only, "__proto__" included: JSON.parse makes it an ordinary own property.
  Object.entries(value).forEach(([key, child], ordinal) => {
    const looksLikeData = isSensitiveValue(key);
    const childPath = `${path}${path ? '.' : ''}${looksLikeData ? `[key ${ordinal}]` : key}`;
    if (isPrototypeKey(key)) findings.push({ path: childPath, reason: 'prototype_key' });
    else if (looksLikeData || isSensitiveKey(key)) findings.push({ path: childPath, reason: 'sensitive_key' });
    visit(child, childPath, isInAttributes || key === 'attributes', findings);
  });
}

/** `__proto__`, `constructor` or `prototype`, in any encoding or case. */
export function isPrototypeKey(key: string): boolean {
  if (PROTOTYPE_KEYS.has(key)) return true;
  const readable = readableForm(key);
  return readable !== undefined && PROTOTYPE_KEYS.has(readable.toLowerCase());
}

/** A key that names personal data or a credential, in any spelling: `e-mail`, `userEmail`, `ACCESS_TOKEN`, `s.s.n`. */
export function isSensitiveKey(key: string): boolean {
  const readable = readableForm(key);
  if (readable === undefined) return true;
  const words = readable
    .replace(/(?<=[\p{Ll}\p{N}])(?=\p{Lu})|(?<=\p{Lu})(?=\p{Lu}\p{Ll})/gu, ' ')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0);
  const joined = words.join('');
  return SENSITIVE_KEY_PARTS.some((part) => joined.includes(part)) || SENSITIVE_KEY_WORDS.has(joined) || words.some((word) => SENSITIVE_KEY_WORDS.has(word));
}

/** A value shaped like an email address, a JWT, a bearer token or a card number (13-19 digits passing Luhn). */
export function isSensitiveValue(value: string): boolean {
  const readable = readableForm(value);
  if (readable === undefined) return true;
  const compact = readable.replace(WHITESPACE, '');
  for (const form of [readable, compact]) {
    if (holdsEmailAddress(form) || JWT.test(form)) return true;
  }
  return BEARER.test(readable) || holdsCardNumber(readable);
}

function holdsEmailAddress(text: string): boolean {
  for (const [, topLevel] of text.matchAll(EMAIL)) {
    if (!FILE_TYPES.has((topLevel as string).toLowerCase())) return true;
  }
  return false;
}

/**
 * `text` percent-decoded until it stops changing, then NFKC; undefined when
 * it is still changing after `MAX_DECODINGS` rounds (deliberately obscured).
 */
function readableForm(text: string): string | undefined {
  let current = text;
  for (let round = 0; PERCENT_ESCAPE.test(current); round++) {
    if (round === MAX_DECODINGS) return undefined;
    const next = current.replace(PERCENT_ESCAPES, decodeEscapes);
    if (next === current) break;
    current = next;
  }
  return current.normalize('NFKC');
}

/** A run of escapes as UTF-8, or byte by byte when it is not UTF-8 ("%40" is "@" either way). */
function decodeEscapes(escapes: string): string {
  try {
    return decodeURIComponent(escapes);
  } catch {
    return escapes.replace(/%([0-9a-f]{2})/gi, (_escape, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  }
}

/**
 * Card numbers with any separators: "4111 1111 1111 1111", "4111.1111.1111.1111",
 * "4111-1111/1111_1111". Within a run of digit groups every window of whole
 * groups with 13-19 digits is tried, so digits before or after the number
 * ("ref 12 4111 1111 1111 1111") do not hide it.
 */
function holdsCardNumber(text: string): boolean {
  for (const [run] of text.matchAll(DIGITS_WITH_SEPARATORS)) {
    if (run.length < MIN_CARD_DIGITS) continue;
    const groups = run.split(SEPARATORS);
    for (let first = 0; first < groups.length; first++) {
      let digits = '';
      for (let last = first; last < groups.length; last++) {
        digits += groups[last];
        if (digits.length > MAX_CARD_DIGITS) break;
        if (digits.length >= MIN_CARD_DIGITS && passesLuhn(digits)) return true;
      }
    }
  }
  return false;
}

function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index++) {
    let digit = digits.charCodeAt(digits.length - 1 - index) - 48;
    if (index % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}
