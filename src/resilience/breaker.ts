import { SpanStatusCode, trace } from '@opentelemetry/api';
import CircuitBreaker from 'opossum';
import { DependencyUnavailable } from '../errors/app-error';
import type { GatewayMetrics } from '../telemetry/metrics';

export type DependencyName = 'redis' | 'idp' | 'pdp' | 'kafka';

/** Runs calls to one dependency through its circuit breaker. */
export interface Breaker {
  readonly dependency: DependencyName;
  /**
   * Runs `operation`; an open breaker, a breaker timeout or a failure of the
   * dependency rejects with `DependencyUnavailable`. Errors that
   * `isCallerError` accepts (an `invalid_grant`, a 4xx) pass through unchanged
   * and do not count against the dependency.
   */
  run<T>(operation: () => Promise<T>): Promise<T>;
  readonly isOpen: boolean;
}

export interface BreakerOptions {
  /** Per-call timeout; `false` when the client enforces its own (ioredis commandTimeout). */
  readonly timeoutMs: number | false;
  readonly errorThresholdPercentage: number;
  readonly resetTimeoutMs: number;
  readonly volumeThreshold: number;
  readonly isCallerError?: (error: unknown) => boolean;
}

const RETRY_AFTER_SECONDS = 5;

export function createBreaker(dependency: DependencyName, options: BreakerOptions, metrics: GatewayMetrics): Breaker {
  const isCallerError = options.isCallerError ?? (() => false);
  const tracer = trace.getTracer('bff-gateway');
  const spanName = `breaker ${dependency}`;
  const breaker = new CircuitBreaker((operation: () => Promise<unknown>) => operation(), {
    name: dependency,
    timeout: options.timeoutMs,
    errorThresholdPercentage: options.errorThresholdPercentage,
    resetTimeout: options.resetTimeoutMs,
    volumeThreshold: options.volumeThreshold,
    rollingCountTimeout: 10_000,
    rollingCountBuckets: 10,
    errorFilter: (error: unknown) => isCallerError(error),
  });
  metrics.breakerStateChanged(dependency, 'closed');
  // Exported at zero from the start, so the first trip is a visible increase to rate() and alerts.
  metrics.breakerTrips.inc({ service: dependency }, 0);
  breaker.on('open', () => metrics.breakerStateChanged(dependency, 'open'));
  breaker.on('halfOpen', () => metrics.breakerStateChanged(dependency, 'half_open'));
  breaker.on('close', () => metrics.breakerStateChanged(dependency, 'closed'));

  return {
    dependency,
    get isOpen() {
      return breaker.opened;
    },
    run<T>(operation: () => Promise<T>): Promise<T> {
      // A span per call, so a trace reads server -> breaker -> Redis / IdP / PDP / Kafka with the state it was in.
      return tracer.startActiveSpan(spanName, { attributes: { 'breaker.dependency': dependency, 'breaker.state': stateOf(breaker) } }, async (span) => {
        try {
          return (await breaker.fire(operation)) as T;
        } catch (error) {
          if (isCallerError(error)) throw error;
          span.setStatus({ code: SpanStatusCode.ERROR, message: breaker.opened ? 'breaker open' : (error as Error).message });
          throw new DependencyUnavailable(dependency, error, RETRY_AFTER_SECONDS);
        } finally {
          span.end();
        }
      });
    },
  };
}

function stateOf(breaker: CircuitBreaker): string {
  if (breaker.opened) return 'open';
  return breaker.halfOpen ? 'half_open' : 'closed';
}
