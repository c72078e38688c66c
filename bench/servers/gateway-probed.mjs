// bench/servers/gateway.mjs with probes, for seeing what limits /verify under many connections:
// the real gateway built from dist/ in main.ts's order (configuration, OpenTelemetry, the rest),
// plus, reported and reset on each 'stats' message over IPC, the probes of probes.mjs (event-loop
// delay and utilization, the session store's ioredis queue) and the TCP connections accepted
// since the start and open now. Nothing on the request path changes. BENCH_LISTEN_BACKLOG
// (unset: the gateway's own listen queue, as main.ts gets it) sets another for experiments.
import { composeBuiltGateway } from './built-gateway.mjs';
import { startProbes } from './probes.mjs';

const { config, gateway, server } = composeBuiltGateway();
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
