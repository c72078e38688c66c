import { SessionRefresher } from '../../src/session/session-refresher';
import type { TokenSet } from '../../src/session/session-data';
import { MovableClock } from '../support/gateway';

const clock = new MovableClock();
const refresher = new SessionRefresher({ clock, leaseMs: 1000, waitBudgetMs: 1000 } as unknown as ConstructorParameters<typeof SessionRefresher>[0]);

function tokens(lifetimeSeconds: number, ageSeconds: number): TokenSet {
  const issuedAt = clock.now() - ageSeconds * 1000;
  return { accessToken: 'a', refreshToken: 'r', idToken: undefined, accessTokenIssuedAt: issuedAt, accessTokenExpiresAt: issuedAt + lifetimeSeconds * 1000 };
}

describe('when an access token needs refreshing', () => {
  it.each([
    [300, 200, false],
    [300, 241, true],
    [60, 1, false],
    [60, 29, false],
    [60, 31, true],
    [4, 2.5, true],
  ])('a %i s token aged %d s: %s', (lifetime, age, expected) => {
    expect(refresher.needsRefresh(tokens(lifetime, age))).toBe(expected);
  });

  it('uses the 60 s window for tokens stored without their issue time', () => {
    const expiresAt = clock.now() + 59_000;
    expect(refresher.needsRefresh({ accessToken: 'a', refreshToken: 'r', idToken: undefined, accessTokenExpiresAt: expiresAt })).toBe(true);
  });
});
