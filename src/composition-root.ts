import { randomBytes } from 'node:crypto';
import type { GatewayDependencies } from './app';
import { createAuthorizer } from './authz/create-authorizer';
import { DEFAULT_FRONTEND, type Config, type FrontendConfig } from './config/config';
import type { StoredSession } from './session/session-data';
import { frontendView, loadFrontendsFile } from './config/frontends-file';
import { watchConfigFile } from './frontends/file-watcher';
import { ServedFrontends, type GatewayFrontend, type ReloadOutcome } from './frontends/served-frontends';
import { createEventPublisher } from './events/create-event-publisher';
import type { DependencyCheck, DependencyCheckResult } from './shared/dependency-check';
import { JwksBearerTokenVerifier } from './oidc/bearer-token-verifier';
import { isProtocolRefusal } from './oidc/idp-errors';
import { OpenIdIdentityProvider } from './oidc/openid-identity-provider';
import { createBreaker, type BreakerOptions } from './resilience/breaker';
import { CachedSessionStore } from './session/cached-session-store';
import { RedisSessionInvalidations } from './session/session-invalidations';
import { MemoryLoginTransactionStore, MemorySessionStore } from './session/memory-session-store';
import { createRedisClient } from './session/redis-client';
import { RedisLoginTransactionStore, RedisSessionStore, type RedisGuard } from './session/redis-session-store';
import { MemoryRateLimitStore, RedisRateLimitStore } from './session/rate-limit-store';
import { SessionSealer } from './session/session-sealer';
import { systemClock, type Clock } from './shared/clock';
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
  /** Reads FRONTENDS_FILE again and serves it, or refuses it and keeps what runs (SIGHUP, and the file changing). */
  reloadFrontends(): Promise<ReloadOutcome>;
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

  // A session idles out after its own frontend's timeout. The stores are built before the frontends,
  // so they ask whatever is served when they write (a reload changes it for the next write).
  let frontends: ServedFrontends<GatewayFrontend> | undefined;
  const idleTtlSecondsOf = (record: StoredSession): number =>
    frontends?.named(record.auth.frontend ?? DEFAULT_FRONTEND)?.config.session.idleTtlSeconds ?? config.session.idleTtlSeconds;
  const storage = buildStorage(config, sessionSecrets, idleTtlSecondsOf, clock, metrics, logger, breakerOptions);
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

  // oidc-provider is loaded only when the development IdP is used: production processes never carry it.
  const developmentIdp =
    config.oidc.kind === 'development' && !config.frontendsFile
      ? (require('./oidc/development-idp') as typeof import('./oidc/development-idp')).createDevelopmentIdp(config.server.publicOrigin)
      : undefined;
  if (developmentIdp) {
    logger.warn(
      { issuer: developmentIdp.issuer, demoUser: developmentIdp.demoUser },
      `development IdP enabled: open ${config.server.publicOrigin}/ and log in as ${developmentIdp.demoUser} with any password (never use this in production)`,
    );
  }
  frontends = new ServedFrontends<GatewayFrontend>(
    {
      build: (frontend) => buildFrontend(config, frontend, { developmentIdp, breakerOptions, metrics, logger, clock }),
      file: config.frontendsFile,
      readyWaitMs: config.oidc.timeoutMs * 2,
      metrics,
      logger,
      clock,
    },
    config.frontends,
  );
  closers.push(() => frontends.close());
  // Without a file the environment's frontend is all there is to read again: the reload finds it unchanged.
  const reloadFrontends = (): Promise<ReloadOutcome> =>
    frontends.reload(() => (config.frontendsFile ? loadFrontendsFile(config.frontendsFile, config) : { frontends: [...config.frontends] }));
  if (config.frontendsFile) {
    const watcher = watchConfigFile(
      config.frontendsFile,
      () => void reloadFrontends(),
      (error) => logger.warn({ err: error.message, file: config.frontendsFile }, 'FRONTENDS_FILE is not watched for changes; SIGHUP still reloads it'),
    );
    closers.push(() => watcher.close());
  }

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
      check: async () => identityProvidersReady(frontends.all),
    },
    frontends.check,
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
      frontends,
      authorizer: authorizerWiring.authorizer,
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
    reloadFrontends,
  };
}

