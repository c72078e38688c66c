import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { config: { nodeFlags: string }; scripts: Record<string, string> };

/** The runtime flags the benchmark measured are the ones every way of running the gateway uses (docs/benchmark.md). */
describe('the Node flags the gateway runs with', () => {
  const flags = packageJson.config.nodeFlags.split(' ');

  it('start the young generation at 16 MB', () => {
    expect(flags).toEqual(['--min-semi-space-size=16', '--max-semi-space-size=32']);
  });

  it('are the ones npm start passes', () => {
    expect(packageJson.scripts.start).toContain('node $npm_package_config_nodeFlags dist/main.js');
  });

  it("are the ones the Dockerfile's CMD passes", () => {
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
    expect(JSON.parse(cmd ?? '[]')).toEqual(['node', ...flags, 'dist/main.js']);
  });
});
