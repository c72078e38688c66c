import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { z } from 'zod';
import { EXAMPLES, envSchema, type Env } from './env-schema';
import { DEFAULT_ROUTES, loadRoutesFile, type RouteConfig } from './routes';
import { environmentFrontend, loadFrontendsFile } from './frontends-file';
import { DEFAULT_FRONTEND, type ClientAuthentication, type Config, type RedisConfig, type TlsConfig } from './config';
import { readClientPrivateKey, type ClientPrivateKey } from './client-private-key';
import { packageVersion } from './package-version';

/** Thrown once with every problem found; main prints one line each and exits non-zero. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Problem = { variable: string; message: string };

function describe(problem: Problem): string {
  const example = EXAMPLES[problem.variable];
  return `${problem.variable}: ${problem.message}${example ? ` (example: ${problem.variable}=${example})` : ''}`;
}

/**
 * Parses the environment once, collects every problem (never just the first),
 * and returns a frozen configuration.
 */
export function loadConfig(environment: NodeJS.ProcessEnv): Config {
  const { env, problems } = parseEachVariable(pickKnown(environment));
  const invalid = new Set(problems.map((problem) => problem.variable));
  const later: Problem[] = [];
  const redis = redisConfig(env, later);
  const routes = routesConfig(env, later);
  const trustedProxies = trustedProxiesConfig(env, later);
  const tls = tlsConfig(env, later);
  const clientAuthentication = clientAuthenticationConfig(env, later);
  crossCheck(env, routes, later);
  // A variable that failed its own check is not blamed again by the cross-checks.
  problems.push(...later.filter((problem) => !invalid.has(problem.variable)));
  if (problems.length > 0) throw new ConfigError(problems.map(describe));

  const publicUrl = new URL(env.PUBLIC_URL);
  const isHttps = publicUrl.protocol === 'https:';
  const base = {
    server: {
      port: env.PORT,
      publicOrigin: publicUrl.origin,
      frontend: DEFAULT_FRONTEND,
      basePath: '',
      isHttps,
      environment: env.ENVIRONMENT,
      trustedProxies,
      tls,
      shutdownGraceSeconds: env.SHUTDOWN_GRACE_SECONDS,
    },
    oidc: env.OIDC_ISSUER
      ? {
          kind: 'external' as const,
          issuer: env.OIDC_ISSUER,
          clientId: env.OIDC_CLIENT_ID as string,
          clientAuthentication: clientAuthentication as ClientAuthentication,
          scopes: env.OIDC_SCOPES,
          groupsClaim: env.OIDC_GROUPS_CLAIM,
          timeoutMs: env.IDP_TIMEOUT_MS,
        }
      : {
          kind: 'development' as const,
          scopes: env.OIDC_SCOPES,
          groupsClaim: env.OIDC_GROUPS_CLAIM,
          timeoutMs: env.IDP_TIMEOUT_MS,
        },
    session: {
      secrets: env.SESSION_SECRET,
      idleTtlSeconds: env.SESSION_IDLE_TTL_SECONDS,
      absoluteTtlSeconds: env.SESSION_ABSOLUTE_TTL_SECONDS,
      binding: env.SESSION_BINDING,
      isCached: env.SESSION_CACHE === 'on',
      cookieName: isHttps ? '__Host-bff-session' : 'bff-session',
      isSecureCookie: isHttps,
    },
    redis,
    routes,
    pdp: { url: env.PDP_URL, timeoutMs: env.PDP_TIMEOUT_MS, cacheTtlSeconds: env.PDP_CACHE_TTL_SECONDS },
    kafka: { brokers: env.KAFKA_BROKERS, topic: env.KAFKA_TOPIC, bufferSize: env.KAFKA_BUFFER_SIZE },
    telemetry: {
      enabled: env.TELEMETRY_ENABLED,
      otlpEndpoint: env.OTLP_ENDPOINT,
      // The SDK's exporters read the standard OTEL_* endpoints themselves.
      exportsViaStandardVariables: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
      serviceName: env.OTEL_SERVICE_NAME ?? 'bff-service',
      serviceVersion: env.BFF_VERSION ?? packageVersion(),
      sampler: env.OTEL_TRACES_SAMPLER,
      samplerRatio: env.OTEL_TRACES_SAMPLER_ARG === undefined ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG),
      metricExportIntervalMs: env.OTEL_METRIC_EXPORT_INTERVAL,
      userLabelLimit: env.METRICS_USER_LABEL_LIMIT,
    },
    logging: { level: env.LOG_LEVEL, format: env.LOG_FORMAT },
    rateLimit: {
      verifyRequestsPerSecond: env.RATE_LIMIT_VERIFY_RPS,
      authRequestsPerMinute: env.RATE_LIMIT_AUTH_PER_MINUTE,
      metricsRequestsPerMinute: env.RATE_LIMIT_METRICS_PER_MINUTE,
    },
    publicMetrics: { allowedEvents: env.PUBLIC_METRICS_EVENTS },
    breakers: {
      errorThresholdPercentage: env.BREAKER_ERROR_THRESHOLD_PERCENT,
      resetTimeoutMs: env.BREAKER_RESET_TIMEOUT_MS,
      volumeThreshold: env.BREAKER_VOLUME_THRESHOLD,
    },
  };
  return deepFreeze({ ...base, ...frontendsConfig(env.FRONTENDS_FILE, base) });
}

