import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import { Server as NetServer, type Socket } from 'node:net';
import type { TlsConfig } from '../config/config';

/** Proxies keep connections alive longer than Node's default 5 s; closing first causes resets. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const HEADERS_TIMEOUT_MS = 66_000;
const LISTEN_BACKLOG = 4096;
/**
 * While draining, an HTTP/1.1 connection idle this long is closed. A client
 * may be sending its next request at the very moment an idle connection is
 * closed (the request is then lost with a reset), and one that keeps sending
 * is told to close by its next answer anyway: only a connection that went
 * quiet is closed, and never one between two requests of a busy client.
 */
const DRAIN_IDLE_MS = 1_000;
const DRAIN_SWEEP_MS = 100;

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
  const http1 = new Http1Connections();
  const handle: RequestListener = (req, res) => {
    if (req.httpVersionMajor === 1) http1.requestStarted(req, res);
    listener(req, res);
  };
  if (!tls) {
    const server = createServer(handle);
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.on('connection', (socket: Socket) => http1.add(socket));
    return {
      server,
      isTls: false,
      listen: (port, host) => listen(server, port, host),
      drain: (graceMs) => drainWithin(server, graceMs, http1, new Set()),
    };
  }
  const server = createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      allowHTTP1: true,
      settings: { maxConcurrentStreams: 1000 },
      // As many header fields as node:http takes (maxHeadersCount): HTTP/2's default of 128 would turn a
      // request with many headers into a proxy error instead of the gateway's answer.
      maxHeaderListPairs: 2000,
    },
    // The compatibility objects of node:http2 offer the same surface the gateway uses of node:http's.
    handle as unknown as (req: unknown, res: unknown) => void,
  );
  server.setTimeout(KEEP_ALIVE_TIMEOUT_MS);
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('secureConnection', (socket: Socket & { alpnProtocol?: string | false }) => {
    if (socket.alpnProtocol !== 'h2') http1.add(socket);
  });
  return {
    server,
    isTls: true,
    listen: (port, host) => listen(server, port, host),
    drain: (graceMs) => drainWithin(server, graceMs, http1, sessions),
  };
}

/** HTTP/1.1 connections with the requests in flight on each and when each last went quiet. */
class Http1Connections {
  private isDraining = false;
  private readonly inFlight = new Map<Socket, number>();
  private readonly quietSince = new Map<Socket, number>();

  add(socket: Socket): void {
    this.quietSince.set(socket, performance.now());
    socket.once('close', () => {
      this.inFlight.delete(socket);
      this.quietSince.delete(socket);
    });
  }

  requestStarted(req: IncomingMessage, res: ServerResponse): void {
    const { socket } = req;
    // Node then answers with `Connection: close` and closes the connection after this answer.
    if (this.isDraining) res.shouldKeepAlive = false;
    this.inFlight.set(socket, (this.inFlight.get(socket) ?? 0) + 1);
    this.quietSince.delete(socket);
    res.once('close', () => {
      const left = (this.inFlight.get(socket) ?? 1) - 1;
      this.inFlight.set(socket, left);
      if (left === 0 && !socket.destroyed) this.quietSince.set(socket, performance.now());
    });
  }

  startDraining(): void {
    this.isDraining = true;
  }

  closeQuietOnes(quietMs: number): void {
    const now = performance.now();
    for (const [socket, since] of this.quietSince) if (now - since >= quietMs) socket.destroy();
  }

  closeAll(): void {
    for (const socket of this.quietSince.keys()) socket.destroy();
    for (const socket of this.inFlight.keys()) socket.destroy();
  }
}

function listen(server: Server | Http2SecureServer, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue: under a burst of new connections the kernel holds them instead of dropping
    // handshakes, which clients retry only after 1, 2, 4 s (Node's default is 511).
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function drainWithin(
  server: Server | Http2SecureServer,
  graceMs: number,
  http1: Http1Connections,
  sessions: ReadonlySet<ServerHttp2Session>,
): Promise<{ readonly isClean: boolean }> {
  return new Promise((resolve) => {
    http1.startDraining();
    let isClean = true;
    const sweep = setInterval(() => http1.closeQuietOnes(DRAIN_IDLE_MS), DRAIN_SWEEP_MS);
    const deadline = setTimeout(() => {
      isClean = false;
      http1.closeAll();
      for (const session of sessions) session.destroy();
    }, graceMs);
    // net.Server's close, not http.Server's: the latter also closes every connection that is idle at
    // this instant, which resets the next request of a client that is between two requests.
    NetServer.prototype.close.call(server, () => {
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve({ isClean });
    });
    // GOAWAY: the client opens nothing new on the session; streams already open complete.
    for (const session of sessions) session.close();
    if (graceMs === 0) {
      http1.closeAll();
      for (const session of sessions) session.destroy();
    }
  });
}
