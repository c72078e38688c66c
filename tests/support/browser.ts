import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { CookieJar } from 'tough-cookie';

/**
 * A "simulated browser": a cookie jar (tough-cookie, RFC 6265: host-only
 * cookies match the hostname whatever the port, Path, Max-Age/Expires
 * deletion, Secure cookies allowed on loopback http) and redirects followed by
 * hand like a browser does. SameSite is not enforced.
 *
 * Requests go through node:http rather than global fetch: fetch (undici)
 * overwrites `Sec-Fetch-Mode` with `cors` and forbids `Host`, so it cannot
 * look like a browser navigation. Responses are still WHATWG `Response`s.
 *
 * It refuses to contact anything but loopback hosts, so a test can never
 * reach out to the internet by following a redirect.
 */

export interface BrowserOptions {
  userAgent?: string;
  /** Which hostnames may be contacted; defaults to loopback only. */
  isAllowedHost?: (hostname: string) => boolean;
}

export interface NavigateOptions {
  /** URL of the page that started the navigation (a form's page), for Origin and Sec-Fetch-Site. */
  initiator?: string;
}

export interface NavigationResult {
  /** The last response: not a redirect, unless `stoppedAt` is set. */
  response: Response;
  /** Its body as text ('' when `stoppedAt` is set). */
  body: string;
  /** URL of the last request made. */
  url: string;
  /** Every URL requested, in order, starting with the first. */
  hops: string[];
  /** A redirect target that was not followed: not http, or a host that is not allowed. */
  stoppedAt?: string;
}

export interface HtmlForm {
  id?: string;
  /** Absolute URL. */
  action: string;
  /** Upper case. */
  method: string;
  /** Every named input except buttons, with its (possibly empty) value. */
  fields: Record<string, string>;
}

