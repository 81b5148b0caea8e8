// Sessions against the vcsim harness: certificate verification (thumbprint,
// CA, insecure), login/logout, re-login after expiry, keep-alive, per-call
// timeouts, the pool, and no secrets in logs or errors.
import tls from 'node:tls';
import { Writable } from 'node:stream';
import pino from 'pino';
import { VSphereClient, VSpherePool, VSphereError, findVm, getPowerState } from '../../../apps/core/src/vsphere';
import { clientOptions, expectAllRequestsConform, startVcsim, type Vcsim } from '../../support/vcsim';

let sim: Vcsim;
beforeAll(async () => {
  sim = await startVcsim();
}, 180_000);
afterAll(async () => {
  await sim?.stop();
});
afterEach(async () => {
  await sim.clearFaults();
});

const caught = async (p: Promise<unknown>): Promise<VSphereError> => {
  try {
    await p;
  } catch (err) {
    return err as VSphereError;
  }
  throw new Error('expected a rejection');
};

/** The PEM of the certificate the harness serves (what an admin would put in a CA bundle). */
function servedCertificatePem(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      const der = s.getPeerCertificate().raw;
      s.end();
      resolve(`-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`);
    });
    s.on('error', reject);
  });
}

describe('server certificate', () => {
  test.each([
    ['a SHA-256 thumbprint', () => ({ thumbprint: sim.thumbprintSha256 })],
    ['a SHA-1 thumbprint', () => ({ thumbprint: sim.thumbprintSha1 })],
    ['a lowercase thumbprint without colons', () => ({ thumbprint: sim.thumbprintSha256.replace(/:/g, '').toLowerCase() })],
    ['an explicit insecure: true', () => ({ thumbprint: undefined, insecure: true })],
  ])('connects with %s', async (_label, tlsOpts) => {
    const c = await VSphereClient.connect(clientOptions(sim, tlsOpts()));
    expect(c.serviceContent.about.apiType).toBe('VirtualCenter');
    expect(typeof (await c.currentTime())).toBe('string');
    await c.close();
  });

  test('connects with a CA bundle that holds the server certificate', async () => {
    const ca = await servedCertificatePem(sim.url);
    const c = await VSphereClient.connect(clientOptions(sim, { thumbprint: undefined, ca }));
    expect(c.isLoggedIn).toBe(true);
    await c.close();
  });

  test('a CA bundle that does not sign the certificate is refused', async () => {
    const other = tls.rootCertificates[0]!;
    const err = await caught(VSphereClient.connect(clientOptions(sim, { thumbprint: undefined, ca: other })));
    expect(err.code).toBe('VSPHERE_NETWORK');
    expect(err.message).toMatch(/self[- ]signed|unable to verify|certificate/i);
  });

  test('a wrong thumbprint is refused before anything is sent', async () => {
    await sim.clearCalls();
    const wrong = sim.thumbprintSha256.replace(/^../, sim.thumbprintSha256.startsWith('00') ? '11' : '00');
    const err = await caught(VSphereClient.connect(clientOptions(sim, { thumbprint: wrong })));
    expect(err).toBeInstanceOf(VSphereError);
    expect(err).toMatchObject({ code: 'VSPHERE_TLS_UNTRUSTED', permanent: true });
    expect(err.message).toContain('does not match the pinned sha256 thumbprint');
    expect(await sim.calls()).toEqual([]);
  });

  test('insecure is off by default: no thumbprint and no CA refuses to connect', async () => {
    const err = await caught(VSphereClient.connect(clientOptions(sim, { thumbprint: undefined })));
    expect(err).toMatchObject({ code: 'VSPHERE_TLS_CONFIG', permanent: true });
    expect(err.message).toMatch(/no CA bundle and no certificate thumbprint/);
    expect(() => new VSphereClient(clientOptions(sim, { thumbprint: 'AB:CD' }))).toThrow(/SHA-1 \(40 hex digits\) or SHA-256/);
    expect(() => new VSphereClient(clientOptions(sim, { url: sim.url.replace('https:', 'http:') }))).toThrow(/must be https/);
  });
});

describe('login, logout, keep-alive, timeouts', () => {
  test('a wrong password is a permanent InvalidLogin', async () => {
    const err = await caught(VSphereClient.connect(clientOptions(sim, { password: 'not-the-password' })));
    expect(err).toMatchObject({ code: 'VSPHERE_INVALID_LOGIN', permanent: true, faultType: 'InvalidLogin' });
  });

  test('close() logs out: the session is gone on the server', async () => {
    await sim.clearCalls();
    const c = await VSphereClient.connect(clientOptions(sim));
    await c.close();
    expect((await sim.calls('Logout')).length).toBe(1);
    await expect(c.currentTime()).rejects.toMatchObject({ code: 'VSPHERE_CLIENT_CLOSED' });
    await c.close(); // twice is fine
  });

  test('expired session: NotAuthenticated -> Login again once -> the call succeeds', async () => {
    const c = await VSphereClient.connect(clientOptions(sim));
    const vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
    await sim.clearCalls();
    expect(await sim.expireSessions()).toBeGreaterThanOrEqual(1);
    expect(await getPowerState(c, vm)).toMatch(/powered/);
    const calls = (await sim.calls()).map((x) => x.method);
    expect(calls).toEqual(['RetrievePropertiesEx', 'Login', 'RetrievePropertiesEx']);
    await c.close();
  });

  test('concurrent calls that all hit an expired session share one re-login', async () => {
    const c = await VSphereClient.connect(clientOptions(sim));
    await sim.expireSessions();
    await sim.clearCalls();
    await Promise.all([c.currentTime(), c.currentTime(), c.currentTime()]);
    expect((await sim.calls('Login')).length).toBe(1);
    await c.close();
  });

  test('re-login is tried once: a second NotAuthenticated is thrown', async () => {
    const c = await VSphereClient.connect(clientOptions(sim));
    await sim.injectFault({ method: 'CurrentTime', fault: 'NotAuthenticated', count: 2 });
    await expect(c.currentTime()).rejects.toMatchObject({ code: 'VSPHERE_NOT_AUTHENTICATED' });
    await c.close();
  });

  test('keep-alive calls CurrentTime periodically', async () => {
    const c = await VSphereClient.connect(clientOptions(sim, { keepAliveMs: 100 }));
    await sim.clearCalls();
    await new Promise((r) => setTimeout(r, 450));
    expect((await sim.calls('CurrentTime')).length).toBeGreaterThanOrEqual(3);
    await c.close();
  });

  test('per-call timeout: a slow call fails with VSPHERE_TIMEOUT (transient); the client still works', async () => {
    const c = await VSphereClient.connect(clientOptions(sim, { callTimeoutMs: 300 }));
    await sim.injectFault({ method: 'CurrentTime', delayMs: 1500 });
    const t0 = Date.now();
    const err = await caught(c.currentTime());
    expect(err).toMatchObject({ code: 'VSPHERE_TIMEOUT', permanent: false });
    expect(Date.now() - t0).toBeLessThan(1200);
    expect(typeof (await c.call('CurrentTime', { type: 'ServiceInstance', value: 'ServiceInstance' }, {}, { timeoutMs: 5000 }))).toBe('string');
    await c.close();
  });
});

