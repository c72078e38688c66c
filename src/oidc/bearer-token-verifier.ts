import { errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTHeaderParameters } from 'jose';
import { DependencyUnavailable } from '../errors/app-error';
import type { Breaker } from '../resilience/breaker';
import type { SessionUser } from '../session/session-data';
import type { Clock } from '../shared/clock';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { userFromClaims } from './claims-user';
import { JwksCache } from './jwks-cache';
import { ASYMMETRIC_ALGORITHMS } from './logout-token';

/** What /verify learns of an API client's `Authorization: Bearer` token. */
export type BearerTokenCheck =
  | { readonly kind: 'valid'; readonly user: SessionUser }
  /** Expired beyond the leeway, with a good signature: the client should fetch a new token. */
  | { readonly kind: 'expired'; readonly problem: string }
  /** Anything else: not a JWT, a bad signature or algorithm, another issuer or audience, a token of another type. */
  | { readonly kind: 'invalid'; readonly problem: string };

/**
 * Checks API clients' own access tokens (routes with `bearer: true`).
 * Resolves to the check; rejects with `DependencyUnavailable` when the IdP's
 * keys cannot be had, so that /verify fails closed with a 503.
 */
export interface BearerTokenVerifier {
  verify(token: string, audience: string): Promise<BearerTokenCheck>;
}

/** Where the IdP's keys are; undefined while its metadata is not loaded. */
export interface IssuerKeys {
  readonly issuer: string;
  readonly jwksUri: string | undefined;
}

/**
 * Clock skew between the IdP and the gateway allowed on `exp`, `nbf` and
 * `iat`: small, because an API client can always fetch a new token.
 */
export const BEARER_CLOCK_TOLERANCE_SECONDS = 30;
/** Longer tokens are refused unread; Keycloak tokens with hundreds of roles stay well below. */
export const MAX_BEARER_TOKEN_CHARS = 16 * 1024;
/** A key set larger than this is not a key set. */
const MAX_JWKS_BYTES = 256 * 1024;
/** The compact JWS serialisation: three base64url parts (the signature may not be empty: `alg: none` has none). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/**
 * Header `typ` values of an access token: RFC 9068's `at+jwt`, or plain
 * `JWT` / none from IdPs that predate it (Keycloak). Other JWTs of the IdP
 * (`logout+jwt`, `secevent+jwt`, `dpop+jwt`) are not access tokens.
 */
const ACCESS_TOKEN_TYPES = new Set(['at+jwt', 'jwt']);
const MAX_SUBJECT_CHARS = 256;

export interface JwksBearerTokenVerifierOptions {
  /** The issuer and `jwks_uri` from the IdP's metadata (discovery). */
  readonly issuerKeys: () => IssuerKeys | undefined;
  /** OIDC_GROUPS_CLAIM: the token's groups for `allow:` rules and the PDP. */
  readonly groupsClaim: string | undefined;
  readonly timeoutMs: number;
  /** The IdP breaker: the key set is an IdP request like any other. */
  readonly breaker: Breaker;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Defaults to JWKS_TIMING (jwks-cache.ts). */
  readonly cooldownMs?: number;
  readonly maxAgeMs?: number;
  /** Defaults to the global fetch. */
  readonly fetch?: typeof fetch;
}

/**
 * Verifies API clients' JWTs against the IdP's published keys: signature
 * with an asymmetric algorithm only (never `none`, never an HMAC keyed with
 * the public key), `iss` equal to the issuer, `aud` containing the route's
 * `bearerAudience`, `exp` required and `nbf` honoured with
 * BEARER_CLOCK_TOLERANCE_SECONDS of leeway, a `sub`, an access-token `typ`,
 * and no `cnf` (a sender-constrained token is not usable without its proof,
 * which a ForwardAuth check cannot see).
 *
 * The key set is cached (JwksCache): fetched on first use, again when it is
 * old or an unknown `kid` shows up after the cooldown, never per request.
 */
export class JwksBearerTokenVerifier implements BearerTokenVerifier {
  private cache: { readonly jwksUri: string; readonly keys: JwksCache } | undefined;
  private readonly algorithms = [...ASYMMETRIC_ALGORITHMS];

  constructor(private readonly options: JwksBearerTokenVerifierOptions) {}

