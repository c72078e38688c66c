// API calls through a real Traefik, with and without ForwardAuth, in one run.
//
//   npm run bench                 (runs this after the /verify benchmark)
//   node bench/traefik-bench.mjs  (after npm run build; BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS)
//
// Four routes on one Traefik entry point, each to the same upstream:
//   no ForwardAuth                       the ceiling of the route itself
//   ForwardAuth -> gateway, HTTP/1.1     http://…/verify
//   ForwardAuth -> gateway, TLS + HTTP/2 https://…/verify with tls.ca (what deploy/traefik/dynamic.yml ships)
//   ForwardAuth -> instant server, h2    an auth server that answers 200 at once: the ceiling of ForwardAuth
// Load: wrk, one thread, keep-alive, a logged-in session's cookie. Rounds
// interleave the routes; the median round counts. New TCP connections per
// request are counted by the auth servers themselves (accepted connections).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import {
  COOKIE_NAME,
  cpuSecondsOf,
  forwardAuth as forwardAuthTo,
  loadAverage,
  median,
  PINS,
  REPO,
  requireTool,
  runWrk,
  SECRET,
  seedSession,
  startRedis,
  startServer,
  startTraefik,
  statsOf,
  USER_AGENT,
} from './support.mjs';

const { AUTH_RESPONSE_HEADERS_REGEX } = createRequire(import.meta.url)('../dist/forwardauth/identity-headers.js');
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const forwardAuth = (address, caFile) => forwardAuthTo(address, AUTH_RESPONSE_HEADERS_REGEX, caFile);

function dynamicConfiguration({ upstream, gatewayHttp1, gatewayHttp2, instantHttp2, caFile }) {
  const router = (prefix, middlewares) => ({ rule: `PathPrefix(\`${prefix}\`)`, entryPoints: ['web'], service: 'api', ...(middlewares ? { middlewares } : {}) });
  return {
    http: {
      middlewares: {
        'auth-gateway-http1': forwardAuth(`${gatewayHttp1}`),
        'auth-gateway-http2': forwardAuth(`${gatewayHttp2}`, caFile),
        'auth-instant-http2': forwardAuth(`${instantHttp2}`, caFile),
      },
      routers: {
        none: router('/none'),
        'gateway-http1': router('/gateway-http1', ['auth-gateway-http1']),
        'gateway-http2': router('/gateway-http2', ['auth-gateway-http2']),
        'instant-http2': router('/instant-http2', ['auth-instant-http2']),
      },
      services: { api: { loadBalancer: { servers: [{ url: upstream }] } } },
    },
  };
}

async function measure(route, traefik, cookie, seconds) {
  const before = route.authServer ? (await statsOf(route.authServer)).connectionsAccepted : 0;
  const cpuBefore = route.authServer ? cpuSecondsOf(route.authServer.child.pid) : 0;
  const result = runWrk(`http://127.0.0.1:${traefik.port}${route.path}/orders/42`, {
    connections: CONNECTIONS,
    seconds,
    headers: { Cookie: `${COOKIE_NAME}=${cookie}`, 'User-Agent': USER_AGENT },
  });
  const opened = route.authServer ? (await statsOf(route.authServer)).connectionsAccepted - before : 0;
  const cpu = route.authServer ? ((cpuSecondsOf(route.authServer.child.pid) - cpuBefore) * 1e6) / Math.max(1, result.requests) : 0;
  if (result.errors > 0) throw new Error(`${route.name}: ${result.errors} of ${result.requests} answers were errors or not 2xx`);
  return { ...result, opened, cpu };
}

