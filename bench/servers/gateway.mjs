// The real gateway, built from dist/ and started in main.ts's order: configuration,
// then OpenTelemetry (on by default, as in production), then everything else.
import pino from 'pino';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { loadConfig } = require('../../dist/config/load-config.js');
const config = loadConfig(process.env);
require('../../dist/telemetry/tracing.js').startTelemetry(config.telemetry, config.server.environment);
const { composeGateway } = require('../../dist/composition-root.js');
const { buildRequestListener } = require('../../dist/app.js');
const { createServer } = require('node:http');

const gateway = composeGateway(config, pino({ level: 'silent' }));
createServer(buildRequestListener(gateway.dependencies)).listen(config.server.port, '127.0.0.1', () => process.send?.('ready'));
process.on('message', (message) => message === 'exit' && process.exit(0));
