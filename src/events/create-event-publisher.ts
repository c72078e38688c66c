import type { Config } from '../config/config';
import type { DependencyCheck } from '../shared/dependency-check';
import { createBreaker, type BreakerOptions } from '../resilience/breaker';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { KAFKA_PUBLISHER_DEFAULTS, KafkaEventPublisher } from './kafka-event-publisher';
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
  const events = new KafkaEventPublisher({
    brokers: config.kafka.brokers,
    topic: config.kafka.topic,
    bufferCapacity: config.kafka.bufferSize,
    breaker: createBreaker('kafka', { ...deps.breakerOptions, timeoutMs: KAFKA_CALL_TIMEOUT_MS }, deps.metrics),
    metrics: deps.metrics,
    logger: deps.logger,
  });
  // Connects in the background: a broker that is down at start-up delays events, never the gateway.
  events.start();
  return {
    events,
    check: {
      name: 'kafka',
      // Events are buffered while Kafka is away, so a Kafka outage must not take replicas out of rotation.
      decidesReadiness: false,
      check: async () => {
        const health = events.health();
        const detail = `topic ${events.topic}; buffered ${health.buffered}, dropped ${health.dropped}`;
        return health.connected
          ? { status: 'up', detail }
          : { status: 'down', detail: `${detail}; ${health.lastError ?? 'connecting'}` };
      },
    },
    close: () => events.close(),
  };
}

/**
 * Ceiling on one connect or send, above what kafkajs itself may spend on one
 * (3 attempts of connection timeout plus request timeout): the breaker should
 * only time out a call that kafkajs has stopped bounding.
 */
const KAFKA_CALL_TIMEOUT_MS = 3 * (KAFKA_PUBLISHER_DEFAULTS.connectionTimeoutMs + KAFKA_PUBLISHER_DEFAULTS.requestTimeoutMs) + 2_000;
