import { logLevel, type logCreator } from 'kafkajs';
import type { Logger } from '../telemetry/logger';

/** The same kafkajs line is logged at most once in this window: a broker that is down repeats itself. */
export const KAFKAJS_REPEAT_WINDOW_MS = 60_000;
/** Distinct lines remembered for the repeat window; past it the memory starts over rather than grow. */
const MAX_REMEMBERED_LINES = 200;

// kafkajs warns that bounded retries weaken its exactly-once guarantee; the
// publisher retries whole batches itself and promises at least once, so the
// warning says nothing an operator can act on.
const EXPECTED_KAFKAJS_WARNINGS = [/Limiting retries for the idempotent producer/];

/**
 * kafkajs's own logging into ours, as JSON lines through `logger`: its
 * warnings and errors only (the level is set on the client), the same
 * message at most once per `KAFKAJS_REPEAT_WINDOW_MS`.
 */
export function kafkajsLogCreator(logger: Logger, now: () => number = Date.now): logCreator {
  const lastLoggedAt = new Map<string, number>();
  return () =>
    ({ namespace, level, log }) => {
      const { message, error } = log as { message: string; error?: string };
      if (EXPECTED_KAFKAJS_WARNINGS.some((pattern) => pattern.test(message))) return;
      const key = `${namespace}\u0000${message}`;
      const at = now();
      if (at - (lastLoggedAt.get(key) ?? Number.NEGATIVE_INFINITY) < KAFKAJS_REPEAT_WINDOW_MS) return;
      if (lastLoggedAt.size >= MAX_REMEMBERED_LINES) lastLoggedAt.clear();
      lastLoggedAt.set(key, at);
      // kafkajs says ERROR for conditions it retries (a refused connection, a
      // coordinator still loading); whether events are at risk is what the
      // publisher's own lines and /events/health tell, so these stay warnings.
      logger.warn({ kafkajs: { namespace, level: level === logLevel.ERROR ? 'error' : 'warn', ...(error ? { error } : {}) } }, `kafkajs: ${message}`);
    };
}
