// The API behind Traefik: answers 200 with a short body.
import { createServer } from 'node:http';

const server = createServer((req, res) => res.writeHead(200, ['Content-Type', 'text/plain']).end('ok'));
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
process.on('message', (message) => message === 'exit' && process.exit(0));
