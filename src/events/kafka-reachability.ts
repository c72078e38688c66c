import type { Logger } from '../telemetry/logger';
import type { EventBackendOutage } from './security-events';

/**
 * Whether Kafka can be reached, as `/events/health` reports it: the error
 * of the outage going on now (cleared by the next connect or send that
 * succeeds) and the most recent outage, kept after it ends so that an
 * operator looking later still sees it. Logs each outage's start and end once.
 */
export class KafkaReachability {
  private isConnected = false;
  private lastError: string | undefined;
  private lastOutage: { error: string; startedAt: Date; endedAt: Date | undefined } | undefined;

  constructor(
    private readonly topic: string,
    private readonly logger: Logger,
    private readonly buffered: () => number,
  ) {}

  /** A connect or send succeeded: the outage, if there was one, is over and its error is history. */
  reachable(): void {
    if (this.lastError !== undefined) {
      this.logger.info({ topic: this.topic, buffered: this.buffered(), outage_started_at: this.lastOutage?.startedAt.toISOString() }, 'kafka reachable again');
      if (this.lastOutage) this.lastOutage.endedAt = new Date();
      this.lastError = undefined;
    }
    this.isConnected = true;
  }

  unreachable(message: string): void {
    if (this.lastError === undefined) {
      this.logger.warn({ err: message, topic: this.topic, buffered: this.buffered() }, 'kafka unreachable: security events are buffered until it returns');
      this.lastOutage = { error: message, startedAt: new Date(), endedAt: undefined };
    } else if (this.lastOutage) {
      this.lastOutage.error = message;
    }
    this.isConnected = false;
    this.lastError = message;
  }

  disconnected(): void {
    this.isConnected = false;
  }

  state(): { readonly connected: boolean; readonly lastError: string | undefined; readonly lastOutage: EventBackendOutage | undefined } {
    const outage = this.lastOutage;
    const lastOutage = outage && { error: outage.error, startedAt: outage.startedAt.toISOString(), endedAt: outage.endedAt?.toISOString() };
    return { connected: this.isConnected, lastError: this.lastError, lastOutage };
  }
}
