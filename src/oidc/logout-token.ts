import {
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type FetchImplementation,
  type JWTPayload,
  type JWTHeaderParameters,
} from 'jose';
import { AppError, DependencyUnavailable, InvalidLogoutToken } from '../errors/app-error';
import type { Clock } from '../shared/clock';

/** The event a logout token must carry (Back-Channel Logout 1.0, section 2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * Timing rules for logout tokens. The IdP posts a logout token the moment the
 * user logs out, so its `iat` is close to now: a token issued more than
 * `maxAgeSeconds` ago is refused even without an `exp` (the same slack
 * mod_auth_openidc allows an `iat`). `clockToleranceSeconds` absorbs clock
 * skew between the IdP and the gateway in every time check.
 */
export const LOGOUT_TOKEN_TIMING = { maxAgeSeconds: 600, clockToleranceSeconds: 60 } as const;

/** Bounds on the identifiers a logout token carries; they become Redis key names. */
const MAX_IDENTIFIER_CHARS = 256;

/**
 * Signature algorithms accepted for logout tokens: asymmetric only, so the
 * key comes from the IdP's JWKS (`none` and the client-secret HMACs are out).
 */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

/**
 * Explicit typing (section 2.4): `logout+jwt`, or no `typ` / plain `JWT` from
 * IdPs that predate it. Any other type is another kind of token (an access
 * token `at+jwt`, a Security Event Token `secevent+jwt` that also carries
 * `events`) and is refused, so no other JWT of the IdP passes for a logout.
 */
const ACCEPTED_TYPES = new Set(['logout+jwt', 'jwt']);

/** What a verified logout token says. At least one of `sid` and `sub` is present. */
export interface LogoutTokenClaims {
  readonly issuer: string;
  readonly jti: string;
  /** The IdP session that ended (`sid` claim). */
  readonly sid: string | undefined;
  /** The subject whose sessions end (`sub` claim). */
  readonly sub: string | undefined;
  /** Epoch milliseconds. */
  readonly issuedAt: number;
  /**
   * Epoch milliseconds until which this token could still pass verification:
   * its `jti` must be remembered at least this long for the replay check.
   */
  readonly acceptableUntil: number;
}

export interface LogoutTokenVerifierOptions {
  /** The issuer from the IdP's metadata: `iss` must equal it. */
  readonly issuer: string;
  /** The IdP's `jwks_uri`; keys are fetched on first use and again when an unknown `kid` shows up. */
  readonly jwksUri: string;
  /** The gateway's client id: `aud` must contain it. */
  readonly clientId: string;
  /** Defaults to ASYMMETRIC_ALGORITHMS; narrowed by the caller to what the IdP says it signs with. */
  readonly algorithms?: readonly string[];
  readonly timeoutMs: number;
  /** The JWKS request goes through this (instrumentation, the IdP breaker). */
  readonly fetch?: FetchImplementation;
  readonly clock: Clock;
}

