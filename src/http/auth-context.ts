import type { Request } from 'express';
import type { Config } from '../config/config';
import type { EventPublisher } from '../events/security-events';
import type { IdentityProvider } from '../oidc/identity-provider';
import type { SessionEnder } from '../session/session-end';
import type { TokenSet } from '../session/session-data';
import type { LoginTransactionStore } from '../session/session-store';
import type { Clock } from '../shared/clock';
import type { GatewayMetrics } from '../telemetry/metrics';
import type { Logger } from '../telemetry/logger';
import type { TrustedProxies } from './client-address';

/** What the browser-facing /auth routes share. */
export interface AuthRouteDependencies {
  readonly config: Config;
  readonly identityProvider: IdentityProvider;
  readonly transactions: LoginTransactionStore;
  readonly trustedProxies: TrustedProxies;
  readonly sessionEnder: SessionEnder;
  readonly metrics: GatewayMetrics;
  readonly events: EventPublisher;
  readonly logger: Logger;
  readonly clock: Clock;
}

export function clientAddressOf(req: Request, trustedProxies: TrustedProxies): string | undefined {
  return trustedProxies.clientAddress(req.get('x-forwarded-for'), req.socket.remoteAddress);
}

/** Revokes a session's refresh token at the IdP, when it has one and the IdP can; a failure is logged, never thrown: the session ends anyway. */
export async function revokeRefreshToken(deps: Pick<AuthRouteDependencies, 'identityProvider' | 'logger'>, tokens: TokenSet, requestId: string | undefined): Promise<void> {
  if (!tokens.refreshToken) return;
  await deps.identityProvider.revoke(tokens.refreshToken, 'refresh_token').catch((error: unknown) => {
    deps.logger.warn({ request_id: requestId, err: (error as Error).message }, 'refresh token revocation failed; the session is destroyed anyway');
  });
}

/** express-session's callback API as promises. */
export const sessionOps = {
  regenerate: (req: Request) => new Promise<void>((resolve, reject) => req.session.regenerate((error) => (error ? reject(error) : resolve()))),
  save: (req: Request) => new Promise<void>((resolve, reject) => req.session.save((error) => (error ? reject(error) : resolve()))),
  destroy: (req: Request) => new Promise<void>((resolve, reject) => req.session.destroy((error) => (error ? reject(error) : resolve()))),
};
