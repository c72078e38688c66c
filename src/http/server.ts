import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { TlsConfig } from '../config/config';

/** Proxies keep connections alive longer than Node's default 5 s; closing first causes resets. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const HEADERS_TIMEOUT_MS = 66_000;

export interface GatewayServer {
  readonly server: Server | Http2SecureServer;
  readonly isTls: boolean;
  listen(port: number, host?: string): Promise<void>;
  /**
   * Graceful stop: no new connections; every request already accepted is
   * answered, and each answer tells its client to go (`Connection: close` on
   * HTTP/1.1, GOAWAY on HTTP/2) so busy keep-alive connections end by
   * themselves instead of being reset when the grace period runs out.
   * Resolves when the last connection is gone, or after `graceMs` with the
   * stragglers cut.
   */
  drain(graceMs: number): Promise<{ readonly isClean: boolean }>;
}

/**
 * The listening socket: plain HTTP/1.1, or with TLS_CERT_FILE/TLS_KEY_FILE TLS
 * offering h2 and http/1.1 by ALPN. Traefik's ForwardAuth client keeps two idle
 * connections per host over HTTP/1.1 and opens a new one for most calls under
 * load; over TLS it negotiates HTTP/2 and multiplexes every /verify on one.
 */
export function createGatewayServer(listener: RequestListener, tls: TlsConfig | undefined): GatewayServer {
  let isDraining = false;
  const handle: RequestListener = (req, res) => {
    if (isDraining && req.httpVersionMajor === 1) res.shouldKeepAlive = false;
    listener(req, res);
  };
  return tls ? secureServer(handle, tls, () => (isDraining = true)) : plainServer(handle, () => (isDraining = true));
}

function plainServer(listener: RequestListener, startDraining: () => void): GatewayServer {
  const server = createServer(listener);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  return {
    server,
    isTls: false,
    listen: (port, host) => listen(server, port, host),
    drain: (graceMs) =>
      closeWithin(server, graceMs, () => {
        startDraining();
        server.closeIdleConnections();
      }, () => server.closeAllConnections()),
  };
}

function secureServer(listener: RequestListener, tls: TlsConfig, startDraining: () => void): GatewayServer {
  const server = createSecureServer(
    { cert: tls.cert, key: tls.key, allowHTTP1: true, settings: { maxConcurrentStreams: 1000 } },
    // The compatibility objects of node:http2 offer the same surface the gateway uses of node:http's.
    listener as unknown as (req: unknown, res: unknown) => void,
  );
  server.setTimeout(KEEP_ALIVE_TIMEOUT_MS);
  const sessions = new Set<ServerHttp2Session>();
  const http1Sockets = new Set<TLSSocket>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') return;
    http1Sockets.add(socket);
    socket.once('close', () => http1Sockets.delete(socket));
  });
  // An idle HTTP/1.1 keep-alive socket has no request in flight to carry `Connection: close`.
  const idleHttp1 = new WeakSet<TLSSocket>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor !== 1) return;
    const socket = req.socket as TLSSocket;
    idleHttp1.delete(socket);
    res.once('finish', () => idleHttp1.add(socket));
  });
  return {
    server,
    isTls: true,
    listen: (port, host) => listen(server, port, host),
    drain: (graceMs) =>
      closeWithin(
        server,
        graceMs,
        () => {
          startDraining();
          // GOAWAY: the client sends nothing new on this session; streams already open complete.
          for (const session of sessions) session.close();
          for (const socket of http1Sockets) if (idleHttp1.has(socket)) socket.destroy();
        },
        () => {
          for (const session of sessions) session.destroy();
          for (const socket of http1Sockets) socket.destroy();
        },
      ),
  };
}

function listen(server: Server | Http2SecureServer, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeWithin(
  server: Server | Http2SecureServer,
  graceMs: number,
  beginDrain: () => void,
  cutRemaining: () => void,
): Promise<{ readonly isClean: boolean }> {
  return new Promise((resolve) => {
    let isClean = true;
    const deadline = setTimeout(() => {
      isClean = false;
      cutRemaining();
    }, graceMs);
    deadline.unref();
    server.close(() => {
      clearTimeout(deadline);
      resolve({ isClean });
    });
    beginDrain();
  });
}
