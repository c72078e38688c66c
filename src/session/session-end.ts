import type { EventPublisher } from '../events/security-events';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { SessionStore } from './session-store';

/** Why a session ended: the `reason` of `bff_sessions_destroyed_total` and of the `session_destroyed` event. */
export const SESSION_END_REASONS = [
  'logout',
  'refresh_rejected',
  'expired',
  'absolute_timeout',
  'binding_failure',
  'backchannel_logout',
  'revoked_by_user',
] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

export interface SessionEnding {
  readonly sessionId: string;
  /** Unknown only when the record was already gone. */
  readonly subject: string | undefined;
  readonly reason: SessionEndReason;
  readonly requestId?: string;
  readonly clientAddress?: string;
  /**
   * How the record leaves the store, when not by `store.destroy`: the /auth
   * routes go through express-session's own destroy, which also detaches
   * the request's session so that nothing saves it again.
   */
  readonly destroy?: () => Promise<void>;
}

/**
 * The one way a session ends: removed from the store (and with it from its
 * indexes), forgotten by every in-process cache that keys on it, counted and
 * published as `session_destroyed`.
 */
export class SessionEnder {
  private readonly forgetters: Array<(sessionId: string) => void> = [];

  constructor(private readonly deps: { readonly store: SessionStore; readonly metrics: GatewayMetrics; readonly events: EventPublisher }) {}

  /** In-process state keyed by session id (the touch throttle, say) that must not outlive the session. */
  onEnd(forget: (sessionId: string) => void): void {
    this.forgetters.push(forget);
  }

  async end(ending: SessionEnding): Promise<void> {
    await (ending.destroy ? ending.destroy() : this.deps.store.destroy(ending.sessionId));
    for (const forget of this.forgetters) forget(ending.sessionId);
    this.deps.metrics.sessionsDestroyed.inc({ reason: ending.reason });
    this.deps.events.publish({
      type: 'session_destroyed',
      severity: 'info',
      sessionId: ending.sessionId,
      subject: ending.subject,
      reason: ending.reason,
      ...(ending.requestId ? { requestId: ending.requestId } : {}),
      ...(ending.clientAddress ? { clientAddress: ending.clientAddress } : {}),
    });
  }
}
