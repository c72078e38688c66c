import { z } from 'zod';
import { CLIENT_ASSERTION_ALGORITHMS } from './client-private-key';

/**
 * Every environment variable the gateway reads, with a valid example that the
 * start-up error quotes back to the operator. Parsing happens once, in
 * `loadConfig`; nothing else in the code base reads `process.env`.
 */
export const EXAMPLES: Readonly<Record<string, string>> = {
  PORT: '8080',
  PUBLIC_URL: 'https://app.example.com',
  ENVIRONMENT: 'production',
  OIDC_ISSUER: 'https://login.example.com/realms/main',
  OIDC_CLIENT_ID: 'bff-gateway',
  OIDC_CLIENT_SECRET: 'a-long-random-client-secret',
  OIDC_CLIENT_AUTH_METHOD: 'private_key_jwt',
  OIDC_CLIENT_PRIVATE_KEY_FILE: '/etc/bff/oidc/client-key.pem',
  OIDC_CLIENT_PRIVATE_KEY_ALG: 'PS256',
  OIDC_SCOPES: 'openid profile email',
  OIDC_GROUPS_CLAIM: 'realm_access.roles',
  TLS_CERT_FILE: '/etc/bff/tls/tls.crt',
  TLS_KEY_FILE: '/etc/bff/tls/tls.key',
  SESSION_SECRET: '$(openssl rand -base64 48)',
  SESSION_IDLE_TTL_SECONDS: '1800',
  SESSION_ABSOLUTE_TTL_SECONDS: '43200',
  SESSION_BINDING: 'ua',
  SESSION_CACHE: 'on',
  REDIS_URL: 'rediss://redis.internal:6380/0',
  REDIS_SENTINELS: 'sentinel-a:26379,sentinel-b:26379',
  REDIS_SENTINEL_NAME: 'mymaster',
  REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1:6379,redis-2:6379',
  ROUTES_FILE: '/etc/bff/routes.yaml',
  FRONTENDS_FILE: '/etc/bff/frontends.yaml',
  PDP_URL: 'http://opa:8181/v1/data/bff/allow',
  PDP_TIMEOUT_MS: '500',
  PDP_CACHE_TTL_SECONDS: '5',
  KAFKA_BROKERS: 'kafka-0:9092,kafka-1:9092',
  KAFKA_TOPIC: 'bff.security-events',
  KAFKA_BUFFER_SIZE: '10000',
  TELEMETRY_ENABLED: 'true',
  OTLP_ENDPOINT: 'http://otel-collector:4318',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://otel-collector:4318/v1/traces',
  OTEL_SERVICE_NAME: 'bff-service',
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '0.25',
  OTEL_METRIC_EXPORT_INTERVAL: '15000',
  BFF_VERSION: '1.4.2',
  METRICS_USER_LABEL_LIMIT: '1000',
  LOG_LEVEL: 'info',
  LOG_FORMAT: 'json',
  TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8',
  RATE_LIMIT_VERIFY_RPS: '50',
  RATE_LIMIT_AUTH_PER_MINUTE: '120',
  RATE_LIMIT_METRICS_PER_MINUTE: '60',
  PUBLIC_METRICS_EVENTS: 'page_view,web_vital_lcp,js_error',
  REDIS_COMMAND_TIMEOUT_MS: '1000',
  IDP_TIMEOUT_MS: '5000',
  BREAKER_ERROR_THRESHOLD_PERCENT: '50',
  BREAKER_RESET_TIMEOUT_MS: '10000',
  BREAKER_VOLUME_THRESHOLD: '5',
  SHUTDOWN_GRACE_SECONDS: '10',
};

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` }));

const booleanFlag = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' }))
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const commaList = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0));

const httpUrl = z
  .string()
  .trim()
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), {
    error: 'must be an absolute http:// or https:// URL',
  });

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9._-]+:\d{1,5}$/, { error: 'each entry must be host:port' });

/** What ioredis would otherwise only reject later, with a stack trace: bad %-escapes, a non-numeric db. */
function hasUsableRedisParts(value: string): boolean {
  const url = new URL(value);
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return false;
  }
  return /^\/?\d*$/.test(url.pathname) && url.hostname !== '';
}

const optionalNonEmpty = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value));

/** The raw variables, typed and individually validated; cross-checks happen in `loadConfig`. */
export const envSchema = z.object({
  PORT: integer(1, 65535).default(8080),
  TLS_CERT_FILE: optionalNonEmpty.optional(),
  TLS_KEY_FILE: optionalNonEmpty.optional(),
  PUBLIC_URL: z
    .string()
    .trim()
    .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), {
      error: 'must be an absolute http:// or https:// URL',
      abort: true,
    })
    .refine((value) => {
      const url = new URL(value);
      return url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '';
    }, { error: 'must be an origin only (scheme://host[:port]) without path, query or credentials' })
    .default('http://localhost:8080'),
  ENVIRONMENT: z
    .enum(['development', 'staging', 'production'], { error: 'must be development, staging or production' })
    .default('development'),
  OIDC_ISSUER: optionalNonEmpty.pipe(httpUrl.optional()).optional(),
  OIDC_CLIENT_ID: optionalNonEmpty.optional(),
  OIDC_CLIENT_SECRET: optionalNonEmpty.optional(),
  OIDC_CLIENT_AUTH_METHOD: z
    .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'], {
      error: 'must be client_secret_basic, client_secret_post or private_key_jwt',
    })
    .default('client_secret_basic'),
  OIDC_CLIENT_PRIVATE_KEY_FILE: optionalNonEmpty.optional(),
  // Only needed where the key allows several (RSA: RS256 unless told PS256 ...); EC and Ed25519 keys have one.
  OIDC_CLIENT_PRIVATE_KEY_ALG: z
    .enum(CLIENT_ASSERTION_ALGORITHMS, { error: `must be one of ${CLIENT_ASSERTION_ALGORITHMS.join(', ')}` })
    .optional(),
  OIDC_SCOPES: z
    .string()
    // Without offline_access: Keycloak would otherwise keep only an offline session (no SSO for the
    // user's other apps, no back-channel logout) and refuse users who lack the offline_access role.
    .default('openid profile email')
    .transform((value) => value.split(/[\s,]+/).filter((scope) => scope.length > 0))
    .refine((scopes) => scopes.includes('openid'), { error: 'must include the openid scope' }),
  OIDC_GROUPS_CLAIM: optionalNonEmpty
    .pipe(
      z
        .string()
        .regex(/^[^\s.][^\s]*[^\s.]$|^[^\s.]$/u, { error: 'must be a claim name or a dotted path of claim names, without spaces' })
        .refine((path) => !path.includes('..'), { error: 'must not contain an empty path segment ("..")' })
        .optional(),
    )
    .optional(),
  SESSION_SECRET: commaList
    .refine((secrets) => secrets.length > 0, { error: 'must list at least one secret', abort: true })
    .refine((secrets) => secrets.every((secret) => secret.length >= 32), {
      error: 'every secret must be at least 32 characters',
    })
    .optional(),
  SESSION_IDLE_TTL_SECONDS: integer(60, 7 * 24 * 3600).default(1800),
  SESSION_ABSOLUTE_TTL_SECONDS: integer(300, 30 * 24 * 3600).default(43200),
  SESSION_BINDING: z.enum(['off', 'ua', 'ua+ip'], { error: 'must be off, ua or ua+ip' }).default('ua'),
  SESSION_CACHE: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  REDIS_URL: optionalNonEmpty
    .pipe(
      z
        .string()
        .refine((value) => URL.canParse(value) && /^rediss?:$/.test(new URL(value).protocol), {
          error: 'must be a redis:// or rediss:// URL',
          abort: true,
        })
        .refine(hasUsableRedisParts, {
          error: 'must be redis[s]://[user:password@]host[:port][/db]: a numeric db, and credentials whose %-escapes decode',
        })
        .optional(),
    )
    .optional(),
  REDIS_SENTINELS: commaList.pipe(z.array(hostPort).min(1, { error: 'must list at least one host:port' })).optional(),
  REDIS_SENTINEL_NAME: optionalNonEmpty.optional(),
  REDIS_CLUSTER_NODES: commaList.pipe(z.array(hostPort).min(1, { error: 'must list at least one host:port' })).optional(),
  REDIS_COMMAND_TIMEOUT_MS: integer(50, 60_000).default(1000),
  ROUTES_FILE: optionalNonEmpty.optional(),
  FRONTENDS_FILE: optionalNonEmpty.optional(),
  PDP_URL: optionalNonEmpty.pipe(httpUrl.optional()).optional(),
  PDP_TIMEOUT_MS: integer(10, 30_000).default(500),
  PDP_CACHE_TTL_SECONDS: integer(0, 300).default(5),
  KAFKA_BROKERS: commaList.pipe(z.array(hostPort).min(1, { error: 'must list at least one host:port' })).optional(),
  KAFKA_BUFFER_SIZE: integer(100, 1_000_000).default(10_000),
  KAFKA_TOPIC: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,249}$/, { error: 'must be a valid Kafka topic name' })
    .default('bff.security-events'),
  TELEMETRY_ENABLED: booleanFlag.default(true),
  OTLP_ENDPOINT: optionalNonEmpty.pipe(httpUrl.optional()).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalNonEmpty.pipe(httpUrl.optional()).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalNonEmpty.pipe(httpUrl.optional()).optional(),
  OTEL_SERVICE_NAME: optionalNonEmpty.optional(),
  OTEL_TRACES_SAMPLER: optionalNonEmpty.optional(),
  OTEL_TRACES_SAMPLER_ARG: optionalNonEmpty.optional(),
  OTEL_METRIC_EXPORT_INTERVAL: integer(100, 3_600_000).default(15_000),
  BFF_VERSION: optionalNonEmpty.optional(),
  METRICS_USER_LABEL_LIMIT: integer(1, 100_000).default(1000),
  LOG_LEVEL: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
      error: 'must be one of trace, debug, info, warn, error, fatal, silent',
    })
    .default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty'], { error: 'must be json or pretty' }).default('json'),
  TRUSTED_PROXIES: commaList.optional(),
  RATE_LIMIT_VERIFY_RPS: integer(0, 100_000).default(0),
  RATE_LIMIT_AUTH_PER_MINUTE: integer(0, 1_000_000).default(120),
  RATE_LIMIT_METRICS_PER_MINUTE: integer(0, 1_000_000).default(60),
  PUBLIC_METRICS_EVENTS: commaList
    .pipe(z.array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { error: 'event names are 1-64 characters of a-z, 0-9 and "_"' })).min(1))
    .default(['page_view', 'route_change', 'web_vital_lcp', 'web_vital_inp', 'web_vital_cls', 'web_vital_ttfb', 'js_error', 'api_error', 'login_click', 'logout_click']),
  IDP_TIMEOUT_MS: integer(100, 60_000).default(5000),
  BREAKER_ERROR_THRESHOLD_PERCENT: integer(1, 100).default(50),
  BREAKER_RESET_TIMEOUT_MS: integer(100, 600_000).default(10_000),
  BREAKER_VOLUME_THRESHOLD: integer(1, 10_000).default(5),
  SHUTDOWN_GRACE_SECONDS: integer(0, 300).default(10),
});

export type Env = z.output<typeof envSchema>;
