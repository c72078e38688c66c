import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SESSION_END_REASONS } from '../session/session-end';
import { OtelInstruments } from './otel-metrics';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Caps the distinct values of a per-user label; past the cap every new value counts as "other". */
export class LabelLimiter {
  private readonly seen = new Set<string>();

  constructor(private readonly maxDistinct: number) {}

  limit(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.maxDistinct) return 'other';
    this.seen.add(value);
    return value;
  }
}

export type BreakerState = 'closed' | 'half_open' | 'open';
const TLS_CERTIFICATE_EXPIRY = 'bff_tls_certificate_expiry_timestamp_seconds';
const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * The whole `bff_*` catalogue of SPEC section 8 on one registry per process
 * (tests build one per gateway instance). Helpers are named after what
 * happened; labels only take bounded values.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly userIds: LabelLimiter;

  readonly httpRequests = this.counter('http_requests_total', 'HTTP requests by route template', ['method', 'endpoint', 'status']);
  readonly httpDuration = this.histogram('http_request_duration_seconds', 'HTTP request duration by route template', ['method', 'endpoint', 'status']);
  readonly activeSessions = new Gauge({ name: 'bff_active_sessions_total', help: 'Sessions currently alive', registers: [this.registry] });
  readonly sessionsCreated = this.counter('bff_sessions_created_total', 'Sessions created by a login, by frontend', ['frontend']);
  readonly sessionsDestroyed = this.counter('bff_sessions_destroyed_total', 'Sessions destroyed, by reason', ['reason']);
  private readonly sessionCacheRequests = this.counter('bff_session_cache_requests_total', 'Session lookups answered from process memory (hit) or the store (miss)', ['result']);
  /** Children made once: /verify counts on every call. */
  readonly sessionCacheLookups = { hit: this.sessionCacheRequests.labels({ result: 'hit' }), miss: this.sessionCacheRequests.labels({ result: 'miss' }) };
  readonly sessionCacheInvalidationLag = this.histogram(
    'bff_session_cache_invalidation_lag_seconds',
    'From a session change on one replica to another replica forgetting its cached copy',
    [],
  );
  readonly verifyDuration = this.histogram('bff_verify_duration_seconds', 'ForwardAuth /verify duration by answer', ['status']);
  readonly oauthFlowDuration = this.histogram('bff_oauth_flow_duration_seconds', 'Duration of OAuth flows at the IdP', ['flow_type']);
  readonly sessionBindingFailures = this.counter('bff_session_binding_failures_total', 'Sessions used from another client', ['reason']);
  readonly tokenRefreshSuccess = this.counter('bff_token_refresh_success_total', 'Successful token refreshes by user (limited)', ['user_id']);
  readonly tokenRefreshFailed = this.counter('bff_token_refresh_failed_total', 'Failed token refreshes by reason', ['reason']);
  readonly tokenRefresh = this.counter('bff_token_refresh_total', 'Token refreshes by route and outcome', ['service', 'status']);
  readonly tokenExchange = this.counter('bff_token_exchange_total', 'OAuth grants at the token endpoint', ['grant_type', 'status']);
  readonly tokenValidation = this.counter('bff_token_validation_total', 'Token validations', ['token_type', 'status']);
  readonly tokenExpiry = this.counter('bff_token_expiry_total', 'Access tokens found expired when needed', ['service']);
  readonly authzRequests = this.counter('bff_authz_requests_total', 'Policy decisions', ['resource', 'action', 'decision']);
  readonly authzLatency = this.histogram('bff_authz_latency_seconds', 'Policy decision latency', ['resource']);
  readonly redisOperations = this.counter('bff_redis_operations_total', 'Redis operations by outcome', ['operation', 'status']);
  readonly redisLatency = this.histogram('bff_redis_latency_seconds', 'Redis operation latency', ['operation']);
  readonly idpRequests = this.counter('bff_idp_requests_total', 'Requests to the IdP by endpoint and outcome', ['endpoint', 'status']);
  readonly idpLatency = this.histogram('bff_idp_latency_seconds', 'IdP request latency', ['endpoint']);
  readonly kafkaMessages = this.counter('bff_kafka_messages_total', 'Security event messages by outcome', ['topic', 'status']);
  readonly breakerStatus = new Gauge({
    name: 'circuit_breaker_status',
    help: 'Circuit breaker state (0 closed, 1 half-open, 2 open)',
    labelNames: ['service'],
    registers: [this.registry],
  });
  readonly breakerTrips = this.counter('circuit_breaks_total', 'Times a circuit breaker opened', ['service']);
  readonly csrfViolations = this.counter('bff_csrf_violations_total', 'Requests refused by the CSRF check', ['reason']);
  readonly rateLimitViolations = this.counter('bff_rate_limit_violations_total', 'Requests refused by a rate limit', ['client_id']);
  readonly securityEvents = this.counter('bff_security_events_total', 'Security events emitted', ['event_type', 'severity']);
  readonly backgroundTasks = this.counter('bff_background_tasks_total', 'Background task runs', ['task_type', 'status']);
  readonly backgroundTaskDuration = this.histogram('bff_background_task_duration_seconds', 'Background task duration', ['task_type']);
  readonly frontendsServed = new Gauge({ name: 'bff_frontends', help: 'Frontends being served (FRONTENDS_FILE, else 1)', registers: [this.registry] });
  readonly configReloads = this.counter('bff_config_reloads_total', 'FRONTENDS_FILE reloads by result (applied, unchanged, refused)', ['result']);
  readonly publicMetrics = this.counter('bff_public_metrics_total', 'SPA metric events accepted', ['event']);
  /**
   * Registered only once a certificate is loaded: a label-less gauge that was
   * never set is exported as 0, which would read as "expired in 1970" and
   * page every gateway that serves plain HTTP behind a TLS-terminating proxy.
   */
  readonly tlsCertificateExpiry = new Gauge({
    name: TLS_CERTIFICATE_EXPIRY,
    help: 'notAfter of the TLS_CERT_FILE certificate, in Unix seconds (absent without TLS)',
    registers: [],
  });
  /** The OTLP side of the catalogue (no-ops when telemetry is off). */
  readonly otel = new OtelInstruments();

  constructor(options: { maxUserIdLabels?: number; collectProcessMetrics?: boolean } = {}) {
    this.userIds = new LabelLimiter(options.maxUserIdLabels ?? 1000);
    if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.exportKnownReasonsAtZero();
  }

  /**
   * Prometheus sees a labelled series only once it exists, so a counter's
   * first increment would be invisible to rate() and increase(): the reasons
   * the code can produce are exported at zero from the start.
   */
  private exportKnownReasonsAtZero(): void {
    for (const reason of ['missing_header', 'origin_mismatch', 'cross_site']) this.csrfViolations.inc({ reason }, 0);
    for (const reason of ['user_agent', 'ip']) this.sessionBindingFailures.inc({ reason }, 0);
    for (const reason of SESSION_END_REASONS) this.sessionsDestroyed.inc({ reason }, 0);
    for (const reason of ['invalid_grant', 'expired', 'idp_unavailable']) this.tokenRefreshFailed.inc({ reason }, 0);
  }

  userLabel(userId: string): string {
    return this.userIds.limit(userId);
  }

  sessionBindingFailed(reason: string): void {
    this.sessionBindingFailures.inc({ reason });
    this.otel.sessionBindingFailures.add(1, { reason });
  }

  /** The certificate of TLS_CERT_FILE was loaded: its expiry becomes visible to the alert rules. */
  tlsCertificateLoaded(notAfter: Date): void {
    if (!this.registry.getSingleMetric(TLS_CERTIFICATE_EXPIRY)) this.registry.registerMetric(this.tlsCertificateExpiry);
    this.tlsCertificateExpiry.set(notAfter.getTime() / 1000);
  }

  breakerStateChanged(service: string, state: BreakerState): void {
    this.breakerStatus.set({ service }, BREAKER_STATE_VALUE[state]);
    if (state === 'open') this.breakerTrips.inc({ service });
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private histogram<L extends string>(name: string, help: string, labelNames: L[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers: [this.registry] });
  }
}
