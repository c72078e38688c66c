// Shared by the benchmarks: real servers in their own processes, a seeded session, /proc readings.
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const { RedisSessionStore } = require('../dist/session/redis-session-store.js');
const { SessionSealer } = require('../dist/session/session-sealer.js');
const { bindingFor } = require('../dist/session/binding.js');
const { SessionCookie } = require('../dist/session/session-cookie.js');

export const SECRET = 'bench-session-secret-0123456789abcdefghijklmnop';
export const REPO = join(here, '..');
/** Versions of the servers the suite builds (traefik and friends), shared with the tests. */
export const PINS = JSON.parse(readFileSync(join(REPO, 'tests', 'support', 'test-servers.json'), 'utf8'));

// Every process a benchmark starts through this module: SIGKILLed when the benchmark ends,
// however it ends (a thrown error, Ctrl-C, SIGTERM), so no server outlives its run.
const startedProcesses = new Set();

/** Remembers a child process so that killStartedProcesses() (and process exit) ends it. */
export function track(child) {
  startedProcesses.add(child);
  child.once('exit', () => startedProcesses.delete(child));
  return child;
}

/** SIGKILLs every process started through this module that is still running. */
export function killStartedProcesses() {
  for (const child of startedProcesses) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  startedProcesses.clear();
}

const temporaryDirectories = new Set();

/** A new directory under the system's temporary directory, removed when this process exits. */
export function temporaryDirectory(prefix) {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  temporaryDirectories.add(directory);
  return directory;
}

process.once('exit', () => {
  killStartedProcesses();
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killStartedProcesses();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal] ?? 0));
  });
}
export const COOKIE_NAME = 'bff-session';
export const USER_AGENT = 'bff-bench/1.0';
/** Where the textbook express-session server keeps its sessions (connect-redis JSON). */
export const TEXTBOOK_SESSION_PREFIX = 'textbook:sess:';

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
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', temporaryDirectory('bff-bench-')], { stdio: 'ignore' }));
  const client = new Redis({ port, lazyConnect: true, retryStrategy: () => 50 });
  // Refused connections while redis-server starts (and after it is killed) are expected, not news.
  client.on('error', () => {});
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await client.connect();
      break;
    } catch {
      await sleep(50);
    }
  }
  return { url: `redis://127.0.0.1:${port}`, port, client, child, stop: () => child.kill('SIGKILL') };
}

/**
 * One logged-in session, stored through the gateway's own store code (sealed, indexed), and the
 * cookie that names it. The textbook express-session server (servers/express-session.mjs) gets
 * the same session in connect-redis's JSON under its own prefix, its textbook format.
 */
export async function seedSession(redis) {
  const sessionId = 'benchSessionId0123456789abcdefghijklmnopqrs'.slice(0, 43);
  const now = Date.now();
  const auth = {
    user: { sub: 'bench-user', name: 'Bench User', email: 'bench@example.test', preferredUsername: 'bench', groups: ['users'] },
    tokens: {
      accessToken: 'bench-access-token-'.padEnd(800, 'x'),
      refreshToken: 'bench-refresh-token',
      idToken: 'bench-id-token',
      accessTokenExpiresAt: now + 3_600_000,
      accessTokenIssuedAt: now,
    },
    createdAt: now,
    absoluteExpiresAt: now + 3_600_000,
    binding: bindingFor('ua', USER_AGENT, undefined),
    idpSessionId: undefined,
  };
  const store = new RedisSessionStore({
    client: redis,
    guard: (_operation, command) => command(),
    sealer: new SessionSealer([SECRET]),
    idleTtlSecondsOf: () => 3600,
    clock: { now: () => Date.now() },
  });
  await store.save(sessionId, { auth });
  const textbook = { cookie: { originalMaxAge: null, httpOnly: true, path: '/', sameSite: 'lax' }, auth };
  await redis.set(`${TEXTBOOK_SESSION_PREFIX}${sessionId}`, JSON.stringify(textbook), 'EX', 3600);
  return new SessionCookie(COOKIE_NAME, [SECRET]).valueFor(sessionId);
}

/**
 * The Node flags the gateway ships with (package.json config.nodeFlags, as `npm start` and the
 * Dockerfile use them). Every server of a run gets them, the floor too: the same runtime for all.
 */
export const NODE_FLAGS = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).config.nodeFlags.split(' ');

/**
 * Forks bench/servers/<script>; `options.port` when the port must be known before (a PUBLIC_URL, a
 * redirect URI), `options.execArgv` for Node's own flags beside NODE_FLAGS (`--cpu-prof`).
 */
