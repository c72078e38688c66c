#!/usr/bin/env node
// Pre-flight for `npm test`: the test suites start real servers (SPEC section 9),
// so before Jest runs this checks that their binaries exist and that the Node
// running the tests is the one the project targets. It installs nothing: it
// names what is missing in one line each and exits 1. `.ci/run` is the script
// that installs (its TEST_BINARIES list mirrors the table below).
//
// Plain ESM JavaScript with no dependencies, so it runs under the machine's
// Node 20 as well as the Node 24 that `npm test` puts first on PATH.
// Silent and exit 0 when everything is in place.

import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import process from 'node:process';

/**
 * Every external binary a test suite starts, with the Debian package that
 * ships it. `env` names the variable the test support code reads to override
 * the binary's location; when it is set, that path is checked instead of PATH.
 * Add a row here and the same `binary:package` pair to TEST_BINARIES in .ci/run.
 */
const REQUIRED_BINARIES = [
  {
    binary: 'redis-server',
    debianPackage: 'redis-server',
    env: 'REDIS_SERVER_BIN',
    why: 'session store, refresh locks and rate limits in the integration tests',
  },
  {
    binary: 'redis-cli',
    debianPackage: 'redis-tools',
    env: 'REDIS_CLI_BIN',
    why: 'creating the 3-master Redis Cluster of the contract tests',
  },
  {
    binary: 'caddy',
    debianPackage: 'caddy',
    env: 'CADDY_BIN',
    why: 'the forward_auth proxy in front of the gateway in the end-to-end tests',
  },
  {
    binary: 'chromium',
    debianPackage: 'chromium',
    env: 'CHROMIUM_BIN',
    why: 'the headless browser login in the end-to-end tests',
  },
  {
    binary: 'prometheus',
    debianPackage: 'prometheus',
    env: 'PROMETHEUS_BIN',
    why: 'scraping the gateway and evaluating every dashboard panel',
  },
  {
    binary: 'promtool',
    debianPackage: 'prometheus',
    env: 'PROMTOOL_BIN',
    why: 'checking and unit-testing the alert rules',
  },
  {
    binary: 'java',
    debianPackage: 'openjdk-17-jre-headless',
    env: undefined,
    why: 'the Kafka broker of the event tests',
  },
  {
    binary: 'mvn',
    debianPackage: 'maven',
    env: undefined,
    why: 'fetching the Kafka broker jars from Maven Central',
  },
  {
    binary: 'setpriv',
    debianPackage: 'util-linux',
    env: undefined,
    why: 'killing test servers when their Jest worker dies',
  },
];

/** Keep in step with tests/support/opa.ts and .ci/run. */
const OPA_VERSION = 'v1.22.2';

/** The Node major the project targets (package.json "engines"); Jest and the ESM-only dependencies need it. */
const REQUIRED_NODE_MAJOR = 24;

function isExecutableFile(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Where `binary` would be found: the override variable's path, else the first PATH entry that has it. */
function locate({ binary, env }) {
  const override = env ? process.env[env] : undefined;
  if (override) return isExecutableFile(override) ? override : undefined;
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (!directory || !isAbsolute(directory)) continue;
    const candidate = join(directory, binary);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function describeMissing(requirement) {
  const { binary, debianPackage, env, why } = requirement;
  const override = env ? process.env[env] : undefined;
  const where = override ? ` (${env}=${override} is not an executable file)` : '';
  return (
    `missing ${binary}${where}: apt-get install -y ${debianPackage} ` +
    `(or run .ci/run, which installs it); needed for ${why}`
  );
}

function main() {
  const problems = [];

  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor !== REQUIRED_NODE_MAJOR) {
    problems.push(
      `wrong Node.js: the tests would run on ${process.version} (${process.execPath}), ` +
        `they need v${REQUIRED_NODE_MAJOR}: run "npm ci" so the "node" devDependency puts Node ${REQUIRED_NODE_MAJOR} ` +
        `first on PATH, and start the tests with "npm test"`,
    );
  }

  for (const requirement of REQUIRED_BINARIES) {
    if (!locate(requirement)) problems.push(describeMissing(requirement));
  }

  // OPA has no Debian package: tests/support/opa.ts builds it with Go into a cache (or takes OPA_BIN).
  const opaCache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bff-gateway', `opa-${OPA_VERSION}`, 'opa');
  const hasOpa = (process.env.OPA_BIN && isExecutableFile(process.env.OPA_BIN)) || isExecutableFile(opaCache);
  const hasGo = locate({ binary: 'go', env: 'GO_BIN' }) || isExecutableFile('/usr/local/go/bin/go');
  if (!hasOpa && !hasGo) {
    problems.push(`missing opa ${OPA_VERSION} and Go to build it: install Go 1.21+ (or run .ci/run, which builds OPA), or set OPA_BIN; needed for the policy decision point tests`);
  }

  if (problems.length === 0) return 0;
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  return 1;
}

process.exitCode = main();
