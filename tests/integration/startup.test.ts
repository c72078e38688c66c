import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, loginWithIdp } from '../support/browser';
import { answersWithStatus, startGuarded } from '../support/child-process';
import { withFreePort } from '../support/ports';

const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

interface Exited {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runMain(env: Record<string, string>): { child: ChildProcess; exited: Promise<Exited>; output: () => string } {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const exited = new Promise<Exited>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, exited, output: () => stdout + stderr };
}

describe('start-up', () => {
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
  });

  const badVariables: Array<[string, string]> = [
    ['PORT', 'eighty'],
    ['PUBLIC_URL', 'ftp://app.example.com'],
    ['PUBLIC_URL', 'https://app.example.com/some/path'],
    ['ENVIRONMENT', 'prod'],
    ['OIDC_ISSUER', 'not a url'],
    ['SESSION_SECRET', 'too-short'],
    ['SESSION_IDLE_TTL_SECONDS', '-5'],
    ['SESSION_BINDING', 'maybe'],
    ['REDIS_URL', 'http://redis:6379'],
    ['REDIS_SENTINELS', 'no-port-here'],
    ['ROUTES_FILE', '/nonexistent/routes.yaml'],
    ['FRONTENDS_FILE', '/nonexistent/frontends.yaml'],
    ['KAFKA_BROKERS', 'kafka-without-port'],
    ['TELEMETRY_ENABLED', 'perhaps'],
    ['LOG_LEVEL', 'loud'],
    ['TRUSTED_PROXIES', '300.1.1.1/8'],
    ['TLS_CERT_FILE', '/nonexistent/tls.crt'],
    ['OIDC_GROUPS_CLAIM', 'realm_access..roles'],
    ['OIDC_CLIENT_AUTH_METHOD', 'client_secret_jwt'],
    ['OIDC_CLIENT_PRIVATE_KEY_FILE', '/nonexistent/client-key.pem'],
    ['OIDC_CLIENT_PRIVATE_KEY_ALG', 'HS256'],
  ];

  it.each(badVariables)('refuses %s=%j with one line naming it, an example, and exit code 1', async (name, value) => {
    const { exited } = runMain({ [name]: value });
    const result = await exited;
    expect(result.code).toBe(1);
    const lines = result.stderr.split('\n').filter((line) => line.trim().length > 0);
    const problem = lines.filter((line) => line.trim().startsWith(`${name}:`));
    expect(problem).toHaveLength(1);
    expect(problem[0]).toContain(`example: ${name}=`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('in production, lists every missing requirement at once', async () => {
    const result = await runMain({ ENVIRONMENT: 'production' }).exited;
    expect(result.code).toBe(1);
    for (const name of ['OIDC_ISSUER', 'SESSION_SECRET', 'REDIS_URL', 'PUBLIC_URL']) {
      expect(result.stderr).toMatch(new RegExp(`^\\s+${name}: `, 'm'));
    }
  });

  it('with no variables at all, serves the demo page and logs in through the embedded development IdP', async () => {
    // The gateway binds PORT itself: when another process took the port first, it exits and starts again on another.
    const { gateway, origin } = await withFreePort(async (port) => {
      const origin = `http://localhost:${port}`;
      const gateway = await startGuarded(process.execPath, [MAIN], {
        name: `the built gateway on ${origin}`,
        readiness: 'answer /ready with 200',
        env: { PATH: process.env.PATH ?? '', PORT: String(port), PUBLIC_URL: origin },
        isReady: () => answersWithStatus(`${origin}/ready`, 200, 1_000),
        readyTimeoutMs: 15_000,
        pollIntervalMs: 100,
        outputLabel: 'gateway',
        // As long as runMain allows a run: the graceful stop is part of what is checked.
        stopGraceMs: 20_000,
      });
      return { gateway, origin };
    });
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    try {
      expect(gateway.output()).toContain('log in as demo with any password');
      expect(await (await fetch(`${origin}/`)).text()).toContain('/auth/login');

      const browser = new Browser();
      const login = await loginWithIdp(browser, `${origin}/auth/login?returnTo=%2F`, { username: 'demo' });
      expect(login.finalUrl).toBe(`${origin}/`);
      const user = await browser.request(`${origin}/auth/user`);
      expect(await user.json()).toMatchObject({ sub: 'demo', name: 'Demo User' });
      const logout = await browser.request(`${origin}/auth/logout`, { method: 'POST', headers: { 'X-CSRF': '1' } });
      expect(logout.status).toBe(200);
      expect((await browser.request(`${origin}/auth/user`)).status).toBe(401);
    } finally {
      await gateway.stop();
    }
    expect(await exited).toBe(0);
    expect(gateway.output()).toContain('"message":"stopped"');
  });
});