/** FRONTENDS_FILE's frontends (inheriting from the variables), else the one the variables describe. */
function frontendsConfig(file: string | undefined, base: Omit<Config, 'frontends' | 'frontendsFile'>): Pick<Config, 'frontends' | 'frontendsFile'> {
  if (!file) return { frontends: [environmentFrontend(base)], frontendsFile: undefined };
  const loaded = loadFrontendsFile(file, { ...base, frontends: [], frontendsFile: file });
  if ('problems' in loaded) throw new ConfigError(loaded.problems.map((message) => describe({ variable: 'FRONTENDS_FILE', message: `${file} ${message}` })));
  return { frontends: loaded.frontends, frontendsFile: file };
}

const KNOWN = new Set(Object.keys(envSchema.shape));

/**
 * Each variable on its own, so one bad value does not hide the others; a
 * variable that fails takes its default (or stays unset) for the cross-checks.
 */
function parseEachVariable(raw: Record<string, string>): { env: Env; problems: Problem[] } {
  const problems: Problem[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(envSchema.shape)) {
    const parsed = (schema as z.ZodType).safeParse(raw[name]);
    if (parsed.success) {
      values[name] = parsed.data;
      continue;
    }
    for (const issue of parsed.error.issues) problems.push({ variable: name, message: issue.message });
    const fallback = (schema as z.ZodType).safeParse(undefined);
    values[name] = fallback.success ? fallback.data : undefined;
  }
  return { env: values as Env, problems };
}

/** Empty strings count as unset, as shells and compose files produce them. */
function pickKnown(environment: NodeJS.ProcessEnv): Record<string, string> {
  const known: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (KNOWN.has(name) && value !== undefined && value.trim() !== '') known[name] = value;
  }
  return known;
}

function redisConfig(env: Env, problems: Problem[]): RedisConfig {
  const common = { commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS };
  const selected = [env.REDIS_URL, env.REDIS_SENTINELS, env.REDIS_CLUSTER_NODES].filter((v) => v !== undefined);
  if (env.REDIS_SENTINELS && env.REDIS_CLUSTER_NODES) {
    problems.push({ variable: 'REDIS_CLUSTER_NODES', message: 'cannot be combined with REDIS_SENTINELS: choose one topology' });
  }
  if (env.REDIS_SENTINELS) {
    if (!env.REDIS_SENTINEL_NAME) {
      problems.push({ variable: 'REDIS_SENTINEL_NAME', message: 'is required with REDIS_SENTINELS (the monitored master name)' });
    }
    return { kind: 'sentinel', sentinels: env.REDIS_SENTINELS, masterName: env.REDIS_SENTINEL_NAME ?? '', url: env.REDIS_URL, ...common };
  }
  if (env.REDIS_CLUSTER_NODES) return { kind: 'cluster', nodes: env.REDIS_CLUSTER_NODES, url: env.REDIS_URL, ...common };
  if (env.REDIS_URL) return { kind: 'single', url: env.REDIS_URL, ...common };
  if (selected.length === 0 && env.ENVIRONMENT === 'production') {
    problems.push({ variable: 'REDIS_URL', message: 'is required in production (the in-memory store loses sessions and does not span replicas)' });
  }
  return { kind: 'memory', ...common };
}

