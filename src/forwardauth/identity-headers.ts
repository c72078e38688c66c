import type { SessionUser } from '../session/session-data';

const IDENTITY_HEADERS = [
  'X-Auth-Request-User',
  'X-Auth-Request-Email',
  'X-Auth-Request-Preferred-Username',
] as const;

/**
 * Spellings some upstream stacks fold onto the same name (CGI/WSGI map "_"
 * and "-" together; some parsers accept "."). The gateway sends them empty on
 * every 2xx so the proxy's authResponseHeaders overwrites whatever a client
 * smuggled in under them.
 */
export const SPOOFABLE_VARIANTS: readonly string[] = IDENTITY_HEADERS.flatMap((name) => {
  const suffix = name.slice('X-Auth-Request-'.length);
  return [
    name.replaceAll('-', '_'),
    name.replaceAll('-', '.'),
    `X-Auth-Request_${suffix.replaceAll('-', '_')}`,
    `X-Auth-Request.${suffix.replaceAll('-', '.')}`,
  ];
});

/** Every header the proxy must copy from a 2xx (Traefik `authResponseHeaders`). */
export const AUTH_RESPONSE_HEADERS: readonly string[] = ['Authorization', ...IDENTITY_HEADERS, ...SPOOFABLE_VARIANTS, 'X-Request-ID'];

const EMPTY_VARIANTS: readonly string[] = SPOOFABLE_VARIANTS.flatMap((variant) => [variant, '']);

/**
 * The identity headers of an allowed request, all present, empty when there
 * is no value; as the flat [name, value, name, value, ...] list that
 * `writeHead` takes without building a header object; `more` is appended.
 */
export function identityHeaders(user: SessionUser | undefined, accessToken: string | undefined, ...more: string[]): string[] {
  return [
    'Authorization',
    accessToken ? `Bearer ${accessToken}` : '',
    'X-Auth-Request-User',
    headerSafe(user?.sub),
    'X-Auth-Request-Email',
    headerSafe(user?.email),
    'X-Auth-Request-Preferred-Username',
    headerSafe(user?.preferredUsername),
    ...EMPTY_VARIANTS,
    ...more,
  ];
}

/** Outside printable ASCII, and "%" itself, so that an upstream decoding the value gets back exactly the claim. */
const UNSAFE_IN_HEADER = /[^\x20-\x24\x26-\x7e]/gu;

/** Claims are IdP data: anything outside printable ASCII is percent-encoded, never passed raw into a header. */
function headerSafe(value: string | undefined): string {
  if (!value) return '';
  return value.replace(UNSAFE_IN_HEADER, (character) =>
    Array.from(Buffer.from(character, 'utf8'), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}
