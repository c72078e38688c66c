import * as client from 'openid-client';
import type { ClientAssertionAlgorithm } from '../config/client-private-key';
import type { ClientAuthentication } from '../config/config';
import { DependencyUnavailable } from '../errors/app-error';
import type { Breaker } from '../resilience/breaker';

/** WebCrypto's name for each client assertion algorithm (openid-client signs with a CryptoKey). */
const SIGNING_ALGORITHMS: Readonly<Record<ClientAssertionAlgorithm, RsaHashedImportParams | EcKeyImportParams | Algorithm>> = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  RS384: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
  RS512: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
  PS384: { name: 'RSA-PSS', hash: 'SHA-384' },
  PS512: { name: 'RSA-PSS', hash: 'SHA-512' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  ES384: { name: 'ECDSA', namedCurve: 'P-384' },
  ES512: { name: 'ECDSA', namedCurve: 'P-521' },
  EdDSA: { name: 'Ed25519' },
};

/**
 * openid-client's client authentication for the configured method. The
 * Configuration carries it into every call that authenticates the client,
 * so the code, refresh and exchange grants, PAR and revocation all use it.
 */
export function clientAuthenticationOf(authentication: ClientAuthentication): { metadata: Partial<client.ClientMetadata>; clientAuth: client.ClientAuth } {
  switch (authentication.method) {
    case 'client_secret_basic':
      return { metadata: { client_secret: authentication.clientSecret }, clientAuth: client.ClientSecretBasic(authentication.clientSecret) };
    case 'client_secret_post':
      return { metadata: { client_secret: authentication.clientSecret }, clientAuth: client.ClientSecretPost(authentication.clientSecret) };
    case 'private_key_jwt': {
      const { privateKey } = authentication;
      // Node's webcrypto CryptoKey is the global one; only the TypeScript declarations differ (newer key usages).
      const key = privateKey.key.toCryptoKey(SIGNING_ALGORITHMS[privateKey.algorithm], false, ['sign']) as unknown as client.CryptoKey;
      // openid-client names Ed25519 signatures by RFC 9864's "Ed25519"; IdPs (Keycloak, oidc-provider) know "EdDSA".
      const options: client.ModifyAssertionOptions | undefined =
        privateKey.algorithm === 'EdDSA' ? { [client.modifyAssertion]: (header) => void (header.alg = 'EdDSA') } : undefined;
      return {
        metadata: { token_endpoint_auth_method: 'private_key_jwt' },
        clientAuth: client.PrivateKeyJwt({ key, kid: privateKey.kid }, options),
      };
    }
  }
}

/**
 * What an operator checks once the IdP is found: the client authentication
 * method, for private_key_jwt the public key to register at the IdP (a JWK
 * set with its kid and alg; public, so safe to log), and whether logins use
 * pushed authorization requests.
 */
export function describeClientSetup(issuer: string, authentication: ClientAuthentication, metadata: client.ServerMetadata): Record<string, unknown> {
  const pushed = !metadata.pushed_authorization_request_endpoint ? 'not advertised' : metadata.require_pushed_authorization_requests ? 'required' : 'used';
  return {
    issuer,
    clientAuthMethod: authentication.method,
    ...(authentication.method === 'private_key_jwt' ? { publicJwks: { keys: [authentication.privateKey.publicJwk] } } : {}),
    pushedAuthorizationRequests: pushed,
  };
}

/**
 * RFC 9126 through the IdP breaker. An IdP that cannot answer is a 503 like
 * any other outage; one that refuses (4xx: a client not allowed to push, a
 * credential it rejects) is a configuration problem the operator must see
 * in the log, and the browser gets the same 503 rather than a 500.
 */
export async function pushAuthorizationRequest(
  breaker: Breaker,
  authMethod: ClientAuthentication['method'],
  configuration: client.Configuration,
  parameters: Record<string, string>,
): Promise<URL> {
  try {
    return await breaker.run(() => client.buildAuthorizationUrlWithPAR(configuration, parameters));
  } catch (error) {
    if (error instanceof DependencyUnavailable) throw error;
    const code = (error as { error?: unknown } | null)?.error;
    throw new DependencyUnavailable(
      'idp',
      new Error(
        `the identity provider refused the pushed authorization request (${typeof code === 'string' ? code : (error as Error).message}): ` +
          `check the client's registration and OIDC_CLIENT_AUTH_METHOD (${authMethod})`,
        { cause: error },
      ),
    );
  }
}
