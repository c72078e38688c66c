import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseForms, type Browser, type HtmlForm, type NavigationResult } from './browser';
import { answersWithStatus, atProcessExit, ProcessStartError, startGuarded, type GuardedProcess } from './child-process';
import { findJavaHome } from './java-home';
import { getFreePort, withFreePort } from './ports';
import { TEST_SERVERS, testServerCacheDirectory } from './test-servers';

/**
 * A real Keycloak (SPEC section 9): the server distribution from Maven
 * Central, unpacked into the test-server cache by
 * scripts/provision-test-servers.mjs, run in development mode (`start-dev`:
 * plain HTTP, H2 database, local caches) on a JDK 21 or later found under
 * /usr/lib/jvm. Each start gets its own Keycloak home in a temporary
 * directory: links to the distribution's read-only parts, and its own
 * `data/` (database, realm import), removed on stop.
 */

export const KEYCLOAK_VERSION = TEST_SERVERS.keycloak.version;

const REPO_ROOT = resolve(__dirname, '..', '..');
/** The realm the repository ships (also for docker-compose): client `bff-gateway`, users alice, bob and carol. */
export const KEYCLOAK_REALM_FILE = join(REPO_ROOT, 'deploy', 'keycloak', 'realm.json');

/** The example realm's `bff-gateway-jwt` client (private_key_jwt, PAR required): its development private key, whose public JWK the realm holds. */
export const KEYCLOAK_JWT_CLIENT = {
  clientId: 'bff-gateway-jwt',
  privateKeyFile: join(REPO_ROOT, 'deploy', 'keycloak', 'bff-gateway-jwt.development-key.pem'),
} as const;

/** The master realm's bootstrap administrator of a test server (test values). */
export const KEYCLOAK_ADMIN = { username: 'admin', password: 'admin-test-password' } as const;

// Start-up is 15-25 s on 2 busy cores (about 5 s of it the master realm and the import); the margin is for a loaded CI machine.
const READY_TIMEOUT_MS = 180_000;
const PROBE_INTERVAL_MS = 250;
const PROBE_TIMEOUT_MS = 2_000;
// Keycloak stops in well under a second; H2 closing its files is the slow part on a busy disk.
const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_CHARS = 12_000;
const ADMIN_REQUEST_TIMEOUT_MS = 15_000;
/** An admin token is renewed this long before it expires (the master realm issues 60 s tokens). */
const ADMIN_TOKEN_MARGIN_MS = 10_000;
/**
 * `start-dev` on a distribution built for other options rebuilds it
 * ("augmentation", 10-20 s, written into the distribution's lib/quarkus) and
 * exits with this code; kc.sh then starts it again with -Dkc.config.built=true,
 * and so do we. Later starts with the same options skip the rebuild.
 */
const REAUGMENTED_EXIT_CODE = 10;

/**
 * The JVM flags of kc.sh (module opens, UTF-8, locale), tuned for a short-lived
 * test server: a small heap, the serial collector and the C1 compiler only,
 * which start faster than G1 and the full JIT. `java.lang` is opened too: on
 * Java 24 and later, jboss-threads needs it (kc.sh 26.5 does not add it yet).
 */
const JVM_OPTIONS = [
  '-Xms64m',
  '-Xmx512m',
  '-XX:MetaspaceSize=96M',
  '-XX:MaxMetaspaceSize=256m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.security.egd=file:/dev/urandom',
  '-Dfile.encoding=UTF-8',
  '-Dstdout.encoding=UTF-8',
  '-Dstderr.encoding=UTF-8',
  '-Duser.language=en',
  '-Duser.country=US',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens=java.base/java.security=ALL-UNNAMED',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '-Djava.util.concurrent.ForkJoinPool.common.threadFactory=io.quarkus.bootstrap.forkjoin.QuarkusForkJoinWorkerThreadFactory',
  '-Djava.util.logging.manager=org.jboss.logmanager.LogManager',
  '-Dpicocli.disable.closures=true',
  '-Dquarkus-log-max-startup-records=10000',
];

/** The parts of the distribution a run home links to; `data/` is the run's own. */
const DISTRIBUTION_PARTS = ['bin', 'conf', 'lib', 'providers', 'themes'];

