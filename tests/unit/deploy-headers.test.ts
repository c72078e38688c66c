import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { AUTH_RESPONSE_HEADERS } from '../../src/forwardauth/identity-headers';

const root = join(__dirname, '..', '..');

/** Every proxy example must copy exactly what the gateway sends, or a spoofed spelling gets through. */
describe('the deploy examples list exactly the headers /verify answers with', () => {
  it('in deploy/traefik/dynamic.yml', () => {
    const dynamic = parse(readFileSync(join(root, 'deploy/traefik/dynamic.yml'), 'utf8')) as {
      http: { middlewares: Record<string, { forwardAuth?: { authResponseHeaders: string[] } }> };
    };
    const forwardAuth = Object.values(dynamic.http.middlewares).find((middleware) => middleware.forwardAuth)?.forwardAuth;
    expect(new Set(forwardAuth?.authResponseHeaders)).toEqual(new Set(AUTH_RESPONSE_HEADERS));
  });

  it('in docker-compose.yml', () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const listed = /authresponseheaders=([^"'\n]+)/i.exec(compose)?.[1]?.split(',').map((name) => name.trim());
    expect(new Set(listed)).toEqual(new Set(AUTH_RESPONSE_HEADERS));
  });

  it('in deploy/caddy/Caddyfile.example', () => {
    const caddyfile = readFileSync(join(root, 'deploy/caddy/Caddyfile.example'), 'utf8');
    for (const name of AUTH_RESPONSE_HEADERS) expect(caddyfile).toContain(name);
  });
});