function routesConfig(env: Env, problems: Problem[]): readonly RouteConfig[] {
  if (!env.ROUTES_FILE) return DEFAULT_ROUTES;
  const loaded = loadRoutesFile(env.ROUTES_FILE);
  if ('problems' in loaded) {
    for (const message of loaded.problems) problems.push({ variable: 'ROUTES_FILE', message: `${env.ROUTES_FILE} ${message}` });
    return [];
  }
  return loaded.routes;
}

function trustedProxiesConfig(env: Env, problems: Problem[]): readonly string[] | undefined {
  if (!env.TRUSTED_PROXIES) return undefined;
  for (const cidr of env.TRUSTED_PROXIES) {
    const [address, bits, extra] = cidr.split('/');
    const family = isIP(address ?? '');
    const maxBits = family === 6 ? 128 : 32;
    const prefix = bits === undefined ? maxBits : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > maxBits) {
      problems.push({ variable: 'TRUSTED_PROXIES', message: `"${cidr}" is not an IPv4 or IPv6 CIDR` });
    }
  }
  return env.TRUSTED_PROXIES;
}

/**
 * Both files or neither; each read and parsed now, so a wrong path or a key
 * that does not match its certificate stops the start with its name, not the
 * first TLS handshake.
 */
function tlsConfig(env: Env, problems: Problem[]): TlsConfig | undefined {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } = env;
  if (!certFile && !keyFile) return undefined;
  const cert = certFile ? readPem('TLS_CERT_FILE', certFile, problems) : undefined;
  const key = keyFile ? readPem('TLS_KEY_FILE', keyFile, problems) : undefined;
  if (!certFile || !keyFile) {
    const missing = certFile ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE';
    problems.push({ variable: missing, message: `is required with ${certFile ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'} (set both to serve TLS, or neither)` });
    return undefined;
  }
  if (cert === undefined || key === undefined) return undefined;
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    problems.push({ variable: 'TLS_CERT_FILE', message: `${certFile} does not hold a PEM certificate` });
    return undefined;
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) {
      problems.push({ variable: 'TLS_KEY_FILE', message: `${keyFile} is not the private key of the certificate in ${certFile}` });
      return undefined;
    }
  } catch {
    problems.push({ variable: 'TLS_KEY_FILE', message: `${keyFile} does not hold a PEM private key` });
    return undefined;
  }
  return { certFile, keyFile, cert, key, notAfter: new Date(certificate.validTo) };
}

/**
 * OIDC_CLIENT_AUTH_METHOD with its credential: a secret for the
 * client_secret_* methods, a private key for private_key_jwt. A key file is
 * read and parsed whenever it is set, so a wrong path or a bad key stops the
 * start with its name rather than failing the first login.
 */
