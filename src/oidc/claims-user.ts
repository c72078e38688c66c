import type { SessionUser } from '../session/session-data';
import { readGroups } from './groups-claim';

/**
 * The user a set of claims describes: an ID token merged with userinfo at
 * login, or the payload of an API client's access token at /verify.
 * `groupsClaim` is OIDC_GROUPS_CLAIM (see `readGroups`).
 */
export function userFromClaims(claims: Readonly<Record<string, unknown>>, groupsClaim: string | undefined): SessionUser {
  const email = text(claims.email);
  const emailVerified = email === undefined ? undefined : isVerified(claims.email_verified);
  return {
    sub: String(claims.sub),
    name: text(claims.name),
    email,
    ...(emailVerified === undefined ? {} : { emailVerified }),
    preferredUsername: text(claims.preferred_username),
    groups: readGroups(claims, groupsClaim),
  };
}

/**
 * The login's user from the ID token and the userinfo answer, userinfo
 * winning where both speak. `email_verified` is taken from the same source
 * as the `email` it qualifies: a userinfo email is not made "verified" by an
 * ID token that verified another address.
 */
export function userFromLogin(
  idTokenClaims: Readonly<Record<string, unknown>>,
  userInfo: Readonly<Record<string, unknown>>,
  groupsClaim: string | undefined,
): SessionUser {
  const emailSource = text(userInfo.email) !== undefined ? userInfo : idTokenClaims;
  return userFromClaims(
    { ...idTokenClaims, ...userInfo, sub: idTokenClaims.sub, email: emailSource.email, email_verified: emailSource.email_verified },
    groupsClaim,
  );
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * `email_verified` is a JSON boolean (OIDC Core 5.1); some IdPs send the
 * string "true" from userinfo (Amazon Cognito). Anything else is "not verified".
 */
function isVerified(value: unknown): boolean {
  return value === true || value === 'true';
}
