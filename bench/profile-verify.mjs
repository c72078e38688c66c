// Where /verify's CPU time goes: the gateway (bench/servers/gateway.mjs, default configuration)
// under wrk load with `--cpu-prof`, then the profile summed by function (self time) and by
// package or file, so the remaining cost can be read without opening a flame graph.
//
//   npm run build && node bench/profile-verify.mjs
//   PROFILE_SECONDS=10 PROFILE_CONNECTIONS=50 SESSION_CACHE=off node bench/profile-verify.mjs
//   PROFILE_SERVER=floor node bench/profile-verify.mjs   (the floor, bench/servers/bare-node-probed.mjs)
//
// The .cpuprofile is kept in bench/results/ (open it in Chrome DevTools or speedscope for the
// flame graph). The sampling profiler costs some throughput; read the shares, not the rates.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { COOKIE_NAME, REPO, runWrk, SECRET, seedSession, startRedis, startServer, USER_AGENT } from './support.mjs';

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.PROFILE_CONNECTIONS ?? 50);
const TOP = Number(process.env.PROFILE_TOP ?? 40);
// Both leave on an 'exit' message, which lets --cpu-prof write its file.
const SCRIPT = process.env.PROFILE_SERVER === 'floor' ? 'bare-node-probed.mjs' : 'gateway.mjs';
const RESULTS = join(REPO, 'bench', 'results');

async function main() {
  mkdirSync(RESULTS, { recursive: true });
  const redis = await startRedis();
  const cookie = await seedSession(redis.client);
  const env = { REDIS_URL: redis.url, SESSION_SECRET: SECRET, COOKIE_NAME, OIDC_ISSUER: 'http://127.0.0.1:9/unreachable', OIDC_CLIENT_ID: 'bench', OIDC_CLIENT_SECRET: 'bench', LOG_LEVEL: 'silent', PUBLIC_URL: 'http://app.example.test' };
  const name = `verify-${Date.now()}.cpuprofile`;
  const gateway = await startServer(SCRIPT, SCRIPT, env, { execArgv: ['--cpu-prof', `--cpu-prof-dir=${RESULTS}`, `--cpu-prof-name=${name}`] });
  const headers = { cookie: `${COOKIE_NAME}=${cookie}`, 'user-agent': USER_AGENT, 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example.test', 'x-forwarded-uri': '/api/orders/42' };
  let requests = 0;
  try {
    requests += runWrk(gateway.url, { connections: CONNECTIONS, seconds: 1, headers }).requests;
    const result = runWrk(gateway.url, { connections: CONNECTIONS, seconds: SECONDS, headers });
    requests += result.requests;
    console.log(`${SCRIPT}: ${result.rps.toFixed(0)} req/s under the profiler, p99 ${result.p99.toFixed(1)} ms, ${result.errors} errors`);
    gateway.child.send('exit');
    for (let i = 0; i < 100 && !readdirSync(RESULTS).includes(name); i++) await sleep(100);
  } finally {
    gateway.stop();
    redis.client.disconnect();
    redis.stop();
  }
  summarise(JSON.parse(readFileSync(join(RESULTS, name), 'utf8')), requests);
  console.log(`\nprofile: bench/results/${name}`);
}

/**
 * Self time per function and per place (a package under node_modules, a file of dist/, node's
 * internals), as a share of the busy time and in µs per request served (start-up included).
 */
function summarise(profile, requests) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const intervals = profile.timeDeltas;
  const selfMicros = new Map();
  for (let i = 0; i < profile.samples.length; i++) selfMicros.set(profile.samples[i], (selfMicros.get(profile.samples[i]) ?? 0) + (intervals[i] ?? 0));
  const idleIds = new Set(profile.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id));
  for (const id of idleIds) selfMicros.delete(id);
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  console.log(`busy ${(total / requests).toFixed(1)} µs per request (the profiler's own cost included)`);
  const byFunction = new Map();
  const byPlace = new Map();
  for (const [id, micros] of selfMicros) {
    const { callFrame } = byId.get(id);
    const place = placeOf(callFrame.url);
    const key = `${callFrame.functionName || '(anonymous)'}  ${place}${callFrame.url ? `:${callFrame.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    byPlace.set(place, (byPlace.get(place) ?? 0) + micros);
  }
  const print = (title, map, top) => {
    console.log(`\n${title}`);
    for (const [key, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * micros) / total).toFixed(1).padStart(6)} % ${(micros / requests).toFixed(2).padStart(7)} µs  ${key}`);
  };
  print('self time by place', byPlace, 25);
  print('self time by function', byFunction, TOP);
}

function placeOf(url) {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return url;
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module) return module[1];
  const local = /\/(dist|bench)\/(.*)$/.exec(url);
  return local ? `${local[1]}/${local[2]}` : url;
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
