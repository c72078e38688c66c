import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The version in package.json, found from both src/ (tests) and dist/ (built). */
export function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return manifest.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
