// The least of tests/support/browser.ts a benchmark needs to log in through a real
// authorization-code flow: a cookie jar (tough-cookie), navigations that follow
// redirects like a browser, and answers to oidc-provider's devInteractions login
// and consent pages. Loopback only, plain HTTP only.
import { Agent, request as httpRequest } from 'node:http';
import { CookieJar } from 'tough-cookie';

const NAVIGATION_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECT_HOPS = 20;
// login, consent, and one spare for an IdP that asks again.
const MAX_INTERACTIONS = 4;
const REQUEST_TIMEOUT_MS = 15_000;
const agent = new Agent({ keepAlive: false });

const isLoopback = (hostname) => hostname === 'localhost' || /^127(\.\d{1,3}){3}$/.test(hostname);

export class Browser {
  constructor(userAgent) {
    this.userAgent = userAgent;
    this.jar = new CookieJar();
  }

  /** One request: cookies sent and stored, redirects not followed. */
  async request(url, { method = 'GET', headers = {}, body } = {}) {
    const target = new URL(url);
    if (target.protocol !== 'http:' || !isLoopback(target.hostname)) throw new Error(`the bench browser contacts loopback http only, not ${target.origin}`);
    const outgoing = { 'user-agent': this.userAgent, ...headers };
    const cookies = this.jar.getCookieStringSync(target.href, { http: true });
    if (cookies) outgoing.cookie = cookies;
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    if (payload) outgoing['content-length'] = String(payload.byteLength);
    const response = await send(target, method, outgoing, payload);
    for (const setCookie of response.setCookies) this.jar.setCookieSync(setCookie, target.href, { ignoreError: true, http: true });
    return response;
  }

  /** Loads a page as a navigation and follows redirects (a POST answered by 302/303 becomes a GET). */
  async navigate(url, { method = 'GET', headers = {}, body } = {}, initiator) {
    let current = new URL(url);
    let previous = initiator === undefined ? undefined : new URL(initiator);
    for (let hop = 0; hop <= MAX_REDIRECT_HOPS; hop += 1) {
      const navigationHeaders = {
        accept: NAVIGATION_ACCEPT,
        'sec-fetch-mode': 'navigate',
        'sec-fetch-dest': 'document',
        'sec-fetch-site': previous ? (previous.origin === current.origin ? 'same-origin' : previous.hostname === current.hostname ? 'same-site' : 'cross-site') : 'none',
        ...(method !== 'GET' && previous ? { origin: previous.origin } : {}),
        ...headers,
      };
      const response = await this.request(current, { method, headers: navigationHeaders, body });
      const location = response.headers.location;
      if (!REDIRECT_STATUSES.has(response.status) || !location) return { ...response, url: current.href };
      if (response.status !== 307 && response.status !== 308) {
        method = 'GET';
        body = undefined;
        headers = {};
      }
      previous = current;
      current = new URL(location, current);
    }
    throw new Error(`more than ${MAX_REDIRECT_HOPS} redirects from ${url}`);
  }

  /** The value of cookie `name` that would be sent to `url`. */
  cookie(name, url) {
    return this.jar.getCookiesSync(new URL(url).href, { http: true }).find((cookie) => cookie.key === name)?.value;
  }
}

function send(target, method, headers, payload) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(target, { method, headers, agent, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => {
        const setCookie = res.headers['set-cookie'] ?? [];
        resolve({ status: res.statusCode ?? 0, headers: res.headers, setCookies: setCookie, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(payload);
  });
}

const decodeEntities = (text) =>
  text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (entity, code) => {
    const lower = code.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower] ?? entity;
  });

function attributesOf(source) {
  const attributes = {};
  for (const match of source.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    attributes[match[1].toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return attributes;
}

/** The devInteractions form of an oidc-provider page (`<input name="prompt" value="login|consent">`), if any. */
function interactionForm(page) {
  for (const match of page.body.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const form = attributesOf(match[1]);
    const fields = {};
    for (const input of match[2].matchAll(/<input\b([^>]*)>/gi)) {
      const attributes = attributesOf(input[1]);
      if (attributes.name && !['submit', 'button', 'image', 'reset'].includes((attributes.type ?? 'text').toLowerCase())) fields[attributes.name] = attributes.value ?? '';
    }
    if ((form.method ?? 'GET').toUpperCase() === 'POST' && (fields.prompt === 'login' || fields.prompt === 'consent')) {
      return { action: new URL(form.action ?? '', page.url).href, fields };
    }
  }
  return undefined;
}

/**
 * Runs a whole login from `startUrl` (the relying party's login endpoint): the redirect to the IdP,
 * its login and consent pages answered as `username`, the callback, and the redirect after it.
 * Resolves with the last page; the relying party's session cookie is then in the jar.
 */
export async function logIn(browser, startUrl, username) {
  let page = await browser.navigate(startUrl);
  for (let step = 0; step < MAX_INTERACTIONS; step += 1) {
    const form = interactionForm(page);
    if (!form) return page;
    const fields = form.fields.prompt === 'login' ? { ...form.fields, login: username, password: 'any-password' } : form.fields;
    page = await browser.navigate(form.action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() }, page.url);
  }
  throw new Error(`still on an IdP page after ${MAX_INTERACTIONS} submissions: ${page.status} ${page.url}`);
}
