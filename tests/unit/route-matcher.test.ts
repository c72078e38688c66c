import { DEFAULT_ROUTES, type RouteConfig } from '../../src/config/routes';
import { RouteMatcher } from '../../src/forwardauth/route-matcher';

function route(name: string, pathPrefix: string, host?: string): RouteConfig {
  return { name, host, pathPrefix, auth: 'session', audience: undefined, authz: 'none' };
}

describe('RouteMatcher', () => {
  const routes = [
    route('root', ''),
    route('api', '/api'),
    route('orders', '/api/orders'),
    route('orders-admin', '/api/orders/admin'),
    route('app-orders', '/api/orders', 'app.example.com'),
    route('app-root', '', 'app.example.com'),
    route('other-host', '/api', 'other.example.com'),
  ];
  const matcher = new RouteMatcher(routes);

  it.each([
    [undefined, '/', 'root'],
    [undefined, '/anything/else', 'root'],
    [undefined, '/api', 'api'],
    [undefined, '/api/customers', 'api'],
    [undefined, '/api/orders', 'orders'],
    [undefined, '/api/orders/1', 'orders'],
    [undefined, '/api/ordersx', 'api'],
    [undefined, '/api/orders/admin/x', 'orders-admin'],
    [undefined, '/apix', 'root'],
    ['unknown.example.com', '/api/orders/1', 'orders'],
    ['app.example.com', '/api/orders/1', 'app-orders'],
    ['app.example.com', '/api/orders/admin', 'app-orders'],
    ['app.example.com', '/api/customers', 'app-root'],
    ['app.example.com', '/', 'app-root'],
    ['other.example.com', '/api/orders', 'other-host'],
    ['other.example.com', '/static', 'root'],
  ])('on host %j, %j goes to %j', (host, path, expected) => {
    expect(matcher.match(host, path)?.name).toBe(expected);
  });

  it('prefers a host-specific route over a longer host-less prefix', () => {
    const specific = new RouteMatcher([route('deep', '/a/b/c'), route('host', '/a', 'h.example.com')]);
    expect(specific.match('h.example.com', '/a/b/c/d')?.name).toBe('host');
  });

  it('picks the longest prefix whatever the order of the routes file', () => {
    const reversed = new RouteMatcher([route('short', '/a'), route('long', '/a/b')]);
    const forward = new RouteMatcher([route('long', '/a/b'), route('short', '/a')]);
    expect([reversed.match(undefined, '/a/b/c')?.name, forward.match(undefined, '/a/b/c')?.name]).toEqual(['long', 'long']);
  });

  it('matches a prefix only on whole segments', () => {
    const only = new RouteMatcher([route('orders', '/api/orders')]);
    expect(only.match(undefined, '/api/ordersx')).toBeUndefined();
  });

  it('answers undefined when no route covers the path', () => {
    const only = new RouteMatcher([route('orders', '/api/orders', 'app.example.com')]);
    expect(only.match('app.example.com', '/api/customers')).toBeUndefined();
  });

  it('does not apply a host-specific route to a request without a host', () => {
    const only = new RouteMatcher([route('orders', '/api/orders', 'app.example.com')]);
    expect(only.match(undefined, '/api/orders')).toBeUndefined();
  });

  it.each(['/', '/api/orders/1', '/a/b/c/d/e'])('sends %j to the default route without a routes file', (path) => {
    expect(new RouteMatcher(DEFAULT_ROUTES).match('any.example.com', path)?.name).toBe('default');
  });

  it('does not reorder the caller\'s routes array', () => {
    const given = [route('short', '/a'), route('long', '/a/b')];
    new RouteMatcher(given);
    expect(given.map((r) => r.name)).toEqual(['short', 'long']);
  });
});
