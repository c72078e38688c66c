import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH_RESPONSE_HEADERS } from '../../src/forwardauth/identity-headers';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream';
import { startTestEnvironment, type TestEnvironment } from './environment';
import { bffTestClient } from './idp';
import { getFreePort } from './ports';

/** A throwaway Caddy (Debian's `caddy`) in front of a gateway and an API upstream. */
export interface CaddyProxy {
  /** `http://127.0.0.1:PORT`: the origin the browser talks to, and the gateway's PUBLIC_URL. */
  readonly origin: string;
  readonly port: number;
  /** The Caddyfile it runs, for failure messages. */
  readonly caddyfile: string;
  /** Kills Caddy, waits for it to exit and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface CaddyfileOptions {
  /** The port Caddy listens on, on 127.0.0.1 only. */
  readonly port: number;
  /** `host:port` of the gateway: browser-facing routes and forward_auth's /verify. */
  readonly gateway: string;
  /** `host:port` of the API behind forward_auth. */
  readonly apiUpstream: string;
  /**
   * Removes every identity header a client sent before forward_auth runs, as
   * deploy/caddy/Caddyfile.example does. Off, the upstream is protected only
   * by the gateway answering every spelling (empty when there is no value)
   * and copy_headers overwriting it. Defaults to true.
   */
  readonly stripClientIdentityHeaders?: boolean;
}

export const CADDY_BINARY = process.env.CADDY_BIN ?? '/usr/bin/caddy';

// Caddy parses a Caddyfile and listens within a few hundred milliseconds; the rest is CI margin.
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1_000;
// The port is picked before the gateway starts (it is the gateway's PUBLIC_URL), so another
// process can take it before Caddy binds it; the whole stack is then started again.
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 8_000;
// Answered by Caddy itself (the catch-all `respond`), so readiness does not depend on the gateway.
const READINESS_PATH = '/__caddy-ready';

// setpriv (util-linux) execs caddy with PR_SET_PDEATHSIG, so the kernel kills it
// even when the Jest worker dies by SIGKILL and no exit hook runs.
const SETPRIV_BINARY = '/usr/bin/setpriv';

const liveChildren = new Set<ChildProcess>();
let isExitHookRegistered = false;

function registerExitHook(): void {
  if (isExitHookRegistered) return;
  isExitHookRegistered = true;
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
}

export class CaddyStartError extends Error {
  constructor(
    message: string,
    readonly isPortInUse: boolean,
  ) {
    super(message);
    this.name = 'CaddyStartError';
  }
}

/**
 * The Caddyfile of deploy/caddy/Caddyfile.example for one test: plain http on
 * a loopback port, no admin endpoint, no certificates, and forward_auth
 * copying exactly the headers the gateway answers with (AUTH_RESPONSE_HEADERS).
 */
export function forwardAuthCaddyfile(options: CaddyfileOptions): string {
  const identityHeaders = AUTH_RESPONSE_HEADERS.filter((name) => name !== 'X-Request-ID');
  const strip = options.stripClientIdentityHeaders ?? true;
  const lines = [
    '{',
    '\tadmin off',
    '\tauto_https off',
    '}',
    '',
    `http://127.0.0.1:${options.port} {`,
    '\tbind 127.0.0.1',
    '',
    '\t@gateway path / /auth /auth/* /idp /idp/* /api/v1/metrics',
    '\thandle @gateway {',
    `\t\treverse_proxy ${options.gateway}`,
    '\t}',
    '',
    '\t@api path /api /api/*',
    '\thandle @api {',
    '\t\troute {',
    ...(strip ? identityHeaders.map((name) => `\t\t\trequest_header -${name}`) : []),
    `\t\t\tforward_auth ${options.gateway} {`,
    '\t\t\t\turi /verify',
    '\t\t\t\tcopy_headers {',
    ...AUTH_RESPONSE_HEADERS.map((name) => `\t\t\t\t\t${name}`),
    '\t\t\t\t}',
    '\t\t\t}',
    `\t\t\treverse_proxy ${options.apiUpstream}`,
    '\t\t}',
    '\t}',
    '',
    '\thandle {',
    '\t\trespond "not found" 404',
    '\t}',
    '}',
    '',
  ];
  return lines.join('\n');
}

