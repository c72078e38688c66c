import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { Reader, Writer } from './record-fields';
import type { StoredSession, TokenSet } from './session-data';

/**
 * The plaintext of a sealed session record: compact, because Redis holds one
 * per session and the budget is 1.2 KiB per session with its indexes
 * (docs/sessions.md, bench/session-memory.mjs). It is what SessionSealer
 * encrypts; it never leaves the process in clear.
 *
 * Fields are written in a fixed order without names: LEB128 varints for
 * numbers and lengths, UTF-8 for text. A JWT (`header.payload.signature`,
 * canonical base64url) is stored as its three decoded parts: a quarter
 * smaller, and its JSON becomes visible to the compressor. The whole is then
 * deflated (raw, with the preset dictionary below), which removes what the
 * tokens repeat of each other and of the profile (issuer, subject, session
 * id, names, roles).
 *
 * After the tokens come optional fields, each tagged: tag (varint), length
 * (varint), bytes. A field that is absent is not written at all, and a
 * decoder skips a tag it does not know. Records written before the tags
 * existed end after the tokens and decode with every tagged field absent
 * (tests/fixtures/session-record-1d2242e.json is one); a new optional field
 * can be added as a new tag, without a new envelope version, and replicas
 * of this version already open records that carry it. (Versions before the
 * tags insisted that a record end after its tokens: during a rolling upgrade
 * from one of them, an old replica answers 401 for sessions created by a new
 * one until it is replaced; it deletes nothing.)
 *
 * Everything before the tags, and the dictionary, is fixed: changing either
 * means a new envelope version in SessionSealer, not an edit here.
 */

/** Compression state for small records: a 4 KiB window covers the dictionary and a Keycloak-sized record. */
const DEFLATE_OPTIONS = { level: constants.Z_BEST_COMPRESSION, windowBits: 12, memLevel: 8 } as const;
const INFLATE_OPTIONS = { windowBits: 12, maxOutputLength: 64 * 1024 } as const;

/**
 * Text that tokens and profiles of common IdPs (Keycloak, oidc-provider,
 * Entra ID, Okta, Auth0) repeat: deflate refers back to it instead of
 * spelling it out. The most frequent fragments come last (shortest distance).
 */
const DICTIONARY = Buffer.from(
  [
    '"ver":"2.0","tid":"',
    '"oid":"',
    '"uti":"',
    '"rh":"',
    '"cid":"',
    '"uid":"',
    '"https://',
    '"permissions":[',
    '"org_id":"',
    '"amr":["pwd"],',
    '"idp":"',
    '"locale":"',
    '"zoneinfo":"',
    '"updated_at":',
    '"picture":"',
    '"nickname":"',
    '"s_hash":"',
    '"c_hash":"',
    '"allowed-origins":["',
    '"reuse_id":"',
    '"roles":[',
    '"scope":"openid web-origins email profile roles acr basic"',
    '"typ":"Refresh","azp":"',
    '{"alg":"HS512","typ" : "JWT","kid" : "',
    '{"alg":"HS256","typ":"JWT","kid":"',
    '{"alg":"ES256","typ":"JWT","kid":"',
    '{"alg":"PS256","typ":"JWT","kid":"',
    '{"alg":"RS256","typ":"at+jwt","kid":"',
    '"resource_access":{"account":{"roles":["manage-account","manage-account-links","view-profile"]}},',
    '"realm_access":{"roles":["offline_access","uma_authorization","default-roles-',
    '"scope":"openid email profile","email_verified":true,',
    '"scope":"openid profile email","email_verified":true,',
    '"typ":"Bearer","azp":"',
    '"typ":"ID","azp":"',
    '"aud":"account","sub":"',
    '/realms/',
    '"jti":"onrtac:',
    '"nonce":"',
    '"at_hash":"',
    '"acr":"1",',
    '"sid":"',
    '"groups":["',
    '"given_name":"',
    '"family_name":"',
    '"preferred_username":"',
    '"name":"',
    '"email":"',
    '"email_verified":true,',
    '"iss":"https://',
    '"aud":"',
    '"sub":"',
    '"jti":"',
    '"auth_time":',
    '"iat":',
    '{"exp":',
    '{"alg":"RS256","typ":"JWT","kid":"',
    '{"alg":"RS256","typ" : "JWT","kid" : "',
  ].join(''),
  'utf8',
);

