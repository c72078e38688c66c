#!/usr/bin/env node
// Provisioning for `npm test` (its `pretest`): the suites start real servers
// (SPEC section 9), so before Jest runs this makes sure every one of them is
// here, installing what is missing:
//
//   - Debian packages (redis-server, caddy, prometheus, chromium, Java, Maven, ...)
//     with apt-get when running as root (or through sudo -n);
//   - OPA, Traefik and Jaeger v2 built from the Go module proxy;
//   - the Kafka broker's jars and the Keycloak server distribution from Maven Central;
//   - a JDK 21 or later for Keycloak, found beside Debian's Java 17.
//
// Builds and downloads go to ${XDG_CACHE_HOME:-~/.cache}/bff-gateway/<name>-<version>,
// so a second run installs nothing. What cannot be installed is named in one line
// each and the run stops (exit 1) before any test starts.
//
// Plain ESM with no dependencies: it runs under the machine's Node 20 as well as
// the Node 24 that `npm test` puts first on PATH.

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, cpSync, chmodSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PINS = JSON.parse(readFileSync(join(REPO_ROOT, 'tests', 'support', 'test-servers.json'), 'utf8'));
const REQUIRED_NODE_MAJOR = 24;
const MINUTE_MS = 60_000;

/**
 * Every binary from Debian a suite starts, with its package. `env` names the
 * variable the test support code reads to override the binary's location.
 */
const DEBIAN_BINARIES = [
  { binary: 'redis-server', debianPackage: 'redis-server', env: 'REDIS_SERVER_BIN', why: 'session store, refresh locks and rate limits' },
  { binary: 'redis-cli', debianPackage: 'redis-tools', env: 'REDIS_CLI_BIN', why: 'creating the 3-master Redis Cluster' },
  { binary: 'caddy', debianPackage: 'caddy', env: 'CADDY_BIN', why: 'the forward_auth proxy of the end-to-end tests' },
  { binary: 'chromium', debianPackage: 'chromium', env: 'CHROMIUM_BIN', why: 'the headless browser logins' },
  { binary: 'prometheus', debianPackage: 'prometheus', env: 'PROMETHEUS_BIN', why: 'scraping the gateway and evaluating every dashboard panel' },
  { binary: 'promtool', debianPackage: 'prometheus', env: 'PROMTOOL_BIN', why: 'checking and unit-testing the alert rules' },
  { binary: 'prometheus-alertmanager', debianPackage: 'prometheus-alertmanager', env: 'ALERTMANAGER_BIN', why: 'routing an alert from the rules to a webhook' },
  { binary: 'amtool', debianPackage: 'prometheus-alertmanager', env: 'AMTOOL_BIN', why: 'checking the Alertmanager configuration and its routes' },
  { binary: 'java', debianPackage: 'openjdk-17-jre-headless', env: undefined, why: 'the Kafka broker' },
  { binary: 'mvn', debianPackage: 'maven', env: 'MVN_BIN', why: 'fetching Kafka and Keycloak from Maven Central' },
  { binary: 'unzip', debianPackage: 'unzip', env: undefined, why: 'unpacking the Keycloak server distribution' },
  { binary: 'openssl', debianPackage: 'openssl', env: undefined, why: 'the TLS certificates of the HTTP/2 ForwardAuth tests' },
  { binary: 'setpriv', debianPackage: 'util-linux', env: undefined, why: 'killing test servers when their Jest worker dies' },
];

const log = (message) => process.stderr.write(`[provision] ${message}\n`);

function cacheDirectory(name, version) {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bff-gateway', `${name}-${version}`);
}

function isExecutableFile(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(binary) {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory && isAbsolute(directory) && isExecutableFile(join(directory, binary))) return join(directory, binary);
  }
  return undefined;
}

function locateDebianBinary({ binary, env }) {
  const override = env ? process.env[env] : undefined;
  return override ? (isExecutableFile(override) ? override : undefined) : onPath(binary);
}

