import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGuarded, type GuardedProcess } from './child-process';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream';
import { startTestEnvironment, type TestEnvironment } from './environment';
import { bffTestClient } from './idp';
import { getFreePort, withFreePort } from './ports';
import { TEST_SERVERS, testServerCacheDirectory } from './test-servers';
import { makeTestCertificates, type TestCertificates } from './tls';

/**
 * The dynamic configuration users deploy, loaded by Traefik's file provider
 * where it lies in the repository (not a copy): what is shipped is what the
 * suite proves. Its template variables come from Traefik's environment.
 */
export const SHIPPED_DYNAMIC_CONFIG = join(__dirname, '..', '..', 'deploy', 'traefik', 'dynamic.yml');

/** Built from the Go module proxy by scripts/provision-test-servers.mjs (SPEC section 9); TRAEFIK_BIN overrides. */
export const TRAEFIK_BINARY = process.env.TRAEFIK_BIN ?? join(testServerCacheDirectory('traefik', TEST_SERVERS.traefik.version), 'traefik');

/** The routers and the middleware of the shipped file that must be up before a test may send traffic. */
const EXPECTED = {
  routers: ['bff@file', 'bff-spa-metrics@file', 'api@file'],
  middlewares: ['bff-auth@file', 'api-ratelimit@file'],
  services: ['bff@file', 'api@file'],
} as const;

// Traefik starts in well under a second and its routers follow within a few hundred ms on a quiet machine;
// the bound is generous for a loaded 2-core CI machine (a Keycloak JVM starting beside it).
const READY_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 5_000;

export interface TraefikOptions {
  /** The port of the `web` entry point (plain HTTP, 127.0.0.1): the origin the browser uses. */
  readonly port: number;
  /** BFF_HOST: the host in the routers' rules. */
  readonly host: string;
  /** BFF_URL: the gateway, `https://…` (TLS, HTTP/2 by ALPN) or `http://…`. */
  readonly gatewayUrl: string;
  /** BFF_CA_FILE: the CA of the gateway's certificate; the shipped file loads it even for an http BFF_URL. */
  readonly caFile: string;
  /** API_URL: the upstream behind ForwardAuth. */
  readonly apiUrl: string;
}

