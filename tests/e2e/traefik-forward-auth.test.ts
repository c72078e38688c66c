import { readFileSync } from 'node:fs';
import { describeForwardAuthProxy, rawRequest, API_CALL, loggedInBrowser } from '../support/forward-auth-proxy-suite';
import { metricValue } from '../support/gateway';
import { startTraefikStack, type GatewayTransport, type TraefikStack } from '../support/traefik';

/**
 * Traefik v3.6.12 (SPEC section 9) with its ForwardAuth middleware, running the
 * repository's own deploy/traefik/dynamic.yml, in front of the gateway: over
 * TLS with HTTP/2 as the shipped file configures it, and over plain HTTP/1.1.
 */

/** Loopback TCP connections that involve `port`, by the other end's port (ESTABLISHED and TIME_WAIT alike), from /proc/net/tcp. */
function connectionsTo(port: number): Set<number> {
  const peers = new Set<number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote] = line.trim().split(/\s+/);
    if (!local || !remote) continue;
    const localPort = parseInt(local.split(':')[1] ?? '', 16);
    const remotePort = parseInt(remote.split(':')[1] ?? '', 16);
    if (localPort === port) peers.add(remotePort);
    else if (remotePort === port) peers.add(localPort);
  }
  return peers;
}

const TRANSPORTS: Array<[string, GatewayTransport]> = [
  ['over TLS with HTTP/2, as deploy/traefik/dynamic.yml ships it', 'tls'],
  ['over plain HTTP/1.1', 'plain'],
];

describe.each(TRANSPORTS)('Traefik ForwardAuth to the gateway %s', (_title, gatewayTransport) => {
  describeForwardAuthProxy(
    'through Traefik',
    (env) => startTraefikStack({ gatewayTransport, env }),
    (current) => {
      it(`calls /verify ${gatewayTransport === 'tls' ? 'multiplexed on the connection it has' : 'on new connections once more than two are in flight'}`, async () => {
        const stack = current() as TraefikStack;
        expect(stack.environment.gateway.url.startsWith(gatewayTransport === 'tls' ? 'https://' : 'http://')).toBe(true);
        const browser = await loggedInBrowser(stack, 'erin');
        const cookie = `${stack.environment.gateway.config.session.cookieName}=${browser.cookie(stack.environment.gateway.config.session.cookieName, stack.origin)}`;
        const call = () => rawRequest(`${stack.origin}/api/orders`, ['User-Agent', browser.userAgent, ...Object.entries(API_CALL).flat(), 'Cookie', cookie]);
        await call();
        const before = connectionsTo(stack.environment.gateway.port);
        const answers = await Promise.all(Array.from({ length: 50 }, call));
        expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
        // Two idle connections per host over HTTP/1.1 (Go's default transport, which Traefik's ForwardAuth uses as it is).
        const opened = [...connectionsTo(stack.environment.gateway.port)].filter((peer) => !before.has(peer));
        if (gatewayTransport === 'tls') expect(opened).toEqual([]);
        else expect(opened.length).toBeGreaterThan(2);
      });

      it('answers a client past the shipped rate limit with 429 from Traefik, before /verify is asked', async () => {
        const stack = current() as TraefikStack;
        const verifyCalls = async () => metricValue(await stack.environment.gateway.metricsText(), 'http_requests_total', { endpoint: '/verify' });
        const before = await verifyCalls();
        // rateLimit: average 100/s, burst 50, per client address. One address, 20 requests at a time, until Traefik says no.
        const statuses: number[] = [];
        while (!statuses.includes(429) && statuses.length < 1000) {
          const answers = await Promise.all(
            Array.from({ length: 20 }, () => rawRequest(`${stack.origin}/api/public/items`, Object.entries(API_CALL).flat(), { localAddress: '127.0.0.99' })),
          );
          statuses.push(...answers.map((answer) => answer.status));
        }
        expect(statuses).toContain(429);
        expect(statuses.filter((status) => status !== 429 && status !== 200)).toEqual([]);
        expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(50);
        expect((await verifyCalls()) - before).toBe(statuses.filter((status) => status === 200).length);
      });
    },
  );
});
