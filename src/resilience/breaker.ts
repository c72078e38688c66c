import { SpanStatusCode, trace } from '@opentelemetry/api';
import CircuitBreaker from 'opossum';
import { TRACER_NAME } from '../telemetry/tracer-name';
import { DependencyUnavailable } from '../errors/app-error';
import type { GatewayMetrics } from '../telemetry/metrics';

/** `idp:<frontend>` names a FRONTENDS_FILE frontend's own IdP breaker. */
export type DependencyName = 'redis' | 'idp' | `idp:${string}` | 'pdp' | 'kafka';

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
  /**
   * A cheap call that shows the dependency answers again (Redis PING). While
   * the breaker is open it runs every `probeIntervalMs` and closes the breaker
   * on success, so traffic resumes within one interval of the dependency's
   * return instead of after the whole reset timeout.
   */
  readonly probe?: () => Promise<unknown>;
  readonly probeIntervalMs?: number;
}

/**
 * Failures in a row that open the breaker whatever the rolling window says.
 * A dependency that hangs cuts the call rate to (concurrency / timeout), so
 * the failure percentage over a window full of earlier successes climbs far
 * too slowly: every request would wait out its timeout for seconds.
 */
const CONSECUTIVE_FAILURES_TO_OPEN = 5;
const DEFAULT_PROBE_INTERVAL_MS = 500;

const RETRY_AFTER_SECONDS = 5;

export function createBreaker(dependency: DependencyName, options: BreakerOptions, metrics: GatewayMetrics): Breaker {
  const isCallerError = options.isCallerError ?? (() => false);
  const tracer = trace.getTracer(TRACER_NAME);
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
  tripOnConsecutiveFailures(breaker);
  if (options.probe) probeWhileOpen(breaker, options.probe, options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS);

  const fire = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return (await breaker.fire(operation)) as T;
    } catch (error) {
      if (isCallerError(error)) throw error;
      throw new DependencyUnavailable(dependency, error, RETRY_AFTER_SECONDS);
    }
  };

  return {
    dependency,
    get isOpen() {
      return breaker.opened;
    },
    run<T>(operation: () => Promise<T>): Promise<T> {
      // Outside a recorded trace a span would be built only to be dropped: the hot path skips it.
      if (!trace.getActiveSpan()?.isRecording()) return fire(operation);
      // A span per call, so a trace reads server -> breaker -> Redis / IdP / PDP / Kafka with the state it was in.
      return tracer.startActiveSpan(spanName, { attributes: { 'breaker.dependency': dependency, 'breaker.state': stateOf(breaker) } }, async (span) => {
        try {
          return await fire(operation);
        } catch (error) {
          if (error instanceof DependencyUnavailable) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: breaker.opened ? 'breaker open' : String((error.cause as Error)?.message) });
          }
          throw error;
        } finally {
          span.end();
        }
      });
    },
  };
}

function tripOnConsecutiveFailures(breaker: CircuitBreaker): void {
  let failuresInARow = 0;
  // 'timeout' is followed by 'failure' for the same call: counting failures counts timeouts too.
  breaker.on('failure', () => {
    failuresInARow += 1;
    if (failuresInARow >= CONSECUTIVE_FAILURES_TO_OPEN && !breaker.opened) breaker.open();
  });
  breaker.on('success', () => (failuresInARow = 0));
  breaker.on('close', () => (failuresInARow = 0));
}

/** One probe at a time, only while open; the timer never keeps the process alive. */
function probeWhileOpen(breaker: CircuitBreaker, probe: () => Promise<unknown>, intervalMs: number): void {
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(async () => {
      timer = undefined;
      if (!breaker.opened && !breaker.halfOpen) return;
      const isUp = await probe().then(
        () => true,
        () => false,
      );
      if (isUp && (breaker.opened || breaker.halfOpen)) breaker.close();
      else if (breaker.opened || breaker.halfOpen) schedule();
    }, intervalMs);
    timer.unref();
  };
  breaker.on('open', () => {
    if (!timer) schedule();
  });
  breaker.on('shutdown', () => clearTimeout(timer));
}

function stateOf(breaker: CircuitBreaker): string {
  if (breaker.opened) return 'open';
  return breaker.halfOpen ? 'half_open' : 'closed';
}