export const DEFAULT_USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 bff-gateway-tests';
/** Chromium's limit is 20 redirects per navigation. */
export const MAX_REDIRECT_HOPS = 20;
const REQUEST_TIMEOUT_MS = 30_000;
const NAVIGATION_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export class Browser {
  readonly jar = new CookieJar();
  readonly userAgent: string;
  private readonly isAllowedHost: (hostname: string) => boolean;

  constructor(opts: BrowserOptions = {}) {
    this.userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
    this.isAllowedHost = opts.isAllowedHost ?? isLoopbackHost;
  }

  /**
   * One request: cookies sent and stored, redirects not followed. `init.body`
   * may be a string, URLSearchParams or bytes.
   */
  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    if (target.protocol !== 'http:') throw new Error(`Browser speaks plain http only, not ${target.protocol}`);
    if (!this.isAllowedHost(target.hostname)) {
      throw new Error(`Browser refuses to contact ${target.origin}: not an allowed (loopback) host`);
    }
    const headers = new Headers(init.headers);
    if (!headers.has('user-agent')) headers.set('user-agent', this.userAgent);
    const jarCookies = this.jar.getCookieStringSync(target.href, { http: true });
    if (jarCookies) {
      const explicit = headers.get('cookie');
      headers.set('cookie', explicit ? `${explicit}; ${jarCookies}` : jarCookies);
    }
    const body = encodeBody(init.body, headers);
    if (body !== undefined) headers.set('content-length', String(body.byteLength));

    const response = await send(target, {
      method: (init.method ?? 'GET').toUpperCase(),
      headers,
      body,
      signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    for (const setCookie of response.headers.getSetCookie()) {
      // A browser drops a cookie it cannot store; so do we.
      this.jar.setCookieSync(setCookie, target.href, { ignoreError: true, http: true });
    }
    return response;
  }

  /**
   * Loads a page like a browser: navigation headers, then redirects followed
   * (301/302 after POST and 303 become GET, 307/308 keep method and body) up
   * to MAX_REDIRECT_HOPS. A redirect to a host that is not allowed, or to
   * anything but http, ends the navigation with `stoppedAt` instead of being
   * requested (e.g. a gateway's https PUBLIC_URL).
   */
  async navigate(url: string | URL, init: RequestInit = {}, opts: NavigateOptions = {}): Promise<NavigationResult> {
    let current = new URL(url);
    let method = (init.method ?? 'GET').toUpperCase();
    let body = init.body;
    let previous = opts.initiator === undefined ? undefined : new URL(opts.initiator);
    let headers = new Headers(init.headers);
    const contentType = headers.get('content-type');
    const hops: string[] = [];

    for (let hop = 0; hop <= MAX_REDIRECT_HOPS; hop += 1) {
      hops.push(current.href);
      if (!headers.has('accept')) headers.set('accept', NAVIGATION_ACCEPT);
      headers.set('sec-fetch-mode', 'navigate');
      headers.set('sec-fetch-dest', 'document');
      headers.set('sec-fetch-site', previous ? fetchSite(previous, current) : 'none');
      if (method !== 'GET' && method !== 'HEAD' && previous && !headers.has('origin')) {
        headers.set('origin', previous.origin);
      }

      const response = await this.request(current, { ...init, method, headers, body });
      const location = response.headers.get('location');
      if (!REDIRECT_STATUSES.has(response.status) || location === null) {
        return { response, body: await response.text(), url: current.href, hops };
      }
      await response.body?.cancel();

      const target = new URL(location, current);
      if (target.protocol !== 'http:' || !this.isAllowedHost(target.hostname)) {
        return { response, body: '', url: current.href, hops, stoppedAt: target.href };
      }
      const isMethodKept = response.status === 307 || response.status === 308;
      if (!isMethodKept && method !== 'GET' && method !== 'HEAD') {
        method = 'GET';
        body = undefined;
      }
      // Headers the caller set belong to the first request only, as with a real navigation.
      headers = new Headers();
      if (isMethodKept && body !== undefined && contentType !== null) headers.set('content-type', contentType);
      previous = current;
      current = target;
    }
    throw new Error(`more than ${MAX_REDIRECT_HOPS} redirects:\n${hops.join('\n')}`);
  }

  /** Submits a form as the page at `pageUrl` would. */
  submitForm(form: HtmlForm, fields: Record<string, string>, pageUrl: string): Promise<NavigationResult> {
    const encoded = new URLSearchParams(fields);
    if (form.method === 'GET') {
      const action = new URL(form.action);
      action.search = encoded.toString();
      return this.navigate(action, {}, { initiator: pageUrl });
    }
    return this.navigate(
      form.action,
      {
        method: form.method,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: encoded.toString(),
      },
      { initiator: pageUrl },
    );
  }

  /** The value of cookie `name` that would be sent to `url`. */
  cookie(name: string, url: string | URL): string | undefined {
    return this.jar.getCookiesSync(new URL(url).href, { http: true }).find((c) => c.key === name)?.value;
  }

  /** Stores a cookie as if `url` had answered with this Set-Cookie header value. */
  setCookie(setCookieHeader: string, url: string | URL): void {
    const stored = this.jar.setCookieSync(setCookieHeader, new URL(url).href, { http: true });
    if (!stored) throw new Error(`cookie not stored: ${setCookieHeader}`);
  }

  clearCookies(): void {
    this.jar.removeAllCookiesSync();
  }
}

// Without keep-alive no idle socket outlives a test server that has closed.
const agent = new Agent({ keepAlive: false });
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

function encodeBody(body: RequestInit['body'], headers: Headers): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof URLSearchParams) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
    return Buffer.from(body.toString(), 'utf8');
  }
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('Browser request bodies must be a string, URLSearchParams or bytes');
}

function send(
  target: URL,
  options: { method: string; headers: Headers; body: Buffer | undefined; signal: AbortSignal },
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const outgoing: Record<string, string> = {};
    options.headers.forEach((value, name) => {
      outgoing[name] = value;
    });
    const req = httpRequest(target, { method: options.method, headers: outgoing, agent, signal: options.signal });
    req.once('error', reject);
    req.once('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => {
        const responseHeaders = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          responseHeaders.append(res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '');
        }
        const status = res.statusCode ?? 0;
        const hasNoBody = NULL_BODY_STATUSES.has(status) || options.method === 'HEAD';
        resolve(
          new Response(hasNoBody ? null : Buffer.concat(chunks), {
            status,
            statusText: res.statusMessage ?? '',
            headers: responseHeaders,
          }),
        );
      });
    });
    req.end(options.body);
  });
}