export async function startServer(name, script, env, options = {}) {
  const port = options.port ?? (await freePort());
  const child = track(fork(join(here, 'servers', script), [], { env: { ...process.env, ...env, PORT: String(port) }, execArgv: [...NODE_FLAGS, ...(options.execArgv ?? [])], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
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

/** Fails with one line naming the missing tool and how to get it. */
export function requireTool(command, hint, versionArgs = ['--version']) {
  if (spawnSync(command, versionArgs, { stdio: 'ignore' }).error) throw new Error(`${command} is missing: ${hint}`);
}

/** The cache directory of the suite's built servers (~/.cache/bff-gateway or $XDG_CACHE_HOME/bff-gateway). */
export function cacheDirectory() {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bff-gateway');
}

export function traefikBinary() {
  if (process.env.TRAEFIK_BIN) return process.env.TRAEFIK_BIN;
  return join(cacheDirectory(), `traefik-${PINS.traefik.version}`, 'traefik');
}

/** A Traefik ForwardAuth middleware as deploy/traefik/dynamic.yml ships it, pointed at one auth server. */
export function forwardAuth(address, responseHeadersRegex, caFile) {
  return {
    forwardAuth: {
      address,
      trustForwardHeader: true,
      authResponseHeadersRegex: responseHeadersRegex,
      ...(caFile ? { tls: { ca: caFile } } : {}),
    },
  };
}

/** Starts Traefik on a file provider written to `directory`; resolves once `/none` routes (a router the caller defines). */
export async function startTraefik(directory, dynamic) {
  const port = await freePort();
  const pingPort = await freePort();
  writeFileSync(join(directory, 'dynamic.json'), JSON.stringify(dynamic));
  const configuration = [
    `--entryPoints.web.address=127.0.0.1:${port}`,
    `--entryPoints.ping.address=127.0.0.1:${pingPort}`,
    '--ping=true',
    '--ping.entryPoint=ping',
    `--providers.file.filename=${join(directory, 'dynamic.json')}`,
    '--log.level=ERROR',
  ];
  const child = track(spawn(traefikBinary(), configuration, { stdio: ['ignore', 'ignore', 'inherit'] }));
  for (let attempt = 0; attempt < 200; attempt++) {
    const routed = await fetch(`http://127.0.0.1:${port}/none`).then((response) => response.status, () => 0);
    if (routed === 200) return { port, child, stop: () => child.kill('SIGKILL') };
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('traefik did not route /none within 10 s');
}

/** Latencies above this many microseconds are counted by the wrk summary script (`over`). */
const SLOW_THRESHOLD_US = 2_000_000;

// wrk's `done` hook: the figures as one JSON line, and how many requests took longer than the
// threshold, found by bisecting wrk's exact latency distribution (`latency:percentile` is cheap
// next to a run, and `latency(i)` walks the whole histogram for every i).
const WRK_SUMMARY_SCRIPT = `
done = function(summary, latency, requests)
  local n = summary.requests
  local over = 0
  if latency.max > ${SLOW_THRESHOLD_US} then
    local lo, hi = 0.0, 100.0
    for i = 1, 48 do
      local mid = (lo + hi) / 2
      if latency:percentile(mid) > ${SLOW_THRESHOLD_US} then hi = mid else lo = mid end
    end
    over = math.floor(n * (100 - hi) / 100 + 0.5)
  end
  io.write(string.format('WRK_SUMMARY {"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"p999Us":%d,"maxUs":%d,"over2s":%d}\\n',
    n, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, over))
end
`;
let wrkScriptFile;

/** CPU seconds of this process's children that have ended and been waited for (wrk, after spawnSync). */
export function childrenCpuSeconds() {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/**
 * One wrk run (one thread, keep-alive): requests/s, latency percentiles in ms, errors split by kind
 * (statusErrors are answers >= 400, as wrk counts them), requests slower than 2 s, and wrk's own
 * CPU seconds. `timeoutSeconds` is wrk's socket timeout: latencies above it are not in the
 * distribution but counted as timeouts, so keep it well above 2 s.
 */
export function runWrk(url, options) {
  const cpuBefore = childrenCpuSeconds();
  const result = spawnSync('wrk', wrkArguments(url, options), { encoding: 'utf8', timeout: (options.seconds + (options.timeoutSeconds ?? 10) + 60) * 1000 });
  return wrkResult(result.status, result.stdout, result.stderr || result.error?.message, childrenCpuSeconds() - cpuBefore);
}

/** runWrk without blocking this process, so that it can sample the server while wrk runs. */
export function runWrkAsync(url, options) {
  const cpuBefore = childrenCpuSeconds();
  const child = track(spawn('wrk', wrkArguments(url, options), { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => {
      try {
        resolve(wrkResult(status, stdout, stderr, childrenCpuSeconds() - cpuBefore));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function wrkArguments(url, { connections, seconds, headers = {}, timeoutSeconds = 10 }) {
  if (!wrkScriptFile) {
    wrkScriptFile = join(temporaryDirectory('bff-wrk-'), 'summary.lua');
    writeFileSync(wrkScriptFile, WRK_SUMMARY_SCRIPT);
  }
  const headerArgs = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  return ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', `${timeoutSeconds}s`, '-s', wrkScriptFile, ...headerArgs, url];
}

function wrkResult(status, stdout, stderr, wrkCpuSeconds) {
  const line = /^WRK_SUMMARY (.*)$/m.exec(stdout ?? '')?.[1];
  if (status !== 0 || !line) throw new Error(`wrk failed: ${(stderr || stdout || '').trim()}`);
  const summary = JSON.parse(line);
  const socketErrors = summary.connectErrors + summary.readErrors + summary.writeErrors;
  return {
    requests: summary.requests,
    rps: summary.requests / (summary.durationUs / 1e6),
    p50: summary.p50Us / 1000,
    p90: summary.p90Us / 1000,
    p99: summary.p99Us / 1000,
    p999: summary.p999Us / 1000,
    max: summary.maxUs / 1000,
    statusErrors: summary.statusErrors,
    timeouts: summary.timeouts,
    socketErrors,
    errors: summary.statusErrors + summary.timeouts + socketErrors,
    over2s: summary.over2s,
    wrkCpuSeconds,
  };
}

/**
 * Samples the accept queue of the socket listening on `port` (connections the kernel has
 * established that the server has not accepted yet: Recv-Q of `ss -l`) every `intervalMs` until
 * stop(), which returns the largest length seen, the length at the end, how long the queue
 * stayed above zero after the first sample (ms), and the CPU seconds the `ss` processes used
 * (they count among this process's children, as wrk does).
 */
export function sampleAcceptQueue(port, intervalMs = 200) {
  const samples = [];
  const startedAt = performance.now();
  let cpuSeconds = 0;
  const sample = () => {
    const cpuBefore = childrenCpuSeconds();
    const line = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).stdout?.trim() ?? '';
    cpuSeconds += childrenCpuSeconds() - cpuBefore;
    const queued = Number(line.split(/\s+/)[1]);
    if (Number.isFinite(queued)) samples.push({ at: performance.now() - startedAt, queued });
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const lastBusy = samples.findLast((entry) => entry.queued > 0);
      return {
        max: Math.max(0, ...samples.map((entry) => entry.queued)),
        atEnd: samples.at(-1)?.queued ?? 0,
        busyMs: lastBusy ? Math.round(lastBusy.at) : 0,
        cpuSeconds,
      };
    },
  };
}

/**
 * The kernel's TCP counters that explain late requests on loopback (whole network namespace, so
 * other processes count too): listenOverflows, a handshake completed while the accept queue was
 * full (the client's ACK is dropped and it waits for a retransmission: 1 s, then 2 s, ...);
 * listenDrops, every connection dropped at a listening socket (overflows included);
 * synRetransmits, SYNs and SYN-ACKs sent again; rtoTimeouts, retransmission timer expiries.
 */
export function tcpCounters() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((line) => line.startsWith('TcpExt:'));
    const names = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/);
    const counter = (name) => Number(values[names.indexOf(name)] ?? 0);
    return { listenOverflows: counter('ListenOverflows'), listenDrops: counter('ListenDrops'), synRetransmits: counter('TCPSynRetrans'), rtoTimeouts: counter('TCPTimeouts') };
  } catch {
    return { listenOverflows: 0, listenDrops: 0, synRetransmits: 0, rtoTimeouts: 0 };
  }
}

/** What the report says about the machine: cores, memory, CPU model, kernel. */
export function machineDescription() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memoryGiB = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 / 1024;
  const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout?.trim() || String((cpuinfo.match(/^processor\s*:/gm) ?? []).length);
  return {
    nproc: Number(nproc),
    memoryGiB: Math.round(memoryGiB * 10) / 10,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}
