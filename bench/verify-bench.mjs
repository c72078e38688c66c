// /verify throughput and latency against baselines measured in the same run.
//
//   npm run bench                      (defaults: 50 connections, 6 s per round, 3 rounds)
//   BENCH_SECONDS=10 BENCH_ROUNDS=5 npm run bench
//
// Each server runs in its own process against one real redis-server; the load
// comes from autocannon in this process. Rounds interleave the servers so that
// machine noise hits them alike; the median round counts. Ratios compare with
// the floor: a bare node:http server that checks the cookie's HMAC, GETs the
// session from Redis and unseals it with the gateway's own code (SessionSealer).
// The gateway runs twice, with SESSION_CACHE=on (the default with Redis) and
// off, and the machine's load average is printed before and after the rounds.
import autocannon from 'autocannon';
import { availableParallelism } from 'node:os';
import { COOKIE_NAME, cpuSecondsOf, loadAverage, median, rssOf, SECRET, seedSession, startRedis, startServer, USER_AGENT } from './support.mjs';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const GATEWAY_CACHED = 'bff-gateway /verify, SESSION_CACHE=on';
const GATEWAY_UNCACHED = 'bff-gateway /verify, SESSION_CACHE=off';

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


async function main() {
  const redis = await startRedis();
  const cookie = await seedSession(redis.client);
  const env = { REDIS_URL: redis.url, SESSION_SECRET: SECRET, COOKIE_NAME, OIDC_ISSUER: 'http://127.0.0.1:9/unreachable', OIDC_CLIENT_ID: 'bench', OIDC_CLIENT_SECRET: 'bench', LOG_LEVEL: 'silent', PUBLIC_URL: 'http://app.example.test' };
  const servers = [
    await startServer('floor: node:http + HMAC + Redis GET + unseal', 'bare-node.mjs', env),
    await startServer('express 5 + express-session (textbook)', 'express-session.mjs', env),
    await startServer(GATEWAY_CACHED, 'gateway.mjs', { ...env, SESSION_CACHE: 'on' }),
    await startServer(GATEWAY_UNCACHED, 'gateway.mjs', { ...env, SESSION_CACHE: 'off' }),
  ];
  const loadBefore = loadAverage();
  const rounds = new Map(servers.map((server) => [server.name, []]));
  try {
    for (const server of servers) await load(server, cookie, 1); // warm-up: JIT, connection pools
    for (let round = 0; round < ROUNDS; round++) {
      for (const server of servers) {
        const result = await load(server, cookie, SECONDS);
        rounds.get(server.name).push(result);
        process.stderr.write(`round ${round + 1}/${ROUNDS}, ${server.name}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99} ms, ${result.cpuMicrosPerRequest.toFixed(0)} µs CPU/req, load ${loadAverage()}\n`);
      }
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
  console.log(`\n/verify benchmark: ${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds (median), one redis-server, Node ${process.version}`);
  console.log(`load average (1, 5, 15 min): ${loadBefore} before the rounds, ${loadAverage()} after; ${availableParallelism()} cores\n`);
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
  const ratios = (name) => {
    const row = summary.find((entry) => entry.name === name);
    return { rps: row.rps / floor, p99: row.p99 / summary[0].p99, cpu: floorCpu / row.cpu };
  };
  const cached = ratios(GATEWAY_CACHED);
  const uncached = ratios(GATEWAY_UNCACHED);
  const verdict = (isMet) => (isMet ? 'met' : 'not met');
  console.log(`\nvs the floor, SESSION_CACHE=on:  ${cached.rps.toFixed(2)} of its req/s, p99 ${cached.p99.toFixed(2)}x, CPU ratio ${cached.cpu.toFixed(2)}`);
  console.log(`vs the floor, SESSION_CACHE=off: ${uncached.rps.toFixed(2)} of its req/s, p99 ${uncached.p99.toFixed(2)}x, CPU ratio ${uncached.cpu.toFixed(2)}`);
  console.log(`issue 11 goal 1 (default configuration: >= 0.85 of the floor's req/s, p99 <= 1.3x): ${verdict(cached.rps >= 0.85 && cached.p99 <= 1.3)} in this run`);
  console.log(`issue 11 goal 3 (SESSION_CACHE=on: >= 1.0 of the floor's req/s): ${verdict(cached.rps >= 1)} in this run`);
  console.log('CPU ratio = floor CPU per request / server CPU per request: steadier than req/s on a shared machine.');
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
