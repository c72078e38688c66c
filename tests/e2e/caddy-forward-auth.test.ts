import { startCaddyStack } from '../support/caddy';
import { describeForwardAuthProxy } from '../support/forward-auth-proxy-suite';

/** Debian's Caddy with forward_auth, running the repository's own deploy/caddy/Caddyfile.example, in front of the gateway. */
describeForwardAuthProxy('Caddy forward_auth in front of the gateway, as deploy/caddy/Caddyfile.example ships it', (env) => startCaddyStack({ env }));
