// The floor: node:http, the cookie's HMAC checked, the session GET from Redis,
// and an answer with the same set of headers a ForwardAuth 200 must carry
// (the token header filled with the stored ciphertext: same size, no decryption).
import { createServer } from 'node:http';
import { unsign } from 'cookie-signature';
import { Redis } from 'ioredis';

const { PORT, REDIS_URL, SESSION_SECRET, COOKIE_NAME } = process.env;
const redis = new Redis(REDIS_URL);
const prefix = `${COOKIE_NAME}=`;

createServer(async (req, res) => {
  const cookie = req.headers.cookie ?? '';
  const start = cookie.indexOf(prefix);
  const raw = start === -1 ? '' : decodeURIComponent(cookie.slice(start + prefix.length).split(';')[0]);
  const id = raw.startsWith('s:') ? unsign(raw.slice(2), SESSION_SECRET) : false;
  if (!id) return res.writeHead(401).end();
  const json = await redis.get(`bff:sess:${id}`);
  if (!json) return res.writeHead(401).end();
  const { user, tokens } = JSON.parse(json).auth;
  res
    .writeHead(200, [
      'Authorization', `Bearer ${tokens}`,
      'X-Auth-Request-User', user.sub,
      'X-Auth-Request-Email', user.email,
      'X-Auth-Request-Preferred-Username', user.preferredUsername,
      'Cookie', '',
      'X-Request-ID', req.headers['x-request-id'] ?? 'none',
      'Cache-Control', 'no-store',
    ])
    .end();
}).listen(Number(PORT), '127.0.0.1', () => process.send?.('ready'));
