// The floor: node:http, the cookie's HMAC checked, the session read from Redis the way the
// gateway reads it (GET of the sealed record, opened by the gateway's own SessionSealer from
// dist/, with its cache of opened records), and an answer with the set of headers a ForwardAuth
// 200 must carry, the access token in Authorization. Everything the gateway adds on top (route
// matching, CSRF, binding, refresh window, metrics, tracing, events) is what the ratio measures.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { unsign } from 'cookie-signature';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);
const { SessionSealer } = require('../../dist/session/session-sealer.js');
const { SESSION_KEY_PREFIX } = require('../../dist/session/redis-session-store.js');

const { PORT, REDIS_URL, SESSION_SECRET, COOKIE_NAME } = process.env;
const redis = new Redis(REDIS_URL);
const sealer = new SessionSealer([SESSION_SECRET]);
const prefix = `${COOKIE_NAME}=`;

createServer(async (req, res) => {
  const cookie = req.headers.cookie ?? '';
  const start = cookie.indexOf(prefix);
  const raw = start === -1 ? '' : decodeURIComponent(cookie.slice(start + prefix.length).split(';')[0]);
  const id = raw.startsWith('s:') ? unsign(raw.slice(2), SESSION_SECRET) : false;
  if (!id) return res.writeHead(401).end();
  const sealed = await redis.getBuffer(SESSION_KEY_PREFIX + id);
  const record = sealed && sealer.open(id, sealed);
  if (!record) return res.writeHead(401).end();
  const { user, tokens } = record.auth;
  res
    .writeHead(200, [
      'Authorization', `Bearer ${tokens.accessToken}`,
      'X-Auth-Request-User', user.sub,
      'X-Auth-Request-Email', user.email,
      'X-Auth-Request-Preferred-Username', user.preferredUsername,
      'Cookie', '',
      'X-Request-ID', req.headers['x-request-id'] ?? 'none',
      'Cache-Control', 'no-store',
    ])
    .end();
}).listen(Number(PORT), '127.0.0.1', () => process.send?.('ready'));