async function main() {
  requireTool('wrk', 'apt-get install -y wrk');
  const directory = mkdtempSync(join(tmpdir(), 'bff-traefik-bench-'));
  const certificates = spawnSync(join(REPO, 'scripts', 'dev-cert.sh'), [directory], { encoding: 'utf8' });
  if (certificates.status !== 0) throw new Error(`scripts/dev-cert.sh failed: ${certificates.stderr}`);
  const tls = { TLS_CERT_FILE: join(directory, 'tls.crt'), TLS_KEY_FILE: join(directory, 'tls.key') };

  const redis = await startRedis();
  const cookie = await seedSession(redis.client);
  const env = { REDIS_URL: redis.url, SESSION_SECRET: SECRET, OIDC_ISSUER: 'http://127.0.0.1:9/unreachable', OIDC_CLIENT_ID: 'bench', OIDC_CLIENT_SECRET: 'bench', LOG_LEVEL: 'silent', PUBLIC_URL: 'http://app.example.test', TRUSTED_PROXIES: '127.0.0.1/32' };
  const processes = [];
  const started = async (server) => (processes.push(server), server);
  let traefik;
  try {
    const upstream = await started(await startServer('upstream', 'upstream.mjs', {}));
    const gatewayHttp1 = await started(await startServer('gateway over HTTP/1.1', 'gateway.mjs', env));
    const gatewayHttp2 = await started(await startServer('gateway over TLS + HTTP/2', 'gateway.mjs', { ...env, ...tls }));
    const instantHttp2 = await started(await startServer('instant auth server over TLS + HTTP/2', 'instant-auth.mjs', tls));
    traefik = await startTraefik(
      directory,
      dynamicConfiguration({
        upstream: `http://127.0.0.1:${upstream.port}`,
        gatewayHttp1: gatewayHttp1.url,
        gatewayHttp2: gatewayHttp2.url,
        instantHttp2: instantHttp2.url,
        caFile: join(directory, 'ca.crt'),
      }),
    );
    const routes = [
      { name: 'no ForwardAuth', path: '/none' },
      { name: 'ForwardAuth -> gateway, HTTP/1.1', path: '/gateway-http1', authServer: gatewayHttp1 },
      { name: 'ForwardAuth -> gateway, TLS + HTTP/2', path: '/gateway-http2', authServer: gatewayHttp2 },
      { name: 'ForwardAuth -> instant server, TLS + HTTP/2', path: '/instant-http2', authServer: instantHttp2 },
    ];
    const rounds = new Map(routes.map((route) => [route.name, []]));
    for (const route of routes) await measure(route, traefik, cookie, 1); // warm-up: JIT, connection pools, TLS sessions
    for (let round = 0; round < ROUNDS; round++) {
      for (const route of routes) rounds.get(route.name).push(await measure(route, traefik, cookie, SECONDS));
    }
    report(routes, rounds);
  } finally {
    traefik?.stop();
    for (const server of processes) server.stop();
    redis.client.disconnect();
    redis.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

function report(routes, rounds) {
  const summary = routes.map((route) => {
    const results = rounds.get(route.name);
    const requests = results.reduce((sum, result) => sum + result.requests, 0);
    const opened = results.reduce((sum, result) => sum + result.opened, 0);
    return {
      name: route.name,
      rps: median(results.map((result) => result.rps)),
      p50: median(results.map((result) => result.p50)),
      p99: median(results.map((result) => result.p99)),
      cpu: median(results.map((result) => result.cpu)),
      openedPerRequest: route.authServer ? opened / Math.max(1, requests) : undefined,
    };
  });
  const [none, gatewayHttp1, gatewayHttp2, instant] = summary;
  console.log(`\nThrough Traefik ${PINS.traefik.version}: ${CONNECTIONS} connections (wrk, keep-alive), ${SECONDS} s x ${ROUNDS} rounds (median), Node ${process.version}, load average ${loadAverage()}\n`);
  console.log('route'.padEnd(44), 'req/s'.padStart(8), 'vs none'.padStart(8), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'auth CPU µs/req'.padStart(16), 'new conns/req'.padStart(14));
  for (const row of summary) {
    console.log(
      row.name.padEnd(44),
      row.rps.toFixed(0).padStart(8),
      (row.rps / none.rps).toFixed(2).padStart(8),
      row.p50.toFixed(2).padStart(8),
      row.p99.toFixed(2).padStart(8),
      (row.cpu ? row.cpu.toFixed(0) : '-').padStart(16),
      (row.openedPerRequest === undefined ? '-' : `${(row.openedPerRequest * 100).toFixed(2)}%`).padStart(14),
    );
  }
  console.log(
    `\nForwardAuth to the gateway over TLS + HTTP/2 reaches ${(gatewayHttp2.rps / instant.rps).toFixed(2)} of ForwardAuth to the instant HTTP/2 server ` +
      `(target: at least 0.80) and opens a connection for ${(gatewayHttp2.openedPerRequest * 100).toFixed(2)}% of requests (target: under 1%);`,
  );
  console.log(
    `over HTTP/1.1 it reaches ${(gatewayHttp1.rps / instant.rps).toFixed(2)} of that, opening a connection for ${(gatewayHttp1.openedPerRequest * 100).toFixed(1)}% of requests ` +
      `(Traefik's ForwardAuth client keeps 2 idle connections per host over HTTP/1.1).`,
  );
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
