import { createHash } from 'node:crypto';
import { uuidV7 } from '../shared/uuid-v7';
import { z } from 'zod';

export const SECURITY_EVENT_TYPES = [
  'login_success',
  'login_failure',
  'logout',
  'session_created',
  'session_destroyed',
  'binding_failure',
  'csrf_violation',
  'rate_limited',
  'refresh_failure',
  'backchannel_logout',
  'authz_denied',
  'ingestion_rejected',
] as const;
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];
export type Severity = 'info' | 'warning' | 'critical';

/** The wire format of every security event; Kafka consumers can rely on it. */
export const securityEventSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(SECURITY_EVENT_TYPES),
    severity: z.enum(['info', 'warning', 'critical']),
    occurredAt: z.iso.datetime(),
    service: z.literal('bff-service'),
    /** sha256 of the session id: correlates events without revealing the cookie. */
    sessionHash: z.string().regex(/^[A-Za-z0-9_-]{43}$/).optional(),
    subject: z.string().max(256).optional(),
    requestId: z.string().max(128).optional(),
    clientAddress: z.string().max(64).optional(),
    reason: z.string().regex(/^[a-z0-9_]{1,64}$/).optional(),
    route: z.string().max(64).optional(),
    /** The FRONTENDS_FILE frontend whose routes saw it (absent without a file, and for events no frontend owns). */
    frontend: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/).optional(),
  })
  .strict();
export type SecurityEvent = z.infer<typeof securityEventSchema>;

export function hashSessionId(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url');
}

/** What a caller says happened; id, time and service are added by the publisher. */
export interface SecurityEventInput {
  readonly type: SecurityEventType;
  readonly severity: Severity;
  readonly sessionId?: string;
  readonly subject?: string;
  readonly requestId?: string;
  readonly clientAddress?: string;
  readonly reason?: string;
  readonly route?: string;
  readonly frontend?: string;
}

/**
 * Where security events go. `publish` never blocks the request path and never
 * throws: delivery problems are the publisher's to buffer, count and report.
 */
export interface EventPublisher {
  publish(event: SecurityEventInput): void;
  health(): EventBackendHealth;
  close(): Promise<void>;
}

/** What `GET /events/health` answers. */
export interface EventBackendHealth {
  readonly backend: 'log' | 'kafka';
  readonly connected: boolean;
  /** Events held for delivery (waiting and in flight). */
  readonly buffered: number;
  /** Events lost since start-up: overflow of the buffer, or published after close. */
  readonly dropped: number;
  /** The error of the outage going on now; absent once a connect or send succeeds again. */
  readonly lastError: string | undefined;
  /** The most recent outage, kept after it ended; absent when there has been none since start-up. */
  readonly lastOutage?: EventBackendOutage | undefined;
}

export interface EventBackendOutage {
  /** The last error seen during the outage. */
  readonly error: string;
  /** ISO 8601: the first failed connect or send. */
  readonly startedAt: string;
  /** ISO 8601: the first connect or send that succeeded again; absent while the outage goes on. */
  readonly endedAt: string | undefined;
}

/** Builds the validated wire event; shared by every publisher. */
export function toSecurityEvent(input: SecurityEventInput, now: Date): SecurityEvent {
  const { sessionId, ...rest } = input;
  return securityEventSchema.parse({
    id: uuidV7(now.getTime()),
    occurredAt: now.toISOString(),
    service: 'bff-service',
    ...(sessionId ? { sessionHash: hashSessionId(sessionId) } : {}),
    ...Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)),
  });
}

/**
 * The publisher as one FRONTENDS_FILE frontend's routes use it: every event
 * names the frontend, so an operator can tell which SPA a login failure or a
 * CSRF refusal came from. Without a file there is one frontend and no label.
 */
export function publisherForFrontend(events: EventPublisher, frontend: string | undefined): EventPublisher {
  if (frontend === undefined) return events;
  return {
    publish: (event) => events.publish({ ...event, frontend }),
    health: () => events.health(),
    close: () => events.close(),
  };
}