/** `KEYCLOAK_HOME`, else the distribution unpacked in the test-server cache. */
export function keycloakDistribution(): string {
  return process.env.KEYCLOAK_HOME || join(testServerCacheDirectory('keycloak', KEYCLOAK_VERSION), `keycloak-${KEYCLOAK_VERSION}`);
}

/** `KEYCLOAK_JAVA_HOME`, else the newest JDK under /usr/lib/jvm that Keycloak accepts. */
export function keycloakJavaHome(): string | undefined {
  return findJavaHome({ minimumMajor: TEST_SERVERS.keycloak.minimumJavaMajor, override: process.env.KEYCLOAK_JAVA_HOME });
}

/** A running Keycloak on loopback ports. */
export interface KeycloakServer {
  readonly version: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT`: Keycloak's fixed front-end URL, so every token says this issuer. */
  readonly url: string;
  /** Reserved for the management interface (health, metrics) so that it never collides with another server's 9000. */
  readonly managementPort: number;
  /** The issuer of a realm: `http://127.0.0.1:PORT/realms/<realm>`. */
  issuer(realm: string): string;
  /** The admin REST API as the master realm's bootstrap administrator. */
  readonly admin: KeycloakAdmin;
  /** The tail of Keycloak's log, for failure messages. */
  output(): string;
  /** Stops Keycloak (SIGTERM, then SIGKILL) and removes its home. Idempotent. */
  stop(): Promise<void>;
}

export interface StartKeycloakOptions {
  /** Realm exports imported at start (`--import-realm`), one realm each; defaults to deploy/keycloak/realm.json. */
  readonly realmFiles?: readonly string[];
}

const liveRunHomes = new Set<string>();

// A Jest worker that ends without stop() must not leave Keycloak's database behind.
function removeLiveRunHomes(): void {
  for (const runHome of liveRunHomes) rmSync(runHome, { recursive: true, force: true });
}

/**
 * Starts Keycloak in development mode on a free 127.0.0.1 port with the
 * realms imported, and resolves once every realm serves its discovery
 * document (Keycloak listens only after the import, so that also means ready).
 */
export async function startKeycloak(options: StartKeycloakOptions = {}): Promise<KeycloakServer> {
  atProcessExit(removeLiveRunHomes);
  const distribution = keycloakDistribution();
  if (!existsSync(join(distribution, 'lib', 'quarkus-run.jar'))) {
    throw new Error(
      `Keycloak ${KEYCLOAK_VERSION} is not in ${distribution}: run \`node scripts/provision-test-servers.mjs\` (npm test does) or set KEYCLOAK_HOME`,
    );
  }
  const javaHome = keycloakJavaHome();
  if (!javaHome) {
    throw new Error(
      `Keycloak ${KEYCLOAK_VERSION} needs a JDK ${TEST_SERVERS.keycloak.minimumJavaMajor} or later and none is under /usr/lib/jvm: install one (e.g. openjdk-21-jre-headless) or set KEYCLOAK_JAVA_HOME`,
    );
  }
  const realms = (options.realmFiles ?? [KEYCLOAK_REALM_FILE]).map(readRealmExport);

  return withFreePort(async (port) => {
    const managementPort = await getFreePort();
    const runHome = mkdtempSync(join(tmpdir(), 'bff-keycloak-'));
    liveRunHomes.add(runHome);
    try {
      prepareRunHome(runHome, distribution, realms);
      const launch: KeycloakLaunch = { java: join(javaHome, 'bin', 'java'), javaHome, runHome, port, managementPort, realmNames: realms.map((realm) => realm.name) };
      const jvm = await startWithRebuild(launch);
      return new RunningKeycloak(jvm, runHome, port, managementPort);
    } catch (error) {
      liveRunHomes.delete(runHome);
      rmSync(runHome, { recursive: true, force: true });
      throw error;
    }
  });
}

interface RealmExport {
  readonly name: string;
  readonly json: string;
}

function readRealmExport(file: string): RealmExport {
  const json = readFileSync(file, 'utf8');
  const name = (JSON.parse(json) as { realm?: unknown }).realm;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`${file} has no usable "realm" name`);
  return { name, json };
}

/** The run's Keycloak home: the distribution's parts linked, `data/import/<realm>-realm.json` written (Keycloak wants that file name). */
function prepareRunHome(runHome: string, distribution: string, realms: readonly RealmExport[]): void {
  for (const part of DISTRIBUTION_PARTS) symlinkSync(join(distribution, part), join(runHome, part));
  const importDirectory = join(runHome, 'data', 'import');
  mkdirSync(importDirectory, { recursive: true });
  for (const realm of realms) writeFileSync(join(importDirectory, `${realm.name}-realm.json`), realm.json);
}

