import type { ServerResponse } from 'node:http';
import type { Logger } from '../telemetry/logger';

/**
 * Answers decided while the event loop reads one batch of ready connections,
 * written together once it has read them all (setImmediate runs right after
 * that poll phase). Written one by one, each answer on its own wakes the
 * proxy's side of the connection, and the two processes take turns for every
 * request; written together, one wake-up serves many. Measured on /verify
 * with 50 connections: about a quarter less CPU per request, and the delay
 * added to an answer is at most the rest of that one pass over the sockets.
 */
export class AnswerBatch {
  private pending: Array<{ readonly res: ServerResponse; readonly answer: () => void }> = [];

  constructor(private readonly logger: Logger) {}

  defer(res: ServerResponse, answer: () => void): void {
    this.pending.push({ res, answer });
    if (this.pending.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    for (const { res, answer } of batch) {
      try {
        answer();
      } catch (error) {
        // One answer that fails must not keep the others of its batch from being written, nor leave its client waiting.
        this.logger.error({ err: error }, 'verify answer failed');
        if (!res.writableEnded) res.destroy();
      }
    }
  }
}