/** jose failures that mean "this token is not acceptable", as opposed to "the IdP's keys could not be read". */
const TOKEN_PROBLEMS = new Set([
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_EXPIRED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

/**
 * Verifies OIDC Back-Channel Logout tokens (section 2.6): signature against
 * the IdP's published keys, `typ`, `alg`, `iss`, `aud`, `iat` (not in the
 * future, not too old), `exp` when present, the back-channel logout event,
 * `sid` and/or `sub`, a `jti`, and no `nonce`. Replay (the `jti`) is the
 * caller's to check, against a store shared by every replica.
 */
export class LogoutTokenVerifier {
  private readonly keys: ReturnType<typeof createRemoteJWKSet>;
  private readonly algorithms: string[];

  constructor(private readonly options: LogoutTokenVerifierOptions) {
    this.algorithms = [...(options.algorithms ?? ASYMMETRIC_ALGORITHMS)];
    this.keys = createRemoteJWKSet(new URL(options.jwksUri), {
      timeoutDuration: options.timeoutMs,
      ...(options.fetch ? { [customFetch]: options.fetch } : {}),
    });
  }

  /**
   * Resolves to the token's claims, or rejects with `InvalidLogoutToken` (the
   * token is bad) or `DependencyUnavailable` (the IdP's keys could not be read).
   */
  async verify(token: string): Promise<LogoutTokenClaims> {
    const now = this.options.clock.now();
    let verified: { payload: JWTPayload; protectedHeader: JWTHeaderParameters };
    try {
      // The signature is checked before any claim: an unsigned or forged token learns nothing about the rules.
      verified = await jwtVerify(token, this.keys, {
        issuer: this.options.issuer,
        audience: this.options.clientId,
        algorithms: this.algorithms,
        requiredClaims: ['iat', 'jti', 'events'],
        maxTokenAge: LOGOUT_TOKEN_TIMING.maxAgeSeconds,
        clockTolerance: LOGOUT_TOKEN_TIMING.clockToleranceSeconds,
        currentDate: new Date(now),
      });
    } catch (error) {
      throw translateVerificationError(error);
    }
    return checkLogoutTokenClaims(verified.protectedHeader, verified.payload, this.options.issuer);
  }
}

/**
 * The logout-specific rules, on a token whose signature, `iss`, `aud` and
 * times jose has already checked.
 */
export function checkLogoutTokenClaims(header: JWTHeaderParameters, payload: JWTPayload, issuer: string): LogoutTokenClaims {
  const type = header.typ?.toLowerCase().replace(/^application\//, '');
  if (type !== undefined && !ACCEPTED_TYPES.has(type)) throw new InvalidLogoutToken(`a token of type ${header.typ} is not a logout token`);
  if (Object.hasOwn(payload, 'nonce')) throw new InvalidLogoutToken('a logout token must not contain a nonce');
  const events = payload.events;
  if (!isPlainObject(events) || !isPlainObject(events[BACKCHANNEL_LOGOUT_EVENT])) {
    throw new InvalidLogoutToken('the token does not carry the back-channel logout event');
  }
  const jti = identifier(payload.jti, 'jti');
  const sid = identifier(payload.sid, 'sid');
  const sub = identifier(payload.sub, 'sub');
  if (!jti) throw new InvalidLogoutToken('the logout token has no jti');
  if (!sid && !sub) throw new InvalidLogoutToken('the logout token names neither a session (sid) nor a subject (sub)');
  // jose has checked iat is present, numeric and within the allowed age.
  const issuedAtSeconds = payload.iat as number;
  const lastAcceptedSecond = Math.min(payload.exp ?? Number.POSITIVE_INFINITY, issuedAtSeconds + LOGOUT_TOKEN_TIMING.maxAgeSeconds);
  return {
    issuer,
    jti,
    sid,
    sub,
    issuedAt: issuedAtSeconds * 1000,
    acceptableUntil: (lastAcceptedSecond + LOGOUT_TOKEN_TIMING.clockToleranceSeconds) * 1000,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function identifier(value: unknown, claim: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_IDENTIFIER_CHARS) {
    throw new InvalidLogoutToken(`the ${claim} claim must be a non-empty string of at most ${MAX_IDENTIFIER_CHARS} characters`);
  }
  return value;
}

/** One point where jose's errors become ours; the original stays as `cause`. */
function translateVerificationError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof errors.JOSEError && TOKEN_PROBLEMS.has(error.code)) {
    return new InvalidLogoutToken(describeTokenProblem(error), error);
  }
  // A JWKS that could not be fetched, timed out or is not a key set: the IdP's problem, and worth a retry.
  return new DependencyUnavailable('idp', error);
}

function describeTokenProblem(error: InstanceType<typeof errors.JOSEError>): string {
  if (error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired) {
    return `the logout token failed the ${error.claim} check (${error.reason})`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the logout token is not signed with an accepted algorithm';
  if (error instanceof errors.JWKSNoMatchingKey) return 'the logout token is not signed with a key the identity provider publishes';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the logout token signature is not valid';
  return 'the logout token is malformed';
}