// Sites ignore the port, so two loopback servers on one hostname are same-site.
function fetchSite(from: URL, to: URL): 'same-origin' | 'same-site' | 'cross-site' {
  if (from.origin === to.origin) return 'same-origin';
  if (from.protocol === to.protocol && from.hostname === to.hostname) return 'same-site';
  return 'cross-site';
}

// ---------------------------------------------------------------------------
// HTML forms, enough for oidc-provider's pages (their values are HTML-escaped).

const ATTRIBUTE = /([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;

function parseAttributes(source: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of source.matchAll(ATTRIBUTE)) {
    const name = match[1];
    if (name === undefined) continue;
    attributes[name.toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return attributes;
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (entity, code: string) => {
    const lower = code.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    return named[lower] ?? entity;
  });
}

/** Every `<form>` of the page with its named inputs; actions resolved against `pageUrl`. */
export function parseForms(html: string, pageUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = parseAttributes(match[1] ?? '');
    const fields: Record<string, string> = {};
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const inputAttributes = parseAttributes(input[1] ?? '');
      const type = (inputAttributes.type ?? 'text').toLowerCase();
      const { name } = inputAttributes;
      if (!name || ['submit', 'button', 'image', 'reset'].includes(type)) continue;
      fields[name] = inputAttributes.value ?? '';
    }
    forms.push({
      ...(attributes.id === undefined ? {} : { id: attributes.id }),
      action: new URL(attributes.action ?? '', pageUrl).href,
      method: (attributes.method ?? 'GET').toUpperCase(),
      fields,
    });
  }
  return forms;
}

// ---------------------------------------------------------------------------
// Driving oidc-provider's devInteractions pages.

export type IdpPrompt = 'login' | 'consent';

export interface IdpLoginOptions {
  username: string;
  /** devInteractions accepts any password. */
  password?: string;
}

export interface IdpLoginResult {
  /** Where the browser ended: the last URL requested, or the redirect target that was not followed. */
  finalUrl: string;
  response: Response;
  body: string;
  /** Every URL requested across the whole login. */
  hops: string[];
  /** The devInteractions pages that were answered, in order (none when the IdP session was reused). */
  prompts: IdpPrompt[];
  /** Origin of the IdP, when the flow went through it. */
  idpOrigin?: string;
}

export interface IdpInteractionPage extends NavigationResult {
  prompt: IdpPrompt;
  form: HtmlForm;
}

// login, consent, and one spare for an IdP that asks again.
const MAX_INTERACTIONS = 4;

/** The devInteractions form on this page (`<input type="hidden" name="prompt" value="login|consent">`), if any. */
export function findIdpInteraction(page: NavigationResult): IdpInteractionPage | undefined {
  if (page.stoppedAt !== undefined) return undefined;
  for (const form of parseForms(page.body, page.url)) {
    const prompt = form.fields.prompt;
    if (form.method === 'POST' && (prompt === 'login' || prompt === 'consent')) return { ...page, prompt, form };
  }
  return undefined;
}

/**
 * Navigates to `startUrl` (e.g. a gateway's `/auth/login?returnTo=/x`) and
 * stops at the IdP's login page without submitting it, e.g. to finish the
 * login in another browser. Fails when no login page is reached.
 */
export async function followToIdpLogin(browser: Browser, startUrl: string | URL): Promise<IdpInteractionPage> {
  const page = await browser.navigate(startUrl);
  const interaction = findIdpInteraction(page);
  if (interaction?.prompt !== 'login') {
    throw new Error(`expected the IdP login page, got ${describePage(page)}`);
  }
  return interaction;
}

