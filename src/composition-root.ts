import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { GatewayDependencies } from './app';
import { createAuthorizer } from './authz/create-authorizer';
import type { Config, RedisConfig } from './config/config';
import { createEventPublisher } from './events/create-event-publisher';
import type { DependencyCheck } from './shared/dependency-check';
import { JwksBearerTokenVerifier } from './oidc/bearer-token-verifier';
import { isProtocolRefusal } from './oidc/idp-errors';
import { OpenIdIdentityProvider } from './oidc/openid-identity-provider';
import { createBreaker, type BreakerOptions } from './resilience/breaker';
import { CachedSessionStore } from './session/cached-session-store';
import { RedisSessionInvalidations } from './session/session-invalidations';
import { MemoryLoginTransactionStore, MemorySessionStore } from './session/memory-session-store';
import { RedisLoginTransactionStore, RedisSessionStore, type RedisClient, type RedisGuard } from './session/redis-session-store';
import { MemoryRateLimitStore, RedisRateLimitStore } from './session/rate-limit-store';
import { SessionSealer } from './session/session-sealer';
import { systemClock, type Clock } from './session/session-store';
import { BackgroundTask } from './telemetry/background-task';
import type { Logger } from './telemetry/logger';
import { GatewayMetrics } from './telemetry/metrics';

/** How often bff_active_sessions_total is recounted from the session index. */
const ACTIVE_SESSIONS_INTERVAL_MS = 15_000;

export interface Gateway {
  readonly dependencies: GatewayDependencies;
  /** Closes every client; the server must already have stopped accepting requests. */
  close(): Promise<void>;
  /** Recounts bff_active_sessions_total now instead of at the next interval (tests, shutdown). */
  countActiveSessions(): Promise<void>;
}

export interface ComposeOptions {
  readonly clock?: Clock;
  readonly metrics?: GatewayMetrics;
  readonly isShuttingDown?: () => boolean;
  readonly refreshLeaseMs?: number;
}

