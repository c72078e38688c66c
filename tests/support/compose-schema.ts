import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ensureCachedGoBuild, testServerCacheDirectory } from './test-servers';

/**
 * The Compose Specification check. tests/support/compose-schema/ is a small
 * Go program over compose-go (github.com/compose-spec/compose-go, Apache-2.0),
 * the library Docker Compose itself is built on: it validates a compose file
 * against the Compose Specification JSON schema that compose-go embeds
 * (schema/compose-spec.json), interpolates `${VARIABLES}` from env files,
 * applies profiles, normalises, checks consistency and prints the project as
 * JSON, without a Docker engine. Its go.mod pins compose-go (v2.16.2: v2.17
 * asks for a newer Go than the machines have).
 *
 * compose-go's own `compose-spec` command validates too, but does not
 * interpolate from env files or apply profiles, which the profile tests need.
 */
const SOURCE_DIRECTORY = join(__dirname, 'compose-schema');
const REPO_ROOT = resolve(__dirname, '..', '..');
export const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');

// A cold build fetches about fifteen small modules: well under a minute; the rest is CI margin.
const BUILD_TIMEOUT_MS = 10 * 60_000;
const RUN_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const run = promisify(execFile);

/** The project as compose-go prints it (only what the tests read). */
export interface ComposeProject {
  readonly name: string;
  /** The services that run with the selected profiles (those without `profiles:` always do). */
  readonly services: Record<string, ComposeService>;
  readonly networks?: Record<string, { readonly name?: string; readonly internal?: boolean }>;
  readonly volumes?: Record<string, unknown>;
}

export interface ComposeService {
  readonly image?: string;
  readonly build?: unknown;
  readonly profiles?: readonly string[];
  readonly command?: readonly string[] | null;
  readonly environment?: Record<string, string | null>;
  readonly networks?: Record<string, { readonly aliases?: readonly string[] } | null>;
  readonly ports?: ReadonlyArray<{ readonly target: number; readonly published?: string; readonly host_ip?: string }>;
  readonly volumes?: ReadonlyArray<{ readonly type: string; readonly source?: string; readonly target: string; readonly read_only?: boolean }>;
}

export interface LoadComposeOptions {
  /** Env files to interpolate from, as `docker compose --env-file`; later ones win. */
  readonly envFiles?: readonly string[];
  /** Profiles to enable, as `docker compose --profile`. */
  readonly profiles?: readonly string[];
  readonly composeFile?: string;
}

/**
 * Loads `docker-compose.yml` as `docker compose --env-file … --profile … config`
 * would. Rejects with compose-go's message when the file does not validate.
 */
export async function loadComposeProject(options: LoadComposeOptions = {}): Promise<ComposeProject> {
  const binary = await ensureComposeCheckBinary();
  const args = [
    ...(options.envFiles ?? []).flatMap((file) => ['--env-file', file]),
    ...(options.profiles ?? []).flatMap((profile) => ['--profile', profile]),
    options.composeFile ?? COMPOSE_FILE,
  ];
  try {
    // PATH only: nothing of a developer's environment takes part in the interpolation.
    const { stdout } = await run(binary, args, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '' }, timeout: RUN_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES });
    return JSON.parse(stdout) as ComposeProject;
  } catch (error) {
    const failure = error as Error & { stderr?: string };
    throw new Error(`compose-go rejected ${args.join(' ')}:\n${failure.stderr || failure.message}`);
  }
}

/** `COMPOSE_CHECK_BIN`, else the cached build of tests/support/compose-schema, built once per source version. */
export function ensureComposeCheckBinary(): Promise<string> {
  // The cache directory carries a digest of the sources: a changed pin or program is never served from an old build.
  const digest = createHash('sha256');
  for (const name of ['go.mod', 'go.sum', 'main.go']) digest.update(readFileSync(join(SOURCE_DIRECTORY, name)));
  return ensureCachedGoBuild({
    name: 'compose-check (tests/support/compose-schema)',
    overrideVariable: 'COMPOSE_CHECK_BIN',
    directory: testServerCacheDirectory('compose-check', digest.digest('hex').slice(0, 12)),
    binaryName: 'compose-check',
    goArgs: (outputDirectory) => ['build', '-trimpath', '-o', join(outputDirectory, 'compose-check'), '.'],
    cwd: SOURCE_DIRECTORY,
    env: () => ({ GOFLAGS: '-mod=mod', CGO_ENABLED: '0', GOWORK: 'off' }),
    timeoutMs: BUILD_TIMEOUT_MS,
  });
}

/** KEY=VALUE lines of a compose env file; `#` comments and blank lines are skipped. */
export function readEnvFile(file: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const separator = trimmed.indexOf('=');
    if (separator <= 0) throw new Error(`${file}: not a KEY=VALUE line: ${line}`);
    variables[trimmed.slice(0, separator)] = trimmed.slice(separator + 1);
  }
  return variables;
}
