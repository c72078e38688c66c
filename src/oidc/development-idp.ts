import { randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import Provider from 'oidc-provider';

export interface DevelopmentIdp {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly demoUser: string;
  readonly handler: RequestHandler;
}

const DEMO_USER = 'demo';
const CLIENT_ID = 'bff-gateway-dev';

/** Demo accounts: any login name works on the development login page; "demo" is the one printed. */
function claimsOf(accountId: string) {
  return {
    sub: accountId,
    name: accountId === DEMO_USER ? 'Demo User' : accountId,
    preferred_username: accountId,
    email: `${accountId}@example.test`,
    email_verified: true,
    groups: accountId === DEMO_USER ? ['users', 'admins'] : ['users'],
  };
}

/**
 * The embedded IdP of `npm start` without OIDC_ISSUER: oidc-provider mounted
 * at /idp with its built-in development login and consent pages. Refused in
 * production by the configuration; everything lives in memory.
 */
export function createDevelopmentIdp(publicOrigin: string): DevelopmentIdp {
  const issuer = `${publicOrigin}/idp`;
  const clientSecret = randomBytes(24).toString('base64url');
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: clientSecret,
        redirect_uris: [`${publicOrigin}/auth/callback`],
        post_logout_redirect_uris: [`${publicOrigin}/`],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    findAccount: async (_ctx, accountId) => ({ accountId, claims: async () => claimsOf(accountId) }),
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'groups'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 24 * 3600, Interaction: 600, Session: 24 * 3600, Grant: 24 * 3600 },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
  });
  provider.proxy = publicOrigin.startsWith('https:');
  const callback = provider.callback();
  return {
    issuer,
    clientId: CLIENT_ID,
    clientSecret,
    demoUser: DEMO_USER,
    handler: (req, res) => callback(req, res),
  };
}