/** The only place real Redis, IdP, PDP and Kafka clients are built. */
export function composeGateway(config: Config, logger: Logger, options: ComposeOptions = {}): Gateway {
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? new GatewayMetrics({ maxUserIdLabels: config.telemetry.userLabelLimit });
  if (config.server.tls) metrics.tlsCertificateLoaded(config.server.tls.notAfter);
  const breakerOptions = {
    errorThresholdPercentage: config.breakers.errorThresholdPercentage,
    resetTimeoutMs: config.breakers.resetTimeoutMs,
    volumeThreshold: config.breakers.volumeThreshold,
  };
  const sessionSecrets = config.session.secrets ?? [randomSecretForDevelopment(logger)];
  const closers: Array<() => Promise<void> | void> = [];

  const storage = buildStorage(config, sessionSecrets, clock, metrics, logger, breakerOptions);
  closers.push(storage.close);
  const activeSessions = new BackgroundTask(
    'active_sessions_count',
    ACTIVE_SESSIONS_INTERVAL_MS,
    async () => metrics.activeSessions.set(await storage.sessions.countActive()),
    metrics,
    logger,
  );
  activeSessions.start();
  closers.push(() => activeSessions.stop());

  // The probe closes the breaker as soon as the IdP answers again, instead of after the whole reset timeout.
  let idpAnswers: () => Promise<void> = async () => undefined;
  const idpBreaker = createBreaker(
    'idp',
    { ...breakerOptions, timeoutMs: config.oidc.timeoutMs + 1000, isCallerError: isProtocolRefusal, probe: () => idpAnswers() },
    metrics,
  );
  // oidc-provider is loaded only when the development IdP is used: production processes never carry it.
  const developmentIdp =
    config.oidc.kind === 'development'
      ? (require('./oidc/development-idp') as typeof import('./oidc/development-idp')).createDevelopmentIdp(config.server.publicOrigin)
      : undefined;
  if (developmentIdp) {
    logger.warn(
      { issuer: developmentIdp.issuer, demoUser: developmentIdp.demoUser },
      `development IdP enabled: open ${config.server.publicOrigin}/ and log in as ${developmentIdp.demoUser} with any password (never use this in production)`,
    );
  }
  const identityProvider = new OpenIdIdentityProvider({
    issuer: developmentIdp?.issuer ?? (config.oidc.kind === 'external' ? config.oidc.issuer : ''),
    clientId: developmentIdp?.clientId ?? (config.oidc.kind === 'external' ? config.oidc.clientId : ''),
    clientAuthentication:
      config.oidc.kind === 'external'
        ? config.oidc.clientAuthentication
        : { method: 'client_secret_basic', clientSecret: developmentIdp?.clientSecret ?? '' },
    scopes: config.oidc.scopes,
    groupsClaim: config.oidc.groupsClaim,
    redirectUri: `${config.server.publicOrigin}/auth/callback`,
    timeoutMs: config.oidc.timeoutMs,
    allowHttp: config.server.environment !== 'production',
    breaker: idpBreaker,
    metrics,
    logger,
    clock,
  });
  idpAnswers = () => identityProvider.answers();
  identityProvider.start();
  closers.push(() => identityProvider.stop());
  const bearerTokens = new JwksBearerTokenVerifier({
    issuerKeys: () => identityProvider.issuerKeys(),
    groupsClaim: config.oidc.groupsClaim,
    timeoutMs: config.oidc.timeoutMs,
    breaker: idpBreaker,
    metrics,
    logger,
    clock,
  });

  const eventWiring = createEventPublisher(config, { metrics, logger, breakerOptions });
  const events = eventWiring.events;
  closers.push(() => eventWiring.close());
  const authorizerWiring = createAuthorizer(config, { metrics, logger, clock, breakerOptions });
  closers.push(() => authorizerWiring.close());

  const readinessChecks: DependencyCheck[] = [
    storage.check,
    {
      name: 'idp',
      decidesReadiness: true,
      check: async () => {
        const status = identityProvider.status();
        return status.isReady
          ? { status: 'up', detail: `metadata of ${status.issuer} loaded` }
          : { status: 'down', detail: status.lastError ?? 'discovery pending' };
      },
    },
    authorizerWiring.check,
    eventWiring.check,
  ];

  return {
    dependencies: {
      config,
      sessionSecrets,
      sessions: storage.sessions,
      transactions: storage.transactions,
      rateLimits: storage.rateLimits,
      identityProvider,
      authorizer: authorizerWiring.authorizer,
      bearerTokens,
      events,
      readinessChecks,
      metrics,
      logger,
      clock,
      developmentIdp: developmentIdp?.handler,
      isShuttingDown: options.isShuttingDown,
      refreshLeaseMs: options.refreshLeaseMs,
    },
    async close() {
      for (const close of closers.reverse()) await close();
    },
    countActiveSessions: () => activeSessions.runOnce(),
  };
}

function randomSecretForDevelopment(logger: Logger): string {
  logger.warn('SESSION_SECRET is unset: using a random secret, so sessions end when this process restarts');
  return randomBytes(48).toString('base64url');
}

interface Storage {
  readonly sessions: GatewayDependencies['sessions'];
  readonly transactions: GatewayDependencies['transactions'];
  readonly rateLimits: GatewayDependencies['rateLimits'];
  readonly check: DependencyCheck;
  close(): Promise<void>;
}

