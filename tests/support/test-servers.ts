import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { runToCompletion } from './child-process';

interface TestServerPins {
  readonly opa: { readonly version: string; readonly module: string };
  readonly traefik: { readonly version: string; readonly module: string };
  readonly kafka: { readonly version: string };
  readonly keycloak: { readonly version: string; readonly artifact: string; readonly minimumJavaMajor: number };
  /** Jaeger v2 (the v1.x module tag of the same release), built from `package` in a writable copy of the module. */
  readonly jaeger: { readonly version: string; readonly module: string; readonly package: string };
  /** Loki, for `-verify-config` of deploy/loki/config.yaml; built at first use by tests/support/loki.ts. */
  readonly loki: { readonly version: string; readonly module: string; readonly package: string };
}

/** The pins shared with scripts/provision-test-servers.mjs, which builds and fetches these before Jest starts. */
export const TEST_SERVERS: TestServerPins = JSON.parse(readFileSync(join(__dirname, 'test-servers.json'), 'utf8'));

/** `${XDG_CACHE_HOME:-~/.cache}/bff-gateway/<name>-<version>`: outside the repository, kept between runs. */
export function testServerCacheDirectory(name: string, version: string): string {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'bff-gateway', `${name}-${version}`);
}

/** A file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `GO_BIN`, else `go` on PATH, else the official tarball's /usr/local/go/bin/go. */
export function findGo(): string | undefined {
  const candidates = [process.env.GO_BIN, ...(process.env.PATH ?? '').split(delimiter).filter(isAbsolute).map((dir) => join(dir, 'go')), '/usr/local/go/bin/go'];
  return candidates.find((candidate): candidate is string => candidate !== undefined && isExecutable(candidate));
}

/** A Go program built at first use into the test-server cache. */
export interface CachedGoBuild {
  /** The program in messages: `opa v1.22.2`. */
  readonly name: string;
  /** A variable that names a ready binary instead (`OPA_BIN`); then nothing is built. */
  readonly overrideVariable: string;
  /** The cache directory, from `testServerCacheDirectory`; it names the version, so an old build is never reused. */
  readonly directory: string;
  readonly binaryName: string;
  /** The `go` arguments that write `binaryName` into `outputDirectory`. */
  readonly goArgs: (outputDirectory: string) => readonly string[];
  readonly cwd: string;
  /** Variables added to this process's environment for the build. */
  readonly env?: (outputDirectory: string) => NodeJS.ProcessEnv;
  readonly timeoutMs: number;
}

const cachedBuilds = new Map<string, Promise<string>>();

/**
 * The path of the program: the override when set, else the cached build,
 * built once per process when it is missing. Concurrent builders (two Jest
 * workers) each build into their own directory and rename into place, so
 * nobody ever runs a half-written binary.
 */
export function ensureCachedGoBuild(build: CachedGoBuild): Promise<string> {
  const override = process.env[build.overrideVariable];
  if (override) {
    return isExecutable(override) ? Promise.resolve(override) : Promise.reject(new Error(`${build.overrideVariable}=${override} is not an executable file`));
  }
  const binary = join(build.directory, build.binaryName);
  let built = cachedBuilds.get(binary);
  if (!built) {
    built = isExecutable(binary) ? Promise.resolve(binary) : buildIntoCache(build, binary);
    cachedBuilds.set(binary, built);
  }
  return built;
}

async function buildIntoCache(build: CachedGoBuild, binary: string): Promise<string> {
  const go = findGo();
  if (!go) {
    throw new Error(`${build.name} is not built yet and no \`go\` toolchain was found (GO_BIN, PATH, /usr/local/go/bin): install Go or set ${build.overrideVariable}`);
  }
  mkdirSync(build.directory, { recursive: true });
  const staging = mkdtempSync(join(build.directory, 'build-'));
  try {
    const started = Date.now();
    const args = build.goArgs(staging);
    const result = await runToCompletion(go, args, { cwd: build.cwd, env: { ...process.env, ...build.env?.(staging) }, timeoutMs: build.timeoutMs });
    if (result.exitCode !== 0) {
      const ending = result.isTimedOut ? `did not finish within ${build.timeoutMs} ms` : `failed (exit ${result.exitCode})`;
      throw new Error(`go ${args.join(' ')} in ${build.cwd} ${ending}:\n${result.output}`);
    }
    renameSync(join(staging, build.binaryName), binary);
    process.stderr.write(`[tests/support] built ${build.name} into ${build.directory} in ${Math.round((Date.now() - started) / 1000)} s\n`);
    return binary;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