interface KeycloakLaunch {
  readonly java: string;
  readonly javaHome: string;
  readonly runHome: string;
  readonly port: number;
  readonly managementPort: number;
  readonly realmNames: readonly string[];
}

/**
 * The JVM is started directly rather than through kc.sh, so that it is the
 * process `startGuarded` watches and the kernel kills with the Jest worker
 * (kc.sh would run it as a grandchild). A start that rebuilt the
 * distribution and exited for a relaunch is started once more.
 */
async function startWithRebuild(launch: KeycloakLaunch): Promise<GuardedProcess> {
  let firstAttempt: GuardedProcess | undefined;
  try {
    return await startJvm(launch, false, (jvm) => (firstAttempt = jvm));
  } catch (error) {
    if (!(error instanceof ProcessStartError) || firstAttempt?.child.exitCode !== REAUGMENTED_EXIT_CODE) throw error;
    return startJvm(launch, true, () => undefined);
  }
}

function startJvm(launch: KeycloakLaunch, isBuilt: boolean, onSpawned: (jvm: GuardedProcess) => void): Promise<GuardedProcess> {
  const { runHome, port } = launch;
  const args = [
    ...JVM_OPTIONS,
    ...(isBuilt ? ['-Dkc.config.built=true'] : []),
    `-Dkc.home.dir=${runHome}`,
    `-Djboss.server.config.dir=${join(runHome, 'conf')}`,
    '-cp',
    join(runHome, 'lib', 'quarkus-run.jar'),
    'io.quarkus.bootstrap.runner.QuarkusEntryPoint',
    'start-dev',
    '--http-host=127.0.0.1',
    `--http-port=${port}`,
    `--http-management-port=${launch.managementPort}`,
    // A fixed front-end URL: tokens, logout tokens and discovery say this issuer whichever host name a request used.
    `--hostname=http://127.0.0.1:${port}`,
    '--import-realm',
  ];
  return startGuarded(launch.java, args, {
    name: `Keycloak ${KEYCLOAK_VERSION} on 127.0.0.1:${port}`,
    readiness: `serve the discovery documents of ${launch.realmNames.join(', ')}`,
    isReady: (jvm) => {
      onSpawned(jvm);
      return servesRealms(`http://127.0.0.1:${port}`, launch.realmNames);
    },
    readyTimeoutMs: READY_TIMEOUT_MS,
    pollIntervalMs: PROBE_INTERVAL_MS,
    outputLabel: 'keycloak',
    outputTailChars: OUTPUT_TAIL_CHARS,
    stopGraceMs: STOP_GRACE_MS,
    cwd: runHome,
    env: keycloakEnvironment(launch.javaHome),
  });
}

/** This process's environment without Keycloak or Quarkus settings of the developer's, plus the bootstrap admin. */
function keycloakEnvironment(javaHome: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(KC_|KEYCLOAK_|QUARKUS_|JAVA_OPTS)/.test(name)) env[name] = value;
  }
  return { ...env, JAVA_HOME: javaHome, KC_BOOTSTRAP_ADMIN_USERNAME: KEYCLOAK_ADMIN.username, KC_BOOTSTRAP_ADMIN_PASSWORD: KEYCLOAK_ADMIN.password };
}

async function servesRealms(url: string, realmNames: readonly string[]): Promise<boolean> {
  for (const realm of realmNames) {
    if (!(await answersWithStatus(`${url}/realms/${realm}/.well-known/openid-configuration`, 200, PROBE_TIMEOUT_MS))) return false;
  }
  return true;
}

class RunningKeycloak implements KeycloakServer {
  readonly version = KEYCLOAK_VERSION;
  readonly url: string;
  readonly admin: KeycloakAdmin;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly jvm: GuardedProcess,
    private readonly runHome: string,
    readonly port: number,
    readonly managementPort: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.admin = new KeycloakAdminClient(this.url);
  }

  issuer(realm: string): string {
    return `${this.url}/realms/${realm}`;
  }

  output(): string {
    return this.jvm.output();
  }

  stop(): Promise<void> {
    this.stopped ??= this.jvm.stop().finally(() => {
      liveRunHomes.delete(this.runHome);
      rmSync(this.runHome, { recursive: true, force: true });
    });
    return this.stopped;
  }
}

