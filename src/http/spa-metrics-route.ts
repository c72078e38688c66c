import type { Request, Response } from 'express';
import { z } from 'zod';
import { AppError, BadRequest } from '../errors/app-error';
import type { EventPublisher } from '../events/security-events';
import type { GatewayMetrics } from '../telemetry/metrics';
import { findSensitiveData, type SensitiveDataFinding } from './sensitive-data';

export const MAX_EVENTS_PER_REQUEST = 50;
export const MAX_BODY_BYTES = 16 * 1024;

/** At most this many offending keys are named in one answer; the rest are counted. */
const MAX_NAMED_KEYS = 20;

/**
 * Refused because keys or values look like personal data or secrets, or keys
 * reach an object's prototype; names every offending key (never its value).
 */
function describeFindings(findings: readonly SensitiveDataFinding[]): string {
  const personal = findings.filter((finding) => finding.reason !== 'prototype_key').map((finding) => finding.path);
  const prototype = findings.filter((finding) => finding.reason === 'prototype_key').map((finding) => finding.path);
  const parts = [];
  if (personal.length > 0) parts.push(`attributes look like personal data or secrets: ${named(personal)}`);
  if (prototype.length > 0) parts.push(`keys that reach an object's prototype are refused: ${named(prototype)}`);
  return parts.join('; ');
}

function named(paths: readonly string[]): string {
  const shown = paths.slice(0, MAX_NAMED_KEYS).join(', ');
  return paths.length > MAX_NAMED_KEYS ? `${shown} and ${paths.length - MAX_NAMED_KEYS} more` : shown;
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
    // Before the schema: its records drop an own "__proto__" key, and with it whatever the key held.
    const findings = findSensitiveData(req.body);
    if (findings.length > 0) {
      const isPersonal = findings.some((finding) => finding.reason !== 'prototype_key');
      reject(new BadRequest(describeFindings(findings)), isPersonal ? 'sensitive_attributes' : 'prototype_keys');
    }
    const parsed = body.safeParse(req.body);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
      reject(new BadRequest(detail), 'invalid_body');
    }
    const events = parsed.data!.events;
    for (const event of events) options.metrics.publicMetrics.inc({ event: event.event });
    res.status(202).set('Cache-Control', 'no-store').json({ accepted: events.length });
  };
}