function run(command, args, { cwd = tmpdir(), env = process.env, timeoutMs = 20 * MINUTE_MS } = {}) {
  const result = spawnSync(command, args, { cwd, env, timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}:\n${output.slice(-4000)}`);
  return output;
}

function asRoot(command, args, options) {
  if (process.getuid?.() === 0) return run(command, args, options);
  if (onPath('sudo')) return run('sudo', ['-n', command, ...args], options);
  throw new Error(`need root to run ${command} ${args.join(' ')}`);
}

function canBecomeRoot() {
  if (process.getuid?.() === 0) return true;
  return Boolean(onPath('sudo')) && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
}

/** Installs the missing Debian packages; services stay stopped (the tests start their own). */
function installDebianPackages(problems) {
  const missing = DEBIAN_BINARIES.filter((requirement) => !locateDebianBinary(requirement));
  if (missing.length === 0) return;
  const overridden = missing.filter(({ env }) => env && process.env[env]);
  for (const { env } of overridden) problems.push(`${env}=${process.env[env]} is not an executable file`);
  const packages = [...new Set(missing.filter((requirement) => !overridden.includes(requirement)).map(({ debianPackage }) => debianPackage))];
  if (packages.length === 0) return;
  if (!onPath('apt-get') || !canBecomeRoot()) {
    for (const { binary, debianPackage, why } of missing) problems.push(`missing ${binary}: apt-get install -y ${debianPackage} (as root); needed for ${why}`);
    return;
  }
  log(`installing Debian packages: ${packages.join(' ')}`);
  // Installing redis-server would start a system Redis on 6379: no service starts while installing.
  const policy = '/usr/sbin/policy-rc.d';
  const madePolicy = !existsSync(policy);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const options = ['-o', 'Acquire::Retries=3', '-o', 'DPkg::Lock::Timeout=300'];
  try {
    if (madePolicy) asRoot('sh', ['-c', `printf '#!/bin/sh\\nexit 101\\n' > ${policy} && chmod 0755 ${policy}`]);
    asRoot('apt-get', [...options, 'update', '-qq'], { env, timeoutMs: 15 * MINUTE_MS });
    asRoot('apt-get', [...options, 'install', '-y', '-qq', '--no-install-recommends', ...packages], { env, timeoutMs: 15 * MINUTE_MS });
  } catch (error) {
    problems.push(`apt-get install ${packages.join(' ')} failed: ${firstLine(error)}`);
  } finally {
    if (madePolicy) asRoot('rm', ['-f', policy]);
  }
  for (const requirement of missing) {
    if (!locateDebianBinary(requirement)) problems.push(`missing ${requirement.binary} after installing ${requirement.debianPackage}`);
  }
}

function findGo() {
  const candidates = [process.env.GO_BIN, onPath('go'), '/usr/local/go/bin/go'].filter(Boolean);
  return candidates.find(isExecutableFile);
}

/** Builds into a staging directory and renames into place, so nobody ever runs a half-written binary. */
function installAtomically(directory, name, build) {
  const binary = join(directory, name);
  if (isExecutableFile(binary)) return binary;
  mkdirSync(directory, { recursive: true });
  const staging = mkdtempSync(join(directory, 'build-'));
  try {
    const started = Date.now();
    build(staging);
    renameSync(join(staging, name), binary);
    log(`built ${name} into ${directory} in ${Math.round((Date.now() - started) / 1000)} s`);
    return binary;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function goEnvironment(extra) {
  return { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0', ...extra };
}

function buildOpa(go) {
  const { version, module } = PINS.opa;
  if (process.env.OPA_BIN) return;
  installAtomically(cacheDirectory('opa', version), 'opa', (staging) => {
    log(`building opa ${version} from the Go module proxy (about 2 minutes)`);
    run(go, ['install', `${module}@${version}`], { env: goEnvironment({ GOBIN: staging }) });
  });
}

/**
 * `go install traefik@…` is refused (its go.mod has replace directives): download
 * the module, build ./cmd/traefik in a writable copy (SPEC section 9).
 */
function buildTraefik(go) {
  const { version, module } = PINS.traefik;
  if (process.env.TRAEFIK_BIN) return;
  installAtomically(cacheDirectory('traefik', version), 'traefik', (staging) => {
    log(`building traefik ${version} from the Go module proxy (about 10 minutes the first time)`);
    const { Dir: moduleDirectory } = JSON.parse(run(go, ['mod', 'download', '-json', `${module}@${version}`], { env: goEnvironment() }));
    const source = join(staging, 'src');
    cpSync(moduleDirectory, source, { recursive: true });
    makeWritable(source);
    run(go, ['build', '-trimpath', '-o', join(staging, 'traefik'), './cmd/traefik'], { cwd: source, env: goEnvironment(), timeoutMs: 40 * MINUTE_MS });
  });
}

/**
 * Jaeger v2 (the trace backend of tests/integration/jaeger-trace.test.ts, and
 * the collector distribution whose `validate` checks deploy/otel-collector):
 * its go.mod has replace directives too, so it is built like Traefik.
 */
function buildJaeger(go) {
  const { version, module, package: packagePath } = PINS.jaeger;
  if (process.env.JAEGER_BIN) return;
  installAtomically(cacheDirectory('jaeger', version), 'jaeger', (staging) => {
    log(`building jaeger ${version} from the Go module proxy (about 10 minutes the first time)`);
    const { Dir: moduleDirectory } = JSON.parse(run(go, ['mod', 'download', '-json', `${module}@${version}`], { env: goEnvironment() }));
    const source = join(staging, 'src');
    cpSync(moduleDirectory, source, { recursive: true });
    makeWritable(source);
    run(go, ['build', '-trimpath', '-o', join(staging, 'jaeger'), packagePath], { cwd: source, env: goEnvironment(), timeoutMs: 40 * MINUTE_MS });
  });
}

/**
 * Loki, only to check deploy/loki/config.yaml with its own `-verify-config`.
 * Its go.mod replaces ./pkg/push, a nested module the proxy's zip of Loki
 * leaves out: pkg/push is filled from its own module at the version Loki's
 * go.mod requires, then ./cmd/loki is built (about 6 minutes the first time).
 */
function buildLoki(go) {
  const { version, module, package: packagePath } = PINS.loki;
  if (process.env.LOKI_BIN) return;
  const pushModule = 'github.com/grafana/loki/pkg/push';
  installAtomically(cacheDirectory('loki', version), 'loki', (staging) => {
    log(`building loki ${version} from the Go module proxy (about 6 minutes the first time)`);
    const env = goEnvironment({ GOWORK: 'off' });
    const download = (moduleAtVersion) => JSON.parse(run(go, ['mod', 'download', '-json', moduleAtVersion], { env })).Dir;
    const source = join(staging, 'src');
    cpSync(download(`${module}@${version}`), source, { recursive: true });
    makeWritable(source);
    const pushVersion = new RegExp(`^\\s*${pushModule.replaceAll('.', '\\.')}\\s+(\\S+)`, 'm').exec(readFileSync(join(source, 'go.mod'), 'utf8'))?.[1];
    if (!pushVersion) throw new Error(`Loki ${version}'s go.mod does not require ${pushModule}`);
    rmSync(join(source, 'pkg', 'push'), { recursive: true, force: true });
    cpSync(download(`${pushModule}@${pushVersion}`), join(source, 'pkg', 'push'), { recursive: true });
    makeWritable(join(source, 'pkg', 'push'));
    run(go, ['build', '-trimpath', '-o', join(staging, 'loki'), packagePath], { cwd: source, env, timeoutMs: 40 * MINUTE_MS });
  });
}

