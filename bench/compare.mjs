// bff-gateway's /verify against the floor and against oauth2-proxy's /oauth2/auth, directly and
// through Traefik, in one run; writes bench/results/comparison-report.md and comparison-data.csv.
//
//   npm run bench:compare                                  (builds dist/ first)
//   BENCH_SECONDS=10 BENCH_ROUNDS=5 npm run bench:compare
//   BENCH_CONNECTIONS=50,1000 BENCH_TRAEFIK_CONNECTIONS=50 (the defaults)
//
// Servers, each in its own process, on one redis-server:
//   floor          bench/servers/bare-node-probed.mjs: bare-node.mjs (node:http, cookie HMAC, one
//                  Redis GET of a seeded session, unsealed with the gateway's own code) with event-loop probes
//   bff-gateway    bench/servers/gateway-probed.mjs: the built gateway, default configuration
//                  (telemetry on, no exporter), with event-loop and Redis-queue probes
//   oauth2-proxy   v7.15.6 from the Go module proxy, --session-store-type=redis, auth-only /oauth2/auth
// The gateway and oauth2-proxy both log in through the real authorization-code flow (PKCE) at the
// same oidc-provider process (tests/support/idp/test-idp.mts), each as its own client.
// Load: wrk, one thread, keep-alive, at each connection count; rounds interleave the servers and
// the median round counts; errors and requests over 2 s are summed over the rounds. Then the same
// through Traefik, with and without ForwardAuth. Method and reading: docs/benchmark.md.
// CPU per request: user + system time of the server process (/proc/<pid>/stat) over requests served.
// Beside it, what explains late requests at 1,000 connections: the server's accept queue (ss), the
// kernel's listen drops and retransmissions, event-loop delay, and the neighbours' CPU.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Browser, logIn } from './compare/browser.mjs';
import { startTestIdp } from './compare/idp.mjs';
import { ensureOauth2Proxy, oauth2ProxyVersion, OAUTH2_PROXY_VERSION, startOauth2Proxy } from './compare/oauth2-proxy.mjs';
import {
  COOKIE_NAME,
  cpuSecondsOf,
  forwardAuth,
  freePort,
  killStartedProcesses,
  loadAverage,
  machineDescription,
  median,
  PINS,
  REPO,
  requireTool,
  rssOf,
  runWrkAsync,
  sampleAcceptQueue,
  SECRET,
  seedSession,
  startRedis,
  startServer,
  startTraefik,
  statsOf,
  tcpCounters,
  temporaryDirectory,
  traefikBinary,
  USER_AGENT,
} from './support.mjs';

