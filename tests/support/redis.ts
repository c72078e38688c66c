import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RestartableServer, startGuarded, type GuardedProcess } from './child-process';
import { withFreePort } from './ports';

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
const PING_INTERVAL_MS = 50;
const PING_TIMEOUT_MS = 500;
const OUTPUT_TAIL_CHARS = 4_000;

/**
 * Starts `redis-server` on a free 127.0.0.1 port with persistence off and
 * resolves once it answers PING.
 */
export async function startRedis(options: { extraArgs?: readonly string[] } = {}): Promise<RedisServer> {
  return withFreePort(async (port) => {
    const redis = new RedisProcess(port, mkdtempSync(join(tmpdir(), 'bff-redis-')), options.extraArgs ?? []);
    await redis.start();
    return redis;
  });
}

class RedisProcess extends RestartableServer implements RedisServer {
  readonly url: string;

  constructor(
    readonly port: number,
    private readonly dataDir: string,
    private readonly extraArgs: readonly string[],
  ) {
    super(`redis on port ${port}`);
    this.url = `redis://127.0.0.1:${port}`;
  }

  protected spawn(): Promise<GuardedProcess> {
    return spawnRedis(this.port, this.dataDir, this.extraArgs);
  }
}

function spawnRedis(port: number, dataDir: string, extraArgs: readonly string[]): Promise<GuardedProcess> {
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
  return startGuarded(REDIS_SERVER_BINARY, args, {
    name: `redis-server on 127.0.0.1:${port}`,
    readiness: 'answer PING',
    isReady: () => answersPing(port),
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: PING_INTERVAL_MS,
    outputLabel: 'redis-server',
    outputTailChars: OUTPUT_TAIL_CHARS,
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
