import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../errors/app-error';
import type { Logger } from '../telemetry/logger';

interface Problem {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly retryAfterSeconds: number | undefined;
}

/** The one place an error becomes a response: exposed details only, never `cause`, never a stack. */
export function toProblem(error: unknown): Problem {
  if (error instanceof AppError) {
    return {
      status: error.status,
      code: error.code,
      detail: error.expose ? error.detail : error.status === 503 ? 'temporarily unavailable, retry later' : 'internal error',
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  // Errors from body parsers and the router carry a 4xx status of their own (malformed JSON, oversize body, bad URI).
  const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status ?? (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, code: status === 413 ? 'payload_too_large' : 'bad_request', detail: clientMessage(status), retryAfterSeconds: undefined };
  }
  return { status: 500, code: 'internal', detail: 'internal error', retryAfterSeconds: undefined };
}

function clientMessage(status: number): string {
  if (status === 413) return 'the request body is too large';
  if (status === 415) return 'unsupported content type';
  return 'the request is malformed';
}

export function createErrorHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const problem = toProblem(error);
    const requestLogger: Logger = res.locals.logger ?? logger;
    if (problem.status >= 500) requestLogger.error({ err: error, path: req.path }, 'request failed');
    else requestLogger.info({ code: problem.code, status: problem.status, path: req.path, cause: causeOf(error) }, problem.detail);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (problem.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(problem.retryAfterSeconds));
    // An error page must not be cached any more than the success it replaces (the callback's is no-store).
    res.setHeader('Cache-Control', 'no-store');
    res.status(problem.status);
    if (req.accepts(['json', 'html']) === 'html' && req.path.startsWith('/auth/')) {
      res.type('html').send(errorPage(problem));
      return;
    }
    res.type('application/problem+json').send(
      JSON.stringify({ type: 'about:blank', title: problem.code, status: problem.status, detail: problem.detail, requestId: res.locals.requestId }),
    );
  };
}

/** The message of what went wrong underneath a refusal, for the operator only. */
function causeOf(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause instanceof Error ? cause.message : undefined;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function errorPage(problem: Problem): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title></head>
<body><h1>${problem.status === 503 ? 'Try again shortly' : 'We could not sign you in'}</h1>
<p>${escapeHtml(problem.detail)}</p><p><a href="/auth/login">Start again</a></p></body></html>`;
}
