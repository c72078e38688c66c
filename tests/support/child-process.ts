import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitUntil } from './wait';

/**
 * The child processes of the test servers (redis-server, Caddy, Prometheus,
 * OPA, the Kafka JVM, the test IdP) and the tools that prepare them (go, mvn,
 * java): started so that they cannot outlive the Jest worker, stopped with
 * SIGTERM and then SIGKILL, and keeping the tail of their output for errors.
 */

// setpriv (util-linux, on every Debian) execs the binary with PR_SET_PDEATHSIG, so the
// kernel kills it even when the Jest worker dies by SIGKILL and no exit hook runs.
const SETPRIV_BINARY = '/usr/bin/setpriv';
// A clean shutdown of every server here takes well under a second; the rest is CI margin.
const DEFAULT_STOP_GRACE_MS = 5_000;
const DEFAULT_OUTPUT_TAIL_CHARS = 8_000;

/** A child process that dies with this process. */
export interface GuardedProcess {
  readonly child: ChildProcess;
  /** The last characters of stdout and stderr, interleaved as they arrived. */
  output(): string;
  /** SIGTERM, SIGKILL after the grace period; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGSTOP: the process hangs with its connections open and answers nothing. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
}

export interface SpawnGuardedOptions {
  /** Defaults to this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** `pipe` keeps stdin open and unused (the test IdP exits when it closes); defaults to `ignore`. */
  readonly stdin?: 'ignore' | 'pipe';
  /** How much output `output()` keeps; defaults to 8,000 characters. */
  readonly outputTailChars?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL; defaults to 5 s. */
  readonly stopGraceMs?: number;
}

/**
 * The command line that runs `binary` so that the kernel kills it when this
 * process dies: under `setpriv --pdeathsig KILL`, or as it is without setpriv.
 */
export function withDeathSignal(binary: string, args: readonly string[] = []): [command: string, args: string[]] {
  return existsSync(SETPRIV_BINARY) ? [SETPRIV_BINARY, ['--pdeathsig', 'KILL', binary, ...args]] : [binary, [...args]];
}

