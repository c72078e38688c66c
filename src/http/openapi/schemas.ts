import { ERROR_CODES } from '../../errors/app-error';
import { MAX_EVENTS_PER_REQUEST } from '../spa-metrics-route';
import { VERIFY_ERRORS, type VerifyError } from '../../forwardauth/verify-decision';
import { ref, type JsonSchema } from './openapi-types';

/**
 * Which /verify refusal comes with which status (src/forwardauth/verify-decision.ts).
 * A unit test checks that these lists hold every VERIFY_ERRORS value once.
 */
export const VERIFY_ERRORS_BY_STATUS = {
  400: ['missing_forwarded_headers', 'malformed_forwarded_headers', 'ambiguous_path'],
  401: ['unauthenticated', 'session_binding', 'invalid_token'],
  403: ['untrusted_proxy', 'no_route', 'csrf', 'forbidden'],
  429: ['rate_limited'],
  503: ['dependency_unavailable'],
} as const satisfies Record<number, readonly VerifyError[]>;

const UUID_DESCRIPTION = 'The request id (a UUID; v7 unless a well-formed X-Request-ID came in): quote it when reporting a problem.';

/** The component schemas; the operations refer to them by name. */
export function componentSchemas(allowedEvents: readonly string[]): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {
    Problem: {
      type: 'object',
      description:
        'RFC 9457 problem details, answered by every Express route for an error (`application/problem+json`). `title` is the stable error code; `detail` never carries an internal cause (5xx other than 503 say only "internal error").',
      required: ['type', 'title', 'status', 'detail', 'requestId'],
      properties: {
        type: { const: 'about:blank' },
        title: { description: 'The stable error code.', enum: [...ERROR_CODES] },
        status: { type: 'integer', minimum: 400, maximum: 599 },
        detail: { type: 'string', description: 'What went wrong, for a person; safe to show.' },
        requestId: { type: 'string', format: 'uuid', description: UUID_DESCRIPTION },
      },
      additionalProperties: false,
    },
    ErrorPage: {
      type: 'string',
      description: 'A small HTML page saying what went wrong, with a link to start the login again: what a browser that asked for HTML gets from an `/auth/` route.',
    },
    User: {
      type: 'object',
      description: 'The logged-in user, for the SPA. Never a token.',
      required: ['sub', 'groups', 'sessionExpiresAt'],
      properties: {
        sub: { type: 'string', minLength: 1, description: 'The IdP subject.' },
        name: { type: 'string' },
        email: { type: 'string' },
        preferredUsername: { type: 'string' },
        groups: { type: 'array', items: { type: 'string' }, description: 'From the claim named by OIDC_GROUPS_CLAIM; empty when there is none.' },
        sessionExpiresAt: {
          type: 'string',
          format: 'date-time',
          description: 'When the session ends unless it is used again: the idle timeout from now, capped by the absolute lifetime.',
        },
      },
      additionalProperties: false,
    },
    SessionList: {
      type: 'object',
      description: "The user's sessions on this frontend, newest first. Never a session id, a token or anything that opens a session.",
      required: ['sessions'],
      properties: { sessions: { type: 'array', items: ref('schemas', 'Session') } },
      additionalProperties: false,
    },
    Session: {
      type: 'object',
      required: ['handle', 'createdAt', 'lastSeenAt', 'device', 'current'],
      properties: {
        handle: {
          type: 'string',
          pattern: '^[A-Za-z0-9_-]{22}$',
          description: 'Names the session for DELETE /auth/sessions/{handle}: a keyed digest of its id, which opens nothing as a cookie and means nothing to another user.',
        },
        createdAt: { type: 'string', format: 'date-time', description: 'When the user logged in.' },
        lastSeenAt: {
          type: 'string',
          format: 'date-time',
          description: 'When the session was last used, to within a minute (the current session: now). Near the end of the absolute lifetime, the earliest it can have been.',
        },
        device: { type: ['string', 'null'], maxLength: 48, description: 'Browser and system the session was created on ("Firefox 133 on Linux"), or null when unknown.' },
        current: { type: 'boolean', description: 'The session making this request.' },
      },
      additionalProperties: false,
    },
    SessionsEnded: {
      type: 'object',
      required: ['ended'],
      properties: { ended: { type: 'integer', minimum: 0, description: 'How many of the other sessions were ended.' } },
      additionalProperties: false,
    },
    Logout: {
      type: 'object',
      required: ['logoutUrl'],
      properties: {
        logoutUrl: {
          type: 'string',
          format: 'uri',
          description:
            "Where the SPA sends the browser next: the IdP's end_session_endpoint with id_token_hint and post_logout_redirect_uri (RP-initiated logout), or PUBLIC_URL/ when the IdP has none or there was no session.",
        },
      },
      additionalProperties: false,
    },
    BackchannelLogoutRequest: {
      type: 'object',
      required: ['logout_token'],
      properties: {
        logout_token: {
          type: 'string',
          minLength: 1,
          maxLength: 16384,
          description: 'A Logout Token (a JWT signed by the IdP) naming `sid` and/or `sub`, as OIDC Back-Channel Logout 1.0 section 2.4 describes.',
        },
      },
    },
    BackchannelLogoutError: {
      type: 'object',
      description: 'An OAuth 2.0 error response (OIDC Back-Channel Logout 1.0 section 2.8).',
      required: ['error', 'error_description'],
      properties: {
        error: { const: 'invalid_request' },
        error_description: { type: 'string' },
      },
      additionalProperties: false,
    },
    SpaMetricsRequest: {
      type: 'object',
      description:
        'At most 16 KiB. Attribute keys and values that look like personal data or secrets (email, password, token, authorization, cookie, secret, ssn, card numbers, also percent-encoded or with separators), and keys that reach an object prototype (`__proto__`, `constructor`, `prototype`), make the whole request 400 with the offending keys named.',
      required: ['events'],
      properties: {
        events: {
          type: 'array',
          minItems: 1,
          maxItems: MAX_EVENTS_PER_REQUEST,
          items: ref('schemas', 'SpaMetricsEvent'),
        },
      },
      additionalProperties: false,
    },
    SpaMetricsEvent: {
      type: 'object',
      required: ['event'],
      properties: {
        event: {
          description: 'One of PUBLIC_METRICS_EVENTS: the only values of the `event` label of `bff_public_metrics_total`.',
          enum: [...allowedEvents],
        },
        value: { type: 'number' },
        attributes: {
          type: 'object',
          propertyNames: { minLength: 1, maxLength: 64 },
          additionalProperties: { anyOf: [{ type: 'string', maxLength: 256 }, { type: 'number' }, { type: 'boolean' }] },
        },
      },
      additionalProperties: false,
    },
    SpaMetricsAccepted: {
      type: 'object',
      required: ['accepted'],
      properties: { accepted: { type: 'integer', minimum: 1, maximum: MAX_EVENTS_PER_REQUEST, description: 'How many events were counted.' } },
      additionalProperties: false,
    },
    VerifyRefusal: {
      type: 'object',
      description: "/verify's own JSON (not problem details): the proxy hands it to the client as it is.",
      required: ['error'],
      properties: {
        error: { description: 'Why the request was refused (see the README for each).', enum: [...VERIFY_ERRORS] },
        login: { type: 'string', format: 'uri', description: 'Where to log in (with `unauthenticated`).' },
      },
      additionalProperties: false,
    },
    Health: {
      type: 'object',
      required: ['status', 'service', 'version', 'timestamp'],
      properties: {
        status: { const: 'healthy' },
        service: { const: 'bff-service' },
        version: { type: 'string', description: 'BFF_VERSION, else the package version.' },
        timestamp: { type: 'string', format: 'date-time' },
      },
      additionalProperties: false,
    },
    DependencyCheck: {
      type: 'object',
      required: ['status'],
      properties: {
        status: { enum: ['up', 'down', 'not_configured'] },
        latencyMs: { type: 'number', minimum: 0 },
        detail: { type: 'string' },
      },
      additionalProperties: false,
    },
    Readiness: {
      type: 'object',
      description:
        'Redis and the IdP metadata (of every frontend) decide readiness (an open Redis breaker is not ready); the PDP, Kafka and the frontends are reported only. `frontends` names what is served and, after a refused FRONTENDS_FILE reload, why it was refused.',
      required: ['status', 'checks'],
      properties: {
        status: { enum: ['ready', 'not_ready'] },
        checks: {
          type: 'object',
          required: ['redis', 'idp', 'frontends', 'pdp', 'kafka'],
          properties: {
            redis: ref('schemas', 'DependencyCheck'),
            idp: ref('schemas', 'DependencyCheck'),
            frontends: ref('schemas', 'DependencyCheck'),
            pdp: ref('schemas', 'DependencyCheck'),
            kafka: ref('schemas', 'DependencyCheck'),
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    EventBackendHealth: {
      type: 'object',
      required: ['backend', 'connected', 'buffered', 'dropped'],
      properties: {
        backend: { enum: ['log', 'kafka'], description: 'kafka when KAFKA_BROKERS is set, otherwise events go to the log.' },
        connected: { type: 'boolean' },
        buffered: { type: 'integer', minimum: 0, description: 'Events held for delivery (waiting and in flight).' },
        dropped: { type: 'integer', minimum: 0, description: 'Events lost since start-up: overflow of the buffer, or published after close.' },
        lastError: { type: 'string', description: 'The error of the outage going on now; absent once a connect or send succeeds again.' },
        lastOutage: {
          type: 'object',
          description: 'The most recent outage, kept after it ended; absent when there has been none since start-up.',
          required: ['error', 'startedAt'],
          properties: {
            error: { type: 'string' },
            startedAt: { type: 'string', format: 'date-time' },
            endedAt: { type: 'string', format: 'date-time' },
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    OpenApiDocument: {
      type: 'object',
      description: 'This document (OpenAPI 3.1).',
      required: ['openapi', 'info', 'paths'],
      properties: { openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' }, info: { type: 'object' }, paths: { type: 'object' } },
    },
  };
  return schemas;
}