function makeWritable(directory) {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    chmodSync(path, entry.isDirectory() ? 0o755 : 0o644);
    if (entry.isDirectory()) makeWritable(path);
  }
  chmodSync(directory, 0o755);
}

const COMPLETE_MARKER = '.complete';

/** Fills a cache directory once; a directory without the marker is an interrupted attempt and is redone. */
function fillOnce(directory, fill) {
  if (existsSync(join(directory, COMPLETE_MARKER))) return;
  mkdirSync(dirname(directory), { recursive: true });
  const staging = mkdtempSync(`${directory}.partial-`);
  try {
    fill(staging);
    writeFileSync(join(staging, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
    rmSync(directory, { recursive: true, force: true });
    renameSync(staging, directory);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function mvn() {
  return process.env.MVN_BIN || 'mvn';
}

function fetchKafka() {
  const { version } = PINS.kafka;
  fillOnce(cacheDirectory('kafka', version), (staging) => {
    log(`fetching the Kafka ${version} broker's jars from Maven Central`);
    run(mvn(), [
      '-q', '-B', '-Dstyle.color=never',
      '-f', join(REPO_ROOT, 'tests', 'support', 'kafka', 'pom.xml'),
      `-Dkafka.version=${version}`,
      'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${staging}`,
    ]);
  });
}

/** The server distribution zip from Maven Central, unpacked as `keycloak-<version>/` inside the cache directory. */
function fetchKeycloak() {
  const { version, artifact } = PINS.keycloak;
  if (process.env.KEYCLOAK_HOME) return;
  fillOnce(cacheDirectory('keycloak', version), (staging) => {
    log(`fetching Keycloak ${version} from Maven Central`);
    run(mvn(), ['-q', '-B', '-Dstyle.color=never', 'dependency:copy', `-Dartifact=${artifact}:${version}:zip`, `-DoutputDirectory=${staging}`]);
    const zip = readdirSync(staging).find((name) => name.endsWith('.zip'));
    if (!zip) throw new Error(`mvn dependency:copy left no zip of ${artifact}:${version}`);
    run('unzip', ['-q', join(staging, zip), '-d', staging]);
    rmSync(join(staging, zip));
  });
}

/** `JAVA_VERSION="25.0.1"` in a JDK's `release` file -> 25. */
function javaMajorOf(javaHome) {
  try {
    const match = /^JAVA_VERSION="(\d+)/mu.exec(readFileSync(join(javaHome, 'release'), 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A JDK new enough for Keycloak: KEYCLOAK_JAVA_HOME, else the newest under
 * /usr/lib/jvm. Kept in step with tests/support/java-home.ts.
 */
function findKeycloakJava() {
  const minimum = PINS.keycloak.minimumJavaMajor;
  const candidates = process.env.KEYCLOAK_JAVA_HOME
    ? [process.env.KEYCLOAK_JAVA_HOME]
    : existsSync('/usr/lib/jvm') ? readdirSync('/usr/lib/jvm').map((name) => join('/usr/lib/jvm', name)) : [];
  return candidates
    .map((home) => ({ home, major: javaMajorOf(home) }))
    .filter(({ home, major }) => major !== undefined && major >= minimum && isExecutableFile(join(home, 'bin', 'java')))
    .sort((a, b) => b.major - a.major)[0]?.home;
}

function firstLine(error) {
  return String(error instanceof Error ? error.message : error).split('\n')[0];
}

function attempt(problems, what, step) {
  try {
    step();
  } catch (error) {
    problems.push(`${what} failed: ${firstLine(error)}`);
    const detail = String(error instanceof Error ? error.message : error).split('\n').slice(1).join('\n').trim();
    if (detail) process.stderr.write(`${detail}\n`);
  }
}

function main() {
  const problems = [];
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor !== REQUIRED_NODE_MAJOR) {
    problems.push(
      `wrong Node.js: the tests would run on ${process.version}; they need v${REQUIRED_NODE_MAJOR}: ` +
        `run "npm ci" so the "node" devDependency puts Node ${REQUIRED_NODE_MAJOR} first on PATH, then "npm test"`,
    );
  }
  installDebianPackages(problems);

  const go = findGo();
  if (!go) {
    problems.push('missing go: install Go 1.21+ (OPA, Traefik and Jaeger are built from the Go module proxy), or set OPA_BIN, TRAEFIK_BIN and JAEGER_BIN');
  } else {
    attempt(problems, `building opa ${PINS.opa.version}`, () => buildOpa(go));
    attempt(problems, `building traefik ${PINS.traefik.version}`, () => buildTraefik(go));
    attempt(problems, `building jaeger ${PINS.jaeger.version}`, () => buildJaeger(go));
    attempt(problems, `building loki ${PINS.loki.version}`, () => buildLoki(go));
  }
  if (locateDebianBinary({ binary: 'mvn', env: 'MVN_BIN' })) {
    attempt(problems, `fetching Kafka ${PINS.kafka.version}`, fetchKafka);
    if (locateDebianBinary({ binary: 'unzip' })) attempt(problems, `fetching Keycloak ${PINS.keycloak.version}`, fetchKeycloak);
  }
  if (!findKeycloakJava()) {
    problems.push(
      `missing a JDK ${PINS.keycloak.minimumJavaMajor} or later for Keycloak ${PINS.keycloak.version} under /usr/lib/jvm: ` +
        `apt-get install -y openjdk-21-jre-headless where Debian has it, or set KEYCLOAK_JAVA_HOME`,
    );
  }

  if (problems.length === 0) return 0;
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  return 1;
}

process.exitCode = main();
