import * as client from 'openid-client';
import { RedisStore } from 'connect-redis';
import Provider from 'oidc-provider';

it('loads esm', () => {
  expect(typeof client.discovery).toBe('function');
  expect(typeof RedisStore).toBe('function');
  expect(typeof Provider).toBe('function');
});
