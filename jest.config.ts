// CommonJS tests transformed by ts-jest. openid-client 6, connect-redis 8 and
// oidc-provider 9 are ESM-only; Node 24 lets CommonJS require() them, and Jest
// follows suit when started with --experimental-vm-modules (see README, "Tests").
// Node loads this file itself (type stripping), hence module.exports.
const config: import('jest').Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 60_000,
  maxWorkers: 2,
};

module.exports = config;
