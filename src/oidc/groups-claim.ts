/**
 * Path segments that name an object's prototype machinery rather than a
 * claim. Claims come from JSON, where `"__proto__"` is an ordinary own key,
 * so a path through one would read whatever the IdP (or anyone who can put a
 * claim in its tokens) placed there: such paths read nothing.
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The user's groups or roles from ID-token or userinfo claims (OIDC_GROUPS_CLAIM).
 *
 * `path` is a claim name or a dotted path into nested claims: Keycloak puts
 * realm roles in `realm_access.roles`, Auth0 and Okta use namespaced claims
 * such as `https://example.com/groups`. A claim whose own name contains dots
 * wins over the nested reading, at every level, so a namespaced URL is never
 * split. Unset: `groups`, else `roles`. Anything but an array counts as none,
 * and only its string members are groups. Only own properties of plain
 * objects are read, never arrays' or prototypes'.
 */
export function readGroups(claims: Readonly<Record<string, unknown>>, path: string | undefined): string[] {
  const value = path === undefined ? (ownValue(claims, 'groups') ?? ownValue(claims, 'roles')) : readPath(claims, path);
  return Array.isArray(value) ? value.filter((group): group is string => typeof group === 'string') : [];
}

function readPath(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  const segments = path.split('.');
  if (segments.some((segment) => PROTOTYPE_KEYS.has(segment))) return undefined;
  return descend(claims, segments);
}

function descend(current: unknown, segments: readonly string[]): unknown {
  if (segments.length === 0) return current;
  if (!isRecord(current)) return undefined;
  // The longest run of segments that is a claim name of its own is taken: `https://example.com/groups` is one claim.
  for (let taken = segments.length; taken > 0; taken -= 1) {
    const name = segments.slice(0, taken).join('.');
    if (Object.hasOwn(current, name)) return descend(current[name], segments.slice(taken));
  }
  return undefined;
}

function ownValue(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  return Object.hasOwn(claims, name) ? claims[name] : undefined;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