/** Starts Caddy with `forwardAuthCaddyfile(options)` and resolves once it answers HTTP (bounded). */
export async function startCaddy(options: CaddyfileOptions): Promise<CaddyProxy> {
  if (!existsSync(CADDY_BINARY)) {
    throw new Error(`${CADDY_BINARY} not found: apt-get install -y caddy (or set CADDY_BIN)`);
  }
  registerExitHook();
  const caddyfile = forwardAuthCaddyfile(options);
  // Caddy keeps its data and autosave under XDG directories: a directory of this instance, never the user's.
  const workDir = mkdtempSync(join(tmpdir(), 'bff-caddy-'));
  try {
    const configFile = join(workDir, 'Caddyfile');
    writeFileSync(configFile, caddyfile);
    const child = await spawnCaddy(options.port, configFile, workDir);
    return new CaddyProcess(options.port, caddyfile, child, workDir);
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
}

class CaddyProcess implements CaddyProxy {
  readonly origin: string;
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly caddyfile: string,
    child: ChildProcess,
    private readonly workDir: string,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    this.child = child;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await killAndWait(child);
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

function spawnCaddy(port: number, configFile: string, workDir: string): Promise<ChildProcess> {
  const args = ['run', '--config', configFile, '--adapter', 'caddyfile'];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: workDir,
    XDG_DATA_HOME: join(workDir, 'data'),
    XDG_CONFIG_HOME: join(workDir, 'config'),
  };
  const child = existsSync(SETPRIV_BINARY)
    ? spawn(SETPRIV_BINARY, ['--pdeathsig', 'KILL', CADDY_BINARY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    : spawn(CADDY_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  return new Promise((resolve, reject) => {
    let isSettled = false;
    const fail = (message: string): void => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(deadline);
      const isPortInUse = /address already in use/i.test(output);
      void killAndWait(child).finally(() => {
        reject(new CaddyStartError(`${message}\n--- caddy output ---\n${output}`, isPortInUse));
      });
    };
    const deadline = setTimeout(() => fail(`caddy on 127.0.0.1:${port} did not answer within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once('error', (error) => fail(`could not run ${CADDY_BINARY}: ${error.message}`));
    child.once('exit', (code, signal) => fail(`caddy exited during start-up (code ${code}, signal ${signal})`));

    const poll = async (): Promise<void> => {
      while (!isSettled) {
        const status = await fetch(`http://127.0.0.1:${port}${READINESS_PATH}`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
          .then(async (response) => {
            await response.body?.cancel();
            return response.status;
          })
          .catch(() => 0);
        // The catch-all answers 404: Caddy, not something else that grabbed the port, is listening.
        if (status === 404 && !isSettled) {
          isSettled = true;
          clearTimeout(deadline);
          resolve(child);
          return;
        }
        await sleep(POLL_INTERVAL_MS);
      }
    };
    void poll();
  });
}

/** Real Caddy in front of a real gateway (with real Redis and IdP) and an echo upstream as the API. */
export interface CaddyStack {
  /** Caddy's origin: the only address a browser uses; the gateway's PUBLIC_URL. */
  readonly origin: string;
  readonly caddy: CaddyProxy;
  readonly upstream: EchoUpstream;
  readonly environment: TestEnvironment;
  /** Stops Caddy, the upstream, the gateway, the IdP and Redis. */
  close(): Promise<void>;
}

export interface CaddyStackOptions {
  /** Extra gateway variables. */
  readonly env?: Record<string, string>;
  readonly stripClientIdentityHeaders?: boolean;
}

/**
 * Starts the stack a browser meets in production, on loopback: Caddy's port is
 * picked first because it is the gateway's PUBLIC_URL and the IdP's registered
 * redirect and post-logout URIs; the gateway trusts X-Forwarded-* only from
 * 127.0.0.1, where Caddy connects from.
 */
export async function startCaddyStack(options: CaddyStackOptions = {}): Promise<CaddyStack> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt += 1) {
    const port = await getFreePort();
    const origin = `http://127.0.0.1:${port}`;
    const upstream = await startEchoUpstream();
    let environment: TestEnvironment | undefined;
    try {
      environment = await startTestEnvironment({
        env: { PUBLIC_URL: origin, TRUSTED_PROXIES: '127.0.0.1/32', ...options.env },
        idp: { clients: [bffTestClient({ redirect_uris: [`${origin}/auth/callback`], post_logout_redirect_uris: [`${origin}/`] })] },
      });
      const caddy = await startCaddy({
        port,
        gateway: new URL(environment.gateway.url).host,
        apiUpstream: upstream.address,
        ...(options.stripClientIdentityHeaders === undefined ? {} : { stripClientIdentityHeaders: options.stripClientIdentityHeaders }),
      });
      const started = environment;
      return {
        origin,
        caddy,
        upstream,
        environment: started,
        async close() {
          await caddy.stop();
          await upstream.close();
          await started.close();
        },
      };
    } catch (error) {
      lastError = error;
      await upstream.close();
      await environment?.close();
      if (!(error instanceof CaddyStartError) || !error.isPortInUse) throw error;
    }
  }
  throw lastError;
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  try {
    await exited;
  } finally {
    clearTimeout(escalation);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