function clientAuthenticationConfig(env: Env, problems: Problem[]): ClientAuthentication | undefined {
  const method = env.OIDC_CLIENT_AUTH_METHOD;
  let privateKey: ClientPrivateKey | undefined;
  if (env.OIDC_CLIENT_PRIVATE_KEY_FILE) {
    const read = readClientPrivateKey(env.OIDC_CLIENT_PRIVATE_KEY_FILE, env.OIDC_CLIENT_PRIVATE_KEY_ALG);
    if ('problem' in read) problems.push({ variable: 'OIDC_CLIENT_PRIVATE_KEY_FILE', message: read.problem });
    else privateKey = read.key;
  }
  // Without OIDC_ISSUER the embedded development IdP is used with its own credentials.
  if (!env.OIDC_ISSUER) return undefined;
  if (method === 'private_key_jwt') {
    if (!env.OIDC_CLIENT_PRIVATE_KEY_FILE) {
      problems.push({ variable: 'OIDC_CLIENT_PRIVATE_KEY_FILE', message: 'is required with OIDC_CLIENT_AUTH_METHOD=private_key_jwt (a PEM or JWK private key)' });
    }
    return privateKey ? { method, privateKey } : undefined;
  }
  if (!env.OIDC_CLIENT_SECRET) {
    problems.push({
      variable: 'OIDC_CLIENT_SECRET',
      message: `is required when OIDC_ISSUER is set with OIDC_CLIENT_AUTH_METHOD=${method} (or use private_key_jwt with OIDC_CLIENT_PRIVATE_KEY_FILE)`,
    });
  }
  // A key beside a secret method is a half-finished switch to private_key_jwt: say so rather than ignore the key.
  if (env.OIDC_CLIENT_PRIVATE_KEY_FILE) {
    problems.push({ variable: 'OIDC_CLIENT_PRIVATE_KEY_FILE', message: `is used only with OIDC_CLIENT_AUTH_METHOD=private_key_jwt (it is ${method})` });
  }
  if (env.OIDC_CLIENT_PRIVATE_KEY_ALG) {
    problems.push({ variable: 'OIDC_CLIENT_PRIVATE_KEY_ALG', message: `is used only with OIDC_CLIENT_AUTH_METHOD=private_key_jwt (it is ${method})` });
  }
  return { method, clientSecret: env.OIDC_CLIENT_SECRET ?? '' };
}

function readPem(variable: string, file: string, problems: Problem[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    problems.push({ variable, message: `${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    return undefined;
  }
}

function crossCheck(env: Env, routes: readonly RouteConfig[], problems: Problem[]): void {
  const isProduction = env.ENVIRONMENT === 'production';
  if (env.OIDC_ISSUER) {
    if (!env.OIDC_CLIENT_ID) problems.push({ variable: 'OIDC_CLIENT_ID', message: 'is required when OIDC_ISSUER is set' });
    if (isProduction && new URL(env.OIDC_ISSUER).protocol !== 'https:') {
      problems.push({ variable: 'OIDC_ISSUER', message: 'must be https in production' });
    }
  } else if (isProduction && !env.FRONTENDS_FILE) {
    problems.push({ variable: 'OIDC_ISSUER', message: 'is required in production (the embedded development IdP is refused)' });
  }
  if (isProduction && !env.SESSION_SECRET) {
    problems.push({ variable: 'SESSION_SECRET', message: 'is required in production (without it every restart logs everyone out)' });
  }
  // With FRONTENDS_FILE each frontend's publicUrl is checked instead.
  if (isProduction && !env.FRONTENDS_FILE && new URL(env.PUBLIC_URL).protocol !== 'https:') {
    problems.push({ variable: 'PUBLIC_URL', message: 'must be https in production (session cookies are Secure and __Host- prefixed)' });
  }
  if (env.SESSION_ABSOLUTE_TTL_SECONDS < env.SESSION_IDLE_TTL_SECONDS) {
    problems.push({ variable: 'SESSION_ABSOLUTE_TTL_SECONDS', message: `must be at least SESSION_IDLE_TTL_SECONDS (${env.SESSION_IDLE_TTL_SECONDS})` });
  }
  if (env.OTEL_TRACES_SAMPLER_ARG !== undefined) {
    const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      problems.push({ variable: 'OTEL_TRACES_SAMPLER_ARG', message: 'must be a ratio between 0 and 1' });
    }
  }
  if (!env.PDP_URL) {
    const needing = routes.filter((route) => route.authz === 'pdp').map((route) => route.name);
    if (needing.length > 0) {
      problems.push({ variable: 'PDP_URL', message: `is required: routes ${needing.join(', ')} use authz: pdp` });
    }
  }
}

/** Children too, even of a parent that was frozen already (the shared default routes). */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
