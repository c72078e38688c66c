import { Kafka, logLevel, Partitioners, type IHeaders, type Producer } from 'kafkajs';
import type { Breaker } from '../resilience/breaker';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { DropOldestBuffer } from './drop-oldest-buffer';
import { kafkajsLogCreator } from './kafkajs-log-creator';
import { toSecurityEvent } from './security-events';
import { KafkaReachability } from './kafka-reachability';
import type { EventBackendHealth, EventPublisher, SecurityEventInput } from './security-events';

/** Defaults of the Kafka publisher; each can be overridden through `KafkaEventPublisherOptions`. */
export const KAFKA_PUBLISHER_DEFAULTS = {
  /** Events held while Kafka is unreachable: ~10k events of ~400 bytes is ~4 MB of memory at most. */
  bufferCapacity: 10_000,
  /** Events per produce request. */
  batchSize: 500,
  /** First pause after a failed connect or send; doubles up to `retryMaxDelayMs`. */
  retryInitialDelayMs: 250,
  /** Longest pause between attempts while Kafka is down: also the worst delay before delivery resumes. */
  retryMaxDelayMs: 5_000,
  /** How long `close()` keeps trying to deliver what is buffered before it gives up and disconnects. */
  closeTimeoutMs: 5_000,
  /** kafkajs connect timeout per broker. */
  connectionTimeoutMs: 1_000,
  /** kafkajs timeout per request (a produce with acks=all included). */
  requestTimeoutMs: 5_000,
} as const;

export interface KafkaEventPublisherOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly clientId?: string;
  /** Calls to Kafka (connect, send) go through it; while it is open the sender waits. */
  readonly breaker: Breaker;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly bufferCapacity?: number;
  readonly batchSize?: number;
  readonly retryInitialDelayMs?: number;
  readonly retryMaxDelayMs?: number;
  readonly closeTimeoutMs?: number;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

/** One event as it goes on the wire. */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: string;
  readonly headers: IHeaders;
}

type SenderState = 'created' | 'running' | 'closing' | 'stopped';

// The drop warning is logged at most once a minute: a broker that stays down repeats itself.
const REPEAT_LOG_WINDOW_MS = 60_000;

/**
 * Security events to a Kafka topic with an idempotent kafkajs producer
 * (acks from all in-sync replicas), keyed by the session hash so that the
 * events of one session stay in order on one partition.
 *
 * `publish` only validates the event and appends it to a bounded buffer: the
 * request path never waits on Kafka. One background sender drains the buffer
 * in batches through the 'kafka' breaker; a failed batch goes back to the
 * front and is retried with exponential backoff, so an outage loses nothing
 * but what overflow drops (the oldest events, each counted).
 *
 * Delivery is at least once: a batch whose acknowledgement was lost is sent
 * again, so consumers deduplicate on the event `id`.
 */
export class KafkaEventPublisher implements EventPublisher {
  readonly topic: string;
  private readonly buffer: DropOldestBuffer<OutgoingMessage>;
  private readonly producer: Producer;
  private readonly breaker: Breaker;
  private readonly metrics: GatewayMetrics;
  private readonly logger: Logger;
  private readonly settings: Required<Omit<KafkaEventPublisherOptions, 'brokers' | 'topic' | 'clientId' | 'breaker' | 'metrics' | 'logger'>>;
  private readonly batchSize: number;

  private state: SenderState = 'created';
  private sender: Promise<void> | undefined;
  private hasProducerConnected = false;
  private readonly reachability: KafkaReachability;
  private dropped = 0;
  private lastDropLoggedAt = Number.NEGATIVE_INFINITY;
  /** Ends the sender's wait for work: a new event or close() calls it. */
  private wakeIdle: (() => void) | undefined;
  /** Ends the sender's backoff pause early: only close() calls it, new events must not hurry a retry. */
  private endPause: (() => void) | undefined;

  constructor(options: KafkaEventPublisherOptions) {
    this.topic = options.topic;
    this.breaker = options.breaker;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.reachability = new KafkaReachability(options.topic, options.logger, () => this.buffer.size);
    this.settings = {
      bufferCapacity: options.bufferCapacity ?? KAFKA_PUBLISHER_DEFAULTS.bufferCapacity,
      batchSize: options.batchSize ?? KAFKA_PUBLISHER_DEFAULTS.batchSize,
      retryInitialDelayMs: options.retryInitialDelayMs ?? KAFKA_PUBLISHER_DEFAULTS.retryInitialDelayMs,
      retryMaxDelayMs: options.retryMaxDelayMs ?? KAFKA_PUBLISHER_DEFAULTS.retryMaxDelayMs,
      closeTimeoutMs: options.closeTimeoutMs ?? KAFKA_PUBLISHER_DEFAULTS.closeTimeoutMs,
      connectionTimeoutMs: options.connectionTimeoutMs ?? KAFKA_PUBLISHER_DEFAULTS.connectionTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs ?? KAFKA_PUBLISHER_DEFAULTS.requestTimeoutMs,
    };
    this.buffer = new DropOldestBuffer(this.settings.bufferCapacity);
    // Exported at zero from the start, so the first drop is a visible increase to rate() and the alert.
    for (const status of ['sent', 'failed', 'dropped']) this.metrics.kafkaMessages.inc({ topic: this.topic, status }, 0);
    // At most half the buffer in flight, so that overflow always has a waiting event to drop.
    this.batchSize = Math.max(1, Math.min(this.settings.batchSize, Math.floor(this.settings.bufferCapacity / 2)));

    // kafkajs retries a little on its own (a leader moving, a connection reset);
    // longer outages are the sender's to ride out, with the buffer and backoff.
    const retry = { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 };
    const kafka = new Kafka({
      clientId: options.clientId ?? 'bff-service',
      brokers: [...options.brokers],
      connectionTimeout: this.settings.connectionTimeoutMs,
      requestTimeout: this.settings.requestTimeoutMs,
      retry,
      logLevel: logLevel.WARN,
      logCreator: kafkajsLogCreator(this.logger),
    });
    this.producer = kafka.producer({
      idempotent: true,
      // Idempotence keeps order only with one request in flight per connection.
      maxInFlightRequests: 1,
      retry,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Whether a missing topic is created is the broker's call (auto.create.topics.enable).
      allowAutoTopicCreation: true,
    });
  }

