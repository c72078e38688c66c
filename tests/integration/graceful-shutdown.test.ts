import { existsSync } from 'node:fs';
import { Agent, get as httpGet, request } from 'node:http';
import { constants, connect as http2Connect } from 'node:http2';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { startGuarded, type GuardedProcess } from '../support/child-process';
import { withFreePort } from '../support/ports';
import { makeTestCertificates, type TestCertificates } from '../support/tls';
import { waitUntil } from '../support/wait';

const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');
const CONNECTIONS = 20;
/** Each client stops by itself after this many requests, whatever happens. */
const MAX_REQUESTS_PER_CLIENT = 5_000;

type Outcome = { readonly kind: 'answered'; readonly status: number; readonly isClosing: boolean } | { readonly kind: 'refused' } | { readonly kind: 'reset'; readonly code: string };

/** One request on a keep-alive agent with a single socket, as a proxy's connection pool reuses it. */
function call(agent: Agent, port: number, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const outgoing = request({ host: '127.0.0.1', port, path, agent, headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'app.example.test', 'X-Forwarded-Uri': '/api/orders' } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ kind: 'answered', status: response.statusCode ?? 0, isClosing: response.headers.connection === 'close' }));
      response.on('error', (error: NodeJS.ErrnoException) => resolve({ kind: 'reset', code: error.code ?? error.message }));
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? { kind: 'refused' } : { kind: 'reset', code: error.code ?? error.message }));
    outgoing.end();
  });
}

/** Requests back to back on one connection until the server says it closes it, refuses, or the bound is reached. */
async function client(port: number, path: string, onFirstAnswer: () => void): Promise<Outcome[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const outcomes: Outcome[] = [];
  try {
    for (let sent = 0; sent < MAX_REQUESTS_PER_CLIENT; sent++) {
      const outcome = await call(agent, port, path);
      outcomes.push(outcome);
      if (sent === 0) onFirstAnswer();
      if (outcome.kind !== 'answered' || outcome.isClosing) break;
    }
  } finally {
    agent.destroy();
  }
  return outcomes;
}

async function startBuiltGateway(env: Record<string, string>): Promise<{ gateway: GuardedProcess; port: number; exited: Promise<number | null> }> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
  const scheme = env.TLS_CERT_FILE ? 'https' : 'http';
  // The gateway binds PORT itself: when another process took the port first, it exits and starts again on another.
  const { gateway, port } = await withFreePort(async (port) => {
    const started = await startGuarded(process.execPath, [MAIN], {
      name: `the built gateway on :${port}`,
      readiness: 'answer /health',
      env: { PATH: process.env.PATH ?? '', PORT: String(port), SHUTDOWN_GRACE_SECONDS: '60', LOG_LEVEL: 'warn', ...env },
      isReady: () => isHealthy(`${scheme}://127.0.0.1:${port}/health`),
      readyTimeoutMs: 20_000,
      pollIntervalMs: 100,
      outputLabel: 'gateway',
      stopGraceMs: 65_000,
    });
    return { gateway: started, port };
  });
  const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
  return { gateway, port, exited };
}

function isHealthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const probe = get(url, { rejectUnauthorized: false, timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    probe.on('timeout', () => probe.destroy());
    probe.on('error', () => resolve(false));
  });
}

describe('SIGTERM under steady keep-alive traffic', () => {
  let gateway: GuardedProcess | undefined;
  let certificates: TestCertificates | undefined;
  afterEach(async () => {
    await gateway?.stop();
    certificates?.remove();
  });

  it('answers every accepted request, tells each busy connection to close, and exits by itself', async () => {
    const started = await startBuiltGateway({});
    gateway = started.gateway;
    const { port, exited } = started;

    let answered = 0;
    let signalSent = false;
    const sendSigterm = () => {
      answered += 1;
      // Every connection is busy before the signal: none of them is idle when draining starts.
      if (answered === CONNECTIONS && !signalSent) {
        signalSent = true;
        gateway?.child.kill('SIGTERM');
      }
    };
    const paths = ['/verify', '/health'];
    const perClient = await Promise.all(Array.from({ length: CONNECTIONS }, (_, index) => client(port, paths[index % paths.length] as string, sendSigterm)));

    expect(signalSent).toBe(true);
    const outcomes = perClient.flat();
    expect(outcomes.filter((outcome) => outcome.kind === 'reset')).toEqual([]);
    // Each connection ended because the gateway said so (or, opened after the listener closed, was refused).
    for (const connection of perClient) {
      const last = connection.at(-1);
      expect(last?.kind === 'refused' || (last?.kind === 'answered' && last.isClosing)).toBe(true);
    }
    expect(await exited).toBe(0);
  });

  it('over HTTP/2, sends GOAWAY, completes every stream already opened, and exits by itself', async () => {
    certificates = makeTestCertificates();
    const started = await startBuiltGateway({ TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.keyFile });
    gateway = started.gateway;
    const session = http2Connect(`https://127.0.0.1:${started.port}`, { ca: certificates.ca });
    const wentAway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    let isGone = false;
    void wentAway.then(() => (isGone = true));
    const streamErrors: string[] = [];
    let answered = 0;
    const stream = (): Promise<void> =>
      new Promise((resolve) => {
        const request = session.request({ ':path': '/health' });
        request.on('response', () => (answered += 1));
        request.on('error', (error: NodeJS.ErrnoException) => {
          // Never accepted, so safe for any client to retry: refused by the client itself after GOAWAY, or
          // opened while the GOAWAY was on its way and refused unprocessed (RFC 9113 section 6.8, REFUSED_STREAM).
          const isUnprocessed =
            error.code === 'ERR_HTTP2_GOAWAY_SESSION' || error.code === 'ERR_HTTP2_INVALID_SESSION' || request.rstCode === constants.NGHTTP2_REFUSED_STREAM;
          if (!isUnprocessed) streamErrors.push(`${error.code ?? error.message} (RST_STREAM ${request.rstCode})`);
          resolve();
        });
        request.resume();
        request.on('end', () => resolve());
        request.end();
      });
    const loop = async () => {
      for (let sent = 0; sent < MAX_REQUESTS_PER_CLIENT && !isGone && !session.closed && !session.destroyed; sent++) await stream();
    };
    const loops = Array.from({ length: CONNECTIONS }, loop);
    await waitUntil(() => answered >= CONNECTIONS, { timeoutMs: 20_000, intervalMs: 10, timeoutMessage: 'no traffic' });
    gateway.child.kill('SIGTERM');
    await Promise.all(loops);
    await wentAway;
    expect(streamErrors).toEqual([]);
    session.close();
    expect(await started.exited).toBe(0);
  });
});
