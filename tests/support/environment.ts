import { Browser, loginWithIdp } from './browser';
import { startGateway, TEST_SESSION_SECRET, type RunningGateway, type StartGatewayOptions } from './gateway';
import { bffTestClient, startTestIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type StartTestIdpOptions, type TestIdp } from './idp';
import { reservePort } from './ports';
import { startRedis, type RedisServer } from './redis';

/** A real Redis, a real IdP process and gateways in front of them. */
export interface TestEnvironment {
  readonly redis: RedisServer;
  readonly idp: TestIdp;
  readonly gateway: RunningGateway;
  /** The variables every gateway of this environment starts with. */
  readonly env: Record<string, string>;
  /** Another replica on the same Redis and IdP, answering for the same PUBLIC_URL, on a port of its own. */
  startReplica(options?: Partial<StartGatewayOptions>): Promise<RunningGateway>;
  close(): Promise<void>;
}

export interface TestEnvironmentOptions {
  readonly env?: Record<string, string>;
  readonly idp?: Partial<StartTestIdpOptions>;
  readonly gateway?: Partial<StartGatewayOptions>;
  /** Without Redis the gateway uses its in-memory store. */
  readonly withRedis?: boolean;
}

export async function startTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  // Reserved, not just chosen: the IdP learns the URL before the gateway listens on it.
  const port = options.gateway?.port ?? (await reservePort());
  const publicUrl = `http://127.0.0.1:${port.port}`;
  const redis = options.withRedis === false ? undefined : await startRedis();
  const idp = await startTestIdp({
    clients: [bffTestClient({ redirect_uris: [`${publicUrl}/auth/callback`], post_logout_redirect_uris: [`${publicUrl}/`] })],
    ...options.idp,
  });
  const env: Record<string, string> = {
    PUBLIC_URL: publicUrl,
    OIDC_ISSUER: idp.issuer,
    OIDC_CLIENT_ID: TEST_CLIENT_ID,
    OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
    SESSION_SECRET: TEST_SESSION_SECRET,
    ...(redis ? { REDIS_URL: redis.url } : {}),
    ...options.env,
  };
  const replicas: RunningGateway[] = [];
  const gateway = await startGateway({ env, ...options.gateway, port });
  replicas.push(gateway);
  return {
    redis: redis as RedisServer,
    idp,
    gateway,
    env,
    async startReplica(replicaOptions = {}) {
      const { port: _environmentPort, ...gatewayOptions } = options.gateway ?? {};
      const replica = await startGateway({ env, ...gatewayOptions, ...replicaOptions });
      replicas.push(replica);
      return replica;
    },
    async close() {
      for (const replica of replicas) await replica.close().catch(() => undefined);
      await idp.stop();
      await redis?.stop();
    },
  };
}

/** Logs `username` in through the gateway's /auth/login and the IdP's pages; returns the browser holding the session. */
export async function logIn(gateway: RunningGateway, username: string, returnTo = '/'): Promise<Browser> {
  const browser = new Browser();
  const result = await loginWithIdp(browser, `${gateway.url}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, { username });
  if (!result.finalUrl.startsWith(gateway.url) || !browser.cookie(gateway.config.session.cookieName, gateway.url)) {
    throw new Error(`login ended at ${result.finalUrl} with ${result.response.status}: ${result.body.slice(0, 300)}`);
  }
  return browser;
}

/** Headers a ForwardAuth proxy sends for an API call. */
export function forwarded(uri: string, method = 'GET', extra: Record<string, string> = {}): Record<string, string> {
  return { 'X-Forwarded-Method': method, 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'app.example.test', 'X-Forwarded-Uri': uri, ...extra };
}
