/**
 * The user's groups or roles from ID-token or userinfo claims (OIDC_GROUPS_CLAIM).
 *
 * `path` is a claim name or a dotted path into nested claims: Keycloak puts
 * realm roles in `realm_access.roles`, Auth0 and Okta use namespaced claims
 * such as `https://example.com/groups`. A claim whose own name contains dots
 * wins over the nested reading, so a namespaced URL is never split. Unset:
 * `groups`, else `roles`. Anything but an array of strings counts as none.
 */
export function readGroups(claims: Readonly<Record<string, unknown>>, path: string | undefined): string[] {
  const value = path === undefined ? (claims.groups ?? claims.roles) : readPath(claims, path);
  return Array.isArray(value) ? value.filter((group): group is string => typeof group === 'string') : [];
}

function readPath(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
