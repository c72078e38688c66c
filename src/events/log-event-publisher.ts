import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import { toSecurityEvent, type EventPublisher, type SecurityEventInput, type SecurityEvent } from './security-events';

/** Security events as log lines: the backend when KAFKA_BROKERS is unset. */
export class LogEventPublisher implements EventPublisher {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {}

  publish(input: SecurityEventInput): void {
    // Never throws into the request path: an event that fails its schema is logged as a defect and counted.
    let event: SecurityEvent;
    try {
      event = toSecurityEvent(input, new Date());
    } catch (error) {
      this.logger.error({ type: input.type, err: (error as Error).message }, 'security event rejected by its schema');
      this.metrics.securityEvents.inc({ event_type: input.type, severity: 'invalid' });
      return;
    }
    this.metrics.securityEvents.inc({ event_type: event.type, severity: event.severity });
    const level = event.severity === 'info' ? 'info' : 'warn';
    this.logger[level]({ security_event: event }, `security event ${event.type}`);
  }

  health() {
    return { backend: 'log' as const, connected: true, buffered: 0, dropped: 0, lastError: undefined };
  }

  async close(): Promise<void> {}
}