// ---------------------------------------------------------------------------
// The admin REST API (https://www.keycloak.org/docs-api/latest/rest-api/).

/** The parts of Keycloak's UserRepresentation the tests use. */
export interface KeycloakUser {
  readonly id: string;
  readonly username: string;
  readonly enabled: boolean;
  readonly email?: string;
  readonly firstName?: string;
  readonly lastName?: string;
  readonly [other: string]: unknown;
}

/** The parts of Keycloak's UserSessionRepresentation the tests use. */
export interface KeycloakUserSession {
  readonly id: string;
  readonly username: string;
  /** Client UUID to client id. */
  readonly clients: Readonly<Record<string, string>>;
}

export interface NewKeycloakUser {
  readonly username: string;
  readonly password: string;
  readonly email: string;
  readonly firstName: string;
  readonly lastName: string;
  /** Group paths, e.g. `/staff`. */
  readonly groups?: readonly string[];
  /** Realm role names, e.g. `default-roles-bff` (which carries offline_access) or `app-admin`. */
  readonly realmRoles?: readonly string[];
}

/** Keycloak's ClientRepresentation, as read and written whole. */
export type KeycloakClient = { readonly id: string; readonly clientId: string; readonly attributes?: Record<string, string> } & Record<string, unknown>;

export interface KeycloakAdmin {
  /** Any admin call: `path` is below `/admin/realms`; resolves with the parsed JSON answer (undefined for 201/204). */
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  findUser(realm: string, username: string): Promise<KeycloakUser>;
  /** Creates an enabled user with a password, no required actions, and the groups and realm roles given. */
  createUser(realm: string, user: NewKeycloakUser): Promise<KeycloakUser>;
  /** Reads the user, applies `change` and writes the whole representation back (a partial PUT can clear profile attributes). */
  updateUser(realm: string, userId: string, change: Partial<KeycloakUser>): Promise<void>;
  /** Ends every session of the user, as "Sign out" in the admin console does: Keycloak sends back-channel logout tokens. */
  logoutUser(realm: string, userId: string): Promise<void>;
  userSessions(realm: string, userId: string): Promise<KeycloakUserSession[]>;
  /** The user's realm roles, composites expanded. */
  effectiveRealmRoles(realm: string, userId: string): Promise<string[]>;
  findClient(realm: string, clientId: string): Promise<KeycloakClient>;
  /** Reads the client, lets `change` return the new representation, and writes it back. */
  updateClient(realm: string, clientId: string, change: (client: KeycloakClient) => KeycloakClient): Promise<void>;
}

class KeycloakAdminClient implements KeycloakAdmin {
  private token: { readonly value: string; readonly expiresAt: number } | undefined;