/**
 * Runs a whole login: navigates to `startUrl`, answers the devInteractions
 * login and consent pages, and follows redirects until the browser has left
 * the IdP and landed on a page that is not a redirect (or on a redirect to a
 * host it may not contact). Fails when the flow ends on an IdP page.
 */
export async function loginWithIdp(
  browser: Browser,
  startUrl: string | URL,
  options: IdpLoginOptions,
): Promise<IdpLoginResult> {
  const page = await browser.navigate(startUrl);
  return completeIdpLogin(browser, page, options);
}

/** Continues a login from a page already loaded, e.g. the result of `followToIdpLogin`. */
export async function completeIdpLogin(
  browser: Browser,
  start: NavigationResult,
  options: IdpLoginOptions,
): Promise<IdpLoginResult> {
  const hops = [...start.hops];
  const prompts: IdpPrompt[] = [];
  let page = start;
  let idpOrigin = authorizationRequestOrigin(hops);
  // An IdP mounted under a path of the app's own origin (the gateway's embedded /idp) shares the origin.
  let idpBase: string | undefined;

  for (let step = 0; step < MAX_INTERACTIONS; step += 1) {
    const interaction = findIdpInteraction(page);
    if (!interaction) break;
    idpOrigin = new URL(interaction.url).origin;
    idpBase = interaction.url.slice(0, interaction.url.indexOf('/interaction/') + 1) || idpOrigin;
    const fields =
      interaction.prompt === 'login'
        ? { ...interaction.form.fields, login: options.username, password: options.password ?? 'any-password' }
        : interaction.form.fields;
    page = await browser.submitForm(interaction.form, fields, interaction.url);
    hops.push(...page.hops);
    prompts.push(interaction.prompt);
  }

  if (findIdpInteraction(page)) {
    throw new Error(`still on an IdP interaction page after ${MAX_INTERACTIONS} submissions: ${describePage(page)}`);
  }
  const isStillAtIdp = idpBase !== undefined ? page.url.startsWith(idpBase) : idpOrigin !== undefined && new URL(page.url).origin === idpOrigin;
  if (page.stoppedAt === undefined && isStillAtIdp) {
    throw new Error(`login ended at the IdP: ${describePage(page)}`);
  }
  return {
    finalUrl: page.stoppedAt ?? page.url,
    response: page.response,
    body: page.body,
    hops,
    prompts,
    ...(idpOrigin === undefined ? {} : { idpOrigin }),
  };
}

/**
 * Follows an RP-initiated logout URL (the IdP's end_session_endpoint with its
 * parameters) and confirms "Yes, sign me out", which also triggers the IdP's
 * back-channel logout calls. Resolves once the browser lands after the logout.
 */
export async function logoutAtIdp(browser: Browser, logoutUrl: string | URL): Promise<NavigationResult> {
  const page = await browser.navigate(logoutUrl);
  const forms = parseForms(page.body, page.url);
  // With an IdP session: a confirmation page whose buttons sit outside `op.logoutForm`.
  // Without one: a self-submitting form that already carries logout=yes.
  const form = forms.find((f) => f.id === 'op.logoutForm') ?? forms.find((f) => 'xsrf' in f.fields);
  if (!form) throw new Error(`expected the IdP logout confirmation, got ${describePage(page)}`);
  const result = await browser.submitForm(form, { ...form.fields, logout: 'yes' }, page.url);
  return { ...result, hops: [...page.hops, ...result.hops] };
}

function authorizationRequestOrigin(hops: string[]): string | undefined {
  for (const hop of hops) {
    const url = new URL(hop);
    if (url.searchParams.has('client_id') && url.searchParams.has('response_type')) return url.origin;
  }
  return undefined;
}

function describePage(page: NavigationResult): string {
  const text = page.body.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
  const where = page.stoppedAt === undefined ? page.url : `${page.url} -> (not followed) ${page.stoppedAt}`;
  return `${page.response.status} at ${where}: ${text.slice(0, 500)}\nhops:\n${page.hops.join('\n')}`;
}
