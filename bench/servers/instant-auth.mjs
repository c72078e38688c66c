// An auth server that answers 200 at once, with the header set of a ForwardAuth
// 200, over TLS with h2 and http/1.1: the ceiling of what any ForwardAuth
// server can reach behind Traefik on this machine. No cookie check, no Redis.
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';

const { PORT, TLS_CERT_FILE, TLS_KEY_FILE } = process.env;
const headers = [
  'Authorization', `Bearer ${'instant-access-token-'.padEnd(800, 'x')}`,
  'X-Auth-Request-User', 'bench-user',
  'X-Auth-Request-Email', 'bench@example.test',
  'X-Auth-Request-Preferred-Username', 'bench',
  'Cookie', '',
  'Cache-Control', 'no-store',
];
let connectionsAccepted = 0;
const server = createSecureServer({ cert: readFileSync(TLS_CERT_FILE), key: readFileSync(TLS_KEY_FILE), allowHTTP1: true, settings: { maxConcurrentStreams: 1000 } }, (req, res) => {
  res.writeHead(200, headers).end();
});
server.on('connection', () => (connectionsAccepted += 1));
server.listen(Number(PORT), '127.0.0.1', () => process.send?.('ready'));
process.on('message', (message) => {
  if (message === 'exit') process.exit(0);
  if (message === 'stats') process.send?.({ connectionsAccepted });
});
