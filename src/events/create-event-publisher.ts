import type { Config } from '../config/config';
import type { DependencyCheck } from '../http/operations-routes';
import type { BreakerOptions } from '../resilience/breaker';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { LogEventPublisher } from './log-event-publisher';
import type { EventPublisher } from './security-events';

export interface EventPublisherWiring {
  readonly events: EventPublisher;
  readonly check: DependencyCheck;
  close(): Promise<void>;
}

/** Called by the composition root only: Kafka when KAFKA_BROKERS is set, the log otherwise. */
export function createEventPublisher(
  config: Config,
  deps: { metrics: GatewayMetrics; logger: Logger; breakerOptions: Omit<BreakerOptions, 'timeoutMs'> },
): EventPublisherWiring {
  if (!config.kafka.brokers) {
    const events = new LogEventPublisher(deps.logger, deps.metrics);
    return {
      events,
      check: { name: 'kafka', decidesReadiness: false, check: async () => ({ status: 'not_configured', detail: 'security events go to the log' }) },
      close: () => events.close(),
    };
  }
  throw new Error('KAFKA_BROKERS is set but the Kafka publisher is not wired yet');
}