  async verify(token: string, audience: string): Promise<BearerTokenCheck> {
    // Refused before any key is looked up: nothing malformed can make the gateway fetch.
    if (token.length > MAX_BEARER_TOKEN_CHARS || !COMPACT_JWS.test(token)) return invalid('the bearer token is not a signed JWT');
    const source = this.options.issuerKeys();
    if (!source) throw new DependencyUnavailable('idp', new Error('identity provider metadata not loaded yet: bearer tokens cannot be checked'));
    const keys = this.keysFor(source);
    let verified: { payload: JWTPayload; protectedHeader: JWTHeaderParameters };
    try {
      // jose checks `alg` against the list before it asks for a key, and the signature before any claim.
      verified = await jwtVerify(token, (header, input) => keys.key(header, input), {
        issuer: source.issuer,
        audience,
        algorithms: this.algorithms,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: BEARER_CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(this.options.clock.now()),
      });
    } catch (error) {
      return classify(error);
    }
    return checkAccessTokenClaims(verified.protectedHeader, verified.payload, this.options.groupsClaim);
  }

  private keysFor(source: IssuerKeys): JwksCache {
    const { jwksUri } = source;
    if (!jwksUri) throw new DependencyUnavailable('idp', new Error(`${source.issuer} publishes no jwks_uri: bearer tokens cannot be checked`));
    if (this.cache?.jwksUri === jwksUri) return this.cache.keys;
    const keys = new JwksCache({
      load: () => this.options.breaker.run(() => this.fetchKeySet(jwksUri)),
      clock: this.options.clock,
      cooldownMs: this.options.cooldownMs,
      maxAgeMs: this.options.maxAgeMs,
      onBackgroundFailure: (error) =>
        this.options.logger.warn({ err: (error as Error).message }, 'refreshing the identity provider keys failed; the keys in hand stay in use'),
    });
    this.cache = { jwksUri, keys };
    return keys;
  }

  /** One JWKS request, counted like every IdP request in bff_idp_requests_total{endpoint="jwks"}. */
  private async fetchKeySet(jwksUri: string): Promise<JSONWebKeySet> {
    const started = performance.now();
    let status = 'error';
    try {
      const response = await (this.options.fetch ?? fetch)(jwksUri, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      status = String(response.status);
      if (!response.ok) throw new Error(`the JWKS endpoint answered ${response.status}`);
      const body = await response.text();
      if (body.length > MAX_JWKS_BYTES) throw new Error(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`);
      return JSON.parse(body) as JSONWebKeySet;
    } finally {
      this.options.metrics.idpRequests.inc({ endpoint: 'jwks', status });
      this.options.metrics.idpLatency.observe({ endpoint: 'jwks' }, (performance.now() - started) / 1000);
    }
  }
}

/**
 * The rules jose does not know, on a token whose signature, `iss`, `aud` and
 * times it has checked; exported for the unit tests.
 */
export function checkAccessTokenClaims(header: JWTHeaderParameters, payload: JWTPayload, groupsClaim: string | undefined): BearerTokenCheck {
  const type = header.typ?.toLowerCase().replace(/^application\//, '');
  if (type !== undefined && !ACCESS_TOKEN_TYPES.has(type)) return invalid(`a token of type ${header.typ} is not an access token`);
  if (Object.hasOwn(payload, 'cnf')) return invalid('a sender-constrained token (cnf) needs a proof the gateway cannot check');
  const { sub } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_CHARS) {
    return invalid(`the sub claim must be a non-empty string of at most ${MAX_SUBJECT_CHARS} characters`);
  }
  return { kind: 'valid', user: userFromClaims(payload, groupsClaim) };
}

/** jose's refusals are the token's fault; anything else (the key set unavailable) passes through for a 503. */
function classify(error: unknown): BearerTokenCheck {
  if (error instanceof errors.JWTExpired) return { kind: 'expired', problem: 'the bearer token has expired' };
  if (error instanceof errors.JOSEError) return invalid(describe(error));
  throw error;
}

function describe(error: InstanceType<typeof errors.JOSEError>): string {
  if (error instanceof errors.JWTClaimValidationFailed) return `the bearer token failed the ${error.claim} check (${error.reason})`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the bearer token is not signed with an accepted algorithm';
  if (error instanceof errors.JWKSNoMatchingKey) return 'the bearer token is not signed with a key the identity provider publishes';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the bearer token signature is not valid';
  return 'the bearer token is malformed';
}

function invalid(problem: string): BearerTokenCheck {
  return { kind: 'invalid', problem };
}
