/** Bounded waiting for the test servers: nothing in tests/support waits without a deadline. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitUntilOptions {
  readonly timeoutMs: number;
  /** Pause between the end of one probe and the start of the next. */
  readonly intervalMs: number;
  /**
   * The error when `timeoutMs` has passed. A function is called then, so it
   * can report what the last probe saw.
   */
  readonly timeoutMessage: string | (() => string);
  /** Ends the wait early, rejecting with the signal's reason (e.g. the process being waited for exited). */
  readonly signal?: AbortSignal;
}

/**
 * Calls `probe` until it answers true. Probes never overlap; one that throws
 * ends the wait with its error. The deadline is a timer, not a check between
 * probes, so a hung probe cannot stretch the wait past `timeoutMs`.
 */
export function waitUntil(probe: () => boolean | Promise<boolean>, options: WaitUntilOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    let isSettled = false;
    const settle = (): boolean => {
      if (isSettled) return false;
      isSettled = true;
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const fail = (error: unknown): void => {
      if (settle()) reject(error instanceof Error ? error : new Error(String(error)));
    };
    const onAbort = (): void => fail(options.signal?.reason);
    const deadline = setTimeout(() => {
      const { timeoutMessage } = options;
      fail(new Error(typeof timeoutMessage === 'string' ? timeoutMessage : timeoutMessage()));
    }, options.timeoutMs);
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const poll = async (): Promise<void> => {
      while (!isSettled) {
        if (await probe()) {
          if (settle()) resolve();
          return;
        }
        await sleep(options.intervalMs);
      }
    };
    poll().catch(fail);
  });
}

/** `promise`, or a rejection with `message` once `timeoutMs` has passed; the timer never outlives the race. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface EventuallyOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** What is awaited, for the error: "/ready to answer 200". */
  readonly what: string;
}

/**
 * Calls `probe` until `isDone` accepts its value, and returns that value; on
 * the deadline fails with the last value seen. For conditions that carry a
 * value the test goes on to check.
 */
export async function eventually<T>(probe: () => T | Promise<T>, isDone: (value: T) => boolean, options: EventuallyOptions): Promise<T> {
  let last: { value: T } | undefined;
  await waitUntil(
    async () => {
      last = { value: await probe() };
      return isDone(last.value);
    },
    {
      timeoutMs: options.timeoutMs ?? 10_000,
      intervalMs: options.intervalMs ?? 50,
      timeoutMessage: () => `gave up waiting for ${options.what}; the last probe saw ${last === undefined ? 'nothing' : describe(last.value)}`,
    },
  );
  return (last as { value: T }).value;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
