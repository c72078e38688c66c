// Shared by the benchmarks: real servers in their own processes, a seeded session, /proc readings.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const { TokenCipher } = require('../dist/session/token-cipher.js');
const { bindingFor } = require('../dist/session/binding.js');
const { SessionCookie } = require('../dist/session/session-cookie.js');

export const SECRET = 'bench-session-secret-0123456789abcdefghijklmnop';
export const COOKIE_NAME = 'bff-session';
export const USER_AGENT = 'bff-bench/1.0';

export async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(join(tmpdir(), 'bff-bench-'))], { stdio: 'ignore' });
  const client = new Redis({ port, lazyConnect: true, retryStrategy: () => 50 });
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await client.connect();
      break;
    } catch {
      await sleep(50);
    }
  }
  return { url: `redis://127.0.0.1:${port}`, client, stop: () => child.kill('SIGKILL') };
}

export async function seedSession(redis) {
  const sessionId = 'benchSessionId0123456789abcdefghijklmnopqrs'.slice(0, 43);
  const now = Date.now();
  const tokens = new TokenCipher([SECRET]).seal({
    accessToken: 'bench-access-token-'.padEnd(800, 'x'),
    refreshToken: 'bench-refresh-token',
    idToken: 'bench-id-token',
    accessTokenExpiresAt: now + 3_600_000,
  });
  const record = {
    cookie: { originalMaxAge: null, httpOnly: true, path: '/', sameSite: 'lax' },
    auth: {
      user: { sub: 'bench-user', name: 'Bench User', email: 'bench@example.test', preferredUsername: 'bench', groups: ['users'] },
      tokens,
      createdAt: now,
      absoluteExpiresAt: now + 3_600_000,
      binding: bindingFor('ua', USER_AGENT, undefined),
      idpSessionId: undefined,
    },
  };
  await redis.set(`bff:sess:${sessionId}`, JSON.stringify(record), 'EX', 3600);
  return new SessionCookie(COOKIE_NAME, [SECRET]).valueFor(sessionId);
}

export async function startServer(name, script, env) {
  const port = await freePort();
  const child = fork(join(here, 'servers', script), [], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 15_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { name, port, url: `${env.TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${port}/verify`, child, stop: () => child.kill('SIGKILL') };
}

/** CPU seconds (user + system) the process has used: steadier than throughput on a shared machine. */
export function cpuSecondsOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export function rssOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Asks a forked server for its counters ('stats' over IPC). */
export function statsOf(server) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (typeof message === 'object' && message !== null) {
        server.child.off('message', onMessage);
        resolve(message);
      }
    };
    server.child.on('message', onMessage);
    server.child.send('stats');
  });
}

/** The machine's load while the benchmark ran, printed beside its figures. */
export function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
