import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Authorizer } from './authz/authorizer';
import type { Config } from './config/config';
import { NotFound } from './errors/app-error';
import type { EventPublisher } from './events/security-events';
import { hostnameOf } from './frontends/frontend-selector';
import type { GatewayFrontend, ServedFrontends } from './frontends/served-frontends';
import { SessionRateLimiter } from './forwardauth/session-rate-limiter';
import { TrustedProxies } from './http/client-address';
import { createErrorHandler } from './http/error-handler';
import { homePage } from './http/home-page';
import { mountOpenApi } from './http/openapi/openapi-routes';
import {
  createEventsHealthHandler,
  createHealthHandler,
  createMetricsHandler,
  createReadyHandler,
} from './http/operations-routes';
import { createRateLimit } from './http/rate-limit';
import { createRequestContext } from './http/request-context';
import type { DependencyCheck } from './shared/dependency-check';
import { RequestObservation } from './http/request-observation';
import { SessionEnder } from './session/session-end';
import { createSpaMetricsHandler, MAX_BODY_BYTES } from './http/spa-metrics-route';
import type { RateLimitStore } from './session/rate-limit-store';
import type { createVerifyHandler } from './http/verify-route';
import { frontendHandlers, frontendOfForwarded, touchIntervalMs, type FrontendHandlers, type SharedParts } from './http/frontend-routes';
import type { LoginTransactionStore, SessionStore } from './session/session-store';
import type { Clock } from './shared/clock';
import { TouchThrottle } from './session/touch-throttle';
import type { Logger } from './telemetry/logger';
import type { GatewayMetrics } from './telemetry/metrics';

/** Everything the app needs, built by the composition root (or by a test). */
export interface GatewayDependencies {
  readonly config: Config;
  /** First signs, all verify (the session cookie; the stores seal records with keys derived from them too). */
  readonly sessionSecrets: readonly string[];
  readonly sessions: SessionStore;
  readonly transactions: LoginTransactionStore;
  readonly rateLimits: RateLimitStore;
  /** What is served, each frontend with its IdP client; reloadable (ServedFrontends). */
  readonly frontends: Pick<ServedFrontends<GatewayFrontend>, 'all' | 'select'>;
  readonly authorizer: Authorizer;
  readonly events: EventPublisher;
  readonly readinessChecks: readonly DependencyCheck[];
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The embedded development IdP, mounted at /idp when OIDC_ISSUER is unset. */
  readonly developmentIdp?: RequestHandler;
  readonly isShuttingDown?: () => boolean;
  /** Refresh lock lifetime; tests shorten it to prove the renewal. */
  readonly refreshLeaseMs?: number;
}

/**
 * The gateway's request listener: /verify is answered straight from
 * node:http, everything else by the Express app. The proxy calls /verify
 * before every API request, and a router (plus its tracing instrumentation,
 * which wraps every layer) costs a quarter of its throughput for a single
 * fixed path. Never listens and never reads the environment.
 */
export function buildRequestListener(deps: GatewayDependencies): RequestListener {
  const { app, verify } = assemble(deps);
  return (req, res) => {
    if (isVerifyPath(req.url)) void verify(req, res);
    else app(req, res);
  };
}

/**
 * The routes behind two Express applications: one for HTTP/1.1 and one for
 * HTTP/2 streams (TLS_CERT_FILE). Express swaps every request's prototype for
 * one built on http.IncomingMessage, which breaks node:http2's compatibility
 * objects; the second application's prototypes are built on theirs instead.
 */
function frameworkApps(routes: express.Router): RequestListener {
  const http1 = frameworkApp(routes);
  const http2 = frameworkApp(routes);
  Object.setPrototypeOf(http2.request, Object.create(Http2ServerRequest.prototype, Object.getOwnPropertyDescriptors(express.request)));
  const http2Response = Object.create(Http2ServerResponse.prototype, Object.getOwnPropertyDescriptors(express.response));
  // express-session writes headers through node:http's internal `_implicitHeader` when a body is sent without them.
  http2Response._implicitHeader = function implicitHeader(this: Http2ServerResponse) {
    this.writeHead(this.statusCode);
  };
  Object.setPrototypeOf(http2.response, http2Response);
  return (req, res) => {
    if (req.httpVersionMajor !== 2) return http1(req, res);
    // HTTP/2 carries the host in :authority; Express and the IdP routes read Host.
    req.headers.host ??= req.headers[':authority'] as string | undefined;
    return http2(req, res);
  };
}