/** A throwaway Traefik running the shipped deploy/traefik/dynamic.yml. */
export interface TraefikProxy {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  readonly port: number;
  /** Traefik's API and ping entry point, `http://127.0.0.1:PORT`. */
  readonly apiOrigin: string;
  /** The static configuration it runs with, for failure messages. */
  readonly staticConfig: string;
  /** The last lines Traefik logged. */
  output(): string;
  /** Kills Traefik, waits for it to exit and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Static configuration for one test run: the `web` entry point on a loopback
 * port without forwardedHeaders.trustedIPs (client X-Forwarded-* are dropped,
 * as in the shipped static example), the API and ping on their own loopback
 * entry point, and the file provider on the repository's dynamic.yml.
 */
export function traefikStaticConfig(port: number, apiPort: number): string {
  return [
    'global:',
    '  checkNewVersion: false',
    '  sendAnonymousUsage: false',
    'entryPoints:',
    '  web:',
    `    address: "127.0.0.1:${port}"`,
    '  traefik:',
    `    address: "127.0.0.1:${apiPort}"`,
    'api:',
    '  insecure: true',
    '  dashboard: false',
    'ping:',
    '  entryPoint: traefik',
    'providers:',
    '  file:',
    `    filename: ${JSON.stringify(SHIPPED_DYNAMIC_CONFIG)}`,
    '    watch: true',
    'log:',
    '  level: WARN',
    '',
  ].join('\n');
}

/** Starts Traefik and resolves once the shipped routers, middlewares and services are enabled (bounded). */
export async function startTraefik(options: TraefikOptions): Promise<TraefikProxy> {
  if (!existsSync(TRAEFIK_BINARY)) {
    throw new Error(`${TRAEFIK_BINARY} not found: run node scripts/provision-test-servers.mjs (or set TRAEFIK_BIN)`);
  }
  const apiPort = await getFreePort();
  const staticConfig = traefikStaticConfig(options.port, apiPort);
  const workDir = mkdtempSync(join(tmpdir(), 'bff-traefik-'));
  try {
    const configFile = join(workDir, 'traefik.yml');
    writeFileSync(configFile, staticConfig);
    const apiOrigin = `http://127.0.0.1:${apiPort}`;
    const server = await startGuarded(TRAEFIK_BINARY, [`--configFile=${configFile}`], {
      env: {
        PATH: process.env.PATH,
        HOME: workDir,
        BFF_HOST: options.host,
        BFF_ENTRYPOINT: 'web',
        BFF_URL: options.gatewayUrl,
        BFF_CA_FILE: options.caFile,
        API_URL: options.apiUrl,
      },
      cwd: workDir,
      name: `traefik on 127.0.0.1:${options.port}`,
      readiness: `enable the routers of ${SHIPPED_DYNAMIC_CONFIG}`,
      isReady: () => areShippedRoutersUp(apiOrigin),
      readyTimeoutMs: READY_TIMEOUT_MS,
      pollIntervalMs: POLL_INTERVAL_MS,
      outputLabel: 'traefik',
    });
    return new TraefikProcess(options.port, apiOrigin, staticConfig, server, workDir);
  } catch (error) {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
}

interface ApiObject {
  readonly name: string;
  readonly status: string;
  readonly error?: readonly string[];
}

/**
 * True once every expected router, middleware and service is `enabled`.
 * One that Traefik reports in error ends the wait at once with Traefik's
 * reasons: the shipped file does not work, and waiting will not help.
 */
async function areShippedRoutersUp(apiOrigin: string): Promise<boolean> {
  const found: ApiObject[] = [];
  for (const kind of Object.keys(EXPECTED) as Array<keyof typeof EXPECTED>) {
    const listed = await fetch(`${apiOrigin}/api/http/${kind}`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
      .then((response) => (response.ok ? (response.json() as Promise<ApiObject[]>) : undefined))
      .catch(() => undefined);
    if (!listed) return false;
    for (const name of EXPECTED[kind]) {
      const item = listed.find((candidate) => candidate.name === name);
      if (!item) return false;
      found.push(item);
    }
  }
  const broken = found.filter((item) => item.status !== 'enabled');
  if (broken.length > 0) {
    throw new Error(`Traefik did not accept ${SHIPPED_DYNAMIC_CONFIG}: ${broken.map((item) => `${item.name} is ${item.status} (${(item.error ?? []).join('; ')})`).join(', ')}`);
  }
  return true;
}

class TraefikProcess implements TraefikProxy {
  readonly origin: string;

  constructor(
    readonly port: number,
    readonly apiOrigin: string,
    readonly staticConfig: string,
    private readonly server: GuardedProcess,
    private readonly workDir: string,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
  }

  output(): string {
    return this.server.output();
  }

  async stop(): Promise<void> {
    await this.server.stop();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** How Traefik reaches the gateway. */
export type GatewayTransport = 'tls' | 'plain';

export interface TraefikStackOptions {
  /** `tls` (the default, as the shipped file): TLS_CERT_FILE/TLS_KEY_FILE set, ForwardAuth to https with tls.ca, HTTP/2 by ALPN. */
  readonly gatewayTransport?: GatewayTransport;
  /** Extra gateway variables. */
  readonly env?: Record<string, string>;
}

/** Real Traefik on the shipped dynamic.yml in front of a real gateway (with real Redis and IdP) and an echo upstream as the API. */
export interface TraefikStack {
  /** Traefik's origin: the only address a browser uses; the gateway's PUBLIC_URL. */
  readonly origin: string;
  readonly traefik: TraefikProxy;
  readonly upstream: EchoUpstream;
  readonly environment: TestEnvironment;
  readonly gatewayTransport: GatewayTransport;
  /** Stops Traefik, the upstream, the gateway, the IdP and Redis, and removes the certificates. */
  close(): Promise<void>;
}

/**
 * Starts the stack a browser meets in production, on loopback. Traefik's port
 * is picked first because it is the gateway's PUBLIC_URL and the IdP's
 * registered redirect and post-logout URIs; the gateway trusts X-Forwarded-*
 * only from 127.0.0.1, where Traefik connects from.
 */
export async function startTraefikStack(options: TraefikStackOptions = {}): Promise<TraefikStack> {
  const gatewayTransport = options.gatewayTransport ?? 'tls';
  return withFreePort(async (port) => {
    const origin = `http://127.0.0.1:${port}`;
    let certificates: TestCertificates | undefined;
    let upstream: EchoUpstream | undefined;
    let environment: TestEnvironment | undefined;
    try {
      certificates = makeTestCertificates();
      upstream = await startEchoUpstream();
      const tls: Record<string, string> = gatewayTransport === 'tls' ? { TLS_CERT_FILE: certificates.certFile, TLS_KEY_FILE: certificates.keyFile } : {};
      environment = await startTestEnvironment({
        env: { PUBLIC_URL: origin, TRUSTED_PROXIES: '127.0.0.1/32', ...tls, ...options.env },
        idp: { clients: [bffTestClient({ redirect_uris: [`${origin}/auth/callback`], post_logout_redirect_uris: [`${origin}/`] })] },
      });
      const traefik = await startTraefik({
        port,
        host: '127.0.0.1',
        gatewayUrl: environment.gateway.url,
        caFile: certificates.caFile,
        apiUrl: upstream.url,
      });
      const [started, echo, certs] = [environment, upstream, certificates];
      return {
        origin,
        traefik,
        upstream: echo,
        environment: started,
        gatewayTransport,
        async close() {
          await traefik.stop();
          await echo.close();
          await started.close();
          certs.remove();
        },
      };
    } catch (error) {
      await upstream?.close();
      await environment?.close();
      certificates?.remove();
      throw error;
    }
  });
}
