import { FrontendSessionStore } from '../../src/session/frontend-session-store';
import { MemorySessionStore } from '../../src/session/memory-session-store';
import { SessionSealer } from '../../src/session/session-sealer';
import { SECRET, sessionId, sessionOf } from '../contract/session-values';

/** The one place a session is tied to its frontend (SPEC section 10), over the real in-memory store. */
describe('a frontend’s view of the shared session store', () => {
  const now = Date.now();
  const shared = () => new MemorySessionStore({ sealer: new SessionSealer([SECRET]), idleTtlSecondsOf: () => 600, clock: { now: () => now } });

  it('stamps what it saves with its frontend, and reads another frontend’s session as none', async () => {
    const store = shared();
    const shop = new FrontendSessionStore(store, 'shop');
    const admin = new FrontendSessionStore(store, 'admin');
    await shop.save(sessionId('a'), sessionOf('alice', 'sid-1', now + 3_600_000));
    expect((await store.get(sessionId('a')))?.auth.frontend).toBe('shop');
    expect(await shop.get(sessionId('a'))).toBeDefined();
    expect(await admin.get(sessionId('a'))).toBeUndefined();
  });

  it('gives sessions saved before frontends existed to the default frontend', async () => {
    const store = shared();
    await store.save(sessionId('b'), sessionOf('alice', 'sid-1', now + 3_600_000));
    expect(await new FrontendSessionStore(store, 'default').get(sessionId('b'))).toBeDefined();
    expect(await new FrontendSessionStore(store, 'shop').get(sessionId('b'))).toBeUndefined();
  });

  it('lists, and ends by back-channel logout, its own sessions of a subject only', async () => {
    const store = shared();
    const shop = new FrontendSessionStore(store, 'shop');
    const admin = new FrontendSessionStore(store, 'admin');
    await shop.save(sessionId('c'), sessionOf('alice', 'sid-1', now + 3_600_000));
    await admin.save(sessionId('d'), sessionOf('alice', 'sid-1', now + 3_600_000));
    expect((await shop.listBySubject('alice')).map((listed) => listed.sessionId)).toEqual([sessionId('c')]);
    expect(await admin.destroyByIdpSession({ sub: 'alice' })).toBe(1);
    expect(await store.get(sessionId('c'))).toBeDefined();
    expect(await store.get(sessionId('d'))).toBeUndefined();
  });

  it('stamps a refreshed record committed under its lease', async () => {
    const store = shared();
    const shop = new FrontendSessionStore(store, 'shop');
    await shop.save(sessionId('e'), sessionOf('alice', 'sid-1', now + 3_600_000));
    const lease = await shop.tryLockForRefresh(sessionId('e'), 1000);
    expect(await lease?.commit(sessionOf('alice', 'sid-1', now + 3_600_000))).toBe(true);
    expect((await store.get(sessionId('e')))?.auth.frontend).toBe('shop');
  });
});