const { AUTH_RESPONSE_HEADERS_REGEX } = createRequire(import.meta.url)('../dist/forwardauth/identity-headers.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTION_COUNTS = (process.env.BENCH_CONNECTIONS ?? '50,1000').split(',').map(Number);
const TRAEFIK_CONNECTIONS = Number(process.env.BENCH_TRAEFIK_CONNECTIONS ?? 50);
const RESULTS = join(REPO, 'bench', 'results');
const GATEWAY_CLIENT = { client_id: 'bff-bench', client_secret: 'bff-bench-secret-0123456789abcdef' };
const OAUTH2_PROXY_CLIENT = { client_id: 'oauth2-proxy-bench', client_secret: 'oauth2-proxy-bench-secret-0123456789' };
// Long enough that no token is refreshed during the run, by either tool.
const ACCESS_TOKEN_TTL_SECONDS = 3600;
const BENCH_USER = 'bench';
// What Traefik sends a ForwardAuth server; the direct runs send the same.
const FORWARDED = { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'app.example.test', 'X-Forwarded-Uri': '/api/orders/42' };

const log = (line) => process.stderr.write(`bench:compare: ${line}\n`);

function checkTools() {
  requireTool('wrk', 'apt-get install -y wrk', ['-v']);
  requireTool('redis-server', 'apt-get install -y redis-server');
  requireTool('openssl', 'apt-get install -y openssl', ['version']);
  if (spawnSync(traefikBinary(), ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`traefik ${PINS.traefik.version} is missing at ${traefikBinary()}: npm test builds it (scripts/provision-test-servers.mjs), or set TRAEFIK_BIN`);
  }
  const openFiles = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
  const needed = Math.max(...CONNECTION_COUNTS, TRAEFIK_CONNECTIONS) + 100;
  if (openFiles < needed) throw new Error(`open file limit ${openFiles} is below ${needed}: ulimit -n ${needed * 2}`);
}

async function waitForStatus(url, status, what) {
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((await fetch(url).then((response) => response.status, () => 0)) === status) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer ${status} at ${url} within 20 s`);
}

/** Asserts one request with these headers gets `status`, so a run never measures a login page. */
async function expectStatus(url, headers, status, what) {
  const response = await fetch(url, { headers, redirect: 'manual' });
  await response.arrayBuffer();
  if (response.status !== status) throw new Error(`${what}: ${url} answered ${response.status}, expected ${status} for a logged-in session`);
}

/** The protocol a TLS server picks when offered h2 and http/1.1, as Traefik's ForwardAuth client offers them. */
function negotiatedProtocol(port, caFile) {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(caFile), ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      resolve(socket.alpnProtocol || 'http/1.1 (no ALPN)');
      socket.destroy();
    });
    socket.once('error', (error) => resolve(`failed: ${error.message}`));
  });
}

/** TCP connections accepted on this machine so far (Tcp PassiveOpens in /proc/net/snmp, whole network namespace). */
function passiveOpens() {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((line) => line.startsWith('Tcp:'));
  return Number(lines[1].split(/\s+/)[lines[0].split(/\s+/).indexOf('PassiveOpens')]);
}

/** CPU seconds the whole machine has been busy (/proc/stat: every state but idle and iowait). */
function machineBusySeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** One wrk run against `target`, with the server's (and Redis's) CPU per request and the probes. */
async function measure(target, connections, seconds, redis) {
  const pid = target.server.child.pid;
  const cpuBefore = cpuSecondsOf(pid);
  const redisCpuBefore = cpuSecondsOf(redis.child.pid);
  const proxyCpuBefore = target.proxy ? cpuSecondsOf(target.proxy.child.pid) : 0;
  const probesBefore = target.probed ? await statsOf(target.server) : undefined;
  const tcpBefore = tcpCounters();
  const opensBefore = passiveOpens();
  const busyBefore = machineBusySeconds();
  const selfBefore = process.cpuUsage();
  const startedAt = performance.now();
  const acceptQueue = sampleAcceptQueue(target.listenPort);
  const result = await runWrkAsync(target.url, { connections, seconds, headers: target.headers });
  const queue = acceptQueue.stop();
  const opened = passiveOpens() - opensBefore;
  const elapsed = (performance.now() - startedAt) / 1000;
  const serverCpu = cpuSecondsOf(pid) - cpuBefore;
  const redisCpu = cpuSecondsOf(redis.child.pid) - redisCpuBefore;
  const proxyCpu = target.proxy ? cpuSecondsOf(target.proxy.child.pid) - proxyCpuBefore : 0;
  const self = process.cpuUsage(selfBefore);
  // ss's CPU (the accept-queue samples) lands among this process's children with wrk's.
  const wrkCpu = Math.max(0, result.wrkCpuSeconds - queue.cpuSeconds);
  const ours = serverCpu + redisCpu + proxyCpu + result.wrkCpuSeconds + (self.user + self.system) / 1e6;
  const perRequest = (secondsUsed) => (secondsUsed * 1e6) / Math.max(1, result.requests);
  const probes = target.probed ? await statsOf(target.server) : undefined;
  return {
    ...result,
    serverCpu: perRequest(serverCpu),
    redisCpu: perRequest(redisCpu),
    proxyCpu: target.proxy ? perRequest(proxyCpu) : undefined,
    othersCores: Math.max(0, (machineBusySeconds() - busyBefore - ours) / elapsed),
    wrkCpu: perRequest(wrkCpu),
    rssMb: rssOf(pid),
    tcp: Object.fromEntries(Object.entries(tcpCounters()).map(([name, value]) => [name, value - tcpBefore[name]])),
    newConnectionsPerRequest: Number.isFinite(probes?.connectionsAccepted) ? (probes.connectionsAccepted - probesBefore.connectionsAccepted) / Math.max(1, result.requests) : undefined,
    machineOpensPerRequest: opened / Math.max(1, result.requests),
    acceptQueue: queue,
    probes,
  };
}

/** Warm-up, then `ROUNDS` rounds interleaving the targets. */
async function runSection(targets, connections, redis) {
  const rounds = new Map(targets.map((target) => [target.name, []]));
  const rssBefore = new Map(targets.map((target) => [target.name, rssOf(target.server.child.pid)]));
  for (const target of targets) await measure(target, connections, 1, redis); // JIT, pools, TLS sessions
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const result = await measure(target, connections, SECONDS, redis);
      rounds.get(target.name).push(result);
      log(`${connections} connections, round ${round + 1}/${ROUNDS}, ${target.name}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(1)} ms, errors ${result.errors}, over 2 s ${result.over2s}`);
    }
  }
  return { connections, load: loadAverage(), rows: targets.map((target) => summarise(target, rounds.get(target.name), rssBefore.get(target.name))) };
}

function summarise(target, results, rssBefore) {
  const med = (pick) => median(results.map(pick).filter((value) => value !== undefined));
  const sum = (pick) => results.reduce((total, result) => total + pick(result), 0);
  const probes = results.map((result) => result.probes).filter(Boolean);
  return {
    name: target.name,
    key: target.key,
    protocol: target.protocol,
    rounds: results,
    rps: med((r) => r.rps),
    p50: med((r) => r.p50),
    p99: med((r) => r.p99),
    max: Math.max(...results.map((r) => r.max)),
    serverCpu: med((r) => r.serverCpu),
    redisCpu: med((r) => r.redisCpu),
    proxyCpu: target.proxy ? med((r) => r.proxyCpu) : undefined,
    wrkCpu: med((r) => r.wrkCpu),
    statusErrors: sum((r) => r.statusErrors),
    timeouts: sum((r) => r.timeouts),
    socketErrors: sum((r) => r.socketErrors),
    over2s: sum((r) => r.over2s),
    requests: sum((r) => r.requests),
    tcp: Object.fromEntries(Object.keys(results[0].tcp).map((name) => [name, sum((r) => r.tcp[name])])),
    rssBefore,
    rssAfter: results.at(-1).rssMb,
    newConnectionsPerRequest: results.some((r) => r.newConnectionsPerRequest !== undefined) ? med((r) => r.newConnectionsPerRequest) : undefined,
    machineOpensPerRequest: med((r) => r.machineOpensPerRequest),
    othersCores: med((r) => r.othersCores),
    acceptQueueMax: Math.max(...results.map((r) => r.acceptQueue.max)),
    acceptQueueAtEnd: Math.max(...results.map((r) => r.acceptQueue.atEnd)),
    acceptQueueBusyMs: Math.max(...results.map((r) => r.acceptQueue.busyMs)),
    loopDelayMaxMs: probes.length ? Math.max(...probes.map((p) => p.eventLoop.maxMs)) : undefined,
    loopDelayP99Ms: probes.length ? median(probes.map((p) => p.eventLoop.p99Ms)) : undefined,
    loopUtilization: probes.length ? median(probes.map((p) => p.utilization)) : undefined,
    redisQueueMax: probes.some((p) => p.redis) ? Math.max(...probes.map((p) => p.redis?.queuedMax ?? 0)) : undefined,
    redisQueueMean: probes.some((p) => p.redis) ? median(probes.map((p) => p.redis?.queuedMean ?? 0)) : undefined,
  };
}

async function main() {
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  checkTools();
  const { binary: oauth2ProxyBinary, buildSeconds, isCached } = ensureOauth2Proxy(log);
  if (!isCached) log(`oauth2-proxy built in ${buildSeconds.toFixed(0)} s`);
  const directory = temporaryDirectory('bff-compare-');
  let redis;
  try {
    const certificates = spawnSync(join(REPO, 'scripts', 'dev-cert.sh'), [directory], { encoding: 'utf8' });
    if (certificates.status !== 0) throw new Error(`scripts/dev-cert.sh failed: ${certificates.stderr.trim()}`);
    const tls = { certFile: join(directory, 'tls.crt'), keyFile: join(directory, 'tls.key'), caFile: join(directory, 'ca.crt') };

    redis = await startRedis();
    const gatewayPort = await freePort();
    const oauth2ProxyPort = await freePort();
    const oauth2ProxyHttpsPort = await freePort();
    const idp = await startTestIdp({
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
      clients: [
        { ...GATEWAY_CLIENT, redirect_uris: [`http://127.0.0.1:${gatewayPort}/auth/callback`], post_logout_redirect_uris: [] },
        { ...OAUTH2_PROXY_CLIENT, redirect_uris: [`http://127.0.0.1:${oauth2ProxyPort}/oauth2/callback`], post_logout_redirect_uris: [] },
      ],
    });
    log(`test IdP at ${idp.issuer}`);

    const gatewayEnv = {
      REDIS_URL: redis.url,
      SESSION_SECRET: SECRET,
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: GATEWAY_CLIENT.client_id,
      OIDC_CLIENT_SECRET: GATEWAY_CLIENT.client_secret,
      PUBLIC_URL: `http://127.0.0.1:${gatewayPort}`,
      LOG_LEVEL: 'silent',
      TRUSTED_PROXIES: '127.0.0.1/32',
    };
    const gateway = await startServer('bff-gateway /verify', 'gateway-probed.mjs', gatewayEnv, { port: gatewayPort });
    // The same sessions (one Redis, one secret) over TLS + HTTP/2, as deploy/traefik/dynamic.yml ships ForwardAuth.
    const gatewayTls = await startServer('bff-gateway /verify (TLS + HTTP/2)', 'gateway-probed.mjs', { ...gatewayEnv, TLS_CERT_FILE: tls.certFile, TLS_KEY_FILE: tls.keyFile });
    const floor = await startServer('floor', 'bare-node-probed.mjs', { REDIS_URL: redis.url, SESSION_SECRET: SECRET, COOKIE_NAME });
    const oauth2ProxyOptions = {
      binary: oauth2ProxyBinary,
      callbackPort: oauth2ProxyPort,
      issuer: idp.issuer,
      clientId: OAUTH2_PROXY_CLIENT.client_id,
      clientSecret: OAUTH2_PROXY_CLIENT.client_secret,
      redisUrl: redis.url,
      cookieSecret: randomBytes(24).toString('base64url'),
    };
    const oauth2Proxy = await startOauth2Proxy({ ...oauth2ProxyOptions, port: oauth2ProxyPort });
    // The same sessions over TLS, for ForwardAuth over TLS (oauth2-proxy v7 serves either HTTP or HTTPS).
    const oauth2ProxyTls = await startOauth2Proxy({ ...oauth2ProxyOptions, port: oauth2ProxyHttpsPort, tls });

    // Log in through the real flow, each at its own relying party.
    await waitForStatus(`http://127.0.0.1:${gatewayPort}/ready`, 200, 'the gateway (IdP discovery, Redis)');
    const gatewayBrowser = new Browser(USER_AGENT);
    await logIn(gatewayBrowser, `http://127.0.0.1:${gatewayPort}/auth/login?returnTo=%2F`, BENCH_USER);
    const gatewayCookie = gatewayBrowser.cookie(COOKIE_NAME, `http://127.0.0.1:${gatewayPort}/`);
    if (!gatewayCookie) throw new Error('the gateway login did not set a session cookie');
    const oauth2ProxyBrowser = new Browser(USER_AGENT);
    await logIn(oauth2ProxyBrowser, `http://127.0.0.1:${oauth2ProxyPort}/oauth2/start?rd=%2F`, BENCH_USER);
    const oauth2ProxyCookies = oauth2ProxyBrowser.jar.getCookieStringSync(`http://127.0.0.1:${oauth2ProxyPort}/oauth2/auth`);
    if (!/_oauth2_proxy=/.test(oauth2ProxyCookies)) throw new Error('the oauth2-proxy login did not set its session cookie');
    log('logged in at the gateway and at oauth2-proxy through the authorization-code flow');

    const gatewayHeaders = { Cookie: `${COOKIE_NAME}=${gatewayCookie}`, 'User-Agent': USER_AGENT, ...FORWARDED };
    const oauth2ProxyHeaders = { Cookie: oauth2ProxyCookies, 'User-Agent': USER_AGENT, ...FORWARDED };
    const floorHeaders = { Cookie: `${COOKIE_NAME}=${await seedSession(redis.client)}`, 'User-Agent': USER_AGENT, ...FORWARDED };
    const direct = [
      { key: 'floor', name: 'floor (node:http + HMAC + Redis GET + unseal)', server: floor, listenPort: floor.port, url: `${floor.url}`, headers: floorHeaders, status: 200, probed: true },
      { key: 'gateway', name: 'bff-gateway /verify', server: gateway, listenPort: gatewayPort, url: `http://127.0.0.1:${gatewayPort}/verify`, headers: gatewayHeaders, status: 200, probed: true },
      { key: 'oauth2-proxy', name: `oauth2-proxy ${OAUTH2_PROXY_VERSION} /oauth2/auth`, server: oauth2Proxy, listenPort: oauth2ProxyPort, url: `http://127.0.0.1:${oauth2ProxyPort}/oauth2/auth`, headers: oauth2ProxyHeaders, status: 202 },
    ];
    for (const target of direct) await expectStatus(target.url, target.headers, target.status, target.name);

    const sections = [];
    for (const connections of CONNECTION_COUNTS) sections.push(await runSection(direct, connections, redis));

    const upstream = await startServer('upstream', 'upstream.mjs', {});
    const router = (prefix, middleware) => ({ rule: `PathPrefix(\`${prefix}\`)`, entryPoints: ['web'], service: 'api', ...(middleware ? { middlewares: [middleware] } : {}) });
    const traefik = await startTraefik(directory, {
      http: {
        middlewares: {
          'gateway-http1': forwardAuth(`http://127.0.0.1:${gatewayPort}/verify`, AUTH_RESPONSE_HEADERS_REGEX),
          'gateway-http2': forwardAuth(gatewayTls.url, AUTH_RESPONSE_HEADERS_REGEX, tls.caFile),
          'oauth2-proxy-http1': forwardAuth(`http://127.0.0.1:${oauth2ProxyPort}/oauth2/auth`, AUTH_RESPONSE_HEADERS_REGEX),
          'oauth2-proxy-tls': forwardAuth(`https://127.0.0.1:${oauth2ProxyHttpsPort}/oauth2/auth`, AUTH_RESPONSE_HEADERS_REGEX, tls.caFile),
        },
        routers: {
          none: router('/none'),
          'gateway-http1': router('/gateway-http1', 'gateway-http1'),
          'gateway-http2': router('/gateway-http2', 'gateway-http2'),
          'oauth2-proxy-http1': router('/oauth2-proxy-http1', 'oauth2-proxy-http1'),
          'oauth2-proxy-tls': router('/oauth2-proxy-tls', 'oauth2-proxy-tls'),
        },
        services: { api: { loadBalancer: { servers: [{ url: `http://127.0.0.1:${upstream.port}` }] } } },
      },
    });
    const through = (path) => `http://127.0.0.1:${traefik.port}${path}/api/orders/42`;
    const browserHeaders = (cookie) => ({ Cookie: cookie, 'User-Agent': USER_AGENT });
    const proxied = [
      { key: 'traefik-none', name: 'Traefik, no ForwardAuth', server: traefik, listenPort: traefik.port, url: through('/none'), headers: browserHeaders(`${COOKIE_NAME}=${gatewayCookie}`), status: 200 },
      { key: 'traefik-gateway-http1', name: 'ForwardAuth -> bff-gateway, HTTP/1.1', server: gateway, proxy: traefik, listenPort: gatewayPort, url: through('/gateway-http1'), headers: browserHeaders(`${COOKIE_NAME}=${gatewayCookie}`), status: 200, probed: true },
      { key: 'traefik-gateway-http2', name: 'ForwardAuth -> bff-gateway, TLS + HTTP/2', server: gatewayTls, proxy: traefik, listenPort: gatewayTls.port, url: through('/gateway-http2'), headers: browserHeaders(`${COOKIE_NAME}=${gatewayCookie}`), status: 200, probed: true },
      { key: 'traefik-oauth2-proxy-http1', name: 'ForwardAuth -> oauth2-proxy, HTTP/1.1', server: oauth2Proxy, proxy: traefik, listenPort: oauth2ProxyPort, url: through('/oauth2-proxy-http1'), headers: browserHeaders(oauth2ProxyCookies), status: 200 },
      { key: 'traefik-oauth2-proxy-tls', name: 'ForwardAuth -> oauth2-proxy, TLS', server: oauth2ProxyTls, proxy: traefik, listenPort: oauth2ProxyHttpsPort, url: through('/oauth2-proxy-tls'), headers: browserHeaders(oauth2ProxyCookies), status: 200 },
    ];
    for (const target of proxied) await expectStatus(target.url, target.headers, target.status, target.name);
    proxied[1].protocol = proxied[3].protocol = 'plain HTTP/1.1';
    proxied[2].protocol = await negotiatedProtocol(gatewayTls.port, tls.caFile);
    proxied[4].protocol = await negotiatedProtocol(oauth2ProxyHttpsPort, tls.caFile);
    const traefikSection = await runSection(proxied, TRAEFIK_CONNECTIONS, redis);

    const context = {
      startedAt,
      machine: machineDescription(),
      loadAtStart,
      loadAtEnd: loadAverage(),
      node: process.version,
      go: spawnSync('go', ['version'], { encoding: 'utf8' }).stdout?.trim().replace(/^go version /, '') ?? 'unknown',
      oauth2Proxy: oauth2ProxyVersion(oauth2ProxyBinary),
      oauth2ProxyBuildSeconds: buildSeconds,
      oauth2ProxyIsCached: isCached,
      traefik: PINS.traefik.version,
      redis: /v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown',
      wrk: (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0].replace(/ Copyright.*/, '').trim(),
    };
    mkdirSync(RESULTS, { recursive: true });
    const report = reportMarkdown(context, sections, traefikSection);
    writeFileSync(join(RESULTS, 'comparison-report.md'), report);
    writeFileSync(join(RESULTS, 'comparison-data.csv'), dataCsv(context, sections, traefikSection));
    process.stdout.write(`${report}\nwritten: bench/results/comparison-report.md, bench/results/comparison-data.csv\n`);
  } finally {
    redis?.client.disconnect();
    killStartedProcesses();
  }
}

