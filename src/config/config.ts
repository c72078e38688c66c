import type { ClientPrivateKey } from './client-private-key';
import type { RouteConfig } from './routes';

export type Environment = 'development' | 'staging' | 'production';
export type SessionBinding = 'off' | 'ua' | 'ua+ip';

export type RedisConfig =
  | { readonly kind: 'memory'; readonly commandTimeoutMs: number }
  | { readonly kind: 'single'; readonly url: string; readonly commandTimeoutMs: number }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly string[];
      readonly masterName: string;
      /** Optional credentials, TLS and database for the master (redis[s]://[user:pass@]host/db). */
      readonly url: string | undefined;
      readonly commandTimeoutMs: number;
    }
  | { readonly kind: 'cluster'; readonly nodes: readonly string[]; readonly url: string | undefined; readonly commandTimeoutMs: number };

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

/**
 * How the gateway proves it is the client at the IdP's token, pushed
 * authorization request and revocation endpoints (OIDC_CLIENT_AUTH_METHOD).
 */
export type ClientAuthentication =
  | { readonly method: 'client_secret_basic' | 'client_secret_post'; readonly clientSecret: string }
  | { readonly method: 'private_key_jwt'; readonly privateKey: ClientPrivateKey };

export type OidcConfig =
  | {
      readonly kind: 'external';
      readonly issuer: string;
      readonly clientId: string;
      readonly clientAuthentication: ClientAuthentication;
      readonly scopes: readonly string[];
      /** OIDC_GROUPS_CLAIM: a claim name or dotted path; unset reads `groups`, else `roles`. */
      readonly groupsClaim: string | undefined;
      readonly timeoutMs: number;
    }
  | { readonly kind: 'development'; readonly scopes: readonly string[]; readonly groupsClaim: string | undefined; readonly timeoutMs: number };

/** TLS_CERT_FILE and TLS_KEY_FILE, read and checked at start-up. */
export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** The certificate's expiry, exported as a gauge so an alert fires before it lapses. */
  readonly notAfter: Date;
}

/** The name of the one frontend made from the environment when FRONTENDS_FILE is unset. */
export const DEFAULT_FRONTEND = 'default';

/**
 * One SPA the gateway serves (SPEC section 10): selected by host and path
 * prefix, with its own origin, IdP client, cookie, lifetimes and routes. A
 * session belongs to one frontend. Without FRONTENDS_FILE there is one,
 * DEFAULT_FRONTEND, made from the environment and serving every host.
 */
export interface FrontendConfig {
  /** A bounded label (`frontend`) and the name sessions are stamped with. */
  readonly name: string;
  /** Lower-case host names (any port); undefined: every host (the environment's frontend). */
  readonly hosts: readonly string[] | undefined;
  /** "" or a lower-case prefix such as "/admin": the frontend's /auth routes live under it. */
  readonly pathPrefix: string;
  readonly publicOrigin: string;
  readonly isHttps: boolean;
  readonly oidc: OidcConfig;
  readonly session: {
    readonly idleTtlSeconds: number;
    readonly absoluteTtlSeconds: number;
    readonly cookieName: string;
    readonly isSecureCookie: boolean;
  };
  readonly routes: readonly RouteConfig[];
}

/** The validated, frozen configuration; built only by `loadConfig`. */
export interface Config {
  readonly server: {
    readonly port: number;
    /** scheme://host[:port] of the browser-facing app. */
    readonly publicOrigin: string;
    /** The frontend's name (DEFAULT_FRONTEND without FRONTENDS_FILE): the `frontend` label. */
    readonly frontend: string;
    /** The frontend's path prefix ("" for the environment's frontend): its /auth routes and its root live under it. */
    readonly basePath: string;
    readonly isHttps: boolean;
    readonly environment: Environment;
    readonly trustedProxies: readonly string[] | undefined;
    /** Set: listen with TLS, offering h2 and http/1.1 by ALPN. */
    readonly tls: TlsConfig | undefined;
    readonly shutdownGraceSeconds: number;
  };
  readonly oidc: OidcConfig;
  readonly session: {
    /** First signs, all verify. Undefined outside production: a random per-process secret is used. */
    readonly secrets: readonly string[] | undefined;
    readonly idleTtlSeconds: number;
    readonly absoluteTtlSeconds: number;
    readonly binding: SessionBinding;
    /** SESSION_CACHE: recently used sessions kept in process memory (with Redis), stale for at most a second. */
    readonly isCached: boolean;
    readonly cookieName: string;
    readonly isSecureCookie: boolean;
  };
  readonly redis: RedisConfig;
  readonly routes: readonly RouteConfig[];
  /**
   * What is served: the FRONTENDS_FILE's frontends, or the one made from the
   * variables above (server.publicOrigin, oidc, session, routes are then its
   * settings; with a file they are the defaults its frontends start from).
   */
  readonly frontends: readonly FrontendConfig[];
  /** FRONTENDS_FILE, reloaded on SIGHUP and when it changes. */
  readonly frontendsFile: string | undefined;
  readonly pdp: { readonly url: string | undefined; readonly timeoutMs: number; readonly cacheTtlSeconds: number };
  readonly kafka: {
    readonly brokers: readonly string[] | undefined;
    readonly topic: string;
    /** Events held while Kafka is away; past it the oldest are dropped (and counted). */
    readonly bufferSize: number;
  };
  readonly telemetry: {
    readonly enabled: boolean;
    readonly otlpEndpoint: string | undefined;
    readonly exportsViaStandardVariables: boolean;
    readonly serviceName: string;
    readonly serviceVersion: string;
    /** OTEL_TRACES_SAMPLER when set (the SDK then configures itself); otherwise parent-based ratio sampling. */
    readonly sampler: string | undefined;
    readonly samplerRatio: number;
    readonly metricExportIntervalMs: number;
    /** Distinct `user_id` label values before further users count as "other". */
    readonly userLabelLimit: number;
  };
  readonly logging: { readonly level: string; readonly format: 'json' | 'pretty' };
  readonly rateLimit: {
    /** Per session, in process memory (0: off). */
    readonly verifyRequestsPerSecond: number;
    /** Per client address, across replicas (0: off). */
    readonly authRequestsPerMinute: number;
    readonly metricsRequestsPerMinute: number;
  };
  /** The only event names /api/v1/metrics accepts (and so the only `event` label values). */
  readonly publicMetrics: { readonly allowedEvents: readonly string[] };
  readonly breakers: {
    readonly errorThresholdPercentage: number;
    readonly resetTimeoutMs: number;
    readonly volumeThreshold: number;
  };
}
