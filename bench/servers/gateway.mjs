// The real gateway, built from dist/ and started in main.ts's order: configuration,
// then OpenTelemetry (on by default, as in production), then everything else.
// With TLS_CERT_FILE/TLS_KEY_FILE it listens with TLS (h2 and http/1.1), as main.ts does.
// Asked 'stats' over IPC, it answers how many TCP connections it has accepted.
import pino from 'pino';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { loadConfig } = require('../../dist/config/load-config.js');
const config = loadConfig(process.env);
require('../../dist/telemetry/tracing.js').startTelemetry(config.telemetry, config.server.environment);
const { composeGateway } = require('../../dist/composition-root.js');
const { buildRequestListener } = require('../../dist/app.js');
const { createGatewayServer } = require('../../dist/http/server.js');

const gateway = composeGateway(config, pino({ level: 'silent' }));
const server = createGatewayServer(buildRequestListener(gateway.dependencies), config.server.tls);
let connectionsAccepted = 0;
server.server.on('connection', () => (connectionsAccepted += 1));
await server.listen(config.server.port, '127.0.0.1');
process.send?.('ready');
process.on('message', (message) => {
  if (message === 'exit') process.exit(0);
  if (message === 'stats') process.send?.({ connectionsAccepted });
});
