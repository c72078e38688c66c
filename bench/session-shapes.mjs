// Sessions of a realistic shape for the benchmarks, one per index, distinct in
// every identifier (subject, IdP session, token ids, signatures), built without
// an IdP: the claims are what the IdP puts in its tokens, the signatures random
// bytes of the right length (they are as incompressible as real ones).
//
//   keycloak  Keycloak 26 with the repository's realm (deploy/keycloak/realm.json):
//             RS256 access token (1,379 characters measured), HS512 refresh token
//             (706) and RS256 ID token (1,318), all JWTs carrying the profile, roles
//             and the Keycloak session id.
//   test-idp  oidc-provider 9 as tests/support/idp/test-idp.mts configures it (the
//             shape issue 8.10 measured at 2.0 KiB per session): opaque 43-character
//             access and refresh tokens, an RS256 ID token (about 800 characters)
//             with the profile, the nonce and the IdP session id.
import { createHash, randomFillSync } from 'node:crypto';

const REALM_ISSUER = 'https://sso.example.com/realms/bff';
const REALM_KID = 'LXFwG5OmfzEjwY97CJDqSAKJhuBG1whKnedhhIBXykE';
const REFRESH_KID = '4dd39c7a-de21-41fe-921c-7d99fb6bdb81';
const CLIENT_ID = 'bff-gateway';
const ABSOLUTE_TTL_MS = 12 * 3_600_000;

// Random bytes from a pool refilled a megabyte at a time: a million sessions need about a dozen values each.
const pool = Buffer.allocUnsafe(1 << 20);
let poolOffset = pool.length;
function randomBytes(size) {
  if (poolOffset + size > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += size;
  return pool.subarray(poolOffset - size, poolOffset);
}

const base64url = (value) => Buffer.from(value).toString('base64url');
const jws = (header, claims, signatureBytes) => `${base64url(header)}.${base64url(JSON.stringify(claims))}.${base64url(randomBytes(signatureBytes))}`;
const uuid = () => {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/** The session id of session `index`: 256 bits, base64url, as the gateway generates them (here derived, so a run can find it again). */
export function benchSessionId(shape, index) {
  return createHash('sha256').update(`bench-session:${shape}:${index}`).digest('base64url');
}

function profile(index) {
  const given = `Given${index}`;
  const family = `Family${index}`;
  return { given, family, name: `${given} ${family}`, username: `user${index}`, email: `user${index}@example.com` };
}

function keycloak(index, now, userAgentHash) {
  const person = profile(index);
  const sub = uuid();
  const sid = randomBytes(18).toString('base64url');
  const iat = Math.floor(now / 1000);
  const roles = ['offline_access', 'app-admin', 'uma_authorization', 'app-user', 'default-roles-bff'];
  const names = { name: person.name, groups: ['staff'], preferred_username: person.username, given_name: person.given, family_name: person.family, email: person.email };
  const rsHeader = `{"alg":"RS256","typ" : "JWT","kid" : "${REALM_KID}"}`;
  const accessToken = jws(rsHeader, {
    exp: iat + 300, iat, auth_time: iat, jti: `onrtac:${uuid()}`, iss: REALM_ISSUER, aud: 'account', sub, typ: 'Bearer', azp: CLIENT_ID, sid, acr: '1',
    realm_access: { roles }, resource_access: { account: { roles: ['manage-account', 'manage-account-links', 'view-profile'] } },
    scope: 'openid email profile', email_verified: true, ...names,
  }, 256);
  const refreshToken = jws(`{"alg":"HS512","typ" : "JWT","kid" : "${REFRESH_KID}"}`, {
    exp: iat + 1800, iat, jti: uuid(), iss: REALM_ISSUER, aud: REALM_ISSUER, sub, typ: 'Refresh', azp: CLIENT_ID, sid,
    scope: 'openid web-origins email profile roles acr basic', reuse_id: uuid(),
  }, 64);
  const idToken = jws(rsHeader, {
    exp: iat + 300, iat, auth_time: iat, jti: uuid(), iss: REALM_ISSUER, aud: CLIENT_ID, sub, typ: 'ID', azp: CLIENT_ID,
    nonce: randomBytes(32).toString('base64url'), sid, at_hash: randomBytes(16).toString('base64url'), acr: '1', email_verified: true, realm_access: { roles }, ...names,
  }, 256);
  return record({ sub, name: person.name, email: person.email, preferredUsername: person.username, groups: roles }, { accessToken, refreshToken, idToken }, sid, now, userAgentHash);
}

function testIdp(index, now, userAgentHash) {
  const person = profile(index);
  const sub = `user-${index}`;
  const sid = randomBytes(32).toString('base64url').slice(0, 43);
  const iat = Math.floor(now / 1000);
  const idToken = jws('{"alg":"RS256","kid":"test-idp-rs256"}', {
    sub, name: person.name, preferred_username: person.username, groups: ['admins', 'users'], email: person.email, email_verified: true,
    nonce: randomBytes(32).toString('base64url'), sid, aud: 'bff-test', exp: iat + 3600, iat, iss: 'http://localhost:35923',
  }, 256);
  const opaque = () => randomBytes(32).toString('base64url').slice(0, 43);
  return record({ sub, name: person.name, email: person.email, preferredUsername: person.username, groups: ['admins', 'users'] }, { accessToken: opaque(), refreshToken: opaque(), idToken }, sid, now, userAgentHash);
}

function record(user, tokens, sid, now, userAgentHash) {
  return {
    auth: {
      user,
      // Valid for an hour: no benchmark request ever needs a refresh.
      tokens: { ...tokens, accessTokenExpiresAt: now + 3_600_000, accessTokenIssuedAt: now },
      createdAt: now,
      absoluteExpiresAt: now + ABSOLUTE_TTL_MS,
      binding: { userAgent: userAgentHash },
      idpSessionId: sid,
      // What every login writes since sessions are listed for their users (GET /auth/sessions).
      frontend: 'default',
      device: 'Chrome 130 on Linux',
    },
  };
}

/** name -> (index, now, hash of the user agent the session is bound to) -> StoredSession */
export const SESSION_SHAPES = { keycloak, 'test-idp': testIdp };
