import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFreePort } from './ports';

/** A throwaway `redis-server` child process on a loopback port. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** Kills the server and resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** Starts the server again on the same port after `stop()`, with whatever a SAVE wrote (nothing otherwise). */
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs with its connections open. */
  pause(): void;
  resume(): void;
}

export const REDIS_SERVER_BINARY = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

// Redis normally starts in a few milliseconds; the margin is for a loaded CI machine.
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const PING_INTERVAL_MS = 50;
const PING_TIMEOUT_MS = 500;
// getFreePort releases the port before redis binds it, so another process can win the race.
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 4_000;

// setpriv (util-linux, on every Debian) execs redis-server with PR_SET_PDEATHSIG, so the
// kernel kills redis even when this process dies by SIGKILL and no exit hook runs.
const SETPRIV_BINARY = '/usr/bin/setpriv';

const liveChildren = new Set<ChildProcess>();
let isExitHookRegistered = false;

// A Jest worker that dies without calling stop() must not leave redis behind.
function registerExitHook(): void {
  if (isExitHookRegistered) return;
  isExitHookRegistered = true;
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

/**
 * Starts `redis-server` on a free 127.0.0.1 port with persistence off and
 * resolves once it answers PING.
 */
export async function startRedis(options: { extraArgs?: readonly string[] } = {}): Promise<RedisServer> {
  registerExitHook();
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt += 1) {
    const port = await getFreePort();
    try {
      const dataDir = mkdtempSync(join(tmpdir(), 'bff-redis-'));
      const extraArgs = options.extraArgs ?? [];
      const child = await spawnRedis(port, dataDir, extraArgs);
      return new RedisProcess(port, child, dataDir, extraArgs);
    } catch (err) {
      lastError = err;
      if (!(err instanceof RedisStartError) || !err.isPortInUse) throw err;
    }
  }
  throw lastError;
}

class RedisStartError extends Error {
  constructor(
    message: string,
    readonly isPortInUse: boolean,
  ) {
    super(message);
    this.name = 'RedisStartError';
  }
}

class RedisProcess implements RedisServer {
  readonly port: number;
  readonly url: string;
  private child: ChildProcess | undefined;

  constructor(
    port: number,
    child: ChildProcess,
    private readonly dataDir: string,
    private readonly extraArgs: readonly string[],
  ) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.child = child;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await killAndWait(child);
  }

  async restart(): Promise<void> {
    if (this.child) throw new Error(`redis on port ${this.port} is still running; stop() it first`);
    this.child = await spawnRedis(this.port, this.dataDir, this.extraArgs);
  }

  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, like a hung server. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}

function spawnRedis(port: number, dataDir: string, extraArgs: readonly string[]): Promise<ChildProcess> {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    // Nothing is saved unless a test asks (SAVE), and then into a directory of this instance, which restart() reloads.
    '--dir', dataDir,
    '--daemonize', 'no',
    '--logfile', '',
    '--loglevel', 'warning',
    ...extraArgs,
  ];
  const child = existsSync(SETPRIV_BINARY)
    ? spawn(SETPRIV_BINARY, ['--pdeathsig', 'KILL', REDIS_SERVER_BINARY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(REDIS_SERVER_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  return new Promise((resolve, reject) => {
    let isSettled = false;
    const fail = (message: string): void => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(deadline);
      const isPortInUse = /address already in use/i.test(output);
      void killAndWait(child).finally(() => {
        reject(new RedisStartError(`${message}\n--- redis-server output ---\n${output}`, isPortInUse));
      });
    };
    const deadline = setTimeout(
      () => fail(`redis-server on 127.0.0.1:${port} did not answer PING within ${READY_TIMEOUT_MS} ms`),
      READY_TIMEOUT_MS,
    );
    child.once('error', (err) => fail(`could not run ${REDIS_SERVER_BINARY}: ${err.message}`));
    child.once('exit', (code, signal) =>
      fail(`redis-server on 127.0.0.1:${port} exited during start-up (code ${code}, signal ${signal})`),
    );

    const poll = async (): Promise<void> => {
      while (!isSettled) {
        if (await answersPing(port)) {
          isSettled = true;
          clearTimeout(deadline);
          resolve(child);
          return;
        }
        await sleep(PING_INTERVAL_MS);
      }
    };
    void poll();
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (isUp: boolean): void => {
      socket.destroy();
      resolve(isUp);
    };
    socket.setTimeout(PING_TIMEOUT_MS, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      // "-LOADING" means redis is still reading a dataset: not ready yet.
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(escalation);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