function frameworkApp(routes: express.Router): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(routes);
  return app;
}

function isVerifyPath(url: string | undefined): boolean {
  return url !== undefined && url.startsWith('/verify') && (url.length === 7 || url.charCodeAt(7) === 63 /* "?" */);
}

/**
 * Mounts the routes; never listens and never reads the environment. `routes`
 * (everything but /verify) lets a test list what Express serves.
 */
export function assemble(deps: GatewayDependencies): {
  app: RequestListener;
  verify: ReturnType<typeof createVerifyHandler>;
  routes: express.Router;
  /** Each served frontend's own routes (its /auth), which `routes` reaches through the frontend it selects. */
  frontendRoutes: () => express.Router[];
} {
  const { config, metrics, logger } = deps;
  const trustedProxies = new TrustedProxies(config.server.trustedProxies);
  const touchThrottle = new TouchThrottle(touchIntervalMs(config.session.idleTtlSeconds));
  const sessionEnder = new SessionEnder({ store: deps.sessions, metrics, events: deps.events });
  sessionEnder.onEnd((sessionId) => touchThrottle.forget(sessionId));
  const rateLimit = (scope: string, requestsPerMinute: number) =>
    createRateLimit({ scope, requestsPerMinute, store: deps.rateLimits, trustedProxies, metrics, events: deps.events, logger });
  const shared: SharedParts = {
    trustedProxies,
    touchThrottle,
    sessionEnder,
    observation: new RequestObservation(metrics),
    verifyRateLimiter: config.rateLimit.verifyRequestsPerSecond > 0 ? new SessionRateLimiter(config.rateLimit.verifyRequestsPerSecond) : undefined,
    authRateLimit: rateLimit('auth', config.rateLimit.authRequestsPerMinute),
  };
  const built = new WeakMap<GatewayFrontend, FrontendHandlers>();
  const handlersOf = (frontend: GatewayFrontend): FrontendHandlers => {
    let handlers = built.get(frontend);
    if (!handlers) built.set(frontend, (handlers = frontendHandlers(deps, shared, frontend)));
    return handlers;
  };
  // A /verify for a host no frontend serves gets the answer of a frontend without routes: 403 no_route.
  const unserved = new WeakMap<readonly GatewayFrontend[], FrontendHandlers>();
  const unservedHandlers = (): FrontendHandlers => {
    const all = deps.frontends.all;
    let handlers = unserved.get(all);
    if (!handlers) {
      const first = all[0] as GatewayFrontend;
      unserved.set(all, (handlers = frontendHandlers(deps, shared, { ...first, view: { ...first.view, routes: [] } })));
    }
    return handlers;
  };
  const verify = (req: IncomingMessage, res: ServerResponse) => {
    const { frontend, forwarded } = frontendOfForwarded(deps.frontends, req);
    return (frontend ? handlersOf(frontend) : unservedHandlers()).verify(req, res, forwarded);
  };

  const app = express.Router();
  app.use(createRequestContext(logger, shared.observation, metrics));

  app.get('/health', createHealthHandler(config.telemetry.serviceVersion));
  app.get('/ready', createReadyHandler(deps.readinessChecks, deps.isShuttingDown ?? (() => false)));
  app.get('/metrics', createMetricsHandler(metrics));
  app.get('/events/health', createEventsHealthHandler(deps.events));
  // The demo page belongs to development and trials; in production "/" is the SPA's, served by the proxy.
  if (config.server.environment !== 'production') app.get('/', homePage);
  mountOpenApi(app, config);

  app.post(
    '/api/v1/metrics',
    rateLimit('spa_metrics', config.rateLimit.metricsRequestsPerMinute),
    express.json({ limit: MAX_BODY_BYTES, type: ['application/json', 'text/plain'] }),
    createSpaMetricsHandler({ allowedEvents: config.publicMetrics.allowedEvents, metrics, events: deps.events }),
  );

  // The /auth routes of the frontend the Host (and path prefix) names.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const frontend = deps.frontends.select(hostnameOf(req.headers.host), req.path);
    if (!frontend) return next();
    handlersOf(frontend).routes(req, res, next);
  });

  if (deps.developmentIdp) app.use('/idp', deps.developmentIdp);

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NotFound()));
  app.use(createErrorHandler(logger));
  return { app: frameworkApps(app), verify, routes: app, frontendRoutes: () => deps.frontends.all.map((frontend) => handlersOf(frontend).routes) };
}
