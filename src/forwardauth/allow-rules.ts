/**
 * A route's `allow:` rules (SPEC section 4): who may pass without asking a
 * policy decision point. Any one rule is enough: a group the user is in, a
 * verified email on the list, or a verified email in a listed domain.
 *
 * Lists are normalised once, when the routes file is read (see `parseRoutes`):
 * emails and domains lower-cased, so that a request compares plain strings.
 */
export interface AllowRules {
  /** Exact, case-sensitive group names (OIDC_GROUPS_CLAIM), as the IdP spells them. */
  readonly groups: readonly string[];
  /** Whole addresses, lower-cased. */
  readonly emails: readonly string[];
  /** Domains, lower-cased; each matches itself only, never its subdomains. */
  readonly domains: readonly string[];
}

/** What the rules read of a user: the session's user, or the claims of an API client's token. */
export interface AllowRulesSubject {
  readonly groups: readonly string[];
  readonly email?: string | undefined;
  /** Only `true` lets the email count; absent (older sessions, IdPs without the claim) does not. */
  readonly emailVerified?: boolean | undefined;
}

/** Why the rules let a user through, or why not (the `reason` of the authz_denied event). */
export type AllowVerdict =
  | { readonly isAllowed: true; readonly by: 'group' | 'email' | 'domain' }
  | { readonly isAllowed: false; readonly reason: AllowDenialReason };

export type AllowDenialReason =
  /** The email would match, but the IdP does not say it is verified. */
  | 'email_not_verified'
  /** The email claim is not one address (two `@`, nothing before or after it, spaces): it matches nothing. */
  | 'malformed_email'
  | 'no_matching_rule';

/**
 * Control characters, whitespace and the characters Unicode treats as line
 * or word separators: none belong in an address, and an address carrying one
 * is refused rather than trimmed, so what matched is exactly what the IdP said.
 */
const NOT_IN_ADDRESS = /[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** A DNS name in ASCII (internationalised domains in their xn-- form); labels of letters, digits and inner hyphens. */
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Lower-cases ASCII letters only. `String#toLowerCase` folds some non-ASCII
 * characters onto ASCII ones (the Kelvin sign U+212A becomes "k"), which would
 * let `admin@\u212Aexample.com`-style lookalikes match a listed domain.
 */
export function asciiLowerCase(value: string): string {
  return value.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/**
 * The address split at its one `@`, lower-cased, or undefined when it is not
 * one address: no `@`, more than one (`a@b@example.com` has no single domain
 * and is refused, not read as either), an empty side, or whitespace and
 * control characters anywhere.
 */
export function parseEmail(address: string): { readonly address: string; readonly domain: string } | undefined {
  const at = address.indexOf('@');
  if (at <= 0 || at !== address.lastIndexOf('@') || at === address.length - 1) return undefined;
  if (NOT_IN_ADDRESS.test(address)) return undefined;
  const normalised = asciiLowerCase(address);
  return { address: normalised, domain: normalised.slice(at + 1) };
}

/** A listed domain, lower-cased; undefined unless it is a plain DNS name (no `@`, no leading dot or wildcard, no trailing dot). */
export function parseDomain(domain: string): string | undefined {
  const normalised = asciiLowerCase(domain);
  return DOMAIN.test(normalised) ? normalised : undefined;
}

/**
 * Decides a route's allow rules for a user. Pure: the same rules and user
 * always give the same verdict.
 *
 * Emails and domains count only when the IdP says the email is verified
 * (`email_verified: true`); otherwise anyone who can set an unverified email
 * at the IdP (self-registration, profile edits) could claim a listed one.
 */
export function checkAllowRules(rules: AllowRules, subject: AllowRulesSubject): AllowVerdict {
  if (rules.groups.length > 0 && subject.groups.some((group) => rules.groups.includes(group))) return { isAllowed: true, by: 'group' };
  if ((rules.emails.length === 0 && rules.domains.length === 0) || subject.email === undefined) return deny('no_matching_rule');
  const email = parseEmail(subject.email);
  if (!email) return deny('malformed_email');
  const by = rules.emails.includes(email.address) ? 'email' : rules.domains.includes(email.domain) ? 'domain' : undefined;
  if (!by) return deny('no_matching_rule');
  // Checked after the match so that the denial says what an operator needs to hear.
  if (subject.emailVerified !== true) return deny('email_not_verified');
  return { isAllowed: true, by };
}

function deny(reason: AllowDenialReason): AllowVerdict {
  return { isAllowed: false, reason };
}
