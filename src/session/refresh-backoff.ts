import { LRUCache } from 'lru-cache';
import type { Clock } from '../shared/clock';

/**
 * How long a session waits between attempts to refresh at an IdP that is
 * failing: `initialMs` after the first failure, doubling with each further
 * one, never more than `maxMs`.
 */
export interface BackoffSchedule {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * One second first, so a blip of the IdP costs a user about a second; 30 s
 * at most, so a session whose token has expired works again within 30 s of
 * the IdP returning, while a long outage costs the IdP one attempt per
 * session per 15-30 s.
 */
export const REFRESH_BACKOFF_SCHEDULE: BackoffSchedule = Object.freeze({ initialMs: 1_000, maxMs: 30_000 });

/** The nominal wait after `failures` consecutive failures (1 or more). */
export function nominalBackoffMs(failures: number, schedule: BackoffSchedule = REFRESH_BACKOFF_SCHEDULE): number {
  const doublings = Math.max(0, Math.min(failures - 1, 30));
  return Math.min(schedule.maxMs, schedule.initialMs * 2 ** doublings);
}

/**
 * The wait actually used: drawn from the upper half of the nominal wait
 * ("equal jitter"), so that the sessions an outage caught together do not
 * come back to the IdP together, and never shorter than half the nominal.
 * `random` answers in [0, 1), as Math.random does.
 */
export function backoffDelayMs(failures: number, schedule: BackoffSchedule = REFRESH_BACKOFF_SCHEDULE, random: () => number = Math.random): number {
  const nominal = nominalBackoffMs(failures, schedule);
  return Math.ceil(nominal / 2 + (nominal / 2) * random());
}

export interface BackoffState {
  /** Consecutive failed attempts of this outage; 1 is its first. */
  readonly failures: number;
  /** Epoch ms before which the session does not ask the IdP again. */
  readonly retryAt: number;
}

export interface RefreshBackoffOptions {
  readonly clock: Clock;
  readonly schedule?: BackoffSchedule;
  /** Sessions remembered at once; past it the least recently used are forgotten (they may retry sooner, nothing worse). */
  readonly maxSessions?: number;
  readonly random?: () => number;
}

const DEFAULT_MAX_SESSIONS = 100_000;

/**
 * Per-session back-off after failed refreshes, in this process's memory.
 * Checked before the refresh lock is taken, so a session in back-off costs
 * no Redis write, no IdP request, no event and no log line, whatever its
 * request rate. Replicas do not share it: each asks the IdP at most once per
 * interval for a session, and the refresh lock keeps their attempts from
 * overlapping (a request that waited on another replica's attempt adopts its
 * failure instead of trying again).
 */
export class RefreshBackoff {
  private readonly sessions: LRUCache<string, BackoffState>;
  private readonly clock: Clock;
  private readonly schedule: BackoffSchedule;
  private readonly random: () => number;

  constructor(options: RefreshBackoffOptions) {
    this.clock = options.clock;
    this.schedule = options.schedule ?? REFRESH_BACKOFF_SCHEDULE;
    this.random = options.random ?? Math.random;
    this.sessions = new LRUCache({ max: options.maxSessions ?? DEFAULT_MAX_SESSIONS });
  }

  /** Milliseconds before this session may ask the IdP again; 0 when it may now. */
  remainingMs(sessionId: string): number {
    const state = this.sessions.get(sessionId);
    return state ? Math.max(0, state.retryAt - this.clock.now()) : 0;
  }

  /**
   * Records a failed attempt and answers the new back-off. An attempt made
   * within `maxMs` of the previous back-off ending continues that outage
   * (the wait grows); a later one starts a new outage.
   */
  recordFailure(sessionId: string): BackoffState {
    const now = this.clock.now();
    const previous = this.sessions.get(sessionId);
    const isSameOutage = previous !== undefined && now - previous.retryAt <= this.schedule.maxMs;
    const failures = isSameOutage ? previous.failures + 1 : 1;
    const state = { failures, retryAt: now + backoffDelayMs(failures, this.schedule, this.random) };
    this.sessions.set(sessionId, state);
    return state;
  }

  /** Forgets the session's failures; answers how many its outage had (0: none, or an outage long over). */
  recordSuccess(sessionId: string): number {
    const state = this.sessions.get(sessionId);
    if (!state) return 0;
    this.sessions.delete(sessionId);
    return this.clock.now() - state.retryAt <= this.schedule.maxMs ? state.failures : 0;
  }
}
