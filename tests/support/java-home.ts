import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isExecutable } from './test-servers';

/**
 * Finding a JDK newer than the system's default `java`: Debian here ships
 * Java 17, and Keycloak 26 needs 21 or later, installed beside it in the
 * system's JVM directory (SPEC section 9). Kept in step with
 * `findKeycloakJava` in scripts/provision-test-servers.mjs, which checks for
 * the same JDK before Jest starts.
 */

/** Debian's (and every JDK package's) home for JVMs. */
export const SYSTEM_JVM_DIRECTORY = '/usr/lib/jvm';

/** The major version in a JDK home's `release` file (`JAVA_VERSION="25.0.3"` gives 25), or undefined. */
export function javaMajorOf(javaHome: string): number | undefined {
  try {
    const match = /^JAVA_VERSION="(\d+)/mu.exec(readFileSync(join(javaHome, 'release'), 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface FindJavaHomeOptions {
  readonly minimumMajor: number;
  /** A JDK home chosen by the operator (e.g. KEYCLOAK_JAVA_HOME): the only candidate when set. */
  readonly override?: string | undefined;
  readonly jvmDirectory?: string;
}

/**
 * The newest JDK home of at least `minimumMajor` with an executable
 * `bin/java`: `override` when set (and good enough), else the newest in
 * `jvmDirectory`. Undefined when there is none.
 */
export function findJavaHome(options: FindJavaHomeOptions): string | undefined {
  const directory = options.jvmDirectory ?? SYSTEM_JVM_DIRECTORY;
  const candidates = options.override ? [options.override] : listDirectory(directory).map((name) => join(directory, name));
  return candidates
    .map((home) => ({ home, major: javaMajorOf(home) }))
    .filter((candidate): candidate is { home: string; major: number } => candidate.major !== undefined && candidate.major >= options.minimumMajor)
    .filter(({ home }) => isExecutable(join(home, 'bin', 'java')))
    .sort((a, b) => b.major - a.major)[0]?.home;
}

function listDirectory(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}