  /** Starts the background sender, which connects (retrying until Kafka answers) and then drains the buffer. */
  start(): void {
    if (this.state !== 'created') return;
    this.state = 'running';
    this.sender = this.runSender().catch((error: unknown) => {
      // A bug in the loop, not a Kafka failure: say so loudly rather than stop delivering silently.
      this.logger.error({ err: error }, 'kafka event sender stopped unexpectedly');
    });
  }

  publish(input: SecurityEventInput): void {
    let message: OutgoingMessage;
    try {
      const event = toSecurityEvent(input, new Date());
      this.metrics.securityEvents.inc({ event_type: event.type, severity: event.severity });
      this.logger.debug({ security_event: event }, `security event ${event.type}`);
      message = {
        key: event.sessionHash ?? event.type,
        value: JSON.stringify(event),
        headers: { 'event-type': event.type, 'content-type': 'application/json' },
      };
    } catch (error) {
      // An event the schema refuses is a bug at the caller; it must not fail the request that raised it.
      this.countDropped(1);
      this.logger.error({ err: error, event_type: input.type }, 'security event refused by its schema; not published');
      return;
    }
    if (this.state === 'stopped') {
      this.countDropped(1);
      return;
    }
    const dropped = this.buffer.push(message);
    if (dropped > 0) this.countDropped(dropped);
    this.wakeIdle?.();
  }

  health(): EventBackendHealth {
    return { backend: 'kafka', buffered: this.buffer.size, dropped: this.dropped, ...this.reachability.state() };
  }

  /** Delivers what it can within `closeTimeoutMs`, then stops the sender and disconnects. */
  async close(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasStarted = this.state !== 'created';
    this.state = 'closing';
    this.interruptWaits();
    if (wasStarted) await settlesWithin(this.sender, this.settings.closeTimeoutMs);
    this.state = 'stopped';
    this.interruptWaits();
    if (this.buffer.size > 0) {
      this.logger.warn({ buffered: this.buffer.size, topic: this.topic }, 'kafka unreachable at shutdown: buffered security events are lost');
    }
    await settlesWithin(
      this.producer.disconnect().catch(() => undefined),
      this.settings.requestTimeoutMs,
    );
    this.reachability.disconnected();
  }

  private async runSender(): Promise<void> {
    let delayMs = this.settings.retryInitialDelayMs;
    const backOff = async (): Promise<void> => {
      await this.pause(delayMs);
      delayMs = Math.min(delayMs * 2, this.settings.retryMaxDelayMs);
    };

    while (this.state === 'running' || this.state === 'closing') {
      if (this.buffer.waitingCount === 0) {
        if (this.state === 'closing') return;
        if (this.hasProducerConnected) {
          await this.idle();
          continue;
        }
      }
      if (this.breaker.isOpen) {
        // No attempt while the breaker is open: it lets one through once its reset time has passed.
        await backOff();
        continue;
      }
      if (!this.hasProducerConnected) {
        try {
          await this.breaker.run(() => this.producer.connect());
          this.hasProducerConnected = true;
          this.reachability.reachable();
          delayMs = this.settings.retryInitialDelayMs;
        } catch (error) {
          this.reachability.unreachable(describe(error));
          await backOff();
        }
        continue;
      }

      const batch = this.buffer.takeBatch(this.batchSize);
      try {
        await this.breaker.run(() => this.producer.send({ topic: this.topic, acks: -1, messages: [...batch] }));
        const delivered = this.buffer.acknowledge();
        this.metrics.kafkaMessages.inc({ topic: this.topic, status: 'sent' }, delivered);
        this.reachability.reachable();
        delayMs = this.settings.retryInitialDelayMs;
      } catch (error) {
        this.metrics.kafkaMessages.inc({ topic: this.topic, status: 'failed' }, batch.length);
        this.buffer.requeue();
        this.reachability.unreachable(describe(error));
        await backOff();
      }
    }
  }

  /** Waits until an event is published or close() starts. */
  private idle(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeIdle = () => {
        this.wakeIdle = undefined;
        resolve();
      };
    });
  }

  /** Waits `ms`, or less when close() starts. */
  private pause(ms: number): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.endPause?.(), ms);
      timer.unref();
      this.endPause = () => {
        clearTimeout(timer);
        this.endPause = undefined;
        resolve();
      };
    });
  }

  private interruptWaits(): void {
    this.wakeIdle?.();
    this.endPause?.();
  }

  private countDropped(count: number): void {
    this.dropped += count;
    this.metrics.kafkaMessages.inc({ topic: this.topic, status: 'dropped' }, count);
    const now = Date.now();
    if (now - this.lastDropLoggedAt >= REPEAT_LOG_WINDOW_MS) {
      this.lastDropLoggedAt = now;
      this.logger.warn(
        { topic: this.topic, dropped_total: this.dropped, capacity: this.buffer.capacity },
        'security event buffer full: dropping the oldest events',
      );
    }
  }
}

/** The message of the innermost cause: an open-breaker wrapper says less than the broker's own error. */
function describe(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause instanceof Error; depth += 1) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

function settlesWithin(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!promise) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}