// ---------------------------------------------------------------------------
// Report and data

const fixed = (value, digits = 0) => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '-');
const milliseconds = (value) => (value === undefined ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(1));

function directTable(section) {
  const byKey = Object.fromEntries(section.rows.map((row) => [row.key, row]));
  const floor = byKey.floor;
  const lines = [
    `| server | req/s | vs floor | p50 ms | p99 ms | max ms | CPU µs/req | CPU vs floor | Redis CPU µs/req | non-2xx | timeouts (> 10 s) | socket errors | over 2 s | accept queue max / at end, and s until empty | listen drops / SYN retransmits / RTO expiries | RSS MB before → after |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of section.rows) {
    lines.push(
      `| ${row.name} | ${fixed(row.rps)} | ${ratio(row.rps, floor.rps)} | ${milliseconds(row.p50)} | ${milliseconds(row.p99)} | ${milliseconds(row.max)} | ${fixed(row.serverCpu)} | ${ratio(row.serverCpu, floor.serverCpu)} | ${fixed(row.redisCpu)} | ${row.statusErrors} | ${row.timeouts} | ${row.socketErrors} | ${row.over2s} | ${acceptQueueCell(row)} | ${row.tcp.listenDrops} / ${row.tcp.synRetransmits} / ${row.tcp.rtoTimeouts} | ${fixed(row.rssBefore)} → ${fixed(row.rssAfter)} |`,
    );
  }
  return lines.join('\n');
}

/** Largest accept queue in any round, the largest left at a round's end, and the longest it took to empty. */
const acceptQueueCell = (row) => `${row.acceptQueueMax} / ${row.acceptQueueAtEnd}, ${(row.acceptQueueBusyMs / 1000).toFixed(1)} s`;

/** Issue 11, goal 2, at the largest connection count: no request over 2 s, p99 no worse than oauth2-proxy's, no growth of memory. */
function goalLine(section) {
  const byKey = Object.fromEntries(section.rows.map((row) => [row.key, row]));
  const { gateway } = byKey;
  const oauth2Proxy = byKey['oauth2-proxy'];
  const rss = gateway.rounds.map((round) => fixed(round.rssMb)).join(' → ');
  const verdict = (isMet) => (isMet ? 'met' : '**not met**');
  return (
    `- **Issue 11, goal 2, at ${section.connections} connections**: requests over 2 s ${gateway.over2s} (target 0: ${verdict(gateway.over2s === 0)}); ` +
    `p99 ${milliseconds(gateway.p99)} ms against oauth2-proxy's ${milliseconds(oauth2Proxy.p99)} ms (target: no worse: ${verdict(gateway.p99 <= oauth2Proxy.p99)}); ` +
    `gateway RSS ${fixed(gateway.rssBefore)} MB before the warm-up, after each round ${rss} MB (judge growth across rounds, not against the idle process).`
  );
}