function buildStorage(
  config: Config,
  sessionSecrets: readonly string[],
  clock: Clock,
  metrics: GatewayMetrics,
  logger: Logger,
  breakerOptions: Omit<BreakerOptions, 'timeoutMs'>,
): Storage {
  // Sessions are sealed whole, with keys derived from the session secrets: a Redis dump yields no token and no personal data.
  const sessionOptions = { sealer: new SessionSealer(sessionSecrets), idleTtlSeconds: config.session.idleTtlSeconds, clock };
  if (config.redis.kind === 'memory') {
    logger.warn('REDIS_URL is unset: sessions are kept in memory (one process only, lost on restart)');
    return {
      sessions: new MemorySessionStore(sessionOptions),
      transactions: new MemoryLoginTransactionStore(clock),
      rateLimits: new MemoryRateLimitStore(clock),
      check: { name: 'redis', decidesReadiness: true, check: async () => ({ status: 'up', detail: 'in-memory store' }) },
      close: async () => {},
    };
  }
  const client = createRedisClient(config.redis, logger);
  // ioredis enforces the command timeout; PING while open brings traffic back as soon as Redis answers.
  const breaker = createBreaker('redis', { ...breakerOptions, timeoutMs: false, probe: () => client.ping() }, metrics);
  const guard: RedisGuard = (operation, command) =>
    breaker.run(async () => {
      const started = performance.now();
      try {
        const result = await command();
        metrics.redisOperations.inc({ operation, status: 'success' });
        return result;
      } catch (error) {
        metrics.redisOperations.inc({ operation, status: 'error' });
        throw error;
      } finally {
        metrics.redisLatency.observe({ operation }, (performance.now() - started) / 1000);
      }
    });
  const redisSessions = new RedisSessionStore({ ...sessionOptions, client, guard });
  const cachedSessions = config.session.isCached
    ? new CachedSessionStore(redisSessions, new RedisSessionInvalidations(client, guard, logger), { metrics, logger, clock })
    : undefined;
  cachedSessions?.start().catch((error: unknown) => {
    logger.warn({ err: (error as Error).message }, 'session cache: not subscribed to invalidations yet; cached sessions expire within a second regardless');
  });
  return {
    sessions: cachedSessions ?? redisSessions,
    transactions: new RedisLoginTransactionStore(client, guard),
    rateLimits: new RedisRateLimitStore(client, guard, clock),
    check: {
      name: 'redis',
      decidesReadiness: true,
      check: async () => {
        // Readiness agrees with what requests get: while the breaker is open, /verify answers 503.
        if (breaker.isOpen) return { status: 'down', detail: 'circuit breaker open' };
        const started = performance.now();
        await client.ping();
        return { status: 'up', latencyMs: Math.round((performance.now() - started) * 100) / 100 };
      },
    },
    close: async () => {
      await cachedSessions?.close();
      await client.quit().catch(() => client.disconnect());
    },
  };
}

function hostPort(entry: string): { host: string; port: number } {
  const at = entry.lastIndexOf(':');
  return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
}

/**
 * Fail fast instead of queueing: with the offline queue off and a command
 * timeout, a Redis outage turns into quick 503s (and an open breaker), not
 * requests piling up behind a reconnecting client.
 */
export function createRedisClient(config: Exclude<RedisConfig, { kind: 'memory' }>, logger: Logger): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    // Commands issued in the same tick leave in one write: under load, one syscall for many sessions' GETs.
    enableAutoPipelining: true,
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // Capped at 1 s so that a restarted Redis is reconnected to, and its breaker probed closed, within about 1.5 s.
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 1000),
  };
  const fromUrl = config.url ? urlOptions(config.url) : {};
  let client: RedisClient;
  if (config.kind === 'single') {
    client = new Redis(config.url, common);
  } else if (config.kind === 'sentinel') {
    client = new Redis({ ...common, ...fromUrl, sentinels: config.sentinels.map(hostPort), name: config.masterName });
  } else {
    client = new Cluster(config.nodes.map(hostPort), {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      redisOptions: { ...common, ...fromUrl },
      clusterRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 1000),
    });
  }
  let lastError = '';
  client.on('error', (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt; log changes only.
    if (error.message !== lastError) logger.warn({ err: error.message }, 'redis connection error');
    lastError = error.message;
  });
  client.on('ready', () => {
    if (lastError) logger.info('redis connection restored');
    lastError = '';
  });
  return client;
}

function urlOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  return {
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : undefined,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
  };
}