/**
 * One frontend's IdP client, with its own breaker (`idp`, or `idp:<name>`
 * with FRONTENDS_FILE: one IdP's outage never opens another's) and the
 * verifier of API clients' tokens from the same issuer.
 */
function buildFrontend(
  config: Config,
  frontend: FrontendConfig,
  shared: {
    readonly developmentIdp: { readonly issuer: string; readonly clientId: string; readonly clientSecret: string } | undefined;
    readonly breakerOptions: Omit<BreakerOptions, 'timeoutMs'>;
    readonly metrics: GatewayMetrics;
    readonly logger: Logger;
    readonly clock: Clock;
  },
): GatewayFrontend {
  const { developmentIdp, metrics, logger, clock } = shared;
  const { oidc } = frontend;
  // The probe closes the breaker as soon as the IdP answers again, instead of after the whole reset timeout.
  let idpAnswers: () => Promise<void> = async () => undefined;
  const idpBreaker = createBreaker(
    config.frontendsFile ? `idp:${frontend.name}` : 'idp',
    { ...shared.breakerOptions, timeoutMs: oidc.timeoutMs + 1000, isCallerError: isProtocolRefusal, probe: () => idpAnswers() },
    metrics,
  );
  const identityProvider = new OpenIdIdentityProvider({
    issuer: oidc.kind === 'external' ? oidc.issuer : (developmentIdp?.issuer ?? ''),
    clientId: oidc.kind === 'external' ? oidc.clientId : (developmentIdp?.clientId ?? ''),
    clientAuthentication:
      oidc.kind === 'external' ? oidc.clientAuthentication : { method: 'client_secret_basic', clientSecret: developmentIdp?.clientSecret ?? '' },
    scopes: oidc.scopes,
    groupsClaim: oidc.groupsClaim,
    redirectUri: `${frontend.publicOrigin}${frontend.pathPrefix}/auth/callback`,
    timeoutMs: oidc.timeoutMs,
    allowHttp: config.server.environment !== 'production',
    breaker: idpBreaker,
    metrics,
    logger,
    clock,
  });
  idpAnswers = () => identityProvider.answers();
  identityProvider.start();
  const bearerTokens = new JwksBearerTokenVerifier({
    issuerKeys: () => identityProvider.issuerKeys(),
    groupsClaim: oidc.groupsClaim,
    timeoutMs: oidc.timeoutMs,
    breaker: idpBreaker,
    metrics,
    logger,
    clock,
  });
  return {
    config: frontend,
    view: frontendView(config, frontend),
    identityProvider,
    bearerTokens,
    whenReady: () => identityProvider.whenReady().catch(() => undefined),
    close: () => identityProvider.stop(),
  };
}

async function identityProvidersReady(frontends: readonly GatewayFrontend[]): Promise<DependencyCheckResult> {
  const statuses = frontends.map((frontend) => ({ name: frontend.config.name, ...frontend.identityProvider.status() }));
  const waiting = statuses.filter((status) => !status.isReady);
  const named = (status: (typeof statuses)[number]) => (frontends.length > 1 ? `${status.name}: ` : '');
  if (waiting.length > 0) {
    return { status: 'down', detail: waiting.map((status) => `${named(status)}${status.lastError ?? `discovery of ${status.issuer} pending`}`).join('; ') };
  }
  return { status: 'up', detail: statuses.map((status) => `${named(status)}metadata of ${status.issuer} loaded`).join('; ') };
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
  idleTtlSecondsOf: (record: StoredSession) => number,
  clock: Clock,
  metrics: GatewayMetrics,
  logger: Logger,
  breakerOptions: Omit<BreakerOptions, 'timeoutMs'>,
): Storage {
  // Sessions are sealed whole, with keys derived from the session secrets: a Redis dump yields no token and no personal data.
  const sessionOptions = { sealer: new SessionSealer(sessionSecrets), idleTtlSecondsOf, clock };
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
