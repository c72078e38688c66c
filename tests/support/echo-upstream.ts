import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the upstream saw of one request. */
export interface EchoedRequest {
  readonly method: string;
  /** Path and query as received. */
  readonly path: string;
  /** Node's view: lower-case names, repeated headers folded together. */
  readonly headers: Record<string, string | string[] | undefined>;
  /** Every header line as it arrived, in order, names spelled as sent: shows a duplicate a folded view would hide. */
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/** A stand-in API behind the proxy: it answers every request with the JSON of what it received. */
export interface EchoUpstream {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, as a proxy's upstream address. */
  readonly address: string;
  /** Every request received so far, oldest first. */
  readonly requests: readonly EchoedRequest[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

/** Starts the echo upstream on a free 127.0.0.1 port. */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const requests: EchoedRequest[] = [];
  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const echoed = echo(req, body);
      requests.push(echoed);
      const payload = JSON.stringify(echoed);
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(payload);
    });
  });
  // No keep-alive: close() must not wait for the proxy's idle connections.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function echo(req: IncomingMessage, body: string): EchoedRequest {
  const rawHeaders: Array<readonly [string, string]> = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i] ?? '', req.rawHeaders[i + 1] ?? '']);
  return { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, rawHeaders, body };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Every value a request carried under header `name`, compared case-insensitively, as the raw lines arrived. */
export function headerValues(request: Pick<EchoedRequest, 'rawHeaders'>, name: string): string[] {
  const wanted = name.toLowerCase();
  return request.rawHeaders.filter(([headerName]) => headerName.toLowerCase() === wanted).map(([, value]) => value);
}
