import { userFromClaims, userFromLogin } from '../../src/oidc/claims-user';

describe('userFromClaims', () => {
  it('reads sub, name, email, email_verified, preferred_username and the groups claim', () => {
    expect(
      userFromClaims(
        { sub: 'alice', name: 'Alice', email: 'alice@example.com', email_verified: true, preferred_username: 'al', realm_access: { roles: ['staff'] } },
        'realm_access.roles',
      ),
    ).toEqual({ sub: 'alice', name: 'Alice', email: 'alice@example.com', emailVerified: true, preferredUsername: 'al', groups: ['staff'] });
  });

  it.each([
    ['true', true, true],
    ['the string "true" (Amazon Cognito userinfo)', 'true', true],
    ['false', false, false],
    ['the string "false"', 'false', false],
    ['1', 1, false],
    ['"yes"', 'yes', false],
    ['absent', undefined, false],
  ])('reads email_verified %s as %s', (_description, claim, expected) => {
    expect(userFromClaims({ sub: 'a', email: 'a@example.com', email_verified: claim }, undefined).emailVerified).toBe(expected);
  });

  it('says nothing about verification when there is no email', () => {
    expect(userFromClaims({ sub: 'a', email_verified: true }, undefined)).not.toHaveProperty('emailVerified');
  });
});

describe('userFromLogin', () => {
  it('takes email_verified from userinfo when userinfo gives the email', () => {
    const user = userFromLogin({ sub: 'a', email: 'old@example.com', email_verified: true }, { sub: 'a', email: 'new@example.com' }, undefined);
    expect(user).toMatchObject({ email: 'new@example.com', emailVerified: false });
  });

  it('takes email_verified from the ID token when userinfo gives no email', () => {
    const user = userFromLogin({ sub: 'a', email: 'a@example.com', email_verified: true }, { sub: 'a', email_verified: false, name: 'A' }, undefined);
    expect(user).toMatchObject({ email: 'a@example.com', emailVerified: true, name: 'A' });
  });

  it('lets userinfo win for the other claims but keeps the ID token subject', () => {
    const user = userFromLogin({ sub: 'a', name: 'Old', groups: ['x'] }, { sub: 'b', name: 'New', groups: ['y'] }, undefined);
    expect(user).toEqual({ sub: 'a', name: 'New', email: undefined, preferredUsername: undefined, groups: ['y'] });
  });
});