function ratiosLine(section) {
  const byKey = Object.fromEntries(section.rows.map((row) => [row.key, row]));
  const { floor, gateway } = byKey;
  const oauth2Proxy = byKey['oauth2-proxy'];
  return (
    `- **${section.connections} connections** (load average ${section.load}): gateway/floor throughput **${ratio(gateway.rps, floor.rps)}**, ` +
    `gateway/oauth2-proxy throughput **${ratio(gateway.rps, oauth2Proxy.rps)}**; p99 gateway ${milliseconds(gateway.p99)} ms, floor ${milliseconds(floor.p99)} ms, oauth2-proxy ${milliseconds(oauth2Proxy.p99)} ms ` +
    `(gateway/floor ${ratio(gateway.p99, floor.p99)}, gateway/oauth2-proxy ${ratio(gateway.p99, oauth2Proxy.p99)}); ` +
    `CPU per request gateway/floor **${ratio(gateway.serverCpu, floor.serverCpu)}**, gateway/oauth2-proxy **${ratio(gateway.serverCpu, oauth2Proxy.serverCpu)}**; ` +
    `requests over 2 s: gateway ${gateway.over2s}, floor ${floor.over2s}, oauth2-proxy ${oauth2Proxy.over2s}; ` +
    `largest accept queue: gateway ${gateway.acceptQueueMax}, floor ${floor.acceptQueueMax}, oauth2-proxy ${oauth2Proxy.acceptQueueMax}.`
  );
}

