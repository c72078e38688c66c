import { readGroups } from '../../src/oidc/groups-claim';

/** Claims as the gateway receives them: parsed from the JSON of an ID token or a userinfo answer. */
function claimsFromJson(json: string): Record<string, unknown> {
  return JSON.parse(json) as Record<string, unknown>;
}

describe('readGroups', () => {
  it('reads a top-level claim by name', () => {
    expect(readGroups({ sub: 'u1', groups: ['staff', 'ops'] }, 'groups')).toEqual(['staff', 'ops']);
    expect(readGroups({ sub: 'u1', roles: ['admin'] }, 'roles')).toEqual(['admin']);
  });

  it('reads groups, else roles, when no claim is configured', () => {
    expect(readGroups({ groups: ['staff'], roles: ['admin'] }, undefined)).toEqual(['staff']);
    expect(readGroups({ roles: ['admin'] }, undefined)).toEqual(['admin']);
    expect(readGroups({ sub: 'u1' }, undefined)).toEqual([]);
  });

  it('follows a dotted path into nested claims, as Keycloak\'s realm_access.roles needs', () => {
    const claims = claimsFromJson('{"sub":"u1","realm_access":{"roles":["app-admin","offline_access"]},"resource_access":{"bff-gateway":{"roles":["orders-reader"]}}}');

    expect(readGroups(claims, 'realm_access.roles')).toEqual(['app-admin', 'offline_access']);
    expect(readGroups(claims, 'resource_access.bff-gateway.roles')).toEqual(['orders-reader']);
  });

  it('takes a claim whose own name contains dots over the nested reading', () => {
    const claims = claimsFromJson('{"https://example.com/groups":["namespaced"],"https://example":{"com/groups":["nested"]}}');

    expect(readGroups(claims, 'https://example.com/groups')).toEqual(['namespaced']);
  });

  it('takes a dotted claim name inside a nested claim too', () => {
    const claims = claimsFromJson('{"https://example.com/claims":{"groups":["staff"]},"realm_access.roles":["flat"],"realm_access":{"roles":["nested"]}}');

    expect(readGroups(claims, 'https://example.com/claims.groups')).toEqual(['staff']);
    expect(readGroups(claims, 'realm_access.roles')).toEqual(['flat']);
  });

  it.each([
    ['a string', '"admin"'],
    ['a number', '42'],
    ['null', 'null'],
    ['an object', '{"admin":true}'],
    ['a boolean', 'true'],
  ])('gives no groups when the claim is %s rather than an array', (_description, value) => {
    expect(readGroups(claimsFromJson(`{"groups":${value},"realm_access":{"roles":${value}}}`), 'groups')).toEqual([]);
    expect(readGroups(claimsFromJson(`{"realm_access":{"roles":${value}}}`), 'realm_access.roles')).toEqual([]);
  });

  it('gives no groups when the claim or a step of its path is missing', () => {
    expect(readGroups({ sub: 'u1' }, 'groups')).toEqual([]);
    expect(readGroups({ realm_access: { other: ['x'] } }, 'realm_access.roles')).toEqual([]);
    expect(readGroups({ realm_access: 'roles' }, 'realm_access.roles')).toEqual([]);
  });

  it('keeps only the string members of the array', () => {
    expect(readGroups(claimsFromJson('{"groups":["staff",1,null,{"name":"ops"},["nested"],"ops"]}'), 'groups')).toEqual(['staff', 'ops']);
  });

  it('never steps into an array', () => {
    expect(readGroups(claimsFromJson('{"groups":[["a"],["b"]]}'), 'groups.0')).toEqual([]);
    expect(readGroups(claimsFromJson('{"realm_access":[{"roles":["a"]}]}'), 'realm_access.0.roles')).toEqual([]);
  });

  it.each(['__proto__.x', 'constructor.x', 'prototype.x', 'realm_access.__proto__.roles', '__proto__', 'constructor', 'a.constructor'])(
    'never reads a prototype key: %s',
    (path) => {
      // JSON makes "__proto__" an ordinary own key, so an IdP could send one.
      const claims = claimsFromJson(
        '{"__proto__":{"x":["from-proto"]},"constructor":{"x":["from-constructor"]},"prototype":{"x":["from-prototype"]},"realm_access":{"__proto__":{"roles":["evil"]}},"a":{"constructor":["evil"]}}',
      );
      expect(readGroups(claims, path)).toEqual([]);
    },
  );

  it('never reads what objects inherit', () => {
    const inherited = Object.create({ groups: ['inherited'], realm_access: { roles: ['inherited'] } }) as Record<string, unknown>;

    expect(readGroups(inherited, 'groups')).toEqual([]);
    expect(readGroups(inherited, undefined)).toEqual([]);
    expect(readGroups(inherited, 'realm_access.roles')).toEqual([]);
    expect(readGroups({}, 'toString')).toEqual([]);
    expect(readGroups({}, 'hasOwnProperty')).toEqual([]);
  });
});
