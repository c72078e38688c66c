// bench/servers/gateway.mjs with probes, for seeing what limits /verify under many connections:
// the real gateway built from dist/ in main.ts's order (configuration, OpenTelemetry, the rest),
// plus, reported and reset on each 'stats' message over IPC, the probes of probes.mjs (event-loop
// delay and utilization, the session store's ioredis queue) and the TCP connections accepted
// since the start and open now. Nothing on the request path changes. BENCH_LISTEN_BACKLOG
// (unset: Node's default of 511, what main.ts gets) sets the listen queue for experiments.
import pino from 'pino';
import { createRequire } from 'node:module';
import { startProbes } from './probes.mjs';

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
let connectionsOpen = 0;
server.server.on('connection', (socket) => {
  connectionsAccepted += 1;
  connectionsOpen += 1;
  socket.once('close', () => (connectionsOpen -= 1));
});
const backlog = Number(process.env.BENCH_LISTEN_BACKLOG ?? 0);
if (backlog > 0) {
  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.server.listen({ port: config.server.port, host: '127.0.0.1', backlog }, resolve);
  });
} else {
  await server.listen(config.server.port, '127.0.0.1');
}

/** The session store's ioredis client, private to it (and perhaps behind a cache): found by its commandQueue. */
function redisClientOf(store, depth = 0) {
  if (!store || typeof store !== 'object' || depth > 3) return undefined;
  if (Array.isArray(store.commandQueue) || typeof store.commandQueue?.length === 'number') return store;
  for (const value of Object.values(store)) {
    const found = redisClientOf(value, depth + 1);
    if (found) return found;
  }
  return undefined;
}
const probes = startProbes({ redis: redisClientOf(gateway.dependencies.sessions) });
const stats = () => ({ connectionsAccepted, connectionsOpen, ...probes.read() });

process.send?.('ready');
process.on('message', (message) => {
  if (message === 'exit') process.exit(0);
  if (message === 'stats') process.send?.(stats());
});