describe('no secrets in logs or errors', () => {
  test('failed login, expired session, call faults: neither the password nor the cookie appears', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const errors: unknown[] = [];
    const keep = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        errors.push(err);
      }
    };
    await keep(VSphereClient.connect(clientOptions(sim, { password: `${sim.password}-wrong`, logger })));
    const c = await VSphereClient.connect(clientOptions(sim, { logger }));
    const cookies = new Set<string>();
    const noteCookie = () => {
      const cookie = (c as unknown as { transport: { cookie?: string } }).transport.cookie;
      expect(cookie).toMatch(/^vmware_soap_session=.+/);
      cookies.add(cookie!.slice(cookie!.indexOf('=') + 1));
    };
    noteCookie();
    await sim.expireSessions();
    await c.currentTime(); // re-login, logged
    noteCookie();
    expect(cookies.size).toBe(2);
    await sim.injectFault({ method: 'CurrentTime', fault: 'NotAuthenticated', count: 2 });
    await keep(c.currentTime());
    await sim.injectFault({ method: 'FindByInventoryPath', fault: 'NoPermission' });
    await keep(findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' }));
    await sim.expireSessions();
    await sim.injectFault({ method: 'Login', fault: 'InvalidLogin' });
    await keep(c.currentTime()); // expired, and the re-login fails
    await c.close();
    expect(errors.length).toBe(4);
    expect(lines.length).toBeGreaterThan(5);
    const text = [
      ...lines,
      ...errors.map((e) => {
        const err = e as VSphereError;
        return `${err.message}\n${err.stack}\n${JSON.stringify(err)}\n${JSON.stringify(err.fault)}\n${String(err.cause)}`;
      }),
    ].join('\n');
    expect(text).toContain('vSphere session expired, logging in again');
    for (const secret of [sim.password, `${sim.password}-wrong`, ...cookies]) expect(text).not.toContain(secret);
  });
});

describe('VSpherePool', () => {
  test('caps concurrent sessions per url+user, reuses idle ones, logs out on close', async () => {
    await sim.clearCalls();
    const pool = new VSpherePool({ maxSessions: 2, acquireTimeoutMs: 2_000 });
    const opts = clientOptions(sim);
    const a = await pool.acquire(opts);
    const b = await pool.acquire(opts);
    expect(a.client).not.toBe(b.client);
    let thirdGot = false;
    const third = pool.acquire(opts).then((l) => {
      thirdGot = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(thirdGot).toBe(false);
    expect(pool.size(opts)).toBe(2);
    a.release();
    const c = await third;
    expect(c.client).toBe(a.client);
    b.release();
    c.release();
    expect((await sim.calls('Login')).length).toBe(2);
    const d = await pool.withClient(opts, async (client) => {
      expect([a.client, b.client]).toContain(client);
      return client.currentTime();
    });
    expect(typeof d).toBe('string');
    await pool.close();
    expect((await sim.calls('Logout')).length).toBe(2);
    await expect(pool.acquire(opts)).rejects.toMatchObject({ code: 'VSPHERE_POOL_CLOSED' });
  });

  test('a waiter times out with VSPHERE_POOL_TIMEOUT; another user has its own sessions', async () => {
    const pool = new VSpherePool({ maxSessions: 1, acquireTimeoutMs: 100 });
    const opts = clientOptions(sim);
    const a = await pool.acquire(opts);
    await expect(pool.acquire(opts)).rejects.toMatchObject({ code: 'VSPHERE_POOL_TIMEOUT', permanent: false });
    // A different user is a different key (its login fails here: the harness knows one user).
    await expect(pool.acquire({ ...opts, username: 'other' })).rejects.toMatchObject({ code: 'VSPHERE_INVALID_LOGIN' });
    expect(pool.size({ ...opts, username: 'other' })).toBe(0);
    a.release();
    await pool.close();
  });
});

afterAll(() => {
  const methods = expectAllRequestsConform();
  expect(methods).toEqual(expect.objectContaining({ size: expect.any(Number) }));
  expect([...methods]).toEqual(expect.arrayContaining(['RetrieveServiceContent', 'Login', 'Logout', 'CurrentTime', 'RetrievePropertiesEx']));
});
