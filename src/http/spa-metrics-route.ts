import type { Request, Response } from 'express';
import { z } from 'zod';
import { AppError, BadRequest } from '../errors/app-error';
import type { EventPublisher } from '../events/security-events';
import type { GatewayMetrics } from '../telemetry/metrics';

export const MAX_EVENTS_PER_REQUEST = 50;
export const MAX_BODY_BYTES = 16 * 1024;

/** Keys that name personal data or credentials, in any common spelling. */
const SENSITIVE_KEY = /e[-_]?mail|pass(word|wd)?|token|authori[sz]ation|cookie|secret|ssn|social[-_]?security|credit[-_]?card|card[-_]?(number|no)|\bpan\b/i;
const EMAIL_VALUE = /[^\s@]+@[^\s@]+\.[^\s@]+/;
const JWT_VALUE = /eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/;
const CARD_CANDIDATE = /(?:\d[ -]?){13,19}/g;

function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index++) {
    let digit = Number(digits[digits.length - 1 - index]);
    if (index % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

function looksSensitive(value: string): boolean {
  if (EMAIL_VALUE.test(value) || JWT_VALUE.test(value)) return true;
  for (const candidate of value.match(CARD_CANDIDATE) ?? []) {
    const digits = candidate.replace(/\D/g, '');
    if (digits.length >= 13 && digits.length <= 19 && passesLuhn(digits)) return true;
  }
  return false;
}

/** Refused because an attribute looks like personal data or a secret; names every offending key. */
export class SensitiveAttributes extends AppError {
  constructor(readonly offendingKeys: readonly string[]) {
    super('bad_request', 400, `attributes look like personal data or secrets: ${offendingKeys.join(', ')}`);
  }
}

export function createSpaMetricsHandler(options: { allowedEvents: readonly string[]; metrics: GatewayMetrics; events: EventPublisher }) {
  const attributeValue = z.union([z.string().max(256), z.number().finite(), z.boolean()]);
  const body = z
    .object({
      events: z
        .array(
          z
            .object({
              event: z.enum(options.allowedEvents as [string, ...string[]], { error: `event must be one of ${options.allowedEvents.join(', ')}` }),
              value: z.number().finite().optional(),
              attributes: z.record(z.string().min(1).max(64), attributeValue).optional(),
            })
            .strict(),
        )
        .min(1, { error: 'events must not be empty' })
        .max(MAX_EVENTS_PER_REQUEST, { error: `at most ${MAX_EVENTS_PER_REQUEST} events per request` }),
    })
    .strict();

  return (req: Request, res: Response): void => {
    const reject = (error: AppError, reason: string): never => {
      options.events.publish({ type: 'ingestion_rejected', severity: 'warning', reason, requestId: res.locals.requestId });
      throw error;
    };
    const parsed = body.safeParse(req.body);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
      reject(new BadRequest(detail), 'invalid_body');
    }
    const events = parsed.data!.events;
    const offending: string[] = [];
    events.forEach((event, index) => {
      for (const [key, value] of Object.entries(event.attributes ?? {})) {
        if (SENSITIVE_KEY.test(key) || (typeof value === 'string' && looksSensitive(value))) offending.push(`events[${index}].attributes.${key}`);
      }
    });
    if (offending.length > 0) reject(new SensitiveAttributes(offending), 'sensitive_attributes');
    for (const event of events) options.metrics.publicMetrics.inc({ event: event.event });
    res.status(202).set('Cache-Control', 'no-store').json({ accepted: events.length });
  };
}
