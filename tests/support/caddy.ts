import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersWithStatus, startGuarded, type GuardedProcess } from './child-process';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream';
import { startTestEnvironment, type TestEnvironment } from './environment';
import { bffTestClient } from './idp';
import { withFreePort } from './ports';

// What startCaddy rejects with when Caddy does not come up, under its earlier name.
export { ProcessStartError as CaddyStartError } from './child-process';

/**
 * The Caddyfile users deploy, run where it lies in the repository (not a
 * copy): what is shipped is what the suite proves. Its `{$VARIABLES}` come
 * from Caddy's environment.
 */
export const SHIPPED_CADDYFILE = join(__dirname, '..', '..', 'deploy', 'caddy', 'Caddyfile.example');

/** A throwaway Caddy (Debian's `caddy`) in front of a gateway and an API upstream. */
export interface CaddyProxy {
  /** `http://127.0.0.1:PORT`: the origin the browser talks to, and the gateway's PUBLIC_URL. */
  readonly origin: string;
  readonly port: number;
  /** The path of the Caddyfile it runs: SHIPPED_CADDYFILE. */
  readonly caddyfile: string;
  /** Kills Caddy, waits for it to exit and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface CaddyOptions {
  /** The port of the site, `http://127.0.0.1:PORT` (SITE_ADDRESS). */
  readonly port: number;
  /** `host:port` of the gateway: browser-facing routes and forward_auth's /verify (BFF_UPSTREAM). */
  readonly gateway: string;
  /** `host:port` of the API behind forward_auth (API_UPSTREAM). */
  readonly apiUpstream: string;
}

export const CADDY_BINARY = process.env.CADDY_BIN ?? '/usr/bin/caddy';

// Caddy parses a Caddyfile and listens within a few hundred milliseconds; the rest is CI margin.
const READY_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1_000;
// Answered by Caddy itself (the catch-all `respond`), so readiness does not depend on the gateway.
const READINESS_PATH = '/__caddy-ready';

/**
 * Starts Caddy on deploy/caddy/Caddyfile.example for one test: the site on
 * plain http (an `http://` address gets no certificate), no admin endpoint,
 * and resolves once it answers HTTP (bounded).
 */
export async function startCaddy(options: CaddyOptions): Promise<CaddyProxy> {
  if (!existsSync(CADDY_BINARY)) {
    throw new Error(`${CADDY_BINARY} not found: apt-get install -y caddy (or set CADDY_BIN)`);
  }
  // Caddy keeps its data and autosave under XDG directories: a directory of this instance, never the user's.
  const workDir = mkdtempSync(join(tmpdir(), 'bff-caddy-'));
  try {
    const child = await spawnCaddy(options, workDir);
    return new CaddyProcess(options.port, SHIPPED_CADDYFILE, child, workDir);
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
}

class CaddyProcess implements CaddyProxy {
  readonly origin: string;

  constructor(
    readonly port: number,
    readonly caddyfile: string,
    private readonly server: GuardedProcess,
    private readonly workDir: string,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

function spawnCaddy(options: CaddyOptions, workDir: string): Promise<GuardedProcess> {
  const { port } = options;
  return startGuarded(CADDY_BINARY, ['run', '--config', SHIPPED_CADDYFILE, '--adapter', 'caddyfile'], {
    env: {
      PATH: process.env.PATH,
      HOME: workDir,
      XDG_DATA_HOME: join(workDir, 'data'),
      XDG_CONFIG_HOME: join(workDir, 'config'),
      CADDY_ADMIN: 'off',
      SITE_ADDRESS: `http://127.0.0.1:${port}`,
      BFF_UPSTREAM: options.gateway,
      API_UPSTREAM: options.apiUpstream,
    },
    name: `caddy on 127.0.0.1:${port}`,
    readiness: 'answer',
    // The catch-all answers 404: Caddy, not something else that grabbed the port, is listening.
    isReady: () => answersWithStatus(`http://127.0.0.1:${port}${READINESS_PATH}`, 404, PROBE_TIMEOUT_MS),
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: POLL_INTERVAL_MS,
    outputLabel: 'caddy',
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
}

/**
 * Starts the stack a browser meets in production, on loopback: Caddy's port is
 * picked first because it is the gateway's PUBLIC_URL and the IdP's registered
 * redirect and post-logout URIs; the gateway trusts X-Forwarded-* only from
 * 127.0.0.1, where Caddy connects from.
 */
export async function startCaddyStack(options: CaddyStackOptions = {}): Promise<CaddyStack> {
  // The port is picked before the gateway starts (it is the gateway's PUBLIC_URL), so when
  // another process takes it before Caddy binds it, the whole stack is started again.
  return withFreePort(async (port) => {
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
      await upstream.close();
      await environment?.close();
      throw error;
    }
  });
}
