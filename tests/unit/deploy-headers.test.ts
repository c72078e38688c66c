import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { AUTH_RESPONSE_HEADERS, AUTH_RESPONSE_HEADERS_REGEX } from '../../src/forwardauth/identity-headers';
import { TEST_SERVERS } from '../support/test-servers';

const root = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The only template construct the shipped dynamic.yml uses, so that its header documents every variable. */
const ENV_WITH_DEFAULT = /\{\{ env "([A-Z_]+)" \| default "([^"]*)" \}\}/g;

/** deploy/traefik/dynamic.yml as Traefik renders it with none of its variables set. */
function renderedWithDefaults(template: string): string {
  return template.replace(ENV_WITH_DEFAULT, (_match, _name: string, value: string) => value);
}

interface ForwardAuth {
  readonly address: string;
  readonly tls?: { readonly ca?: string };
  readonly trustForwardHeader?: boolean;
  readonly authResponseHeaders?: string[];
  readonly authResponseHeadersRegex?: string;
}

function forwardAuthOf(document: string): ForwardAuth | undefined {
  const dynamic = parse(document) as { http: { middlewares: Record<string, { forwardAuth?: ForwardAuth }> } };
  return Object.values(dynamic.http.middlewares).find((middleware) => middleware.forwardAuth)?.forwardAuth;
}

/** Every proxy example must copy exactly what the gateway sends, and clear every spelling a client might send. */
describe('the deploy examples and the headers /verify answers with', () => {
  describe('deploy/traefik/dynamic.yml', () => {
    const template = read('deploy/traefik/dynamic.yml');

    it('uses no template construct but {{ env "NAME" | default "value" }}, each documented in its header', () => {
      expect(template.replace(ENV_WITH_DEFAULT, '')).not.toMatch(/\{\{|\}\}/);
      const header = template.slice(0, template.indexOf('\nhttp:'));
      const body = template.slice(header.length);
      expect([...body.matchAll(ENV_WITH_DEFAULT)].length).toBeGreaterThan(0);
      for (const [, name, value] of body.matchAll(ENV_WITH_DEFAULT)) expect(header).toMatch(new RegExp(`#\\s+${name}\\s+${value!.replace(/[.]/g, '\\.')}\\s`));
    });

    it('is valid YAML before and after rendering', () => {
      expect(() => parse(template)).not.toThrow();
      expect(() => parse(renderedWithDefaults(template))).not.toThrow();
    });

    it('replaces the headers by AUTH_RESPONSE_HEADERS_REGEX, not by a list of names', () => {
      const forwardAuth = forwardAuthOf(renderedWithDefaults(template));
      expect(forwardAuth?.authResponseHeadersRegex).toBe(AUTH_RESPONSE_HEADERS_REGEX);
      expect(forwardAuth?.authResponseHeaders).toBeUndefined();
      expect(forwardAuth?.trustForwardHeader).toBe(true);
    });

    it('calls /verify over https, trusting the CA of BFF_CA_FILE', () => {
      const forwardAuth = forwardAuthOf(renderedWithDefaults(template));
      expect(forwardAuth?.address).toBe('https://bff:8080/verify');
      expect(forwardAuth?.tls?.ca).toBe('/etc/traefik/bff-ca.pem');
    });
  });

  describe('docker-compose.yml', () => {
    const compose = read('docker-compose.yml');

    it('runs the Traefik version the suite proves', () => {
      expect(compose).toContain(`image: traefik:${TEST_SERVERS.traefik.version}\n`);
    });

    it('gives the ForwardAuth middleware AUTH_RESPONSE_HEADERS_REGEX ("$" escaped as "$$") and no list of names', () => {
      const regex = /forwardauth\.authResponseHeadersRegex=([^"\n]+)/.exec(compose)?.[1];
      expect(regex?.replaceAll('$$', '$')).toBe(AUTH_RESPONSE_HEADERS_REGEX);
      expect(compose).not.toMatch(/^\s*- "?traefik\.http\.middlewares\.[^.]+\.forwardauth\.authResponseHeaders=/m);
    });
  });

  describe('deploy/caddy/Caddyfile.example', () => {
    const caddyfile = read('deploy/caddy/Caddyfile.example');

    it('copies exactly the headers the gateway answers with', () => {
      const block = /copy_headers \{\n([^}]*)\}/.exec(caddyfile)?.[1] ?? '';
      expect(new Set(block.split('\n').map((line) => line.trim()).filter(Boolean))).toEqual(new Set(AUTH_RESPONSE_HEADERS));
    });

    it('removes every X?Auth?Request? spelling a client sent before forward_auth, for each separator', () => {
      const beforeForwardAuth = caddyfile.slice(0, caddyfile.indexOf('forward_auth {'));
      for (const separator of ['-', '_', '.']) expect(beforeForwardAuth).toContain(`request_header -*auth${separator}request*`);
    });

    it('removes Authorization and Cookie after forward_auth when the gateway answered them empty', () => {
      const afterForwardAuth = caddyfile.slice(caddyfile.indexOf('forward_auth {'));
      expect(afterForwardAuth).toMatch(/@(\S+) vars \{http\.reverse_proxy\.header\.Authorization\} ""\n\s*request_header @\1 -Authorization\n/);
      expect(afterForwardAuth).toMatch(/@(\S+) vars \{http\.reverse_proxy\.header\.Cookie\} ""\n\s*request_header @\1 -Cookie\n/);
    });
  });
});
