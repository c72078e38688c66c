import { Kafka, logLevel, Partitioners, type IHeaders, type logCreator, type Producer } from 'kafkajs';
import type { Breaker } from '../resilience/breaker';
import type { Logger } from '../telemetry/logger';
import type { GatewayMetrics } from '../telemetry/metrics';
import { toSecurityEvent } from './log-event-publisher';
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

/**
 * A FIFO with a fixed capacity that drops its oldest entries when full.
 *
 * The sender takes a batch out with `takeBatch` and then either `acknowledge`s
 * it (delivered) or `requeue`s it (back at the front, in order). A batch in
 * flight is never dropped, because it may already have reached the broker and
 * dropping it would miscount; overflow drops the oldest entry that is waiting.
 * `size` (waiting + in flight) never exceeds `capacity`.
 */
export class DropOldestBuffer<T> {
  private waiting: T[] = [];
  private head = 0;
  private inFlight: T[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`buffer capacity must be a positive integer, got ${capacity}`);
  }

  /** Entries held: waiting and in flight. */
  get size(): number {
    return this.waitingCount + this.inFlight.length;
  }

  get waitingCount(): number {
    return this.waiting.length - this.head;
  }

  get inFlightCount(): number {
    return this.inFlight.length;
  }

  /** Appends `entry`; returns how many entries were dropped to make room (0 or 1). */
  push(entry: T): number {
    this.waiting.push(entry);
    return this.trim();
  }

  /** Moves up to `maxEntries` of the oldest waiting entries in flight and returns them. One batch at a time. */
  takeBatch(maxEntries: number): readonly T[] {
    if (this.inFlight.length > 0) throw new Error('a batch is already in flight');
    const end = Math.min(this.waiting.length, this.head + Math.max(1, maxEntries));
    this.inFlight = this.waiting.slice(this.head, end);
    this.head = end;
    this.compact();
    return this.inFlight;
  }

  /** The batch in flight was delivered; returns its length. */
  acknowledge(): number {
    const delivered = this.inFlight.length;
    this.inFlight = [];
    return delivered;
  }

  /**
   * The batch in flight failed: it goes back to the front, ahead of newer
   * entries. `size` already counted it, so this never overflows.
   */
  requeue(): void {
    this.waiting = [...this.inFlight, ...this.waiting.slice(this.head)];
    this.head = 0;
    this.inFlight = [];
  }

  private trim(): number {
    let dropped = 0;
    while (this.size > this.capacity && this.waitingCount > 0) {
      this.head += 1;
      dropped += 1;
    }
    this.compact();
    return dropped;
  }

  /** Dropping from the front only moves `head`; reclaim the slots now and then instead of shifting on every drop. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    } else if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
  }
}

type SenderState = 'created' | 'running' | 'closing' | 'stopped';

// The same kafkajs or drop warning is logged at most once a minute: a broker that is down repeats itself.
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
  private isConnected = false;
  private lastError: string | undefined;
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
      logCreator: kafkaLogCreator(this.logger),
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
    return { backend: 'kafka', connected: this.isConnected, buffered: this.buffer.size, dropped: this.dropped, lastError: this.lastError };
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
    this.isConnected = false;
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
          this.markReachable();
          delayMs = this.settings.retryInitialDelayMs;
        } catch (error) {
          this.markUnreachable(error);
          await backOff();
        }
        continue;
      }

      const batch = this.buffer.takeBatch(this.batchSize);
      try {
        await this.breaker.run(() => this.producer.send({ topic: this.topic, acks: -1, messages: [...batch] }));
        const delivered = this.buffer.acknowledge();
        this.metrics.kafkaMessages.inc({ topic: this.topic, status: 'sent' }, delivered);
        this.markReachable();
        delayMs = this.settings.retryInitialDelayMs;
      } catch (error) {
        this.metrics.kafkaMessages.inc({ topic: this.topic, status: 'failed' }, batch.length);
        this.buffer.requeue();
        this.markUnreachable(error);
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

  private markReachable(): void {
    if (!this.isConnected && this.lastError !== undefined) {
      this.logger.info({ topic: this.topic, buffered: this.buffer.size }, 'kafka reachable again');
    }
    this.isConnected = true;
  }

  private markUnreachable(error: unknown): void {
    const message = describe(error);
    if (this.isConnected || this.lastError === undefined) {
      this.logger.warn({ err: message, topic: this.topic, buffered: this.buffer.size }, 'kafka unreachable: security events are buffered until it returns');
    }
    this.isConnected = false;
    this.lastError = message;
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

// kafkajs warns that bounded retries weaken its exactly-once guarantee; the
// publisher retries whole batches itself and promises at least once, so the
// warning says nothing an operator can act on.
const EXPECTED_KAFKAJS_WARNINGS = [/Limiting retries for the idempotent producer/];

/**
 * kafkajs's own logging into ours: its warnings and errors only (the level is
 * set on the client), the same message at most once a minute.
 */
function kafkaLogCreator(logger: Logger): logCreator {
  const lastLoggedAt = new Map<string, number>();
  return () =>
    ({ namespace, level, log }) => {
      const { message, error } = log as { message: string; error?: string };
      if (EXPECTED_KAFKAJS_WARNINGS.some((pattern) => pattern.test(message))) return;
      const key = `${namespace}\u0000${message}`;
      const now = Date.now();
      if (now - (lastLoggedAt.get(key) ?? Number.NEGATIVE_INFINITY) < REPEAT_LOG_WINDOW_MS) return;
      if (lastLoggedAt.size >= 200) lastLoggedAt.clear();
      lastLoggedAt.set(key, now);
      // kafkajs says ERROR for conditions it retries (a refused connection, a
      // coordinator still loading); whether events are at risk is what the
      // publisher's own lines and /events/health tell, so these stay warnings.
      logger.warn({ kafkajs: { namespace, level: level === logLevel.ERROR ? 'error' : 'warn', ...(error ? { error } : {}) } }, `kafkajs: ${message}`);
    };
}
