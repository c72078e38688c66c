// oauth2-proxy, the tool an operator would otherwise pick: built once from the Go module proxy
// into the suite's cache, then run with its Redis session store against the same IdP.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cacheDirectory, requireTool, track } from '../support.mjs';

export const OAUTH2_PROXY_VERSION = 'v7.15.6';
const MODULE = 'github.com/oauth2-proxy/oauth2-proxy/v7';

export function oauth2ProxyDirectory() {
  return join(cacheDirectory(), `oauth2-proxy-${OAUTH2_PROXY_VERSION}`);
}

/**
 * The cached binary, built first when it is missing (`go install`, a few minutes on 2 cores).
 * Returns its path, whether it was cached, and how long the build took in seconds (recorded in
 * build.json beside the binary, so a cached build still reports it).
 */
export function ensureOauth2Proxy(log) {
  if (process.env.OAUTH2_PROXY_BIN) return { binary: process.env.OAUTH2_PROXY_BIN };
  const directory = oauth2ProxyDirectory();
  const binary = join(directory, 'oauth2-proxy');
  if (existsSync(binary)) return { binary, buildSeconds: recordedBuildSeconds(directory), isCached: true };
  requireTool('go', 'install Go 1.24 or later (https://go.dev/dl/) to build oauth2-proxy', ['version']);
  // Built into a scratch directory and renamed: an interrupted build never leaves a binary behind.
  const scratch = `${directory}.partial-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  log(`building oauth2-proxy ${OAUTH2_PROXY_VERSION} with go install (once; cached in ${directory})...`);
  const started = performance.now();
  const build = spawnSync('go', ['install', `${MODULE}@${OAUTH2_PROXY_VERSION}`], {
    env: { ...process.env, GOBIN: scratch, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (build.status !== 0) {
    rmSync(scratch, { recursive: true, force: true });
    throw new Error(`go install ${MODULE}@${OAUTH2_PROXY_VERSION} failed (exit ${build.status ?? build.error?.message})`);
  }
  const buildSeconds = (performance.now() - started) / 1000;
  writeFileSync(join(scratch, 'build.json'), `${JSON.stringify({ seconds: Math.round(buildSeconds), builtAt: new Date().toISOString() })}\n`);
  rmSync(directory, { recursive: true, force: true });
  renameSync(scratch, directory);
  return { binary, buildSeconds, isCached: false };
}

/** How long the cached build took, as recorded beside it (build.json), if it was. */
function recordedBuildSeconds(directory) {
  try {
    return JSON.parse(readFileSync(join(directory, 'build.json'), 'utf8')).seconds;
  } catch {
    return undefined;
  }
}

/**
 * The module version and Go toolchain recorded in the binary (`go version -m`): a `go install`
 * build leaves `oauth2-proxy --version` at "undefined", since releases set it by -ldflags.
 */
export function oauth2ProxyVersion(binary) {
  const result = spawnSync('go', ['version', '-m', binary], { encoding: 'utf8' });
  const text = result.stdout ?? '';
  const module = /^\s*mod\s+\S+\s+(\S+)/m.exec(text)?.[1];
  const toolchain = /^[^\n]*:\s*(go\S+)/.exec(text)?.[1];
  return module ? `${module} (built with ${toolchain ?? 'go'})` : OAUTH2_PROXY_VERSION;
}

/**
 * oauth2-proxy in auth-only use: `/oauth2/auth` answers 202 with X-Auth-Request-* and the access
 * token, as Traefik's or nginx's auth subrequest expects. Sessions in Redis; OIDC with PKCE against
 * `issuer`; request and auth logging off (the gateway logs nothing per request either). It listens
 * on `port` over HTTP, or with `tls` over TLS only (v7 then serves no plain HTTP): run two with the
 * same cookie secret and Redis for both, and a session made on one is valid on the other.
 * `callbackPort` is the HTTP instance's, where the browser logs in.
 */
export async function startOauth2Proxy({ binary, port, callbackPort, issuer, clientId, clientSecret, redisUrl, cookieSecret, tls }) {
  const args = [
    ...(tls ? [`--https-address=127.0.0.1:${port}`, `--tls-cert-file=${tls.certFile}`, `--tls-key-file=${tls.keyFile}`] : [`--http-address=127.0.0.1:${port}`]),
    '--provider=oidc',
    `--oidc-issuer-url=${issuer}`,
    `--client-id=${clientId}`,
    `--client-secret=${clientSecret}`,
    `--redirect-url=http://127.0.0.1:${callbackPort}/oauth2/callback`,
    '--code-challenge-method=S256',
    '--scope=openid profile email',
    '--email-domain=*',
    '--upstream=static://200',
    '--session-store-type=redis',
    `--redis-connection-url=${redisUrl}`,
    `--cookie-secret=${cookieSecret}`,
    '--cookie-secure=false',
    '--skip-provider-button=true',
    '--reverse-proxy=true',
    '--trusted-proxy-ip=127.0.0.1/32',
    '--set-xauthrequest=true',
    '--pass-access-token=true',
    '--set-authorization-header=true',
    '--request-logging=false',
    '--auth-logging=false',
    '--silence-ping-logging=true',
  ];
  // It logs to stdout and stderr; the tail is kept for a failure message.
  const child = track(spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const keep = (chunk) => (output = (output + chunk).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited;
  child.once('exit', (code) => (exited = code));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (exited !== undefined) throw new Error(`oauth2-proxy exited with ${exited}: ${output.trim()}`);
    if (await isListening(port)) return { port, url, child, output: () => output, stop: () => child.kill('SIGKILL') };
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`oauth2-proxy did not listen on ${port} within 10 s: ${output.trim()}`);
}

function isListening(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
