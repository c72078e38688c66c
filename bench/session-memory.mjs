// Redis memory per session, and /verify throughput at a million sessions against a thousand.
//
//   npm run bench                                  (builds dist/ first, then runs every benchmark)
//   npm run build && node bench/session-memory.mjs
//   BENCH_SESSIONS=1000,100000 BENCH_OTHER_SESSIONS=1000 node bench/session-memory.mjs   (quicker)
//   BENCH_THROUGHPUT_SHAPE=keycloak BENCH_OTHER_SESSIONS=1000,1000000 ...      (both shapes to a million)
//
// Sessions go through the real store code (dist/: RedisSessionStore, SessionSealer) into a real
// redis-server, in worker threads: a million test-IdP-shaped sessions take one to two minutes on
// two idle cores (sealing is deflate and AES per session), Keycloak-shaped ones about twice that,
// so by default those stop at 100,000 (BENCH_OTHER_SESSIONS=1000,1000000 to go on). Shapes: see
// bench/session-shapes.mjs (keycloak: Keycloak 26's three JWTs; test-idp: the repository's test
// IdP, the shape issue 8.10 measured at 2.0 KiB). Bytes per session are redis-server's used_memory
// grown over the sessions stored, divided by their number: records, the active-sessions index and
// the back-channel logout indexes included, with the hash tables they grew. The "previous" rows
// write the format of the version before (connect-redis JSON with base64 sealed tokens, an index
// key per IdP session and per subject) by hand, for the before/after comparison.
//
// Throughput: the gateway (bench/servers/gateway.mjs, SESSION_CACHE=off so that every request reads
// Redis) against two redis-servers holding a thousand and a million sessions of the same shape; the
// load (autocannon) asks for the same number of distinct sessions in turn on both, so that only the
// size of the store differs. Rounds interleave the two, in alternating order; the median counts.
import { createCipheriv, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { benchSessionId, SESSION_SHAPES } from './session-shapes.mjs';

const require = createRequire(import.meta.url);
const { RedisSessionStore, SESSION_KEY_PREFIX, ACTIVE_SESSIONS_KEY } = require('../dist/session/redis-session-store.js');
const { SessionSealer } = require('../dist/session/session-sealer.js');
const { bindingFor } = require('../dist/session/binding.js');

const IDLE_TTL_SECONDS = 1800;
const BATCH = 500;
const TARGET_BYTES_PER_SESSION = 1.2 * 1024;


/** Stores sessions `from`..`to` - 1 of `shape` through RedisSessionStore, split over worker threads. */
async function seedInWorkers(redisUrl, shape, from, to, secret, userAgent) {
  const workers = Math.max(1, Math.min(4, availableParallelism()));
  const step = Math.ceil((to - from) / workers);
  await Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const start = from + index * step;
      const end = Math.min(to, start + step);
      if (start >= end) return Promise.resolve();
      const worker = new Worker(new URL(import.meta.url), { workerData: { redisUrl, shape, from: start, to: end, secret, userAgent } });
      return new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a seeding worker exited with ${code}`))));
      });
    }),
  );
}

async function seedRange({ redisUrl, shape, from, to, secret, userAgent }) {
  const { Redis } = require('ioredis');
  // Auto-pipelining: the commands of a batch of saves leave in a few writes.
  const client = new Redis(redisUrl, { enableAutoPipelining: true });
  const store = new RedisSessionStore({
    client,
    guard: (_operation, command) => command(),
    sealer: new SessionSealer([secret]),
    idleTtlSecondsOf: () => IDLE_TTL_SECONDS,
    clock: { now: () => Date.now() },
  });
  const build = SESSION_SHAPES[shape];
  const userAgentHash = bindingFor('ua', userAgent, undefined).userAgent;
  for (let index = from; index < to; index += BATCH) {
    const now = Date.now();
    const saves = [];
    for (let offset = index; offset < Math.min(to, index + BATCH); offset++) saves.push(store.save(benchSessionId(shape, offset), build(offset, now, userAgentHash)));
    await Promise.all(saves);
  }
  await client.quit();
}

/**
 * The format before this version, by hand: connect-redis JSON with express-session's cookie and
 * the token set sealed on its own (AES-256-GCM, base64url), an active-index member, and sorted
 * sets `bff:idp-sid:<sid>` and `bff:idp-sub:<sub>` per session.
 */
async function writePrevious(client, shape, count, userAgent) {
  const build = SESSION_SHAPES[shape];
  const userAgentHash = bindingFor('ua', userAgent, undefined).userAgent;
  const key = randomBytes(32);
  for (let index = 0; index < count; index += BATCH) {
    const pipeline = client.pipeline();
    const now = Date.now();
    for (let offset = index; offset < Math.min(count, index + BATCH); offset++) {
      const id = benchSessionId(`previous-${shape}`, offset);
      const { auth } = build(offset, now, userAgentHash);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(JSON.stringify(auth.tokens)), cipher.final(), cipher.getAuthTag()]);
      const tokens = `v1.AbCdEfGh.${iv.toString('base64url')}.${body.toString('base64url')}`;
      const cookie = { originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: '/', sameSite: 'lax' };
      pipeline.set(`bff:sess:${id}`, JSON.stringify({ cookie, auth: { ...auth, tokens } }), 'EX', IDLE_TTL_SECONDS);
      pipeline.zadd('bff:sessions:active', now + IDLE_TTL_SECONDS * 1000, id);
      for (const indexKey of [`bff:idp-sid:${auth.idpSessionId}`, `bff:idp-sub:${auth.user.sub}`]) {
        pipeline.zadd(indexKey, auth.absoluteExpiresAt, id);
        pipeline.expire(indexKey, Math.ceil((auth.absoluteExpiresAt - now) / 1000) + 60);
      }
    }
    await pipeline.exec();
  }
}

const counts = (list) => list.split(',').map(Number).sort((a, b) => a - b);
const SHAPES = (process.env.BENCH_SHAPES ?? 'keycloak,test-idp').split(',');
/** The shape whose sessions are counted to a million and whose /verify throughput is compared. */
const THROUGHPUT_SHAPE = process.env.BENCH_THROUGHPUT_SHAPE ?? 'test-idp';
const COUNTS = counts(process.env.BENCH_SESSIONS ?? '1000,1000000');
/** The other shapes: a million Keycloak-shaped sessions take minutes to seal on two cores, and 2 GB of Redis. */
const OTHER_COUNTS = counts(process.env.BENCH_OTHER_SESSIONS ?? '1000,100000');
const PREVIOUS_COUNT = Number(process.env.BENCH_PREVIOUS_SESSIONS ?? 10_000);
const HOT_SESSIONS = Number(process.env.BENCH_HOT_SESSIONS ?? 1000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function main() {
  const support = await import('./support.mjs');
  for (const shape of SHAPES) if (!SESSION_SHAPES[shape]) throw new Error(`unknown shape ${shape}: one of ${Object.keys(SESSION_SHAPES).join(', ')}`);
  // The shape measured for throughput goes last: its million sessions stay in Redis for it, alone.
  const shapes = [...SHAPES.filter((shape) => shape !== THROUGHPUT_SHAPE), ...SHAPES.filter((shape) => shape === THROUGHPUT_SHAPE)];
  const isThroughputMeasured = shapes.includes(THROUGHPUT_SHAPE) && COUNTS.length > 1;
  const printer = rowPrinter();
  let large;
  let version = '';
  for (const shape of shapes) {
    const redis = await support.startRedis();
    try {
      version = /^redis_version:(\S+)/m.exec(await redis.client.info('server'))[1];
      if (PREVIOUS_COUNT > 0) {
        const base = await usedMemory(redis.client);
        const started = performance.now();
        await writePrevious(redis.client, shape, PREVIOUS_COUNT, support.USER_AGENT);
        printer(await measure(redis.client, shape, 'previous', PREVIOUS_COUNT, base, started, (index) => benchSessionId(`previous-${shape}`, index)));
        await redis.client.flushall();
      }
      const base = await usedMemory(redis.client);
      let stored = 0;
      for (const count of shape === THROUGHPUT_SHAPE ? COUNTS : OTHER_COUNTS) {
        const started = performance.now();
        await seedInWorkers(redis.url, shape, stored, count, support.SECRET, support.USER_AGENT);
        stored = count;
        printer(await measure(redis.client, shape, 'sealed', count, base, started, (index) => benchSessionId(shape, index)));
      }
      if (shape === THROUGHPUT_SHAPE && isThroughputMeasured) large = redis;
    } finally {
      if (large !== redis) {
        redis.client.disconnect();
        redis.stop();
      }
    }
  }
  console.log(`\ntarget: at most ${TARGET_BYTES_PER_SESSION.toFixed(0)} bytes (1.2 KiB) per session, indexes included; redis-server ${version}, Node ${process.version}`);
  if (large) await compareThroughput(support, large);
}

async function usedMemory(client) {
  return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))[1]);
}

/** Bytes per session overall, and what MEMORY USAGE says of a record, the active index and the IdP indexes. */
async function measure(client, shape, format, count, base, started, idOf) {
  const seconds = (performance.now() - started) / 1000;
  const used = await usedMemory(client);
  const samples = Math.min(count, 200);
  const recordPipeline = client.pipeline();
  for (let sample = 0; sample < samples; sample++) recordPipeline.memory('USAGE', SESSION_KEY_PREFIX + idOf(Math.floor((sample * count) / samples)));
  const records = (await recordPipeline.exec()).map(([, bytes]) => Number(bytes));
  const active = Number(await client.memory('USAGE', ACTIVE_SESSIONS_KEY, 'SAMPLES', '0'));
  const indexKeys = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', 'bff:idp-*', 'COUNT', 10_000);
    indexKeys.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  let indexBytes = 0;
  for (let offset = 0; offset < indexKeys.length; offset += 5000) {
    const pipeline = client.pipeline();
    for (const key of indexKeys.slice(offset, offset + 5000)) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    for (const [, bytes] of await pipeline.exec()) indexBytes += Number(bytes);
  }
  return {
    shape,
    format,
    count,
    perSession: (used - base) / count,
    record: records.reduce((sum, bytes) => sum + bytes, 0) / records.length,
    active: active / count,
    index: indexBytes / count,
    indexKeys: indexKeys.length,
    seconds,
  };
}

function rowPrinter() {
  const columns = [
    ['shape', 10, (row) => row.shape],
    ['format', 9, (row) => row.format],
    ['sessions', 10, (row) => row.count.toLocaleString('en')],
    ['bytes/session', 14, (row) => row.perSession.toFixed(0)],
    ['KiB', 6, (row) => (row.perSession / 1024).toFixed(2)],
    ['record', 8, (row) => row.record.toFixed(0)],
    ['active idx', 11, (row) => row.active.toFixed(0)],
    ['IdP idx', 8, (row) => row.index.toFixed(0)],
    ['IdP keys', 9, (row) => row.indexKeys.toLocaleString('en')],
    ['stored in', 10, (row) => `${row.seconds.toFixed(1)} s`],
  ];
  console.log('\nRedis memory per session: used_memory grown / sessions (records, active index and IdP indexes together);');
  console.log('record, active idx and IdP idx: MEMORY USAGE of a record (mean of 200), of the active index and of every IdP index key, per session\n');
  console.log(columns.map(([title, width], index) => (index < 2 ? title.padEnd(width) : title.padStart(width))).join(' '));
  return (row) => console.log(columns.map(([, width, value], index) => (index < 2 ? value(row).padEnd(width) : value(row).padStart(width))).join(' '));
}

/** /verify against a thousand and a million stored sessions, interleaved rounds, the same number of distinct sessions asked for. */
async function compareThroughput(support, large) {
  const { SessionCookie } = require('../dist/session/session-cookie.js');
  const autocannon = (await import('autocannon')).default;
  const smallCount = COUNTS[0];
  const largeCount = COUNTS[COUNTS.length - 1];
  const small = await support.startRedis();
  const servers = [];
  try {
    await seedInWorkers(small.url, THROUGHPUT_SHAPE, 0, smallCount, support.SECRET, support.USER_AGENT);
    const env = {
      SESSION_SECRET: support.SECRET,
      COOKIE_NAME: support.COOKIE_NAME,
      OIDC_ISSUER: 'http://127.0.0.1:9/unreachable',
      OIDC_CLIENT_ID: 'bench',
      OIDC_CLIENT_SECRET: 'bench',
      LOG_LEVEL: 'silent',
      PUBLIC_URL: 'http://app.example.test',
      // Every request reads its session from Redis: the store's size is what is compared, not the
      // in-process session cache (SESSION_CACHE=on reads each session from Redis at most once a second).
      SESSION_CACHE: 'off',
    };
    const cookie = new SessionCookie(support.COOKIE_NAME, [support.SECRET]);
    const hot = Math.min(HOT_SESSIONS, smallCount);
    const picked = new Set();
    while (picked.size < hot) picked.add(Math.floor(Math.random() * largeCount));
    const targets = [
      { label: smallCount.toLocaleString('en'), redis: small, indexes: Array.from({ length: hot }, (_, index) => index) },
      { label: largeCount.toLocaleString('en'), redis: large, indexes: [...picked] },
    ];
    for (const target of targets) {
      target.server = await support.startServer(`gateway on ${target.label} sessions`, 'gateway.mjs', { ...env, REDIS_URL: target.redis.url });
      servers.push(target.server);
      target.cookies = target.indexes.map((index) => `${support.COOKIE_NAME}=${cookie.valueFor(benchSessionId(THROUGHPUT_SHAPE, index))}`);
      target.rounds = [];
    }
    const load = async (target, seconds) => {
      const cpuBefore = support.cpuSecondsOf(target.server.child.pid);
      const redisPid = target.redis.child?.pid;
      const redisCpuBefore = redisPid ? support.cpuSecondsOf(redisPid) : 0;
      let next = 0;
      const result = await autocannon({
        url: target.server.url,
        connections: CONNECTIONS,
        duration: seconds,
        headers: { 'user-agent': support.USER_AGENT, 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.test', 'x-forwarded-uri': '/api/orders/42' },
        requests: [{ setupRequest: (request) => ({ ...request, headers: { ...request.headers, cookie: target.cookies[next++ % target.cookies.length] } }) }],
      });
      const wrong = result.non2xx + result.errors + result.timeouts;
      if (wrong > 0) throw new Error(`${target.label} sessions: ${wrong} of ${result.requests.total} answers were not 2xx`);
      const perRequest = (seconds) => (seconds * 1e6) / Math.max(1, result.requests.total);
      const cpu = perRequest(support.cpuSecondsOf(target.server.child.pid) - cpuBefore);
      const redisCpu = redisPid ? perRequest(support.cpuSecondsOf(redisPid) - redisCpuBefore) : NaN;
      return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpu, redisCpu };
    };
    // Warm-up: JIT, connection pools, and every asked-for session read once.
    for (const target of targets) await load(target, 2);
    // The order alternates from round to round, so that whatever else the machine does hits both alike.
    for (let round = 0; round < ROUNDS; round++) for (const target of round % 2 ? [...targets].reverse() : targets) target.rounds.push(await load(target, SECONDS));

    console.log(`\n/verify with ${THROUGHPUT_SHAPE}-shaped sessions: ${hot.toLocaleString('en')} distinct sessions asked for in turn, ${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds (median), load average ${support.loadAverage()}\n`);
    console.log('sessions stored'.padEnd(16), 'req/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'CPU µs/req'.padStart(11), 'Redis CPU µs/req'.padStart(17));
    const medians = targets.map((target) => ({
      label: target.label,
      rps: support.median(target.rounds.map((r) => r.rps)),
      p50: support.median(target.rounds.map((r) => r.p50)),
      p99: support.median(target.rounds.map((r) => r.p99)),
      cpu: support.median(target.rounds.map((r) => r.cpu)),
      redisCpu: support.median(target.rounds.map((r) => r.redisCpu)),
    }));
    for (const row of medians) {
      console.log(row.label.padEnd(16), row.rps.toFixed(0).padStart(9), String(row.p50).padStart(8), String(row.p99).padStart(8), row.cpu.toFixed(0).padStart(11), row.redisCpu.toFixed(1).padStart(17));
    }
    const [few, many] = medians;
    console.log(`\nat ${many.label} sessions /verify serves ${(many.rps / few.rps).toFixed(2)} of the requests per second it serves at ${few.label} (target: at least 0.90), at ${(many.cpu / few.cpu).toFixed(2)}x the CPU per request.`);
  } finally {
    for (const server of servers) server.stop();
    for (const redis of [small, large]) {
      redis.client.disconnect();
      redis.stop();
    }
  }
}

// The main thread measures; worker threads (this same file) store sessions.
if (isMainThread) {
  main().catch((error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  });
} else {
  await seedRange(workerData);
  parentPort.postMessage('done');
}
