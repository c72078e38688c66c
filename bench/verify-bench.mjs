// /verify throughput and latency against baselines measured in the same run.
//
//   npm run bench                      (defaults: 50 connections, 6 s per round, 3 rounds)
//   BENCH_SECONDS=10 BENCH_ROUNDS=5 npm run bench
//
// Each server runs in its own process against one real redis-server; the load
// comes from autocannon in this process. Rounds interleave the servers so that
// machine noise hits them alike; the median round counts. Ratios compare with
// the floor: a bare node:http server that checks the cookie's HMAC and GETs the
// session from Redis.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const { TokenCipher } = require('../dist/session/token-cipher.js');
const { bindingFor } = require('../dist/session/binding.js');
const { SessionCookie } = require('../dist/session/session-cookie.js');

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECRET = 'bench-session-secret-0123456789abcdefghijklmnop';
const COOKIE_NAME = 'bff-session';
const USER_AGENT = 'bff-bench/1.0';

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
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

async function seedSession(redis) {
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

async function startServer(name, script, env) {
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
  return { name, url: `http://127.0.0.1:${port}/verify`, child, stop: () => child.kill('SIGKILL') };
}

/** CPU seconds (user + system) the process has used: steadier than throughput on a shared machine. */
function cpuSecondsOf(pid) {
  try {
    const fields = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function rssOf(pid) {
  try {
    const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function load(server, cookie, seconds) {
  const cpuBefore = cpuSecondsOf(server.child.pid);
  const result = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    duration: seconds,
    headers: {
      cookie: `${COOKIE_NAME}=${cookie}`,
      'user-agent': USER_AGENT,
      'x-forwarded-method': 'GET',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example.test',
      'x-forwarded-uri': '/api/orders/42',
    },
  });
  const wrong = result.non2xx + result.errors + result.timeouts;
  if (wrong > 0) throw new Error(`${server.name}: ${wrong} of ${result.requests.total} answers were not 2xx`);
  const cpuMicrosPerRequest = ((cpuSecondsOf(server.child.pid) - cpuBefore) * 1e6) / Math.max(1, result.requests.total);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, rssMb: rssOf(server.child.pid), cpuMicrosPerRequest };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main() {
  const redis = await startRedis();
  const cookie = await seedSession(redis.client);
  const env = { REDIS_URL: redis.url, SESSION_SECRET: SECRET, COOKIE_NAME, OIDC_ISSUER: 'http://127.0.0.1:9/unreachable', OIDC_CLIENT_ID: 'bench', OIDC_CLIENT_SECRET: 'bench', LOG_LEVEL: 'silent', PUBLIC_URL: 'http://app.example.test' };
  const servers = [
    await startServer('bare node:http + HMAC + Redis GET (floor)', 'bare-node.mjs', env),
    await startServer('express 5 + express-session (textbook)', 'express-session.mjs', env),
    await startServer('bff-gateway /verify', 'gateway.mjs', env),
  ];
  const rounds = new Map(servers.map((server) => [server.name, []]));
  try {
    for (const server of servers) await load(server, cookie, 1); // warm-up: JIT, connection pools
    for (let round = 0; round < ROUNDS; round++) {
      for (const server of servers) rounds.get(server.name).push(await load(server, cookie, SECONDS));
    }
  } finally {
    for (const server of servers) server.stop();
    redis.client.disconnect();
    redis.stop();
  }
  const summary = servers.map((server) => {
    const results = rounds.get(server.name);
    return {
      name: server.name,
      rps: median(results.map((r) => r.rps)),
      p50: median(results.map((r) => r.p50)),
      p99: median(results.map((r) => r.p99)),
      rssMb: median(results.map((r) => r.rssMb)),
      cpu: median(results.map((r) => r.cpuMicrosPerRequest)),
    };
  });
  const floor = summary[0].rps;
  console.log(`\n/verify benchmark: ${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds (median), one redis-server, Node ${process.version}\n`);
  console.log('server'.padEnd(46), 'req/s'.padStart(9), 'ratio'.padStart(7), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'CPU µs/req'.padStart(11), 'CPU ratio'.padStart(10), 'RSS MB'.padStart(8));
  const floorCpu = summary[0].cpu;
  for (const row of summary) {
    console.log(
      row.name.padEnd(46),
      row.rps.toFixed(0).padStart(9),
      (row.rps / floor).toFixed(2).padStart(7),
      String(row.p50).padStart(8),
      String(row.p99).padStart(8),
      row.cpu.toFixed(0).padStart(11),
      (floorCpu / row.cpu).toFixed(2).padStart(10),
      row.rssMb.toFixed(0).padStart(8),
    );
  }
  const gatewayRatio = summary[2].rps / floor;
  console.log(`\nbff-gateway /verify serves ${gatewayRatio.toFixed(2)} of the floor's requests per second (target: at least 0.75);`);
  console.log(`per request it spends ${(summary[2].cpu / floorCpu).toFixed(2)}x the floor's CPU time (CPU ratio = floor CPU / server CPU, steadier on a shared machine).`);
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
