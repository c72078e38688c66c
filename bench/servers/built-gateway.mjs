// The real gateway built from dist/, composed in main.ts's order: configuration, then OpenTelemetry
// (on by default, as in production), then everything else. Not listening yet: each bench server
// listens its own way. With TLS_CERT_FILE/TLS_KEY_FILE the server speaks TLS (h2 and http/1.1).
import pino from 'pino';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function composeBuiltGateway() {
  const { loadConfig } = require('../../dist/config/load-config.js');
  const config = loadConfig(process.env);
  require('../../dist/telemetry/tracing.js').startTelemetry(config.telemetry, config.server.environment);
  const { composeGateway } = require('../../dist/composition-root.js');
  const { buildRequestListener } = require('../../dist/app.js');
  const { createGatewayServer } = require('../../dist/http/server.js');
  const gateway = composeGateway(config, pino({ level: 'silent' }));
  return { config, gateway, server: createGatewayServer(buildRequestListener(gateway.dependencies), config.server.tls) };
}
