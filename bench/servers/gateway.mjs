// The real gateway (bench/servers/built-gateway.mjs), listening on PORT.
// Asked 'stats' over IPC, it answers how many TCP connections it has accepted.
import { composeBuiltGateway } from './built-gateway.mjs';

const { config, server } = composeBuiltGateway();
let connectionsAccepted = 0;
server.server.on('connection', () => (connectionsAccepted += 1));
await server.listen(config.server.port, '127.0.0.1');
process.send?.('ready');
process.on('message', (message) => {
  if (message === 'exit') process.exit(0);
  if (message === 'stats') process.send?.({ connectionsAccepted });
});
