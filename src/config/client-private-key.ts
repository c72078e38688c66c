import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** JWS algorithms a `private_key_jwt` client assertion may be signed with (RFC 7518; EdDSA is RFC 8037's Ed25519). */
export const CLIENT_ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type ClientAssertionAlgorithm = (typeof CLIENT_ASSERTION_ALGORITHMS)[number];

/** OIDC_CLIENT_PRIVATE_KEY_FILE, read and checked at start-up. */
export interface ClientPrivateKey {
  readonly file: string;
  /**
   * The private key. A KeyObject serialises as `{}`, so the key material
   * cannot reach a log line or a JSON dump of the configuration by accident.
   */
  readonly key: KeyObject;
  readonly algorithm: ClientAssertionAlgorithm;
  /** The JWK's own `kid`, else its RFC 7638 thumbprint: what the IdP looks the public key up by. */
  readonly kid: string;
  /** The public half as a JWK (with kid, alg and use), ready to register at the IdP. */
  readonly publicJwk: Readonly<JsonWebKey>;
}

/** IdPs refuse shorter RSA keys for client authentication (Keycloak, oidc-provider, FAPI). */
const MIN_RSA_BITS = 2048;

const CURVE_ALGORITHMS: Readonly<Record<string, ClientAssertionAlgorithm>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

/**
 * Reads a PEM (PKCS#8, or PKCS#1/SEC1) or JWK private key file (a JWK, or a
 * JWK set holding exactly one key) and settles its signing algorithm: the
 * one asked for (`OIDC_CLIENT_PRIVATE_KEY_ALG`), else the JWK's `alg`, else
 * the key's own (RS256 for RSA, ES256/384/512 by curve, EdDSA for Ed25519).
 * Every refusal is a sentence about the file, for the start-up error.
 */
export function readClientPrivateKey(
  file: string,
  requestedAlgorithm: ClientAssertionAlgorithm | undefined,
): { readonly key: ClientPrivateKey } | { readonly problem: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { problem: `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const parsed = text.trimStart().startsWith('{') ? parseJwkFile(file, text) : parsePemFile(file, text);
  if ('problem' in parsed) return parsed;
  const { key, jwk } = parsed;

  const derived = algorithmsFor(key);
  if ('problem' in derived) return { problem: `${file} ${derived.problem}` };
  // RFC 9864's fully specified name for EdDSA over Ed25519.
  const jwkAlgorithm = jwk?.alg === 'Ed25519' ? 'EdDSA' : jwk?.alg;
  if (jwkAlgorithm !== undefined && !derived.allowed.includes(jwkAlgorithm as ClientAssertionAlgorithm)) {
    return { problem: `${file} says alg ${JSON.stringify(jwkAlgorithm)}, which ${derived.description} cannot sign a client assertion with (one of ${derived.allowed.join(', ')})` };
  }
  if (requestedAlgorithm !== undefined && !derived.allowed.includes(requestedAlgorithm)) {
    return { problem: `${file} holds ${derived.description}, which cannot sign ${requestedAlgorithm} (one of ${derived.allowed.join(', ')})` };
  }
  if (requestedAlgorithm !== undefined && jwkAlgorithm !== undefined && requestedAlgorithm !== jwkAlgorithm) {
    return { problem: `${file} says alg ${jwkAlgorithm}, but OIDC_CLIENT_PRIVATE_KEY_ALG asks for ${requestedAlgorithm}` };
  }
  const algorithm = requestedAlgorithm ?? (jwkAlgorithm as ClientAssertionAlgorithm | undefined) ?? derived.allowed[0]!;

  const publicJwk = createPublicKey(key).export({ format: 'jwk' });
  const kid = typeof jwk?.kid === 'string' && jwk.kid.length > 0 ? jwk.kid : jwkThumbprint(publicJwk);
  return { key: { file, key, algorithm, kid, publicJwk: { ...publicJwk, kid, alg: algorithm, use: 'sig' } } };
}

type ParsedKey = { readonly key: KeyObject; readonly jwk: (JsonWebKey & { kid?: unknown }) | undefined } | { readonly problem: string };

function parseJwkFile(file: string, text: string): ParsedKey {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: `${file} is neither a PEM private key nor a JWK (its JSON does not parse)` };
  }
  let jwk = json as JsonWebKey & { keys?: unknown; kid?: unknown };
  if (Array.isArray(jwk.keys)) {
    if (jwk.keys.length !== 1) return { problem: `${file} is a JWK set of ${jwk.keys.length} keys; keep only the private key to sign with` };
    jwk = jwk.keys[0] as JsonWebKey;
  }
  if (jwk === null || typeof jwk !== 'object' || typeof jwk.kty !== 'string') return { problem: `${file} is JSON but not a JWK (no "kty")` };
  if (jwk.kty === 'oct') return { problem: `${file} holds a symmetric key; private_key_jwt needs an RSA, EC or Ed25519 private key` };
  if (jwk.d === undefined) return { problem: `${file} holds a public key only; the gateway needs the private key (the IdP gets the public one)` };
  try {
    return { key: createPrivateKey({ key: jwk, format: 'jwk' }), jwk };
  } catch (error) {
    return { problem: `${file} holds a JWK that is not a usable private key (${(error as Error).message})` };
  }
}

function parsePemFile(file: string, text: string): ParsedKey {
  if (!text.includes('-----BEGIN')) return { problem: `${file} is neither a PEM private key nor a JWK` };
  if (text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type: 4,ENCRYPTED/.test(text)) {
    return { problem: `${file} holds an encrypted key; store it unencrypted, readable by the gateway only (openssl pkcs8 -topk8 -nocrypt)` };
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    return { problem: `${file} holds no private key (a certificate or public key?); the gateway needs the private key` };
  }
  try {
    return { key: createPrivateKey(text), jwk: undefined };
  } catch {
    return { problem: `${file} does not hold a PEM private key that can be parsed` };
  }
}

function algorithmsFor(
  key: KeyObject,
): { readonly allowed: readonly ClientAssertionAlgorithm[]; readonly description: string } | { readonly problem: string } {
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) return { problem: `holds a ${bits}-bit RSA key; use at least ${MIN_RSA_BITS} bits` };
      return { allowed: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'], description: 'an RSA key' };
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
      const algorithm = CURVE_ALGORITHMS[curve];
      if (!algorithm) return { problem: `holds an EC key on curve ${curve}; use P-256, P-384 or P-521` };
      return { allowed: [algorithm], description: `an EC key on ${curve}` };
    }
    case 'ed25519':
      return { allowed: ['EdDSA'], description: 'an Ed25519 key' };
    case 'rsa-pss':
      return { problem: 'holds an RSA-PSS-only key; use a plain RSA key (PKCS#8 "PRIVATE KEY") with OIDC_CLIENT_PRIVATE_KEY_ALG=PS256' };
    default:
      return { problem: `holds a ${key.asymmetricKeyType ?? 'unknown'} key; use an RSA, EC (P-256, P-384, P-521) or Ed25519 key` };
  }
}

/** RFC 7638: SHA-256 over the required public members in lexicographic order, base64url. */
export function jwkThumbprint(publicJwk: JsonWebKey): string {
  const required: Record<string, readonly string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
  const members = required[publicJwk.kty ?? ''];
  if (!members) throw new Error(`no RFC 7638 thumbprint for key type ${publicJwk.kty}`);
  const canonical = JSON.stringify(Object.fromEntries(members.map((member) => [member, publicJwk[member as keyof JsonWebKey]])));
  return createHash('sha256').update(canonical).digest('base64url');
}