function probeLines(sections) {
  const lines = [
    '| connections | server | event-loop delay p99 / max ms | event-loop utilization | Redis replies awaited, mean / max | TCP connections accepted per request | wrk CPU µs/req | CPU of other processes, cores |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const section of sections) {
    for (const row of section.rows) {
      lines.push(
        `| ${section.connections} | ${row.name} | ${row.loopDelayP99Ms === undefined ? '-' : `${milliseconds(row.loopDelayP99Ms)} / ${milliseconds(row.loopDelayMaxMs)}`} | ${fixed(row.loopUtilization, 2)} | ${row.redisQueueMean === undefined ? '-' : `${fixed(row.redisQueueMean, 1)} / ${fixed(row.redisQueueMax)}`} | ${fixed(row.newConnectionsPerRequest, 4)} | ${fixed(row.wrkCpu)} | ${fixed(row.othersCores, 2)} |`,
      );
    }
  }
  return lines.join('\n');
}

function traefikTable(section) {
  const none = section.rows[0];
  const lines = [
    `| route | ALPN | req/s | vs no ForwardAuth | p50 ms | p99 ms | max ms | auth server CPU µs/req | Traefik CPU µs/req | auth connections accepted per request | TCP connections accepted on the machine per request | auth server's accept queue max / at end | errors | over 2 s |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of section.rows) {
    const isAuth = row.proxyCpu !== undefined;
    lines.push(
      `| ${row.name} | ${row.protocol ?? '-'} | ${fixed(row.rps)} | ${ratio(row.rps, none.rps)} | ${milliseconds(row.p50)} | ${milliseconds(row.p99)} | ${milliseconds(row.max)} | ${isAuth ? fixed(row.serverCpu) : '-'} | ${isAuth ? fixed(row.proxyCpu) : fixed(row.serverCpu)} | ${row.newConnectionsPerRequest === undefined ? '-' : `${(row.newConnectionsPerRequest * 100).toFixed(2)}%`} | ${(row.machineOpensPerRequest * 100).toFixed(1)}% | ${isAuth ? `${row.acceptQueueMax} / ${row.acceptQueueAtEnd}` : '-'} | ${row.statusErrors + row.timeouts + row.socketErrors} | ${row.over2s} |`,
    );
  }
  return lines.join('\n');
}

function reportMarkdown(context, sections, traefikSection) {
  const { machine } = context;
  const traefikByKey = Object.fromEntries(traefikSection.rows.map((row) => [row.key, row]));
  const buildTime = context.oauth2ProxyBuildSeconds === undefined ? '' : `, which took ${Number(context.oauth2ProxyBuildSeconds).toFixed(0)} s`;
  const builtLine = context.oauth2ProxyIsCached ? `cached build${buildTime}` : `built by this run${buildTime}`;
  return `# /verify compared with the floor and with oauth2-proxy

Generated by \`npm run bench:compare\` (bench/compare.mjs) on ${context.startedAt.toISOString()}. Method: docs/benchmark.md, "Compared with oauth2-proxy".

- **Machine**: ${machine.nproc} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB memory, Linux ${machine.kernel}; shared with other work, so compare the ratios within this run rather than absolute figures.
- **Load average** (1, 5, 15 min): ${context.loadAtStart} at the start, ${context.loadAtEnd} at the end.
- **Versions**: Node ${context.node}; oauth2-proxy ${context.oauth2Proxy} (${builtLine}); Go ${context.go}; Traefik ${context.traefik}; redis-server ${context.redis}; ${context.wrk}.
- **Load**: wrk, one thread, keep-alive, ${SECONDS} s x ${ROUNDS} rounds per server and connection count, servers interleaved within a round; median round shown; errors, timeouts and requests over 2 s summed over the rounds; max is the largest of any round. wrk's socket timeout is 10 s, so latencies up to 10 s are in the distribution.
- **Sessions**: the gateway and oauth2-proxy each logged in through the authorization-code flow with PKCE at the same oidc-provider process (tests/support/idp/test-idp.mts, one client each), sessions in the same redis-server; the floor reads a seeded session of the gateway's shape.

## Ratios

${sections.map(ratiosLine).join('\n')}
${goalLine(sections.at(-1))}
- **Through Traefik** (${traefikSection.connections} connections, load average ${traefikSection.load}): ForwardAuth to the gateway over TLS + HTTP/2 reaches ${ratio(traefikByKey['traefik-gateway-http2'].rps, traefikByKey['traefik-none'].rps)} of the route without ForwardAuth, over HTTP/1.1 ${ratio(traefikByKey['traefik-gateway-http1'].rps, traefikByKey['traefik-none'].rps)}; ForwardAuth to oauth2-proxy over TLS ${ratio(traefikByKey['traefik-oauth2-proxy-tls'].rps, traefikByKey['traefik-none'].rps)}, over HTTP/1.1 ${ratio(traefikByKey['traefik-oauth2-proxy-http1'].rps, traefikByKey['traefik-none'].rps)}. Gateway/oauth2-proxy throughput behind Traefik: ${ratio(traefikByKey['traefik-gateway-http2'].rps, traefikByKey['traefik-oauth2-proxy-tls'].rps)} over TLS, ${ratio(traefikByKey['traefik-gateway-http1'].rps, traefikByKey['traefik-oauth2-proxy-http1'].rps)} over HTTP/1.1.

## Direct: \`/verify\`, the floor and \`/oauth2/auth\`

${sections.map((section) => `### ${section.connections} connections (load average at the end: ${section.load})\n\n${directTable(section)}`).join('\n\n')}

CPU µs/req is the server process's user + system time over the requests it answered; "CPU vs floor" divides it by the floor's (lower is cheaper). Redis CPU is redis-server's over the same requests. Non-2xx counts answers of 400 and above (wrk's rule). "Listen drops / SYN retransmits / RTO expiries" are the kernel's TCP counters during the runs (whole machine, summed over the rounds): connections dropped at a listening socket (ListenDrops: mostly a full accept queue; Node listens with a backlog of 511, Go with net.core.somaxconn), SYN/SYN-ACK retransmissions, and retransmission-timer expiries. A dropped handshake costs the client 1 s, then 2 s, 4 s... before its first request is even read. The accept queue is sampled every 200 ms during each run (\`ss -l\`, Recv-Q of the listening socket): connections the kernel has established and the server has not accepted yet, whose first request waits meanwhile. Every run opens its connections anew, all at once; Node (libuv since 1.45) accepts one connection per event-loop iteration, Go accepts on a goroutine of its own, so the queue is how long a Node server under load leaves new connections waiting.

## The gateway under load: probes

${probeLines(sections)}

From bench/servers/probes.mjs in the floor and gateway processes (median round; max over the rounds): event-loop delay (perf_hooks, 10 ms resolution) and utilization; for the gateway, its session store's ioredis client sampled every 10 ms (commands written and awaiting their reply) and the TCP connections it accepted per request. wrk's own CPU per request shows whether the load generator was near a core's worth. The last column is what the rest of the machine used during the run (/proc/stat busy time minus the server, Redis, Traefik, wrk and this script), in cores out of ${machine.nproc}: the neighbours' share of a shared machine. A process-wide stall (every in-flight request late at once) shows as a large event-loop max in that process; requests over 2 s without one point outside it (Redis, wrk, the kernel).

## Through Traefik ${context.traefik}: ${traefikSection.connections} connections

${traefikTable(traefikSection)}

Every route goes to the same upstream (bench/servers/upstream.mjs). The middlewares are built as deploy/traefik/dynamic.yml ships them (\`authResponseHeadersRegex\` exported by the gateway, \`trustForwardHeader\`, \`tls.ca\` for the TLS routes). The gateway's TLS listener offers h2 and http/1.1 by ALPN; oauth2-proxy v7's TLS listener offers no h2 (the ALPN column is what each server picked when offered h2 and http/1.1), so Traefik's ForwardAuth client speaks HTTP/1.1 over TLS to it and, keeping 2 idle connections per host, does a TLS handshake for most requests. Traefik's CPU is per request through it. "Accepted" is counted by the gateway process itself. oauth2-proxy cannot count what it accepts, so the next column counts every TCP connection accepted on the machine during the run (Tcp PassiveOpens): wrk's connections to Traefik, Traefik's to the upstream and to the auth server, and anything else running; an upper bound for the auth server, to be read beside the "no ForwardAuth" row and the gateway's exact count.
`;
}

function dataCsv(context, sections, traefikSection) {
  const columns = [
    'run_started', 'section', 'connections', 'target', 'round', 'requests', 'rps', 'p50_ms', 'p90_ms', 'p99_ms', 'p999_ms', 'max_ms',
    'non_2xx', 'timeouts', 'socket_errors', 'over_2s', 'server_cpu_us_per_req', 'redis_cpu_us_per_req', 'traefik_cpu_us_per_req',
    'wrk_cpu_us_per_req', 'rss_mb', 'listen_drops', 'syn_retransmits', 'rto_expiries', 'accept_queue_max', 'accept_queue_at_end', 'accept_queue_busy_ms', 'new_connections_per_req', 'machine_tcp_accepts_per_req', 'loop_delay_p99_ms', 'loop_delay_max_ms',
    'loop_utilization', 'redis_awaiting_max', 'other_processes_cores', 'load_average',
  ];
  const lines = [columns.join(',')];
  const value = (number, digits = 3) => (number === undefined || Number.isNaN(number) ? '' : Number(number.toFixed(digits)));
  const emit = (sectionName, section) => {
    for (const row of section.rows) {
      row.rounds.forEach((r, index) => {
        lines.push([
          context.startedAt.toISOString(), sectionName, section.connections, row.key, index + 1, r.requests, value(r.rps, 1), value(r.p50), value(r.p90), value(r.p99), value(r.p999), value(r.max),
          r.statusErrors, r.timeouts, r.socketErrors, r.over2s, value(r.serverCpu, 1), value(r.redisCpu, 1), value(r.proxyCpu, 1),
          value(r.wrkCpu, 1), value(r.rssMb, 1), r.tcp.listenDrops, r.tcp.synRetransmits, r.tcp.rtoTimeouts, r.acceptQueue.max, r.acceptQueue.atEnd, r.acceptQueue.busyMs, value(r.newConnectionsPerRequest, 5), value(r.machineOpensPerRequest, 5), value(r.probes?.eventLoop.p99Ms), value(r.probes?.eventLoop.maxMs),
          value(r.probes?.utilization), r.probes?.redis?.queuedMax ?? '', value(r.othersCores), `"${section.load}"`,
        ].join(','));
      });
      lines.push([
        context.startedAt.toISOString(), sectionName, section.connections, row.key, 'median', row.requests, value(row.rps, 1), value(row.p50), '', value(row.p99), '', value(row.max),
        row.statusErrors, row.timeouts, row.socketErrors, row.over2s, value(row.serverCpu, 1), value(row.redisCpu, 1), value(row.proxyCpu, 1),
        value(row.wrkCpu, 1), value(row.rssAfter, 1), row.tcp.listenDrops, row.tcp.synRetransmits, row.tcp.rtoTimeouts, row.acceptQueueMax, row.acceptQueueAtEnd, row.acceptQueueBusyMs, value(row.newConnectionsPerRequest, 5), value(row.machineOpensPerRequest, 5), value(row.loopDelayP99Ms), value(row.loopDelayMaxMs),
        value(row.loopUtilization), row.redisQueueMax ?? '', value(row.othersCores), `"${section.load}"`,
      ].join(','));
    }
  };
  for (const section of sections) emit('direct', section);
  emit('traefik', traefikSection);
  return `${lines.join('\n')}\n`;
}

main().catch((error) => {
  killStartedProcesses();
  console.error(`bench:compare: ${error.message}`);
  process.exit(1);
});
