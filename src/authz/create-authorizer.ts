import type { Config } from '../config/config';
import type { DependencyCheck } from '../shared/dependency-check';
import { createBreaker, type BreakerOptions } from '../resilience/breaker';
import type { Clock } from '../shared/clock';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { authenticatedIsAllowed, type Authorizer } from './authorizer';
import { DecisionCache } from './decision-cache';
import { OpaAuthorizer } from './opa-authorizer';

export interface AuthorizerWiring {
  readonly authorizer: Authorizer;
  readonly check: DependencyCheck;
  close(): Promise<void>;
}

/**
 * The fetch's own AbortSignal (PDP_TIMEOUT_MS) ends a slow call; the breaker's
 * timeout sits this much above it as a backstop, so the breaker records the
 * fetch's timeout rather than racing it.
 */
const BREAKER_TIMEOUT_MARGIN_MS = 250;
/**
 * Distinct (subject, groups, resource, action, method, path) decisions kept;
 * at about 150 bytes each, 10,000 entries stay under a few MB per replica.
 */
const DECISION_CACHE_MAX_ENTRIES = 10_000;

/** Called by the composition root only: the PDP client when PDP_URL is set. */
export function createAuthorizer(
  config: Config,
  deps: { metrics: GatewayMetrics; logger: Logger; clock: Clock; breakerOptions: Omit<BreakerOptions, 'timeoutMs'> },
): AuthorizerWiring {
  if (!config.pdp.url) {
    return {
      authorizer: authenticatedIsAllowed,
      check: { name: 'pdp', decidesReadiness: false, check: async () => ({ status: 'not_configured', detail: 'authenticated means allowed' }) },
      close: async () => {},
    };
  }
  // The probe closes the breaker as soon as the PDP answers again, instead of after the whole reset timeout.
  let probe: () => Promise<void> = async () => undefined;
  const breaker = createBreaker(
    'pdp',
    { ...deps.breakerOptions, timeoutMs: config.pdp.timeoutMs + BREAKER_TIMEOUT_MARGIN_MS, probe: () => probe() },
    deps.metrics,
  );
  const authorizer = new OpaAuthorizer({
    url: config.pdp.url,
    timeoutMs: config.pdp.timeoutMs,
    breaker,
    cache: new DecisionCache({ ttlSeconds: config.pdp.cacheTtlSeconds, maxEntries: DECISION_CACHE_MAX_ENTRIES, clock: deps.clock }),
    metrics: deps.metrics,
    logger: deps.logger,
    clock: deps.clock,
  });
  probe = () => authorizer.answers();
  return {
    authorizer,
    // Reported, not deciding (SPEC section 7): without the PDP, routes without
    // `authz: pdp`, logins and logouts still work, so taking the replica out of
    // the load balancer would hurt more than it helps. The check reads what
    // the last real call and the breaker saw instead of calling the PDP: a
    // probe would add a call per replica per probe interval, could disagree
    // with what /verify experiences, and an OPA-compatible PDP need not serve
    // OPA's /health.
    check: {
      name: 'pdp',
      decidesReadiness: false,
      check: async () => {
        const status = authorizer.status();
        const lastCall = authorizer.lastCall();
        const latency = lastCall.latencyMs === undefined ? {} : { latencyMs: lastCall.latencyMs };
        if (!status.isHealthy) return { status: 'down', ...latency, detail: status.lastError ?? 'unknown' };
        if (lastCall.answerProblem) return { status: 'up', ...latency, detail: `the last answer was ${lastCall.answerProblem}: treated as deny` };
        return { status: 'up', ...latency, detail: lastCall.latencyMs === undefined ? 'no decision asked for yet' : 'the last call answered' };
      },
    },
    // Nothing to close: global fetch's connection pool is shared and unref'd.
    close: async () => {},
  };
}