/** The deflate dictionary, for tests that build records by hand (a field of a later version, say). */
export function codecDictionary(): Buffer {
  return Buffer.from(DICTIONARY);
}

/** The tagged optional fields after the tokens; a tag, once used, keeps its meaning. */
const TaggedField = { Frontend: 1, Device: 2 } as const;


/** Throws when the input is not a record this code wrote (SessionSealer has already authenticated it). */
export function decodeSession(compressed: Buffer): StoredSession {
  const reader = new Reader(inflateRawSync(compressed, { ...INFLATE_OPTIONS, dictionary: DICTIONARY }));
  const createdAt = reader.uint();
  const absoluteExpiresAt = reader.uint();
  const sub = reader.text();
  const name = reader.optionalText();
  const email = reader.optionalText();
  const preferredUsername = reader.optionalText();
  const groups = Array.from({ length: reader.uint() }, () => reader.text());
  const emailVerifiedCode = reader.uint();
  const userAgent = reader.optionalText();
  const ipPrefix = reader.optionalText();
  const idpSessionId = reader.optionalText();
  const accessTokenExpiresAt = reader.uint();
  const accessTokenIssuedAt = reader.optionalUint();
  const accessToken = reader.token();
  const refreshToken = reader.token();
  const idToken = reader.token();
  let frontend: string | undefined;
  let device: string | undefined;
  while (!reader.isAtEnd()) {
    const tag = reader.uint();
    const value = reader.bytes();
    if (tag === TaggedField.Frontend) frontend = value.toString('utf8');
    else if (tag === TaggedField.Device) device = value.toString('utf8');
    // Any other tag is a field of a later version: skipped, the rest of the record still opens.
  }
  if (accessToken === undefined) throw new Error('a session record without an access token');
  const tokens: TokenSet = {
    accessToken,
    refreshToken,
    idToken,
    accessTokenExpiresAt,
    ...(accessTokenIssuedAt === undefined ? {} : { accessTokenIssuedAt }),
  };
  return deepFreeze({
    auth: {
      user: {
        sub,
        ...(name === undefined ? {} : { name }),
        ...(email === undefined ? {} : { email }),
        ...(emailVerifiedCode === 0 ? {} : { emailVerified: emailVerifiedCode === 2 }),
        ...(preferredUsername === undefined ? {} : { preferredUsername }),
        groups,
      },
      tokens,
      createdAt,
      absoluteExpiresAt,
      binding: { ...(userAgent === undefined ? {} : { userAgent }), ...(ipPrefix === undefined ? {} : { ipPrefix }) },
      idpSessionId,
      ...(frontend === undefined ? {} : { frontend }),
      ...(device === undefined ? {} : { device }),
    },
  });
}

export function encodeSession(record: StoredSession): Buffer {
  const { auth } = record;
  const writer = new Writer();
  writer.uint(auth.createdAt);
  writer.uint(auth.absoluteExpiresAt);
  writer.text(auth.user.sub);
  writer.optionalText(auth.user.name);
  writer.optionalText(auth.user.email);
  writer.optionalText(auth.user.preferredUsername);
  writer.uint(auth.user.groups.length);
  for (const group of auth.user.groups) writer.text(group);
  writer.uint(auth.user.emailVerified === undefined ? 0 : auth.user.emailVerified ? 2 : 1);
  writer.optionalText(auth.binding.userAgent);
  writer.optionalText(auth.binding.ipPrefix);
  writer.optionalText(auth.idpSessionId);
  writer.uint(auth.tokens.accessTokenExpiresAt);
  writer.optionalUint(auth.tokens.accessTokenIssuedAt);
  writer.token(auth.tokens.accessToken);
  writer.token(auth.tokens.refreshToken);
  writer.token(auth.tokens.idToken);
  writer.tagged(TaggedField.Frontend, auth.frontend);
  writer.tagged(TaggedField.Device, auth.device);
  return deflateRawSync(writer.finish(), { ...DEFLATE_OPTIONS, dictionary: DICTIONARY });
}

/** Records are shared between callers (SessionSealer's cache): none may change one. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