  constructor(private readonly baseUrl: string) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    const text = await response.text();
    if (!response.ok) throw new Error(`Keycloak admin ${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async findUser(realm: string, username: string): Promise<KeycloakUser> {
    const users = await this.request<KeycloakUser[]>('GET', `/${realm}/users?exact=true&username=${encodeURIComponent(username)}`);
    const user = users.find((candidate) => candidate.username === username);
    if (!user) throw new Error(`Keycloak realm ${realm} has no user ${username}`);
    return user;
  }

  async createUser(realm: string, user: NewKeycloakUser): Promise<KeycloakUser> {
    await this.request('POST', `/${realm}/users`, {
      username: user.username,
      email: user.email,
      firstName: user.firstName,
      lastName: user.lastName,
      enabled: true,
      emailVerified: true,
      requiredActions: [],
      groups: user.groups ?? [],
      credentials: [{ type: 'password', value: user.password, temporary: false }],
    });
    const created = await this.findUser(realm, user.username);
    // The create call ignores realm roles; they are mapped separately.
    if (user.realmRoles && user.realmRoles.length > 0) {
      const roles = await Promise.all(user.realmRoles.map((role) => this.request<unknown>('GET', `/${realm}/roles/${encodeURIComponent(role)}`)));
      await this.request('POST', `/${realm}/users/${created.id}/role-mappings/realm`, roles);
    }
    return created;
  }

  async updateUser(realm: string, userId: string, change: Partial<KeycloakUser>): Promise<void> {
    const current = await this.request<KeycloakUser>('GET', `/${realm}/users/${userId}`);
    await this.request('PUT', `/${realm}/users/${userId}`, { ...current, ...change });
  }

  async logoutUser(realm: string, userId: string): Promise<void> {
    await this.request('POST', `/${realm}/users/${userId}/logout`);
  }

  userSessions(realm: string, userId: string): Promise<KeycloakUserSession[]> {
    return this.request<KeycloakUserSession[]>('GET', `/${realm}/users/${userId}/sessions`);
  }

  async effectiveRealmRoles(realm: string, userId: string): Promise<string[]> {
    const roles = await this.request<Array<{ name: string }>>('GET', `/${realm}/users/${userId}/role-mappings/realm/composite`);
    return roles.map((role) => role.name);
  }

  async findClient(realm: string, clientId: string): Promise<KeycloakClient> {
    const clients = await this.request<KeycloakClient[]>('GET', `/${realm}/clients?clientId=${encodeURIComponent(clientId)}`);
    const client = clients.find((candidate) => candidate.clientId === clientId);
    if (!client) throw new Error(`Keycloak realm ${realm} has no client ${clientId}`);
    return client;
  }

  async updateClient(realm: string, clientId: string, change: (client: KeycloakClient) => KeycloakClient): Promise<void> {
    const current = await this.findClient(realm, clientId);
    await this.request('PUT', `/${realm}/clients/${current.id}`, change(current));
  }

  private async send(method: string, path: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.accessToken()}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${this.baseUrl}/admin/realms${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(ADMIN_REQUEST_TIMEOUT_MS),
    });
  }

  /** A password grant of the bootstrap admin at the master realm's admin-cli client, reused until shortly before it expires. */
  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt - ADMIN_TOKEN_MARGIN_MS > Date.now()) return this.token.value;
    const response = await fetch(`${this.baseUrl}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: KEYCLOAK_ADMIN.username, password: KEYCLOAK_ADMIN.password }),
      signal: AbortSignal.timeout(ADMIN_REQUEST_TIMEOUT_MS),
    });
    const answer = (await response.json()) as { access_token?: string; expires_in?: number; error?: string };
    if (!response.ok || !answer.access_token) throw new Error(`Keycloak refused the admin login (${response.status} ${answer.error ?? ''})`);
    this.token = { value: answer.access_token, expiresAt: Date.now() + (answer.expires_in ?? 60) * 1000 };
    return this.token.value;
  }
}

// ---------------------------------------------------------------------------
// Keycloak's own login page, driven by the simulated browser.

export interface KeycloakCredentials {
  readonly username: string;
  readonly password: string;
}

/** Keycloak's login form on this page (theme keycloak.v2: a POST form with `username` and `password`), if any. */
export function findKeycloakLoginForm(page: NavigationResult): HtmlForm | undefined {
  if (page.stoppedAt !== undefined) return undefined;
  return parseForms(page.body, page.url).find((form) => form.method === 'POST' && 'username' in form.fields && 'password' in form.fields);
}

/**
 * Navigates to `startUrl` (a gateway's `/auth/login?...`), fills in
 * Keycloak's login form and follows the redirects back. Fails when Keycloak
 * shows no login form, or shows it again (a refused password shows the form
 * with an error). Resolves with where the browser landed, every hop included.
 */
export async function logInThroughKeycloak(browser: Browser, startUrl: string | URL, credentials: KeycloakCredentials): Promise<NavigationResult> {
  const page = await browser.navigate(startUrl);
  const form = findKeycloakLoginForm(page);
  if (!form) throw new Error(`expected Keycloak's login form, got ${describeKeycloakPage(page)}`);
  const result = await browser.submitForm(form, { ...form.fields, username: credentials.username, password: credentials.password }, page.url);
  if (findKeycloakLoginForm(result)) throw new Error(`Keycloak showed its login form again for ${credentials.username}: ${describeKeycloakPage(result)}`);
  return { ...result, hops: [...page.hops, ...result.hops] };
}

/** Status, URL, the visible text (Keycloak's error messages included) and the hops, for failure messages. */
export function describeKeycloakPage(page: NavigationResult): string {
  const text = page.body
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const where = page.stoppedAt === undefined ? page.url : `${page.url} -> (not followed) ${page.stoppedAt}`;
  return `${page.response.status} at ${where}: ${text.slice(0, 500)}\nhops:\n${page.hops.join('\n')}`;
}
