import type { VSphereClient, VSphereClientOptions } from './client';
import { VSphereError } from './errors';
import { VSpherePool } from './pool';

/** Stand-in clients: connect() counts sessions, close() counts logouts. */
function fakeConnect(opts: { failFirst?: number } = {}) {
  const made: Array<{ closed: boolean }> = [];
  let failures = opts.failFirst ?? 0;
  const connect = async (_o: VSphereClientOptions): Promise<VSphereClient> => {
    await new Promise((r) => setTimeout(r, 5));
    if (failures-- > 0) throw new VSphereError({ code: 'VSPHERE_NETWORK', permanent: false }, 'down');
    const c = { closed: false, close: async () => void (c.closed = true) };
    made.push(c);
    return c as unknown as VSphereClient;
  };
  return { connect, made };
}

const opts = (username = 'u'): VSphereClientOptions => ({ url: 'https://vc.example/sdk', username, password: 'p', insecure: true });

describe('VSpherePool', () => {
  test('keyed by origin + user + a digest of the credentials and trust settings', () => {
    const base = { url: 'https://vc.example/sdk', username: 'u', password: 'p1', thumbprint: 'aa' };
    expect(VSpherePool.key(base)).toMatch(/^https:\/\/vc\.example\|u\|[0-9a-f]{64}$/);
    expect(VSpherePool.key({ ...base, url: 'https://vc.example:443/sdk/' })).toBe(VSpherePool.key(base));
    // Another password (another tenant's registration of the same user) never shares a session.
    expect(VSpherePool.key({ ...base, password: 'p2' })).not.toBe(VSpherePool.key(base));
    expect(VSpherePool.key({ ...base, thumbprint: undefined, insecure: true })).not.toBe(VSpherePool.key(base));
    expect(VSpherePool.key(base)).not.toContain('p1');
  });

  test('caps sessions per key; a release hands the session to the next waiter', async () => {
    const f = fakeConnect();
    const pool = new VSpherePool({ maxSessions: 2, connect: f.connect, idleTimeoutMs: 0 });
    const a = await pool.acquire(opts());
    const b = await pool.acquire(opts());
    const other = await pool.acquire(opts('v'));
    expect(f.made).toHaveLength(3);
    const waiting = pool.acquire(opts());
    b.release();
    b.release(); // a second release is ignored
    expect((await waiting).client).toBe(b.client);
    expect(pool.size(opts())).toBe(2);
    a.release();
    other.release();
    await pool.close();
    expect(f.made.filter((c) => c.closed)).toHaveLength(2); // the leased one closes on release
  });

  test('a failed connect frees its slot for a waiter', async () => {
    const f = fakeConnect({ failFirst: 1 });
    const pool = new VSpherePool({ maxSessions: 1, connect: f.connect, idleTimeoutMs: 0 });
    const first = pool.acquire(opts());
    const second = pool.acquire(opts());
    await expect(first).rejects.toMatchObject({ code: 'VSPHERE_NETWORK' });
    const lease = await second;
    expect(pool.size(opts())).toBe(1);
    lease.release();
    await pool.close();
  });

  test('idle sessions are logged out after idleTimeoutMs', async () => {
    const f = fakeConnect();
    const pool = new VSpherePool({ maxSessions: 2, connect: f.connect, idleTimeoutMs: 20 });
    (await pool.acquire(opts())).release();
    await new Promise((r) => setTimeout(r, 60));
    (pool as unknown as { sweep: () => void }).sweep();
    expect(f.made[0]!.closed).toBe(true);
    expect(pool.size(opts())).toBe(0);
    await pool.close();
  });

  test('close rejects waiters', async () => {
    const f = fakeConnect();
    const pool = new VSpherePool({ maxSessions: 1, connect: f.connect, idleTimeoutMs: 0 });
    const lease = await pool.acquire(opts());
    const waiting = pool.acquire(opts());
    await pool.close();
    await expect(waiting).rejects.toMatchObject({ code: 'VSPHERE_POOL_CLOSED' });
    lease.release();
    expect(f.made[0]!.closed).toBe(true);
  });
});
