// The textbook route: Express 5 with the express-session middleware reading req.session, from
// connect-redis's JSON (seeded under its own prefix by support.mjs seedSession).
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { Redis } from 'ioredis';

const { PORT, REDIS_URL, SESSION_SECRET, COOKIE_NAME } = process.env;
const app = express();
app.use(
  session({
    name: COOKIE_NAME,
    secret: SESSION_SECRET,
    store: new RedisStore({ client: new Redis(REDIS_URL), prefix: 'textbook:sess:' }),
    resave: false,
    saveUninitialized: false,
  }),
);
app.get('/verify', (req, res) => {
  if (!req.session.auth) return res.status(401).end();
  res.set('X-Auth-Request-User', req.session.auth.user.sub).status(200).end();
});
app.listen(Number(PORT), '127.0.0.1', () => process.send?.('ready'));