/** Starts `binary` with `withDeathSignal`, killed by this process's exit hook too, with stdout and stderr collected. */
export function spawnGuarded(binary: string, args: readonly string[], options: SpawnGuardedOptions = {}): GuardedProcess {
  atProcessExit(killLiveChildren);
  const [command, commandArgs] = withDeathSignal(binary, args);
  const child = spawn(command, commandArgs, { stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'], env: options.env, cwd: options.cwd });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));

  const tailChars = options.outputTailChars ?? DEFAULT_OUTPUT_TAIL_CHARS;
  let output = '';
  const collect = (chunk: Buffer | string): void => {
    output = (output + chunk.toString()).slice(-tailChars);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  // A spawn or kill failure goes into the output for the error message instead of crashing the worker;
  // whoever waits for this process listens for 'error' as well.
  child.on('error', (error) => collect(`[${command}: ${error.message}]\n`));

  const stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  return {
    child,
    output: () => output,
    stop: () => killAndWait(child, stopGraceMs),
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
}

/** A server that did not come up; `isPortInUse` when another process had taken its port (see `withFreePort`). */
export class ProcessStartError extends Error {
  constructor(
    message: string,
    readonly isPortInUse: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ProcessStartError';
  }
}

export interface StartGuardedOptions extends SpawnGuardedOptions {
  /** The server in error messages: `redis-server on 127.0.0.1:6379`. */
  readonly name: string;
  /** What ready means, in the timeout message: `answer PING` gives "... did not answer PING within 10000 ms". */
  readonly readiness: string;
  /** Polled until it answers true; a probe should not throw, and should give up within a second or so. */
  readonly isReady: (process: GuardedProcess) => boolean | Promise<boolean>;
  readonly readyTimeoutMs: number;
  readonly pollIntervalMs: number;
  /** Heads the output in error messages: `--- redis-server output ---`. */
  readonly outputLabel: string;
  /** How the output says the port was taken; defaults to the Go and C wording, `address already in use`. */
  readonly portInUse?: RegExp;
}

/**
 * Spawns a server with `spawnGuarded` and resolves once `isReady` answers
 * true. When it exits first, cannot be run or is not ready in time, it is
 * stopped and the start rejects with a `ProcessStartError` carrying its output.
 */
export async function startGuarded(binary: string, args: readonly string[], options: StartGuardedOptions): Promise<GuardedProcess> {
  const server = spawnGuarded(binary, args, options);
  const { child } = server;
  const startUpEnded = new AbortController();
  const onError = (error: Error): void => startUpEnded.abort(new Error(`could not run ${binary}: ${error.message}`));
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
    startUpEnded.abort(new Error(`${options.name} exited during start-up (code ${code}, signal ${signal})`));
  child.once('error', onError);
  child.once('exit', onExit);
  try {
    await waitUntil(() => options.isReady(server), {
      timeoutMs: options.readyTimeoutMs,
      intervalMs: options.pollIntervalMs,
      timeoutMessage: `${options.name} did not ${options.readiness} within ${options.readyTimeoutMs} ms`,
      signal: startUpEnded.signal,
    });
  } catch (error) {
    const isPortInUse = (options.portInUse ?? /address already in use/i).test(server.output());
    await server.stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new ProcessStartError(`${reason}\n--- ${options.outputLabel} output ---\n${server.output()}`, isPortInUse, { cause: error });
  } finally {
    child.off('error', onError);
    child.off('exit', onExit);
  }
  return server;
}

/**
 * A readiness probe for `isReady`: whether a GET of `url` answers `status`
 * within `timeoutMs`. Never throws: a refused connection or a timeout is
 * "not yet". The body is discarded.
 */
export async function answersWithStatus(url: string, status: number, timeoutMs: number): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.status === status;
  } catch {
    return false;
  }
}

/**
 * A server whose process can be stopped and started again with the same
 * command line (same port, same files), as the outage tests need. The
 * subclass says how to start it and what else the server offers.
 */
export abstract class RestartableServer {
  private server: GuardedProcess | undefined;

  /** @param name The server in errors: `redis on port 6379`. */
  protected constructor(private readonly name: string) {}

  /** Starts the process and resolves once it is ready (`startGuarded`). */
  protected abstract spawn(): Promise<GuardedProcess>;

  /** Starts the process; rejects while it is running. */
  async start(): Promise<void> {
    if (this.server) throw new Error(`${this.name} is still running; stop() it first`);
    this.server = await this.spawn();
  }

  /** Kills the process and resolves once it has exited. Idempotent. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }

  /** `start()` again after `stop()`. */
  restart(): Promise<void> {
    return this.start();
  }

  /** SIGSTOP: the server hangs with its connections open and answers nothing. */
  pause(): void {
    this.server?.pause();
  }

  resume(): void {
    this.server?.resume();
  }

  /** Running and answering, whatever an earlier test did to it: started if stopped, resumed if paused. */
  async ensureServing(): Promise<void> {
    if (this.server) this.server.resume();
    else await this.start();
  }
}

/** How a command run by `runToCompletion` ended. */
export interface Completion {
  /** `null` when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** It ran past `timeoutMs` and was killed. */
  readonly isTimedOut: boolean;
  readonly output: string;
}

/**
 * Runs a command to its end under the same guard, SIGKILLed after
 * `timeoutMs`. Rejects only when it cannot be run at all.
 */
export function runToCompletion(
  binary: string,
  args: readonly string[],
  options: SpawnGuardedOptions & { readonly timeoutMs: number },
): Promise<Completion> {
  const { child, output } = spawnGuarded(binary, args, options);
  return new Promise((resolve, reject) => {
    let isTimedOut = false;
    const deadline = setTimeout(() => {
      isTimedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(deadline);
      reject(new Error(`could not run ${binary}: ${error.message}`));
    });
    // 'close' rather than 'exit': only then has all of the output been read.
    child.once('close', (exitCode, signal) => {
      clearTimeout(deadline);
      resolve({ exitCode, signal, isTimedOut, output: output() });
    });
  });
}

async function killAndWait(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGCONT'); // a paused process cannot act on SIGTERM
  child.kill('SIGTERM');
  const escalation = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(escalation);
  }
}

const liveChildren = new Set<ChildProcess>();
const exitHooks = new Set<() => void>();
let isExitHookRegistered = false;

/**
 * Runs `hook` when this process exits, even when a test never stopped what it
 * started; registering the same function again does nothing. Exit handlers run
 * synchronously, so a hook can send signals and remove files, not wait.
 */
export function atProcessExit(hook: () => void): void {
  exitHooks.add(hook);
  if (isExitHookRegistered) return;
  isExitHookRegistered = true;
  process.on('exit', () => {
    for (const exitHook of exitHooks) exitHook();
  });
}

// A Jest worker that ends without stopping its servers must not leave them behind.
function killLiveChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
}
